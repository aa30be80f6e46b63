//! SARIF 2.1.0: one rule per finding code (with its documentation), one result per finding.

use std::io::{self, Write};

use serde_json::{json, Value};

use super::Report;
use crate::codes::Code;
use crate::codes::Severity;

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    }
}

pub fn to_value(report: &Report) -> Value {
    let rules: Vec<Value> = Code::ALL
        .iter()
        .map(|c| {
            json!({
                "id": c.as_str(),
                "name": c.title(),
                "shortDescription": {"text": c.title()},
                "help": {"text": c.doc()},
                "defaultConfiguration": {"level": level(c.default_severity())},
                "properties": {"check": c.family()},
            })
        })
        .collect();
    let results: Vec<Value> = report
        .findings()
        .map(|(r, f)| {
            let rule_index = Code::ALL.iter().position(|c| *c == f.code).unwrap_or(0);
            let mut result = json!({
                "ruleId": f.code.as_str(),
                "ruleIndex": rule_index,
                "level": level(f.severity),
                "message": {"text": super::with_remedy(&f.message, &f.remedy)},
                "properties": {"check": r.check.as_str(), "target": r.target, "remedy": f.remedy, "data": f.data},
            });
            let location = match &f.location {
                Some(l) => json!({"physicalLocation": {"artifactLocation": {"uri": l.file}, "region": {"startLine": l.line, "startColumn": l.column}}}),
                None => json!({"logicalLocations": [{"name": r.target, "kind": "resource", "fullyQualifiedName": format!("{}/{}", r.check.as_str(), r.target)}]}),
            };
            result["locations"] = json!([location]);
            result
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "azp-preflight", "version": report.version, "rules": rules}},
            "results": results,
        }]
    })
}

pub fn render(report: &Report, out: &mut impl Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &to_value(report))?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::FailOn;
    use crate::report::fixtures;

    #[test]
    fn sarif_rules_are_the_codes_and_results_point_at_them() {
        let v = to_value(&fixtures::report(FailOn::Error));
        assert_eq!(v["version"], "2.1.0");
        let run = &v["runs"][0];
        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        assert_eq!(rules.len(), Code::ALL.len());
        for result in run["results"].as_array().unwrap() {
            let idx = result["ruleIndex"].as_u64().unwrap() as usize;
            assert_eq!(rules[idx]["id"], result["ruleId"]);
        }
        let tsk = run["results"].as_array().unwrap().iter().find(|r| r["ruleId"] == "TSK001").unwrap();
        assert_eq!(tsk["locations"][0]["physicalLocation"]["region"], json!({"startLine": 13, "startColumn": 11}));
        assert_eq!(
            run["results"][0]["locations"][0]["logicalLocations"][0]["fullyQualifiedName"],
            "registry/contosoedge.azurecr.io/modules/filter (push)"
        );
    }
}
