//! The `tasks` check: finds the pipeline files, every task reference in them and in the local
//! templates they include, and matches each against the advisory database and the built-in
//! task index (and, online, the organization's installed task versions). One report entry
//! per pipeline file, carrying every reference in `references`.

pub mod advice;
pub mod advisories;
pub mod config;
pub mod discover;
pub mod fix;
pub mod index;
pub mod patterns;
pub mod reference;
pub mod resolve;
pub mod scan;
pub mod shared;
pub mod templates;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};

use self::advice::{Advice, Facts, Identity};
use self::advisories::refresh::{self, Refresh, RunDb};
use self::advisories::AdvisoryDb;
use self::config::{pattern_input, TasksConfig};
use self::discover::{Discovered, How, PipelineFile, SourcesRoot};
use self::resolve::{Lookup, Resolver};
use self::templates::{Collection, PipelineScan};
use crate::advisory_update::AdvisoryUpdate;
use crate::check::family::{Family, Network};
use crate::check::{Context, LateRemedy, TargetOutcome};
use crate::codes::Code;
use crate::codes::Severity;
use crate::finding::{Finding, Location};
use crate::report::AdvisoryDbInfo;
use crate::sanitize::sanitize;
use crate::settings::{CheckId, Settings};

/// The tasks family: one job that finds the pipeline files and checks each (see `Family`
/// below for why one job).
pub struct TasksCheck {
    config: Arc<TasksConfig>,
    /// What the job is doing, for the remedy when it misses the deadline.
    stage: Arc<AtomicU8>,
}

impl TasksCheck {
    pub fn new(config: Arc<TasksConfig>) -> Self {
        TasksCheck { config, stage: Arc::new(AtomicU8::new(Stage::Definition as u8)) }
    }
}

/// The report entry for what concerns the search as a whole (nothing found, files skipped).
const FILES_TARGET: &str = "pipeline files";
/// TSK010 findings listed one by one for found links out of the sources folder; the rest
/// are counted in one more.
const MAX_LISTED_OUTSIDE: usize = 20;
/// Pipelines checked at once: their online lookups share one cache, so this only bounds
/// how many are in flight.
const CONCURRENT_PIPELINES: usize = 8;

/// What the tasks job was doing, for the remedy when it misses the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Stage {
    /// Asking Azure DevOps for the definition's YAML file name.
    Definition,
    /// Finding, reading and scanning files on this agent.
    Scanning,
    /// Matching references, asking the organization for its task versions when online.
    Advising,
}

// Finding and reading the pipeline files is local work that can be large (a monorepo,
// `**/*.yml`, generated YAML). It used to run in planning, before the deadline applied. Options:
// (a) a job per file after discovery: discovery itself is the slow part;
// (b) find the files in this phase's job and check them in `after`: those jobs would wait
//     for every network check of the first phase and lose their time to it;
// (c) one job that finds, reads and checks the files and reports one entry per file
//     (`TargetOutcome::entries`). Chosen: the smallest change that keeps the report's
//     shape and puts everything under the deadline. Its cost: a run that misses the
//     deadline reports one RUN001 for "pipeline files" rather than per-file results.
impl Family for TasksCheck {
    /// The one job has no target of its own: it reports the files it finds.
    type Target = ();
    const ID: CheckId = CheckId::Tasks;
    // Offline, it leaves out the organization's task versions and the advisory refresh and
    // says so in its findings; the files are still checked.
    const NETWORK: Network = Network::Local;
    const NOTHING_TO_CHECK: Option<(&'static str, &'static str)> = None;

    fn targets(&self) -> Vec<()> {
        vec![()]
    }

    fn name(&self, _: &()) -> String {
        FILES_TARGET.to_string()
    }

    async fn check_one(self: Arc<Self>, ctx: Arc<Context>, _: ()) -> TargetOutcome {
        run(ctx, self.config.clone(), self.stage.clone()).await
    }

    fn late_remedy(&self, ctx: &Context, _: &()) -> Option<LateRemedy> {
        let stage = self.stage.clone();
        let sources = ctx.settings.sources_dir.display().to_string();
        let is_online = online(ctx);
        Some(Box::new(move |secs| late_remedy(stage.load(Ordering::Relaxed), &sources, is_online, secs)))
    }
}

fn late_remedy(stage: u8, sources: &str, is_online: bool, secs: u64) -> String {
    let raise = format!("If the work is just large, raise `timeoutSeconds` (task) or `--timeout` (CLI) above {secs}.");
    if stage == Stage::Definition as u8 {
        format!(
            "The check was still asking Azure DevOps for the pipeline definition's YAML file. Find out why the \
             collection is slow or unreachable from this agent (firewall, proxy), or name the pipeline files with \
             `pipelineFiles` / `--pipeline`. {raise}"
        )
    } else if stage == Stage::Scanning as u8 || !is_online {
        format!(
            "The time went on finding and reading pipeline files under {} on this agent, not on the network. \
             Name the pipeline files with `pipelineFiles` (task) or `--pipeline` (CLI) instead of searching the \
             whole sources folder, and keep generated or vendored YAML out of the search. {raise}",
            sanitize(sources)
        )
    } else {
        format!(
            "The check was asking the organization for its installed task versions. Find out why the Azure \
             DevOps collection is slow or unreachable from this agent (firewall, proxy), or check offline \
             (`offline: true` / `--offline`). {raise}"
        )
    }
}

/// Sets a flag when dropped: the job was cancelled at the deadline (or finished), so the
/// blocking search it started stops instead of running on unobserved.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The tasks check as one job: find the files, read and scan them off the async workers,
/// then check each pipeline. The advisory database is refreshed meanwhile (when asked): it
/// starts with the job, so its bounded wait never adds to a long search.
async fn run(ctx: Arc<Context>, config: Arc<TasksConfig>, stage: Arc<AtomicU8>) -> TargetOutcome {
    let (searched, used) = tokio::join!(search(&ctx, &config, &stage), run_db(&ctx, &config));
    let planned = match searched {
        Ok(done) => done,
        Err(skipped) => return skipped,
    };
    let db = with_files(used, &config);
    stage.store(Stage::Advising as u8, Ordering::Relaxed);
    let resolver = resolver(&ctx);
    let agent_version = ctx.settings.agent_version.as_deref();
    let (scans, db, resolver) = (&planned.scans, &db, resolver.as_ref());
    let mut entries: Vec<(String, TargetOutcome)> = Vec::new();
    if refreshes(&ctx.settings) {
        let about_db = TargetOutcome {
            findings: used.note.iter().cloned().collect(),
            proven: vec![used.proven.clone()],
            ..Default::default()
        };
        entries.push((DATABASE_TARGET.to_string(), about_db));
    }
    entries.extend(
        stream::iter(0..scans.len())
            .map(|i| async move {
                let scan = &scans[i];
                (scan.display.clone(), check_pipeline(scan, db, agent_version, resolver).await)
            })
            .buffered(CONCURRENT_PIPELINES)
            .collect::<Vec<_>>()
            .await,
    );
    entries = shared::one_finding_per_place(entries);
    if !planned.notes.is_empty() || scans.is_empty() || planned.found.is_some() {
        let mut about_files = TargetOutcome { findings: planned.notes, ..Default::default() };
        about_files.proven.extend(planned.found);
        if scans.is_empty() {
            about_files.skipped = Some(no_files_reason(&ctx.settings.sources_dir));
        }
        entries.push((FILES_TARGET.to_string(), about_files));
    }
    TargetOutcome { entries, ..Default::default() }
}

/// Finds and scans the pipeline files off the async workers; `Err` is the outcome to report
/// instead (a skip).
async fn search(ctx: &Arc<Context>, config: &Arc<TasksConfig>, stage: &AtomicU8) -> Result<Planned, TargetOutcome> {
    let definition = definition_name(ctx).await;
    stage.store(Stage::Scanning as u8, Ordering::Relaxed);
    let cancel = CancelOnDrop(Arc::new(AtomicBool::new(false)));
    let (flag, search_ctx, config) = (cancel.0.clone(), ctx.clone(), config.clone());
    let searched =
        tokio::task::spawn_blocking(move || find_and_scan(&search_ctx.settings, &config, definition.as_deref(), &flag))
            .await;
    drop(cancel);
    match searched {
        Ok(done) => Ok(done),
        Err(join) => match join.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => Err(TargetOutcome::skip("the search for pipeline files was cancelled")),
        },
    }
}

/// The report entry that says which advisory database was used (present when the run tried
/// to refresh it).
pub const DATABASE_TARGET: &str = "advisory database";

/// Whether this run asks for the published advisory document.
fn refreshes(settings: &Settings) -> bool {
    !settings.offline && matches!(settings.advisory_update, AdvisoryUpdate::Fetch(_))
}

/// How long the refresh may take: a few seconds, and never more than a quarter of the run's
/// deadline, so the work that waits for it still finishes in time.
pub fn refresh_wait(timeout: Duration) -> Duration {
    refresh::MAX_WAIT.min(timeout / 4)
}

/// The run's advisory database: refreshed when asked (once per run), else the embedded one.
pub async fn run_db<'a>(ctx: &Context, config: &'a TasksConfig) -> &'a RunDb {
    config
        .run_db
        .get_or_init(|| async {
            let AdvisoryUpdate::Fetch(url) = &ctx.settings.advisory_update else { return RunDb::embedded() };
            if !refreshes(&ctx.settings) {
                return RunDb::embedded();
            }
            let refresh = Refresh {
                http: &ctx.http,
                url,
                cache_dir: ctx.settings.advisory_cache_dir.as_deref(),
                wait: refresh_wait(ctx.settings.timeout),
            };
            refresh.run().await
        })
        .await
}

/// The run's database with the organization's advisory files (read once, when the run's
/// input was validated) merged over it.
pub fn with_files(used: &RunDb, config: &TasksConfig) -> AdvisoryDb {
    let mut db = used.db.clone();
    for advisory in &config.org_advisories {
        db.merge(advisory.clone());
    }
    db
}

fn no_files_reason(sources_dir: &Path) -> String {
    format!(
        "no pipeline file found under {}: looked for {}, and for .yml/.yaml files whose top level holds \
         steps, jobs, stages or extends (outside {}); name the files with pipelineFiles / --pipeline",
        sources_dir.display(),
        discover::CONVENTIONAL.join(", "),
        discover::DISCOVERY_SKIPPED_DIRS.join(", ")
    )
}

/// The embedded database's size and newest update, for the report header.
pub fn advisory_db_info() -> Option<AdvisoryDbInfo> {
    let info = RunDb::embedded().info;
    (!info.updated.is_empty()).then_some(info)
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

/// The files to scan: given patterns; else the pipeline definition's YAML file (`definition`,
/// asked for online); else the conventional names. Stops at `MAX_PIPELINE_FILES` or when
/// `cancel` is set.
pub fn find_files(
    settings: &Settings,
    config: &TasksConfig,
    root: &SourcesRoot,
    definition: Option<&str>,
    cancel: &AtomicBool,
) -> (Discovered, How) {
    if let Some(given) = &config.given {
        return (given.clone(), How::Given);
    }
    if let Some(name) = definition {
        if let Some(file) = discover::definition_file(&settings.sources_dir, name) {
            return (Discovered { files: vec![file], ..Default::default() }, How::Definition);
        }
        tracing::debug!("the definition's YAML file {name} is not under the sources folder");
    }
    (discover::conventional_within(root, cancel), How::Conventional)
}

/// What the search found: the pipelines to check, and notes about files left out.
pub struct Planned {
    pub scans: Vec<PipelineScan>,
    /// TSK010 for found links out of the sources folder, TSK007 when a cap stopped the search
    /// or a given pattern matched nothing.
    pub notes: Vec<Finding>,
    /// Discovery only: how many files were found and how, in one line.
    pub found: Option<String>,
}

/// Finds the pipeline files, reads them and their templates, and says what was left out.
pub fn find_and_scan(
    settings: &Settings,
    config: &TasksConfig,
    definition: Option<&str>,
    cancel: &AtomicBool,
) -> Planned {
    let root = SourcesRoot::new(&settings.sources_dir);
    let (found, how) = find_files(settings, config, &root, definition, cancel);
    let collection = Collection::read_within(&found.files, &root, cancel);
    let scans = pipelines_of(&collection, &found.files, how, cancel);
    let found_line = (how == How::Conventional).then(|| found_summary(&found, scans.len()));
    let mut notes = Vec::new();
    for pattern in &found.empty_patterns {
        notes.push(
            Finding::new(
                Code::TSK007,
                format!(
                    "{} `{}` matched no file under {}; the files the other patterns matched were checked",
                    pattern_input(settings),
                    sanitize(pattern),
                    settings.sources_dir.display()
                ),
            )
            .remedy("Remove the pattern, or correct it if it was meant to match (globs are relative to the sources folder).")
            .data("pattern", sanitize(pattern)),
        );
    }
    if found.probes_capped {
        notes.push(
            Finding::new(
                Code::TSK007,
                format!(
                    "discovery looked inside {} YAML files under {} and stopped there; YAML files beyond them were \
                     found by name only",
                    discover::MAX_PROBES,
                    settings.sources_dir.display()
                ),
            )
            .remedy("Name the pipeline files with pipelineFiles (task) or --pipeline (CLI), for example `.pipelines/*.yml`.")
            .data("limit", discover::MAX_PROBES),
        );
    }
    for (display, real) in found.outside.iter().take(MAX_LISTED_OUTSIDE) {
        notes.push(
            Finding::new(
                Code::TSK010,
                format!(
                    "{} is a link that leads outside the sources folder (to {}); it was not read",
                    sanitize(display),
                    sanitize(&real.display().to_string())
                ),
            )
            .severity(Severity::Warning)
            .remedy("Replace the link with the file itself, or leave it out of pipelineFiles / --pipeline.")
            .at(Location::new(sanitize(display), 1, 1))
            .data("resolved", sanitize(&real.display().to_string())),
        );
    }
    if found.outside.len() > MAX_LISTED_OUTSIDE {
        notes.push(
            Finding::new(
                Code::TSK010,
                format!(
                    "…and {} more links that lead outside the sources folder were not read",
                    found.outside.len() - MAX_LISTED_OUTSIDE
                ),
            )
            .severity(Severity::Warning)
            .remedy("Replace the links with the files themselves."),
        );
    }
    if found.capped {
        notes.push(
            Finding::new(
                Code::TSK007,
                format!(
                    "more than {} pipeline files matched under {}; the search stopped there and the rest were not checked",
                    discover::MAX_PIPELINE_FILES,
                    settings.sources_dir.display()
                ),
            )
            .remedy(
                "Name the pipeline files with pipelineFiles (task) or --pipeline (CLI), for example \
                 `.azuredevops/*.yml`, instead of a glob or search that matches generated or vendored YAML.",
            )
            .data("limit", discover::MAX_PIPELINE_FILES),
        );
    }
    if collection.capped {
        notes.push(
            Finding::new(
                Code::TSK007,
                format!(
                    "the pipelines and their templates came to more than {} files; the templates beyond that were not read",
                    templates::MAX_FILES
                ),
            )
            .remedy("Check fewer pipeline files per run with pipelineFiles / --pipeline.")
            .data("limit", templates::MAX_FILES),
        );
    }
    Planned { scans, notes, found: found_line }
}

/// "12 pipeline files found (3 by name, 9 by content); 7 are templates, reported through the
/// pipelines that include them".
fn found_summary(found: &Discovered, pipelines: usize) -> String {
    let n = found.files.len();
    let mut line = format!(
        "{n} pipeline file{} found ({} by name, {} by content)",
        if n == 1 { "" } else { "s" },
        found.by_name,
        found.by_content
    );
    let templates = n.saturating_sub(pipelines);
    if templates > 0 {
        line.push_str(&if templates == 1 {
            "; 1 is a template, reported through the pipelines that include it".to_string()
        } else {
            format!("; {templates} are templates, reported through the pipelines that include them")
        });
    }
    line
}

/// Asks for the definition's YAML file name, online and when the run knows its definition.
pub async fn definition_name(ctx: &Context) -> Option<String> {
    if !online(ctx) || !ctx.settings.pipeline_patterns.is_empty() {
        return None;
    }
    let lookup = discover::DefinitionLookup {
        http: &ctx.http,
        collection: ctx.endpoints.devops.as_ref()?,
        project: ctx.settings.project.as_deref()?,
        definition_id: ctx.settings.definition_id.as_deref()?,
        token: ctx.settings.job_token.as_ref()?,
    };
    let limit = ctx.settings.timeout.min(Duration::from_secs(15));
    let result = match tokio::time::timeout(limit, discover::definition_yaml(lookup)).await {
        Ok(result) => result,
        Err(_) => Err("the build definitions API did not answer in time".into()),
    };
    match result {
        Ok(name) => Some(name),
        Err(why) => {
            tracing::debug!("pipeline definition lookup failed: {why}");
            None
        }
    }
}

/// Reads every pipeline file and its templates. Found by convention, a file that another
/// found file includes is a template, not a pipeline of its own.
pub fn scan_pipelines(files: &[PipelineFile], how: How, sources_dir: &Path) -> Vec<PipelineScan> {
    let collection = Collection::read(files, sources_dir);
    pipelines_of(&collection, files, how, &AtomicBool::new(false))
}

fn pipelines_of(collection: &Collection, files: &[PipelineFile], how: How, cancel: &AtomicBool) -> Vec<PipelineScan> {
    // Gathering a pipeline's references through its templates is work of its own on a large
    // repository: spread over the cores like the reading.
    let scans: Vec<PipelineScan> = templates::in_parallel(files, cancel, |f| collection.pipeline(f));
    if how == How::Given {
        return scans;
    }
    let paths: Vec<std::path::PathBuf> = files.iter().map(|f| collection.key(&f.path)).collect();
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
    // A large pipeline names the same few tasks hundreds of times. What the rules say of a
    // reference depends on its value, on the inputs some advisory is narrowed by, and on our
    // own comments on its lines (a pin marker, a suppression). So a reference without such a
    // comment, alike in value and those inputs to one that drew no advice, draws none either
    // and is not judged again. Whether its task resolved is remembered with it.
    let mut narrowing: Vec<&str> = db
        .advisories
        .iter()
        .filter_map(|a| a.applies_when.as_ref())
        .flat_map(|when| when.inputs.keys().map(String::as_str))
        .collect();
    // Several advisories narrow by the same input: each name is looked for once per input.
    narrowing.sort_unstable_by_key(|name| name.to_ascii_lowercase());
    narrowing.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    // Value, narrowing inputs and whether its task resolved, of each reference that drew no
    // advice. A pipeline names a few distinct tasks, so a short list searched in order beats
    // hashing every reference; it stops growing at `QUIET_MAX` so that a pipeline of thousands
    // of distinct values is not searched quadratically.
    const QUIET_MAX: usize = 64;
    type Quiet<'s> = (&'s str, Vec<(&'s str, &'s str)>, bool);
    let mut quiet: Vec<Quiet<'_>> = Vec::new();
    for found in &scan.references {
        let raw = found.raw();
        let value = found.value();
        let marked = found.file.has_own_comment(raw.line) || found.file.has_own_comment(raw.step_line);
        // Empty for most steps, and then without an allocation.
        let narrowed: Vec<(&str, &str)> =
            found.inputs().filter(|(name, _)| narrowing.iter().any(|n| name.eq_ignore_ascii_case(n))).collect();
        let alike = |(seen_value, seen_narrowed, _): &&Quiet<'_>| *seen_value == value && *seen_narrowed == narrowed;
        if let Some(&(_, _, was_resolved)) = quiet.iter().find(alike).filter(|_| !marked) {
            resolved += usize::from(was_resolved);
            continue;
        }
        let identity = advice::identify(value, facts.index);
        let lookup = match (resolver, &identity) {
            (Some(r), Ok(Identity { task_id: Some(id), .. })) => Some(r.lookup(id).await),
            _ => None,
        };
        let found_in_org = matches!(lookup, Some(Lookup::Found(_)));
        resolved += usize::from(found_in_org);
        let said = advice::advise_identified(found, &facts, identity, lookup.as_ref());
        if said.is_empty() && !marked && quiet.len() < QUIET_MAX {
            quiet.push((value, narrowed, found_in_org));
        }
        advice.extend(said);
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
            let value = r.value().trim();
            let (task, version) = value.rsplit_once('@').unwrap_or((value, ""));
            json!({
                "task": crate::sanitize::sanitize(task),
                "version": crate::sanitize::sanitize(version),
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
    use crate::check::Check;

    #[test]
    fn a_late_search_is_blamed_on_local_work_not_the_network() {
        let scanning = late_remedy(Stage::Scanning as u8, "/src", true, 60);
        assert!(scanning.contains("finding and reading pipeline files under /src on this agent, not on the network"));
        assert!(scanning.contains("`pipelineFiles`") && scanning.contains("above 60"));
        assert!(!scanning.contains("firewall"));
        let offline = late_remedy(Stage::Advising as u8, "/src", false, 60);
        assert_eq!(offline, scanning, "offline, matching is local work too");
        assert!(late_remedy(Stage::Advising as u8, "/src", true, 60).contains("installed task versions"));
        assert!(late_remedy(Stage::Definition as u8, "/src", true, 60).contains("pipeline definition"));
    }

    #[tokio::test]
    async fn the_search_runs_in_the_job_and_stops_when_the_job_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("azure-pipelines.yml"), "steps:\n- task: Docker@2\n").unwrap();
        let ctx = crate::check::test_context(&[("BUILD_SOURCESDIRECTORY", dir.path().to_str().unwrap())]);
        let jobs = crate::check::family::FamilyCheck::new(TasksCheck::new(Arc::default())).plan(&ctx);
        assert_eq!(jobs.len(), 1, "planning does no file work: one job");
        assert!(jobs[0].late_remedy.is_some());
        let outcome = jobs.into_iter().next().unwrap().work.await;
        let targets: Vec<&str> = outcome.entries.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(targets, ["azure-pipelines.yml", "pipeline files"]);
        assert_eq!(outcome.entries[1].1.proven, ["1 pipeline file found (1 by name, 0 by content)"]);
        // Cancelled: the walk ends at once.
        let cancelled = AtomicBool::new(true);
        let root = SourcesRoot::new(dir.path());
        assert!(discover::conventional_within(&root, &cancelled).files.is_empty());
    }

    #[test]
    fn db_info_counts_embedded_advisories() {
        let info = advisory_db_info().unwrap();
        assert_eq!(info.advisories, advisories::embedded_files().len());
        assert!(info.advisories >= 32, "{}", info.advisories);
        assert_eq!(info.updated.len(), 10);
    }

    /// References alike in value and narrowing inputs are judged once; our own comments on a
    /// line (a suppression, a pin marker) and a narrowing input make a reference judged again.
    #[tokio::test]
    async fn alike_references_are_judged_once_but_comments_and_inputs_still_count() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("azure-pipelines.yml"),
            "steps:\n\
             - task: Docker@2\n\
             - task: NuGetCommand@2.244.1  # azp-preflight: ignore[TSK001]\n\
             - task: NuGetCommand@2.244.1\n\
             - task: Docker@2\n\
             - task: AzureIoTEdge@2.241.1\n  inputs:\n    action: Build module images\n\
             - task: AzureIoTEdge@2.241.1\n  inputs:\n    action: Push module images\n",
        )
        .unwrap();
        let files = discover::conventional(dir.path());
        let scans = scan_pipelines(&files, How::Conventional, dir.path());
        let (advice, _) = advise_pipeline(&scans[0], advisories::embedded(), None, None).await;
        let at: Vec<(Code, u32)> =
            advice.iter().map(|a| (a.finding.code, a.finding.location.as_ref().map_or(0, |l| l.line))).collect();
        // The suppressed NuGetCommand line says nothing; the same value on the next line still
        // draws its advisory. The push step (line 9) draws the push-only regression that the
        // build step (line 6) does not, although both name AzureIoTEdge@2.241.1.
        assert!(at.contains(&(Code::TSK001, 4)), "{at:?}");
        assert!(!at.iter().any(|&(_, line)| line == 3), "{at:?}");
        assert!(at.contains(&(Code::TSK001, 9)) && !at.contains(&(Code::TSK001, 6)), "{at:?}");
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
