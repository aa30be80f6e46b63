//! The check families, in report order. Each module turns settings into jobs.

pub mod agent;
pub mod tasks;

use crate::check::Check;
use crate::settings::{CheckId, Settings};

/// The checks the settings ask for.
pub fn enabled(settings: &Settings) -> Vec<Box<dyn Check>> {
    let mut checks: Vec<Box<dyn Check>> = Vec::new();
    for id in &settings.checks {
        match id {
            CheckId::Agent => checks.push(Box::new(agent::AgentCheck)),
            CheckId::Tasks => checks.push(Box::new(tasks::TasksCheck)),
            CheckId::Registry | CheckId::Identity => checks.push(Box::new(Unavailable(*id))),
        }
    }
    checks
}

/// A check family this build does not implement: says so as a skip rather than passing.
struct Unavailable(CheckId);

impl Check for Unavailable {
    fn id(&self) -> CheckId {
        self.0
    }

    fn plan(&self, _ctx: &std::sync::Arc<crate::check::Context>) -> Vec<crate::check::TargetJob> {
        vec![crate::check::TargetJob::ready(
            "(all targets)",
            crate::check::TargetOutcome::skip(format!(
                "the {} check is not implemented in this build",
                self.0.as_str()
            )),
        )]
    }
}

/// Facts about the embedded advisory database, for the report header.
pub fn advisory_db_info() -> Option<crate::report::AdvisoryDbInfo> {
    tasks::advisory_db_info()
}
