//! The run's results and every way of writing them. Renderers take `impl Write` and
//! never decide anything: result, counts and completion are computed here once.

pub mod github;
pub mod html;
pub mod human;
pub mod json;
pub mod markdown;
pub mod merge;
pub mod org;
pub mod org_view;
mod read;
pub mod sarif;
#[cfg(test)]
mod snapshot_tests;
pub mod vso;

use std::time::Duration;

pub use read::from_json;

use crate::check::CheckResult;
use crate::cli::FailOn;
use crate::codes::Severity;
use crate::finding::Finding;
use crate::secret::Redactor;

/// `PreflightResult`: the worst severity seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunResult {
    Pass,
    Warn,
    Fail,
}

impl RunResult {
    pub fn as_str(self) -> &'static str {
        match self {
            RunResult::Pass => "pass",
            RunResult::Warn => "warn",
            RunResult::Fail => "fail",
        }
    }
}

/// How the step ends (`task.complete result=`), consistent with the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    Succeeded,
    SucceededWithIssues,
    Failed,
}

impl Completion {
    pub fn as_str(self) -> &'static str {
        match self {
            Completion::Succeeded => "Succeeded",
            Completion::SucceededWithIssues => "SucceededWithIssues",
            Completion::Failed => "Failed",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub error: usize,
    pub warning: usize,
    pub note: usize,
}

/// Facts about the advisory database the run used, for the report header.
#[derive(Debug, Clone)]
pub struct AdvisoryDbInfo {
    pub advisories: usize,
    /// The database's date: the newest `updated` of its advisories (a published document's
    /// `generated`).
    pub updated: String,
    pub source: AdvisorySource,
    /// Where a fetched or cached document came from (no credentials, no query).
    pub url: Option<String>,
}

impl AdvisoryDbInfo {
    /// `embedded, 2026-11-22, 16 advisories` / `fetched from URL, ...`.
    pub fn describe(&self) -> String {
        let from = match (&self.url, self.source) {
            (Some(url), AdvisorySource::Fetched | AdvisorySource::Cache) => {
                format!("{} from {url}", self.source.as_str())
            }
            _ => self.source.as_str().to_string(),
        };
        format!("{from}, {}, {} advisories", self.updated, self.advisories)
    }
}

/// Which copy of the advisory database a run used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdvisorySource {
    /// Built into this binary.
    Embedded,
    /// The published document, fetched by this run.
    Fetched,
    /// The published document as an earlier run fetched it (unchanged, or unreachable now).
    Cache,
}

impl AdvisorySource {
    pub fn as_str(self) -> &'static str {
        match self {
            AdvisorySource::Embedded => "embedded",
            AdvisorySource::Fetched => "fetched",
            AdvisorySource::Cache => "cache",
        }
    }
}

#[derive(Debug)]
pub struct Report {
    pub version: &'static str,
    /// Organisation mode only: scope, coverage and throttling (`org.rs`).
    pub org: Option<org::OrgRun>,
    pub advisory_db: Option<AdvisoryDbInfo>,
    pub checks: Vec<CheckResult>,
    pub duration: Duration,
    pub fail_on: FailOn,
}

impl Report {
    /// Builds the report with every string passed through the redactor: whatever a check
    /// wrote, no registered secret survives into any renderer.
    pub fn new(
        mut checks: Vec<CheckResult>,
        duration: Duration,
        fail_on: FailOn,
        advisory_db: Option<AdvisoryDbInfo>,
        redactor: &Redactor,
    ) -> Report {
        for result in &mut checks {
            redactor.redact_in_place(&mut result.target);
            if let Some(reason) = &mut result.reason {
                redactor.redact_in_place(reason);
            }
            result.proven.iter_mut().for_each(|p| redactor.redact_in_place(p));
            for f in &mut result.findings {
                redact_finding(f, redactor);
            }
            let mut extra = serde_json::Value::Object(std::mem::take(&mut result.extra));
            redactor.redact_json(&mut extra);
            if let serde_json::Value::Object(map) = extra {
                result.extra = map;
            }
            if let Some(run) = &mut result.run {
                run.redact(redactor);
            }
        }
        Report { version: env!("CARGO_PKG_VERSION"), org: None, advisory_db, checks, duration, fail_on }
    }

    pub fn findings(&self) -> impl Iterator<Item = (&CheckResult, &Finding)> {
        self.checks.iter().flat_map(|c| c.findings.iter().map(move |f| (c, f)))
    }

    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for (_, f) in self.findings() {
            match f.severity {
                Severity::Error => counts.error += 1,
                Severity::Warning => counts.warning += 1,
                Severity::Note => counts.note += 1,
            }
        }
        counts
    }

    pub fn result(&self) -> RunResult {
        let c = self.counts();
        if c.error > 0 {
            RunResult::Fail
        } else if c.warning > 0 {
            RunResult::Warn
        } else {
            RunResult::Pass
        }
    }

    /// Whether any finding is at or above the `failOn` threshold.
    pub fn fails_threshold(&self) -> bool {
        let c = self.counts();
        match self.fail_on {
            FailOn::Error => c.error > 0,
            FailOn::Warning => c.error + c.warning > 0,
            FailOn::Never => false,
        }
    }

    pub fn completion(&self) -> Completion {
        let c = self.counts();
        if self.fails_threshold() {
            Completion::Failed
        } else if c.error + c.warning > 0 {
            Completion::SucceededWithIssues
        } else {
            Completion::Succeeded
        }
    }

    /// Findings ordered for display: errors first, then warnings, then notes; stable
    /// within a severity (report order). The agent keeps only 10 issues of each type.
    pub fn findings_by_severity(&self) -> Vec<(&CheckResult, &Finding)> {
        let mut all: Vec<_> = self.findings().collect();
        all.sort_by_key(|(_, f)| std::cmp::Reverse(f.severity));
        all
    }

    /// The advisory database, when the tasks check ran and used it (for the header lines of
    /// the human and markdown output; the JSON report always carries it).
    pub fn advisory_db_used(&self) -> Option<&AdvisoryDbInfo> {
        self.advisory_db.as_ref().filter(|_| self.checks.iter().any(|c| c.check == crate::settings::CheckId::Tasks))
    }

    pub fn check_count(&self) -> usize {
        let mut ids: Vec<_> = self.checks.iter().map(|c| c.check).collect();
        ids.dedup();
        ids.len()
    }
}

fn redact_finding(f: &mut Finding, redactor: &Redactor) {
    redactor.redact_in_place(&mut f.title);
    redactor.redact_in_place(&mut f.message);
    redactor.redact_in_place(&mut f.remedy);
    if let Some(loc) = &mut f.location {
        redactor.redact_in_place(&mut loc.file);
    }
    for value in f.data.values_mut() {
        redactor.redact_json(value);
    }
}

/// `1 error, 2 warnings, 1 note`.
pub fn counts_phrase(c: Counts) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!("{}, {}, {}", plural(c.error, "error"), plural(c.warning, "warning"), plural(c.note, "note"))
}

/// A finding's message followed by its remedy on one line: `message. Fix: remedy`.
pub fn with_remedy(message: &str, remedy: &str) -> String {
    if remedy.is_empty() {
        return message.to_string();
    }
    let stop = if message.trim_end().ends_with(['.', '!', '?', ':']) { "" } else { "." };
    format!("{}{stop} Fix: {remedy}", message.trim_end())
}

/// How a finding names where it is: `file:line:col` or `check target`.
pub fn place(result: &CheckResult, finding: &Finding) -> String {
    match &finding.location {
        Some(l) => format!("{}:{}:{}", l.file, l.line, l.column),
        None => format!("{} {}", result.check.as_str(), result.target),
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! A report with one of everything, shared by the renderer tests.
    use super::*;
    use crate::check::{CheckResult, TargetOutcome};
    use crate::codes::Code;
    use crate::finding::Location;
    use crate::settings::CheckId;

    pub fn report(fail_on: FailOn) -> Report {
        let registry = TargetOutcome {
            findings: vec![Finding::new(Code::REG009, "service connection `edge-acr` has an empty username")
                .remedy("Edit the connection; set the username.")
                .data("connection", "edge-acr")],
            ..Default::default()
        };
        let tasks = TargetOutcome {
            findings: vec![
                Finding::new(
                    Code::TSK001,
                    "AzureIoTEdge@2 resolves to 2.241.1; 50% of pushes fail; see ##vso[task.complete result=Succeeded]",
                )
                .remedy("Pin `- task: AzureIoTEdge@2.238.1`")
                .at(Location::new("pipes/a;b]c%.yml", 13, 11)),
                Finding::new(Code::TSK007, "`${{ parameters.task }}` is a template expression").at(Location::new(
                    "azure-pipelines.yml",
                    4,
                    9,
                )),
            ],
            ..Default::default()
        };
        let agent = TargetOutcome { proven: vec!["no injected profilers".into()], ..Default::default() };
        let identity = TargetOutcome {
            findings: vec![
                Finding::new(Code::IDN006, "secret expires 2026-12-09, in 17 days\nsecond line").remedy("Rotate it.")
            ],
            ..Default::default()
        };
        let checks = vec![
            CheckResult::from_outcome(
                CheckId::Registry,
                "contosoedge.azurecr.io/modules/filter (push)".into(),
                Duration::from_millis(120),
                registry,
            ),
            CheckResult::from_outcome(CheckId::Identity, "arm-conn".into(), Duration::from_millis(300), identity),
            CheckResult::from_outcome(CheckId::Tasks, "azure-pipelines.yml".into(), Duration::from_millis(4), tasks),
            CheckResult::from_outcome(CheckId::Agent, "local".into(), Duration::from_millis(1), agent),
        ];
        Report::new(
            checks,
            Duration::from_millis(812),
            fail_on,
            Some(AdvisoryDbInfo {
                advisories: 16,
                updated: "2026-11-21".into(),
                source: AdvisorySource::Embedded,
                url: None,
            }),
            &Redactor::default(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_counts_and_completion_follow_fail_on() {
        let r = fixtures::report(FailOn::Error);
        assert_eq!(r.counts(), Counts { error: 2, warning: 1, note: 1 });
        assert_eq!((r.result(), r.completion()), (RunResult::Fail, Completion::Failed));
        let never = fixtures::report(FailOn::Never);
        assert_eq!(never.completion(), Completion::SucceededWithIssues);
        let order: Vec<_> = r.findings_by_severity().iter().map(|(_, f)| f.code.as_str()).collect();
        assert_eq!(order, ["REG009", "TSK001", "IDN006", "TSK007"]);
    }

    #[test]
    fn report_strings_are_redacted() {
        let redactor = Redactor::default();
        redactor.register("s3cr3t-canary");
        let outcome = crate::check::TargetOutcome {
            findings: vec![
                Finding::new(crate::codes::Code::REG010, "server said s3cr3t-canary").data("body", "x s3cr3t-canary")
            ],
            ..Default::default()
        };
        let result = CheckResult::from_outcome(crate::settings::CheckId::Registry, "t".into(), Duration::ZERO, outcome);
        let r = Report::new(vec![result], Duration::ZERO, FailOn::Error, None, &redactor);
        let f = &r.checks[0].findings[0];
        assert_eq!(f.message, "server said ***");
        assert_eq!(f.data["body"], "x ***");
    }
}
