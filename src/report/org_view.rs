//! What the HTML and markdown renderers show of an organisation report, computed once: the
//! connections with their credential's urgency, and the task versions run across the
//! organisation with the advisories that affect them. Read from the report entries'
//! `connection` and `run` fields (ORG-CONTRACT); a field that is missing or of another type
//! shows as unknown rather than failing the rendering.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::Report;
use crate::check::CheckResult;
use crate::codes::Code;
use crate::settings::CheckId;

// The codes this module reads, by name: it reads findings other modules made and emits none
// (each code's page names the files that mention `Code::<CODE>` as its emitters).
const EXPIRED: &str = "IDN001";
const ERROR_WINDOW: &str = "IDN005";
const WARNING_WINDOW: &str = "IDN006";
const AFFECTED_VERSION: &str = "TSK001";

/// How close a connection's credential is to its end, from the findings the scan made (so the
/// windows are the scan's own `--expiry-*-days`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Window {
    Expired,
    /// Within the error window (IDN005).
    Error,
    /// Within the warning window (IDN006).
    Warning,
    /// Known end date, outside both windows.
    Later,
    /// The end date was not read from Graph: nothing is proven.
    NotProven,
    /// Nothing that expires (federation, managed identity, no credential).
    NoExpiry,
}

impl Window {
    pub fn label(self) -> &'static str {
        match self {
            Window::Expired => "expired",
            Window::Error => "error window",
            Window::Warning => "warning window",
            Window::Later => "later",
            Window::NotProven => "not proven",
            Window::NoExpiry => "no expiry",
        }
    }
}

/// One connection as the reports show it.
#[derive(Debug, Clone)]
pub struct ConnectionRow {
    /// `<project>/<connection>`.
    pub target: String,
    pub kind: String,
    pub scheme: String,
    pub expires_on: Option<String>,
    pub days_left: Option<i64>,
    pub window: Window,
    /// The codes found on the connection (IDN001, ORG001, ...), worst first.
    pub codes: Vec<Code>,
}

impl ConnectionRow {
    /// The order of urgency: expired, then fewest days left, then not proven, then the rest.
    fn urgency(&self) -> (u8, i64) {
        match self.window {
            Window::Expired => (0, self.days_left.unwrap_or(i64::MIN)),
            Window::Error | Window::Warning | Window::Later => (1, self.days_left.unwrap_or(i64::MAX)),
            Window::NotProven => (2, 0),
            Window::NoExpiry => (3, 0),
        }
    }
}

/// One task version run somewhere in the organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskVersionRow {
    pub task: String,
    pub version: String,
    /// `<project>/<pipeline>` of every run that executed it.
    pub pipelines: BTreeSet<String>,
    /// Advisory ids from the TSK001 findings about this version.
    pub advisories: BTreeSet<String>,
}

/// The connections of the report, most urgent first.
pub fn connections(report: &Report) -> Vec<ConnectionRow> {
    let mut rows: Vec<ConnectionRow> =
        report.checks.iter().filter(|c| c.check == CheckId::Connections).map(connection_row).collect();
    rows.sort_by(|a, b| a.urgency().cmp(&b.urgency()).then_with(|| a.target.cmp(&b.target)));
    rows
}

fn connection_row(entry: &CheckResult) -> ConnectionRow {
    let connection = entry.extra.get("connection").cloned().unwrap_or(Value::Null);
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let credential = &connection["credential"];
    let kind = text(&credential["kind"]);
    let days_left = credential["daysLeft"].as_i64();
    let proven = credential["proven"].as_bool().unwrap_or(false);
    let has = |code: &str| entry.findings.iter().any(|f| f.code.as_str() == code);
    let window = if has(EXPIRED) || days_left.is_some_and(|d| d < 0) {
        Window::Expired
    } else if matches!(kind.as_str(), "federation" | "managedIdentity" | "none") {
        Window::NoExpiry
    } else if !proven || days_left.is_none() {
        Window::NotProven
    } else if has(ERROR_WINDOW) {
        Window::Error
    } else if has(WARNING_WINDOW) {
        Window::Warning
    } else {
        Window::Later
    };
    let mut codes: Vec<(crate::codes::Severity, Code)> = entry.findings.iter().map(|f| (f.severity, f.code)).collect();
    codes.sort_by(|a, b| b.cmp(a));
    codes.dedup();
    ConnectionRow {
        target: entry.target.clone(),
        kind,
        scheme: text(&connection["scheme"]),
        expires_on: credential["expiresOn"].as_str().map(str::to_string),
        days_left,
        window,
        codes: codes.into_iter().map(|(_, c)| c).collect(),
    }
}

/// The task versions that ran, by task name (case-insensitive) then version.
pub fn task_versions(report: &Report) -> Vec<TaskVersionRow> {
    let mut rows: BTreeMap<(String, String), TaskVersionRow> = BTreeMap::new();
    for entry in report.checks.iter().filter(|c| c.check == CheckId::Runs) {
        let ran: Vec<(&str, &str)> = match (&entry.run, entry.extra.get("run")) {
            (Some(run), _) => run.tasks.iter().map(|t| (t.name.as_str(), t.version.as_str())).collect(),
            (None, Some(run)) => run["tasks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| Some((t["name"].as_str()?, t["version"].as_str()?)))
                .collect(),
            (None, None) => continue,
        };
        for (name, version) in ran {
            let row = rows.entry((name.to_ascii_lowercase(), version.to_string())).or_insert_with(|| TaskVersionRow {
                task: name.to_string(),
                version: version.to_string(),
                pipelines: BTreeSet::new(),
                advisories: BTreeSet::new(),
            });
            row.pipelines.insert(entry.target.clone());
            for f in entry.findings.iter().filter(|f| f.code.as_str() == AFFECTED_VERSION) {
                let same_version = f.data.get("version").and_then(Value::as_str) == Some(version);
                let same_task = f.data.get("task").and_then(Value::as_str).is_none_or(|t| t.eq_ignore_ascii_case(name));
                if let (true, true, Some(advisory)) =
                    (same_version, same_task, f.data.get("advisory").and_then(Value::as_str))
                {
                    row.advisories.insert(advisory.to_string());
                }
            }
        }
    }
    rows.into_values().collect()
}

/// Connections by window, for the summaries' headline.
pub fn window_counts(rows: &[ConnectionRow]) -> BTreeMap<Window, usize> {
    let mut counts = BTreeMap::new();
    for row in rows {
        *counts.entry(row.window).or_insert(0) += 1;
    }
    counts
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! An organisation report built to the contract by hand, shared by the HTML and markdown
    //! tests: every window, a hostile connection name, task versions with an advisory.
    use std::time::Duration;

    use serde_json::json;

    use crate::check::{CheckResult, TargetOutcome};
    use crate::cli::FailOn;
    use crate::codes::Code;
    use crate::finding::Finding;
    use crate::report::org::{Coverage, NotCovered, OrgRun, Scope, Shard, Throttled};
    use crate::report::Report;
    use crate::settings::CheckId;

    fn connection(
        project: &str,
        name: &str,
        kind: &str,
        expires: Option<(&str, i64)>,
        proven: bool,
    ) -> serde_json::Value {
        json!({
            "id": "0f5e7a52-7d7c-4bd0-9c1e-2b5f0c3a9d11", "name": name, "project": project, "type": "azurerm",
            "scheme": if kind == "federation" { "WorkloadIdentityFederation" } else { "ServicePrincipal" },
            "isReady": true, "appId": "46e6adf4-a9cf-4b60-9390-0ba6fb00bf6b", "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "credential": {"kind": kind, "expiresOn": expires.map(|e| e.0), "daysLeft": expires.map(|e| e.1), "proven": proven},
            "lastUsed": "2026-11-30"
        })
    }

    fn entry(check: CheckId, target: &str, findings: Vec<Finding>, key: &str, extra: serde_json::Value) -> CheckResult {
        let mut outcome = TargetOutcome { findings, ..Default::default() };
        outcome.extra.insert(key.into(), extra);
        CheckResult::from_outcome(check, target.into(), Duration::from_millis(5), outcome)
    }

    fn run(id: u64, tasks: &[(&str, &str)]) -> serde_json::Value {
        let tasks: Vec<_> = tasks
            .iter()
            .map(|(n, v)| json!({"id": "1f1a9a2c-0b0e-4b8f-8c39-6f1bd3c2a001", "name": n, "version": v}))
            .collect();
        json!({"definitionId": id, "buildId": 9000 + id, "buildNumber": format!("2026.12.{id}"),
               "url": format!("https://dev.azure.com/contoso/Shop/_build/results?buildId={}", 9000 + id),
               "finished": "2026-12-02T21:14:00Z", "tasks": tasks})
    }

    pub fn report() -> Report {
        let c = CheckId::Connections;
        let checks = vec![
            entry(
                c,
                "Shop/later-conn",
                vec![],
                "connection",
                connection("Shop", "later-conn", "secret", Some(("2027-01-20", 48)), true),
            ),
            entry(
                c,
                "Shop/prod-arm",
                vec![Finding::new(Code::IDN001, "the client secret expired on 2026-11-30, 2 days ago")],
                "connection",
                connection("Shop", "prod-arm", "secret", Some(("2026-11-30", -2)), true),
            ),
            entry(c, "Shop/wif-conn", vec![], "connection", connection("Shop", "wif-conn", "federation", None, false)),
            entry(
                c,
                "Shop/<script>alert('x')</script> \"conn\"",
                vec![Finding::new(
                    Code::IDN006,
                    "secret expires 2026-12-20, in 18 days ##vso[task.setvariable variable=x]1",
                )],
                "connection",
                connection("Shop", "<script>alert('x')</script> \"conn\"", "secret", Some(("2026-12-20", 18)), true),
            ),
            entry(
                c,
                "Edge/edge-acr",
                vec![Finding::new(Code::IDN005, "certificate expires 2026-12-06, in 4 days")],
                "connection",
                connection("Edge", "edge-acr", "certificate", Some(("2026-12-06", 4)), true),
            ),
            entry(c, "Edge/unproven", vec![], "connection", connection("Edge", "unproven", "secret", None, false)),
            entry(
                CheckId::Runs,
                "Edge/edge-build",
                vec![Finding::new(Code::TSK001, "run 9001 executed AzureIoTEdge 2.241.1, which breaks pushes")
                    .data("buildId", 9001)
                    .data("url", "https://dev.azure.com/contoso/Edge/_build/results?buildId=9001")
                    .data("version", "2.241.1")
                    .data("advisory", "AZP-ADV-0002")],
                "run",
                run(1, &[("AzureIoTEdge", "2.241.1"), ("Docker", "2.247.1")]),
            ),
            entry(CheckId::Runs, "Shop/web", vec![], "run", run(2, &[("Docker", "2.247.1"), ("AzureCLI", "2.250.0")])),
        ];
        let mut report = Report::new(checks, Duration::from_millis(93_500), FailOn::Error, None, &Default::default());
        report.org = Some(OrgRun {
            scope: Scope {
                organization: "https://dev.azure.com/contoso/".into(),
                shard: Shard::WHOLE,
                merged: vec![1, 2, 3, 4],
            },
            coverage: Coverage {
                projects: 3,
                connections: 6,
                pipelines: 14,
                runs: 2,
                not_covered: vec![NotCovered {
                    scope: "Secret".into(),
                    reason: "the token may not read this project (403)".into(),
                }],
            },
            throttled: Throttled { seconds: 12.5, responses: 3 },
        });
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_sort_by_urgency_and_task_versions_carry_advisories() {
        let report = fixtures::report();
        let order: Vec<(String, Window)> = connections(&report).into_iter().map(|r| (r.target, r.window)).collect();
        let windows: Vec<Window> = order.iter().map(|o| o.1).collect();
        assert_eq!(
            windows,
            [Window::Expired, Window::Error, Window::Warning, Window::Later, Window::NotProven, Window::NoExpiry],
            "{order:#?}"
        );
        assert_eq!(order[0].0, "Shop/prod-arm");
        let tasks = task_versions(&report);
        let docker = tasks.iter().find(|t| t.task == "Docker").unwrap();
        assert_eq!(docker.pipelines.len(), 2);
        let edge = tasks.iter().find(|t| t.task == "AzureIoTEdge").unwrap();
        assert_eq!(edge.advisories.iter().collect::<Vec<_>>(), ["AZP-ADV-0002"]);
        assert!(tasks.iter().find(|t| t.task == "AzureCLI").unwrap().advisories.is_empty());
    }
}
