//! The check families, in report order. Each module turns settings into jobs.

pub mod agent;
pub mod deploy;
pub mod identity;
pub mod registry;
pub mod tasks;

use crate::check::Check;
use crate::settings::{CheckId, Settings};

/// The checks the settings ask for.
pub fn enabled(settings: &Settings) -> Vec<Box<dyn Check>> {
    let mut checks: Vec<Box<dyn Check>> = Vec::new();
    for id in &settings.checks {
        match id {
            CheckId::Agent => checks.push(Box::new(agent::AgentCheck)),
            CheckId::Registry => checks.push(Box::new(registry::RegistryCheck)),
            CheckId::Identity => checks.push(Box::new(identity::IdentityCheck)),
            CheckId::Deploy => checks.push(Box::new(deploy::DeployCheck)),
            CheckId::Tasks => checks.push(Box::new(tasks::TasksCheck)),
        }
    }
    // Deploy targets left out by `checks` still appear in the report, as skipped.
    if !settings.runs(CheckId::Deploy) && !settings.deploy_targets.is_empty() {
        checks.push(Box::new(deploy::DeployCheck));
    }
    checks
}

/// Facts about the embedded advisory database, for the report header.
pub fn advisory_db_info() -> Option<crate::report::AdvisoryDbInfo> {
    tasks::advisory_db_info()
}
