//! The `azure-pipelines` output of a real run, checked line by line with two independent
//! logging-command parsers (the task library's and a port of the agent's), plus the files it
//! leaves behind (JSON report, markdown summary).

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::common::{pipeline_env, preflight, repo_root, stdout_of};

/// Runs `node tests/oracles/vso-oracle.js` on the cases; fails the test with its output.
fn run_oracle(dir: &Path, cases: &[Value]) {
    let root = repo_root();
    assert!(
        root.join("node_modules/azure-pipelines-task-lib").is_dir(),
        "the logging-command oracle needs the npm dev dependencies: run `npm ci` in the repository root"
    );
    let file = dir.join("cases.json");
    std::fs::write(&file, serde_json::to_vec_pretty(cases).unwrap()).unwrap();
    let out = Command::new("node")
        .arg(root.join("tests/oracles/vso-oracle.js"))
        .arg(&file)
        .current_dir(&root)
        .output()
        .expect("node runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "oracle disagreements:\n{text}");
    assert!(text.contains(&format!("{} passed, 0 failed", cases.len())), "{text}");
}

/// Hostile values in every position a command can carry them.
#[test]
fn escaping_round_trips_through_both_parsers() {
    use azp_preflight::report::vso::command;
    let dir = tempfile::tempdir().unwrap();
    let nasty = [
        "plain",
        "semi;colon",
        "close]bracket",
        "100% sure %AZP25 literal",
        "line1\nline2\r\nline3",
        "%3B %5D %0A already-escaped-looking",
        "ünïcödé ✓",
        "=leading equals is fine in a message",
    ];
    let mut cases = Vec::new();
    for value in nasty {
        let props =
            [("type", "warning".to_string()), ("sourcepath", format!("dir/{value}.yml")), ("code", "TSK001".into())];
        cases.push(json!({
            "line": command("task.logissue", &props, value).to_string(),
            "command": "task.logissue",
            "properties": {"type": "warning", "sourcepath": format!("dir/{value}.yml"), "code": "TSK001"},
            "message": value,
        }));
        cases.push(json!({
            "line": command("task.setvariable", &[("variable", "PreflightReportPath".into()), ("isOutput", "true".into())], value).to_string(),
            "command": "task.setvariable",
            "properties": {"variable": "PreflightReportPath", "isOutput": "true"},
            "message": value,
        }));
    }
    run_oracle(dir.path(), &cases);
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// A run whose findings quote hostile text from the environment: every line must either be
/// the intended command or no command at all, in both parsers.
#[test]
fn a_real_run_emits_only_intended_commands() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = "/opt/dynatrace/oneagent/lib;x]%AZP25/##vso[task.complete result=Succeeded]/liboneagentproc.so";
    let out = preflight(dir.path())
        .envs(pipeline_env(dir.path()))
        .env("INPUT_CHECKS", "agent")
        .env("LD_PRELOAD", hostile)
        .env("CORECLR_ENABLE_PROFILING", "1")
        .env("CORECLR_PROFILER_PATH_64", "/opt/dynatrace/oneagent/agent/lib64/liboneagentloader.so")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "warnings do not fail with failOn=error");
    let stdout = stdout_of(&out);
    let temp = dir.path().join("_temp");
    let report = read_json(&temp.join("azp-preflight-report.json"));
    assert_eq!(report["schema"], "azp-preflight/report/v1");
    assert_eq!(report["result"], "warn");
    // LD_PRELOAD is split on spaces and colons: the hostile value names two libraries.
    assert_eq!(report["counts"], json!({"error": 0, "warning": 3, "note": 0}));
    let agent = &report["checks"][0];
    assert_eq!(
        (agent["check"].as_str(), agent["target"].as_str(), agent["status"].as_str()),
        (Some("agent"), Some("Hosted Agent"), Some("warn"))
    );

    let mut cases = Vec::new();
    let findings = agent["findings"].as_array().unwrap();
    let mut issue_lines = stdout.lines().filter(|l| l.starts_with("##vso[task.logissue"));
    for f in findings {
        let line = issue_lines.next().expect("one issue per finding");
        let message =
            format!("agent Hosted Agent: {}. Fix: {}", f["message"].as_str().unwrap(), f["remedy"].as_str().unwrap());
        assert!(!message.contains("##vso["), "untrusted text is neutralised before it reaches a message");
        cases.push(json!({"line": line, "command": "task.logissue", "properties": {"type": "warning", "code": "AGT001"}, "message": message}));
    }
    assert!(issue_lines.next().is_none());
    let summary = temp.join("azp-preflight-summary.md");
    let report_path = temp.join("azp-preflight-report.json").display().to_string();
    let expected_tail = [
        ("task.uploadsummary", json!({}), summary.display().to_string()),
        ("task.setvariable", json!({"variable": "PreflightResult", "isOutput": "true"}), "warn".to_string()),
        ("task.setvariable", json!({"variable": "PreflightErrorCount", "isOutput": "true"}), "0".to_string()),
        ("task.setvariable", json!({"variable": "PreflightWarningCount", "isOutput": "true"}), "3".to_string()),
        ("task.setvariable", json!({"variable": "PreflightReportPath", "isOutput": "true"}), report_path),
        (
            "task.complete",
            json!({"result": "SucceededWithIssues"}),
            "Preflight warn: 0 errors, 3 warnings, 0 notes".to_string(),
        ),
    ];
    let commands: Vec<&str> =
        stdout.lines().filter(|l| l.contains("##vso[") && !l.starts_with("##vso[task.logissue")).collect();
    assert_eq!(commands.len(), expected_tail.len(), "{stdout}");
    for (line, (command, properties, message)) in commands.iter().zip(expected_tail) {
        cases.push(json!({"line": line, "command": command, "properties": properties, "message": message}));
    }
    // Every other line is plain text that neither parser may take for a command.
    for line in stdout.lines().filter(|l| !l.starts_with("##vso[")) {
        cases.push(json!({"line": line, "command": null}));
    }
    run_oracle(dir.path(), &cases);

    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.starts_with("## ⚠️ Preflight passed with warnings — 0 errors, 3 warnings, 0 notes"), "{md}");
    assert!(md.contains("| ⚠️ | agent | Hosted Agent | **AGT001**"));
    assert!(!md.contains("##vso["));
}

#[test]
fn fail_on_warning_fails_the_step_and_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let out = preflight(dir.path())
        .envs(pipeline_env(dir.path()))
        .env("INPUT_CHECKS", "agent")
        .env("INPUT_FAILON", "warning")
        .env("DT_TENANT", "contoso")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = stdout_of(&out);
    assert_eq!(stdout.matches("##vso[task.complete").count(), 1);
    assert!(
        stdout.trim_end().ends_with("##vso[task.complete result=Failed]Preflight warn: 0 errors, 1 warning, 0 notes"),
        "{stdout}"
    );
}

#[test]
fn json_and_sarif_formats_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("out/report.json");
    let out = preflight(dir.path())
        .args(["--checks", "agent", "--format", "json", "--report"])
        .arg(&report)
        .env("LD_PRELOAD", "/usr/lib/libnewrelic.so")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["checks"][0]["findings"][0]["code"], "AGT001");
    assert_eq!(read_json(&report)["checks"][0]["findings"][0]["code"], "AGT001", "--report writes the same report");

    let out = preflight(dir.path())
        .args(["--checks", "agent", "--format", "sarif"])
        .env("LD_PRELOAD", "/usr/lib/libnewrelic.so")
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], "2.1.0");
    assert_eq!(v["runs"][0]["results"][0]["ruleId"], "AGT001");

    let out = preflight(dir.path())
        .args(["--checks", "agent", "--format", "github"])
        .env("LD_PRELOAD", "/usr/lib/libnewrelic.so")
        .output()
        .unwrap();
    assert!(stdout_of(&out).starts_with("::warning title=AGT001 Profiler or monitor injected into the agent::agent local: LD_PRELOAD injects the New Relic library"));
}
