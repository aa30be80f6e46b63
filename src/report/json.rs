//! The JSON report, schema `azp-preflight/report/v1`. Built as explicit JSON
//! so internal types can change without changing the contract.

use std::io::{self, Write};

use serde_json::{json, Map, Value};

use super::{AdvisoryDbInfo, Report};
use crate::check::CheckResult;
use crate::finding::Finding;

pub const SCHEMA: &str = "azp-preflight/report/v1";

pub fn to_value(report: &Report) -> Value {
    let mut root = header(report);
    root.insert("checks".into(), Value::Array(report.checks.iter().map(check_entry).collect()));
    Value::Object(root)
}

/// Every top-level field but `checks`.
fn header(report: &Report) -> Map<String, Value> {
    let counts = report.counts();
    let mut root = Map::new();
    root.insert("schema".into(), json!(SCHEMA));
    root.insert("tool".into(), json!({"name": "azp-preflight", "version": report.version}));
    if let Some(db) = &report.advisory_db {
        root.insert("advisoryDb".into(), json!({"advisories": db.advisories, "updated": db.updated}));
        root.insert("advisoryDatabase".into(), advisory_database(db));
    }
    if let Some(org) = &report.org {
        root.insert("scope".into(), json!(org.scope));
        root.insert("coverage".into(), json!(org.coverage));
        root.insert("throttled".into(), json!(org.throttled));
    }
    root.insert("result".into(), json!(report.result().as_str()));
    root.insert("counts".into(), json!({"error": counts.error, "warning": counts.warning, "note": counts.note}));
    root.insert("durationMs".into(), json!(report.duration.as_millis() as u64));
    root
}

/// The report as `to_value` gives it, written one entry at a time: an organisation's report
/// has tens of thousands of entries, and a whole tree of them would double the memory the
/// report already takes. The fields come in the same (sorted) order, so the bytes are the same.
struct Streamed<'a>(&'a Report);

/// `checks`, one entry built at a time.
struct Entries<'a>(&'a Report);

impl serde::Serialize for Entries<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.checks.iter().map(check_entry))
    }
}

impl serde::Serialize for Streamed<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let header = header(self.0);
        let mut map = serializer.serialize_map(Some(header.len() + 1))?;
        let mut checks_written = false;
        for (key, value) in &header {
            if !checks_written && key.as_str() > "checks" {
                map.serialize_entry("checks", &Entries(self.0))?;
                checks_written = true;
            }
            map.serialize_entry(key, value)?;
        }
        if !checks_written {
            map.serialize_entry("checks", &Entries(self.0))?;
        }
        map.end()
    }
}

/// The `advisoryDatabase` report field. Built here, with the rest of the report, so that
/// the report does not depend on the tasks check that decides which database is used.
fn advisory_database(info: &AdvisoryDbInfo) -> Value {
    let mut v = json!({"source": info.source.as_str(), "generated": info.updated, "advisories": info.advisories});
    if let Some(url) = &info.url {
        v["url"] = json!(url);
    }
    v
}

fn check_entry(r: &CheckResult) -> Value {
    let mut entry = Map::new();
    entry.insert("check".into(), json!(r.check.as_str()));
    entry.insert("target".into(), json!(r.target));
    entry.insert("status".into(), json!(r.status.as_str()));
    if let Some(reason) = &r.reason {
        entry.insert("reason".into(), json!(reason));
    }
    entry.insert("durationMs".into(), json!(r.duration.as_millis() as u64));
    entry.insert("proven".into(), json!(r.proven));
    entry.insert("findings".into(), Value::Array(r.findings.iter().map(finding_entry).collect()));
    if let Some(run) = &r.run {
        entry.insert("run".into(), run.to_value());
    }
    for (k, v) in &r.extra {
        entry.entry(k.clone()).or_insert_with(|| v.clone());
    }
    Value::Object(entry)
}

fn finding_entry(f: &Finding) -> Value {
    json!({
        "code": f.code.as_str(),
        "severity": f.severity.as_str(),
        "title": f.title,
        "message": f.message,
        "remedy": f.remedy,
        "location": f.location,
        "data": f.data,
        "help": f.help,
    })
}

pub fn render(report: &Report, out: &mut impl Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &Streamed(report))?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::FailOn;
    use crate::report::fixtures;

    #[test]
    fn written_one_entry_at_a_time_the_bytes_are_those_of_the_whole_tree() {
        for report in [fixtures::report(FailOn::Error), crate::report::org_view::fixtures::report()] {
            let mut streamed = Vec::new();
            render(&report, &mut streamed).unwrap();
            let mut whole = serde_json::to_vec_pretty(&to_value(&report)).unwrap();
            whole.push(b'\n');
            assert_eq!(String::from_utf8(streamed).unwrap(), String::from_utf8(whole).unwrap());
        }
    }

    #[test]
    fn report_v1_shape() {
        let v = to_value(&fixtures::report(FailOn::Error));
        assert_eq!(v["schema"], SCHEMA);
        assert_eq!(v["tool"]["name"], "azp-preflight");
        assert_eq!(v["advisoryDb"], json!({"advisories": 16, "updated": "2026-11-21"}));
        assert_eq!(v["advisoryDatabase"], json!({"source": "embedded", "generated": "2026-11-21", "advisories": 16}));
        assert_eq!(v["result"], "fail");
        assert_eq!(v["counts"], json!({"error": 2, "warning": 1, "note": 1}));
        assert_eq!(v["durationMs"], 812);
        let checks = v["checks"].as_array().unwrap();
        assert_eq!(checks.len(), 4);
        assert_eq!(checks[0]["check"], "registry");
        assert_eq!(checks[0]["status"], "fail");
        assert_eq!(checks[3]["status"], "pass");
        let f = &checks[2]["findings"][0];
        assert_eq!(f["code"], "TSK001");
        assert_eq!(f["location"], json!({"file": "pipes/a;b]c%.yml", "line": 13, "column": 11}));
        assert_eq!(f["help"], "azp-preflight explain TSK001");
        assert_eq!(checks[0]["findings"][0]["location"], Value::Null);
        assert_eq!(checks[0]["findings"][0]["data"]["connection"], "edge-acr");
    }
}
