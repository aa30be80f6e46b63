//! The one HTTP client: rustls with the OS store, webpki roots and `SSL_CERT_FILE`;
//! connect and overall timeouts; bounded retries on 429/502/503/504 and resets honouring
//! `Retry-After` up to a cap; the configured proxy; plain http only to loopback; response
//! bodies read into memory up to a cap. It also records each response's `Date` header so the
//! agent check can measure clock skew without extra requests.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Method;
use url::Url;

use super::ensure_secure_url;
use super::limit::{self, Limiter};
use super::proxy::ProxyConfig;
use super::route::{RouteResolver, Routed, Routes};
use crate::secret::{Redactor, Secret};

/// What shapes every client the run builds.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub connect_timeout: Duration,
    /// Whole-request timeout for one attempt (headers and body).
    pub request_timeout: Duration,
    pub max_retries: u32,
    /// Longest `Retry-After` (or backoff) honoured before giving up on a retry.
    pub max_retry_wait: Duration,
    /// Largest response body read; larger bodies fail with `BodyTooLarge`.
    pub max_body_bytes: usize,
    /// PEM bundle of extra trusted roots (`SSL_CERT_FILE`).
    pub extra_roots_pem: Option<Vec<u8>>,
    pub proxy: ProxyConfig,
    pub user_agent: String,
    /// The run's secrets: every credential sent is registered with it, and every response
    /// quotes its text through it (`Response::excerpt`).
    pub redactor: Redactor,
    /// Names connected to another address (`AZP_PREFLIGHT_REGISTRY_ENDPOINTS`).
    pub routes: Routes,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
            max_retries: 2,
            max_retry_wait: Duration::from_secs(5),
            max_body_bytes: 2 * 1024 * 1024,
            extra_roots_pem: None,
            proxy: ProxyConfig::default(),
            user_agent: format!("azp-preflight/{}", env!("CARGO_PKG_VERSION")),
            redactor: Redactor::default(),
            routes: Routes::default(),
        }
    }
}

/// Why a request produced no usable response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpErrorKind {
    /// The URL itself was refused (plain http to a non-loopback host, bad scheme).
    Refused,
    Dns,
    ConnectTimeout,
    ConnectionRefused,
    ConnectionReset,
    Tls,
    /// No response (or no complete body) within the request timeout.
    Timeout,
    /// The body ended early or could not be read.
    Body,
    BodyTooLarge,
    /// This process (or machine) has no file descriptor left: a local limit, not the network.
    OutOfFiles,
    /// Not sent: no connection slot came free before the request's slot deadline (the run
    /// has more work than it can do in time; nothing was learned about the server).
    NoSlot,
    Other,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{detail}")]
pub struct HttpError {
    pub kind: HttpErrorKind,
    /// One line, safe to show: no header values, no bodies.
    pub detail: String,
}

impl HttpError {
    fn new(kind: HttpErrorKind, detail: impl Into<String>) -> Self {
        HttpError { kind, detail: detail.into() }
    }
}

/// A request described as data, so retries can rebuild it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub url: Url,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
    /// Whether this request may be retried (token requests with one-time assertions may not).
    pub retryable: bool,
    /// Give up with `NoSlot` if no connection slot is free by then.
    slot_deadline: Option<tokio::time::Instant>,
    /// A tighter body cap than the client's, for one request.
    max_body_bytes: Option<usize>,
}

impl Request {
    pub fn new(method: Method, url: Url) -> Self {
        Request {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            retryable: true,
            slot_deadline: None,
            max_body_bytes: None,
        }
    }

    pub fn get(url: Url) -> Self {
        Request::new(Method::GET, url)
    }

    pub fn head(url: Url) -> Self {
        Request::new(Method::HEAD, url)
    }

    pub fn post(url: Url) -> Self {
        Request::new(Method::POST, url)
    }

    /// Adds a header; a value that is not a valid header value is dropped (callers pass
    /// constants or values they built themselves).
    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.append(HeaderName::from_static(name), v);
        }
        self
    }

    pub fn bearer(self, token: &Secret) -> Self {
        self.sensitive_authorization(&format!("Bearer {}", token.expose()))
    }

    pub fn basic(self, username: &str, password: &Secret) -> Self {
        let raw = format!("{username}:{}", password.expose());
        self.sensitive_authorization(&format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())
        ))
    }

    fn sensitive_authorization(mut self, value: &str) -> Self {
        if let Ok(mut v) = HeaderValue::from_str(value) {
            v.set_sensitive(true);
            self.headers.insert(AUTHORIZATION, v);
        }
        self
    }

    /// An `application/x-www-form-urlencoded` body.
    pub fn form(mut self, fields: &[(&str, &str)]) -> Self {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
        self.headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
        self.body = Some(body.into_bytes());
        self
    }

    pub fn json(mut self, value: &serde_json::Value) -> Self {
        self.headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self.body = Some(value.to_string().into_bytes());
        self
    }

    /// An empty body sent with `Content-Length: 0` (ARM actions such as `listCredentials`
    /// take no body, and some front ends refuse a bodiless POST without the length).
    pub fn empty_body(mut self) -> Self {
        self.body = Some(Vec::new());
        self
    }

    pub fn no_retry(mut self) -> Self {
        self.retryable = false;
        self
    }

    /// Waits for a connection slot only until `at`, so a caller with its own deadline can
    /// tell "queued behind the run's other requests" from "the server did not answer".
    pub fn slot_deadline(mut self, at: tokio::time::Instant) -> Self {
        self.slot_deadline = Some(at);
        self
    }

    /// Caps this response's body below the client's cap (never above it).
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body_bytes = Some(bytes);
        self
    }
}

/// A response read to the end (up to the body cap).
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// How many retries it took to get this response.
    pub retries: u32,
    /// The run's secrets, for quoting this answer.
    pub redactor: Redactor,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Untrusted text from this answer (a field of its body, a header), quoted safely:
    /// secrets replaced, one line, then cut to `max_chars`.
    pub fn excerpt(&self, text: &str, max_chars: usize) -> String {
        self.redactor.excerpt(text, max_chars)
    }

    /// The body quoted the same way, or `(empty body)`.
    pub fn body_excerpt(&self, max_chars: usize) -> String {
        let text = self.text();
        if text.trim().is_empty() {
            "(empty body)".into()
        } else {
            self.excerpt(&text, max_chars)
        }
    }
}

/// A server's `Date` against our clock when the response arrived.
#[derive(Debug, Clone)]
pub struct DateObservation {
    pub host: String,
    pub server: SystemTime,
    pub local: SystemTime,
}

#[derive(Clone)]
pub struct HttpClient {
    settings: Arc<HttpSettings>,
    proxied: reqwest::Client,
    /// Built on first use: for IMDS, which must never go through a proxy.
    direct: Arc<OnceLock<reqwest::Client>>,
    dates: Arc<Mutex<Vec<DateObservation>>>,
    /// Connection slots shared by every request and by the registry check's raw probes.
    limiter: Limiter,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl HttpClient {
    pub fn new(settings: HttpSettings) -> Result<Self, String> {
        let proxied = build(&settings, true)?;
        Ok(HttpClient {
            settings: Arc::new(settings),
            proxied,
            direct: Arc::new(OnceLock::new()),
            dates: Arc::new(Mutex::new(Vec::new())),
            limiter: Limiter::default(),
        })
    }

    /// The same client with its own connection slots (the organisation scan allows as many
    /// connections to Azure DevOps as its `--concurrency`).
    pub fn with_connection_limits(mut self, global: usize, per_host: usize) -> Self {
        self.limiter = Limiter::new(global, per_host);
        self
    }

    /// The run's connection slots, for code that opens connections itself (the registry
    /// check's DNS/TCP/TLS probes).
    pub fn limiter(&self) -> &Limiter {
        &self.limiter
    }

    pub fn settings(&self) -> &HttpSettings {
        &self.settings
    }

    /// Sends through the configured proxy (unless bypassed), with retries.
    pub async fn send(&self, request: Request) -> Result<Response, HttpError> {
        self.send_with(&self.proxied, request).await
    }

    /// Sends without any proxy (instance metadata service).
    pub async fn send_direct(&self, request: Request) -> Result<Response, HttpError> {
        let client = match self.direct.get() {
            Some(c) => c.clone(),
            None => {
                let c = build(&self.settings, false).map_err(|e| HttpError::new(HttpErrorKind::Other, e))?;
                self.direct.get_or_init(|| c).clone()
            }
        };
        self.send_with(&client, request).await
    }

    /// Every `Date` header seen so far.
    pub fn date_observations(&self) -> Vec<DateObservation> {
        self.dates.lock().map(|d| d.clone()).unwrap_or_default()
    }

    async fn send_with(&self, client: &reqwest::Client, mut request: Request) -> Result<Response, HttpError> {
        // A plain-http override goes to its own origin; answers still name the registry's URL.
        let named = request.url.clone();
        let rewritten = match self.settings.routes.route(&request.url) {
            Some(Routed::Rewrite { url, host }) => {
                request.url = url.clone();
                if let Ok(v) = HeaderValue::from_str(&host) {
                    request.headers.insert(reqwest::header::HOST, v);
                }
                Some(url)
            }
            _ => None,
        };
        let mut outcome = self.send_routed(client, request).await;
        if let (Some(wire), Ok(resp)) = (rewritten, outcome.as_mut()) {
            if resp.url == wire {
                resp.url = named;
            }
        }
        outcome
    }

    async fn send_routed(&self, client: &reqwest::Client, request: Request) -> Result<Response, HttpError> {
        ensure_secure_url(&request.url).map_err(|e| HttpError::new(HttpErrorKind::Refused, e))?;
        // Whatever credential goes out is a secret in every form a server may echo it in,
        // whoever built the header.
        if let Some(value) = request.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
            self.settings.redactor.register_authorization(value);
        }
        let mut retries = 0;
        let host = limit::host_key(&request.url);
        loop {
            // One slot per attempt, held through the body read and released before a retry
            // waits. Time spent waiting counts against the caller's own deadline.
            let permit = match request.slot_deadline {
                None => self.limiter.acquire(&host).await,
                Some(at) => match tokio::time::timeout_at(at, self.limiter.acquire(&host)).await {
                    Ok(permit) => permit,
                    Err(_) => return Err(HttpError::new(HttpErrorKind::NoSlot, limit::no_slot_detail())),
                },
            };
            let outcome = self.attempt(client, &request).await;
            drop(permit);
            let retry_wait = match &outcome {
                Ok(resp) if matches!(resp.status, 429 | 502 | 503 | 504) => Some(retry_after(resp, retries)),
                Err(e) if e.kind == HttpErrorKind::ConnectionReset => Some(backoff(retries)),
                _ => None,
            };
            match retry_wait {
                Some(wait)
                    if request.retryable
                        && retries < self.settings.max_retries
                        && wait <= self.settings.max_retry_wait =>
                {
                    tracing::debug!(url = %request.url, retries, ?wait, "retrying");
                    tokio::time::sleep(wait).await;
                    retries += 1;
                }
                _ => {
                    return outcome.map(|mut r| {
                        r.retries = retries;
                        r
                    })
                }
            }
        }
    }

    async fn attempt(&self, client: &reqwest::Client, request: &Request) -> Result<Response, HttpError> {
        let mut builder = client.request(request.method.clone(), request.url.clone()).headers(request.headers.clone());
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let mut resp = builder.send().await.map_err(|e| classify(&e))?;
        let local = SystemTime::now();
        if let Some(server) =
            resp.headers().get("date").and_then(|v| v.to_str().ok()).and_then(|v| httpdate::parse_http_date(v).ok())
        {
            if let Ok(mut dates) = self.dates.lock() {
                dates.push(DateObservation { host: request.url.host_str().unwrap_or("").to_string(), server, local });
            }
        }
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let url = resp.url().clone();
        let cap = request.max_body_bytes.map_or(self.settings.max_body_bytes, |c| c.min(self.settings.max_body_bytes));
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| {
            let mut err = classify(&e);
            if err.kind == HttpErrorKind::Other {
                err.kind = HttpErrorKind::Body;
            }
            err
        })? {
            if body.len() + chunk.len() > cap {
                return Err(HttpError::new(
                    HttpErrorKind::BodyTooLarge,
                    format!("response body from {} exceeds {cap} bytes", request.url.host_str().unwrap_or("?")),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response { status, url, headers, body, retries: 0, redactor: self.settings.redactor.clone() })
    }
}

fn build(settings: &HttpSettings, with_proxy: bool) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.request_timeout)
        .user_agent(settings.user_agent.clone())
        .no_proxy()
        // Idle connections are descriptors too: no more kept per host than may be in use.
        .pool_max_idle_per_host(limit::PER_HOST_CONNECTIONS)
        .pool_idle_timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            if attempt.previous().len() >= 5 {
                attempt.error("more than 5 redirects")
            } else if let Err(e) = ensure_secure_url(attempt.url()) {
                attempt.error(format!("redirect refused: {e}"))
            } else if matches!(attempt.status().as_u16(), 307 | 308)
                && attempt.previous().last().is_some_and(|prev| prev.origin() != attempt.url().origin())
            {
                // 307/308 resend the body (a client secret, an assertion) to the new host:
                // hand the redirect back to the caller instead.
                attempt.stop()
            } else {
                attempt.follow()
            }
        }));
    if let Some(pem) = &settings.extra_roots_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| format!("SSL_CERT_FILE holds no usable PEM certificate ({e})"))?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    if settings.routes.resolves() {
        builder = builder.dns_resolver(Arc::new(RouteResolver(settings.routes.clone())));
    }
    if with_proxy {
        if let Some(proxy_url) = settings.proxy.url.clone() {
            let config = settings.proxy.clone();
            let routes = settings.routes.clone();
            // An overridden name is connected to directly: a proxy would resolve the name
            // itself and never reach the override's address.
            let mut proxy = reqwest::Proxy::custom(move |url| {
                if config.bypasses(url) || routes.covers(url) {
                    None
                } else {
                    Some(proxy_url.clone())
                }
            });
            if let (Some(user), Some(pass)) = (&settings.proxy.username, &settings.proxy.password) {
                proxy = proxy.basic_auth(user, pass.expose());
            }
            builder = builder.proxy(proxy);
        }
    }
    builder.build().map_err(|e| format!("cannot build the HTTP client ({e})"))
}

fn backoff(retries: u32) -> Duration {
    Duration::from_millis(200 * 2u64.pow(retries.min(4)))
}

/// `Retry-After` in seconds or as an HTTP date; absent → exponential backoff.
fn retry_after(resp: &Response, retries: u32) -> Duration {
    let Some(value) = resp.header("retry-after") else { return backoff(retries) };
    if let Ok(secs) = value.trim().parse::<u64>() {
        return Duration::from_secs(secs);
    }
    httpdate::parse_http_date(value)
        .ok()
        .map(|at| at.duration_since(SystemTime::now()).unwrap_or_default())
        .unwrap_or_else(|| backoff(retries))
}

/// Maps reqwest's error onto what a user can act on, walking the source chain.
fn classify(error: &reqwest::Error) -> HttpError {
    let mut chain = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        chain.push(e);
        source = e.source();
    }
    let text = chain.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(": ");
    let io_error = chain.iter().find_map(|e| e.downcast_ref::<std::io::Error>());
    let io_kind = io_error.map(|e| e.kind());
    // Checked first: a refused socket() looks like a DNS or connect failure otherwise.
    if io_error.is_some_and(limit::is_out_of_files) || limit::mentions_out_of_files(&text) {
        let detail = chain.iter().skip(1).map(|e| e.to_string()).collect::<Vec<_>>().join(": ");
        return HttpError::new(HttpErrorKind::OutOfFiles, if detail.is_empty() { error.to_string() } else { detail });
    }
    let tls = chain.iter().any(|e| e.downcast_ref::<rustls::Error>().is_some())
        || text.contains("certificate")
        || text.contains("tls handshake");
    let kind = if tls {
        HttpErrorKind::Tls
    } else if text.contains("dns error") || text.contains("failed to lookup address") {
        HttpErrorKind::Dns
    } else if io_kind == Some(std::io::ErrorKind::ConnectionRefused) {
        HttpErrorKind::ConnectionRefused
    } else if matches!(
        io_kind,
        Some(
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
        )
    ) {
        HttpErrorKind::ConnectionReset
    } else if error.is_timeout() && error.is_connect() {
        HttpErrorKind::ConnectTimeout
    } else if error.is_timeout() {
        HttpErrorKind::Timeout
    } else if error.is_body()
        || error.is_decode()
        || text.contains("connection closed before message completed")
        || text.contains("IncompleteMessage")
    {
        HttpErrorKind::Body
    } else {
        HttpErrorKind::Other
    };
    // reqwest's own message names the URL; keep only the causes, which carry no secrets.
    let detail = chain.iter().skip(1).map(|e| e.to_string()).collect::<Vec<_>>().join(": ");
    HttpError::new(kind, if detail.is_empty() { error.to_string() } else { detail })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[test]
    fn basic_credentials_are_base64_and_marked_sensitive() {
        let req = Request::get(Url::parse("https://r.example/").unwrap()).basic("user", &Secret::new("pass"));
        let value = req.headers.get(AUTHORIZATION).unwrap();
        assert_eq!(value.to_str().unwrap(), "Basic dXNlcjpwYXNz");
        assert!(value.is_sensitive());
    }

    /// Serves the canned responses in order, one per connection, and counts connections.
    async fn serve(responses: Vec<&'static str>) -> (Url, Arc<Mutex<u32>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let hits = Arc::new(Mutex::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            for resp in responses {
                let (mut sock, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                *counter.lock().unwrap() += 1;
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            }
        });
        (url, hits)
    }

    fn client() -> HttpClient {
        HttpClient::new(HttpSettings {
            request_timeout: Duration::from_secs(2),
            max_body_bytes: 64,
            ..HttpSettings::default()
        })
        .unwrap()
    }

    const THROTTLED: &str =
        "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    const OK: &str =
        "HTTP/1.1 200 OK\r\nDate: Sun, 22 Nov 2026 00:00:00 GMT\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

    #[tokio::test]
    async fn retries_throttling_then_succeeds_and_records_date() {
        let (url, hits) = serve(vec![THROTTLED, THROTTLED, OK]).await;
        let c = client();
        let resp = c.send(Request::get(url)).await.unwrap();
        assert_eq!((resp.status, resp.retries, resp.text().as_str()), (200, 2, "ok"));
        assert_eq!(*hits.lock().unwrap(), 3);
        assert_eq!(c.date_observations().len(), 1);
    }

    #[tokio::test]
    async fn gives_back_the_last_throttled_response_after_bounded_retries() {
        let (url, hits) = serve(vec![THROTTLED, THROTTLED, THROTTLED, OK]).await;
        let resp = client().send(Request::get(url)).await.unwrap();
        assert_eq!(resp.status, 429);
        assert_eq!(*hits.lock().unwrap(), 3);
    }

    #[tokio::test]
    async fn oversized_and_truncated_bodies_are_errors() {
        let big: &'static str =
            Box::leak(format!("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{}", "x".repeat(100)).into_boxed_str());
        let (url, _) = serve(vec![big]).await;
        assert_eq!(client().send(Request::get(url)).await.unwrap_err().kind, HttpErrorKind::BodyTooLarge);
        let (url, _) = serve(vec!["HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789"]).await;
        let err = client().send(Request::get(url).max_body(8)).await.unwrap_err();
        assert_eq!(
            (err.kind, err.detail.as_str()),
            (HttpErrorKind::BodyTooLarge, "response body from 127.0.0.1 exceeds 8 bytes")
        );
        let (url, _) = serve(vec!["HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort"]).await;
        assert_eq!(client().send(Request::get(url)).await.unwrap_err().kind, HttpErrorKind::Body);
    }

    #[tokio::test]
    async fn refused_connection_and_insecure_url_are_classified() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let url = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        assert_eq!(client().send(Request::get(url)).await.unwrap_err().kind, HttpErrorKind::ConnectionRefused);
        let insecure = Url::parse("http://example.com/").unwrap();
        assert_eq!(client().send(Request::get(insecure)).await.unwrap_err().kind, HttpErrorKind::Refused);
    }

    #[tokio::test]
    async fn a_body_is_never_resent_to_another_host() {
        // The second server would receive the form if the redirect were followed.
        let (other, hits) = serve(vec![OK]).await;
        let redirect: &'static str = Box::leak(
            format!("HTTP/1.1 307 Temporary Redirect\r\nLocation: {other}token\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .replace("127.0.0.1", "localhost")
                .into_boxed_str(),
        );
        let (url, _) = serve(vec![redirect]).await;
        let resp = client().send(Request::post(url).form(&[("client_secret", "s3cret")])).await.unwrap();
        assert_eq!(resp.status, 307);
        assert_eq!(*hits.lock().unwrap(), 0);
    }

    #[tokio::test]
    async fn requests_to_one_host_never_exceed_the_per_host_limit() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let (open, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (o, p) = (open.clone(), peak.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else { continue };
                let (o, p) = (o.clone(), p.clone());
                tokio::spawn(async move {
                    p.fetch_max(o.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                    let mut buf = [0u8; 4096];
                    let _ = sock.read(&mut buf).await;
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    // Counted closed before answering: the client may reuse the slot at once.
                    o.fetch_sub(1, Ordering::SeqCst);
                    let _ = sock.write_all(OK.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        let c = client();
        let requests = (0..40).map(|_| c.send(Request::get(url.clone())));
        let answers = futures_util::future::join_all(requests).await;
        assert!(answers.iter().all(|a| a.as_ref().is_ok_and(|r| r.status == 200)));
        let peak = peak.load(Ordering::SeqCst);
        assert!((2..=limit::PER_HOST_CONNECTIONS).contains(&peak), "peak {peak} connections to one host");
        assert_eq!(c.limiter().available(), limit::GLOBAL_CONNECTIONS, "every slot came back");
    }

    #[tokio::test]
    async fn a_request_that_gets_no_slot_in_time_is_no_slot_and_never_sent() {
        let (url, hits) = serve(vec![OK]).await;
        let c = client();
        let key = limit::host_key(&url);
        let mut held = Vec::new();
        for _ in 0..limit::PER_HOST_CONNECTIONS {
            held.push(c.limiter().acquire(&key).await);
        }
        let at = tokio::time::Instant::now() + Duration::from_millis(100);
        let err = c.send(Request::get(url.clone()).slot_deadline(at)).await.unwrap_err();
        assert_eq!(err.kind, HttpErrorKind::NoSlot);
        assert_eq!(*hits.lock().unwrap(), 0);
        drop(held);
        let at = tokio::time::Instant::now() + Duration::from_millis(500);
        assert_eq!(c.send(Request::get(url).slot_deadline(at)).await.unwrap().status, 200);
    }

    #[tokio::test]
    async fn a_hanging_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move {
            let (_sock, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(10)).await;
        });
        let c =
            HttpClient::new(HttpSettings { request_timeout: Duration::from_millis(300), ..HttpSettings::default() })
                .unwrap();
        assert_eq!(c.send(Request::get(url)).await.unwrap_err().kind, HttpErrorKind::Timeout);
    }
}

#[cfg(test)]
mod proxy_tests {
    use super::*;
    use crate::env::AgentEnv;
    use crate::secret::Redactor;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A proxy on loopback that refuses every tunnel and reports what it was asked.
    async fn refusing_proxy() -> (String, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let handle = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = sock.read(&mut buf).await.unwrap_or(0);
            let _ = sock.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n").await;
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        (addr, handle)
    }

    #[tokio::test]
    async fn agent_proxy_carries_remote_traffic_with_credentials() {
        let (addr, seen) = refusing_proxy().await;
        let redactor = Redactor::default();
        let env = AgentEnv::from_pairs([
            ("AGENT_PROXYURL", format!("http://{addr}")),
            ("AGENT_PROXYUSERNAME", "build".to_string()),
            ("AGENT_PROXYPASSWORD", "proxy-pw".to_string()),
        ]);
        let proxy = ProxyConfig::from_env(&env, &redactor).unwrap();
        let client = HttpClient::new(HttpSettings { proxy, max_retries: 0, ..HttpSettings::default() }).unwrap();
        // The name never resolves: the request can only reach the proxy, which refuses it.
        let result = client.send(Request::get(Url::parse("https://registry.invalid/v2/").unwrap())).await;
        assert!(result.is_err());
        let request = seen.await.unwrap();
        assert!(request.starts_with("CONNECT registry.invalid:443"), "{request}");
        assert!(request.to_ascii_lowercase().contains("proxy-authorization: basic"), "{request}");
    }
}
