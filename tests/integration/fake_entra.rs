//! A fake of the identity services the identity check talks to, on plain http on loopback:
//! the Entra ID v2.0 token endpoint (client secret, certificate assertion, federated
//! assertion) with its documented error bodies, Microsoft Graph's applications and
//! servicePrincipals, the Azure DevOps OIDC request endpoint, and the instance metadata
//! service. Paths: `/{tenant}/oauth2/v2.0/token`, `/graph/v1.0/...`, `/oidc`, `/imds/...`.
//!
//! Certificate assertions are verified for real (RS256 against the registered certificate,
//! `x5t`, audience, issuer, lifetime), so a wrong signature cannot pass.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const OIDC_ISSUER: &str = "https://vstoken.dev.azure.com/0ca3ddd9-f0b0-4635-a98c-5866526961b6";
pub const JOB_TOKEN: &str = "job-access-token-canary-4f1d8a";
/// The object id the fake gives every application.
pub const APP_OBJECT_ID: &str = "7bec5fd1-a25f-474c-a6ca-5492082c6a9b";

/// Tenants that make the token endpoint misbehave the way networks do.
pub const TENANT_PROXY_HTML: &str = "proxy-html";
pub const TENANT_TRUNCATED: &str = "truncated-body";
pub const TENANT_HANG: &str = "hang";
/// A debugging proxy that shows the request it blocked, secret and all.
pub const TENANT_PROXY_ECHO: &str = "proxy-echo";
/// A gateway speaking for Entra ID that refuses in Entra's own error shape and quotes the
/// request in `error_description`: the secret JSON-escaped and base64, the secret itself
/// starting just before the 300- and the 400-character cuts of a description, then the
/// form body.
pub const TENANT_ENTRA_ECHO: &str = "entra-echo";

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Unix time `days` from now (fractions allowed).
pub fn in_days(days: f64) -> i64 {
    now() + (days * 86_400.0) as i64
}

#[derive(Clone, Debug)]
pub struct FakeSecret {
    pub value: String,
    pub key_id: String,
    pub name: String,
    pub end: i64,
}

#[derive(Clone, Debug)]
pub struct FakeCert {
    pub der: Vec<u8>,
    pub key_id: String,
    pub end: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraphAccess {
    Allow,
    /// The application object is refused, the service principal readable.
    DenyApplication,
    /// Like `DenyApplication`, but the application may be read by its object id.
    SelfByObjectId,
    DenyAll,
}

#[derive(Clone, Debug)]
pub struct App {
    pub app_id: String,
    pub display_name: String,
    pub secrets: Vec<FakeSecret>,
    pub certs: Vec<FakeCert>,
    /// (issuer, subject) pairs of federated credentials.
    pub federated: Vec<(String, String)>,
    pub graph: GraphAccess,
}

impl App {
    pub fn new(app_id: &str) -> App {
        App {
            app_id: app_id.into(),
            display_name: format!("sc-{}", &app_id[..8.min(app_id.len())]),
            secrets: Vec::new(),
            certs: Vec::new(),
            federated: Vec::new(),
            graph: GraphAccess::Allow,
        }
    }

    pub fn secret(mut self, value: &str, name: &str, end: i64) -> App {
        let n = self.secrets.len() + self.certs.len();
        self.secrets.push(FakeSecret {
            value: value.into(),
            key_id: format!("0b5e1c6e-0000-4000-8000-{n:012}"),
            name: name.into(),
            end,
        });
        self
    }

    pub fn cert(mut self, cert_pem: &str, end: i64) -> App {
        let n = self.secrets.len() + self.certs.len();
        self.certs.push(FakeCert { der: pem_der(cert_pem), key_id: format!("9a3c0000-0000-4000-8000-{n:012}"), end });
        self
    }

    pub fn federated(mut self, issuer: &str, subject: &str) -> App {
        self.federated.push((issuer.into(), subject.into()));
        self
    }

    pub fn graph(mut self, access: GraphAccess) -> App {
        self.graph = access;
        self
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Imds {
    Token,
    NoIdentity,
    /// Another cloud's metadata service: 404 with an HTML page.
    NotAzure,
}

/// One request as the fake saw it.
#[derive(Clone, Debug)]
pub struct Hit {
    #[allow(dead_code)]
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HashMap<String, String>,
    pub form: HashMap<String, String>,
}

#[derive(Debug)]
pub struct State {
    pub apps: Vec<App>,
    /// Service connection id → subject of the ID token the OIDC endpoint issues.
    pub oidc_subjects: HashMap<String, String>,
    pub imds: Imds,
    /// Seconds added to the `Date` header of every answer.
    pub date_skew_secs: i64,
    /// Every access token and ID token handed out.
    pub issued: Vec<String>,
    /// Scope each access token was issued for.
    pub scopes: HashMap<String, String>,
    pub hits: Vec<Hit>,
}

pub struct FakeEntra {
    /// `http://127.0.0.1:<port>/`
    pub base: String,
    state: Arc<Mutex<State>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

static COUNTER: AtomicU64 = AtomicU64::new(1);

fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{prefix}{n:04}{nanos:09}{}", std::process::id())
}

impl FakeEntra {
    pub fn start() -> FakeEntra {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let base = format!("http://{}/", listener.local_addr().expect("address"));
        let state = Arc::new(Mutex::new(State {
            apps: Vec::new(),
            oidc_subjects: HashMap::new(),
            imds: Imds::Token,
            date_skew_secs: 0,
            issued: Vec::new(),
            scopes: HashMap::new(),
            hits: Vec::new(),
        }));
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let shared = state.clone();
        let served_base = base.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                loop {
                    tokio::select! {
                        _ = &mut rx => break,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let state = shared.clone();
                            let base = served_base.clone();
                            tokio::spawn(async move {
                                let service = service_fn(move |req| handle(state.clone(), base.clone(), req));
                                let _ = hyper::server::conn::http1::Builder::new()
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            });
                        }
                    }
                }
            });
            // Dropping the runtime cancels connections still hanging.
            rt.shutdown_background();
        });
        FakeEntra { base, state, shutdown: Some(tx), thread: Some(thread) }
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add_app(&self, app: App) {
        self.state().apps.push(app);
    }

    pub fn graph_url(&self) -> String {
        format!("{}graph/", self.base)
    }

    pub fn imds_url(&self) -> String {
        format!("{}imds/", self.base)
    }

    pub fn oidc_url(&self) -> String {
        format!("{}oidc", self.base)
    }

    pub fn hits(&self, path_part: &str) -> Vec<Hit> {
        self.state().hits.iter().filter(|h| h.path.contains(path_part)).cloned().collect()
    }
}

impl Drop for FakeEntra {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

type Answer = Response<Full<Bytes>>;

fn answer(status: u16, content_type: &str, body: String, skew: i64) -> Answer {
    let mut builder = Response::builder().status(status).header("content-type", content_type);
    if skew != 0 {
        let at = if skew > 0 {
            SystemTime::now() + Duration::from_secs(skew as u64)
        } else {
            SystemTime::now() - Duration::from_secs(skew.unsigned_abs())
        };
        builder = builder.header("date", httpdate::fmt_http_date(at));
    }
    builder.body(Full::new(Bytes::from(body))).unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn json_answer(status: u16, body: Value, skew: i64) -> Answer {
    answer(status, "application/json; charset=utf-8", body.to_string(), skew)
}

/// The documented Entra ID error body.
fn entra_error(status: u16, error: &str, code: u64, text: &str, skew: i64) -> Answer {
    let trace = format!("0000aaaa-11bb-cccc-dd33-{:012}", code);
    let correlation = format!("aaaa0000-bb11-2222-33cc-{:012}", code);
    let stamp = jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M:%SZ").to_string();
    json_answer(
        status,
        json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {text} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {stamp}"),
            "error_codes": [code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }),
        skew,
    )
}

fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    STANDARD.decode(body.trim()).expect("certificate PEM")
}

fn decode_segment(segment: &str) -> Option<Value> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).ok()?).ok()
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

async fn handle(state: Arc<Mutex<State>>, base: String, req: Request<Incoming>) -> Result<Answer, Infallible> {
    let method = req.method().to_string();
    let path = percent_decode(req.uri().path());
    let query = req.uri().query().unwrap_or("").to_string();
    let headers: HashMap<String, String> =
        req.headers().iter().map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string())).collect();
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let skew = {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        s.hits.push(Hit {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            headers: headers.clone(),
            form: form.clone(),
        });
        s.date_skew_secs
    };
    let bearer = headers.get("authorization").and_then(|a| a.strip_prefix("Bearer ")).map(str::to_string);

    if let Some(rest) = path.strip_prefix("/graph/v1.0/") {
        return Ok(graph(&state, rest, bearer.as_deref(), skew));
    }
    if path == "/oidc" {
        return Ok(oidc(&state, &query, bearer.as_deref(), skew));
    }
    if path == "/imds/metadata/identity/oauth2/token" {
        return Ok(imds(&state, &headers, skew));
    }
    if let Some(tenant) = path.strip_suffix("/oauth2/v2.0/token").map(|t| t.trim_start_matches('/').to_string()) {
        if method != "POST" {
            return Ok(answer(405, "text/plain", "method not allowed".into(), skew));
        }
        match tenant.as_str() {
            TENANT_PROXY_HTML => {
                return Ok(answer(
                    403,
                    "text/html",
                    "<html><head><title>Access denied</title></head><body><h1>Blocked by corporate proxy</h1>\
                     <p>##vso[task.complete result=Succeeded]policy 42</p></body></html>"
                        .into(),
                    skew,
                ))
            }
            TENANT_PROXY_ECHO => {
                let echoed = String::from_utf8_lossy(&body).into_owned();
                let decoded = form.get("client_secret").cloned().unwrap_or_default();
                // The decoded secret starts just before where a 200-character excerpt ends.
                let lead = format!("{:.<190}", "<html><body>Upstream refused the request ");
                return Ok(answer(502, "text/html", format!("{lead}{decoded}<pre>{echoed}</pre></body></html>"), skew));
            }
            TENANT_ENTRA_ECHO => {
                let secret = form.get("client_secret").cloned().unwrap_or_default();
                let json = serde_json::to_string(&secret).unwrap_or_default();
                let said = format!(
                    "AADSTS50000: There was an error issuing a token. Secret as json {}, as base64 {} ",
                    json.trim_matches('"'),
                    base64::engine::general_purpose::STANDARD.encode(&secret)
                );
                // Once across a 300-character cut, once across a 400-character one.
                let first = format!("{said:.<292}{secret} ");
                let description =
                    format!("{first:.<392}{secret} rejected. Request: {}", String::from_utf8_lossy(&body));
                return Ok(json_answer(
                    401,
                    json!({"error": "invalid_client", "error_description": description, "error_codes": [50000],
                           "trace_id": "0000aaaa-11bb-cccc-dd33-000000050000", "correlation_id": "aaaa0000-bb11-2222-33cc-000000050000"}),
                    skew,
                ));
            }
            TENANT_TRUNCATED => {
                return Ok(answer(
                    200,
                    "application/json",
                    r#"{"token_type":"Bearer","expires_in":3599,"access_tok"#.into(),
                    skew,
                ))
            }
            TENANT_HANG => {
                tokio::time::sleep(Duration::from_secs(120)).await;
                return Ok(answer(504, "text/plain", "late".into(), skew));
            }
            _ => {}
        }
        let token_url = format!("{base}{tenant}/oauth2/v2.0/token");
        return Ok(token(&state, &tenant, &token_url, &form, skew));
    }
    Ok(answer(404, "text/plain", format!("no route for {path}"), skew))
}

fn issue(state: &mut State, scope: &str) -> String {
    let token = unique("eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.fake-access-");
    state.issued.push(token.clone());
    state.scopes.insert(token.clone(), scope.to_string());
    token
}

fn token(
    state: &Arc<Mutex<State>>,
    tenant: &str,
    token_url: &str,
    form: &HashMap<String, String>,
    skew: i64,
) -> Answer {
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    if tenant != TENANT {
        return entra_error(400, "invalid_request", 90002, &format!("Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."), skew);
    }
    let client_id = form.get("client_id").cloned().unwrap_or_default();
    let scope = form.get("scope").cloned().unwrap_or_default();
    let Some(app) = s.apps.iter().find(|a| a.app_id == client_id).cloned() else {
        return entra_error(400, "unauthorized_client", 700016, &format!("Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant."), skew);
    };
    if let Some(secret) = form.get("client_secret") {
        return match app.secrets.iter().find(|x| &x.value == secret) {
            None => entra_error(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.", skew),
            Some(x) if x.end <= now() => entra_error(401, "invalid_client", 7000222, &format!("The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create new keys for your app."), skew),
            Some(_) => {
                let t = issue(&mut s, &scope);
                json_answer(200, json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": t}), skew)
            }
        };
    }
    let Some(assertion) = form.get("client_assertion") else {
        return entra_error(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            skew,
        );
    };
    if form.get("client_assertion_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        return entra_error(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_assertion_type'.",
            skew,
        );
    }
    let parts: Vec<&str> = assertion.split('.').collect();
    let (Some(header), Some(claims)) =
        (parts.first().and_then(|p| decode_segment(p)), parts.get(1).and_then(|p| decode_segment(p)))
    else {
        return entra_error(400, "invalid_request", 50027, "JWT token is invalid or malformed.", skew);
    };
    if let Some(x5t) = header["x5t"].as_str() {
        let thumb = URL_SAFE_NO_PAD.decode(x5t).unwrap_or_default();
        let cert = app.certs.iter().find(|c| {
            ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &c.der).as_ref() == thumb.as_slice()
        });
        let Some(cert) = cert else {
            return entra_error(401, "invalid_client", 700027, &format!("Client assertion failed signature validation. [Reason - The key was not found., Thumbprint of key used by client: '{}']", hex(&thumb)), skew);
        };
        if cert.end <= now() {
            return entra_error(401, "invalid_client", 700027, &format!("Client assertion failed signature validation. [Reason - The key used is expired., Thumbprint of key used by client: '{}']", hex(&thumb)), skew);
        }
        let sha256 = ring::digest::digest(&ring::digest::SHA256, &cert.der);
        let s256_ok = header["x5t#S256"]
            .as_str()
            .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
            .is_some_and(|v| v == sha256.as_ref());
        let (_, parsed) = x509_parser::parse_x509_certificate(&cert.der).expect("registered certificate parses");
        let spki = parsed.public_key().subject_public_key.data.to_vec();
        let signature = parts.get(2).and_then(|p| URL_SAFE_NO_PAD.decode(p).ok()).unwrap_or_default();
        let verified = header["alg"] == "RS256"
            && ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, spki)
                .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
                .is_ok();
        let lifetime = claims["exp"].as_i64().unwrap_or(0) - claims["nbf"].as_i64().unwrap_or(0);
        let claims_ok = claims["aud"] == token_url
            && claims["iss"] == client_id.as_str()
            && claims["sub"] == client_id.as_str()
            && claims["jti"].is_string()
            && (1..=600).contains(&lifetime)
            && claims["exp"].as_i64().unwrap_or(0) > now();
        if !(verified && claims_ok && s256_ok) {
            return entra_error(401, "invalid_client", 700027, "Client assertion failed signature validation.", skew);
        }
        let t = issue(&mut s, &scope);
        return json_answer(200, json!({"token_type": "Bearer", "expires_in": 3599, "access_token": t}), skew);
    }
    // A federated ID token: it must be one the OIDC endpoint issued, for an app credential.
    if !s.issued.iter().any(|t| t == assertion) {
        return entra_error(
            401,
            "invalid_client",
            700024,
            "Client assertion is not within its valid time range.",
            skew,
        );
    }
    let iss = claims["iss"].as_str().unwrap_or_default().to_string();
    let sub = claims["sub"].as_str().unwrap_or_default().to_string();
    if app.federated.is_empty() {
        return entra_error(
            400,
            "invalid_request",
            70025,
            &format!("The client '{client_id}' has no configured federated identity credentials."),
            skew,
        );
    }
    if !app.federated.iter().any(|(i, _)| *i == iss) {
        return entra_error(
            400,
            "invalid_request",
            700211,
            &format!("No matching federated identity record found for presented assertion issuer '{iss}'."),
            skew,
        );
    }
    if !app.federated.iter().any(|(i, x)| *i == iss && *x == sub) {
        return entra_error(401, "invalid_client", 700213, &format!("No matching federated identity record found for presented assertion subject '{sub}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion."), skew);
    }
    let t = issue(&mut s, &scope);
    json_answer(200, json!({"token_type": "Bearer", "expires_in": 3599, "access_token": t}), skew)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn graph_error(status: u16, code: &str, message: &str, skew: i64) -> Answer {
    json_answer(
        status,
        json!({"error": {"code": code, "message": message,
            "innerError": {"date": "2026-11-22T00:00:00", "request-id": "3957016c-0000-4000-8000-000000000001", "client-request-id": "3957016c-0000-4000-8000-000000000001"}}}),
        skew,
    )
}

fn graph(state: &Arc<Mutex<State>>, rest: &str, bearer: Option<&str>, skew: i64) -> Answer {
    let s = state.lock().unwrap_or_else(|p| p.into_inner());
    let scope = bearer.and_then(|b| s.scopes.get(b)).cloned();
    if !scope.is_some_and(|sc| sc.contains("/graph/")) {
        return graph_error(
            401,
            "InvalidAuthenticationToken",
            "Access token validation failure. Invalid audience.",
            skew,
        );
    }
    let by_object_id = rest.strip_prefix("applications/").filter(|id| *id == APP_OBJECT_ID).is_some();
    let (collection, app_id) = match rest.split_once("(appId='") {
        Some((c, tail)) => (c.to_string(), tail.trim_end_matches("')").to_string()),
        // The fake's applications all share one object id; the first app answers to it.
        None if by_object_id => {
            ("applications".to_string(), s.apps.first().map(|a| a.app_id.clone()).unwrap_or_default())
        }
        None => return graph_error(400, "BadRequest", "Unsupported request.", skew),
    };
    let Some(app) = s.apps.iter().find(|a| a.app_id == app_id) else {
        return graph_error(
            404,
            "Request_ResourceNotFound",
            &format!(
                "Resource '{app_id}' does not exist or one of its queried reference-property objects are not present."
            ),
            skew,
        );
    };
    let denied = match (collection.as_str(), app.graph) {
        (_, GraphAccess::DenyAll) | ("applications", GraphAccess::DenyApplication) => true,
        ("applications", GraphAccess::SelfByObjectId) => !by_object_id,
        _ => false,
    };
    if denied {
        return graph_error(
            403,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
            skew,
        );
    }
    let iso = |t: i64| jiff::Timestamp::from_second(t).map(|t| t.to_string()).unwrap_or_default();
    let body = match collection.as_str() {
        "applications" => json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#applications(id,appId,displayName,passwordCredentials,keyCredentials)/$entity",
            "id": APP_OBJECT_ID,
            "appId": app.app_id,
            "displayName": app.display_name,
            "passwordCredentials": app.secrets.iter().map(|x| json!({
                "customKeyIdentifier": null, "displayName": x.name, "endDateTime": iso(x.end),
                "hint": x.value.chars().take(3).collect::<String>(), "keyId": x.key_id, "secretText": null,
                "startDateTime": iso(x.end - 365 * 86_400)})).collect::<Vec<_>>(),
            "keyCredentials": app.certs.iter().map(|c| json!({
                "customKeyIdentifier": STANDARD.encode(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &c.der)),
                "displayName": "CN=azp-preflight-test", "endDateTime": iso(c.end), "key": null, "keyId": c.key_id,
                "startDateTime": iso(c.end - 30 * 86_400), "type": "AsymmetricX509Cert", "usage": "Verify"})).collect::<Vec<_>>(),
        }),
        "servicePrincipals" => json!({
            "id": "5a0e6f4b-0000-4000-8000-000000000001",
            "appId": app.app_id,
            "displayName": app.display_name,
            "passwordCredentials": [],
            "keyCredentials": [],
        }),
        _ => return graph_error(400, "BadRequest", "Unsupported collection.", skew),
    };
    json_answer(200, body, skew)
}

fn oidc(state: &Arc<Mutex<State>>, query: &str, bearer: Option<&str>, skew: i64) -> Answer {
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    if bearer != Some(JOB_TOKEN) {
        return json_answer(401, json!({"message": "Access denied: the job token is not valid."}), skew);
    }
    let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    if params.get("api-version").map(String::as_str) != Some("7.1") {
        return json_answer(400, json!({"message": "api-version 7.1 is required"}), skew);
    }
    let id = params.get("serviceConnectionId").cloned().unwrap_or_default();
    let Some(subject) = s.oidc_subjects.get(&id).cloned() else {
        return json_answer(
            400,
            json!({"$id": "1", "message": format!("No service connection found with identifier {id}."), "typeKey": "ArgumentException"}),
            skew,
        );
    };
    let t = now();
    let header = URL_SAFE_NO_PAD.encode(json!({"typ": "JWT", "alg": "RS256", "kid": "fake"}).to_string());
    let claims = URL_SAFE_NO_PAD.encode(
        json!({"jti": unique("jti-"), "sub": subject, "aud": "api://AzureADTokenExchange", "iss": OIDC_ISSUER,
               "nbf": t - 600, "exp": t + 300, "iat": t})
        .to_string(),
    );
    let token = format!("{header}.{claims}.{}", unique("oidc-signature-canary-"));
    s.issued.push(token.clone());
    json_answer(200, json!({"oidcToken": token}), skew)
}

fn imds(state: &Arc<Mutex<State>>, headers: &HashMap<String, String>, skew: i64) -> Answer {
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    match s.imds {
        Imds::NotAzure => {
            let mut a = answer(
                404,
                "text/html",
                "<?xml version=\"1.0\"?><html><body>404 - Not Found</body></html>".into(),
                skew,
            );
            if let Ok(v) = hyper::header::HeaderValue::from_str("EC2ws") {
                a.headers_mut().insert("server", v);
            }
            a
        }
        _ if headers.get("metadata").map(String::as_str) != Some("true") => json_answer(
            400,
            json!({"error": "bad_request_102", "error_description": "Required metadata header not specified"}),
            skew,
        ),
        Imds::NoIdentity => {
            json_answer(400, json!({"error": "invalid_request", "error_description": "Identity not found"}), skew)
        }
        Imds::Token => {
            let t = issue(&mut s, "imds");
            json_answer(
                200,
                json!({"access_token": t, "refresh_token": "", "expires_in": "3599",
                       "expires_on": (now() + 3599).to_string(), "not_before": now().to_string(),
                       "resource": "https://management.azure.com/", "token_type": "Bearer"}),
                skew,
            )
        }
    }
}

/// A fresh RSA key and self-signed certificate from the `openssl` command line, valid for
/// `days` (negative: ended a day ago): (key PEM, certificate PEM).
pub fn openssl_cert(days: i64) -> (String, String) {
    use std::process::Command;
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("key.pem");
    let cert = dir.path().join("cert.pem");
    let run = |cmd: &mut Command| {
        let out = cmd.output().expect("the openssl command line is installed");
        assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(Command::new("openssl").args(["genrsa", "-out"]).arg(&key).arg("2048"));
    run(Command::new("openssl")
        .args(["req", "-new", "-x509", "-subj", "/CN=azp-preflight-test", "-key"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-days", &days.max(1).to_string()]));
    if days < 0 {
        run(Command::new("openssl")
            .args(["x509", "-in"])
            .arg(&cert)
            .arg("-signkey")
            .arg(&key)
            .args(["-days", "-1", "-out"])
            .arg(&cert));
    }
    let read = |p: &std::path::Path| std::fs::read_to_string(p).expect("openssl wrote the file");
    (read(&key), read(&cert))
}

/// The `notAfter` of a certificate PEM, as Unix time.
pub fn not_after(cert_pem: &str) -> i64 {
    let der = pem_der(cert_pem);
    let (_, c) = x509_parser::parse_x509_certificate(&der).expect("certificate parses");
    c.validity().not_after.timestamp()
}
