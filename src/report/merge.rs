//! `azp-preflight report merge`: the reports of the shards of one organisation scan made into
//! one report, as if one unsharded scan had run. Shards split the work, never the meaning:
//! entries are pooled, coverage and throttling summed, and the result recomputed from the
//! pooled findings. Mixing organisations or overlapping shards would make a report that
//! claims what nobody scanned, so both are refused; a missing shard is said (ORG005), not
//! hidden.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::org::{Coverage, OrgRun, Scope, Shard, Throttled};
use super::Report;
use crate::check::{CheckResult, TargetOutcome};
use crate::cli::FailOn;
use crate::codes::Code;
use crate::finding::Finding;
use crate::input_error::InputError;
use crate::settings::CheckId;

/// The expected form, said in every refusal of a file.
const EXPECTED_REPORT: &str =
    "the JSON report of one shard of an organisation scan (`azp-preflight org --report`, schema azp-preflight/report/v1 with `scope`)";

/// The target of the ORG005 entry: it is about the set of shards, not one project.
pub const SHARDS_TARGET: &str = "shards";

/// Reads and merges the shard report files: every problem of every file together (a file
/// that is not a report does not hide that two others overlap).
pub fn merge_files(paths: &[impl AsRef<Path>], fail_on: FailOn) -> Result<Report, Vec<InputError>> {
    let (reports, mut problems) = read_reports(paths, fail_on);
    match merge(reports, fail_on) {
        Ok(report) if problems.is_empty() => Ok(report),
        Ok(_) => Err(problems),
        Err(more) => {
            // "No file" says nothing new when every file was refused already.
            if problems.is_empty() || !more.iter().all(|e| e.value == NO_FILE) {
                problems.extend(more);
            }
            Err(problems)
        }
    }
}

const NO_FILE: &str = "(no file)";

/// Reads every file, each as a report: the reports read and the problems of the others.
fn read_reports(paths: &[impl AsRef<Path>], fail_on: FailOn) -> (Vec<(String, Report)>, Vec<InputError>) {
    let mut problems = Vec::new();
    let mut reports = Vec::new();
    for path in paths {
        let path = path.as_ref();
        let name = path.display().to_string();
        let text = match crate::fsread::read_to_string(path, crate::fsread::limits::REPORT) {
            Ok(text) => text,
            Err(e) => {
                problems.push(InputError::new("report merge", &name, &format!("{EXPECTED_REPORT}; {e}")));
                continue;
            }
        };
        let value: Value = match serde_json::from_str(&text) {
            Ok(value) => value,
            Err(e) => {
                problems.push(InputError::new(&name, &format!("not JSON ({e})"), EXPECTED_REPORT));
                continue;
            }
        };
        match super::read::from_json(&name, &value, fail_on) {
            Ok(report) => reports.push((name, report)),
            Err(errors) => problems.extend(errors),
        }
    }
    (reports, problems)
}

/// An organisation URL as compared between shards: `https://dev.azure.com/Contoso/` and
/// `https://dev.azure.com/contoso` are the same organisation.
fn organisation_key(url: &str) -> String {
    url.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// Merges shard reports (named by their files) into one report.
pub fn merge(reports: Vec<(String, Report)>, fail_on: FailOn) -> Result<Report, Vec<InputError>> {
    let mut problems = Vec::new();
    let mut scoped = Vec::new();
    for (name, report) in reports {
        match &report.org {
            None => {
                problems.push(InputError::new(&name, "a report without `scope` (a pipeline's run)", EXPECTED_REPORT))
            }
            Some(org) if !org.scope.merged.is_empty() => problems.push(InputError::new(
                &name,
                &format!("an already merged report (of shards {:?})", org.scope.merged),
                &format!("{EXPECTED_REPORT}; merge the shard reports themselves"),
            )),
            Some(_) => scoped.push((name, report)),
        }
    }
    let Some((first_name, first)) = scoped.first() else {
        if problems.is_empty() {
            problems.push(InputError::new("report merge", NO_FILE, "one or more shard report files"));
        }
        return Err(problems);
    };
    let first_scope = first.org.as_ref().map(|o| o.scope.clone()).ok_or_else(Vec::new)?;
    let count = first_scope.shard.count;
    let mut by_index: BTreeMap<u32, &str> = BTreeMap::new();
    for (name, report) in &scoped {
        let Some(org) = &report.org else { continue };
        let scope = &org.scope;
        if organisation_key(&scope.organization) != organisation_key(&first_scope.organization) {
            problems.push(InputError::new(
                &format!("{name} (scope.organization)"),
                &scope.organization,
                &format!("the organisation of the other shards, {} (as in {first_name})", first_scope.organization),
            ));
            continue;
        }
        if scope.shard.count != count {
            problems.push(InputError::new(
                &format!("{name} (scope.shard)"),
                &format!("{}/{}", scope.shard.index, scope.shard.count),
                &format!("a shard of {count} like {first_name}: shards of different splits overlap"),
            ));
            continue;
        }
        if let Some(other) = by_index.insert(scope.shard.index, name) {
            problems.push(InputError::new(
                &format!("{name} (scope.shard)"),
                &format!("{}/{count}", scope.shard.index),
                &format!("a shard no other file has; {other} is shard {}/{count} too", scope.shard.index),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let merged: Vec<u32> = by_index.keys().copied().collect();
    let missing: Vec<u32> = (1..=count).filter(|i| !by_index.contains_key(i)).collect();
    Ok(pool(scoped.into_iter().map(|(_, r)| r).collect(), first_scope, merged, missing, fail_on))
}

/// Pools the checked, consistent shard reports.
fn pool(reports: Vec<Report>, scope: Scope, merged: Vec<u32>, missing: Vec<u32>, fail_on: FailOn) -> Report {
    let count = scope.shard.count;
    let mut coverage = Coverage::default();
    let mut throttled = Throttled::default();
    let mut checks: Vec<CheckResult> = Vec::new();
    let mut duration = std::time::Duration::ZERO;
    let mut advisory_db = None;
    for report in reports {
        if let Some(org) = report.org {
            // Every shard reads every project (only connections and pipelines are split), so
            // the projects seen are the most any shard saw, not their sum.
            coverage.projects = coverage.projects.max(org.coverage.projects);
            coverage.connections += org.coverage.connections;
            coverage.pipelines += org.coverage.pipelines;
            coverage.runs += org.coverage.runs;
            for gap in org.coverage.not_covered {
                // Every shard lists the projects it could not read; one line each is enough.
                if !coverage.not_covered.contains(&gap) {
                    coverage.not_covered.push(gap);
                }
            }
            throttled.seconds += org.throttled.seconds;
            throttled.responses += org.throttled.responses;
        }
        // Shards run at once: the merged run took as long as the slowest.
        duration = duration.max(report.duration);
        advisory_db = advisory_db.or(report.advisory_db);
        checks.extend(report.checks);
    }
    if !missing.is_empty() {
        checks.push(missing_shards_entry(&merged, &missing, count));
    }
    checks.sort_by(|a, b| (a.check.as_str(), &a.target).cmp(&(b.check.as_str(), &b.target)));
    // The same entry from two shards (a project every shard tried and could not read) once.
    checks.dedup_by(|later, kept| same_entry(later, kept));
    let shard = if missing.is_empty() { Shard::WHOLE } else { Shard { index: merged[0], count } };
    let scope = Scope { organization: scope.organization, shard, merged };
    let mut report = Report::new(checks, duration, fail_on, advisory_db, &crate::secret::Redactor::default());
    report.org = Some(OrgRun { scope, coverage, throttled });
    report
}

fn same_entry(a: &CheckResult, b: &CheckResult) -> bool {
    let findings = |r: &CheckResult| -> Vec<(Code, String)> {
        r.findings.iter().map(|f| (f.code, f.message.clone())).collect::<Vec<_>>()
    };
    a.check == b.check
        && a.target == b.target
        && a.status == b.status
        && a.extra == b.extra
        && a.run == b.run
        && a.proven == b.proven
        && findings(a) == findings(b)
}

/// The ORG005 entry naming the missing shards.
fn missing_shards_entry(merged: &[u32], missing: &[u32], count: u32) -> CheckResult {
    let list = |indices: &[u32]| indices.iter().map(|i| format!("{i}/{count}")).collect::<Vec<_>>();
    let merged_text = list(merged);
    let missing_text = list(missing);
    let (missing_word, verb) = if missing.len() == 1 { ("shard", "is") } else { ("shards", "are") };
    let finding = Finding::new(
        Code::ORG005,
        format!(
            "the merge has the reports of {} {}; {missing_word} {} {verb} missing, so the part of the organisation {} not scanned",
            if merged.len() == 1 { "shard" } else { "shards" },
            merged_text.join(", "),
            missing_text.join(", "),
            if missing.len() == 1 { "it covers was" } else { "they cover was" },
        ),
    )
    .remedy("Rerun the failed shard jobs (their logs say why no report was published), then merge all the reports again.")
    .data("missing", missing_text)
    .data("merged", merged_text);
    let outcome = TargetOutcome { findings: vec![finding], ..Default::default() };
    CheckResult::from_outcome(CheckId::Runs, SHARDS_TARGET.into(), std::time::Duration::ZERO, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::org::NotCovered;
    use crate::report::RunResult;
    use serde_json::json;
    use std::time::Duration;

    fn shard_report(org: &str, index: u32, count: u32, targets: &[&str], findings: Vec<Finding>) -> Report {
        let mut checks: Vec<CheckResult> = targets
            .iter()
            .map(|t| CheckResult::from_outcome(CheckId::Connections, t.to_string(), Duration::ZERO, Default::default()))
            .collect();
        if !findings.is_empty() {
            let outcome = TargetOutcome { findings, ..Default::default() };
            checks.push(CheckResult::from_outcome(CheckId::Runs, format!("p/pipe-{index}"), Duration::ZERO, outcome));
        }
        let mut report = Report::new(
            checks,
            Duration::from_millis(100 * u64::from(index)),
            FailOn::Error,
            None,
            &Default::default(),
        );
        report.org = Some(OrgRun {
            scope: Scope { organization: org.into(), shard: Shard { index, count }, merged: vec![] },
            coverage: Coverage {
                projects: 1,
                connections: targets.len() as u64,
                pipelines: 10,
                runs: 5,
                not_covered: vec![NotCovered { scope: "secret-project".into(), reason: "403".into() }],
            },
            throttled: Throttled { seconds: 1.5, responses: 2 },
        });
        report
    }

    const ORG: &str = "https://dev.azure.com/contoso/";

    #[test]
    fn all_shards_merge_into_one_unsharded_report() {
        let reports = vec![
            ("b.json".to_string(), shard_report(ORG, 2, 2, &["p/b-conn", "p/a-conn"], vec![])),
            ("a.json".to_string(), shard_report("https://dev.azure.com/Contoso", 1, 2, &["p/c-conn"], vec![])),
        ];
        let merged = merge(reports, FailOn::Error).unwrap();
        let org = merged.org.as_ref().unwrap();
        assert_eq!(org.scope.shard, Shard::WHOLE);
        assert_eq!(org.scope.merged, [1, 2]);
        assert_eq!((org.coverage.connections, org.coverage.pipelines, org.coverage.runs), (3, 20, 10));
        assert_eq!(org.coverage.not_covered.len(), 1);
        assert_eq!((org.throttled.seconds, org.throttled.responses), (3.0, 4));
        let targets: Vec<&str> = merged.checks.iter().map(|c| c.target.as_str()).collect();
        assert_eq!(targets, ["p/a-conn", "p/b-conn", "p/c-conn"]);
        assert_eq!(merged.result(), RunResult::Pass);
        assert_eq!(merged.duration, Duration::from_millis(200));
        let json = super::super::json::to_value(&merged);
        assert_eq!(json["scope"], json!({"organization": ORG, "shard": {"index": 1, "count": 1}, "merged": [1, 2]}));
    }

    #[test]
    fn missing_shards_are_named_and_make_the_result_at_least_warn() {
        let reports: Vec<(String, Report)> = [1, 2, 4]
            .into_iter()
            .map(|i| (format!("s{i}.json"), shard_report(ORG, i, 4, &[&format!("p/conn-{i}")], vec![])))
            .collect();
        let merged = merge(reports, FailOn::Error).unwrap();
        assert_eq!(merged.result(), RunResult::Warn);
        let (entry, finding) = merged.findings().next().unwrap();
        assert_eq!((entry.check, entry.target.as_str(), finding.code), (CheckId::Runs, SHARDS_TARGET, Code::ORG005));
        assert_eq!(finding.data["missing"], json!(["3/4"]));
        assert!(finding.message.contains("shard 3/4 is missing"), "{}", finding.message);
        let org = merged.org.unwrap();
        assert_eq!((org.scope.shard, org.scope.merged), (Shard { index: 1, count: 4 }, vec![1, 2, 4]));
    }

    #[test]
    fn findings_count_and_fail_like_a_run() {
        let tsk = Finding::new(Code::TSK001, "ran AzureIoTEdge 2.241.1");
        let reports = vec![
            ("a.json".to_string(), shard_report(ORG, 1, 2, &[], vec![tsk])),
            ("b.json".to_string(), shard_report(ORG, 2, 2, &[], vec![])),
        ];
        let merged = merge(reports, FailOn::Error).unwrap();
        assert!(merged.fails_threshold());
        assert_eq!(merged.counts().error, 1);
    }

    #[test]
    fn other_organisations_overlaps_and_plain_runs_are_refused_together() {
        let mut plain = shard_report(ORG, 1, 1, &[], vec![]);
        plain.org = None;
        let reports = vec![
            ("a.json".to_string(), shard_report(ORG, 1, 4, &[], vec![])),
            ("b.json".to_string(), shard_report("https://dev.azure.com/fabrikam/", 2, 4, &[], vec![])),
            ("c.json".to_string(), shard_report(ORG, 1, 4, &[], vec![])),
            ("d.json".to_string(), shard_report(ORG, 2, 3, &[], vec![])),
            ("e.json".to_string(), plain),
        ];
        let errors: Vec<String> = merge(reports, FailOn::Error).unwrap_err().iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 4, "{errors:#?}");
        assert!(errors[0].starts_with("e.json: `a report without `scope`"), "{errors:#?}");
        assert!(errors[1].contains("b.json (scope.organization): `https://dev.azure.com/fabrikam/`"), "{errors:#?}");
        assert!(errors[2].contains("c.json (scope.shard): `1/4`") && errors[2].contains("a.json is shard 1/4"));
        assert!(errors[3].contains("d.json (scope.shard): `2/3`") && errors[3].contains("a shard of 4"));
    }
}
