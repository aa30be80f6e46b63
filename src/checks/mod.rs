//! The check families, in report order. Each module turns settings into jobs.

pub mod agent;
pub mod deploy;
pub mod identity;
pub mod registry;
pub mod tasks;

use std::sync::Arc;

use crate::check::family::FamilyCheck;
use crate::check::Check;
use crate::env::AgentEnv;
use crate::input_error::InputErrors;
use crate::settings::{CheckId, Settings};

/// What the families need beyond the settings, validated once before the run (the
/// registry, identity and deploy families take theirs straight from the settings).
#[derive(Debug, Default)]
pub struct ValidConfig {
    /// Present when the tasks check runs.
    pub tasks: Option<Arc<tasks::config::TasksConfig>>,
}

/// Checks what the selected families will use; every problem is reported together.
pub fn validate(settings: &Settings) -> Result<ValidConfig, InputErrors> {
    let tasks = match settings.runs(CheckId::Tasks) {
        true => Some(Arc::new(tasks::config::validate(settings)?)),
        false => None,
    };
    Ok(ValidConfig { tasks })
}

/// The checks the settings ask for, each a family with its targets worked out.
pub fn enabled(settings: &Settings, env: &AgentEnv, config: &ValidConfig) -> Vec<Box<dyn Check>> {
    let mut checks: Vec<Box<dyn Check>> = Vec::new();
    for id in &settings.checks {
        match id {
            CheckId::Agent => checks.push(Box::new(FamilyCheck::new(agent::AgentCheck::new(env)))),
            CheckId::Registry => checks.push(Box::new(FamilyCheck::new(registry::RegistryCheck::new(settings)))),
            CheckId::Identity => checks.push(Box::new(FamilyCheck::new(identity::IdentityCheck::new(settings)))),
            CheckId::Deploy => checks.push(Box::new(FamilyCheck::new(deploy::DeployCheck::new(settings)))),
            CheckId::Tasks => {
                let config = config.tasks.clone().unwrap_or_default();
                checks.push(Box::new(FamilyCheck::new(tasks::TasksCheck::new(config))))
            }
            // Organisation families run under `azp-preflight org`, never from `checks`.
            CheckId::Connections | CheckId::Runs => {}
        }
    }
    // Deploy targets left out by `checks` still appear in the report, as skipped.
    if !settings.runs(CheckId::Deploy) && !settings.deploy_targets.is_empty() {
        let list = settings.checks.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(",");
        let reason = format!("`checks` is `{list}`, which leaves out deploy");
        checks.push(Box::new(FamilyCheck::left_out(deploy::DeployCheck::new(settings), reason)));
    }
    checks
}

/// Facts about the embedded advisory database, for the report header.
pub fn advisory_db_info() -> Option<crate::report::AdvisoryDbInfo> {
    tasks::advisory_db_info()
}
