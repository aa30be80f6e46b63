//! End-to-end tests of the `azp-preflight` binary: one test binary, one module per area.

mod common;

mod cli;
mod deploy;
mod fake_arm;
mod pipeline_output;
