//! azp-preflight: proves that a pipeline's registry credentials, service principals and
//! pinned task versions work, before the pipeline needs them.
//!
//! Flow (ARCHITECTURE.md): `app` parses the command line → `settings` reads the inputs (the
//! environment is read once into `env::AgentEnv`) → `checks::validate` checks each family's
//! configuration once → `check::family` turns each family into jobs → `check::runner` runs
//! them under one deadline → `report` renders the results.

pub mod advisory_update;
pub mod app;
pub mod azure;
pub mod check;
pub mod checks;
pub mod cli;
pub mod codes;
pub mod connections;
pub mod deploy_target;
pub mod devops;
pub mod env;
pub mod exit;
pub mod expiry;
pub mod finding;
pub mod fsread;
#[doc(hidden)]
pub mod fuzz;
#[cfg(test)]
pub(crate) mod heap_count;
pub mod input_error;
pub mod logging;
pub mod net;
pub mod org;
pub mod output;
pub mod registry_target;
pub mod report;
pub mod sanitize;
pub mod secret;
pub mod settings;
#[cfg(test)]
pub(crate) mod testing;
pub mod userinfo;
