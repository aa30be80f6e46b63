//! The command line contract: help, version, explain, exit codes, bad input.

use crate::common::{pipeline_env, preflight, stderr_of, stdout_of};

#[test]
fn version_and_help() {
    let home = tempfile::tempdir().unwrap();
    let out = preflight(home.path()).arg("--version").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout_of(&out).trim(), format!("azp-preflight {}", env!("CARGO_PKG_VERSION")));

    let out = preflight(home.path()).arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = stdout_of(&out);
    for flag in [
        "--pipeline",
        "--registry",
        "--checks",
        "--fail-on",
        "--offline",
        "--timeout",
        "--expiry-warning-days",
        "--expiry-error-days",
        "--advisories",
        "--format",
        "--report",
        "--no-exit-codes",
        "explain",
        "advisories",
        "fix",
        "Exit codes",
    ] {
        assert!(help.contains(flag), "--help does not mention {flag}");
    }
}

#[test]
fn explain_documents_a_code_and_rejects_an_unknown_one() {
    let home = tempfile::tempdir().unwrap();
    let out = preflight(home.path()).args(["explain", "reg009"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let page = stdout_of(&out);
    assert!(page.starts_with("# REG009"), "{page}");
    assert!(page.contains("## How to fix"));

    let out = preflight(home.path()).args(["explain", "all"]).output().unwrap();
    assert_eq!(stdout_of(&out).lines().count(), azp_preflight::codes::Code::ALL.len());

    let out = preflight(home.path()).args(["explain", "XYZ999"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("explain: `XYZ999` is not valid; expected a finding code"), "{}", stderr_of(&out));
}

#[test]
fn unknown_flag_is_bad_input() {
    let home = tempfile::tempdir().unwrap();
    let out = preflight(home.path()).arg("--no-such-flag").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("--no-such-flag"));
}

#[test]
fn local_bad_values_name_the_flag_value_and_form() {
    let home = tempfile::tempdir().unwrap();
    for (args, needle) in [
        (vec!["--timeout", "soon"], "--timeout: `soon` is not valid; expected a whole number from 1 to 3600"),
        (
            vec!["--checks", "registry,secrets"],
            "--checks: `secrets` is not valid; expected a comma list of registry, identity, tasks, agent",
        ),
        (vec!["--registry", "contoso.azurecr.io/app pul"], "--registry: `contoso.azurecr.io/app pul` is not valid"),
        (
            vec!["--advisories", "/no/such/file.toml"],
            "--advisories: `/no/such/file.toml` is not valid; expected a readable advisory file",
        ),
    ] {
        let out = preflight(home.path()).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr_of(&out).contains(needle), "{args:?}: {}", stderr_of(&out));
        assert!(!stderr_of(&out).contains("panicked"));
    }
}

/// Every problem is reported in one run, not one per run: settings, the given pipeline
/// patterns, advisory files and service endpoints together.
#[test]
fn every_bad_input_is_reported_together() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("bad.toml"), "id = 'AZP-ADV-9999'\n").unwrap();
    let out = preflight(home.path())
        .args(["--timeout", "soon", "--checks", "tasks,registry", "--registry", "contoso.azurecr.io/app pul"])
        .args(["--registry", "contoso.azurecr.io/web platform=linux", "--pipeline", "ci/*.yml"])
        .args(["--advisories", "bad.toml"])
        .env("AZP_PREFLIGHT_ARM_URL", "not a url")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = stderr_of(&out);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("azp-preflight: bad input: ")).collect();
    let expected = [
        "--timeout: `soon` is not valid",
        "--registry: `contoso.azurecr.io/app pul` is not valid",
        "--registry: `contoso.azurecr.io/web platform=linux` is not valid",
        "AZP_PREFLIGHT_ARM_URL",
    ];
    for needle in expected {
        assert_eq!(lines.iter().filter(|l| l.contains(needle)).count(), 1, "{needle}: {stderr}");
    }
    assert_eq!(lines.len(), expected.len(), "{stderr}");

    // With the settings valid, the family's own problems come together too.
    let out = preflight(home.path())
        .args(["--checks", "tasks", "--pipeline", "ci/*.yml", "--advisories", "bad.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = stderr_of(&out);
    assert!(stderr.contains("--pipeline: `ci/*.yml` is not valid; expected a file or glob that matches"), "{stderr}");
    assert!(stderr.contains("--advisories: `bad.toml` is not valid; expected a valid advisory file"), "{stderr}");
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
}

/// In a pipeline, several problems are one error issue each and still one failed completion.
#[test]
fn pipeline_bad_inputs_are_one_issue_each_and_one_failure() {
    let dir = tempfile::tempdir().unwrap();
    let out = preflight(dir.path())
        .envs(pipeline_env(dir.path()))
        .env("INPUT_CHECKS", "registry,sekrets")
        .env("INPUT_EXPIRYWARNINGDAYS", "30d")
        .env("INPUT_REGISTRIES", "contoso.azurecr.io/app push\ncontoso.azurecr.io/web platform=linux")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stdout = stdout_of(&out);
    let issues: Vec<&str> = stdout.lines().filter(|l| l.starts_with("##vso[task.logissue type=error]")).collect();
    assert_eq!(issues.len(), 3, "{stdout}");
    assert!(issues[0].contains("checks: `sekrets` is not valid"), "{}", issues[0]);
    assert!(issues[1].contains("expiryWarningDays: `30d` is not valid"), "{}", issues[1]);
    assert!(
        issues[2].contains("registries line 2: `contoso.azurecr.io/web platform=linux` is not valid"),
        "{}",
        issues[2]
    );
    assert_eq!(stdout.matches("##vso[task.complete").count(), 1);
    assert!(stdout.trim_end().ends_with("##vso[task.complete result=Failed]azp-preflight: bad input"), "{stdout}");
}

/// In a pipeline, bad input is one error issue plus one failed completion, and exit 2.
#[test]
fn pipeline_bad_inputs_fail_the_step_once() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("INPUT_REGISTRIES", "contoso.azurecr.io/app push\ncontoso.azurecr.io/web platform=linux", "registries line 2: `contoso.azurecr.io/web platform=linux` is not valid"),
        ("INPUT_CHECKS", "registry,sekrets", "checks: `sekrets` is not valid; expected a comma list of registry, identity, tasks, agent"),
        ("INPUT_EXPIRYWARNINGDAYS", "30d", "expiryWarningDays: `30d` is not valid; expected a whole number"),
        ("INPUT_AZURESUBSCRIPTION", "6b1f1a0e-0000-4000-8000-00000000abcd", "azureSubscription: `6b1f1a0e-0000-4000-8000-00000000abcd` is not valid; expected a service connection this pipeline is authorised to use"),
    ];
    for (name, value, needle) in cases {
        let out = preflight(dir.path()).envs(pipeline_env(dir.path())).env(name, value).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}");
        let stdout = stdout_of(&out);
        let issues: Vec<&str> = stdout.lines().filter(|l| l.starts_with("##vso[task.logissue type=error]")).collect();
        assert_eq!(issues.len(), 1, "{name}: {stdout}");
        assert!(issues[0].contains(needle), "{name}: {}", issues[0]);
        assert_eq!(stdout.matches("##vso[task.complete").count(), 1);
        assert!(stdout.trim_end().ends_with("##vso[task.complete result=Failed]azp-preflight: bad input"), "{stdout}");
    }
}

#[test]
fn no_exit_codes_reports_without_failing() {
    let home = tempfile::tempdir().unwrap();
    let out = preflight(home.path())
        .args(["--checks", "agent", "--fail-on", "warning", "--no-exit-codes"])
        .env("LD_PRELOAD", "/opt/dynatrace/oneagent/agent/lib64/liboneagentproc.so")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout_of(&out).contains("warning[AGT001]"));
    let out = preflight(home.path())
        .args(["--checks", "agent", "--fail-on", "warning"])
        .env("LD_PRELOAD", "/opt/dynatrace/oneagent/agent/lib64/liboneagentproc.so")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout_of(&out).contains("exit 1"));
}

/// What `scripts/run-example.sh` shows: the bundled incident pipelines, offline.
#[test]
fn the_bundled_example_reports_the_stale_incident_pin() {
    let home = tempfile::tempdir().unwrap();
    let out = preflight(home.path())
        .current_dir(crate::common::repo_root())
        .args(["--offline", "--pipeline", "examples/azureiotedge/*.yml", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "a stale pin is a warning: {}", stderr_of(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tasks: Vec<&serde_json::Value> =
        report["checks"].as_array().unwrap().iter().filter(|c| c["check"] == "tasks").collect();
    assert_eq!(tasks.len(), 2);
    let pinned = tasks.iter().find(|c| c["target"] == "examples/azureiotedge/pinned-during-incident.yml").unwrap();
    let f = &pinned["findings"][0];
    assert_eq!(
        (f["code"].as_str(), f["location"]["line"].as_u64(), f["location"]["column"].as_u64()),
        (Some("TSK002"), Some(18), Some(9))
    );
    assert!(f["remedy"].as_str().unwrap().contains("- task: AzureIoTEdge@2"));
}
