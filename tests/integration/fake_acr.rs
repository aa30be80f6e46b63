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

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

pub use crate::fake_httpd::{Handler, Httpd, Reply, Req, TlsMaterial};

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
    /// The registry's login server names. Like ACR, the registry names its realm and
    /// service on its login server whatever address a request reached it at; a `Host` that
    /// is one of these names picks it. Empty: a loopback lab whose name is its address.
    pub login_servers: Vec<String>,
    /// The host a challenge names as its realm instead of the login server (a token service
    /// elsewhere, as some registries use).
    pub realm_host: Option<String>,
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
            login_servers: Vec::new(),
            realm_host: None,
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

    /// A login server name of the registry (see `login_servers`).
    pub fn login_server(mut self, name: &str) -> Config {
        self.login_servers.push(name.to_ascii_lowercase());
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
    /// Every request, for assertions on what reached the registry.
    pub log: Mutex<Vec<Req>>,
}

pub struct FakeAcr {
    pub httpd: Httpd,
    pub state: Arc<State>,
    pub entra_token: String,
}

impl FakeAcr {
    /// Plain http on loopback: a local lab, or a login server overridden to `http://127.0.0.1:<port>`.
    pub fn start(config: Config) -> FakeAcr {
        FakeAcr::serve(config, None)
    }

    /// TLS on loopback with `tls`'s certificate: a login server behind a private endpoint,
    /// reached through `AZP_PREFLIGHT_REGISTRY_ENDPOINTS=<name>=https://127.0.0.1:<port>`.
    pub fn start_tls(config: Config, tls: &TlsMaterial) -> FakeAcr {
        FakeAcr::serve(config, Some(tls))
    }

    fn serve(config: Config, tls: Option<&TlsMaterial>) -> FakeAcr {
        let state = Arc::new(State::default());
        let entra_token = "entra-access-canary-token-0f3a".to_string();
        let config = Arc::new(config);
        let s = state.clone();
        let token = entra_token.clone();
        let latency = config.latency;
        let secure = tls.is_some();
        // The handler needs the address when a request names no host; it is set right after binding.
        let addr_cell: Arc<Mutex<Option<SocketAddr>>> = Arc::new(Mutex::new(None));
        let cell = addr_cell.clone();
        let handler: Handler = Arc::new(move |req: &Req| {
            let addr = cell.lock().ok().and_then(|a| *a).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
            if let Ok(mut log) = s.log.lock() {
                log.push(req.clone());
            }
            let reply = handle(&config, &s, &token, &Named::of(req, addr, secure, &config), req);
            let n = {
                let mut c = s.counter.lock().unwrap_or_else(|p| p.into_inner());
                *c += 1;
                *c
            };
            reply
                .with_header("Docker-Distribution-Api-Version", "registry/2.0")
                .with_header("X-Ms-Correlation-Request-Id", &format!("corr-{n:04}"))
        });
        let httpd = match tls {
            Some(t) => Httpd::start_tls(handler, latency, t),
            None => Httpd::start(handler, latency),
        };
        if let Ok(mut a) = addr_cell.lock() {
            *a = Some(httpd.addr);
        }
        FakeAcr { httpd, state, entra_token }
    }

    /// Every request served so far, headers and bodies included.
    pub fn requests(&self) -> Vec<Req> {
        self.state.log.lock().map(|l| l.clone()).unwrap_or_default()
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

/// The registry's name for a request and the scheme it names it with. ACR names its token
/// realm and service on its login server
/// (`realm="https://contoso.azurecr.io/oauth2/token",service="contoso.azurecr.io"`) however it
/// was reached, never on an address; only a loopback lab without a name (its name is its
/// address, taken from `Host`) has an `http://` realm.
pub struct Named {
    pub host: String,
    pub scheme: &'static str,
    /// Where the challenge sends clients for tokens.
    pub realm: String,
}

impl Named {
    fn of(req: &Req, addr: SocketAddr, tls: bool, config: &Config) -> Named {
        let asked = req.header("host").map(str::to_ascii_lowercase);
        let host = match (asked, config.login_servers.first()) {
            (Some(h), None) => h,
            (Some(h), Some(_)) if config.login_servers.contains(&h) => h,
            (_, Some(name)) => name.clone(),
            (None, None) => addr.to_string(),
        };
        let bare = match host.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() && !h.ends_with(':') => h,
            _ => host.as_str(),
        };
        let bare = bare.trim_start_matches('[').trim_end_matches(']');
        let loopback = bare == "localhost" || bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        let scheme = if tls || !loopback { "https" } else { "http" };
        let realm = match config.realm_host.as_deref() {
            Some(elsewhere) => format!("https://{elsewhere}/oauth2/token"),
            None => format!("{scheme}://{host}/oauth2/token"),
        };
        Named { scheme, host, realm }
    }
}

fn unauthorized(named: &Named, scope: Option<&str>, error: Option<&str>) -> Reply {
    let mut challenge = format!("Bearer realm=\"{}\",service=\"{}\"", named.realm, named.host);
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

fn handle(config: &Config, state: &State, entra_token: &str, named: &Named, req: &Req) -> Reply {
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
            None => unauthorized(named, None, None),
        };
    }
    let Some(access) = access else {
        return unauthorized(named, None, None);
    };
    if let Some(rest) = path.strip_prefix("/acr/v1/") {
        let (repo, tag) = match rest.split_once("/_tags/") {
            Some((r, t)) => (r, Some(t)),
            None => (rest, None),
        };
        if !allowed(&access, repo, "metadata_read") {
            return unauthorized(named, Some(&format!("repository:{repo}:metadata_read")), Some("insufficient_scope"));
        }
        let Some(r) = config.repos.get(repo) else {
            return Reply::json(404, errors("NAME_UNKNOWN", "repository name not known to registry"));
        };
        return match tag {
            None => Reply::json(
                200,
                json!({"registry": named.host, "imageName": repo, "manifestCount": r.tags.len(), "tagCount": r.tags.len(), "changeableAttributes": r.attrs.json()}),
            ),
            Some(t) => match r.tags.get(t) {
                Some(img) => Reply::json(
                    200,
                    json!({"registry": named.host, "imageName": repo, "tag": {"name": t, "digest": fake_digest(&img.body), "changeableAttributes": img.attrs.json()}}),
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
        return unauthorized(named, Some(&format!("repository:{repo}:{need}")), Some("insufficient_scope"));
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
