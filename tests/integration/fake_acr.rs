//! An in-repo fake of Azure Container Registry on 127.0.0.1, following the documented
//! payloads: `/v2/` challenge, `/oauth2/exchange`, `/oauth2/token` (GET with Basic, POST with
//! a refresh token), manifests, tags, upload sessions, `/acr/v1` attributes, plus an Entra
//! ID token endpoint for the exchange. Faults (DENIED with client IP, TOOMANYREQUESTS with
//! Retry-After, 5xx, HTML proxy pages, hangs, resets, truncated and 10 MB bodies) are
//! switched on per path. The HTTP server underneath is deliberately raw (one request per
//! connection) so faults can break the protocol.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// ---- raw HTTP/1.1 server ------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    /// Path without the query.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn query_all(&self, key: &str) -> Vec<&str> {
        self.query.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
    }

    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body).into_owned().collect()
    }

    pub fn form_value(&self, key: &str) -> Option<String> {
        self.form().into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// `(username, password)` of a Basic Authorization header.
    pub fn basic(&self) -> Option<(String, String)> {
        let value = self.header("authorization")?.strip_prefix("Basic ")?;
        let decoded = String::from_utf8(STANDARD.decode(value.trim()).ok()?).ok()?;
        let (u, p) = decoded.split_once(':')?;
        Some((u.to_string(), p.to_string()))
    }

    pub fn bearer(&self) -> Option<&str> {
        self.header("authorization")?.strip_prefix("Bearer ")
    }
}

#[derive(Debug, Clone)]
pub enum Reply {
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Accept the request and never answer.
    Hang,
    /// Close the connection with a TCP reset.
    Reset,
    /// Promise more body than is sent, then close.
    Truncated,
}

impl Reply {
    pub fn json(status: u16, value: Value) -> Reply {
        Reply::Respond {
            status,
            headers: vec![("Content-Type".into(), "application/json; charset=utf-8".into())],
            body: value.to_string().into_bytes(),
        }
    }

    pub fn text(status: u16, content_type: &str, body: &str) -> Reply {
        Reply::Respond {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        if let Reply::Respond { headers, .. } = &mut self {
            headers.push((name.to_string(), value.to_string()));
        }
        self
    }
}

pub type Handler = Arc<dyn Fn(&Req) -> Reply + Send + Sync>;

/// A server on 127.0.0.1 with its own runtime; stops when dropped.
pub struct Httpd {
    pub addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
    pub requests: Arc<Mutex<Vec<(String, String)>>>,
}

impl Drop for Httpd {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Httpd {
    /// Serves `handler`, adding `latency` before each answer.
    pub fn start(handler: Handler, latency: Duration) -> Httpd {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("test runtime");
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        runtime.spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else { continue };
                let handler = handler.clone();
                let log = log.clone();
                tokio::spawn(async move {
                    let _ = serve_one(sock, handler, latency, log).await;
                });
            }
        });
        Httpd { addr, runtime: Some(runtime), requests }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `METHOD path` of every request served so far.
    pub fn seen(&self) -> Vec<(String, String)> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

async fn serve_one(
    mut sock: TcpStream,
    handler: Handler,
    latency: Duration,
    log: Arc<Mutex<Vec<(String, String)>>>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            // A bare connection (the TCP probe): nothing to answer.
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return Ok(());
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or("");
    let mut parts = first.split(' ');
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("/").to_string();
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))).collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()),
        None => (target.clone(), Vec::new()),
    };
    if let Ok(mut l) = log.lock() {
        l.push((method.clone(), path.clone()));
    }
    let req = Req { method, path, query, headers, body };
    let reply = handler(&req);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match reply {
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(600)).await;
        }
        Reply::Reset => {
            #[allow(deprecated)]
            let _ = sock.set_linger(Some(Duration::ZERO));
            drop(sock);
        }
        Reply::Truncated => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n";
            sock.write_all(head.as_bytes()).await?;
            sock.write_all(br#"{"errors":[{"code":"UNAU"#).await?;
            sock.flush().await?;
            drop(sock);
        }
        Reply::Respond { status, headers, body } => {
            let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
            for (k, v) in &headers {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            let is_head = req.method == "HEAD";
            let declared =
                headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-length")).map(|(_, v)| v.clone());
            if declared.is_none() {
                out.push_str(&format!("Content-Length: {}\r\n", body.len()));
            }
            out.push_str("Connection: close\r\n\r\n");
            sock.write_all(out.as_bytes()).await?;
            if !is_head {
                sock.write_all(&body).await?;
            }
            sock.flush().await?;
            let _ = sock.shutdown().await;
        }
    }
    Ok(())
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

// ---- the fake ACR ---------------------------------------------------------------------------

/// The ID token the fake OIDC endpoint hands out.
pub const OIDC_TOKEN: &str = "oidc-id-token-canary-77c1";

pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

#[derive(Debug, Clone)]
pub enum Fault {
    /// A literal answer.
    Reply(Reply),
    /// `403 DENIED: client with IP '<ip>' is not allowed access`.
    DeniedIp(String),
    /// `429 TOOMANYREQUESTS` with `Retry-After: <secs>`.
    Throttle(u32),
    /// A proxy's HTML page with the given status.
    Html(u16),
    /// A 10 MB JSON-looking body.
    Huge,
}

#[derive(Debug, Clone, Default)]
pub struct Attrs {
    pub write_enabled: bool,
    pub read_enabled: bool,
}

impl Attrs {
    pub fn open() -> Attrs {
        Attrs { write_enabled: true, read_enabled: true }
    }

    fn json(&self) -> Value {
        json!({"deleteEnabled": true, "writeEnabled": self.write_enabled, "readEnabled": self.read_enabled, "listEnabled": true})
    }
}

#[derive(Debug, Clone)]
pub struct Image {
    pub media_type: String,
    pub body: Vec<u8>,
    pub attrs: Attrs,
}

#[derive(Debug, Clone)]
pub struct Repo {
    pub attrs: Attrs,
    pub tags: BTreeMap<String, Image>,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Basic users: username → (password, actions on every repository).
    pub users: BTreeMap<String, (String, Vec<String>)>,
    /// Entra ID: client secret that works, and the actions the exchanged identity gets.
    pub entra_secret: String,
    pub entra_actions: Vec<String>,
    /// What the exchange answers instead of a refresh token, when set.
    pub exchange_fault: Option<Reply>,
    /// Entra access tokens issued elsewhere (another fake's token endpoint) that the
    /// exchange accepts as well as its own.
    pub foreign_access_tokens: Vec<String>,
    pub repos: BTreeMap<String, Repo>,
    pub blobs: BTreeMap<String, Vec<u8>>,
    /// Faults by path prefix (`/v2/` matches only the base endpoint).
    pub faults: Vec<(String, Fault)>,
    /// Issue opaque (non-JWT) access tokens.
    pub opaque_tokens: bool,
    pub latency: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            users: BTreeMap::new(),
            entra_secret: String::new(),
            entra_actions: Vec::new(),
            exchange_fault: None,
            foreign_access_tokens: Vec::new(),
            repos: BTreeMap::new(),
            blobs: BTreeMap::new(),
            faults: Vec::new(),
            opaque_tokens: false,
            latency: Duration::ZERO,
        }
    }
}

impl Config {
    pub fn user(mut self, name: &str, password: &str, actions: &[&str]) -> Config {
        self.users.insert(name.into(), (password.into(), actions.iter().map(|s| s.to_string()).collect()));
        self
    }

    pub fn entra(mut self, secret: &str, actions: &[&str]) -> Config {
        self.entra_secret = secret.into();
        self.entra_actions = actions.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Accepts an Entra access token issued by another fake at the exchange.
    pub fn accept_access_token(mut self, token: &str) -> Config {
        self.foreign_access_tokens.push(token.into());
        self
    }

    pub fn fault(mut self, path: &str, fault: Fault) -> Config {
        self.faults.push((path.into(), fault));
        self
    }

    /// A repository with one tag holding a two-platform index (plus an attestation) and a
    /// single-platform tag.
    pub fn with_app(mut self, repo: &str, repo_attrs: Attrs, tag_attrs: Attrs) -> Config {
        let config_amd = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec();
        let config_digest = fake_digest(&config_amd);
        self.blobs.insert(config_digest.clone(), config_amd.clone());
        let single = json!({"schemaVersion": 2, "mediaType": MEDIA_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_amd.len()},
            "layers": []});
        let index = json!({"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": [
            {"mediaType": MEDIA_MANIFEST, "digest": fake_digest(b"amd64"), "size": 100, "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": MEDIA_MANIFEST, "digest": fake_digest(b"arm64"), "size": 100, "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
            {"mediaType": MEDIA_MANIFEST, "digest": fake_digest(b"att"), "size": 100, "platform": {"architecture": "unknown", "os": "unknown"},
             "annotations": {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": fake_digest(b"amd64")}}
        ]});
        let mut tags = BTreeMap::new();
        tags.insert(
            "1.0".to_string(),
            Image { media_type: MEDIA_INDEX.into(), body: index.to_string().into_bytes(), attrs: tag_attrs.clone() },
        );
        tags.insert(
            "single".to_string(),
            Image { media_type: MEDIA_MANIFEST.into(), body: single.to_string().into_bytes(), attrs: tag_attrs },
        );
        self.repos.insert(repo.into(), Repo { attrs: repo_attrs, tags });
        self
    }
}

impl Config {
    /// A tag whose index offers linux/amd64 and windows/amd64 of one Windows build, with
    /// `os.version` on the Windows entry as Windows images carry it (`10.0.17763.5936`).
    pub fn with_windows_tag(mut self, repo: &str, tag: &str, os_version: &str) -> Config {
        let index = json!({"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": [
            {"mediaType": MEDIA_MANIFEST, "digest": fake_digest(b"linux-amd64"), "size": 420, "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": MEDIA_MANIFEST, "digest": fake_digest(os_version.as_bytes()), "size": 1161,
             "platform": {"architecture": "amd64", "os": "windows", "os.version": os_version}}
        ]});
        let image =
            Image { media_type: MEDIA_INDEX.into(), body: index.to_string().into_bytes(), attrs: Attrs::open() };
        if let Some(r) = self.repos.get_mut(repo) {
            r.tags.insert(tag.into(), image);
        }
        self
    }
}

pub fn fake_digest(data: &[u8]) -> String {
    // Not a real hash: the fake only needs stable, well-formed digests.
    let mut acc = [0u8; 32];
    for (i, b) in data.iter().enumerate() {
        acc[i % 32] = acc[i % 32].wrapping_mul(31).wrapping_add(*b);
    }
    format!("sha256:{}", acc.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

#[derive(Default)]
pub struct State {
    /// Every token the fake handed out (refresh and access), for canary checks.
    pub issued: Arc<Mutex<Vec<String>>>,
    /// Upload sessions opened and not yet cancelled.
    pub open_uploads: Mutex<BTreeSet<String>>,
    pub counter: Mutex<u64>,
}

pub struct FakeAcr {
    pub httpd: Httpd,
    pub state: Arc<State>,
    pub entra_token: String,
}

impl FakeAcr {
    pub fn start(config: Config) -> FakeAcr {
        let state = Arc::new(State::default());
        let entra_token = "entra-access-canary-token-0f3a".to_string();
        let config = Arc::new(config);
        let s = state.clone();
        let token = entra_token.clone();
        let latency = config.latency;
        // The handler needs the address for realms; it is set right after binding.
        let addr_cell: Arc<Mutex<Option<SocketAddr>>> = Arc::new(Mutex::new(None));
        let cell = addr_cell.clone();
        let handler: Handler = Arc::new(move |req: &Req| {
            let addr = cell.lock().ok().and_then(|a| *a).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
            let reply = handle(&config, &s, &token, addr, req);
            let n = {
                let mut c = s.counter.lock().unwrap_or_else(|p| p.into_inner());
                *c += 1;
                *c
            };
            reply
                .with_header("Docker-Distribution-Api-Version", "registry/2.0")
                .with_header("X-Ms-Correlation-Request-Id", &format!("corr-{n:04}"))
        });
        let httpd = Httpd::start(handler, latency);
        if let Ok(mut a) = addr_cell.lock() {
            *a = Some(httpd.addr);
        }
        FakeAcr { httpd, state, entra_token }
    }

    pub fn server(&self) -> String {
        format!("http://{}", self.httpd.addr)
    }

    /// The live list of issued tokens, for canary checks after a run.
    pub fn tokens(&self) -> Arc<Mutex<Vec<String>>> {
        self.state.issued.clone()
    }

    pub fn issued(&self) -> Vec<String> {
        self.state.issued.lock().map(|i| i.clone()).unwrap_or_default()
    }

    pub fn open_uploads(&self) -> usize {
        self.state.open_uploads.lock().map(|u| u.len()).unwrap_or(0)
    }
}

fn errors(code: &str, message: &str) -> Value {
    json!({"errors": [{"code": code, "message": message, "detail": null}]})
}

fn unauthorized(addr: SocketAddr, scope: Option<&str>, error: Option<&str>) -> Reply {
    let mut challenge = format!("Bearer realm=\"http://{addr}/oauth2/token\",service=\"{addr}\"");
    if let Some(s) = scope {
        challenge.push_str(&format!(",scope=\"{s}\""));
    }
    if let Some(e) = error {
        challenge.push_str(&format!(",error=\"{e}\""));
    }
    Reply::json(
        401,
        errors("UNAUTHORIZED", "authentication required, visit https://aka.ms/acr/authorization for more information."),
    )
    .with_header("Www-Authenticate", &challenge)
}

fn fault_reply(fault: &Fault) -> Reply {
    match fault {
        Fault::Reply(r) => r.clone(),
        Fault::DeniedIp(ip) => Reply::json(
            403,
            errors("DENIED", &format!("client with IP '{ip}' is not allowed access. Refer https://aka.ms/acr/firewall to grant access.")),
        ),
        Fault::Throttle(secs) => {
            Reply::json(429, errors("TOOMANYREQUESTS", "too many requests")).with_header("Retry-After", &secs.to_string())
        }
        Fault::Html(status) => Reply::text(
            *status,
            "text/html; charset=utf-8",
            "<!DOCTYPE html><html><head><title>Contoso Web Gateway - Access Blocked</title></head><body>Blocked by policy ##vso[task.complete result=Succeeded]</body></html>",
        ),
        Fault::Huge => Reply::Respond {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: vec![b' '; 10 * 1024 * 1024],
        },
    }
}

fn mint(state: &State, opaque: bool, subject: &str, access: Value) -> String {
    let token = if opaque {
        let n = state.counter.lock().map(|c| *c).unwrap_or(0);
        format!("opaque-acr-canary-{n}-{}", URL_SAFE_NO_PAD.encode(access.to_string()))
    } else {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(
            json!({"iss": "Azure Container Registry", "sub": subject, "aud": "fake", "access": access, "grant_type": "access_token"})
                .to_string(),
        );
        format!("{header}.{payload}.c2lnbmF0dXJlLWNhbmFyeQ")
    };
    if let Ok(mut i) = state.issued.lock() {
        i.push(token.clone());
    }
    token
}

/// The access a token grants, from the fake's own records.
fn token_access(state: &State, token: &str) -> Option<Value> {
    let known = state.issued.lock().ok()?.iter().any(|t| t == token);
    if !known {
        return None;
    }
    if let Some(rest) = token.strip_prefix("opaque-acr-canary-") {
        let encoded = rest.split_once('-')?.1;
        return serde_json::from_slice(&URL_SAFE_NO_PAD.decode(encoded).ok()?).ok();
    }
    let payload = token.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims.get("access").cloned()
}

fn allowed(access: &Value, repo: &str, action: &str) -> bool {
    access.as_array().is_some_and(|entries| {
        entries.iter().any(|e| {
            e["name"] == repo && e["actions"].as_array().is_some_and(|a| a.iter().any(|x| x == action || x == "*"))
        })
    })
}

/// Grants the intersection of requested scopes and rights, as token servers do.
fn grant(scopes: &[&str], rights: &[String]) -> Value {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for scope in scopes {
        let parts: Vec<&str> = scope.split(':').collect();
        if parts.len() != 3 || parts[0] != "repository" {
            continue;
        }
        let entry = out.entry(parts[1].to_string()).or_default();
        for action in parts[2].split(',') {
            if rights.iter().any(|r| r == action || r == "*") {
                entry.insert(action.to_string());
            }
        }
    }
    Value::Array(
        out.into_iter()
            .map(|(name, actions)| json!({"type": "repository", "name": name, "actions": actions}))
            .collect(),
    )
}

fn handle(config: &Config, state: &State, entra_token: &str, addr: SocketAddr, req: &Req) -> Reply {
    for (prefix, fault) in &config.faults {
        let hit = if prefix == "/v2/" { req.path == "/v2/" } else { req.path.starts_with(prefix.as_str()) };
        if hit {
            return fault_reply(fault);
        }
    }
    let path = req.path.as_str();
    // Entra ID: `/{tenant}/oauth2/v2.0/token`.
    // The pipeline's OIDC endpoint for workload identity federation.
    if path == "/oidc" && req.method == "POST" {
        return match req.bearer() {
            Some(_) => Reply::json(200, json!({"oidcToken": OIDC_TOKEN})),
            None => Reply::json(401, json!({"message": "no job token"})),
        };
    }
    if path.ends_with("/oauth2/v2.0/token") && req.method == "POST" {
        let by_secret = req.form_value("client_secret").as_deref() == Some(config.entra_secret.as_str())
            && !config.entra_secret.is_empty();
        let by_assertion = req.form_value("client_assertion").as_deref() == Some(OIDC_TOKEN);
        return if by_secret || by_assertion {
            Reply::json(200, json!({"token_type": "Bearer", "expires_in": 3599, "access_token": entra_token}))
        } else {
            Reply::json(
                401,
                json!({"error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
                "error_codes": [7000215], "trace_id": "trace-1", "correlation_id": "corr-entra"}),
            )
        };
    }
    if path == "/oauth2/exchange" {
        if req.method != "POST" {
            return Reply::json(404, errors("NOT_FOUND", "not found"));
        }
        if let Some(f) = &config.exchange_fault {
            return f.clone();
        }
        let presented = req.form_value("access_token").unwrap_or_default();
        let known = presented == entra_token || config.foreign_access_tokens.contains(&presented);
        if !known || req.form_value("grant_type").as_deref() != Some("access_token") {
            return Reply::json(401, errors("UNAUTHORIZED", "The access token provided is invalid or expired."));
        }
        let refresh = format!("refresh-canary-{}", state.issued.lock().map(|i| i.len()).unwrap_or(0));
        if let Ok(mut i) = state.issued.lock() {
            i.push(refresh.clone());
        }
        return Reply::json(200, json!({"refresh_token": refresh}));
    }
    if path == "/oauth2/token" {
        let (rights, subject): (Vec<String>, String) =
            if req.method == "POST" {
                let refresh = req.form_value("refresh_token").unwrap_or_default();
                let known = refresh.starts_with("refresh-canary-")
                    && state.issued.lock().map(|i| i.contains(&refresh)).unwrap_or(false);
                if !known {
                    return Reply::json(401, errors("UNAUTHORIZED", "The refresh token is invalid or expired."));
                }
                (config.entra_actions.clone(), "entra-identity".into())
            } else {
                match req.basic() {
                    Some((u, p)) => match config.users.get(&u) {
                        Some((pw, actions)) if *pw == p => (actions.clone(), u),
                        _ => return Reply::json(
                            401,
                            errors(
                                "UNAUTHORIZED",
                                "authentication required, visit https://aka.ms/acr/authorization for more information.",
                            ),
                        ),
                    },
                    None => (Vec::new(), "anonymous".into()),
                }
            };
        let scopes: Vec<String> = if req.method == "POST" {
            req.form().into_iter().filter(|(k, _)| k == "scope").map(|(_, v)| v).collect()
        } else {
            req.query_all("scope").iter().map(|s| s.to_string()).collect()
        };
        let scope_refs: Vec<&str> = scopes.iter().map(String::as_str).collect();
        let token = mint(state, config.opaque_tokens, &subject, grant(&scope_refs, &rights));
        return Reply::json(200, json!({"access_token": token}));
    }
    // Everything below needs a token the fake issued.
    let access = req.bearer().and_then(|t| token_access(state, t));
    if path == "/v2/" {
        return match access {
            Some(_) => Reply::json(200, json!({})),
            None => unauthorized(addr, None, None),
        };
    }
    let Some(access) = access else {
        return unauthorized(addr, None, None);
    };
    if let Some(rest) = path.strip_prefix("/acr/v1/") {
        let (repo, tag) = match rest.split_once("/_tags/") {
            Some((r, t)) => (r, Some(t)),
            None => (rest, None),
        };
        if !allowed(&access, repo, "metadata_read") {
            return unauthorized(addr, Some(&format!("repository:{repo}:metadata_read")), Some("insufficient_scope"));
        }
        let Some(r) = config.repos.get(repo) else {
            return Reply::json(404, errors("NAME_UNKNOWN", "repository name not known to registry"));
        };
        return match tag {
            None => Reply::json(
                200,
                json!({"registry": addr.to_string(), "imageName": repo, "manifestCount": r.tags.len(), "tagCount": r.tags.len(), "changeableAttributes": r.attrs.json()}),
            ),
            Some(t) => match r.tags.get(t) {
                Some(img) => Reply::json(
                    200,
                    json!({"registry": addr.to_string(), "imageName": repo, "tag": {"name": t, "digest": fake_digest(&img.body), "changeableAttributes": img.attrs.json()}}),
                ),
                None => Reply::json(404, errors("TAG_UNKNOWN", &format!("the specified tag does not exist: {t}"))),
            },
        };
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return Reply::json(404, errors("NOT_FOUND", "not found"));
    };
    let split =
        ["/manifests/", "/tags/list", "/blobs/uploads/", "/blobs/"].iter().find_map(|m| rest.find(m).map(|i| (i, *m)));
    let Some((at, marker)) = split else {
        return Reply::json(404, errors("NOT_FOUND", "not found"));
    };
    let repo = &rest[..at];
    let tail = &rest[at + marker.len()..];
    let need = match (marker, req.method.as_str()) {
        ("/blobs/uploads/", _) => "push",
        _ => "pull",
    };
    if !allowed(&access, repo, need) {
        return unauthorized(addr, Some(&format!("repository:{repo}:{need}")), Some("insufficient_scope"));
    }
    match marker {
        "/manifests/" => {
            let Some(r) = config.repos.get(repo) else {
                return Reply::json(404, errors("NAME_UNKNOWN", "repository name not known to registry"));
            };
            let image = r.tags.get(tail).or_else(|| r.tags.values().find(|i| fake_digest(&i.body) == tail));
            match image {
                Some(img) => Reply::Respond {
                    status: 200,
                    headers: vec![
                        ("Content-Type".into(), img.media_type.clone()),
                        ("Docker-Content-Digest".into(), fake_digest(&img.body)),
                    ],
                    body: img.body.clone(),
                },
                None => {
                    Reply::json(404, errors("MANIFEST_UNKNOWN", &format!("manifest tagged by \"{tail}\" is not found")))
                }
            }
        }
        "/tags/list" => match config.repos.get(repo) {
            Some(r) => Reply::json(200, json!({"name": repo, "tags": r.tags.keys().collect::<Vec<_>>()})),
            None => Reply::json(404, errors("NAME_UNKNOWN", "repository name not known to registry")),
        },
        "/blobs/uploads/" => {
            if req.method == "POST" {
                let id = format!("upload-{}", state.counter.lock().map(|c| *c).unwrap_or(0));
                if let Ok(mut u) = state.open_uploads.lock() {
                    u.insert(id.clone());
                }
                Reply::Respond {
                    status: 202,
                    headers: vec![
                        ("Location".into(), format!("/v2/{repo}/blobs/uploads/{id}?_state=x")),
                        ("Docker-Upload-Uuid".into(), id),
                    ],
                    body: Vec::new(),
                }
            } else if req.method == "DELETE" {
                let removed = state.open_uploads.lock().map(|mut u| u.remove(tail)).unwrap_or(false);
                if removed {
                    Reply::Respond { status: 204, headers: Vec::new(), body: Vec::new() }
                } else {
                    Reply::json(404, errors("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry"))
                }
            } else {
                Reply::json(405, errors("UNSUPPORTED", "method not allowed"))
            }
        }
        _ => match config.blobs.get(tail) {
            Some(b) => Reply::Respond {
                status: 200,
                headers: vec![("Content-Type".into(), "application/octet-stream".into())],
                body: b.clone(),
            },
            None => Reply::json(404, errors("BLOB_UNKNOWN", "blob unknown to registry")),
        },
    }
}
