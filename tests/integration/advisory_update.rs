//! The run-time refresh of the advisory database (`advisoryUpdate` / `--advisory-update`),
//! against a document server on 127.0.0.1: a fresh document is used and cached with its ETag,
//! a 304 uses the cache, and every kind of bad answer (malformed, failing lint, unknown schema,
//! older, oversized, HTTP 500, unreachable, hanging) leaves the run on the embedded database
//! (or the cached copy) with exactly one TSK011 note and no effect on the result.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{pipeline_env, preflight, repo_root};

/// What the server does with one request.
#[derive(Clone)]
enum Answer {
    /// Status, extra header lines, body.
    Send(u16, Vec<String>, Vec<u8>),
    /// Accept, read the request, never answer.
    Hang,
}

/// One request as the server saw it: path and `If-None-Match`.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A document server on loopback whose answers the test sets per request.
struct DocServer {
    addr: SocketAddr,
    seen: Seen,
    answer: Arc<Mutex<Answer>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl DocServer {
    fn start(answer: Answer) -> DocServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Seen = Arc::default();
        let answer = Arc::new(Mutex::new(answer));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, answer2, stop2) = (seen.clone(), answer.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let current = answer2.lock().unwrap().clone();
                if let Some(stream) = serve(stream, &current, &seen2) {
                    // A hanging answer keeps the connection open until the server stops.
                    held.push(stream);
                }
            }
        });
        DocServer { addr, seen, answer, stop, thread: Some(thread) }
    }

    fn url(&self) -> String {
        format!("http://{}/advisories/index.json", self.addr)
    }

    fn set(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    fn seen(&self) -> Vec<(String, Option<String>)> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for DocServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(stream: TcpStream, answer: &Answer, seen: &Seen) -> Option<TcpStream> {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return None;
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut if_none_match = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("if-none-match") {
                if_none_match = Some(value.trim().to_string());
            }
        }
    }
    seen.lock().unwrap().push((path, if_none_match));
    let mut stream = stream;
    match answer {
        Answer::Hang => Some(stream),
        Answer::Send(status, headers, body) => {
            let mut head = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n", body.len());
            for h in headers {
                head.push_str(h);
                head.push_str("\r\n");
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
            None
        }
    }
}

/// The committed document with one more advisory, published later than the embedded
/// database: Docker@2.250.0 becomes a known regression.
fn fresher_document() -> Value {
    let text = std::fs::read_to_string(repo_root().join("advisories/index.json")).unwrap();
    let mut doc: Value = serde_json::from_str(&text).unwrap();
    doc["generated"] = json!(NEW_DATE);
    doc["advisories"].as_array_mut().unwrap().push(json!({
        "id": "AZP-ADV-0999",
        "title": "Docker@2: a regression published after this binary was built",
        "task": "Docker",
        "task-id": "e28912f1-0114-4464-802a-a3a35437fd16",
        "major": 2,
        "updated": NEW_DATE,
        "symptom": "the push fails",
        "confidence": "high",
        "versions": {"affected": [">= 2.250.0, < 2.251.0"], "last-good": "2.247.0", "fixed": "2.251.0"},
        "sources": {"issues": ["https://github.com/microsoft/azure-pipelines-tasks/issues/99999"]}
    }));
    doc
}

const NEW_DATE: &str = "2031-01-15";

fn ok(doc: &Value, etag: Option<&str>) -> Answer {
    let headers = etag.map(|e| vec![format!("etag: {e}")]).unwrap_or_default();
    Answer::Send(200, headers, serde_json::to_vec_pretty(doc).unwrap())
}

/// A sources folder with one pipeline that pins Docker@2.250.0 (no embedded advisory).
fn sources() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("azure-pipelines.yml"),
        "steps:\n- task: Docker@2.250.0\n  inputs:\n    command: push\n",
    )
    .unwrap();
    dir
}

/// A tasks-only run with the update pointed at `url`; the JSON report and the wall time.
fn run(home: &Path, url: &str, extra: &[&str]) -> (std::process::Output, Value, Duration) {
    let started = Instant::now();
    let output = preflight(home)
        .args(["--checks", "tasks", "--format", "json", "--advisory-update", url])
        .args(extra)
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&output.stdout)));
    (output, report, elapsed)
}

fn codes(report: &Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["findings"].as_array().unwrap().iter())
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

fn database_entry(report: &Value) -> &Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["target"] == "advisory database")
        .unwrap_or_else(|| panic!("no advisory database entry in {report:#}"))
}

fn cache_file(home: &Path) -> std::path::PathBuf {
    home.join(".cache/azp-preflight/advisories/index.json")
}

#[test]
fn a_fresh_document_is_used_reported_and_cached_then_304_uses_the_cache() {
    let home = sources();
    let server = DocServer::start(ok(&fresher_document(), Some("\"v1\"")));
    let (output, report, _) = run(home.path(), &server.url(), &[]);
    assert_eq!(output.status.code(), Some(1), "the fetched advisory fails the pinned step");
    assert_eq!(
        report["advisoryDatabase"],
        json!({"source": "fetched", "url": server.url(), "generated": NEW_DATE, "advisories": 36})
    );
    assert_eq!(report["advisoryDb"], json!({"advisories": 36, "updated": NEW_DATE}));
    assert_eq!(codes(&report), ["TSK001"]);
    let entry = database_entry(&report);
    assert_eq!(entry["status"], "pass");
    assert_eq!(
        entry["proven"][0],
        format!("using the advisory database fetched from {} ({NEW_DATE}, 36 advisories)", server.url())
    );
    assert!(cache_file(home.path()).is_file(), "cached in ~/.cache/azp-preflight");
    assert_eq!(server.seen(), [("/advisories/index.json".to_string(), None)]);

    // Unchanged: the server answers 304 to the cached ETag, and the cached copy is used.
    server.set(Answer::Send(304, vec!["etag: \"v1\"".into()], Vec::new()));
    let (output, report, _) = run(home.path(), &server.url(), &[]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(server.seen()[1].1.as_deref(), Some("\"v1\""), "If-None-Match carries the cached ETag");
    assert_eq!(report["advisoryDatabase"]["source"], "cache");
    assert_eq!(report["advisoryDatabase"]["generated"], NEW_DATE);
    assert_eq!(codes(&report), ["TSK001"]);
    assert!(database_entry(&report)["proven"][0].as_str().unwrap().contains("unchanged at"));

    // The server fails later: the valid cached copy is still better than the embedded one.
    server.set(Answer::Send(500, Vec::new(), b"oops".to_vec()));
    let (_, report, _) = run(home.path(), &server.url(), &[]);
    assert_eq!(report["advisoryDatabase"]["source"], "cache");
    assert_eq!(codes(&report), ["TSK011", "TSK001"]);
    let note = &database_entry(&report)["findings"][0];
    assert_eq!(note["severity"], "note");
    assert!(
        note["message"].as_str().unwrap().contains("it answered HTTP 500; this run used the copy cached on"),
        "{note}"
    );
}

/// Each bad answer, and what the note says about it.
fn bad_answers(closed_port: u16) -> Vec<(&'static str, Option<Answer>, String)> {
    let mut lint_failing = fresher_document();
    let last = lint_failing["advisories"].as_array_mut().unwrap().last_mut().unwrap();
    last["confidence"] = json!("sure");
    let mut hostile = fresher_document();
    let last = hostile["advisories"].as_array_mut().unwrap().last_mut().unwrap();
    last["id"] = json!("##vso[task.complete result=Succeeded]");
    let mut unknown_schema = fresher_document();
    unknown_schema["schema"] = json!(99);
    let mut older = fresher_document();
    older["generated"] = json!("2020-01-01");
    for a in older["advisories"].as_array_mut().unwrap() {
        a["updated"] = json!("2020-01-01");
    }
    let mut oversized = serde_json::to_vec(&fresher_document()).unwrap();
    oversized.resize(2 * 1024 * 1024 + 1, b' ');
    vec![
        (
            "malformed",
            Some(Answer::Send(200, vec![], b"{\"schema\": 1, \"generated\": ".to_vec())),
            "not valid JSON".into(),
        ),
        ("lint", Some(ok(&lint_failing, None)), "does not lint clean: AZP-ADV-0999: confidence `sure`".into()),
        (
            "hostile",
            Some(ok(&hostile, None)),
            "# #vso[task.complete result=Succeeded]: id `# #vso[task.complete".into(),
        ),
        ("schema", Some(ok(&unknown_schema, None)), "schema 99; this version of azp-preflight reads schema 1".into()),
        ("older", Some(ok(&older, None)), "generated 2020-01-01, before this version's embedded database".into()),
        ("oversized", Some(Answer::Send(200, vec![], oversized)), "larger than 2097152 bytes".into()),
        ("http 500", Some(Answer::Send(500, vec![], b"<html>busy</html>".to_vec())), "it answered HTTP 500".into()),
        (
            "unreachable",
            None,
            format!("at http://127.0.0.1:{closed_port}/advisories/index.json was not used: it could not be reached"),
        ),
    ]
}

#[test]
fn bad_documents_and_failures_fall_back_to_embedded_with_one_note() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    for (name, answer, expected) in bad_answers(closed_port) {
        let home = sources();
        let (server, url) = match answer {
            Some(a) => {
                let s = DocServer::start(a);
                let url = s.url();
                (Some(s), url)
            }
            None => (None, format!("http://127.0.0.1:{closed_port}/advisories/index.json")),
        };
        let (output, report, _) = run(home.path(), &url, &[]);
        assert_eq!(output.status.code(), Some(0), "{name}: a note does not fail the run");
        assert_eq!(
            report["advisoryDatabase"],
            json!({"source": "embedded", "generated": report["advisoryDb"]["updated"], "advisories": 35}),
            "{name}"
        );
        assert_eq!(
            codes(&report),
            ["TSK011"],
            "{name}: exactly one note, and the embedded database has no advisory for Docker@2.250.0"
        );
        let note = &database_entry(&report)["findings"][0];
        let message = note["message"].as_str().unwrap();
        assert!(!serde_json::to_string(&report).unwrap().contains("##vso["), "{name}: {report:#}");
        assert!(message.contains(&expected), "{name}: {message}");
        assert!(message.contains("; this run used the embedded database ("), "{name}: {message}");
        assert_eq!(note["data"]["used"], "embedded", "{name}");
        assert!(!cache_file(home.path()).exists(), "{name}: a rejected document is not cached");
        if let Some(s) = &server {
            assert_eq!(s.seen().len(), 1, "{name}: one request, no retry on a bad document");
        }
    }
}

#[test]
fn a_hanging_server_costs_at_most_a_quarter_of_the_deadline() {
    let home = sources();
    let server = DocServer::start(Answer::Hang);
    // A 4 s deadline allows the update 1 s; the run does not wait for the deadline.
    let (output, report, elapsed) = run(home.path(), &server.url(), &["--timeout", "4"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(elapsed < Duration::from_millis(2500), "took {elapsed:?}");
    assert_eq!(codes(&report), ["TSK011"], "no RUN001: the pipeline jobs finished in time");
    let message = database_entry(&report)["findings"][0]["message"].as_str().unwrap().to_string();
    assert!(message.contains("it did not answer within 1000 ms"), "{message}");
    assert_eq!(report["advisoryDatabase"]["source"], "embedded");
}

#[test]
fn off_and_offline_send_nothing() {
    let home = sources();
    let server = DocServer::start(ok(&fresher_document(), None));
    for args in [vec!["--offline", "--advisory-update", &server.url()], vec!["--advisory-update", "off"]] {
        let output =
            preflight(home.path()).args(["--checks", "tasks", "--format", "json"]).args(&args).output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["advisoryDatabase"]["source"], "embedded", "{args:?}");
        assert!(report["checks"].as_array().unwrap().iter().all(|c| c["target"] != "advisory database"), "{args:?}");
    }
    // The test helper's AZP_PREFLIGHT_ADVISORY_UPDATE=off is what `auto` means here: no
    // request, with the default, with `--advisory-update auto` and with the task's `auto`.
    for (flag, input) in [(None, None), (Some("auto"), None), (None, Some("auto"))] {
        let mut cmd = preflight(home.path());
        cmd.args(["--checks", "tasks", "--format", "json"]);
        if let Some(v) = flag {
            cmd.args(["--advisory-update", v]);
        }
        if let Some(v) = input {
            cmd.env("INPUT_ADVISORYUPDATE", v);
        }
        let output = cmd.output().unwrap();
        assert_eq!(output.status.code(), Some(0));
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert!(report["checks"].as_array().unwrap().iter().all(|c| c["target"] != "advisory database"), "{report:#}");
        assert_eq!(report["advisoryDatabase"]["source"], "embedded");
    }
    assert!(server.seen().is_empty(), "{:?}", server.seen());
}

#[test]
fn the_task_input_fetches_into_the_agent_tool_cache_and_the_summary_says_so() {
    let sources = sources();
    let server = DocServer::start(ok(&fresher_document(), Some("\"v7\"")));
    let tools = tempfile::tempdir().unwrap();
    let output = preflight(sources.path())
        .envs(pipeline_env(sources.path()))
        .env("AGENT_TOOLSDIRECTORY", tools.path())
        .env("INPUT_CHECKS", "tasks")
        .env("INPUT_ADVISORYUPDATE", server.url())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("##vso[task.complete result=Failed]"), "{stdout}");
    assert!(tools.path().join("azp-preflight/advisories/index.json").is_file());
    let summary = std::fs::read_to_string(sources.path().join("_temp/azp-preflight-summary.md")).unwrap();
    assert!(
        summary.contains(&format!("Advisory database: fetched from {}, {NEW_DATE}, 36 advisories.", server.url())),
        "{summary}"
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(sources.path().join("_temp/azp-preflight-report.json")).unwrap())
            .unwrap();
    assert_eq!(report["advisoryDatabase"]["source"], "fetched");
}

#[test]
fn a_bad_update_value_is_bad_input() {
    let home = sources();
    for (args, input, value) in [
        (
            vec!["--advisory-update", "http://mirror.contoso.com/index.json"],
            "--advisory-update",
            "http://mirror.contoso.com/index.json",
        ),
        (vec!["--advisory-update", "sometimes"], "--advisory-update", "sometimes"),
    ] {
        let output = preflight(home.path()).args(["--checks", "tasks"]).args(&args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("{input}: `{value}` is not valid; expected auto, off, or the https URL")),
            "{stderr}"
        );
    }
    let output = preflight(home.path())
        .env("INPUT_ADVISORYUPDATE", "ftp://127.0.0.1/index.json")
        .args(["--checks", "tasks"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("advisoryUpdate: `ftp://127.0.0.1/index.json` is not valid")
    );
}

#[test]
fn a_signed_mirror_url_is_used_but_its_signature_is_never_shown_or_cached() {
    let home = sources();
    let server = DocServer::start(ok(&fresher_document(), Some("\"v2\"")));
    let signed = format!("{}?sv=2024-05-04&sig=canary-signature-5d1e", server.url());
    let (output, report, _) = run(home.path(), &signed, &[]);
    assert_eq!(server.seen()[0].0, "/advisories/index.json?sv=2024-05-04&sig=canary-signature-5d1e");
    assert_eq!(report["advisoryDatabase"]["url"], server.url());
    let cached = std::fs::read_to_string(cache_file(home.path())).unwrap();
    for (what, text) in [
        ("stdout", String::from_utf8_lossy(&output.stdout).into_owned()),
        ("stderr", String::from_utf8_lossy(&output.stderr).into_owned()),
        ("cache", cached),
    ] {
        assert!(!text.contains("canary-signature-5d1e"), "the signature is in {what}");
    }
    // The next run with the same signed URL revalidates the cached copy.
    server.set(Answer::Send(304, vec![], Vec::new()));
    let (_, report, _) = run(home.path(), &signed, &[]);
    assert_eq!(report["advisoryDatabase"]["source"], "cache");
    assert_eq!(server.seen()[1].1.as_deref(), Some("\"v2\""));
}
