//! The `tasks` check: finds the pipeline files, every task reference in them and in the local
//! templates they include, and matches each against the advisory database and the built-in
//! task index (and, online, the organization's installed task versions). One report entry
//! per pipeline file, carrying every reference in `references`.

pub mod advice;
pub mod advisories;
pub mod discover;
pub mod fix;
pub mod index;
pub mod reference;
pub mod resolve;
pub mod scan;
pub mod templates;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use self::advice::{Advice, Facts, Identity};
use self::advisories::AdvisoryDb;
use self::discover::{How, PipelineFile};
use self::resolve::{Lookup, Resolver};
use self::templates::{Collection, PipelineScan};
use crate::check::{Check, Context, TargetJob, TargetOutcome};
use crate::report::AdvisoryDbInfo;
use crate::settings::{CheckId, InputError, Settings};

pub struct TasksCheck;

impl Check for TasksCheck {
    fn id(&self) -> CheckId {
        CheckId::Tasks
    }

    fn plan(&self, ctx: &Arc<Context>) -> Vec<TargetJob> {
        let (files, how) = match select_files(ctx) {
            Ok(found) => found,
            Err(e) => return vec![TargetJob::ready("pipeline files", TargetOutcome::skip(e.to_string()))],
        };
        if files.is_empty() {
            return vec![TargetJob::ready(
                "pipeline files",
                TargetOutcome::skip(no_files_reason(&ctx.settings.sources_dir)),
            )];
        }
        let db =
            Arc::new(AdvisoryDb::load(&ctx.settings.advisory_files).unwrap_or_else(|_| advisories::embedded().clone()));
        let resolver = resolver(ctx).map(Arc::new);
        scan_pipelines(&files, how, &ctx.settings.sources_dir)
            .into_iter()
            .map(|scan| {
                let (ctx, db, resolver) = (ctx.clone(), db.clone(), resolver.clone());
                TargetJob::new(scan.display.clone(), async move {
                    check_pipeline(&scan, &db, ctx.settings.agent_version.as_deref(), resolver.as_deref()).await
                })
            })
            .collect()
    }
}

/// Bad `pipelineFiles` / `--pipeline` values and advisory files are input errors (exit 2),
/// reported before anything runs.
pub fn validate(settings: &Settings) -> Result<(), InputError> {
    if !settings.pipeline_patterns.is_empty() {
        discover::from_patterns(&settings.sources_dir, &settings.pipeline_patterns, pattern_input(settings))?;
    }
    AdvisoryDb::load(&settings.advisory_files).map_err(|e| {
        let name = if settings.in_pipeline { "advisoryFile" } else { "--advisories" };
        InputError::new(
            name,
            &e.file.display().to_string(),
            &format!("a valid advisory file ({})", e.problems.join("; ")),
        )
    })?;
    Ok(())
}

fn pattern_input(settings: &Settings) -> &'static str {
    if settings.in_pipeline {
        "pipelineFiles"
    } else {
        "--pipeline"
    }
}

fn no_files_reason(sources_dir: &Path) -> String {
    format!(
        "no pipeline file found under {}: looked for {}; name the files with pipelineFiles / --pipeline",
        sources_dir.display(),
        discover::CONVENTIONAL.join(", ")
    )
}

/// The embedded database's size and newest update, for the report header.
pub fn advisory_db_info() -> Option<AdvisoryDbInfo> {
    let db = advisories::embedded();
    Some(AdvisoryDbInfo { advisories: db.advisories.len(), updated: db.updated()?.to_string() })
}

fn online(ctx: &Context) -> bool {
    !ctx.settings.offline && ctx.settings.job_token.is_some() && ctx.endpoints.devops.is_some()
}

fn resolver(ctx: &Context) -> Option<Resolver> {
    if !online(ctx) {
        return None;
    }
    Some(Resolver::new(&ctx.http, ctx.endpoints.devops.clone()?, ctx.settings.job_token.clone()?))
}

/// The files to scan: given patterns; else the pipeline definition's YAML file (online);
/// else the conventional names.
pub fn select_files(ctx: &Arc<Context>) -> Result<(Vec<PipelineFile>, How), InputError> {
    let settings = &ctx.settings;
    if !settings.pipeline_patterns.is_empty() {
        let files =
            discover::from_patterns(&settings.sources_dir, &settings.pipeline_patterns, pattern_input(settings))?;
        return Ok((files, How::Given));
    }
    if let Some(Ok(name)) = definition_yaml_blocking(ctx) {
        if let Some(file) = discover::definition_file(&settings.sources_dir, &name) {
            return Ok((vec![file], How::Definition));
        }
        tracing::debug!("the definition's YAML file {name} is not under the sources folder");
    }
    Ok((discover::conventional(&settings.sources_dir), How::Conventional))
}

/// Asks for the definition's YAML file name. Planning is synchronous, so the request runs on
/// the run's runtime from a helper thread; only on a multi-threaded runtime, whose workers
/// drive the I/O while this thread waits.
fn definition_yaml_blocking(ctx: &Arc<Context>) -> Option<Result<String, String>> {
    if !online(ctx) || ctx.settings.project.is_none() || ctx.settings.definition_id.is_none() {
        return None;
    }
    let handle = tokio::runtime::Handle::try_current().ok()?;
    if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        return None;
    }
    let ctx2 = ctx.clone();
    let limit = ctx.settings.timeout.min(Duration::from_secs(15));
    let work = async move {
        let (collection, token) = (ctx2.endpoints.devops.as_ref()?, ctx2.settings.job_token.as_ref()?);
        let lookup = discover::DefinitionLookup {
            http: &ctx2.http,
            collection,
            project: ctx2.settings.project.as_deref()?,
            definition_id: ctx2.settings.definition_id.as_deref()?,
            token,
        };
        match tokio::time::timeout(limit, discover::definition_yaml(lookup)).await {
            Ok(result) => Some(result),
            Err(_) => Some(Err("the build definitions API did not answer in time".into())),
        }
    };
    let result = std::thread::scope(|s| s.spawn(|| handle.block_on(work)).join().ok().flatten());
    if let Some(Err(why)) = &result {
        tracing::debug!("pipeline definition lookup failed: {why}");
    }
    result
}

/// Reads every pipeline file and its templates. Found by convention, a file that another
/// found file includes is a template, not a pipeline of its own.
pub fn scan_pipelines(files: &[PipelineFile], how: How, sources_dir: &Path) -> Vec<PipelineScan> {
    let collection = Collection::read(files, sources_dir);
    let scans: Vec<PipelineScan> = files.iter().map(|f| collection.pipeline(f)).collect();
    if how == How::Given {
        return scans;
    }
    let paths: Vec<std::path::PathBuf> = files.iter().map(|f| discover::normalize(&f.path)).collect();
    let includes = |s: &PipelineScan, path: &std::path::PathBuf| s.files.iter().skip(1).any(|f| &f.path == path);
    // A file another found file includes is a template; of two that include each other, the
    // first found stays.
    let mut includers: std::collections::HashMap<&std::path::Path, Vec<usize>> = std::collections::HashMap::new();
    for (i, scan) in scans.iter().enumerate() {
        for f in scan.files.iter().skip(1) {
            includers.entry(f.path.as_path()).or_default().push(i);
        }
    }
    let template: Vec<bool> = (0..scans.len())
        .map(|r| {
            includers
                .get(paths[r].as_path())
                .is_some_and(|by| by.iter().any(|&s| s != r && !(s > r && includes(&scans[r], &paths[s]))))
        })
        .collect();
    drop(includers);
    scans.into_iter().zip(template).filter(|(_, t)| !t).map(|(s, _)| s).collect()
}

/// Advice for every reference of one pipeline, asking the organization when online.
pub async fn advise_pipeline(
    scan: &PipelineScan,
    db: &AdvisoryDb,
    agent_version: Option<&str>,
    resolver: Option<&Resolver>,
) -> (Vec<Advice>, usize) {
    let facts = Facts { db, index: index::builtin(), agent_version };
    let mut advice = Vec::new();
    let mut resolved = 0;
    for found in &scan.references {
        let identity = advice::identify(&found.raw().value, facts.index);
        let lookup = match (resolver, &identity) {
            (Some(r), Ok(Identity { task_id: Some(id), .. })) => Some(r.lookup(id).await),
            _ => None,
        };
        if matches!(lookup, Some(Lookup::Found(_))) {
            resolved += 1;
        }
        advice.extend(advice::advise_identified(found, &facts, identity, lookup.as_ref()));
    }
    (advice, resolved)
}

/// The report entry for one pipeline file.
pub async fn check_pipeline(
    scan: &PipelineScan,
    db: &AdvisoryDb,
    agent_version: Option<&str>,
    resolver: Option<&Resolver>,
) -> TargetOutcome {
    let (advice, resolved) = advise_pipeline(scan, db, agent_version, resolver).await;
    let mut outcome = TargetOutcome::default();
    outcome.findings.extend(scan.findings.iter().cloned());
    outcome.findings.extend(advice.into_iter().map(|a| a.finding));
    let n = scan.references.len();
    outcome.proven.push(format!(
        "{n} task reference{} in {} file{} checked against {} advisories",
        if n == 1 { "" } else { "s" },
        scan.files.len(),
        if scan.files.len() == 1 { "" } else { "s" },
        db.advisories.len()
    ));
    if resolver.is_some() {
        outcome.proven.push(format!("{resolved} reference(s) resolved against the organization's task versions"));
    }
    outcome.extra.insert("references".into(), references_json(scan));
    outcome
}

/// `references`: every reference as written, with where it is.
pub fn references_json(scan: &PipelineScan) -> Value {
    let list: Vec<Value> = scan
        .references
        .iter()
        .map(|r| {
            let raw = r.raw();
            let value = raw.value.trim();
            let (task, version) = value.rsplit_once('@').unwrap_or((value, ""));
            json!({
                "task": crate::report::sanitize::sanitize(task),
                "version": crate::report::sanitize::sanitize(version),
                "file": r.file.display,
                "line": raw.line,
                "column": raw.column,
            })
        })
        .collect();
    Value::Array(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_info_counts_embedded_advisories() {
        let info = advisory_db_info().unwrap();
        assert_eq!(info.advisories, advisories::embedded_files().len());
        assert!(info.advisories >= 32, "{}", info.advisories);
        assert_eq!(info.updated.len(), 10);
    }

    #[tokio::test]
    async fn one_entry_per_pipeline_with_references() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("azure-pipelines.yml"),
            "steps:\n- template: build-azure-pipelines.yml\n- task: NuGetCommand@2.244.1\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("build-azure-pipelines.yml"), "steps:\n- task: Docker@2\n").unwrap();
        let files = discover::conventional(dir.path());
        assert_eq!(files.len(), 2);
        let scans = scan_pipelines(&files, How::Conventional, dir.path());
        assert_eq!(scans.len(), 1, "the included template is not a pipeline of its own");
        let outcome = check_pipeline(&scans[0], advisories::embedded(), None, None).await;
        assert_eq!(outcome.findings.len(), 1);
        assert_eq!(
            outcome.extra["references"],
            json!([
                {"task": "NuGetCommand", "version": "2.244.1", "file": "azure-pipelines.yml", "line": 3, "column": 9},
                {"task": "Docker", "version": "2", "file": "build-azure-pipelines.yml", "line": 2, "column": 9}
            ])
        );
        let given = scan_pipelines(&files, How::Given, dir.path());
        assert_eq!(given.len(), 2);
        // Two files that include each other: the first found stays a pipeline.
        std::fs::write(dir.path().join("build-azure-pipelines.yml"), "steps:\n- template: azure-pipelines.yml\n")
            .unwrap();
        let files = discover::conventional(dir.path());
        let scans = scan_pipelines(&files, How::Conventional, dir.path());
        assert_eq!(scans.iter().map(|s| s.display.as_str()).collect::<Vec<_>>(), ["azure-pipelines.yml"]);
    }
}
