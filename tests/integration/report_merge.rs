//! `azp-preflight report merge` end to end: shard reports written by hand to the contract
//! (ORG-CONTRACT: `connections` and `runs` entries, `scope`, `coverage`, `throttled`), merged
//! by the binary; and the HTML report opened in a real headless browser (Debian's
//! `chromium`, installed by scripts/setup.sh).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{json_of, preflight, stderr_of, stdout_of};

const ORG: &str = "https://dev.azure.com/contoso/";

fn connection(project: &str, name: &str, days_left: Option<i64>, findings: Value) -> Value {
    let expires = days_left.map(|d| format!("2026-12-{:02}", (3 + d).clamp(1, 28)));
    json!({
        "check": "connections", "target": format!("{project}/{name}"), "status": "pass", "durationMs": 3,
        "proven": [], "findings": findings,
        "connection": {
            "id": "0f5e7a52-7d7c-4bd0-9c1e-2b5f0c3a9d11", "name": name, "project": project, "type": "azurerm",
            "scheme": "ServicePrincipal", "isReady": true,
            "appId": "46e6adf4-a9cf-4b60-9390-0ba6fb00bf6b", "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "credential": {"kind": "secret", "expiresOn": expires, "daysLeft": days_left, "proven": days_left.is_some()},
            "lastUsed": "2026-11-30"
        }
    })
}

fn finding(code: &str, severity: &str, message: &str) -> Value {
    json!({"code": code, "severity": severity, "title": "t", "message": message, "remedy": "", "location": null,
           "data": {}, "help": format!("azp-preflight explain {code}")})
}

fn run(project: &str, pipeline: &str, tasks: &[(&str, &str)]) -> Value {
    let tasks: Vec<Value> = tasks
        .iter()
        .map(|(n, v)| json!({"id": "e28912f1-0114-4464-802a-a3a35437fd16", "name": n, "version": v}))
        .collect();
    json!({
        "check": "runs", "target": format!("{project}/{pipeline}"), "status": "pass", "durationMs": 9,
        "proven": [], "findings": [],
        "run": {"definitionId": 7, "buildId": 901, "buildNumber": "20261202.1",
                "url": "https://dev.azure.com/contoso/Shop/_build/results?buildId=901",
                "finished": "2026-12-02T21:14:00Z", "tasks": tasks}
    })
}

/// One shard's report: entries given, counts from them.
fn shard(index: u32, count: u32, checks: Vec<Value>) -> Value {
    json!({
        "schema": "azp-preflight/report/v1",
        "tool": {"name": "azp-preflight", "version": "0.0.0"},
        "scope": {"organization": ORG, "shard": {"index": index, "count": count}},
        "coverage": {"projects": 1, "connections": 1, "pipelines": 3, "runs": 1},
        "throttled": {"seconds": 0.5, "responses": 1},
        "result": "pass", "counts": {"error": 0, "warning": 0, "note": 0}, "durationMs": 1000 * u64::from(index),
        "checks": checks
    })
}

/// Four shard reports in `dir`: a connection each, one in the error window, and runs.
fn four_shards(dir: &Path) -> Vec<PathBuf> {
    let shards = [
        shard(
            1,
            4,
            vec![connection("Shop", "prod-arm", Some(-2), json!([finding("IDN001", "error", "expired 2 days ago")]))],
        ),
        shard(
            2,
            4,
            vec![
                connection("Edge", "edge-acr", Some(4), json!([finding("IDN005", "error", "expires in 4 days")])),
                run("Edge", "edge-build", &[("AzureIoTEdge", "2.241.1"), ("Docker", "2.247.1")]),
            ],
        ),
        shard(3, 4, vec![connection("Shop", "<b>later</b> \"conn\" ##vso[task.complete]", Some(20), json!([]))]),
        shard(
            4,
            4,
            vec![connection("Shop", "unproven", None, json!([])), run("Shop", "web", &[("Docker", "2.247.1")])],
        ),
    ];
    shards
        .iter()
        .enumerate()
        .map(|(i, report)| {
            let path = dir.join(format!("shard-{}.json", i + 1));
            std::fs::write(&path, serde_json::to_vec_pretty(report).unwrap()).unwrap();
            path
        })
        .collect()
}

fn merge_args(files: &[PathBuf], extra: &[&str]) -> Vec<String> {
    let mut args = vec!["report".to_string(), "merge".to_string()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[test]
fn four_shards_merge_into_one_report_that_fails_on_the_error_window() {
    let dir = tempfile::tempdir().unwrap();
    let files = four_shards(dir.path());
    let written = dir.path().join("out/merged.json");
    let out = preflight(dir.path())
        .args(merge_args(&files, &["--format", "json", "--report", &written.display().to_string()]))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let report = json_of(&out);
    assert_eq!(
        report["scope"],
        json!({"organization": ORG, "shard": {"index": 1, "count": 1}, "merged": [1, 2, 3, 4]})
    );
    assert_eq!(report["coverage"]["connections"], 4);
    assert_eq!(report["throttled"], json!({"seconds": 2.0, "responses": 4}));
    assert_eq!((report["result"].as_str(), report["counts"]["error"].as_u64()), (Some("fail"), Some(2)));
    let targets: Vec<&str> =
        report["checks"].as_array().unwrap().iter().map(|c| c["target"].as_str().unwrap()).collect();
    assert_eq!(targets[0], "Edge/edge-acr");
    assert_eq!(targets.len(), 6);
    let saved: Value = serde_json::from_slice(&std::fs::read(&written).unwrap()).unwrap();
    assert_eq!(saved, report);

    // A merged report reads back and renders; with --fail-on never it exits 0.
    let again = preflight(dir.path()).args(merge_args(&files, &["--fail-on", "never"])).output().unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", stderr_of(&again));
    assert!(stdout_of(&again).contains("IDN005"), "{}", stdout_of(&again));
}

#[test]
fn a_missing_shard_is_named_and_warns() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = four_shards(dir.path());
    files.remove(2);
    files.remove(0);
    let out =
        preflight(dir.path()).args(merge_args(&files, &["--format", "json", "--fail-on", "warning"])).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let report = json_of(&out);
    assert_eq!(report["scope"]["merged"], json!([2, 4]));
    let shards = report["checks"].as_array().unwrap().iter().find(|c| c["target"] == "shards").unwrap();
    assert_eq!(shards["findings"][0]["code"], "ORG005");
    assert_eq!(shards["findings"][0]["data"]["missing"], json!(["1/4", "3/4"]));
}

#[test]
fn other_organisations_overlaps_and_foreign_files_are_refused_together() {
    let dir = tempfile::tempdir().unwrap();
    let files = four_shards(dir.path());
    let mut other = shard(2, 4, vec![]);
    other["scope"]["organization"] = json!("https://dev.azure.com/fabrikam/");
    let other_path = dir.path().join("fabrikam.json");
    std::fs::write(&other_path, other.to_string()).unwrap();
    let foreign = dir.path().join("package.json");
    std::fs::write(&foreign, r#"{"name": "x"}"#).unwrap();
    let args = merge_args(&[files[0].clone(), files[0].clone(), other_path, foreign], &[]);
    let out = preflight(dir.path()).args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr_of(&out);
    assert!(
        err.contains("package.json (schema): `(missing)` is not valid; expected \"azp-preflight/report/v1\""),
        "{err}"
    );
    assert!(err.contains("fabrikam.json (scope.organization): `https://dev.azure.com/fabrikam/`"), "{err}");
    assert!(err.contains("shard-1.json (scope.shard): `1/4` is not valid"), "{err}");
}

/// The HTML report in a real browser: it renders (a screenshot of a sensible size), the
/// timeline and both tables are in the DOM with the expected rows, and the page fetched
/// nothing: it carries no URL, every host name resolves to nothing, and chromium's net log
/// has no request from the page (a control page's request shows that one would be seen).
#[test]
fn the_html_report_renders_in_headless_chromium() {
    let Some(chromium) = ["chromium", "chromium-browser", "google-chrome"].into_iter().find(|b| on_path(b)) else {
        panic!("chromium is not installed: run scripts/setup.sh (it installs Debian's `chromium` package)");
    };
    let dir = tempfile::tempdir().unwrap();
    let files = four_shards(dir.path());
    let out = preflight(dir.path()).args(merge_args(&files, &["--format", "html"])).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let html = stdout_of(&out);
    let lower = html.to_ascii_lowercase();
    for banned in ["http:", "https:", "//", "src=", "href=", "url(", "<script", "<link", "@import"] {
        assert!(!lower.contains(banned), "`{banned}` in the page:\n{html}");
    }
    let page = dir.path().join("report.html");
    std::fs::write(&page, &html).unwrap();
    let url = format!("file://{}", page.display());
    let shot = dir.path().join("shot.png");
    let profile = dir.path().join("profile");
    let common = |cmd: &mut Command| {
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--window-size=1280,2000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .env("HOME", dir.path());
    };
    let started = Instant::now();
    let mut screenshot = Command::new(chromium);
    common(&mut screenshot);
    let shot_run = screenshot.arg(format!("--screenshot={}", shot.display())).arg(&url).output().unwrap();
    assert!(shot_run.status.success(), "chromium --screenshot failed: {}", String::from_utf8_lossy(&shot_run.stderr));
    let net_log = dir.path().join("net-log.json");
    let mut dump = Command::new(chromium);
    common(&mut dump);
    let dom_run =
        dump.arg(format!("--log-net-log={}", net_log.display())).arg("--dump-dom").arg(&url).output().unwrap();
    assert!(dom_run.status.success(), "chromium --dump-dom failed: {}", String::from_utf8_lossy(&dom_run.stderr));

    // The browser's own background requests have no initiator; the page's have its (opaque,
    // `null`) file origin. A control page with one image shows that such a request is seen.
    let control = dir.path().join("control.html");
    std::fs::write(&control, "<!DOCTYPE html><p>control</p><img src=\"http://canary.invalid/x.png\">").unwrap();
    let control_log = dir.path().join("control-net-log.json");
    let mut control_run = Command::new(chromium);
    common(&mut control_run);
    let control_out = control_run
        .arg(format!("--log-net-log={}", control_log.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", control.display()))
        .output()
        .unwrap();
    assert!(control_out.status.success());
    assert!(page_requests(&control_log) > 0, "the control page's request is not in the net log");
    assert_eq!(page_requests(&net_log), 0, "the report page made a request");
    assert!(started.elapsed() < Duration::from_secs(30), "chromium took {:?}", started.elapsed());

    let png = std::fs::read(&shot).unwrap();
    assert!(png.len() > 10_000, "a screenshot of {} bytes is blank", png.len());
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&png[12..16], b"IHDR");
    let width = u32::from_be_bytes([png[16], png[17], png[18], png[19]]);
    let height = u32::from_be_bytes([png[20], png[21], png[22], png[23]]);
    assert_eq!((width, height), (1280, 2000));

    let dom = String::from_utf8_lossy(&dom_run.stdout);
    let between = |start: &str, end: &str| -> String {
        let from = dom.find(start).unwrap_or_else(|| panic!("no {start} in the DOM:\n{dom}"));
        let to = dom[from..].find(end).map(|i| from + i).unwrap_or(dom.len());
        dom[from..to].to_string()
    };
    let timeline = between("<svg id=\"timeline\"", "</svg>");
    assert_eq!(timeline.matches("<circle").count(), 3, "expired, error window, later: {timeline}");
    assert!(timeline.contains("Shop/prod-arm (expired 2 d ago)"), "{timeline}");
    let connections = between("<table id=\"connections\"", "</table>");
    let rows: Vec<&str> = connections.split("<tr").skip(2).collect();
    assert_eq!(rows.len(), 4, "{connections}");
    assert!(
        rows[0].contains("Shop/prod-arm") && rows[1].contains("Edge/edge-acr") && rows[3].contains("Shop/unproven")
    );
    assert!(rows[2].contains("&lt;b&gt;later&lt;/b&gt; \"conn\""), "escaped text stays text: {}", rows[2]);
    let tasks = between("<table id=\"task-versions\"", "</table>");
    assert_eq!(tasks.split("<tr").skip(2).count(), 2, "{tasks}");
    assert!(tasks.contains("Edge/edge-build, Shop/web"), "{tasks}");
    assert!(!dom.contains("<b>later</b>"), "hostile markup became markup");
}

/// Requests a page made, from a chromium net log: those whose initiator is a file page.
fn page_requests(net_log: &Path) -> usize {
    let log = std::fs::read_to_string(net_log).unwrap_or_else(|e| panic!("no net log at {}: {e}", net_log.display()));
    log.matches("\"initiator\":\"null\"").count() + log.matches("\"initiator\":\"file://").count()
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

/// The example pipeline is valid YAML the tasks check reads, with the steps it documents.
#[test]
fn the_org_scan_example_pipeline_reads_and_has_its_jobs() {
    let home = tempfile::tempdir().unwrap();
    let out = preflight(home.path())
        .current_dir(crate::common::repo_root())
        .args([
            "--offline",
            "--checks",
            "tasks",
            "--format",
            "json",
            "--pipeline",
            "examples/org-scan/azure-pipelines.yml",
        ])
        .output()
        .unwrap();
    let report = json_of(&out);
    let codes: Vec<String> = crate::common::findings(&report).into_iter().map(|f| f.0).collect();
    assert!(!codes.iter().any(|c| c == "TSK008"), "{codes:?}");
    let text =
        std::fs::read_to_string(crate::common::repo_root().join("examples/org-scan/azure-pipelines.yml")).unwrap();
    for needle in [
        "schedules:",
        "parallel: 4",
        "mode: organization",
        "dependsOn: scan",
        "DownloadPipelineArtifact@2",
        "PublishPipelineArtifact@1",
        "report merge",
        "--fail-on error",
        "##vso[task.uploadsummary]",
    ] {
        assert!(text.contains(needle), "the example lacks {needle}");
    }
}

/// `--format html` and `--format markdown` are formats of a pipeline's run too.
#[test]
fn a_run_renders_as_html_and_markdown() {
    let home = tempfile::tempdir().unwrap();
    for (format, start) in [("html", "<!DOCTYPE html>"), ("markdown", "## ")] {
        let out = preflight(home.path())
            .current_dir(crate::common::repo_root())
            .args(["--offline", "--checks", "tasks", "--pipeline", "examples/azureiotedge/*.yml", "--format", format])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
        let text = stdout_of(&out);
        assert!(text.starts_with(start), "{format}: {text}");
        assert!(text.contains("TSK002"), "{format}: {text}");
    }
}
