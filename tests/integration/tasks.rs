//! The `tasks` check, `fix` and `advisories`, run as the binary: offline on the fixtures under
//! `tests/fixtures/pipelines/` and the AzureIoTEdge example, and online against a fake Azure
//! DevOps collection on 127.0.0.1.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::preflight_shared_home as azp_preflight;
use crate::common::{findings, json_of};

const IOT_EDGE_ID: &str = "80f3f6a0-82a6-4a22-ba7a-e5b8c541b9b8";
const DOCKER_ID: &str = "e28912f1-0114-4464-802a-a3a35437fd16";
const TOKEN: &str = "canary-job-token-7f3a9c";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures/pipelines").join(name)
}

/// Copies a folder into a fresh temporary folder.
fn copy_tree(from: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_into(from, dir.path());
    dir
}

fn copy_into(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_into(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn finding<'a>(report: &'a Value, code: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["findings"].as_array().unwrap().iter())
        .find(|f| f["code"] == code)
        .unwrap_or_else(|| panic!("no {code} in {report:#}"))
}

/// (path and query, Authorization header) of each request the fake received.
type Requests = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A fake Azure DevOps collection: fixed answers by path and query, every request recorded.
struct FakeDevOps {
    addr: SocketAddr,
    requests: Requests,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeDevOps {
    fn start(routes: Vec<(String, u16, String)>) -> FakeDevOps {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopping) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    serve(stream, &routes, &seen);
                }
            }
        });
        FakeDevOps { addr, requests, stop, thread: Some(thread) }
    }

    fn collection(&self) -> String {
        format!("http://{}/contoso/", self.addr)
    }

    fn requests(&self) -> Vec<(String, Option<String>)> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeDevOps {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(stream: TcpStream, routes: &[(String, u16, String)], seen: &Requests) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut authorization = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("authorization") {
                authorization = Some(value.trim().to_string());
            }
        }
    }
    seen.lock().unwrap().push((target.clone(), authorization));
    let (status, body) = routes
        .iter()
        .find(|(path, _, _)| *path == target)
        .map(|(_, s, b)| (*s, b.clone()))
        .unwrap_or((404, "{}".to_string()));
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// The tasks API's answer: one definition per version, with the other build of each release.
fn task_list(name: &str, id: &str, versions: &[(&str, &str)]) -> String {
    let value: Vec<Value> = versions
        .iter()
        .map(|(version, other_build)| {
            let p: Vec<u32> = version.split('.').map(|n| n.parse().unwrap()).collect();
            json!({
                "id": id, "name": name,
                "version": {"major": p[0], "minor": p[1], "patch": p[2], "isTest": false},
                "minimumAgentVersion": "2.144.0",
                "execution": {"Node20_1": {"target": "main.js"}},
                "_buildConfigMapping": {"Default": other_build, "Node20_229_11": version},
            })
        })
        .collect();
    json!({"count": value.len(), "value": value}).to_string()
}

fn tasks_path(id: &str) -> String {
    format!("/contoso/_apis/distributedtask/tasks/{id}?allversions=true")
}

/// A pipeline step's environment: collection, job token and sources folder.
fn in_pipeline(cmd: &mut assert_cmd::Command, fake: &FakeDevOps, sources: &Path, temp: &Path) {
    cmd.env("TF_BUILD", "True")
        .env("BUILD_SOURCESDIRECTORY", sources)
        .env("AGENT_TEMPDIRECTORY", temp)
        .env("ENDPOINT_URL_SYSTEMVSSCONNECTION", fake.collection())
        .env("ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN", TOKEN)
        .env("INPUT_CHECKS", "tasks");
}

/// The token appears nowhere but in the agent's own `setsecret` command.
fn assert_no_token(output: &std::process::Output, extra: &[&Path]) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !stdout.lines().filter(|l| !l.starts_with("##vso[task.setsecret]")).any(|l| l.contains(TOKEN)),
        "token in stdout"
    );
    assert!(!String::from_utf8_lossy(&output.stderr).contains(TOKEN), "token in stderr");
    for file in extra {
        if let Ok(text) = std::fs::read_to_string(file) {
            assert!(!text.contains(TOKEN), "token in {}", file.display());
        }
    }
}

#[test]
fn multistage_pipeline_offline_report() {
    let output = azp_preflight()
        .current_dir(fixture("multistage"))
        .args(["--checks", "tasks", "--offline", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    let report = json_of(&output);
    assert_eq!(report["advisoryDb"]["advisories"], 35);
    let checks = report["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 2, "templates are not pipelines of their own");
    assert_eq!(checks[1]["target"], "pipeline files");
    assert_eq!(
        checks[1]["proven"],
        json!(["3 pipeline files found (1 by name, 2 by content); 2 are templates, reported through the pipelines that include them"])
    );
    assert_eq!(
        (checks[0]["check"].as_str(), checks[0]["target"].as_str()),
        (Some("tasks"), Some("azure-pipelines.yml"))
    );
    let refs = checks[0]["references"].as_array().unwrap();
    assert_eq!(refs.len(), 16);
    for expected in [
        json!({"task": "PowerShell", "version": "2", "file": "azure-pipelines.yml", "line": 13, "column": 11}),
        json!({"task": "333b11bd-d341-40d9-afcf-b32d5ce6f23b", "version": "2", "file": "azure-pipelines.yml", "line": 38, "column": 13}),
        json!({"task": "qetza.replacetokens.replacetokens-task.replacetokens", "version": "5", "file": "azure-pipelines.yml", "line": 45, "column": 15}),
        json!({"task": "NodeTool", "version": "0", "file": "azure-pipelines.yml", "line": 51, "column": 17}),
        json!({"task": "AzureKeyVault", "version": "2", "file": "azure-pipelines.yml", "line": 65, "column": 19}),
        json!({"task": "AzureCLI", "version": "1", "file": "azure-pipelines.yml", "line": 75, "column": 21}),
        json!({"task": "KubernetesManifest", "version": "1", "file": "azure-pipelines.yml", "line": 94, "column": 19}),
        json!({"task": "Docker", "version": "2", "file": "azure-pipelines.yml", "line": 97, "column": 19}),
        json!({"task": "Docker", "version": "2.246.0", "file": "templates/steps-build.yml", "line": 16, "column": 11}),
        json!({"task": "AzureIoTEdge", "version": "2.238.1", "file": "templates/steps-common.yml", "line": 2, "column": 9}),
    ] {
        assert!(refs.contains(&expected), "missing {expected} in {refs:#?}");
    }
    let got = findings(&report);
    let expected: Vec<(String, String, u64, u64)> = [
        ("TSK007", "azure-pipelines.yml", 54, 15),
        ("TSK009", "azure-pipelines.yml", 101, 25),
        ("TSK001", "azure-pipelines.yml", 35, 13),
        ("TSK003", "azure-pipelines.yml", 51, 17),
        ("TSK001", "azure-pipelines.yml", 83, 19),
        ("TSK007", "azure-pipelines.yml", 86, 19),
        ("TSK001", "templates/steps-build.yml", 16, 11),
        ("TSK002", "templates/steps-common.yml", 2, 9),
    ]
    .iter()
    .map(|(c, f, l, col)| (c.to_string(), f.to_string(), *l, *col))
    .collect();
    assert_eq!(got, expected);
    let tsk001 = finding(&report, "TSK001");
    assert_eq!(tsk001["severity"], "error");
    assert_eq!(tsk001["data"]["advisory"], "AZP-ADV-0002");
    assert!(tsk001["message"].as_str().unwrap().contains("Last good: 2.238.1; fixed in: 2.245.0"));
    assert_eq!(tsk001["help"], "azp-preflight explain TSK001");
}

#[test]
fn broken_files_are_reported_and_the_others_still_scan() {
    let output = azp_preflight()
        .current_dir(fixture("broken"))
        .args(["--checks", "tasks", "--offline", "--format", "json", "--pipeline", "*.yml"])
        .output()
        .unwrap();
    let report = json_of(&output);
    let targets: Vec<&str> =
        report["checks"].as_array().unwrap().iter().map(|c| c["target"].as_str().unwrap()).collect();
    assert_eq!(targets, ["azure-pipelines.yml", "release-azure-pipelines.yml", "starter.yml"]);
    let got = findings(&report);
    assert!(got.contains(&("TSK008".into(), "azure-pipelines.yml".into(), 7, 7)), "{got:?}");
    assert!(got.contains(&("TSK001".into(), "azure-pipelines.yml".into(), 2, 9)), "references before the error count");
    assert!(got.contains(&("TSK008".into(), "starter.yml".into(), 3, 3)), "{got:?}");
    assert!(got.contains(&("TSK001".into(), "release-azure-pipelines.yml".into(), 2, 9)));
    let starter = &report["checks"][2];
    assert_eq!(starter["references"].as_array().unwrap().len(), 2, "a starter template's references are still listed");
}

#[test]
fn nothing_found_is_a_skip_and_bad_inputs_exit_2() {
    let empty = tempfile::tempdir().unwrap();
    let output =
        azp_preflight().current_dir(empty.path()).args(["--checks", "tasks", "--format", "json"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let report = json_of(&output);
    assert_eq!(report["checks"][0]["status"], "skip");
    assert!(report["checks"][0]["reason"].as_str().unwrap().contains("no pipeline file found"));

    let missing = azp_preflight()
        .current_dir(empty.path())
        .args(["--checks", "tasks", "--pipeline", "ci/missing.yml"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("--pipeline") && err.contains("ci/missing.yml") && err.contains("expected"), "{err}");

    let glob = azp_preflight()
        .current_dir(empty.path())
        .env("TF_BUILD", "True")
        .env("INPUT_PIPELINEFILES", "pipelines/**/*.yml")
        .env("INPUT_CHECKS", "tasks")
        .env("AGENT_TEMPDIRECTORY", empty.path())
        .env("BUILD_SOURCESDIRECTORY", empty.path())
        .output()
        .unwrap();
    assert_eq!(glob.status.code(), Some(2));
    let out = String::from_utf8_lossy(&glob.stdout);
    assert!(out.contains("pipelineFiles") && out.contains("pipelines/**/*.yml"), "{out}");

    std::fs::write(empty.path().join("org.toml"), "id = \"CONTOSO-ADV-0001\"\n").unwrap();
    std::fs::write(empty.path().join("azure-pipelines.yml"), "steps:\n- task: Docker@2\n").unwrap();
    let bad_db = azp_preflight()
        .current_dir(empty.path())
        .args(["--checks", "tasks", "--advisories", "org.toml"])
        .output()
        .unwrap();
    assert_eq!(bad_db.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_db.stderr).contains("org.toml"));
}

#[test]
fn org_advisories_merge_and_suppressions_apply() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("azure-pipelines.yml"),
        "steps:\n- task: Docker@2.240.5\n- task: NuGetCommand@2.244.0  # azp-preflight: ignore[TSK001]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("org.toml"),
        r#"id = "CONTOSO-ADV-0001"
title = "Docker@2: our registry mirror rejects 2.240.x pushes"
task = "Docker"
task-id = "e28912f1-0114-4464-802a-a3a35437fd16"
major = 2
updated = "2026-10-01"
symptom = "unauthorized: mirror"
confidence = "high"

[versions]
affected = [">= 2.240.0, < 2.241.0"]
last-good = "2.239.0"

[sources]
references = ["https://wiki.contoso.example/incidents/42"]
"#,
    )
    .unwrap();
    let output = azp_preflight()
        .current_dir(dir.path())
        .args(["--checks", "tasks", "--offline", "--format", "json", "--advisories", "org.toml"])
        .output()
        .unwrap();
    let report = json_of(&output);
    assert_eq!(findings(&report), [("TSK001".to_string(), "azure-pipelines.yml".to_string(), 2, 9)]);
    assert_eq!(finding(&report, "TSK001")["data"]["advisory"], "CONTOSO-ADV-0001");

    let list = azp_preflight()
        .current_dir(dir.path())
        .args(["advisories", "list", "--advisories", "org.toml"])
        .output()
        .unwrap();
    assert_eq!(list.status.code(), Some(0));
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.starts_with("36 advisories"), "{text}");
    let row = text.lines().find(|l| l.starts_with("CONTOSO-ADV-0001*")).unwrap_or_else(|| panic!("{text}"));
    assert!(row.split_whitespace().nth(1) == Some("Docker@2"), "{row}");
    assert!(text.ends_with("* CONTOSO-ADV-0001 from org.toml\n"), "{text}");
}

#[test]
fn advisories_list_and_lint() {
    let list = azp_preflight().args(["advisories", "list"]).output().unwrap();
    assert_eq!(list.status.code(), Some(0));
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.starts_with("35 advisories"), "{text}");
    // One line per advisory: id, task@major, affected, fixed, confidence.
    let rows: Vec<Vec<&str>> =
        text.lines().skip(2).map(|l| l.split("  ").filter(|c| !c.is_empty()).map(str::trim).collect()).collect();
    assert_eq!(rows.len(), 35, "{text}");
    assert_eq!(rows[0], ["AZP-ADV-0001", "AzureIoTEdge@2", ">= 2.241.0, < 2.243.2", "2.243.2", "high"], "{text}");
    assert_eq!(rows[15], ["AZP-ADV-0016", "AzureCLI@2", "not pin-fixable", "-", "high"], "{text}");

    let show = azp_preflight().args(["advisories", "show", "AZP-ADV-0002"]).output().unwrap();
    assert_eq!(show.status.code(), Some(0));
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(text.starts_with("AZP-ADV-0002: NuGetCommand@2: restore fails"), "{text}");
    assert!(
        text.contains("last good:    2.238.1")
            && text.contains("  issue         https://github.com/microsoft/azure-pipelines-tasks/issues/20351"),
        "{text}"
    );
    let unknown = azp_preflight().args(["advisories", "show", "AZP-ADV-4242"]).output().unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr)
        .contains("advisories show: `AZP-ADV-4242` is not valid; expected an advisory id"));

    // The published document and the docs page, as the staleness tests expect them.
    let index = azp_preflight().args(["advisories", "index"]).output().unwrap();
    assert_eq!(index.status.code(), Some(0));
    assert_eq!(index.stdout, std::fs::read(repo().join("advisories/index.json")).unwrap());
    let out = tempfile::tempdir().unwrap();
    let page = out.path().join("advisories.md");
    let docs = azp_preflight().args(["advisories", "docs", "--output"]).arg(&page).output().unwrap();
    assert_eq!(docs.status.code(), Some(0));
    assert_eq!(std::fs::read(&page).unwrap(), std::fs::read(repo().join("docs/advisories.md")).unwrap());

    let lint = azp_preflight().args(["advisories", "lint"]).output().unwrap();
    assert_eq!(lint.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&lint.stdout), "35 advisories checked: no problems\n");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        r#"id = "CONTOSO-ADV-0002"
title = "overlapping"
task = "Docker"
task-id = "e28912f1-0114-4464-802a-a3a35437fd16"
major = 2
updated = "2026-10-01"
symptom = "x"
confidence = "low"

[versions]
affected = [">= 2.240.0, < 2.243.0", "2.242.1"]

[sources]
"#,
    )
    .unwrap();
    let lint = azp_preflight().arg("advisories").arg("lint").arg("--advisories").arg(&bad).output().unwrap();
    assert_eq!(lint.status.code(), Some(1));
    let text = String::from_utf8_lossy(&lint.stdout);
    assert!(text.contains("bad.toml: affected ranges `>= 2.240.0, < 2.243.0` and `2.242.1` overlap"), "{text}");
    assert!(text.contains("bad.toml: no sources"), "{text}");
    assert!(text.contains("2 problems in 36 files"), "{text}");
}

#[test]
fn iot_edge_example_offline_passes() {
    let output = azp_preflight()
        .current_dir(repo())
        .args([
            "--checks",
            "tasks",
            "--offline",
            "--format",
            "json",
            "--pipeline",
            "examples/azureiotedge/azure-pipelines.yml",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stdout));
    let report = json_of(&output);
    assert_eq!(report["checks"][0]["target"], "examples/azureiotedge/azure-pipelines.yml");
    assert_eq!(report["checks"][0]["references"].as_array().unwrap().len(), 4);
    assert!(findings(&report).is_empty(), "{:?}", findings(&report));
}

#[test]
fn iot_edge_floating_major_resolving_to_a_bad_version_fails_online() {
    let fake = FakeDevOps::start(vec![(
        tasks_path(IOT_EDGE_ID),
        200,
        task_list("AzureIoTEdge", IOT_EDGE_ID, &[("2.238.1", "2.238.0"), ("2.241.1", "2.241.0")]),
    )]);
    let sources = copy_tree(&repo().join("examples/azureiotedge"));
    let temp = tempfile::tempdir().unwrap();
    let mut cmd = azp_preflight();
    in_pipeline(&mut cmd, &fake, sources.path(), temp.path());
    let output = cmd.args(["--format", "json"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    let report = json_of(&output);
    assert_eq!(report["checks"][0]["target"], "azure-pipelines.yml", "found by its conventional name");
    assert_eq!(findings(&report), [("TSK001".to_string(), "azure-pipelines.yml".to_string(), 30, 9)]);
    let f = finding(&report, "TSK001");
    assert_eq!(f["severity"], "error");
    assert!(
        f["message"].as_str().unwrap().contains("AzureIoTEdge@2 resolves to 2.241.1 in this organization"),
        "{f:#}"
    );
    assert!(f["message"].as_str().unwrap().contains("The username for container registry is"));
    assert!(f["remedy"]
        .as_str()
        .unwrap()
        .contains("- task: AzureIoTEdge@2.238.1  # pinned by azp-preflight: AZP-ADV-0001, unpin at >= 2.243.2"));
    assert_eq!(f["data"]["resolved"], "2.241.1");
    let requests = fake.requests();
    assert_eq!(requests.len(), 1, "one request per task, however many references: {requests:?}");
    assert_eq!(requests[0].0, tasks_path(IOT_EDGE_ID));
    assert_eq!(requests[0].1.as_deref(), Some(format!("Bearer {TOKEN}").as_str()));
    assert_no_token(&output, &[&temp.path().join("azp-preflight-report.json")]);

    // The pipeline log format: an error annotation at the step, and a failed step.
    let mut cmd = azp_preflight();
    in_pipeline(&mut cmd, &fake, sources.path(), temp.path());
    let output = cmd.output().unwrap();
    let log = String::from_utf8_lossy(&output.stdout);
    assert!(
        log.contains(
            "##vso[task.logissue type=error;sourcepath=azure-pipelines.yml;linenumber=30;columnnumber=9;code=TSK001]"
        ),
        "{log}"
    );
    assert!(log.contains("##vso[task.complete result=Failed]"), "{log}");
    assert_no_token(&output, &[&temp.path().join("azp-preflight-summary.md")]);
}

#[test]
fn online_pins_the_org_lacks_and_the_definitions_yaml_file() {
    let sources = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(sources.path().join("build")).unwrap();
    std::fs::write(
        sources.path().join("build/ci.yml"),
        "steps:\n- task: Docker@2.240.5\n- task: Docker@2.239.9\n- task: Docker@2\n",
    )
    .unwrap();
    // A conventional name that must not be scanned: the definition names build/ci.yml.
    std::fs::write(sources.path().join("azure-pipelines.yml"), "steps:\n- task: NuGetCommand@2.244.0\n").unwrap();
    let fake = FakeDevOps::start(vec![
        (
            "/contoso/Project%20One/_apis/build/definitions/42?api-version=7.1".into(),
            200,
            json!({"id": 42, "process": {"type": 2, "yamlFilename": "/build/ci.yml"}}).to_string(),
        ),
        (tasks_path(DOCKER_ID), 200, task_list("Docker", DOCKER_ID, &[("2.240.5", "2.240.4"), ("2.247.1", "2.247.0")])),
    ]);
    let temp = tempfile::tempdir().unwrap();
    let mut cmd = azp_preflight();
    in_pipeline(&mut cmd, &fake, sources.path(), temp.path());
    let output = cmd
        .env("SYSTEM_TEAMPROJECT", "Project One")
        .env("SYSTEM_DEFINITIONID", "42")
        .env("AGENT_VERSION", "2.100.0")
        .args(["--format", "json"])
        .output()
        .unwrap();
    let report = json_of(&output);
    let checks = report["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0]["target"], "build/ci.yml");
    let got = findings(&report);
    assert_eq!(
        got.iter().map(|(c, _, l, _)| (c.as_str(), *l)).collect::<Vec<_>>(),
        [("TSK002", 2), ("AGT004", 2), ("TSK004", 3), ("AGT004", 4)],
        "{report:#}"
    );
    let stale = finding(&report, "TSK002");
    assert!(stale["message"].as_str().unwrap().contains("your organization now serves 2.247.1"), "{stale:#}");
    let missing = finding(&report, "TSK004");
    assert!(missing["message"].as_str().unwrap().contains("does not have Docker 2.239.9"), "{missing:#}");
    assert_eq!(missing["severity"], "error");
    assert!(output.status.code() == Some(1));
    assert_no_token(&output, &[]);
}

#[test]
fn online_failures_fall_back_to_offline_advice() {
    let sources = tempfile::tempdir().unwrap();
    std::fs::write(sources.path().join("azure-pipelines.yml"), "steps:\n- task: AzureIoTEdge@2.238.1\n").unwrap();
    let fake = FakeDevOps::start(vec![(tasks_path(IOT_EDGE_ID), 403, "<html>denied</html>".into())]);
    let temp = tempfile::tempdir().unwrap();
    let mut cmd = azp_preflight();
    in_pipeline(&mut cmd, &fake, sources.path(), temp.path());
    let output = cmd.args(["--format", "json"]).output().unwrap();
    let report = json_of(&output);
    let stale = finding(&report, "TSK002");
    assert!(stale["message"].as_str().unwrap().contains("could not be checked (HTTP 403"), "{stale:#}");
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn fix_pins_online_and_unpins_once_the_fix_is_served() {
    let original = std::fs::read(repo().join("examples/azureiotedge/azure-pipelines.yml")).unwrap();
    let sources = copy_tree(&repo().join("examples/azureiotedge"));
    let file = sources.path().join("azure-pipelines.yml");
    let temp = tempfile::tempdir().unwrap();
    let bad = FakeDevOps::start(vec![(
        tasks_path(IOT_EDGE_ID),
        200,
        task_list("AzureIoTEdge", IOT_EDGE_ID, &[("2.238.1", "2.238.0"), ("2.241.1", "2.241.0")]),
    )]);

    let mut cmd = azp_preflight();
    in_pipeline(&mut cmd, &bad, sources.path(), temp.path());
    let dry = cmd.args(["fix", "--dry-run"]).output().unwrap();
    assert_eq!(dry.status.code(), Some(0), "{}", String::from_utf8_lossy(&dry.stderr));
    let diff = String::from_utf8_lossy(&dry.stdout);
    assert_eq!(
        diff,
        "--- a/azure-pipelines.yml\n+++ b/azure-pipelines.yml\n@@ -27,7 +27,7 @@\n     templateFilePath: deployment.template.json\n     defaultPlatform: amd64\n \n-- task: AzureIoTEdge@2\n+- task: AzureIoTEdge@2.238.1  # pinned by azp-preflight: AZP-ADV-0001, unpin at >= 2.243.2\n   displayName: Push module images\n   inputs:\n     action: Push module images\n"
    );
    assert_eq!(std::fs::read(&file).unwrap(), original, "--dry-run changes nothing");

    let mut cmd = azp_preflight();
    in_pipeline(&mut cmd, &bad, sources.path(), temp.path());
    let applied = cmd.arg("fix").output().unwrap();
    assert_eq!(applied.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&applied.stderr)
        .contains("azure-pipelines.yml:30: AzureIoTEdge@2 -> pin AzureIoTEdge@2.238.1"));
    let pinned = String::from_utf8(std::fs::read(&file).unwrap()).unwrap();
    let expected = String::from_utf8(original.clone()).unwrap().replacen(
        "- task: AzureIoTEdge@2\n  displayName: Push",
        "- task: AzureIoTEdge@2.238.1  # pinned by azp-preflight: AZP-ADV-0001, unpin at >= 2.243.2\n  displayName: Push",
        1,
    );
    assert_eq!(pinned, expected);
    assert_no_token(&applied, &[]);
    drop(bad);

    let fixed = FakeDevOps::start(vec![(
        tasks_path(IOT_EDGE_ID),
        200,
        task_list(
            "AzureIoTEdge",
            IOT_EDGE_ID,
            &[("2.238.1", "2.238.0"), ("2.241.1", "2.241.0"), ("2.243.3", "2.243.2")],
        ),
    )]);
    let mut cmd = azp_preflight();
    in_pipeline(&mut cmd, &fixed, sources.path(), temp.path());
    let unpinned = cmd.arg("fix").output().unwrap();
    assert_eq!(unpinned.status.code(), Some(0));
    assert_eq!(std::fs::read(&file).unwrap(), original, "unpinning restores the file byte for byte");
}

#[test]
fn fix_offline_keeps_crlf_comments_and_everything_else() {
    let dir = copy_tree(&fixture("crlf"));
    let file = dir.path().join("azure-pipelines.yml");
    let before = std::fs::read_to_string(&file).unwrap();
    assert!(before.contains("\r\n"));
    let output = azp_preflight()
        .current_dir(dir.path())
        .args(["fix", "--offline", "--pipeline", "azure-pipelines.yml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let after = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        after,
        before
            .replace(
                "- task: AzurePowerShell@5.247.5   # deploy script\r\n",
                "- task: AzurePowerShell@5   # deploy script\r\n"
            )
            .replace("- task: FileTransform@2.248.1\r\n", "- task: FileTransform@2\r\n")
    );
    // Nothing left to change.
    let again = azp_preflight()
        .current_dir(dir.path())
        .args(["fix", "--offline", "--pipeline", "azure-pipelines.yml"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&again.stderr).contains("nothing to fix"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), after);
    let bad = azp_preflight().current_dir(dir.path()).args(["fix", "--pipeline", "nope.yml"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn explain_documents_the_task_codes() {
    for code in
        ["TSK001", "TSK002", "TSK003", "TSK004", "TSK005", "TSK006", "TSK007", "TSK008", "TSK009", "TSK010", "AGT004"]
    {
        let output = azp_preflight().args(["explain", code]).output().unwrap();
        assert_eq!(output.status.code(), Some(0));
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.starts_with(&format!("# {code}:")), "{text}");
        for section in ["## What it means", "## Why it happens", "## How to fix", "## Example"] {
            assert!(text.contains(section), "{code} lacks {section}");
        }
    }
}
