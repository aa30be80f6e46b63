//! Untrusted text in every place the tool prints it — a repository folder named like a
//! logging command, hostile advisory files, a TOML error quoting its line, `fix --dry-run`
//! context, credentials written into targets and proxy URLs — run as a script step would
//! (`TF_BUILD=True`) in every format. Nothing may become a logging command the tool did not
//! mean, and no password may be printed.

use std::path::Path;
use std::process::Output;

use crate::common::{pipeline_env, preflight, stderr_of, stdout_of};

/// The logging commands the tool itself emits; any other `##vso[`/`##[` is an injection.
const OWN_COMMANDS: &[&str] = &[
    "##vso[task.setsecret]",
    "##vso[task.logissue ",
    "##vso[task.complete ",
    "##vso[task.uploadsummary]",
    "##vso[task.setvariable variable=Preflight",
    "##[group]Preflight targets",
    "##[endgroup]",
];

/// Every line the agent would read from the step: stdout and stderr.
fn assert_no_injection(what: &str, output: &Output) {
    let text = format!("{}\n{}", stdout_of(output), stderr_of(output));
    // The agent also ends a line at a bare CR.
    for line in text.split(['\n', '\r']) {
        let found = line.find("##vso[").or_else(|| line.find("##["));
        let Some(at) = found else { continue };
        assert_eq!(at, 0, "{what}: a command prefix inside a line: {line}");
        assert!(OWN_COMMANDS.iter().any(|own| line.starts_with(own)), "{what}: an injected command: {line}");
        assert_eq!(line.matches("##vso[").count() + line.matches("##[").count(), 1, "{what}: {line}");
    }
    assert!(!text.contains("##vso[task.setvariable variable=X"), "{what}: the injected command survived:\n{text}");
}

/// A repository whose pipeline lives in a folder named like a logging command, with a
/// floating task reference (advice), a template expression (a note at that place) and a
/// template that is missing (a warning quoting the path).
fn hostile_repo() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let folder = "##vso[task.setvariable variable=X]v";
    let pipelines = dir.path().join(folder);
    std::fs::create_dir_all(&pipelines).unwrap();
    std::fs::write(
        pipelines.join("azure-pipelines.yml"),
        "steps:\n  - task: AzureIoTEdge@2.241.1\n  - task: ${{ parameters.t }}\n  - template: ##[error]missing.yml\n",
    )
    .unwrap();
    // Passed as a glob: the folder's `[` would otherwise be a character class.
    (dir, "*/azure-pipelines.yml".to_string())
}

fn run_in_pipeline(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = preflight(dir);
    cmd.envs(pipeline_env(dir)).args(args);
    cmd.output().unwrap()
}

#[test]
fn folder_named_like_a_command_is_inert_in_every_format() {
    let (dir, pipeline) = hostile_repo();
    for format in ["azure-pipelines", "human", "json", "github", "sarif"] {
        let out = run_in_pipeline(
            dir.path(),
            &["--offline", "--checks", "tasks", "--pipeline", &pipeline, "--format", format],
        );
        assert!(out.status.code().is_some_and(|c| c <= 1), "{format}: {}", stderr_of(&out));
        let text = stdout_of(&out);
        assert!(text.contains("task.setvariable variable=X") || text.contains("#vso"), "{format}: the path is shown");
        assert_no_injection(format, &out);
    }
    // The pipeline format is inert even when asked for without TF_BUILD.
    let out = preflight(dir.path())
        .args(["--offline", "--checks", "tasks", "--pipeline", &pipeline, "--format", "azure-pipelines"])
        .output()
        .unwrap();
    assert_no_injection("azure-pipelines without TF_BUILD", &out);
    // The report file and the summary go through the same cleaning.
    let temp = dir.path().join("_temp");
    for entry in std::fs::read_dir(&temp).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!text.contains("##vso[task.setvariable variable=X"), "{text}");
    }
}

#[test]
fn fix_dry_run_and_advisory_commands_print_inert_text() {
    let (dir, pipeline) = hostile_repo();
    let out = run_in_pipeline(dir.path(), &["fix", "--dry-run", "--offline", "--pipeline", &pipeline]);
    assert_no_injection("fix --dry-run", &out);

    let advisory = dir.path().join("hostile.toml");
    std::fs::write(
        &advisory,
        r###"id = "AZP-ADV-9001"
title = "##vso[task.setvariable variable=X]v title"
task = "Docker"
task-id = "e28912f1-0114-4464-802a-a3a35437fd16"
major = 2
updated = "2026-11-22"
symptom = "##[error]symptom"
cause = "c"
workaround = "w"
confidence = "low"
confidence-note = "n"

[versions]
affected = [">= 2.240.0, < 2.241.0"]

[sources]
issues = ["https://github.com/microsoft/azure-pipelines-tasks/issues/1"]
"###,
    )
    .unwrap();
    let advisory = advisory.to_str().unwrap();
    for args in [["advisories", "list", "--advisories", advisory], ["advisories", "lint", "--advisories", advisory]] {
        let out = run_in_pipeline(dir.path(), &args);
        assert_no_injection(&args.join(" "), &out);
    }
    // A TOML syntax error quotes the offending line on stderr.
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "id = \"x\"\n##vso[task.setvariable variable=X]v = = =\n").unwrap();
    let out = run_in_pipeline(dir.path(), &["advisories", "lint", "--advisories", broken.to_str().unwrap()]);
    assert_ne!(out.status.code(), Some(0));
    assert_no_injection("advisories lint (TOML error)", &out);
}

#[test]
fn credentials_written_into_targets_never_print() {
    let dir = tempfile::tempdir().unwrap();
    let password = "hunter2-Canary-pw";
    let spec = format!("bob:{password}@registry.example:5000/app:1 push");
    for format in ["azure-pipelines", "human", "json"] {
        let mut cmd = preflight(dir.path());
        cmd.envs(pipeline_env(dir.path())).env("INPUT_REGISTRIES", &spec).args([
            "--offline",
            "--checks",
            "registry",
            "--format",
            format,
            "--report",
            "r.json",
        ]);
        let out = cmd.output().unwrap();
        let text = format!("{}{}", stdout_of(&out), stderr_of(&out));
        assert!(text.contains("REG001"), "{format}: {text}");
        assert!(text.contains("***@registry.example:5000"), "{format}: {text}");
        // The agent masks what setsecret registered; nothing else may carry the password.
        for line in text.lines().filter(|l| !l.starts_with("##vso[task.setsecret]")) {
            assert!(!line.contains("hunter2"), "{format}: {line}");
        }
        let report = std::fs::read_to_string(dir.path().join("r.json")).unwrap();
        assert!(!report.contains("hunter2"), "{report}");
    }
    // A Docker registry connection whose registry URL carries credentials.
    let mut cmd = preflight(dir.path());
    cmd.envs(pipeline_env(dir.path())).envs([
        ("INPUT_CONTAINERREGISTRY", "edge-acr"),
        ("ENDPOINT_URL_edge-acr", "https://bob:hunter2-Canary-url@registry.example/"),
        ("ENDPOINT_AUTH_SCHEME_edge-acr", "UsernamePassword"),
        ("ENDPOINT_AUTH_PARAMETER_edge-acr_REGISTRY", "https://bob:hunter2-Canary-url@registry.example"),
        ("ENDPOINT_AUTH_PARAMETER_edge-acr_USERNAME", "bob"),
        ("ENDPOINT_AUTH_PARAMETER_edge-acr_PASSWORD", "connection-password"),
    ]);
    let out = cmd.args(["--offline", "--checks", "registry", "--format", "json"]).output().unwrap();
    let text = format!("{}{}", stdout_of(&out), stderr_of(&out));
    assert!(text.contains("REG001") && text.contains("***@registry.example"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");

    // A line that does not parse is exit 2, and the message does not quote the password.
    for args in [vec!["--registry", "bob:hunter2-Canary-pw@registry.example/app extra"], vec!["--registry", ""]] {
        let out = preflight(dir.path()).args(&args).arg("--offline").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr_of(&out).contains("--registry"), "{}", stderr_of(&out));
        assert!(!stderr_of(&out).contains("hunter2"), "{}", stderr_of(&out));
    }
    // A proxy URL that does not parse names the variable, not the password.
    let out = preflight(dir.path())
        .env("HTTPS_PROXY", "http://bob:hunter2-Canary-pw@proxy.example:99999")
        .args(["--checks", "agent"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("HTTPS_PROXY `http://***@proxy.example:99999`"), "{}", stderr_of(&out));
}

#[test]
fn bad_arguments_name_their_flag_and_exit_codes_match_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let out = preflight(dir.path()).args(["--timeout", "-1", "--offline"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("--timeout: `-1` is not valid"), "{}", stderr_of(&out));

    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let bad = std::ffi::OsStr::from_bytes(b"pipe\xffline.yml");
        let out = preflight(dir.path()).arg("--pipeline").arg(bad).arg("--offline").output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr_of(&out).contains("--pipeline: `pipe\u{FFFD}line.yml` is not valid"), "{}", stderr_of(&out));
    }

    // A report that cannot be written means the run did not complete.
    let out = preflight(dir.path())
        .args(["--offline", "--checks", "agent", "--report", "/proc/no-such-dir/r.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("cannot write the report to /proc/no-such-dir/r.json"));
    let mut cmd = preflight(dir.path());
    cmd.envs(pipeline_env(dir.path())).env("INPUT_CHECKS", "agent").env("AZP_PREFLIGHT_REPORT", "x");
    let out = cmd.args(["--offline", "--report", "/proc/no-such-dir/r.json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let text = stdout_of(&out);
    assert_eq!(text.matches("##vso[task.complete").count(), 1, "{text}");
    assert!(text.contains("##vso[task.complete result=Failed]"), "{text}");

    // Offline and online agree on a server that does not form a URL.
    let out = preflight(dir.path())
        .args(["--offline", "--checks", "registry", "--registry", "h.example:5000:6000/app", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout_of(&out).contains("\"REG001\""), "{}", stdout_of(&out));
}
