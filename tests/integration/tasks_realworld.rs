//! The `tasks` check on the shapes real repositories have, each a former false warning or a
//! silent pass: `template:` keys that are data (matrices passed as object parameters), majors
//! whose source left the tasks repository, `**/*.yml` plus `**/*.yaml`, templates shared by
//! several pipelines, pipelines kept in `.pipelines/`, `.ado/`, `eng/pipelines/` and the
//! like, and a syntax error after a tolerated problem. Fixtures: `tests/fixtures/pipelines/`
//! `matrix/` and `shared/`; the rest is written here.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::common::findings;
use crate::common::preflight_shared_home as azp_preflight;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pipelines").join(name)
}

fn write(root: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// Runs the offline tasks check in `dir` with `args`; (exit code, report).
fn run(dir: &Path, args: &[&str]) -> (Option<i32>, Value, String) {
    let output = azp_preflight()
        .current_dir(dir)
        .args(["--checks", "tasks", "--offline", "--format", "json"])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let report = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (output.status.code(), report, stderr)
}

fn entries(report: &Value) -> &Vec<Value> {
    report["checks"].as_array().unwrap_or_else(|| panic!("no checks in {report:#}"))
}

fn codes(report: &Value) -> Vec<String> {
    findings(report).into_iter().map(|f| f.0).collect()
}

fn entry<'a>(report: &'a Value, target: &str) -> &'a Value {
    entries(report).iter().find(|e| e["target"] == target).unwrap_or_else(|| panic!("no {target} in {report:#}"))
}

#[test]
fn matrix_template_keys_are_data_not_includes() {
    // Item 1: the matrices' `template: cpp-app` values used to be TSK009 each; with
    // `--fail-on warning` the run failed on them alone.
    let (code, report, stderr) = run(&fixture("matrix"), &["--fail-on", "warning"]);
    assert_eq!(code, Some(0), "{stderr}\n{report:#}");
    assert_eq!(codes(&report), Vec::<String>::new(), "{report:#}");
    let ci = entry(&report, ".pipelines/ci.yml");
    let refs: Vec<(&str, &str, u64)> = ci["references"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["task"].as_str().unwrap(), r["file"].as_str().unwrap(), r["line"].as_u64().unwrap()))
        .collect();
    // The real includes are still followed: the stepList default, a step template, a job template.
    assert_eq!(
        refs,
        [
            ("NuGetAuthenticate", "build/steps/restore.yml", 2),
            ("CMake", "build/steps/build.yml", 8),
            ("ArchiveFiles", "build/jobs/shared.yml", 12),
        ]
    );
    // `extends` and `variables` templates of the other entry too.
    let release = entry(&report, ".pipelines/release.yml");
    assert_eq!(release["references"].as_array().unwrap().len(), 2);
}

#[test]
fn deprecation_comes_from_the_task_itself() {
    // Item 2: PowerShell@1 and ArchiveFiles@1 left the tasks repository but are not
    // deprecated; AzureCLI@1 is (its task.json says so).
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[(
            "azure-pipelines.yml",
            "steps:\n- task: PowerShell@1\n  inputs:\n    scriptType: inlineScript\n- task: ArchiveFiles@1\n- task: AzureCLI@1\n",
        )],
    );
    let (code, report, stderr) = run(dir.path(), &["--fail-on", "warning"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        findings(&report),
        [
            ("TSK012".to_string(), "azure-pipelines.yml".to_string(), 2, 9),
            ("TSK012".to_string(), "azure-pipelines.yml".to_string(), 5, 9),
            ("TSK003".to_string(), "azure-pipelines.yml".to_string(), 6, 9),
        ]
    );
    let all = &entries(&report)[0]["findings"];
    assert_eq!(all[0]["severity"], "note");
    assert_eq!(all[0]["data"]["newer"], "PowerShell@2");
    assert!(!all[0]["message"].as_str().unwrap().contains("is deprecated"));
    assert!(!all[1]["message"].as_str().unwrap().contains("no longer maintained"));
    assert_eq!(all[2]["severity"], "warning");
    // Without AzureCLI@1, warnings do not fail the run.
    write(dir.path(), &[("azure-pipelines.yml", "steps:\n- task: PowerShell@1\n- task: ArchiveFiles@1\n")]);
    let (code, _, stderr) = run(dir.path(), &["--fail-on", "warning"]);
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn globs_as_a_shell_user_expects() {
    // Item 3: one pattern matching nothing is a note when another matched; braces expand.
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[("ci/build.yml", "steps:\n- task: Docker@2\n"), ("ci/deploy/release.yaml", "steps:\n- task: Docker@2\n")],
    );
    let (code, report, stderr) = run(dir.path(), &["--pipeline", "**/*.yml", "--pipeline", "**/*.json"]);
    assert_eq!(code, Some(0), "{stderr}");
    let targets: Vec<&str> = entries(&report).iter().map(|e| e["target"].as_str().unwrap()).collect();
    assert_eq!(targets, ["ci/build.yml", "pipeline files"]);
    let note = &entry(&report, "pipeline files")["findings"][0];
    assert_eq!((note["code"].as_str(), note["severity"].as_str()), (Some("TSK007"), Some("note")));
    assert_eq!(note["data"]["pattern"], "**/*.json");
    assert!(note["message"].as_str().unwrap().contains("matched no file"));

    let (code, report, stderr) = run(dir.path(), &["--pipeline", "**/*.{yml,yaml}"]);
    assert_eq!(code, Some(0), "{stderr}");
    let targets: Vec<&str> = entries(&report).iter().map(|e| e["target"].as_str().unwrap()).collect();
    assert_eq!(targets, ["ci/build.yml", "ci/deploy/release.yaml"], "no note: the pattern matched");
    // A literal alternative that is not there is an empty alternative, not an error.
    let (code, report, _) = run(dir.path(), &["--pipeline", "ci/build.{yml,yaml}"]);
    assert_eq!(code, Some(0));
    assert_eq!(entries(&report).len(), 1);

    // Nothing matched at all: bad input naming every pattern.
    let (code, _, stderr) = run(dir.path(), &["--pipeline", "**/*.json", "--pipeline", "none/*.yml"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("**/*.json, none/*.yml") && stderr.contains("--pipeline"), "{stderr}");
    // Braces that would expand without end are bad input too.
    let (code, _, stderr) = run(dir.path(), &["--pipeline", &"{a,b}".repeat(7)]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("at most 64"), "{stderr}");
}

#[test]
fn a_shared_template_finding_is_reported_once() {
    // Item 4: three pipelines include one template with three problems: three lines, not nine.
    let (code, report, stderr) = run(&fixture("shared"), &[]);
    assert_eq!(code, Some(0), "warnings only: {stderr}");
    let template = ".ado/templates/build.yml";
    let got = findings(&report);
    assert_eq!(
        got,
        [
            ("TSK009".to_string(), template.to_string(), 8, 15),
            ("TSK003".to_string(), template.to_string(), 9, 11),
            ("TSK012".to_string(), template.to_string(), 14, 11),
        ],
        "{report:#}"
    );
    let by = json!([".ado/ci.yml", ".ado/nightly.yml", ".ado/pr.yml"]);
    let shared = entry(&report, template);
    assert_eq!(shared["status"], "warn");
    assert_eq!(shared["includedBy"], by);
    for f in shared["findings"].as_array().unwrap() {
        assert_eq!(f["data"]["includedBy"], by);
    }
    for pipeline in [".ado/ci.yml", ".ado/nightly.yml", ".ado/pr.yml"] {
        let e = entry(&report, pipeline);
        assert_eq!(e["status"], "pass");
        assert_eq!(e["references"].as_array().unwrap().len(), 2, "references stay listed per pipeline");
    }
    // Human output: each place once.
    let human = azp_preflight()
        .current_dir(fixture("shared"))
        .args(["--checks", "tasks", "--offline", "--format", "human"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&human.stdout);
    assert_eq!(text.matches(".ado/templates/build.yml:9:11").count(), 1, "{text}");
}

#[test]
fn discovery_finds_real_layouts_by_content() {
    // Item 5: no conventional name anywhere; pipelines in the folders real repositories use.
    let dir = tempfile::tempdir().unwrap();
    let steps = "steps:\n- task: Docker@2\n";
    let jobs = "trigger: none\njobs:\n- job: A\n  steps:\n  - template: templates/steps.yml\n";
    write(
        dir.path(),
        &[
            (".pipelines/ci.yml", jobs),
            (
                ".ado/pr.yaml",
                "\u{feff}stages:\r\n- stage: S\r\n  jobs:\r\n  - job: J\r\n    steps:\r\n    - task: Docker@2\r\n",
            ),
            (".vsts-ci/official.yml", "extends:\n  template: /eng/pipelines/main.yml@self\n"),
            ("eng/pipelines/main.yml", "parameters:\n- name: x\n  default: 1\nstages:\n- stage: Build\n  jobs: []\n"),
            ("build/ci.yml", steps),
            ("ci/templates/steps.yml", steps),
            ("azure-pipelines/pr.yml", steps),
            ("tools/release-azure-pipelines.yml", steps),
            (".pipelines/templates/steps.yml", "steps:\n- task: NuGetAuthenticate@1\n"),
            // Not pipelines: other CI systems, Kubernetes, compose, and vendored or built trees.
            (
                ".github/workflows/ci.yml",
                "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n    - run: make\n",
            ),
            (".gitlab-ci.yml", "stages:\n  - build\n  - test\nbuild:\n  stage: build\n  script: make\n"),
            ("deploy/k8s.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n"),
            ("docker-compose.yml", "services:\n  web:\n    image: nginx\n"),
            ("node_modules/pkg/ci.yml", steps),
            ("vendor/lib/ci.yml", steps),
            ("third_party/x/azure-pipelines.yml", steps),
            ("obj/Debug/ci.yml", steps),
        ],
    );
    let (code, report, stderr) = run(dir.path(), &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let targets: Vec<&str> = entries(&report).iter().map(|e| e["target"].as_str().unwrap()).collect();
    assert_eq!(
        targets,
        [
            ".ado/pr.yaml",
            ".pipelines/ci.yml",
            ".vsts-ci/official.yml",
            "azure-pipelines/pr.yml",
            "build/ci.yml",
            "ci/templates/steps.yml",
            "tools/release-azure-pipelines.yml",
            "pipeline files"
        ],
        "templates reached from an entry are reported through it"
    );
    assert_eq!(
        entry(&report, "pipeline files")["proven"],
        json!([
            "9 pipeline files found (1 by name, 8 by content); 2 are templates, reported through the pipelines that include them"
        ])
    );
    let official = entry(&report, ".vsts-ci/official.yml");
    assert_eq!(official["references"], json!([]), "the extends template holds no task");
    assert!(codes(&report).is_empty(), "{report:#}");
}

#[test]
fn every_stop_is_a_tsk008_where_it_happened() {
    // Item 6: a starter template (tolerated) with a real syntax error further down: the
    // references after it used to vanish without a word.
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[(
            "azure-pipelines.yml",
            "trigger:\n- {{ branch }}\nsteps:\n- task: Docker@2\n- task: NuGetCommand@2\n  inputs: [oops\n- task: PowerShell@2\n- task: AzureCLI@1\n",
        )],
    );
    let (code, report, stderr) = run(dir.path(), &[]);
    assert_eq!(code, Some(1), "{stderr}");
    let got = findings(&report);
    assert_eq!(got.iter().filter(|f| f.0 == "TSK008").count(), 2, "{got:?}");
    assert_eq!((got[0].0.as_str(), got[0].2), ("TSK008", 2), "the Handlebars placeholder");
    let stop = entries(&report)[0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["data"]["kind"] == "syntax")
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(stop["location"]["line"], 7);
    assert_eq!(stop["data"]["stoppedAtLine"], 7);
    assert!(stop["message"].as_str().unwrap().contains("scanning stopped there"), "{stop:#}");
    let refs = entries(&report)[0]["references"].as_array().unwrap();
    assert_eq!(refs.len(), 2, "references before the stop are still checked");
}
