//! One finding per place. Several pipelines often include the same template; each pipeline's
//! scan finds the template's problems again, and the report would print each once per
//! including pipeline (41 distinct problems became 166 lines in one real repository).
//!
//! Design: a finding is known by its place, (file, line, column, code). A finding in a file
//! that only one pipeline reaches stays in that pipeline's entry. A finding reached by several
//! pipelines is reported once, in the entry of the file it is in: that file's own entry when it
//! is a pipeline with an entry, else an entry named after the template (the entry's status then
//! belongs to the template, and a pipeline entry's status to what only it includes). Either
//! way the finding's `data.includedBy` lists the pipelines that reach it, in report order.

use std::collections::HashMap;

use serde_json::Value;

use crate::check::TargetOutcome;
use crate::codes::Code;

type Place = (String, u32, u32, Code);

/// Rewrites the per-pipeline entries so that every located finding appears once.
pub fn one_finding_per_place(entries: Vec<(String, TargetOutcome)>) -> Vec<(String, TargetOutcome)> {
    // Which entries reached each place, in order, each once.
    let mut reached: HashMap<Place, Vec<usize>> = HashMap::new();
    for (i, (_, outcome)) in entries.iter().enumerate() {
        for f in &outcome.findings {
            if let Some(loc) = &f.location {
                let by = reached.entry((loc.file.clone(), loc.line, loc.column, f.code)).or_default();
                // Entries are visited in order, so a repeat within one entry is the last.
                if by.last() != Some(&i) {
                    by.push(i);
                }
            }
        }
    }
    let targets: Vec<String> = entries.iter().map(|(t, _)| t.clone()).collect();
    let index_of: HashMap<&str, usize> = targets.iter().enumerate().map(|(i, t)| (t.as_str(), i)).collect();
    let mut out: Vec<(String, TargetOutcome)> = Vec::with_capacity(entries.len());
    let mut moved: Vec<Vec<crate::finding::Finding>> = vec![Vec::new(); entries.len()];
    let mut template_entries: Vec<(String, TargetOutcome)> = Vec::new();
    let mut template_index: HashMap<String, usize> = HashMap::new();
    let mut placed: std::collections::HashSet<Place> = std::collections::HashSet::new();
    for (i, (target, mut outcome)) in entries.into_iter().enumerate() {
        let mut kept = Vec::with_capacity(outcome.findings.len());
        for mut f in std::mem::take(&mut outcome.findings) {
            let Some(loc) = &f.location else {
                kept.push(f);
                continue;
            };
            let place = (loc.file.clone(), loc.line, loc.column, f.code);
            let by = &reached[&place];
            if loc.file != target || by.len() > 1 {
                let names: Vec<Value> = by.iter().map(|&e| Value::String(targets[e].clone())).collect();
                f.data.insert("includedBy".into(), Value::Array(names));
            }
            if by.len() == 1 {
                kept.push(f);
                continue;
            }
            if !placed.insert(place) {
                continue;
            }
            match index_of.get(loc.file.as_str()) {
                Some(&own) if own == i => kept.push(f),
                Some(&own) => moved[own].push(f),
                None => {
                    let file = loc.file.clone();
                    let at = *template_index.entry(file.clone()).or_insert_with(|| {
                        template_entries.push((file.clone(), TargetOutcome::default()));
                        template_entries.len() - 1
                    });
                    template_entries[at].1.findings.push(f);
                }
            }
        }
        outcome.findings = kept;
        out.push((target, outcome));
    }
    for (i, extra) in moved.into_iter().enumerate() {
        out[i].1.findings.extend(extra);
    }
    template_entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (file, outcome) in &mut template_entries {
        let mut pipelines: Vec<&str> = Vec::new();
        for f in &outcome.findings {
            for p in f.data.get("includedBy").and_then(Value::as_array).into_iter().flatten() {
                if let Some(p) = p.as_str().filter(|p| !pipelines.contains(p)) {
                    pipelines.push(p);
                }
            }
        }
        outcome.proven.push(format!(
            "template {file} is included by {} pipelines ({}); its findings are reported here once",
            pipelines.len(),
            pipelines.join(", ")
        ));
        let list: Vec<Value> = pipelines.iter().map(|p| Value::String(p.to_string())).collect();
        outcome.extra.insert("includedBy".into(), Value::Array(list));
    }
    out.extend(template_entries);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{Finding, Location};

    fn at(code: Code, file: &str, line: u32) -> Finding {
        Finding::new(code, format!("{code} in {file}")).at(Location::new(file, line, 3))
    }

    fn entry(target: &str, findings: Vec<Finding>) -> (String, TargetOutcome) {
        (target.to_string(), TargetOutcome { findings, ..Default::default() })
    }

    #[test]
    fn a_shared_template_finding_is_reported_once_with_its_pipelines() {
        let shared = || at(Code::TSK009, "templates/build.yml", 7);
        let entries = vec![
            entry("a.yml", vec![at(Code::TSK001, "a.yml", 2), shared(), at(Code::TSK002, "templates/only-a.yml", 4)]),
            entry("b.yml", vec![shared(), at(Code::TSK003, "templates/build.yml", 9)]),
            entry("c.yml", vec![shared(), at(Code::TSK003, "templates/build.yml", 9)]),
        ];
        let out = one_finding_per_place(entries);
        type Placed<'a> = (Code, &'a str, u32);
        let shape: Vec<(&str, Vec<Placed>)> = out
            .iter()
            .map(|(t, o)| {
                let fs = o.findings.iter().map(|f| {
                    let l = f.location.as_ref().unwrap();
                    (f.code, l.file.as_str(), l.line)
                });
                (t.as_str(), fs.collect())
            })
            .collect();
        assert_eq!(
            shape,
            [
                ("a.yml", vec![(Code::TSK001, "a.yml", 2), (Code::TSK002, "templates/only-a.yml", 4)]),
                ("b.yml", vec![]),
                ("c.yml", vec![]),
                (
                    "templates/build.yml",
                    vec![(Code::TSK009, "templates/build.yml", 7), (Code::TSK003, "templates/build.yml", 9)]
                ),
            ]
        );
        let template = &out[3].1;
        assert_eq!(template.findings[0].data["includedBy"], serde_json::json!(["a.yml", "b.yml", "c.yml"]));
        assert_eq!(template.findings[1].data["includedBy"], serde_json::json!(["b.yml", "c.yml"]));
        assert_eq!(template.extra["includedBy"], serde_json::json!(["a.yml", "b.yml", "c.yml"]));
        assert!(template.proven[0].contains("included by 3 pipelines"));
        // A finding in a template only one pipeline reaches stays there, naming it.
        assert_eq!(out[0].1.findings[1].data["includedBy"], serde_json::json!(["a.yml"]));
        assert!(!out[0].1.findings[0].data.contains_key("includedBy"), "in the pipeline's own file");
    }

    #[test]
    fn a_pipeline_included_by_another_keeps_its_findings_in_its_own_entry() {
        let own = || at(Code::TSK005, "b.yml", 3);
        let out = one_finding_per_place(vec![entry("a.yml", vec![own()]), entry("b.yml", vec![own()])]);
        assert_eq!(out.len(), 2);
        assert!(out[0].1.findings.is_empty());
        assert_eq!(out[1].1.findings.len(), 1);
        assert_eq!(out[1].1.findings[0].data["includedBy"], serde_json::json!(["a.yml", "b.yml"]));
        // Unlocated findings are never merged.
        let loose = || Finding::new(Code::TSK007, "x");
        let out = one_finding_per_place(vec![entry("a.yml", vec![loose()]), entry("b.yml", vec![loose()])]);
        assert_eq!(out.iter().map(|(_, o)| o.findings.len()).sum::<usize>(), 2);
    }
}
