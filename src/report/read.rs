//! Reading a JSON report (schema `azp-preflight/report/v1`) back into a [`Report`], so that
//! `report merge` can render shard reports in any format. The JSON is outside input: every
//! problem becomes an [`InputError`] naming the file, the value and the expected form, and
//! all of a file's problems are reported together.

use std::time::Duration;

use serde_json::{Map, Value};

use super::org::{Coverage, OrgRun, Scope, Throttled};
use super::{AdvisoryDbInfo, AdvisorySource, Report};
use crate::check::run::{RunRecord, TaskInterner};
use crate::check::{CheckResult, Status};
use crate::cli::FailOn;
use crate::codes::{Code, Severity};
use crate::finding::{Finding, Location};
use crate::input_error::InputError;
use crate::settings::CheckId;

/// The top-level fields schema v1 defines; anything else is not a report this version wrote.
const TOP_LEVEL: &[&str] = &[
    "schema",
    "tool",
    "advisoryDb",
    "advisoryDatabase",
    "scope",
    "coverage",
    "throttled",
    "result",
    "counts",
    "durationMs",
    "checks",
];

/// The fields of a check entry this module reads; the others are the family's own extra
/// fields (`connection`, `run`, `references`, ...) and are kept as they are.
const ENTRY_FIELDS: &[&str] = &["check", "target", "status", "reason", "durationMs", "proven", "findings"];

const FINDING_FIELDS: &[&str] = &["code", "severity", "title", "message", "remedy", "location", "data", "help"];

/// Collects the problems of one file, each naming the file and where in it.
struct Problems<'a> {
    file: &'a str,
    found: Vec<InputError>,
}

impl Problems<'_> {
    fn add(&mut self, at: &str, value: &Value, expected: &str) {
        let shown = match value {
            Value::String(s) => s.clone(),
            Value::Null => "(missing)".to_string(),
            other => {
                let text = other.to_string();
                if text.chars().count() > 80 {
                    format!("{}…", text.chars().take(80).collect::<String>())
                } else {
                    text
                }
            }
        };
        self.found.push(InputError::new(&format!("{} ({at})", self.file), &shown, expected));
    }

    fn string(&mut self, obj: &Map<String, Value>, key: &str, at: &str) -> String {
        match obj.get(key) {
            Some(Value::String(s)) => s.clone(),
            other => {
                self.add(&format!("{at}.{key}"), other.unwrap_or(&Value::Null), "a string");
                String::new()
            }
        }
    }

    fn number(&mut self, obj: &Map<String, Value>, key: &str, at: &str) -> u64 {
        match obj.get(key).and_then(Value::as_u64) {
            Some(n) => n,
            None => {
                self.add(&format!("{at}.{key}"), obj.get(key).unwrap_or(&Value::Null), "a whole number");
                0
            }
        }
    }

    fn unknown_fields(&mut self, obj: &Map<String, Value>, known: &[&str], at: &str) {
        for key in obj.keys().filter(|k| !known.contains(&k.as_str())) {
            self.add(at, &Value::String(key.clone()), &format!("only the fields {}", known.join(", ")));
        }
    }
}

/// Reads one JSON report. `file` names it in every problem.
pub fn from_json(file: &str, value: &Value, fail_on: FailOn) -> Result<Report, Vec<InputError>> {
    let mut p = Problems { file, found: Vec::new() };
    let Some(root) = value.as_object() else {
        p.add("document", value, "a JSON object: an azp-preflight report (schema azp-preflight/report/v1)");
        return Err(p.found);
    };
    if root.get("schema").and_then(Value::as_str) != Some(super::json::SCHEMA) {
        p.add("schema", root.get("schema").unwrap_or(&Value::Null), "\"azp-preflight/report/v1\"");
        return Err(p.found);
    }
    p.unknown_fields(root, TOP_LEVEL, "top level");
    let org = read_org(&mut p, root);
    let advisory_db = root.get("advisoryDatabase").and_then(|v| read_advisory_db(&mut p, v));
    let duration = Duration::from_millis(p.number(root, "durationMs", "top level"));
    let mut checks = Vec::new();
    let tasks = TaskInterner::default();
    match root.get("checks").and_then(Value::as_array) {
        Some(entries) => {
            for (i, entry) in entries.iter().enumerate() {
                if let Some(result) = read_entry(&mut p, entry, &format!("checks[{i}]"), &tasks) {
                    checks.push(result);
                }
            }
        }
        None => p.add("checks", root.get("checks").unwrap_or(&Value::Null), "an array of check entries"),
    }
    if !p.found.is_empty() {
        return Err(p.found);
    }
    // The strings were redacted when the shard wrote them; nothing new to register here.
    let mut report = Report::new(checks, duration, fail_on, advisory_db, &crate::secret::Redactor::default());
    report.org = org;
    Ok(report)
}

fn read_org(p: &mut Problems<'_>, root: &Map<String, Value>) -> Option<OrgRun> {
    let scope = root.get("scope")?;
    let scope: Scope = match serde_json::from_value(scope.clone()) {
        Ok(scope) => scope,
        Err(e) => {
            p.add(
                "scope",
                scope,
                &format!("{{\"organization\": URL, \"shard\": {{\"index\": K, \"count\": N}}}} ({e})"),
            );
            return None;
        }
    };
    if scope.shard.index == 0 || scope.shard.index > scope.shard.count {
        p.add("scope.shard", &serde_json::json!(scope.shard), "1 ≤ index ≤ count");
    }
    let coverage = match root.get("coverage") {
        Some(v) => serde_json::from_value::<Coverage>(v.clone()).unwrap_or_else(|e| {
            p.add("coverage", v, &format!("{{projects, connections, pipelines, runs, notCovered}} ({e})"));
            Coverage::default()
        }),
        None => Coverage::default(),
    };
    let throttled = match root.get("throttled") {
        Some(v) => serde_json::from_value::<Throttled>(v.clone()).unwrap_or_else(|e| {
            p.add("throttled", v, &format!("{{seconds, responses}} ({e})"));
            Throttled::default()
        }),
        None => Throttled::default(),
    };
    Some(OrgRun { scope, coverage, throttled })
}

fn read_advisory_db(p: &mut Problems<'_>, value: &Value) -> Option<AdvisoryDbInfo> {
    let Some(obj) = value.as_object() else {
        p.add("advisoryDatabase", value, "an object {source, generated, advisories}");
        return None;
    };
    let source = match obj.get("source").and_then(Value::as_str) {
        Some("embedded") => AdvisorySource::Embedded,
        Some("fetched") => AdvisorySource::Fetched,
        Some("cache") => AdvisorySource::Cache,
        _ => {
            p.add("advisoryDatabase.source", obj.get("source").unwrap_or(&Value::Null), "embedded, fetched or cache");
            AdvisorySource::Embedded
        }
    };
    Some(AdvisoryDbInfo {
        advisories: p.number(obj, "advisories", "advisoryDatabase") as usize,
        updated: p.string(obj, "generated", "advisoryDatabase"),
        source,
        url: obj.get("url").and_then(Value::as_str).map(str::to_string),
    })
}

fn read_entry(p: &mut Problems<'_>, entry: &Value, at: &str, tasks: &TaskInterner) -> Option<CheckResult> {
    let Some(obj) = entry.as_object() else {
        p.add(at, entry, "an object: a check entry");
        return None;
    };
    let check_name = p.string(obj, "check", at);
    let check = CheckId::from_report_name(&check_name);
    if check.is_none() {
        p.add(&format!("{at}.check"), &Value::String(check_name), "a check family such as connections or runs");
    }
    let target = p.string(obj, "target", at);
    let status = match obj.get("status").and_then(Value::as_str) {
        Some("pass") => Status::Pass,
        Some("warn") => Status::Warn,
        Some("fail") => Status::Fail,
        Some("skip") => Status::Skip,
        _ => {
            p.add(&format!("{at}.status"), obj.get("status").unwrap_or(&Value::Null), "pass, warn, fail or skip");
            Status::Pass
        }
    };
    let reason = obj.get("reason").and_then(Value::as_str).map(str::to_string);
    let duration = Duration::from_millis(p.number(obj, "durationMs", at));
    let proven = match obj.get("proven") {
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            items.iter().filter_map(Value::as_str).map(str::to_string).collect()
        }
        None => Vec::new(),
        Some(other) => {
            p.add(&format!("{at}.proven"), other, "an array of strings");
            Vec::new()
        }
    };
    let mut findings = Vec::new();
    match obj.get("findings") {
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if let Some(f) = read_finding(p, item, &format!("{at}.findings[{i}]")) {
                    findings.push(f);
                }
            }
        }
        None => {}
        Some(other) => p.add(&format!("{at}.findings"), other, "an array of findings"),
    }
    // A `run` field in the shape this version writes is held typed, as the scan holds it.
    let run = obj.get("run").and_then(|v| RunRecord::from_value(v, tasks)).map(Box::new);
    let typed = |key: &str| ENTRY_FIELDS.contains(&key) || (run.is_some() && key == "run");
    let extra: Map<String, Value> =
        obj.iter().filter(|(k, _)| !typed(k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
    Some(CheckResult { check: check?, target, status, reason, duration, findings, proven, extra, run })
}

fn read_finding(p: &mut Problems<'_>, value: &Value, at: &str) -> Option<Finding> {
    let Some(obj) = value.as_object() else {
        p.add(at, value, "an object: a finding");
        return None;
    };
    p.unknown_fields(obj, FINDING_FIELDS, at);
    let code_text = p.string(obj, "code", at);
    let code = Code::parse(&code_text);
    if code.is_none() {
        p.add(
            &format!("{at}.code"),
            &Value::String(code_text),
            "a finding code this version knows (`azp-preflight explain all` lists them)",
        );
    }
    let severity = match obj.get("severity").and_then(Value::as_str) {
        Some("error") => Severity::Error,
        Some("warning") => Severity::Warning,
        Some("note") => Severity::Note,
        _ => {
            p.add(&format!("{at}.severity"), obj.get("severity").unwrap_or(&Value::Null), "error, warning or note");
            Severity::Note
        }
    };
    let location = match obj.get("location") {
        None | Some(Value::Null) => None,
        Some(Value::Object(loc)) => {
            let file = p.string(loc, "file", &format!("{at}.location"));
            let line = p.number(loc, "line", &format!("{at}.location"));
            let column = p.number(loc, "column", &format!("{at}.location"));
            Some(Location::new(
                file,
                u32::try_from(line).unwrap_or(u32::MAX),
                u32::try_from(column).unwrap_or(u32::MAX),
            ))
        }
        Some(other) => {
            p.add(&format!("{at}.location"), other, "null or {file, line, column}");
            None
        }
    };
    let data = match obj.get("data") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(other) => {
            p.add(&format!("{at}.data"), other, "an object");
            Map::new()
        }
    };
    let title = p.string(obj, "title", at);
    let message = p.string(obj, "message", at);
    let remedy = obj.get("remedy").and_then(Value::as_str).unwrap_or_default().to_string();
    let code = code?;
    let mut finding = Finding::new(code, message).severity(severity).remedy(remedy);
    finding.title = title;
    finding.location = location;
    finding.data = data.into();
    Some(finding)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    #[test]
    fn a_report_reads_back_as_itself() {
        let original = fixtures::report(FailOn::Error);
        let json = super::super::json::to_value(&original);
        let read = from_json("a.json", &json, FailOn::Error).unwrap();
        assert_eq!(super::super::json::to_value(&read), json);
    }

    #[test]
    fn unknown_codes_fields_and_foreign_documents_name_the_file() {
        let mut json = super::super::json::to_value(&fixtures::report(FailOn::Error));
        json["checks"][0]["findings"][0]["code"] = "XYZ999".into();
        json["checks"][1]["findings"][0]["colour"] = "red".into();
        json["surprise"] = true.into();
        let errors = from_json("shard-2.json", &json, FailOn::Error).unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 3, "{text:#?}");
        assert!(text.iter().all(|t| t.starts_with("shard-2.json (")), "{text:#?}");
        assert!(text.iter().any(|t| t.contains("`XYZ999`")), "{text:#?}");
        assert!(text.iter().any(|t| t.contains("`colour`")), "{text:#?}");
        assert!(text.iter().any(|t| t.contains("`surprise`")), "{text:#?}");
        let other = from_json("x.json", &serde_json::json!({"schema": "other/v2"}), FailOn::Error).unwrap_err();
        assert!(other[0].to_string().contains("azp-preflight/report/v1"), "{:?}", other);
    }
}
