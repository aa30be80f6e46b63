//! `azp-preflight org`: one shard of an organisation scan. Lists the projects (all the
//! token can see, or the named ones), then per project the service connections and the
//! pipelines this shard owns (`Shard::owns("<projectId>/<id>")`, ids lower-cased), and turns
//! each into a report entry. A scope the token cannot read becomes ORG004 and a
//! `coverage.notCovered` line; work the deadline cut off is listed there too.

pub mod connections;
pub mod credentials;
pub mod runs;

use std::future::Future;
use std::time::Instant as StdInstant;

use futures_util::stream::{self, StreamExt};

use crate::azure::Services;
use crate::check::run::TaskInterner;
use crate::check::{CheckResult, TargetOutcome};
use crate::codes::Code;
use crate::devops::model::{lower, Project};
use crate::devops::{DevOpsClient, DevOpsError};
use crate::expiry::Windows;
use crate::finding::Finding;
use crate::report::org::{Coverage, NotCovered, Scope, Shard, Throttled};
use crate::settings::CheckId;
pub use credentials::GraphAccess;

/// What one scan covers and how.
#[derive(Debug, Clone)]
pub struct OrgOptions {
    /// Project names (`--project`); empty: every project the token can see.
    pub projects: Vec<String>,
    pub shard: Shard,
    pub since_days: u32,
    pub windows: Windows,
    pub deadline: tokio::time::Instant,
}

/// Everything the parts of a scan share.
pub struct Scan<'a> {
    pub client: &'a DevOpsClient,
    pub graph: &'a GraphAccess,
    pub services: Services<'a>,
    pub options: &'a OrgOptions,
    pub now: jiff::Timestamp,
    /// The task versions the runs executed, each held once across the report's entries.
    pub tasks: TaskInterner,
}

/// What became of one connection or pipeline.
pub enum Unit {
    Done {
        target: String,
        outcome: TargetOutcome,
    },
    /// The token could not read it.
    Missed {
        scope: String,
        reason: String,
    },
    /// The deadline came first.
    Late {
        scope: String,
    },
}

/// How many connections or runs of one project are worked on at once (the client's own
/// slots bound the requests).
const PER_PROJECT: usize = 16;
/// Projects worked on at once. Each project's first reads (its connections, its definitions,
/// the batch of latest builds) come one after the other, so more projects than that in flight
/// keep the client's request slots busy; the slots, not this, bound the requests.
const PROJECTS_AT_ONCE: usize = 16;

/// How long after the deadline a project's reads are given up whole. Each request inside ends
/// at the deadline itself and names the connection or run it cut off; a timer for the project
/// at the same instant could fire first (all of them fire together, and a busy task may have
/// used its turn), reporting the whole project instead of what it covered.
const BACKSTOP: std::time::Duration = std::time::Duration::from_millis(500);

async fn bounded<F: Future<Output = Unit>>(jobs: impl Iterator<Item = F>) -> Vec<Unit> {
    stream::iter(jobs).buffer_unordered(PER_PROJECT).collect().await
}

/// The scan's entries, coverage and throttling.
pub struct ScanResult {
    pub checks: Vec<CheckResult>,
    pub scope: Scope,
    pub coverage: Coverage,
    pub throttled: Throttled,
}

/// Why a scan produced nothing useful (exit 3).
#[derive(Debug)]
pub struct ScanFailed(pub String);

pub async fn scan(scan: &Scan<'_>) -> Result<ScanResult, ScanFailed> {
    let projects = projects(scan).await?;
    let mut coverage = Coverage::default();
    let mut checks: Vec<CheckResult> = Vec::new();
    let per_project = projects.iter().map(|project| async move {
        let started = StdInstant::now();
        // A project's connections and its runs are independent reads.
        let (conns, runs) = tokio::join!(
            tokio::time::timeout_at(scan.options.deadline + BACKSTOP, connections::scan_project(scan, project)),
            tokio::time::timeout_at(scan.options.deadline + BACKSTOP, runs::scan_project(scan, project)),
        );
        (project, started, conns, runs)
    });
    // Each project's entries join the report as the project finishes, so that the scan never
    // holds every project's entries twice.
    let mut finished = stream::iter(per_project).buffer_unordered(PROJECTS_AT_ONCE);
    while let Some((project, started, conns, runs)) = finished.next().await {
        coverage.projects += 1;
        // Project-level problems are reported by the shard that owns the project, once.
        let owns_project = scan.options.shard.owns(&lower(&project.id));
        let unreadable =
            |check: CheckId, what: &str, reason: String, checks: &mut Vec<CheckResult>, coverage: &mut Coverage| {
                if owns_project {
                    coverage
                        .not_covered
                        .push(NotCovered { scope: project.name.clone(), reason: format!("{what}: {reason}") });
                    checks.push(scope_unreadable(check, &project.name, what, &reason, started));
                }
            };
        let late = || "the deadline came first".to_string();
        match conns {
            Ok(Ok(units)) => collect(CheckId::Connections, units, &mut checks, &mut coverage, started),
            Ok(Err(reason)) => {
                unreadable(CheckId::Connections, "service connections", reason, &mut checks, &mut coverage)
            }
            Err(_) => unreadable(CheckId::Connections, "service connections", late(), &mut checks, &mut coverage),
        }
        match runs {
            Ok(Ok(found)) => {
                coverage.pipelines += found.pipelines;
                collect(CheckId::Runs, found.units, &mut checks, &mut coverage, started)
            }
            Ok(Err(reason)) => unreadable(CheckId::Runs, "pipelines", reason, &mut checks, &mut coverage),
            Err(_) => unreadable(CheckId::Runs, "pipelines", late(), &mut checks, &mut coverage),
        }
    }
    checks.sort_by(|a, b| (a.check.as_str(), &a.target).cmp(&(b.check.as_str(), &b.target)));
    coverage.not_covered.sort_by(|a, b| a.scope.cmp(&b.scope));
    let (seconds, responses) = scan.client.throttled();
    Ok(ScanResult {
        checks,
        scope: Scope {
            organization: scan.client.organization().to_string(),
            shard: scan.options.shard,
            merged: Vec::new(),
        },
        coverage,
        throttled: Throttled { seconds: (seconds * 1000.0).round() / 1000.0, responses },
    })
}

fn collect(
    check: CheckId,
    units: Vec<Unit>,
    checks: &mut Vec<CheckResult>,
    coverage: &mut Coverage,
    started: StdInstant,
) {
    for unit in units {
        match unit {
            Unit::Done { target, outcome } => {
                match check {
                    CheckId::Connections => coverage.connections += 1,
                    _ => coverage.runs += 1,
                }
                checks.push(CheckResult::from_outcome(check, target, started.elapsed(), outcome));
            }
            Unit::Missed { scope, reason } => coverage.not_covered.push(NotCovered { scope, reason }),
            Unit::Late { scope } => {
                coverage.not_covered.push(NotCovered { scope, reason: "the deadline came first".into() })
            }
        }
    }
}

/// ORG004: a scope the token could not read; its target is the scope.
fn scope_unreadable(check: CheckId, project: &str, what: &str, reason: &str, started: StdInstant) -> CheckResult {
    let mut outcome = TargetOutcome::default();
    outcome.findings.push(
        Finding::new(Code::ORG004, format!("The {what} of project `{project}` could not be read: {reason}."))
            .remedy("Give the scanning identity read access to the project (Project Reader, and Reader on its service connections), or leave the project out with --project.")
            .data("scope", project),
    );
    CheckResult::from_outcome(check, project.to_string(), started.elapsed(), outcome)
}

/// The projects to scan: every one the token can see, or the named ones (by name,
/// case-insensitively; a named project the listing does not show is scanned by name, so a
/// token that may not list projects can still scan the ones it may read).
async fn projects(scan: &Scan<'_>) -> Result<Vec<Project>, ScanFailed> {
    let listed = scan.client.projects().await;
    let wanted = &scan.options.projects;
    match (listed, wanted.is_empty()) {
        (Ok(all), true) => Ok(all.into_iter().filter(|p| !p.id.trim().is_empty()).collect()),
        (Ok(all), false) => Ok(wanted
            .iter()
            .map(|name| {
                all.iter().find(|p| p.name.eq_ignore_ascii_case(name)).cloned().unwrap_or_else(|| Project {
                    id: name.clone(),
                    name: name.clone(),
                    state: None,
                })
            })
            .collect()),
        (Err(_), false) => {
            Ok(wanted.iter().map(|name| Project { id: name.clone(), name: name.clone(), state: None }).collect())
        }
        (Err(e), true) => Err(ScanFailed(describe_listing_error(scan, &e))),
    }
}

fn describe_listing_error(scan: &Scan<'_>, e: &DevOpsError) -> String {
    format!(
        "cannot list the projects of {} with {} ({e}); check the token's scopes (Project and Team: Read, Service Connections: Read, Build: Read) or name the projects with --project",
        scan.client.organization(),
        scan.client.auth().describe()
    )
}
