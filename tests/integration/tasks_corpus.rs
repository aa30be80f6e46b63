//! The tasks check on a generated monorepo of realistic pipelines (`tests/corpus/`): every
//! include resolves and no task is deprecated by its own `task.json`, so any TSK003, TSK008,
//! TSK009 or TSK010 is a false finding. Also times the scan of the debug binary.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::Value;

use crate::common::preflight_shared_home as azp_preflight;

#[path = "../corpus/realistic.rs"]
mod realistic;

#[test]
fn realistic_corpus_has_no_false_template_or_deprecation_findings() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = realistic::write(dir.path());
    const { assert!(realistic::PIPELINE_FILES >= 300) };
    for args in [&[][..], &["--pipeline", "services/*/{.pipelines,.ado}/*.{yml,yaml}"][..]] {
        let started = Instant::now();
        let output = azp_preflight()
            .current_dir(dir.path())
            .args(["--checks", "tasks", "--offline", "--format", "json", "--fail-on", "warning"])
            .args(args)
            .output()
            .unwrap();
        let took = started.elapsed();
        let report: Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
        let mut by_code: BTreeMap<String, usize> = BTreeMap::new();
        for entry in report["checks"].as_array().unwrap() {
            for f in entry["findings"].as_array().unwrap() {
                *by_code.entry(f["code"].as_str().unwrap().to_string()).or_default() += 1;
            }
        }
        let targets: Vec<&str> =
            report["checks"].as_array().unwrap().iter().map(|e| e["target"].as_str().unwrap()).collect();
        let references: usize = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["references"].as_array().map_or(0, |r| r.len()))
            .sum();
        eprintln!(
            "corpus {args:?}: {} files ({} KB), {} entries, {references} references, findings {by_code:?}, {} ms (debug binary)",
            realistic::PIPELINE_FILES,
            bytes / 1024,
            targets.len(),
            took.as_millis()
        );
        for code in ["TSK003", "TSK008", "TSK009", "TSK010"] {
            assert_eq!(by_code.get(code), None, "false {code}: {report:#}");
        }
        assert_eq!(output.status.code(), Some(0), "notes only: {by_code:?}");
        // The notes are the not-deprecated-but-older majors: PowerShell@1 and ArchiveFiles@1,
        // once per place (the service's templates are shared by its pipelines).
        assert_eq!(by_code.get("TSK012"), Some(&(2 * realistic::SERVICES)), "{by_code:?}");
        let pipelines =
            targets.iter().filter(|t| t.ends_with("ci.yml") || t.ends_with("release.yml") || t.ends_with("pr.yaml"));
        assert_eq!(pipelines.count(), realistic::ENTRIES, "{targets:?}");
        if args.is_empty() {
            // Variables-only templates are not pipelines by content; their pipelines read them.
            let found = realistic::PIPELINE_FILES - realistic::SERVICES;
            let files = report["checks"].as_array().unwrap().iter().find(|e| e["target"] == "pipeline files").unwrap();
            assert_eq!(
                files["proven"][0],
                format!(
                    "{found} pipeline files found (0 by name, {found} by content); {} are templates, reported through \
                     the pipelines that include them",
                    found - realistic::ENTRIES
                )
            );
        }
        assert!(took.as_secs() < 30, "took {took:?}");
    }
}
