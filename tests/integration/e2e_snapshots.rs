//! Whole runs of the binary, one per check family, snapshotted as the user sees them: the
//! human output on stdout and the JSON report file of the same run. The fakes and helpers
//! are the ones the other end-to-end tests use.
//!
//! What changes from run to run (loopback ports, temporary folders, timings, dates relative
//! to today, free disk, the tool's version) is replaced by a placeholder before comparing.
//! The snapshots live in `tests/integration/snapshots/`; review a change with
//! `cargo insta review` (README, Testing).

use std::path::Path;
use std::time::Duration;

use crate::common::{pipeline_env, preflight, repo_root, stderr_of, stdout_of};
use crate::fake_acr::{Attrs, Config as AcrConfig, FakeAcr};
use crate::fake_arm::FakeArm;
use crate::fake_entra::{in_days, App, FakeEntra};
use crate::registry_support::Run as RegistryRun;

/// Placeholders for what differs between runs and machines. `paths` are this run's own
/// folders, replaced first so a folder shows as `[TMP]` whatever its name.
fn filters(paths: &[&Path]) -> Vec<(String, String)> {
    let mut filters: Vec<(String, String)> = Vec::new();
    for path in paths {
        // Canonical too: a report may name the folder the way the system resolved it.
        let mut forms = vec![path.display().to_string()];
        if let Ok(real) = path.canonicalize() {
            forms.push(real.display().to_string());
        }
        for form in forms {
            filters.push((regex_lite::escape(&form), "[TMP]".into()));
        }
    }
    for (pattern, replacement) in [
        (regex_lite::escape(env!("CARGO_PKG_VERSION")), "[VERSION]"),
        (r"(127\.0\.0\.1|localhost):\d+".to_string(), "$1:[PORT]"),
        (r#""durationMs": \d+"#.to_string(), r#""durationMs": "[MS]""#),
        (r"targets in \d+\.\d s".to_string(), "targets in [SECS] s"),
        (r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d+)?Z)?".to_string(), "[DATE]"),
        (r"\d+(\.\d+)? [KMGT]?i?B free".to_string(), "[SIZE] free"),
        (r"corr-\d+".to_string(), "corr-[N]"),
        // Temporary folders the helpers made without telling this module.
        (r"/tmp/\.tmp[A-Za-z0-9]+".to_string(), "[TMP]"),
        (r"/tmp/azp-preflight-home-[A-Za-z0-9]+".to_string(), "[HOME]"),
    ] {
        filters.push((pattern, replacement.into()));
    }
    filters
}

/// Snapshots the human output and the report of one run under `<family>_human` and
/// `<family>_report`.
fn assert_run_snapshots(family: &str, paths: &[&Path], human: &str, report: &str) {
    let mut settings = insta::Settings::clone_current();
    for (pattern, replacement) in filters(paths) {
        settings.add_filter(&pattern, replacement);
    }
    settings.bind(|| {
        insta::assert_snapshot!(format!("{family}_human"), human);
        insta::assert_snapshot!(format!("{family}_report"), report);
    });
}

fn read_report(path: &Path, stdout: &str, stderr: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no report at {} ({e})\nstdout:\n{stdout}\nstderr:\n{stderr}", path.display()))
}

#[test]
fn registry_run() {
    const APP: &str = "11111111-2222-3333-4444-555555555555";
    const SECRET: &str = "sp-secret-canary-Snap~1";
    const CONN: &str = "a1b2c3d4-0000-4000-8000-0000000000c1";
    // The identity may pull but not push: one target passes, one fails with REG012.
    let fake = FakeAcr::start(AcrConfig::default().user(APP, SECRET, &["pull", "metadata_read"]).with_app(
        "shop/web",
        Attrs::open(),
        Attrs::open(),
    ));
    let s = fake.server();
    let run = RegistryRun::pipeline(&format!("{s}/shop/web:1.0 pull platform=linux/arm64\n{s}/shop/web:1.0 push"))
        .acr_sp_connection(CONN, &s, APP, SECRET)
        .watch(fake.tokens())
        .arg("--format")
        .arg("human");
    // The run's own folder goes when the run ends: the report is written to one kept here.
    let kept = tempfile::tempdir().expect("temp dir");
    let dir = run.dir();
    let report_path = kept.path().join("report.json");
    let out = run.arg("--report").arg(&report_path.display().to_string()).exec();
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let report = read_report(&report_path, &out.stdout, &out.stderr);
    assert!(!report.contains(SECRET), "the secret leaked into the report:\n{report}");
    assert_run_snapshots("registry", &[&dir, kept.path()], &out.stdout, &report);
}

#[test]
fn identity_run() {
    use crate::common::identity_env::{Env, APP, CONN, SECRET};
    let fake = FakeEntra::start();
    // Inside the 30-day warning window; half a day over so the day count cannot flip.
    fake.add_app(App::new(APP).secret(SECRET, "azdo", in_days(20.5)));
    let mut env = Env::pipeline(&fake);
    env.spn_key(CONN, APP, SECRET, "Automatic");
    let report_path = env.dir.path().join("report.json");
    let report_arg = report_path.display().to_string();
    let run = env.run(&["--format", "human", "--report", &report_arg]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = read_report(&report_path, &run.stdout, &run.stderr);
    for text in [&run.stdout, &run.stderr, &report] {
        assert!(!text.contains(SECRET), "the secret leaked:\n{text}");
    }
    assert_run_snapshots("identity", &[env.dir.path()], &run.stdout, &report);
}

#[test]
fn tasks_run() {
    let out_dir = tempfile::tempdir().expect("temp dir");
    let report_path = out_dir.path().join("report.json");
    let home = tempfile::tempdir().expect("temp dir");
    let out = preflight(home.path())
        .current_dir(repo_root().join("tests/fixtures/pipelines/multistage"))
        .args(["--checks", "tasks", "--offline", "--format", "human", "--report"])
        .arg(&report_path)
        .timeout(Duration::from_secs(60))
        .output()
        .expect("the binary runs");
    let (stdout, stderr) = (stdout_of(&out), stderr_of(&out));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let report = read_report(&report_path, &stdout, &stderr);
    assert_run_snapshots("tasks", &[out_dir.path(), home.path()], &stdout, &report);
}

#[test]
fn agent_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let report_path = dir.path().join("report.json");
    let out = preflight(dir.path())
        .env("AGENT_NAME", "Hosted Agent 7")
        .env("JAVA_TOOL_OPTIONS", "-javaagent:/opt/newrelic/newrelic.jar")
        .args(["--checks", "agent", "--offline", "--format", "human", "--report"])
        .arg(&report_path)
        .timeout(Duration::from_secs(60))
        .output()
        .expect("the binary runs");
    let (stdout, stderr) = (stdout_of(&out), stderr_of(&out));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let report = read_report(&report_path, &stdout, &stderr);
    assert_run_snapshots("agent", &[dir.path()], &stdout, &report);
}

#[test]
fn deploy_run() {
    use crate::common::deploy_world::{aks_line, aks_world, connection_env, image_registry, SPN_SECRET};
    let dir = tempfile::tempdir().expect("temp dir");
    let arm = FakeArm::start();
    aks_world(&arm);
    // No role reaches the registry: DEP003 with its remedy.
    arm.clear_role_assignments();
    let acr = image_registry();
    let endpoints = format!("contosoprod.azurecr.io={0},hubacr.azurecr.io={0}", acr.server());
    let report_path = dir.path().join("report.json");
    let out = preflight(dir.path())
        .envs(pipeline_env(dir.path()))
        .envs(connection_env(&arm))
        .env("AZP_PREFLIGHT_REGISTRY_ENDPOINTS", endpoints)
        .env("INPUT_DEPLOYTARGETS", aks_line())
        .args(["--format", "human", "--report"])
        .arg(&report_path)
        .timeout(Duration::from_secs(60))
        .output()
        .expect("the binary runs");
    let (stdout, stderr) = (stdout_of(&out), stderr_of(&out));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let report = read_report(&report_path, &stdout, &stderr);
    for text in [&stdout, &stderr, &report] {
        assert!(!text.contains(SPN_SECRET), "the secret leaked:\n{text}");
    }
    assert_run_snapshots("deploy", &[dir.path()], &stdout, &report);
}
