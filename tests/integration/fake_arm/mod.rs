//! A fake of the Azure Resource Manager endpoints the deploy check reads, plus the Entra ID
//! token endpoint and the one Microsoft Graph read it needs, on plain http at 127.0.0.1.
//! The three are separate services, as management.azure.com, graph.microsoft.com and
//! login.microsoftonline.com are: each answers only under its own prefix (`/arm/`, `/graph/`,
//! `/entra/`), and the binary is pointed at each through its own override.
//!
//! Resources are stored by id and served as ARM serves them: `GET {id}?api-version=...`,
//! lists as `{"value": [...], "nextLink": ...}` pages, actions as `POST`, errors as
//! `{"error": {"code", "message"}}`. Requests without the fake's bearer token get 401, and
//! each provider accepts only real api-versions. The role assignments list honours
//! `$filter=principalId eq '<id>'` with ARM's "at, above or below the scope" rule. Every
//! request is recorded, and a latency can be set to show that reads overlap.
//!
//! `payloads` builds the documented resource shapes the tests seed it with.

mod payloads;

pub use payloads::*;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

/// The access token the fake issues; tests assert it never reaches any output.
pub const TOKEN: &str = "arm-access-token-canary-7c1e";
/// Items per list page: small, so lists of more than two items take several pages.
const PAGE: usize = 2;

#[derive(Debug, Clone)]
pub struct Seen {
    /// `arm`, `graph`, `entra`, or `none` for a path under no service's prefix.
    pub service: &'static str,
    pub method: String,
    /// Lower-cased, percent-decoded path within the service (its prefix removed).
    pub path: String,
    /// The same path as sent (case kept), for the `nextLink`s ARM builds from it.
    pub sent_path: String,
    pub query: BTreeMap<String, String>,
    pub authorization: Option<String>,
    pub body: String,
}

#[derive(Default)]
struct World {
    /// `GET` answers (resources, lists, Graph objects) by lower-cased path.
    get: BTreeMap<String, (u16, Value)>,
    /// `GET` answers served exactly as stored, `nextLink` included.
    raw: BTreeMap<String, Value>,
    /// Api-versions this "cloud" does not offer yet.
    refused_versions: Vec<String>,
    /// `POST` action answers by lower-cased path.
    post: BTreeMap<String, (u16, Value)>,
    role_assignments: Vec<Value>,
    /// Entra ID group object id → member object ids (transitive membership flattened).
    groups: BTreeMap<String, Vec<String>>,
    /// `$filter=assignedTo(...)` is refused (as for a caller ARM will not expand groups for).
    refuse_assigned_to: bool,
}

#[derive(Clone)]
pub struct FakeArm {
    /// `http://127.0.0.1:<port>/`: the listener; the services live under it.
    base: String,
    world: Arc<Mutex<World>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    latency: Arc<Mutex<Duration>>,
}

fn lower(path: &str) -> String {
    path.trim_end_matches('/').to_ascii_lowercase()
}

impl FakeArm {
    pub fn start() -> FakeArm {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let base = format!("http://{}/", listener.local_addr().expect("address"));
        let fake = FakeArm {
            base,
            world: Arc::new(Mutex::new(World::default())),
            seen: Arc::new(Mutex::new(Vec::new())),
            latency: Arc::new(Mutex::new(Duration::ZERO)),
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

    /// Azure Resource Manager (`ENDPOINT_URL_<id>`, `AZP_PREFLIGHT_ARM_URL`).
    pub fn arm_url(&self) -> String {
        format!("{}arm/", self.base)
    }

    /// Microsoft Graph (`AZP_PREFLIGHT_GRAPH_URL`).
    pub fn graph_url(&self) -> String {
        format!("{}graph/", self.base)
    }

    /// The Entra ID authority (`ENDPOINT_DATA_<id>_ENVIRONMENTAUTHORITYURL`, `AZURE_AUTHORITY_HOST`).
    pub fn entra_url(&self) -> String {
        format!("{}entra/", self.base)
    }

    pub fn set_latency(&self, latency: Duration) {
        *self.latency.lock().unwrap() = latency;
    }

    /// A resource (or Graph object) served by `GET {id}`.
    pub fn put(&self, id: &str, value: Value) {
        self.world.lock().unwrap().get.insert(lower(id), (200, value));
    }

    /// Adds an item to the list served at `path` (created empty on first use).
    pub fn add_to_list(&self, path: &str, item: Value) {
        let mut world = self.world.lock().unwrap();
        let entry = world.get.entry(lower(path)).or_insert_with(|| (200, json!({"value": []})));
        if let Some(items) = entry.1["value"].as_array_mut() {
            items.push(item);
        }
    }

    /// An empty list at `path`.
    pub fn empty_list(&self, path: &str) {
        self.world.lock().unwrap().get.insert(lower(path), (200, json!({"value": []})));
    }

    /// `GET path` fails with ARM's error body.
    pub fn fail(&self, path: &str, status: u16, code: &str, message: &str) {
        self.world
            .lock()
            .unwrap()
            .get
            .insert(lower(path), (status, json!({"error": {"code": code, "message": message}})));
    }

    /// One list page served as given, whatever `nextLink` it names.
    pub fn put_page(&self, path: &str, page: Value) {
        self.world.lock().unwrap().raw.insert(lower(path), page);
    }

    pub fn remove(&self, path: &str) {
        self.world.lock().unwrap().get.remove(&lower(path));
    }

    pub fn put_post(&self, path: &str, status: u16, value: Value) {
        self.world.lock().unwrap().post.insert(lower(path), (status, value));
    }

    /// Answers requests with this api-version as a cloud without it does.
    pub fn refuse_api_version(&self, version: &str) {
        self.world.lock().unwrap().refused_versions.push(version.to_string());
    }

    pub fn add_role_assignment(&self, value: Value) {
        self.world.lock().unwrap().role_assignments.push(value);
    }

    /// Makes `member` a member of the Entra ID group `group` for `assignedTo` filters.
    pub fn add_group_member(&self, group: &str, member: &str) {
        let mut world = self.world.lock().unwrap();
        world.groups.entry(group.to_ascii_lowercase()).or_default().push(member.to_ascii_lowercase());
    }

    pub fn refuse_assigned_to(&self) {
        self.world.lock().unwrap().refuse_assigned_to = true;
    }

    pub fn clear_role_assignments(&self) {
        self.world.lock().unwrap().role_assignments.clear();
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn serve(&self, mut stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let Some((head, body)) = read_request(&mut stream) else { return };
        let mut lines = head.lines();
        let request_line = lines.next().unwrap_or_default().to_string();
        let mut parts = request_line.split(' ');
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let authorization = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("authorization"))
            .map(|(_, v)| v.trim().to_string());
        let (raw_path, raw_query) = target.split_once('?').unwrap_or((&target, ""));
        let full = decode(raw_path);
        let (service, sent_path) = ["arm", "graph", "entra"]
            .into_iter()
            .find_map(|svc| full.strip_prefix(&format!("/{svc}/")).map(|rest| (svc, format!("/{rest}"))))
            .unwrap_or(("none", full.clone()));
        let path = lower(&sent_path);
        let query: BTreeMap<String, String> = raw_query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(&v.replace('+', " ")))
            })
            .collect();
        let seen = Seen {
            service,
            method: method.clone(),
            path: path.clone(),
            sent_path,
            query: query.clone(),
            authorization,
            body,
        };
        self.seen.lock().unwrap().push(seen.clone());
        let latency = *self.latency.lock().unwrap();
        if !latency.is_zero() {
            std::thread::sleep(latency);
        }
        let (status, body) = self.answer(&seen);
        let text = body.to_string();
        let response = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\nx-ms-correlation-request-id: 0d7c1f3a-fake\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{text}",
            text.len()
        );
        let _ = stream.write_all(response.as_bytes());
        let _ = stream.flush();
    }

    fn answer(&self, req: &Seen) -> (u16, Value) {
        match req.service {
            // Entra ID: the token endpoint, client credentials only.
            "entra" => {
                if req.method != "POST" || !req.path.ends_with("/oauth2/v2.0/token") {
                    return (
                        404,
                        json!({"error": "invalid_request", "error_description": "AADSTS900561: The endpoint only accepts POST requests.", "error_codes": [900561]}),
                    );
                }
                if !req.body.contains("grant_type=client_credentials") {
                    return (400, json!({"error": "unsupported_grant_type", "error_codes": [70003]}));
                }
                return (200, json!({"token_type": "Bearer", "expires_in": 3599, "access_token": TOKEN}));
            }
            "arm" | "graph" => {}
            _ => return (404, json!({"error": {"code": "NotFound", "message": "No service at this path."}})),
        }
        if req.authorization.as_deref() != Some(&format!("Bearer {TOKEN}")) {
            return (401, json!({"error": {"code": "AuthenticationFailed", "message": "Authentication failed."}}));
        }
        let graph = req.service == "graph";
        // Each service serves only its own resources.
        if graph != req.path.starts_with("/v1.0/") {
            return if graph {
                (
                    400,
                    json!({"error": {"code": "BadRequest", "message": format!("Invalid request: resource '{}' is not a Graph path.", req.path)}}),
                )
            } else {
                not_found(&req.path)
            };
        }
        let base = format!("{}{}", self.base, req.service);
        if !graph {
            if let Err(refused) = check_api_version(&req.path, req.query.get("api-version").map(String::as_str)) {
                return refused;
            }
        }
        let world = self.world.lock().unwrap();
        if let Some(v) = req.query.get("api-version").filter(|v| world.refused_versions.contains(v)) {
            return (
                400,
                json!({"error": {"code": "NoRegisteredProviderFound", "message": format!("No registered resource provider found for API version '{v}'.")}}),
            );
        }
        if req.method == "POST" {
            return world.post.get(&req.path).cloned().unwrap_or_else(|| not_found(&req.path));
        }
        if let Some(page) = world.raw.get(&req.path) {
            return (200, page.clone());
        }
        if let Some((status, value)) = world.get.get(&req.path) {
            return (*status, page(value, req, &base));
        }
        if req.path.ends_with("/providers/microsoft.authorization/roleassignments") {
            let scope = req.path.trim_end_matches("/providers/microsoft.authorization/roleassignments").to_string();
            let filter = req.query.get("$filter").map(String::as_str).unwrap_or("");
            if world.refuse_assigned_to && filter.trim_start().starts_with("assignedTo(") {
                return (
                    403,
                    json!({"error": {"code": "AuthorizationFailed", "message": "The client does not have authorization to perform action 'Microsoft.Authorization/roleAssignments/read' with filter assignedTo."}}),
                );
            }
            return match role_assignments_for(&world.role_assignments, &world.groups, &scope, filter) {
                Some(items) => (200, page(&json!({"value": items}), req, &base)),
                None => (
                    400,
                    json!({"error": {"code": "UnsupportedQuery", "message": format!("The filter '{filter}' is not supported.")}}),
                ),
            };
        }
        if graph {
            return (
                404,
                json!({"error": {"code": "Request_ResourceNotFound", "message": "Resource does not exist or one of its queried reference-property objects are not present."}}),
            );
        }
        not_found(&req.path)
    }
}

fn not_found(path: &str) -> (u16, Value) {
    (404, json!({"error": {"code": "ResourceNotFound", "message": format!("The Resource '{path}' was not found.")}}))
}

/// The api-versions this fake accepts, by the provider a path addresses (the last one in it).
fn check_api_version(path: &str, version: Option<&str>) -> Result<(), (u16, Value)> {
    let Some(version) = version else {
        return Err((
            400,
            json!({"error": {"code": "MissingApiVersionParameter", "message": "The api-version query parameter (?api-version=) is required for all requests."}}),
        ));
    };
    let provider = path.rsplit("/providers/").next().unwrap_or("");
    let allowed: &[&str] = if provider.starts_with("microsoft.containerservice/") {
        &["2024-05-01"]
    } else if provider.starts_with("microsoft.web/") {
        &["2023-12-01"]
    } else if provider.starts_with("microsoft.authorization/") {
        &["2022-04-01"]
    } else if provider.starts_with("microsoft.containerregistry/") {
        &["2025-11-01", "2023-07-01"]
    } else if provider.starts_with("microsoft.network/privatednszones") {
        &["2020-06-01"]
    } else if provider.starts_with("microsoft.network/") {
        &["2024-05-01"]
    } else if provider.starts_with("microsoft.compute/") {
        &["2024-07-01"]
    } else {
        &[]
    };
    if allowed.contains(&version) {
        Ok(())
    } else {
        Err((
            400,
            json!({"error": {"code": "NoRegisteredProviderFound", "message": format!("No registered resource provider found for API version '{version}' at '{path}'.")}}),
        ))
    }
}

/// A list page; other values as they are.
fn page(value: &Value, req: &Seen, base: &str) -> Value {
    let Some(items) = value["value"].as_array() else { return value.clone() };
    let skip: usize = req.query.get("$skiptoken").and_then(|s| s.parse().ok()).unwrap_or(0);
    let chunk: Vec<Value> = items.iter().skip(skip).take(PAGE).cloned().collect();
    let mut out = json!({"value": chunk});
    if skip + PAGE < items.len() {
        let path: String = req.sent_path.split('/').map(encode).collect::<Vec<_>>().join("/");
        let mut next = format!("{}{}?", base.trim_end_matches('/'), path);
        for (k, v) in &req.query {
            if k != "$skiptoken" {
                next.push_str(&format!("{}={}&", encode(k), encode(v)));
            }
        }
        next.push_str(&format!("$skiptoken={}", skip + PAGE));
        out["nextLink"] = json!(next);
    }
    out
}

/// ARM's filters on the role assignments list: `principalId eq '<id>'` (that principal's own
/// assignments) and `assignedTo('<id>')` (the principal's and those of the groups it is a
/// member of), both "at, above or below" `scope`; without a filter, every assignment there.
/// `None` for a filter ARM would refuse.
fn role_assignments_for(
    all: &[Value],
    groups: &BTreeMap<String, Vec<String>>,
    scope: &str,
    filter: &str,
) -> Option<Vec<Value>> {
    let f = filter.trim();
    let principals: Option<Vec<String>> = if f.is_empty() {
        None
    } else if let Some(id) = f.strip_prefix("principalId eq '").and_then(|r| r.strip_suffix('\'')) {
        Some(vec![id.to_ascii_lowercase()])
    } else if let Some(id) = f.strip_prefix("assignedTo('").and_then(|r| r.strip_suffix("')")) {
        let id = id.to_ascii_lowercase();
        let mut ids: Vec<String> =
            groups.iter().filter(|(_, members)| members.contains(&id)).map(|(g, _)| g.clone()).collect();
        ids.push(id);
        Some(ids)
    } else {
        return None;
    };
    Some(
        all.iter()
            .filter(|a| {
                let p = &a["properties"];
                let s = p["scope"].as_str().unwrap_or("").trim_end_matches('/').to_ascii_lowercase();
                let related = s.is_empty()
                    || s.starts_with("/providers/microsoft.management/")
                    || scope.starts_with(&format!("{s}/"))
                    || scope == s
                    || s.starts_with(&format!("{scope}/"));
                let who = principals
                    .as_ref()
                    .is_none_or(|ids| p["principalId"].as_str().is_some_and(|x| ids.contains(&x.to_ascii_lowercase())));
                related && who
            })
            .cloned()
            .collect(),
    )
}

fn read_request(stream: &mut TcpStream) -> Option<(String, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..]).to_string();
    Some((head, body))
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'$' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
