//! A fake Azure DevOps organisation on plain http at 127.0.0.1, answering the REST 7.1
//! shapes the organisation scan reads: projects (continuation token in the
//! `x-ms-continuationtoken` header), service endpoints, their execution history, build
//! definitions (continuation token alternately in the body and the header), the latest builds
//! per definition (header tokens) and build timelines. Ids are stored in mixed case and
//! matched case-insensitively, as the service does. It can throttle (`X-RateLimit-Delay`, a
//! low `X-RateLimit-Remaining`, one 429 with `Retry-After`), refuse a project's reads with
//! TF401019-style 403 bodies, and it counts requests. Microsoft Graph is not served here:
//! tests use `fake_arm`'s `/graph/` and `/entra/` services.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

/// The personal access token the fake accepts (as Basic with an empty user name).
pub const PAT: &str = "ado-pat-canary-52charsxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
/// The bearer token it accepts (a job token or an Entra token).
pub const BEARER: &str = "ado-bearer-canary-0f3e9d2c";

/// Page sizes small enough that every test follows several pages; the benchmark sets the
/// service's own ($top=100 projects, larger definition and build pages).
#[derive(Debug, Clone, Copy)]
struct Pages {
    projects: usize,
    definitions: usize,
    builds: usize,
}

const TEST_PAGES: Pages = Pages { projects: 2, definitions: 3, builds: 2 };

#[derive(Debug, Clone)]
pub struct FakeRun {
    pub build_id: i64,
    pub number: String,
    pub finished: String,
    /// (task id, name, version)
    pub tasks: Vec<(String, String, String)>,
}

#[derive(Default)]
struct World {
    /// (id as stored, name)
    projects: Vec<(String, String)>,
    denied: BTreeSet<String>,
    endpoints: BTreeMap<String, Vec<Value>>,
    /// endpoint id (lower) → finish time of the last execution
    last_used: BTreeMap<String, String>,
    /// project id (lower) → (definition id, name)
    definitions: BTreeMap<String, Vec<(i64, String)>>,
    /// definition id → runs
    runs: BTreeMap<i64, Vec<FakeRun>>,
}

#[derive(Clone)]
pub struct FakeDevOps {
    base: String,
    world: Arc<Mutex<World>>,
    requests: Arc<AtomicU64>,
    /// Paths requested, lower-cased, in order.
    seen: Arc<Mutex<Vec<String>>>,
    throttle: Arc<AtomicBool>,
    slow_timelines: Arc<AtomicBool>,
    sent_429: Arc<AtomicBool>,
    pages: Arc<Mutex<Pages>>,
    /// Added to every answer, as a remote service's round trip (the benchmark's 50 ms).
    latency_ms: Arc<AtomicU64>,
}

impl FakeDevOps {
    pub fn start() -> FakeDevOps {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let base = format!("http://{}/contoso/", listener.local_addr().expect("address"));
        let fake = FakeDevOps {
            base,
            world: Arc::default(),
            requests: Arc::default(),
            seen: Arc::default(),
            throttle: Arc::default(),
            slow_timelines: Arc::default(),
            sent_429: Arc::default(),
            pages: Arc::new(Mutex::new(TEST_PAGES)),
            latency_ms: Arc::default(),
        };
        let server = fake.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let server = server.clone();
                std::thread::spawn(move || server.serve(stream));
            }
        });
        fake
    }

    /// The organisation URL (`--organization`, `SYSTEM_COLLECTIONURI`).
    pub fn url(&self) -> String {
        self.base.clone()
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    /// Throttling headers on answers, and one 429 with `Retry-After: 1`.
    pub fn throttle(&self) {
        self.throttle.store(true, Ordering::SeqCst);
    }

    /// Every answer waits this long first.
    pub fn set_latency(&self, latency: Duration) {
        self.latency_ms.store(latency.as_millis() as u64, Ordering::SeqCst);
    }

    /// Pages as the service sizes them: up to `projects`, `definitions` and `builds` items.
    pub fn set_page_sizes(&self, projects: usize, definitions: usize, builds: usize) {
        *self.pages.lock().unwrap() = Pages { projects, definitions, builds };
    }

    /// Timelines answer only after five seconds (to run into a scan's deadline).
    pub fn slow_timelines(&self) {
        self.slow_timelines.store(true, Ordering::SeqCst);
    }

    pub fn project(&self, id: &str, name: &str) {
        self.world.lock().unwrap().projects.push((id.into(), name.into()));
    }

    /// The project's reads answer 403 with a TF401019 body.
    pub fn deny(&self, project_id: &str) {
        self.world.lock().unwrap().denied.insert(project_id.to_ascii_lowercase());
    }

    pub fn endpoint(&self, project_id: &str, endpoint: Value, last_used: Option<&str>) {
        let mut world = self.world.lock().unwrap();
        if let (Some(at), Some(id)) = (last_used, endpoint["id"].as_str()) {
            world.last_used.insert(id.to_ascii_lowercase(), at.into());
        }
        world.endpoints.entry(project_id.to_ascii_lowercase()).or_default().push(endpoint);
    }

    pub fn definition(&self, project_id: &str, id: i64, name: &str, runs: Vec<FakeRun>) {
        let mut world = self.world.lock().unwrap();
        world.definitions.entry(project_id.to_ascii_lowercase()).or_default().push((id, name.into()));
        world.runs.insert(id, runs);
    }

    fn serve(&self, mut stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let Some(head) = read_head(&mut stream) else { return };
        self.requests.fetch_add(1, Ordering::SeqCst);
        let mut lines = head.lines();
        let target = lines.next().unwrap_or_default().split(' ').nth(1).unwrap_or_default().to_string();
        let authorization = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("authorization"))
            .map(|(_, v)| v.trim().to_string());
        let (raw_path, raw_query) = target.split_once('?').unwrap_or((&target, ""));
        let path = percent_decode(raw_path).to_ascii_lowercase();
        let query: BTreeMap<String, String> = raw_query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (percent_decode(k).to_ascii_lowercase(), percent_decode(&v.replace('+', " ")))
            })
            .collect();
        self.seen.lock().unwrap().push(path.clone());
        if path.ends_with("/timeline") && self.slow_timelines.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_secs(5));
        }
        let latency = self.latency_ms.load(Ordering::SeqCst);
        if latency > 0 {
            std::thread::sleep(Duration::from_millis(latency));
        }
        let (status, mut headers, body) = self.answer(&path, &query, authorization.as_deref());
        if self.throttle.load(Ordering::SeqCst) {
            headers.push(("X-RateLimit-Resource".into(), "Core".into()));
            headers.push(("X-RateLimit-Delay".into(), "0.05".into()));
        }
        let text = body.to_string();
        let mut response = format!("HTTP/1.1 {status} X\r\nContent-Type: application/json; charset=utf-8\r\n");
        for (k, v) in headers {
            response.push_str(&format!("{k}: {v}\r\n"));
        }
        response.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n{text}", text.len()));
        let _ = stream.write_all(response.as_bytes());
    }

    fn answer(
        &self,
        path: &str,
        query: &BTreeMap<String, String>,
        authorization: Option<&str>,
    ) -> (u16, Vec<(String, String)>, Value) {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(":{PAT}"));
        let authorised =
            authorization == Some(&format!("Basic {basic}")) || authorization == Some(&format!("Bearer {BEARER}"));
        if !authorised {
            return (401, vec![], json!({"message": "TF400813: The user is not authorized to access this resource."}));
        }
        if self.throttle.load(Ordering::SeqCst)
            && path.ends_with("/_apis/build/definitions")
            && !self.sent_429.swap(true, Ordering::SeqCst)
        {
            return (
                429,
                vec![("Retry-After".into(), "1".into())],
                json!({"message": "Request was blocked due to exceeding usage of resource 'Core'."}),
            );
        }
        let Some(rest) = path.strip_prefix("/contoso/") else { return not_found() };
        let pages = *self.pages.lock().unwrap();
        let world = self.world.lock().unwrap();
        if rest == "_apis/projects" {
            let items: Vec<Value> = world
                .projects
                .iter()
                .map(|(id, name)| json!({"id": id, "name": name, "state": "wellFormed"}))
                .collect();
            return page(&items, query, pages.projects, Where::Header);
        }
        let Some((project, api)) = rest.split_once('/') else { return not_found() };
        let Some((project_id, _)) = world
            .projects
            .iter()
            .find(|(id, name)| id.eq_ignore_ascii_case(project) || name.eq_ignore_ascii_case(project))
        else {
            return not_found();
        };
        let project_id = project_id.to_ascii_lowercase();
        if world.denied.contains(&project_id) {
            return (
                403,
                vec![],
                json!({"$id": "1", "innerException": null, "message": format!("TF401019: The Git repository with name or identifier {project} does not exist or you do not have permissions for the operation you are attempting."), "typeName": "Microsoft.TeamFoundation.Core.WebApi.ProjectDoesNotExistException, Microsoft.TeamFoundation.Core.WebApi", "typeKey": "ProjectDoesNotExistException", "errorCode": 0, "eventId": 3000}),
            );
        }
        if api == "_apis/serviceendpoint/endpoints" {
            let items = world.endpoints.get(&project_id).cloned().unwrap_or_default();
            return (200, vec![], json!({"count": items.len(), "value": items}));
        }
        if let Some(id) = api.strip_prefix("_apis/serviceendpoint/").and_then(|r| r.strip_suffix("/executionhistory")) {
            let value: Vec<Value> = world
                .last_used
                .get(id)
                .map(|at| json!({"data": {"finishTime": at, "result": "succeeded"}}))
                .into_iter()
                .collect();
            return (200, vec![], json!({"count": value.len(), "value": value}));
        }
        if api == "_apis/build/definitions" {
            let items: Vec<Value> = world
                .definitions
                .get(&project_id)
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|(id, name)| json!({"id": id, "name": name, "path": "\\"}))
                .collect();
            let start: usize = query.get("continuationtoken").and_then(|t| t.parse().ok()).unwrap_or(0);
            // Alternate where the token goes: the body for even pages, the header for odd ones.
            let place = if (start / pages.definitions) % 2 == 0 { Where::Body } else { Where::Header };
            return page(&items, query, pages.definitions, place);
        }
        if api == "_apis/build/builds" {
            let wanted: Vec<i64> = query
                .get("definitions")
                .map(|d| d.split(',').filter_map(|i| i.trim().parse().ok()).collect())
                .unwrap_or_default();
            let min_time = query.get("mintime").cloned().unwrap_or_default();
            assert_eq!(query.get("maxbuildsperdefinition").map(String::as_str), Some("1"));
            assert!(wanted.len() <= 100, "batches of at most 100 definitions");
            let mut items = Vec::new();
            for id in &wanted {
                let newest = world.runs.get(id).and_then(|runs| {
                    runs.iter().filter(|r| r.finished >= min_time).max_by(|a, b| a.finished.cmp(&b.finished))
                });
                if let Some(run) = newest {
                    items.push(json!({
                        "id": run.build_id, "buildNumber": run.number, "status": "completed", "result": "succeeded",
                        "finishTime": run.finished, "definition": {"id": id, "name": "x"},
                        "_links": {"web": {"href": format!("{}{project}/_build/results?buildId={}", self.base, run.build_id)}},
                    }));
                }
            }
            return page(&items, query, pages.builds, Where::Header);
        }
        if let Some(id) = api.strip_prefix("_apis/build/builds/").and_then(|r| r.strip_suffix("/timeline")) {
            let build: i64 = id.parse().unwrap_or(-1);
            let Some(run) = world.runs.values().flatten().find(|r| r.build_id == build) else { return not_found() };
            let mut records = vec![json!({"type": "Stage", "name": "Build", "task": null})];
            for (tid, name, version) in &run.tasks {
                // Each task twice (two jobs ran it): the scan keeps distinct versions.
                for _ in 0..2 {
                    records.push(
                        json!({"type": "Task", "name": name, "task": {"id": tid, "name": name, "version": version}}),
                    );
                }
            }
            return (200, vec![], json!({"records": records, "id": "x"}));
        }
        not_found()
    }
}

enum Where {
    Header,
    Body,
}

fn page(
    items: &[Value],
    query: &BTreeMap<String, String>,
    size: usize,
    place: Where,
) -> (u16, Vec<(String, String)>, Value) {
    let start: usize = query.get("continuationtoken").and_then(|t| t.parse().ok()).unwrap_or(0);
    let end = (start + size).min(items.len());
    let slice = items.get(start..end).unwrap_or_default().to_vec();
    let mut body = json!({"count": slice.len(), "value": slice});
    let mut headers = Vec::new();
    if end < items.len() {
        match place {
            Where::Header => headers.push(("x-ms-continuationtoken".to_string(), end.to_string())),
            Where::Body => body["continuationToken"] = json!(end.to_string()),
        }
    }
    (200, headers, body)
}

fn not_found() -> (u16, Vec<(String, String)>, Value) {
    (404, vec![], json!({"message": "The resource cannot be found.", "typeKey": "NotFoundException"}))
}

fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            return Some(String::from_utf8_lossy(&buf).to_string());
        }
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
