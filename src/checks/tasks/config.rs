//! The tasks check's configuration, validated once before the run: the given pipeline
//! patterns expanded (a bad pattern, or patterns that match nothing, are bad input) and the
//! organization's advisory files read and checked. The job uses what was found here; it
//! never reads them again.

use std::sync::atomic::AtomicBool;

use super::advisories::refresh::RunDb;
use super::advisories::{self, Advisory};
use super::discover::{self, Discovered, SourcesRoot};
use crate::input_error::{InputError, InputErrors};
use crate::settings::Settings;

#[derive(Debug, Default)]
pub struct TasksConfig {
    /// The files `pipelineFiles` / `--pipeline` matched; `None` when no pattern was given
    /// (the job then asks the definition or searches the sources folder, under the deadline).
    pub given: Option<Discovered>,
    /// The organization's advisory files, merged over the run's database by the job.
    pub org_advisories: Vec<Advisory>,
    /// The advisory database the run uses, decided once by the job that first needs it
    /// (refreshed when asked) and shown in the report header.
    pub run_db: tokio::sync::OnceCell<RunDb>,
}

/// Every problem with the patterns and the advisory files, together.
pub fn validate(settings: &Settings) -> Result<TasksConfig, InputErrors> {
    let mut problems = InputErrors::default();
    let given = if settings.pipeline_patterns.is_empty() {
        None
    } else {
        // Bounded by the search's own caps (files, templates, probes); the run's deadline
        // counts from before this walk.
        let root = SourcesRoot::new(&settings.sources_dir);
        let found = discover::from_patterns_within(
            &root,
            &settings.pipeline_patterns,
            pattern_input(settings),
            &AtomicBool::new(false),
        );
        problems.take(found.map(Some), None)
    };
    let mut org_advisories = Vec::with_capacity(settings.advisory_files.len());
    for path in &settings.advisory_files {
        match advisories::read_file(path) {
            Ok(advisory) => org_advisories.push(advisory),
            Err(e) => {
                let name = if settings.in_pipeline { "advisoryFile" } else { "--advisories" };
                problems.0.push(InputError::new(
                    name,
                    &e.file.display().to_string(),
                    &format!("a valid advisory file ({})", e.problems.join("; ")),
                ));
            }
        }
    }
    problems.into_result(TasksConfig { given, org_advisories, run_db: Default::default() })
}

/// The input that names the pipeline files, as the user wrote it.
pub fn pattern_input(settings: &Settings) -> &'static str {
    if settings.in_pipeline {
        "pipelineFiles"
    } else {
        "--pipeline"
    }
}
