//! The chain of links for one target, stopping at the first that fails:
//! syntax (REG001) → typo guard (REG002) → DNS (REG003, REG004) → TCP (REG005) → TLS (REG006)
//! → `GET /v2/` (REG007, REG008) → credential present (REG009) → authenticate (REG010,
//! REG011) → granted scope (REG012) → ACR locks (REG013) → manifest (REG014) → platform
//! (REG015); throttling anywhere is REG016.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;
use url::Url;

use super::answer::{self, Challenge};
use super::credentials::{self, Credential, DockerConfig, Sourced};
use super::missing;
use super::netprobe::{self, AddressClass};
use super::platform;
use super::server::{self, Server, ServerOrigin};
use super::tags::closest_tags;
use crate::azure::entra::{self, AccessToken, TokenError};
use crate::check::{Context, TargetOutcome};
use crate::codes::Code;
use crate::connections::{ConnectionKind, ServiceConnection};
use crate::finding::{Finding, Severity};
use crate::net::{HttpError, HttpErrorKind, Request, Response};
use crate::registry_target::{Intent, Platform, Reference};
use crate::report::sanitize::sanitize;
use crate::secret::Secret;

/// One target as planned: what to check and with which credential.
#[derive(Debug, Clone)]
pub struct TargetSpec {
    /// How the report names the target.
    pub name: String,
    /// Where it was written: `registries line 3`, `--registry`, `containerRegistry`.
    pub source: String,
    pub server_raw: String,
    pub origin: ServerOrigin,
    pub repository: Option<String>,
    pub reference: Option<Reference>,
    pub intent: Intent,
    pub platform: Option<Platform>,
    /// The credential when the target has a fixed one (its service connection); `None`
    /// means "resolve for the server" (Azure identity, variables, Docker config, anonymous).
    pub credential: Option<Sourced>,
    /// Set for targets that come from an ACR-type service connection.
    pub acr_connection: bool,
}

/// State shared by every target of one run.
pub struct Shared {
    tls: OnceLock<Result<Arc<rustls::ClientConfig>, String>>,
    docker: DockerConfig,
    variables: Option<Sourced>,
    /// Azure connections for ACR targets without a registry connection.
    azure: Vec<ServiceConnection>,
    /// One Entra token per connection and scope, however many targets need it.
    #[allow(clippy::type_complexity)]
    entra: tokio::sync::Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Result<AccessToken, TokenError>>>>>,
}

impl Shared {
    pub fn new(ctx: &Context) -> Shared {
        Shared {
            tls: OnceLock::new(),
            docker: DockerConfig::load(&ctx.env, &ctx.redactor),
            variables: credentials::from_variables(&ctx.env, &ctx.redactor),
            azure: ctx.settings.azure_connections.clone(),
            entra: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    fn tls(&self, ctx: &Context) -> Result<Arc<rustls::ClientConfig>, String> {
        self.tls.get_or_init(|| netprobe::client_config(ctx.http.settings().extra_roots_pem.as_deref())).clone()
    }

    async fn entra_token(
        &self,
        ctx: &Context,
        conn: &ServiceConnection,
        scope: &str,
    ) -> Result<AccessToken, TokenError> {
        let cell = {
            let mut map = self.entra.lock().await;
            map.entry(format!("{}\n{scope}", conn.id)).or_default().clone()
        };
        cell.get_or_init(|| async { entra::acquire(ctx, conn, scope).await }).await.clone()
    }
}

/// The token endpoint's GET form: `realm?service=..&scope=..[&account=..]`.
fn token_url(realm: &Url, service: Option<&str>, scopes: &[String], account: Option<&str>) -> Url {
    let mut url = realm.clone();
    {
        let mut q = url.query_pairs_mut();
        if let Some(s) = service {
            q.append_pair("service", s);
        }
        for s in scopes {
            q.append_pair("scope", s);
        }
        if let Some(a) = account {
            q.append_pair("account", a);
        }
    }
    url
}

/// Whether the token endpoint a challenge names may receive the credential. Plain http is
/// acceptable only when the registry itself was reached over plain http on loopback (a local
/// lab): a registry reached any other way that names an `http://` realm, loopback included,
/// would have the credential sent unencrypted, or to whatever listens on this agent.
fn realm_policy(realm: &Url, requested: &Url, answered_from: &Url) -> Result<(), String> {
    crate::net::ensure_secure_url(realm)?;
    let local_lab = |u: &Url| u.scheme() == "http" && u.host_str().is_some_and(crate::net::is_loopback_host);
    if realm.scheme() == "http" && !(local_lab(requested) && local_lab(answered_from)) {
        return Err(format!(
            "plain http is refused for a token endpoint unless the registry itself is reached over plain http on \
             loopback, and this registry answered from {}",
            answered_from.origin().ascii_serialization()
        ));
    }
    Ok(())
}

/// The chain stopped; its findings are already recorded.
struct Stop;

type Step<T> = Result<T, Stop>;

/// How the registry asks clients to authenticate (the `/v2/` answer).
#[derive(Debug, Clone)]
enum Gate {
    Open,
    Basic,
    Bearer { realm: Url, service: Option<String> },
}

/// What later requests carry.
#[derive(Clone)]
enum Auth {
    None,
    Basic { username: String, password: Secret },
    Bearer(Secret),
}

impl Auth {
    fn apply(&self, request: Request) -> Request {
        match self {
            Auth::None => request,
            Auth::Basic { username, password } => request.basic(username, password),
            Auth::Bearer(token) => request.bearer(token),
        }
    }
}

const PULL: &str = "pull";
const PUSH: &str = "push";
const METADATA_READ: &str = "metadata_read";

struct Chain<'a> {
    ctx: &'a Context,
    shared: &'a Shared,
    spec: &'a TargetSpec,
    deadline: Instant,
    out: TargetOutcome,
    passed: Vec<&'static str>,
    unverified: Vec<String>,
    credential_source: Option<String>,
    server: Option<Server>,
    acr_like: bool,
    anonymous: bool,
    /// The connection or identity behind the credential, for remedies.
    identity: Option<ServiceConnection>,
    credential_kind: &'static str,
    /// A request of this target found the repository (ACR's attributes read), so a tag list
    /// that answers 404 does not prove it missing.
    repository_seen: bool,
}

/// Runs the chain for one target. Never panics on remote input; every request is bounded by
/// the client's timeouts and by this target's share of the run deadline.
pub async fn check(ctx: Arc<Context>, shared: Arc<Shared>, spec: TargetSpec) -> TargetOutcome {
    run(&ctx, &shared, spec).await
}

/// The chain for one target, borrowing the run's context (for callers inside another job,
/// such as the deploy check resolving a target's image).
pub async fn run(ctx: &Context, shared: &Shared, spec: TargetSpec) -> TargetOutcome {
    let timeout = ctx.settings.timeout;
    // Finish a little before the run deadline so a slow link yields its own finding, not RUN001.
    let margin = (timeout / 10).max(Duration::from_millis(500));
    let budget = timeout.saturating_sub(margin).max(Duration::from_millis(500));
    let mut chain = Chain::new(ctx, shared, &spec, budget);
    let _ = chain.run().await;
    chain.finish()
}

impl<'a> Chain<'a> {
    fn new(ctx: &'a Context, shared: &'a Shared, spec: &'a TargetSpec, budget: Duration) -> Chain<'a> {
        Chain {
            ctx,
            shared,
            spec,
            deadline: Instant::now() + budget,
            out: TargetOutcome::default(),
            passed: Vec::new(),
            unverified: Vec::new(),
            credential_source: None,
            server: None,
            acr_like: spec.acr_connection,
            anonymous: false,
            identity: None,
            credential_kind: "none",
            repository_seen: false,
        }
    }

    fn finish(mut self) -> TargetOutcome {
        self.out.extra.insert("links".into(), Value::from(self.passed.clone()));
        if let Some(source) = &self.credential_source {
            self.out.extra.insert("credential".into(), Value::from(source.clone()));
        }
        if !self.unverified.is_empty() {
            self.out.extra.insert("unverified".into(), Value::from(self.unverified.clone()));
        }
        self.out
    }

    fn server(&self) -> &Server {
        // Set by the syntax link before any later link runs.
        self.server.as_ref().expect("the syntax link sets the server")
    }

    fn repo(&self) -> Option<String> {
        let server = self.server.as_ref()?;
        self.spec.repository.as_deref().map(|r| server.api_repository(r))
    }

    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// A finding about this target, tagged with the link that produced it.
    fn finding(&self, code: Code, link: &'static str, message: String) -> Finding {
        let mut f = Finding::new(code, message).data("link", link);
        if let Some(s) = &self.server {
            f = f.data("server", s.authority.clone());
        }
        if let Some(repo) = &self.spec.repository {
            f = f.data("repository", repo.clone());
        }
        f
    }

    fn fail(&mut self, finding: Finding) -> Stop {
        self.out.findings.push(finding);
        Stop
    }

    fn pass(&mut self, link: &'static str) {
        self.passed.push(link);
    }

    async fn run(&mut self) -> Step<()> {
        self.syntax()?;
        self.typo_guard()?;
        if self.ctx.settings.offline {
            return self.offline();
        }
        self.transport().await?;
        let gate = self.challenge().await?;
        let sourced = self.credential(&gate).await?;
        let auth = self.authenticate(&gate, sourced).await?;
        let Some(repo) = self.repo() else {
            return Ok(());
        };
        let granted = self.scope(&auth, &repo).await?;
        if self.acr_like {
            self.locks(&auth, &repo, granted.as_ref()).await?;
        }
        self.manifest(&auth, &repo).await
    }

    // ---- syntax and typo guard -------------------------------------------------------

    fn syntax(&mut self) -> Step<()> {
        let where_ = self.spec.source.clone();
        match server::parse_server(&self.spec.server_raw, self.spec.origin) {
            Ok(mut s) => {
                // Only an https name can keep its name through an override (`net::route`).
                if s.https {
                    s.endpoint = self.ctx.endpoints.registry_endpoint(&s.authority).cloned();
                }
                // Decided here, not at the first request, so an offline run says the same.
                if s.base_url().is_none() {
                    let shown = sanitize(&s.authority);
                    let finding = self
                        .finding(Code::REG001, "syntax", format!("`{shown}` ({where_}) does not form a URL"))
                        .remedy(format!("Correct the server in {where_}: a host name with an optional port."))
                        .data("problem", "url")
                        .data("value", shown);
                    return Err(self.fail(finding));
                }
                self.server = Some(s);
            }
            Err(m) => {
                let shown = sanitize(&crate::registry_target::mask_userinfo(&self.spec.server_raw));
                let fix = match &m.suggestion {
                    Some(s) => format!("Write it as `{}` in {where_}.", sanitize(s)),
                    None => format!("Correct the server in {where_}."),
                };
                let finding = self
                    .finding(Code::REG001, "syntax", format!("the login server `{shown}` ({where_}) cannot be used: {}", m.explanation))
                    .remedy(format!(
                        "{fix} A login server is a lower-case host name with an optional port, e.g. `contoso.azurecr.io`; \
                         `https://` may precede it, `http://` only for a loopback registry. Nothing was sent to it."
                    ))
                    .data("problem", m.problem)
                    .data("value", shown);
                return Err(self.fail(finding));
            }
        }
        if let Some(repo) = self.spec.repository.clone() {
            if let Err(m) = server::check_repository(&repo) {
                let finding = self
                    .finding(Code::REG001, "syntax", format!("{} ({where_})", m.explanation))
                    .remedy(match &m.suggestion {
                        Some(s) => format!(
                            "Write the repository as `{s}` in {where_}; Docker refuses upper-case repository names."
                        ),
                        None => format!("Correct the repository name in {where_}."),
                    })
                    .data("problem", m.problem);
                return Err(self.fail(finding));
            }
        }
        self.pass("syntax");
        Ok(())
    }

    fn typo_guard(&mut self) -> Step<()> {
        let host = self.server().host.clone();
        if let Some(t) = server::typo_of_known_domain(&host) {
            let finding = self
                .finding(
                    Code::REG002,
                    "typo",
                    format!(
                        "`{host}` ({}) looks like a misspelling of {}'s domain `{}` (`{}` is not it); no credential was sent to it",
                        self.spec.source, t.owner, t.intended, t.written
                    ),
                )
                .remedy(format!(
                    "Did you mean `{}`? Correct the server in {}. A near-miss domain may belong to someone else, so \
                     azp-preflight does not contact it with a credential.",
                    t.suggestion, self.spec.source
                ))
                .data("suggestion", t.suggestion.clone())
                .data("intended", t.intended);
            return Err(self.fail(finding));
        }
        self.pass("typo");
        Ok(())
    }

    /// Offline: the static links only, plus what the credential alone shows.
    fn offline(&mut self) -> Step<()> {
        if let Some(sourced) = self.spec.credential.clone() {
            if let Credential::Empty { fields } = &sourced.credential {
                let f = self.empty_credential_finding(&sourced, fields);
                self.out.findings.push(f);
            }
        }
        self.out.skipped = Some("offline: the login server was checked for syntax and typos only; DNS, TLS and the registry API were not contacted".into());
        Err(Stop)
    }

    // ---- transport -------------------------------------------------------------------

    async fn transport(&mut self) -> Step<()> {
        let server = self.server().clone();
        let Some(base) = server.base_url() else {
            return Err(self.fail(self.finding(
                Code::REG001,
                "syntax",
                format!("`{}` does not form a URL", server.authority),
            )));
        };
        let proxy = &self.ctx.http.settings().proxy;
        // An overridden address is connected to directly (`net::route`).
        if let (Some(proxy_url), false) = (&proxy.url, proxy.bypasses(&base) || server.endpoint.is_some()) {
            // Through a proxy the agent may not resolve or reach the host itself: the HTTP
            // links below classify failures instead.
            self.out.proven.push(format!("reached through the proxy {}", proxy_url.host_str().unwrap_or("?")));
            return Ok(());
        }
        let host = server.host.clone();
        let port = server.port_or_default();
        let api_host = base.host_str().unwrap_or(&host).trim_start_matches('[').trim_end_matches(']').to_string();
        // The probes below take a resolver socket and a connection: they count against the
        // run's connection slots like any request, until the probe's connection is closed.
        let slot_key = crate::net::limit::host_key(&base);
        let slot = self.ctx.http.limiter().acquire(&slot_key);
        let Ok(_permit) = tokio::time::timeout_at(self.deadline, slot).await else {
            let f = self.no_slot("tcp", &format!("the connection to `{api_host}`"));
            return Err(self.fail(f));
        };
        // The name stays for TLS and messages; the socket goes to the override's address.
        let connect_host = server.connect_host().unwrap_or_else(|| api_host.clone());
        let overridden = if server.endpoint.is_some() {
            format!(" (the address AZP_PREFLIGHT_REGISTRY_ENDPOINTS gives for `{}`)", server.authority)
        } else {
            String::new()
        };
        let addrs = if let Ok(ip) = connect_host.parse::<std::net::IpAddr>() {
            vec![std::net::SocketAddr::new(ip, port)]
        } else {
            let wait = self.remaining().min(Duration::from_secs(5));
            match netprobe::resolve(&connect_host, port, wait).await {
                Ok(a) => a,
                Err(e) if e.kind == netprobe::OUT_OF_FILES => {
                    let f = self.out_of_files(&format!("resolving `{connect_host}`"), &e.detail);
                    return Err(self.fail(f));
                }
                Err(e) => {
                    let single_label = !api_host.contains('.') && !server.is_loopback();
                    let mut remedy = format!(
                        "Check the spelling of `{api_host}` in {}; `nslookup {api_host}` on the agent shows what its DNS answers.",
                        self.spec.source
                    );
                    if single_label {
                        remedy.push_str(&format!(
                            " A single-label name needs its domain: for an Azure Container Registry, `{api_host}.azurecr.io`."
                        ));
                    }
                    if server.is_acr_host() {
                        remedy.push_str(&format!(
                            " `az acr show --name {} --query loginServer --output tsv` prints the registry's real name (a deleted registry no longer \
                             resolves). With a private endpoint, the agent's DNS must resolve `privatelink.azurecr.io`: link the private DNS zone to \
                             the agent's virtual network, or forward queries to 168.63.129.16.",
                            server.acr_name()
                        ));
                    }
                    if e.kind == "timeout" || e.kind == "temporary" {
                        remedy.push_str(" The resolver itself did not answer: check the agent's DNS servers.");
                    }
                    if server.endpoint.is_some() {
                        remedy = format!(
                            "Correct the address given for `{}` in AZP_PREFLIGHT_REGISTRY_ENDPOINTS, or check that the agent's DNS resolves `{connect_host}`.",
                            server.authority
                        );
                    }
                    let finding = self
                        .finding(
                            Code::REG003,
                            "dns",
                            format!(
                                "`{connect_host}`{overridden} does not resolve ({}): {}",
                                e.kind,
                                sanitize(&e.detail)
                            ),
                        )
                        .remedy(remedy)
                        .data("kind", e.kind);
                    return Err(self.fail(finding));
                }
            }
        };
        let private: Vec<String> = addrs
            .iter()
            .filter(|a| netprobe::address_class(a.ip()) == AddressClass::Private)
            .map(|a| a.ip().to_string())
            .collect();
        self.pass("dns");
        let wait = self.remaining().min(self.ctx.http.settings().connect_timeout);
        let stream = match netprobe::connect(&addrs, wait).await {
            Ok((stream, _)) => stream,
            Err(e) if e.kind == netprobe::OUT_OF_FILES => {
                let f = self.out_of_files(&format!("connecting to {}", e.address), &e.detail);
                return Err(self.fail(f));
            }
            Err(e) => {
                if !private.is_empty() {
                    let note = self.private_note(&api_host, &private, Severity::Warning, false);
                    self.out.findings.push(note);
                }
                let (what, fix) = match e.kind {
                    "timeout" => (
                        "timed out: a firewall, NSG or route drops the traffic".to_string(),
                        format!(
                            "Allow outbound TCP {port} from this agent to `{api_host}` (for an Azure Container Registry also to `*.data.azurecr.io`, \
                             or use the `AzureContainerRegistry` service tag). A proxy, if the network requires one, goes in the agent's proxy settings \
                             or HTTPS_PROXY."
                        ),
                    ),
                    "refused" => (
                        "was refused: nothing listens on that port".to_string(),
                        format!("Check the port in {} and that the registry is running and listening on port {port}.", self.spec.source),
                    ),
                    _ => (
                        format!("failed: {}", sanitize(&e.detail)),
                        "Check the agent's network routes to the registry.".to_string(),
                    ),
                };
                let finding = self
                    .finding(Code::REG005, "tcp", format!("TCP connection to {} (`{api_host}`) {what}", e.address))
                    .remedy(fix)
                    .data("kind", e.kind)
                    .data("address", e.address.to_string());
                return Err(self.fail(finding));
            }
        };
        if !private.is_empty() {
            let note = self.private_note(&api_host, &private, Severity::Note, true);
            self.out.findings.push(note);
        }
        self.pass("tcp");
        if !server.uses_tls() {
            drop(stream);
            self.out.proven.push("reachable (plain http on loopback)".into());
            return Ok(());
        }
        let config = match self.shared.tls(self.ctx) {
            Ok(c) => c,
            Err(e) => {
                let finding = self
                    .finding(Code::REG006, "tls", format!("the TLS trust store cannot be built: {}", sanitize(&e)))
                    .remedy("Point SSL_CERT_FILE at a readable PEM bundle of the CA certificates to trust.")
                    .data("kind", "certificate")
                    .data("reason", "trust-store");
                return Err(self.fail(finding));
            }
        };
        let wait = self.remaining().min(Duration::from_secs(10));
        match netprobe::handshake(stream, &api_host, config, wait).await {
            Ok(info) => {
                self.pass("tls");
                self.out.proven.push(format!("reachable over {}", info.version));
                Ok(())
            }
            Err(e) => {
                let fix = match e.reason {
                    "unknown-issuer" => "If a proxy inspects TLS on this network, add its root CA to the agent's trust store or to the PEM file named by \
                        SSL_CERT_FILE; for a registry with a private CA, add that CA the same way. Do not turn certificate verification off."
                        .to_string(),
                    "name-mismatch" => format!(
                        "Use the name the certificate was issued for, or reissue the certificate with `{api_host}` as a subject alternative name."
                    ),
                    "expired" | "not-yet-valid" => "Renew the registry's certificate, and check the agent's clock.".to_string(),
                    "not-tls" => format!(
                        "The port speaks plain HTTP: if this is a loopback test registry use `http://{}`, otherwise enable TLS on the registry.",
                        server.authority
                    ),
                    _ => "Check for a proxy or firewall that interferes with TLS to the registry, and that the registry's TLS configuration \
                        offers TLS 1.2 or 1.3."
                        .to_string(),
                };
                let finding = self
                    .finding(
                        Code::REG006,
                        "tls",
                        format!("TLS {} failure with `{api_host}`: {}", e.kind, sanitize(&e.detail)),
                    )
                    .remedy(fix)
                    .data("kind", e.kind)
                    .data("reason", e.reason);
                Err(self.fail(finding))
            }
        }
    }

    /// REG004: a note while the private address is reachable, a warning when it is not.
    fn private_note(&self, host: &str, private: &[String], severity: Severity, reachable: bool) -> Finding {
        let state = if reachable { "this agent reaches it" } else { "and this agent cannot reach it" };
        self.finding(
            Code::REG004,
            "dns",
            format!("`{host}` resolves to the private address {} (a private endpoint or internal network); {state}", private.join(", ")),
        )
        .severity(severity)
        .remedy(if reachable {
            "Nothing to do while the agent runs inside that network. Microsoft-hosted agents never reach private endpoints: \
             keep this pipeline on a self-hosted or scale-set agent in the registry's virtual network."
        } else {
            "Run the pipeline on an agent inside the registry's virtual network (self-hosted or scale-set agent), or peer the agent's \
             network with it; check that NSGs and firewalls allow TCP 443 to the private endpoint's address."
        })
        .data("addresses", private.to_vec())
    }

    // ---- HTTP helpers ------------------------------------------------------------------

    /// Sends one request; a transport failure becomes REG007 naming the request.
    async fn send(&mut self, link: &'static str, what: &str, request: Request) -> Step<Response> {
        match self.try_send(request).await {
            Ok(r) => Ok(r),
            Err(e) => {
                let f = self.transport_fault(link, what, &e);
                Err(self.fail(f))
            }
        }
    }

    async fn try_send(&self, request: Request) -> Result<Response, HttpError> {
        let wait = self.remaining();
        match tokio::time::timeout(wait, self.ctx.http.send(request.slot_deadline(self.deadline))).await {
            Ok(r) => r,
            Err(_) => Err(HttpError {
                kind: HttpErrorKind::Timeout,
                detail: format!("no complete answer within {:.1} s", wait.as_secs_f64()),
            }),
        }
    }

    /// RUN002: the agent ran out of file descriptors; says nothing about the network.
    fn out_of_files(&self, what: &str, detail: &str) -> Finding {
        let mut f = crate::net::limit::out_of_files_finding(what, detail);
        if let Some(s) = &self.server {
            f = f.data("server", s.authority.clone());
        }
        f
    }

    /// RUN001: queued behind the run's other connections until the target's time was up;
    /// says nothing about the server.
    fn no_slot(&self, link: &'static str, what: &str) -> Finding {
        let secs = self.ctx.settings.timeout.as_secs();
        self.finding(Code::RUN001, link, format!("{what} was not checked within the {secs} s deadline: {}", crate::net::limit::no_slot_detail()))
            .remedy(format!(
                "Nothing was learned about the registry. This run has more targets than it can check in {secs} s: raise `timeoutSeconds` \
                 (task) or `--timeout` (CLI), or split the targets over several steps."
            ))
            .data("kind", "no-slot")
            .data("timeoutSeconds", secs)
    }

    fn transport_fault(&self, link: &'static str, what: &str, e: &HttpError) -> Finding {
        let (kind, said) = match e.kind {
            HttpErrorKind::OutOfFiles => return self.out_of_files(what, &e.detail).data("link", link),
            HttpErrorKind::NoSlot => return self.no_slot(link, what),
            HttpErrorKind::Timeout => (
                "timeout",
                "did not answer in time (the server accepted the connection but sent no complete answer)".to_string(),
            ),
            HttpErrorKind::ConnectTimeout => ("timeout", "could not be connected to in time".to_string()),
            HttpErrorKind::ConnectionReset => ("reset", "reset the connection".to_string()),
            HttpErrorKind::ConnectionRefused => ("refused", "refused the connection".to_string()),
            HttpErrorKind::BodyTooLarge => ("too-large", "sent an answer larger than this tool reads".to_string()),
            HttpErrorKind::Body => ("truncated", "sent an answer that ended early or could not be read".to_string()),
            HttpErrorKind::Tls => ("tls", "failed TLS".to_string()),
            HttpErrorKind::Dns => ("dns", "could not be resolved".to_string()),
            HttpErrorKind::Refused => {
                ("insecure", "was not contacted: plain http is only allowed to loopback".to_string())
            }
            HttpErrorKind::Other => ("other", "failed".to_string()),
        };
        self.finding(Code::REG007, link, format!("{what} {said}: {}", sanitize(&e.detail)))
            .remedy(
                "Retry later; if it persists, a proxy or firewall between this agent and the registry is interfering (compare with \
                 `curl -v` to the same URL from the agent), or the registry is unhealthy (check its status page).",
            )
            .data("kind", kind)
    }

    /// Answers that mean the same thing at every link: throttling (REG016) and the
    /// firewall's DENIED with a client address (REG008).
    fn common(&self, link: &'static str, what: &str, resp: &Response) -> Option<Finding> {
        let corr = answer::correlation_suffix(resp);
        if resp.status == 429 || answer::has_error_code(resp, "TOOMANYREQUESTS") {
            let after = answer::retry_after(resp);
            let mut f = self
                .finding(
                    Code::REG016,
                    link,
                    format!(
                        "{what} was throttled: HTTP {} {} after {} retr{}{}{corr}",
                        resp.status,
                        answer::quote(resp),
                        resp.retries,
                        if resp.retries == 1 { "y" } else { "ies" },
                        after.as_ref().map(|a| format!(", Retry-After: {a}")).unwrap_or_default()
                    ),
                )
                .remedy(if self.acr_like {
                    format!(
                        "The registry's request budget is used up for now. Run again later; reduce parallel pulls and pushes, or move the \
                         registry to a higher SKU (`az acr update --name {} --sku Premium`). Anonymous and admin-user requests share one \
                         budget: give pipelines their own identity.",
                        self.server().acr_name()
                    )
                } else {
                    "The registry's rate limit is reached. Run again later, authenticate (anonymous pulls have the smallest limits), or use a \
                     pull-through cache or mirror."
                        .to_string()
                })
                .data("status", resp.status)
                .data("retries", resp.retries);
            if let Some(a) = after {
                f = f.data("retryAfter", a);
            }
            return Some(self.with_correlation(f, resp));
        }
        let text = resp.text();
        if resp.status == 403 || answer::has_error_code(resp, "DENIED") {
            if let Some(ip) = answer::denied_client_ip(&text) {
                let f = self
                    .finding(
                        Code::REG008,
                        link,
                        format!("the registry firewall denied this agent at {what}: {}{corr}", answer::quote(resp)),
                    )
                    .remedy(format!(
                        "Allow the agent's address: `az acr network-rule add --name {} --ip-address {ip}`. Microsoft-hosted agents change \
                         addresses (their ranges rotate weekly), so prefer a self-hosted or scale-set agent with a fixed egress address or a \
                         private endpoint, or allow the agents' service tag range.",
                        self.server().acr_name()
                    ))
                    .data("clientIp", ip)
                    .data("status", resp.status);
                return Some(self.with_correlation(f, resp));
            }
        }
        None
    }

    fn with_correlation(&self, mut f: Finding, resp: &Response) -> Finding {
        if let Some((header, value)) = answer::correlation(resp) {
            f = f.data("correlationId", value).data("correlationHeader", header);
        }
        f
    }

    /// An answer this link cannot use: REG007 with the status and the registry's words.
    fn unexpected(&self, link: &'static str, what: &str, resp: &Response) -> Finding {
        let kind = if answer::looks_like_html(resp) {
            "html"
        } else if resp.status >= 500 {
            "server-error"
        } else {
            "status"
        };
        let f = self
            .finding(
                Code::REG007,
                link,
                format!(
                    "{what} answered HTTP {}{}: {}{}",
                    resp.status,
                    api_version_note(resp),
                    answer::quote(resp),
                    answer::correlation_suffix(resp)
                ),
            )
            .remedy(if kind == "html" {
                "An HTML page came back where the registry API should answer: a proxy, captive portal or web firewall intercepts the \
                 request. Allow the registry's host through it, or configure the proxy for the agent (agent proxy settings or HTTPS_PROXY)."
                    .to_string()
            } else if resp.status >= 500 {
                "The registry failed on its side. Retry later and check the registry's service health; quote the correlation id when \
                 contacting its support."
                    .to_string()
            } else {
                format!("Check that `{}` is a container registry (the Docker Registry HTTP API v2 answers at `/v2/`).", self.server().authority)
            })
            .data("kind", kind)
            .data("status", resp.status);
        self.with_correlation(f, resp)
    }

    fn url(&self, path: &str) -> Option<Url> {
        self.server().base_url()?.join(path).ok()
    }

    // ---- /v2/ challenge ----------------------------------------------------------------

    async fn challenge(&mut self) -> Step<Gate> {
        let Some(url) = self.url("v2/") else {
            return Err(self.fail(self.finding(Code::REG001, "syntax", "the server does not form a URL".into())));
        };
        let what = format!("GET {url}");
        let resp = self.send("challenge", &what, Request::get(url.clone())).await?;
        if let Some(f) = self.common("challenge", &what, &resp) {
            return Err(self.fail(f));
        }
        let gate = match resp.status {
            200 => {
                // A page, whatever its headers, is a proxy or portal speaking for the registry.
                let is_registry = !answer::looks_like_html(&resp)
                    && (resp.header("docker-distribution-api-version").is_some()
                        || serde_json::from_slice::<Value>(&resp.body).is_ok_and(|v| v.is_object()));
                if !is_registry {
                    let f = self.unexpected("challenge", &what, &resp);
                    return Err(self.fail(f));
                }
                Gate::Open
            }
            401 => {
                let challenges = answer::challenges(&resp);
                let bearer = challenges.iter().find(|c| c.scheme == "bearer" && c.param("realm").is_some());
                match bearer {
                    Some(c) => self.bearer_gate(c, &url, &resp)?,
                    None if challenges.iter().any(|c| c.scheme == "basic") => Gate::Basic,
                    None => {
                        let f = self
                            .finding(
                                Code::REG007,
                                "challenge",
                                format!(
                                    "{what} answered 401 without a usable `WWW-Authenticate` challenge (Bearer with a realm, or Basic): {}{}",
                                    answer::quote(&resp),
                                    answer::correlation_suffix(&resp)
                                ),
                            )
                            .remedy("A proxy or gateway in front of the registry probably rewrites the answer; let registry traffic through unchanged.")
                            .data("kind", "no-challenge")
                            .data("status", 401);
                        return Err(self.fail(f));
                    }
                }
            }
            403 if answer::has_error_code(&resp, "DENIED") => {
                let f = self
                    .finding(
                        Code::REG008,
                        "challenge",
                        format!("the registry refused this agent before any credential: {}{}", answer::quote(&resp), answer::correlation_suffix(&resp)),
                    )
                    .remedy(format!(
                        "The registry's network rules exclude this agent (public access disabled, or an IP rule). See them with \
                         `az acr show --name {} --query networkRuleSet`; add the agent's address with `az acr network-rule add`, or run on an \
                         agent inside the registry's network.",
                        self.server().acr_name()
                    ))
                    .data("status", 403);
                let f = self.with_correlation(f, &resp);
                return Err(self.fail(f));
            }
            _ => {
                let f = self.unexpected("challenge", &what, &resp);
                return Err(self.fail(f));
            }
        };
        self.pass("challenge");
        Ok(gate)
    }

    fn bearer_gate(&mut self, c: &Challenge, v2: &Url, resp: &Response) -> Step<Gate> {
        let realm_text = c.param("realm").unwrap_or_default().to_string();
        let realm = match v2.join(&realm_text) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => u,
            _ => {
                let f = self
                    .finding(
                        Code::REG007,
                        "challenge",
                        format!("the Bearer challenge names a realm that is not a URL: `{}`{}", sanitize(&realm_text), answer::correlation_suffix(resp)),
                    )
                    .remedy("A proxy or a misconfigured registry sends this challenge; the registry's token endpoint must be an absolute https URL.")
                    .data("kind", "bad-realm");
                return Err(self.fail(f));
            }
        };
        let realm_host = realm.host_str().unwrap_or("").to_string();
        if let Some(t) = server::typo_of_known_domain(&realm_host) {
            let f = self
                .finding(
                    Code::REG002,
                    "challenge",
                    format!(
                        "the registry sends clients to the token endpoint `{realm_host}`, a near miss of {}'s `{}`; no credential was sent there",
                        t.owner, t.intended
                    ),
                )
                .remedy("Check the registry's token-auth configuration (`auth.token.realm`); it must name the real token service.")
                .data("suggestion", t.suggestion.clone());
            return Err(self.fail(f));
        }
        if let Err(e) = realm_policy(&realm, v2, &resp.url) {
            let f = self
                .finding(
                    Code::REG007,
                    "challenge",
                    format!("the token endpoint `{}` cannot be used: {e}", sanitize(realm.as_str())),
                )
                .remedy("Configure the registry's token realm with an https URL.")
                .data("kind", "insecure-realm");
            return Err(self.fail(f));
        }
        let server = self.server().clone();
        if !self.acr_like && realm_host == v2.host_str().unwrap_or("") && realm.path() == "/oauth2/token" {
            // ACR's own shape: the token service lives on the login server.
            self.acr_like = server.is_acr_host() || server.is_loopback();
        }
        if server.is_acr_host() {
            self.acr_like = true;
        }
        Ok(Gate::Bearer { realm, service: c.param("service").map(str::to_string) })
    }

    // ---- credential --------------------------------------------------------------------

    async fn credential(&mut self, gate: &Gate) -> Step<Sourced> {
        let sourced = match self.spec.credential.clone() {
            Some(s) => s,
            None => self.resolve_credential().await,
        };
        self.credential_source = Some(sourced.source.clone());
        self.identity = sourced.connection.as_deref().cloned();
        self.credential_kind = match &sourced.credential {
            Credential::Anonymous => "anonymous",
            Credential::Basic { .. } => "basic",
            Credential::RefreshToken { .. } => "refresh-token",
            Credential::Entra { .. } => "entra",
            Credential::Empty { .. } | Credential::Unreadable { .. } => "unusable",
        };
        match &sourced.credential {
            Credential::Empty { fields } => {
                let f = self.empty_credential_finding(&sourced, fields);
                return Err(self.fail(f));
            }
            Credential::Unreadable { detail } => {
                let f = self
                    .finding(Code::REG009, "credential", format!("the credential for `{}` cannot be read from {}: {}", self.server().authority, sourced.source, sanitize(detail)))
                    .remedy(format!(
                        "Fix the Docker configuration or its credential helper (`docker login {}` writes a working entry), or give the credential \
                         through AZP_PREFLIGHT_REGISTRY_USERNAME and AZP_PREFLIGHT_REGISTRY_PASSWORD.",
                        self.server().authority
                    ))
                    .data("source", sourced.source.clone());
                return Err(self.fail(f));
            }
            Credential::Anonymous => {
                self.anonymous = true;
                if matches!(gate, Gate::Basic) {
                    let f = self
                        .finding(
                            Code::REG009,
                            "credential",
                            format!(
                                "`{}` requires a username and password (Basic), and no credential for it was found",
                                self.server().authority
                            ),
                        )
                        .remedy(self.missing_credential_remedy())
                        .data("source", "none");
                    return Err(self.fail(f));
                }
            }
            _ => {}
        }
        self.pass("credential");
        Ok(sourced)
    }

    async fn resolve_credential(&mut self) -> Sourced {
        let server = self.server().clone();
        let azure_ok = server.is_acr_host() || (server.is_loopback() && self.acr_like);
        if azure_ok {
            if let Some(conn) = self.shared.azure.first() {
                self.acr_like = true;
                return Sourced {
                    credential: Credential::Entra { connection: Box::new(conn.clone()) },
                    source: format!("Azure identity {} (azureSubscription)", conn.label()),
                    connection: Some(Box::new(conn.clone())),
                };
            }
        }
        if let Some(v) = &self.shared.variables {
            return v.clone();
        }
        if let Some(found) = self.shared.docker.lookup(&server, &self.ctx.redactor).await {
            return found;
        }
        Sourced::anonymous()
    }

    fn empty_credential_finding(&self, sourced: &Sourced, fields: &[&'static str]) -> Finding {
        let settings = sourced.connection.as_ref().and_then(|c| c.settings_page(&self.ctx.env));
        let what = fields.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(" and ");
        let mut remedy = match &sourced.connection {
            Some(c) if c.kind == ConnectionKind::DockerRegistry && credentials::is_acr_connection(c) => format!(
                "Edit the service connection and enter the service principal's application id and secret (or recreate it with \
                 workload identity federation){}.",
                settings.as_ref().map(|s| format!(": {s}")).unwrap_or_default()
            ),
            Some(_) => format!(
                "Edit the service connection and fill in {what} (for an ACR admin user: the registry name and a password from \
                 `az acr credential show --name {}`){}.",
                self.server.as_ref().map(|s| s.acr_name()).unwrap_or_else(|| "<registry>".into()),
                settings.as_ref().map(|s| format!(": {s}")).unwrap_or_default()
            ),
            None => format!("Set {what} to non-empty values."),
        };
        remedy.push_str(
            " Nothing is sent while a value is empty; `docker login` would fail with an empty username, as the AzureIoTEdge@2 2.241.x \
             regression showed (\"The username for container registry is ''\").",
        );
        let mut f = Finding::new(
            Code::REG009,
            format!("{what} {} empty in {}", if fields.len() == 1 { "is" } else { "are" }, sourced.source),
        )
        .data("link", "credential")
        .data("fields", fields.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .data("source", sourced.source.clone())
        .remedy(remedy);
        if let Some(s) = &self.server {
            f = f.data("server", s.authority.clone());
        }
        f
    }

    fn missing_credential_remedy(&self) -> String {
        let server = self.server();
        if server.is_acr_host() {
            format!(
                "Give the step a credential for `{0}`: a `containerRegistry` service connection for it, or an `azureSubscription` \
                 connection whose identity has AcrPull/AcrPush on the registry. Locally, `az acr login --name {1}` or `docker login {0}`.",
                server.authority,
                server.acr_name()
            )
        } else {
            format!(
                "Give the step a credential for `{0}`: a `containerRegistry` service connection, or locally `docker login {0}` or \
                 AZP_PREFLIGHT_REGISTRY_USERNAME/AZP_PREFLIGHT_REGISTRY_PASSWORD.",
                server.authority
            )
        }
    }

    // ---- authenticate ------------------------------------------------------------------

    async fn authenticate(&mut self, gate: &Gate, sourced: Sourced) -> Step<Auth> {
        let source = sourced.source.clone();
        match gate {
            Gate::Open => {
                self.pass("authenticate");
                self.out.proven.push(if self.anonymous {
                    "anonymous access allowed".into()
                } else {
                    "registry needs no credential".into()
                });
                let auth = match sourced.credential {
                    Credential::Basic { username, password } => {
                        self.register_basic(&username, &password);
                        Auth::Basic { username, password }
                    }
                    _ => Auth::None,
                };
                Ok(auth)
            }
            Gate::Basic => {
                let Credential::Basic { username, password } = sourced.credential else {
                    let f = self
                        .finding(
                            Code::REG010,
                            "authenticate",
                            format!(
                                "`{}` only accepts a username and password (Basic), but {source} holds a token",
                                self.server().authority
                            ),
                        )
                        .remedy("Use a username/password credential for this registry.");
                    return Err(self.fail(f));
                };
                self.register_basic(&username, &password);
                let Some(url) = self.url("v2/") else { return Err(Stop) };
                let what = format!("GET {url} with Basic credentials");
                let resp = self.send("authenticate", &what, Request::get(url).basic(&username, &password)).await?;
                if let Some(f) = self.common("authenticate", &what, &resp) {
                    return Err(self.fail(f));
                }
                match resp.status {
                    200 => {
                        self.pass("authenticate");
                        self.out.proven.push(format!("credential accepted ({source})"));
                        Ok(Auth::Basic { username, password })
                    }
                    401 | 403 => {
                        let f = self.rejected(&what, &resp, &username);
                        Err(self.fail(f))
                    }
                    _ => {
                        let f = self.unexpected("authenticate", &what, &resp);
                        Err(self.fail(f))
                    }
                }
            }
            Gate::Bearer { realm, service } => {
                let scopes = self.scopes();
                let token = self.bearer_token(realm, service.as_deref(), &scopes, sourced).await?;
                if self.repo().is_none() {
                    self.verify_registry_token(&token).await?;
                }
                self.pass("authenticate");
                Ok(Auth::Bearer(token))
            }
        }
    }

    fn register_basic(&self, username: &str, password: &Secret) {
        // A server that echoes the Authorization header must not leak the password.
        self.ctx.redactor.register_basic(username, password.expose());
    }

    /// The scopes the intent needs, plus metadata read for ACR's lock attributes.
    fn scopes(&self) -> Vec<String> {
        let Some(repo) = self.repo() else { return Vec::new() };
        let actions = match self.spec.intent {
            Intent::Pull => PULL.to_string(),
            Intent::Push => format!("{PULL},{PUSH}"),
        };
        let mut scopes = vec![format!("repository:{repo}:{actions}")];
        if self.acr_like {
            scopes.push(format!("repository:{repo}:{METADATA_READ}"));
        }
        scopes
    }

    async fn bearer_token(
        &mut self,
        realm: &Url,
        service: Option<&str>,
        scopes: &[String],
        sourced: Sourced,
    ) -> Step<Secret> {
        let source = sourced.source.clone();
        let (request, how, username) = match sourced.credential {
            Credential::Basic { username, password } => {
                self.register_basic(&username, &password);
                let url = token_url(realm, service, scopes, Some(&username));
                (Request::get(url).basic(&username, &password), "basic", Some(username))
            }
            Credential::Anonymous => (Request::get(token_url(realm, service, scopes, None)), "anonymous", None),
            Credential::RefreshToken { token } => {
                (self.refresh_request(realm, service, scopes, &token), "refresh", None)
            }
            Credential::Entra { connection } => {
                let refresh = self.exchange(realm, service, &connection).await?;
                (self.refresh_request(realm, service, scopes, &refresh), "entra", None)
            }
            Credential::Empty { .. } | Credential::Unreadable { .. } => return Err(Stop),
        };
        let what = format!("the token endpoint {}{}", realm.origin().ascii_serialization(), realm.path());
        let resp = self.send("authenticate", &what, request).await?;
        if let Some(f) = self.common("authenticate", &what, &resp) {
            return Err(self.fail(f));
        }
        if resp.status == 200 {
            let body: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
            if let Some(rt) = body.get("refresh_token").and_then(|v| v.as_str()) {
                self.ctx.redactor.register(rt);
            }
            let token = body
                .get("access_token")
                .or_else(|| body.get("token"))
                .and_then(|v| v.as_str())
                .filter(|t| !t.is_empty());
            return match token {
                Some(t) => {
                    let token = self.ctx.redactor.secret(t);
                    self.out.proven.push(if how == "anonymous" {
                        "anonymous token issued".to_string()
                    } else {
                        format!("credential accepted ({source})")
                    });
                    Ok(token)
                }
                None => {
                    let f = self
                        .finding(Code::REG007, "authenticate", format!("{what} answered 200 without a token: {}{}", answer::quote(&resp), answer::correlation_suffix(&resp)))
                        .remedy("A proxy or a misbehaving token service answered; the token endpoint must return JSON with `token` or `access_token`.")
                        .data("kind", "no-token");
                    Err(self.fail(f))
                }
            };
        }
        if matches!(resp.status, 400 | 401 | 403) || (how == "refresh" && matches!(resp.status, 404 | 405)) {
            let f = match how {
                "anonymous" => self
                    .finding(
                        Code::REG009,
                        "credential",
                        format!(
                            "no credential for `{}` was found, and {what} refuses anonymous access: HTTP {} {}{}",
                            self.server().authority,
                            resp.status,
                            answer::quote(&resp),
                            answer::correlation_suffix(&resp)
                        ),
                    )
                    .remedy(self.missing_credential_remedy())
                    .data("status", resp.status),
                "entra" => self
                    .finding(
                        Code::REG011,
                        "authenticate",
                        format!(
                            "the ACR refresh token from the exchange was refused by {what}: HTTP {} {}{}",
                            resp.status,
                            answer::quote(&resp),
                            answer::correlation_suffix(&resp)
                        ),
                    )
                    .remedy(self.role_remedy(if self.spec.intent == Intent::Push { "AcrPush" } else { "AcrPull" }))
                    .data("status", resp.status),
                _ => self.rejected(&what, &resp, username.as_deref().unwrap_or("")),
            };
            let f = self.with_correlation(f, &resp);
            return Err(self.fail(f));
        }
        let f = self.unexpected("authenticate", &what, &resp);
        Err(self.fail(f))
    }

    fn refresh_request(&self, realm: &Url, service: Option<&str>, scopes: &[String], token: &Secret) -> Request {
        let mut fields: Vec<(&str, &str)> = vec![("grant_type", "refresh_token")];
        if let Some(s) = service {
            fields.push(("service", s));
        }
        for s in scopes {
            fields.push(("scope", s));
        }
        fields.push(("refresh_token", token.expose()));
        fields.push(("client_id", "azp-preflight"));
        Request::post(realm.clone()).form(&fields)
    }

    /// A credential the token service or registry refused (REG010), with the fix for the
    /// kind of credential it is.
    fn rejected(&self, what: &str, resp: &Response, username: &str) -> Finding {
        let server = self.server();
        let source = self.credential_source.clone().unwrap_or_default();
        let settings = self.identity.as_ref().and_then(|c| c.settings_page(&self.ctx.env));
        let update = settings.map(|s| format!(" Update the service connection: {s}")).unwrap_or_default();
        let remedy = if self.identity.as_ref().is_some_and(credentials::is_acr_connection) {
            format!(
                "The service principal's secret is wrong or expired. Create a new one with `az ad app credential reset --id {} --append` \
                 and put it in the service connection, or recreate the connection with workload identity federation.{update}",
                self.identity.as_ref().and_then(|c| c.param("SERVICEPRINCIPALID")).unwrap_or("<appId>")
            )
        } else if server.is_acr_host() && username == server.acr_name() {
            format!(
                "This is the registry's admin user: its password was regenerated, or the admin user is disabled. `az acr credential show --name {0}` \
                 prints the current passwords; `az acr update --name {0} --admin-enabled true` enables it.{update}",
                server.acr_name()
            )
        } else if server.is_acr_host() {
            format!(
                "Check the username and password: for a service principal, its application id and a current secret (`az ad app credential reset \
                 --id <appId> --append`); for a repository-scoped token, `az acr token credential generate --name <token> --registry {}`.{update}",
                server.acr_name()
            )
        } else if source.starts_with("Docker config") {
            format!("The stored login is stale: run `docker login {}` again.", server.authority)
        } else if source.starts_with("AZP_PREFLIGHT_REGISTRY") {
            "Set AZP_PREFLIGHT_REGISTRY_USERNAME and AZP_PREFLIGHT_REGISTRY_PASSWORD to a current login.".to_string()
        } else {
            format!("Check the username and password, or the access token that replaces the password, with the registry's owner.{update}")
        };
        let f = self
            .finding(
                Code::REG010,
                "authenticate",
                format!(
                    "{what} rejected the credential from {source}: HTTP {} {}{}",
                    resp.status,
                    answer::quote(resp),
                    answer::correlation_suffix(resp)
                ),
            )
            .remedy(remedy)
            .data("status", resp.status)
            .data("source", source);
        self.with_correlation(f, resp)
    }

    /// Entra ID token → `/oauth2/exchange` → ACR refresh token.
    async fn exchange(&mut self, realm: &Url, service: Option<&str>, conn: &ServiceConnection) -> Step<Secret> {
        // The Entra token goes only to the login server itself, never to a realm elsewhere.
        let same_host = self.server().base_url().is_some_and(|b| b.origin() == realm.origin());
        let Some(url) = self.url("oauth2/exchange").filter(|_| same_host) else {
            let f = self
                .finding(
                    Code::REG011,
                    "exchange",
                    format!(
                        "the registry's token endpoint `{}` is not on the login server `{}`; an Entra ID token is only exchanged at the login server",
                        sanitize(realm.as_str()),
                        self.server().authority
                    ),
                )
                .remedy("Check that the server is an Azure Container Registry login server; for other registries use a username/password connection.")
                .data("stage", "realm");
            return Err(self.fail(f));
        };
        let arm = match (&conn.kind, &conn.url) {
            (ConnectionKind::AzureRm, Some(u)) if !self.ctx.endpoints.arm_overridden => u.clone(),
            _ => self.ctx.endpoints.arm.to_string(),
        };
        let scope = format!("{}/.default", arm.trim_end_matches('/'));
        let token = match self.shared.entra_token(self.ctx, conn, &scope).await {
            Ok(t) => t,
            Err(TokenError::Config { parameter, problem }) => {
                let settings = conn.settings_page(&self.ctx.env).map(|s| format!(": {s}")).unwrap_or_default();
                let f = self
                    .finding(
                        Code::REG009,
                        "credential",
                        format!(
                            "the Azure identity {} cannot be used: parameter `{parameter}` {}",
                            conn.label(),
                            sanitize(&problem)
                        ),
                    )
                    .remedy(format!("Complete the service connection's settings{settings}."))
                    .data("parameter", parameter);
                return Err(self.fail(f));
            }
            Err(e) => {
                let f = self
                    .finding(Code::REG011, "exchange", format!("Entra ID gave no token for {} to exchange at the registry: {}", conn.label(), sanitize(&e.to_string())))
                    .remedy(
                        "The identity itself fails before the registry is involved: the identity check's findings (IDN codes) name the cause \
                         (expired or wrong secret, unknown application or tenant, federation subject). Fix the service connection, then run again.",
                    )
                    .data("stage", "entra");
                return Err(self.fail(f));
            }
        };
        let tenant = conn.param("TENANTID").map(str::to_string).or_else(|| {
            crate::azure::jwt::claims(token.token.expose()).and_then(|c| c.get("tid")?.as_str().map(str::to_string))
        });
        let mut fields: Vec<(&str, &str)> = vec![("grant_type", "access_token")];
        let service_value = service.map(str::to_string).unwrap_or_else(|| self.server().host.clone());
        fields.push(("service", &service_value));
        if let Some(t) = tenant.as_deref() {
            fields.push(("tenant", t));
        }
        fields.push(("access_token", token.token.expose()));
        let what = format!("POST {url}");
        let resp = self.send("exchange", &what, Request::post(url.clone()).form(&fields)).await?;
        if let Some(f) = self.common("exchange", &what, &resp) {
            return Err(self.fail(f));
        }
        if resp.status == 200 {
            let body: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
            if let Some(rt) = body.get("refresh_token").and_then(|v| v.as_str()).filter(|t| !t.is_empty()) {
                self.pass("exchange");
                return Ok(self.ctx.redactor.secret(rt));
            }
            let f = self
                .finding(Code::REG011, "exchange", format!("{what} answered 200 without a refresh token: {}{}", answer::quote(&resp), answer::correlation_suffix(&resp)))
                .remedy("A proxy or a non-ACR service answered the exchange; check that the login server is an Azure Container Registry.")
                .data("status", 200);
            return Err(self.fail(f));
        }
        if matches!(resp.status, 400 | 401 | 403 | 404) {
            let role = if self.spec.intent == Intent::Push { "AcrPush" } else { "AcrPull" };
            let mut remedy = self.role_remedy(role);
            if resp.status == 401 {
                remedy.push_str(&format!(
                    " If the registry refuses ARM-audience tokens (`az acr config authentication-as-arm show --registry {}` says disabled), \
                     enable it or use a connection type that requests the `https://containerregistry.azure.net/.default` audience.",
                    self.server().acr_name()
                ));
            }
            if resp.status == 404 {
                remedy = format!("`{}` has no token exchange endpoint: it is not an Azure Container Registry. Use a username/password connection.", self.server().authority);
            }
            let f = self
                .finding(
                    Code::REG011,
                    "exchange",
                    format!(
                        "the registry rejected the token exchange for {}: HTTP {} {}{}",
                        conn.label(),
                        resp.status,
                        answer::quote(&resp),
                        answer::correlation_suffix(&resp)
                    ),
                )
                .remedy(remedy)
                .data("status", resp.status);
            let f = self.with_correlation(f, &resp);
            return Err(self.fail(f));
        }
        let f = self.unexpected("exchange", &what, &resp);
        Err(self.fail(f))
    }

    /// The role assignment that grants `role` to the identity behind the credential.
    fn role_remedy(&self, role: &str) -> String {
        let server = self.server();
        let assignee = match &self.identity {
            Some(c) => match c.param("SERVICEPRINCIPALID") {
                Some(id) => id.to_string(),
                None if c.scheme.eq_ignore_ascii_case("ManagedServiceIdentity") => {
                    "<managed-identity-principal-id>".into()
                }
                None => "<appId>".into(),
            },
            None => "<appId>".into(),
        };
        let abac_role = if role == "AcrPush" {
            "Container Registry Repository Writer"
        } else {
            "Container Registry Repository Reader"
        };
        format!(
            "Grant the identity {role} on the registry: `az role assignment create --assignee {assignee} --role {role} --scope $(az acr show \
             --name {} --query id --output tsv)`. If the registry uses repository permissions (ABAC), assign `{abac_role}` instead; AcrPull/AcrPush \
             are ignored there. Role assignments take a few minutes to apply.",
            server.acr_name()
        )
    }

    async fn verify_registry_token(&mut self, token: &Secret) -> Step<()> {
        let Some(url) = self.url("v2/") else { return Err(Stop) };
        let what = format!("GET {url} with the issued token");
        let resp = self.send("authenticate", &what, Request::get(url).bearer(token)).await?;
        if let Some(f) = self.common("authenticate", &what, &resp) {
            return Err(self.fail(f));
        }
        match resp.status {
            200 => Ok(()),
            401 | 403 => {
                let error = answer::challenge_error(&resp).map(|e| format!(" (error=\"{e}\")")).unwrap_or_default();
                let f = self
                    .finding(
                        Code::REG010,
                        "authenticate",
                        format!("the registry did not accept the token its own token endpoint issued: HTTP {}{error} {}{}", resp.status, answer::quote(&resp), answer::correlation_suffix(&resp)),
                    )
                    .remedy("The token service and the registry disagree (service name, issuer or signing certificate); check the registry's token configuration.")
                    .data("status", resp.status);
                Err(self.fail(f))
            }
            _ => {
                let f = self.unexpected("authenticate", &what, &resp);
                Err(self.fail(f))
            }
        }
    }

    // ---- scope -------------------------------------------------------------------------

    /// Compares what the token grants with what the intent needs. Returns the granted
    /// actions when the token says (a JWT with `access`), else what the probes observed.
    async fn scope(&mut self, auth: &Auth, repo: &str) -> Step<Option<BTreeSet<String>>> {
        let needed: Vec<&str> = match self.spec.intent {
            Intent::Pull => vec![PULL],
            Intent::Push => vec![PULL, PUSH],
        };
        let claimed = match auth {
            Auth::Bearer(token) => granted_actions(token.expose(), repo),
            _ => None,
        };
        if let Some(granted) = &claimed {
            let missing: Vec<&str> = needed.iter().copied().filter(|a| !grants(granted, a)).collect();
            if !missing.is_empty() {
                // Ask the registry too, so the finding quotes its own refusal.
                let evidence = if missing.contains(&PUSH) {
                    self.upload_probe(auth, repo).await.map(|p| p.evidence).unwrap_or_default()
                } else {
                    self.pull_probe(auth, repo).await.map(|p| p.evidence).unwrap_or_default()
                };
                let f = self.scope_finding(&needed, granted, &evidence);
                return Err(self.fail(f));
            }
            self.pass("scope");
            let shown = shown_actions(granted);
            self.out.proven.push(match self.spec.intent {
                Intent::Push => format!("push allowed (token grants {shown})"),
                Intent::Pull => format!("pull allowed (token grants {shown})"),
            });
            if self.spec.intent == Intent::Push && !self.acr_like {
                // The token server does not know whether the registry takes writes (read-only mode).
                self.push_probe(auth, repo, granted).await?;
            }
            return Ok(claimed);
        }
        // Opaque token, Basic or open registry: observe instead.
        let mut observed = BTreeSet::new();
        let pull = self.pull_probe(auth, repo).await?;
        if pull.allowed {
            observed.insert(PULL.to_string());
        } else {
            let f = self.scope_finding(&needed, &observed, &pull.evidence);
            return Err(self.fail(f));
        }
        if self.spec.intent == Intent::Push {
            self.push_probe(auth, repo, &observed).await?;
            observed.insert(PUSH.to_string());
        } else {
            self.out.proven.push("pull allowed".into());
        }
        self.pass("scope");
        Ok(Some(observed))
    }

    fn scope_finding(&self, needed: &[&str], granted: &BTreeSet<String>, evidence: &str) -> Finding {
        let requested: Vec<String> = needed.iter().map(|s| s.to_string()).collect();
        // Only the actions an intent is about; metadata_read and the like are not the question.
        let granted_list: Vec<String> =
            ordered(granted).into_iter().filter(|a| a == PULL || a == PUSH || a == "*").collect();
        let shown_granted = if granted_list.is_empty() { "nothing".to_string() } else { granted_list.join(",") };
        let repo = self.spec.repository.clone().unwrap_or_default();
        let source = self.credential_source.clone().unwrap_or_default();
        let registry_said =
            if evidence.is_empty() { String::new() } else { format!("; the registry answered: {evidence}") };
        if self.anonymous {
            return self
                .finding(
                    Code::REG009,
                    "credential",
                    format!(
                        "no credential for `{}` was found, and anonymous access to `{repo}` grants {shown_granted} where {} needs {}{registry_said}",
                        self.server().authority,
                        self.spec.intent.as_str(),
                        requested.join(",")
                    ),
                )
                .remedy(self.missing_credential_remedy())
                .data("requested", requested)
                .data("granted", granted_list);
        }
        let remedy = if self.acr_like {
            let role = if needed.contains(&PUSH) { "AcrPush" } else { "AcrPull" };
            let mut r = self.role_remedy(role);
            if self.identity.is_none() && self.credential_kind == "basic" {
                r.push_str(&format!(
                    " For a repository-scoped token, add the actions to its scope map: `az acr scope-map update --name <scope-map> --registry {} \
                     --add-repository {repo} content/read{}`.",
                    self.server().acr_name(),
                    if needed.contains(&PUSH) { " content/write" } else { "" }
                ));
            }
            r
        } else {
            format!(
                "Give the account behind {source} {} rights on `{repo}` in the registry (its owner, team or project permissions), or change the \
                 target's intent if the pipeline only pulls.",
                if needed.contains(&PUSH) { "write (push)" } else { "read (pull)" }
            )
        };
        self.finding(
            Code::REG012,
            "scope",
            format!(
                "{source} may not {} `{repo}`: requested {}, granted {shown_granted}{registry_said}",
                self.spec.intent.as_str(),
                requested.join(","),
            ),
        )
        .remedy(remedy)
        .data("requested", requested)
        .data("granted", granted_list)
    }

    /// `GET /v2/<repo>/tags/list`: read access, and whether the repository exists.
    async fn pull_probe(&mut self, auth: &Auth, repo: &str) -> Step<Probe> {
        let Some(mut url) = self.url(&format!("v2/{repo}/tags/list")) else { return Err(Stop) };
        url.query_pairs_mut().append_pair("n", &super::tags::TAGS_ASKED.to_string());
        let what = format!("GET {}", url.path());
        let resp = self.send("scope", &what, auth.apply(Request::get(url))).await?;
        if let Some(f) = self.common("scope", &what, &resp) {
            return Err(self.fail(f));
        }
        let evidence = self.evidence(&what, &resp);
        match resp.status {
            200 => {
                let tags = serde_json::from_slice::<Value>(&resp.body)
                    .ok()
                    .and_then(|v| {
                        v.get("tags")
                            .and_then(|t| t.as_array())
                            .map(|a| a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect())
                    })
                    .unwrap_or_default();
                Ok(Probe { allowed: true, evidence, tags: Some(tags), repo_missing: false })
            }
            404 => Ok(Probe { allowed: true, evidence, tags: None, repo_missing: true }),
            401 | 403 => Ok(Probe { allowed: false, evidence, tags: None, repo_missing: false }),
            _ => {
                let f = self.unexpected("scope", &what, &resp);
                Err(self.fail(f))
            }
        }
    }

    /// `POST /v2/<repo>/blobs/uploads/`: write access, without writing.
    async fn upload_probe(&mut self, auth: &Auth, repo: &str) -> Step<Probe> {
        let Some(url) = self.url(&format!("v2/{repo}/blobs/uploads/")) else { return Err(Stop) };
        let what = format!("POST {}", url.path());
        // Never retried: a second POST would open a second session.
        let resp = self.send("scope", &what, auth.apply(Request::post(url.clone()).form(&[]).no_retry())).await?;
        let evidence = self.evidence(&what, &resp);
        if matches!(resp.status, 201 | 202) {
            self.cancel_upload(auth, &url, &resp).await;
            return Ok(Probe { allowed: true, evidence, tags: None, repo_missing: false });
        }
        if let Some(f) = self.common("scope", &what, &resp) {
            return Err(self.fail(f));
        }
        match resp.status {
            401 | 403 => Ok(Probe { allowed: false, evidence, tags: None, repo_missing: false }),
            405 => {
                let allow = resp.header("allow").map(|a| format!(" (Allow: {})", sanitize(a))).unwrap_or_default();
                let f = self
                    .finding(
                        Code::REG013,
                        "locks",
                        format!("the registry refuses writes: {what} answered HTTP 405 {}{allow}{}: it is read-only (maintenance mode) or this repository does not take pushes", answer::quote(&resp), answer::correlation_suffix(&resp)),
                    )
                    .remedy(
                        "Ask the registry's operator when writes are enabled again (a distribution registry in `storage.maintenance.readonly` mode \
                         refuses every push), or push to another registry meanwhile.",
                    )
                    .data("status", 405)
                    .data("kind", "read-only");
                Err(self.fail(f))
            }
            _ => {
                let f = self.unexpected("scope", &what, &resp);
                Err(self.fail(f))
            }
        }
    }

    /// Upload probe for a push target whose rights are already known or just observed.
    async fn push_probe(&mut self, auth: &Auth, repo: &str, granted: &BTreeSet<String>) -> Step<()> {
        let probe = self.upload_probe(auth, repo).await?;
        if probe.allowed {
            self.out.proven.push("push allowed (upload session opened and cancelled)".into());
            return Ok(());
        }
        let mut shown = granted.clone();
        shown.remove(PUSH);
        let f = self.scope_finding(&[PULL, PUSH], &shown, &probe.evidence);
        Err(self.fail(f))
    }

    async fn cancel_upload(&mut self, auth: &Auth, post_url: &Url, resp: &Response) {
        let Some(location) = resp.header("location").and_then(|l| post_url.join(l).ok()) else {
            self.unverified.push(
                "the upload session opened by the push probe had no Location to cancel; the registry expires it".into(),
            );
            return;
        };
        // Credentials go only back to the registry's own origin.
        let same_origin = location.origin() == post_url.origin();
        let request = if same_origin {
            auth.apply(Request::new(reqwest::Method::DELETE, location))
        } else {
            Request::new(reqwest::Method::DELETE, location)
        };
        match self.try_send(request).await {
            Ok(r) if r.is_success() => {}
            Ok(r) => self.unverified.push(format!(
                "cancelling the probe's upload session answered HTTP {}; the registry expires it",
                r.status
            )),
            Err(e) => self.unverified.push(format!(
                "cancelling the probe's upload session failed ({}); the registry expires it",
                sanitize(&e.detail)
            )),
        }
    }

    /// The registry's words for a refusal: status, challenge error, body, correlation id.
    fn evidence(&self, what: &str, resp: &Response) -> String {
        let error = answer::challenge_error(resp).map(|e| format!(" error=\"{e}\"")).unwrap_or_default();
        format!("{what} → HTTP {}{error} {}{}", resp.status, answer::quote(resp), answer::correlation_suffix(resp))
    }

    // ---- ACR locks ---------------------------------------------------------------------

    async fn locks(&mut self, auth: &Auth, repo: &str, granted: Option<&BTreeSet<String>>) -> Step<()> {
        if let (Auth::Bearer(token), Some(_)) = (auth, granted) {
            if granted_actions(token.expose(), repo).is_some_and(|g| !grants(&g, METADATA_READ)) {
                self.unverified.push("locks: the token has no metadata_read for this repository".into());
                return Ok(());
            }
        }
        let server = self.server().clone();
        let Some(url) = self.url(&format!("acr/v1/{repo}")) else { return Err(Stop) };
        let what = format!("GET {}", url.path());
        let resp = self.send("locks", &what, auth.apply(Request::get(url))).await?;
        if let Some(f) = self.common("locks", &what, &resp) {
            return Err(self.fail(f));
        }
        let intent = self.spec.intent;
        match resp.status {
            200 => {
                let attrs = serde_json::from_slice::<Value>(&resp.body)
                    .ok()
                    .and_then(|v| v.get("changeableAttributes").cloned());
                let Some(attrs) = attrs else {
                    let f = self.unexpected("locks", &what, &resp);
                    return Err(self.fail(f));
                };
                if let Some(f) =
                    self.lock_finding(&attrs, &format!("repository `{repo}`"), &format!("--repository {repo}"), &resp)
                {
                    return Err(self.fail(f));
                }
                self.repository_seen = true;
                self.out.proven.push("repository unlocked".into());
            }
            404 => {
                if intent == Intent::Push {
                    self.out.proven.push("repository is new (the push creates it)".into());
                }
                self.pass("locks");
                return Ok(());
            }
            401 | 403 => {
                self.unverified.push(format!("locks: {what} answered HTTP {}", resp.status));
                return Ok(());
            }
            _ => {
                let f = self.unexpected("locks", &what, &resp);
                return Err(self.fail(f));
            }
        }
        let (path, label, image_arg, key) = match &self.spec.reference {
            Some(Reference::Tag(t)) => {
                (format!("acr/v1/{repo}/_tags/{t}"), format!("tag `{repo}:{t}`"), format!("--image {repo}:{t}"), "tag")
            }
            Some(Reference::Digest(d)) => (
                format!("acr/v1/{repo}/_manifests/{d}"),
                format!("manifest `{repo}@{d}`"),
                format!("--image {repo}@{d}"),
                "manifest",
            ),
            None => {
                self.pass("locks");
                return Ok(());
            }
        };
        let Some(url) = self.url(&path) else { return Err(Stop) };
        let what = format!("GET {}", url.path());
        let resp = self.send("locks", &what, auth.apply(Request::get(url))).await?;
        if let Some(f) = self.common("locks", &what, &resp) {
            return Err(self.fail(f));
        }
        match resp.status {
            200 => {
                let attrs = serde_json::from_slice::<Value>(&resp.body)
                    .ok()
                    .and_then(|v| v.get(key)?.get("changeableAttributes").cloned());
                match attrs {
                    Some(attrs) => {
                        if let Some(f) = self.lock_finding(&attrs, &label, &image_arg, &resp) {
                            return Err(self.fail(f));
                        }
                        self.out.proven.push(format!("{key} unlocked"));
                    }
                    None => {
                        let f = self.unexpected("locks", &what, &resp);
                        return Err(self.fail(f));
                    }
                }
            }
            404 => {}
            401 | 403 => self.unverified.push(format!("{key} lock: {what} answered HTTP {}", resp.status)),
            _ => {
                let f = self.unexpected("locks", &what, &resp);
                return Err(self.fail(f));
            }
        }
        let _ = server;
        self.pass("locks");
        Ok(())
    }

    fn lock_finding(&self, attrs: &Value, label: &str, target_arg: &str, resp: &Response) -> Option<Finding> {
        let flag = |name: &str| attrs.get(name).and_then(|v| v.as_bool());
        let (attribute, verb) = match self.spec.intent {
            Intent::Push => ("writeEnabled", "push"),
            Intent::Pull => ("readEnabled", "pull"),
        };
        if flag(attribute) != Some(false) {
            return None;
        }
        let cli_flag = if attribute == "writeEnabled" { "--write-enabled" } else { "--read-enabled" };
        let f = self
            .finding(
                Code::REG013,
                "locks",
                format!(
                    "{label} is locked: `{attribute}` is false, so a {verb} fails with \"The operation is disallowed on this registry, repository or image\"{}",
                    answer::correlation_suffix(resp)
                ),
            )
            .remedy(format!(
                "If the lock is no longer wanted: `az acr repository update --name {} {target_arg} {cli_flag} true`. Locks are often set on \
                 purpose (released images); push a new tag instead of overwriting a locked one.",
                self.server().acr_name()
            ))
            .data("attribute", attribute)
            .data("changeableAttributes", attrs.clone());
        Some(self.with_correlation(f, resp))
    }

    // ---- manifest and platform ---------------------------------------------------------

    async fn manifest(&mut self, auth: &Auth, repo: &str) -> Step<()> {
        let intent = self.spec.intent;
        let reference = match (&self.spec.reference, intent, &self.spec.platform) {
            (Some(Reference::Tag(t)), _, _) => t.clone(),
            (Some(Reference::Digest(d)), _, _) => d.clone(),
            // Docker pulls `latest` when no tag is given.
            (None, Intent::Pull, Some(_)) => "latest".to_string(),
            (None, Intent::Pull, None) => return self.repository_readable(auth, repo).await,
            (None, Intent::Push, _) => return Ok(()),
        };
        let Some(url) = self.url(&format!("v2/{repo}/manifests/{reference}")) else { return Err(Stop) };
        let what = format!("HEAD {}", url.path());
        let resp = self
            .send("manifest", &what, auth.apply(Request::head(url.clone()).header("accept", platform::MANIFEST_ACCEPT)))
            .await?;
        if let Some(f) = self.common("manifest", &what, &resp) {
            return Err(self.fail(f));
        }
        let shown_ref = match &self.spec.reference {
            Some(Reference::Digest(d)) => format!("{repo}@{d}"),
            _ => format!("{repo}:{reference}"),
        };
        match resp.status {
            200 => {}
            404 => {
                if intent == Intent::Push {
                    self.out.proven.push(format!("`{shown_ref}` is not in the registry yet (the push creates it)"));
                    self.pass("manifest");
                    return Ok(());
                }
                let f = self.missing_manifest(auth, repo, &reference, &shown_ref, &url).await?;
                return Err(self.fail(f));
            }
            401 | 403 => {
                let evidence = self.evidence(&what, &resp);
                let f = self.scope_finding(&[PULL], &BTreeSet::new(), &evidence);
                return Err(self.fail(f));
            }
            _ => {
                let f = self.unexpected("manifest", &what, &resp);
                return Err(self.fail(f));
            }
        }
        let digest = resp.header("docker-content-digest").map(sanitize);
        let media = resp.header("content-type").unwrap_or("").to_string();
        let short = digest.as_deref().map(|d| format!(" ({})", short_digest(d))).unwrap_or_default();
        self.out.proven.push(format!("`{shown_ref}` present{short}"));
        self.pass("manifest");
        if intent == Intent::Push {
            return Ok(());
        }
        let Some(wanted) = self.spec.platform.clone() else { return Ok(()) };
        self.platform(auth, repo, &url, &media, &wanted, &shown_ref).await
    }

    async fn repository_readable(&mut self, auth: &Auth, repo: &str) -> Step<()> {
        let probe = self.pull_probe(auth, repo).await?;
        if !probe.allowed {
            let f = self.scope_finding(&[PULL], &BTreeSet::new(), &probe.evidence);
            return Err(self.fail(f));
        }
        if probe.repo_missing && self.repository_seen {
            // The attributes showed the repository: only the list is missing.
            self.unverified.push(format!(
                "manifest: the repository was found, but its tags could not be listed: {}",
                probe.evidence
            ));
            return Ok(());
        }
        if probe.repo_missing {
            let f = self
                .finding(
                    Code::REG014,
                    "manifest",
                    format!(
                        "the repository `{repo}` does not exist in `{}`: {}",
                        self.server().authority,
                        probe.evidence
                    ),
                )
                .remedy(self.tag_list_remedy(repo, &[]))
                .data("kind", "repository");
            return Err(self.fail(f));
        }
        let n = probe.tags.as_ref().map(Vec::len).unwrap_or(0);
        self.out.proven.push(format!(
            "repository readable ({n}{} tag{})",
            if n >= 100 { "+" } else { "" },
            if n == 1 { "" } else { "s" }
        ));
        self.pass("manifest");
        Ok(())
    }

    async fn missing_manifest(
        &mut self,
        auth: &Auth,
        repo: &str,
        reference: &str,
        shown_ref: &str,
        url: &Url,
    ) -> Step<Finding> {
        // HEAD carries no body: ask again with GET for the registry's own words.
        let what = format!("GET {}", url.path());
        let get = self
            .send("manifest", &what, auth.apply(Request::get(url.clone()).header("accept", platform::MANIFEST_ACCEPT)))
            .await?;
        let evidence =
            if get.status == 404 { self.evidence(&what, &get) } else { format!("{what} → HTTP {}", get.status) };
        let probe = self.pull_probe(auth, repo).await?;
        let code = ["NAME_UNKNOWN", "MANIFEST_UNKNOWN"].into_iter().find(|c| answer::has_error_code(&get, c));
        if missing::judge(code, probe.repo_missing, self.repository_seen) == missing::Missing::Repository {
            // Said by the tag list alone: quote it too.
            let evidence = if code.is_none() { format!("{evidence}; {}", probe.evidence) } else { evidence };
            return Ok(self
                .finding(
                    Code::REG014,
                    "manifest",
                    format!(
                        "`{shown_ref}` cannot be pulled: the repository `{repo}` does not exist in `{}` ({evidence})",
                        self.server().authority
                    ),
                )
                .remedy(self.tag_list_remedy(repo, &[]))
                .data("kind", "repository"));
        }
        let (near, listed) = match &probe.tags {
            Some(tags) => {
                let near = closest_tags(reference, tags);
                let sentence = missing::listed_sentence(missing::TagList::Listed(tags), &near);
                (near, sentence)
            }
            None => (Vec::new(), missing::listed_sentence(missing::TagList::Unread(&probe.evidence), &[])),
        };
        let kind = if reference.contains(':') { "digest" } else { "tag" };
        Ok(self
            .finding(
                Code::REG014,
                "manifest",
                format!("`{shown_ref}` is not in `{}`: {evidence}.{listed}", self.server().authority),
            )
            .remedy(self.tag_list_remedy(repo, &near))
            .data("kind", kind)
            .data("closest", near))
    }

    fn tag_list_remedy(&self, repo: &str, near: &[String]) -> String {
        let server = self.server();
        let list = if self.acr_like {
            format!("`az acr repository show-tags --name {} --repository {repo} --orderby time_desc --top 20 --output table`", server.acr_name())
        } else {
            format!(
                "`skopeo list-tags docker://{}/{repo}` (or `crane ls {}/{repo}`)",
                server.authority, server.authority
            )
        };
        let pick = if near.is_empty() { String::new() } else { format!(" — perhaps `{}` is meant", near[0]) };
        format!(
            "List what exists with {list}{pick}, then correct {}, or make sure the build that pushes this image runs (and succeeds) before this pipeline pulls it.",
            self.spec.source
        )
    }

    async fn platform(
        &mut self,
        auth: &Auth,
        repo: &str,
        url: &Url,
        media: &str,
        wanted: &Platform,
        shown_ref: &str,
    ) -> Step<()> {
        let what = format!("GET {}", url.path());
        let resp = self
            .send("platform", &what, auth.apply(Request::get(url.clone()).header("accept", platform::MANIFEST_ACCEPT)))
            .await?;
        if let Some(f) = self.common("platform", &what, &resp) {
            return Err(self.fail(f));
        }
        if resp.status != 200 {
            let f = self.unexpected("platform", &what, &resp);
            return Err(self.fail(f));
        }
        let Ok(doc) = serde_json::from_slice::<Value>(&resp.body) else {
            let f = self
                .finding(
                    Code::REG007,
                    "platform",
                    format!("{what} answered with a manifest that is not JSON: {}", answer::quote(&resp)),
                )
                .remedy("A proxy altered the answer, or the registry stores a corrupt manifest; push the image again.")
                .data("kind", "not-json");
            return Err(self.fail(f));
        };
        let media = resp.header("content-type").map(str::to_string).unwrap_or_else(|| media.to_string());
        let doc_media = doc.get("mediaType").and_then(|m| m.as_str()).unwrap_or("");
        let available: Vec<platform::Offered> =
            if platform::is_index(&media) || platform::is_index(doc_media) || doc.get("manifests").is_some() {
                platform::index_platforms(&doc)
            } else {
                match self.config_platform(auth, repo, &doc).await? {
                    Some(p) => vec![p],
                    None => {
                        self.unverified.push("platform: the image configuration could not be read".into());
                        return Ok(());
                    }
                }
            };
        match platform::fit(wanted, &available) {
            platform::Fit::Yes => {
                self.out.proven.push(format!("{wanted} present"));
                self.pass("platform");
                return Ok(());
            }
            platform::Fit::Unsure(why) => {
                self.unverified.push(format!("platform: {why}"));
                return Ok(());
            }
            platform::Fit::No => {}
        }
        let shown: Vec<String> = available.iter().map(platform::Offered::describe).collect();
        let f = self
            .finding(
                Code::REG015,
                "platform",
                format!(
                    "`{shown_ref}` has no image for {wanted}; it offers {} (Docker: \"no matching manifest for {wanted} in the manifest list entries\")",
                    if shown.is_empty() { "no platform at all".to_string() } else { shown.join(", ") }
                ),
            )
            .remedy(format!(
                "Build and push the image for {wanted} as well, e.g. `docker buildx build --platform {} --push`, or run the job on an agent \
                 whose platform the image has, or correct `platform=` in {}.",
                platform::buildx_platforms(&available, wanted),
                self.spec.source
            ))
            .data("available", shown)
            .data("requested", wanted.to_string());
        Err(self.fail(f))
    }

    /// The platform of a single-platform image, from its configuration blob.
    async fn config_platform(&mut self, auth: &Auth, repo: &str, manifest: &Value) -> Step<Option<platform::Offered>> {
        let Some(digest) = manifest.get("config").and_then(|c| c.get("digest")).and_then(|d| d.as_str()) else {
            return Ok(None);
        };
        let Some(url) = self.url(&format!("v2/{repo}/blobs/{digest}")) else { return Ok(None) };
        let what = format!("GET {}", url.path());
        let resp = self.send("platform", &what, auth.apply(Request::get(url))).await?;
        if let Some(f) = self.common("platform", &what, &resp) {
            return Err(self.fail(f));
        }
        if resp.status != 200 {
            return Ok(None);
        }
        let Ok(config) = serde_json::from_slice::<Value>(&resp.body) else { return Ok(None) };
        let offered = platform::Offered::from_json(&config);
        if offered.os.is_empty() || offered.architecture.is_empty() {
            return Ok(None);
        }
        Ok(Some(offered))
    }
}

/// Whether the answer came from a registry at all: registries mark every answer with
/// `Docker-Distribution-Api-Version`.
fn api_version_note(resp: &Response) -> String {
    match resp.header("docker-distribution-api-version") {
        Some(v) => format!(" (Docker-Distribution-Api-Version: {})", sanitize(v)),
        None => " without a Docker-Distribution-Api-Version header (not a registry's answer)".to_string(),
    }
}

struct Probe {
    allowed: bool,
    evidence: String,
    tags: Option<Vec<String>>,
    repo_missing: bool,
}

/// The actions a registry token grants on `repo`, from its `access` claim; `None` when the
/// token is not a JWT with that claim (opaque tokens are judged by probing instead).
pub fn granted_actions(token: &str, repo: &str) -> Option<BTreeSet<String>> {
    let claims = crate::azure::jwt::claims(token)?;
    let access = claims.get("access")?.as_array()?;
    let mut out = BTreeSet::new();
    for entry in access {
        let kind = entry.get("type").and_then(|t| t.as_str()).unwrap_or("");
        let name = entry.get("name").and_then(|n| n.as_str()).unwrap_or("");
        if (kind == "repository" || kind.starts_with("repository(")) && name == repo {
            if let Some(actions) = entry.get("actions").and_then(|a| a.as_array()) {
                out.extend(actions.iter().filter_map(|a| a.as_str().map(str::to_string)));
            }
        }
    }
    Some(out)
}

fn grants(granted: &BTreeSet<String>, action: &str) -> bool {
    granted.contains(action) || granted.contains("*")
}

/// `pull`, `push` first, then the rest alphabetically.
fn ordered(granted: &BTreeSet<String>) -> Vec<String> {
    let mut out: Vec<String> = [PULL, PUSH].iter().filter(|a| granted.contains(**a)).map(|s| s.to_string()).collect();
    out.extend(granted.iter().filter(|a| a.as_str() != PULL && a.as_str() != PUSH).cloned());
    out
}

fn shown_actions(granted: &BTreeSet<String>) -> String {
    let main: Vec<String> = ordered(granted).into_iter().filter(|a| a == PULL || a == PUSH || a == "*").collect();
    if main.is_empty() {
        "nothing".into()
    } else {
        main.join(",")
    }
}

fn short_digest(digest: &str) -> String {
    match digest.split_once(':') {
        Some((alg, hex)) if hex.len() > 12 => format!("{alg}:{}…", &hex[..12]),
        _ => digest.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    fn jwt(payload: &Value) -> String {
        format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(b"{\"alg\":\"ES256\"}"),
            URL_SAFE_NO_PAD.encode(payload.to_string())
        )
    }

    #[test]
    fn granted_actions_come_from_the_access_claim_of_the_named_repository() {
        let t = jwt(&serde_json::json!({"access": [
            {"type": "repository", "name": "team/app", "actions": ["pull", "metadata_read"]},
            {"type": "repository", "name": "other", "actions": ["push"]},
        ]}));
        let g = granted_actions(&t, "team/app").unwrap();
        assert!(grants(&g, "pull") && !grants(&g, "push") && grants(&g, "metadata_read"));
        assert_eq!(ordered(&g), ["pull", "metadata_read"]);
        assert_eq!(shown_actions(&g), "pull");
        let none = granted_actions(&jwt(&serde_json::json!({"access": []})), "team/app").unwrap();
        assert!(none.is_empty());
        let star = granted_actions(
            &jwt(&serde_json::json!({"access": [{"type": "repository", "name": "a", "actions": ["*"]}]})),
            "a",
        )
        .unwrap();
        assert!(grants(&star, "push"));
        assert_eq!(granted_actions("opaque-token-value", "a"), None);
        assert_eq!(granted_actions(&jwt(&serde_json::json!({"sub": "x"})), "a"), None);
    }

    fn spec(server: &str) -> TargetSpec {
        TargetSpec {
            name: server.into(),
            source: "--registry".into(),
            server_raw: server.into(),
            origin: ServerOrigin::Line,
            repository: Some("shop/web".into()),
            reference: None,
            intent: Intent::Push,
            platform: None,
            credential: None,
            acr_connection: false,
        }
    }

    #[tokio::test]
    async fn private_addresses_are_a_note_when_reachable_and_a_warning_when_not() {
        let ctx = crate::check::test_context(&[]);
        let shared = Shared::new(&ctx);
        let spec = spec("contoso.azurecr.io");
        let mut chain = Chain::new(&ctx, &shared, &spec, Duration::from_secs(5));
        assert!(chain.syntax().is_ok() && chain.typo_guard().is_ok());
        let note = chain.private_note("contoso.azurecr.io", &["10.1.2.3".into()], Severity::Note, true);
        assert_eq!((note.code, note.severity), (Code::REG004, Severity::Note));
        assert_eq!(note.data["addresses"], serde_json::json!(["10.1.2.3"]));
        let warning = chain.private_note("contoso.azurecr.io", &["10.1.2.3".into()], Severity::Warning, false);
        assert_eq!(warning.severity, Severity::Warning);
        assert!(warning.message.contains("cannot reach") && warning.remedy.contains("virtual network"));
        assert_eq!(
            chain.role_remedy("AcrPush").split("--name ").nth(1).and_then(|r| r.split(' ').next()),
            Some("contoso")
        );
    }

    #[tokio::test]
    async fn offline_runs_only_the_static_links() {
        let ctx = crate::check::test_context(&[("INPUT_OFFLINE", "true")]);
        let shared = Arc::new(Shared::new(&ctx));
        let out = check(ctx.clone(), shared.clone(), spec("contoso.azurecr.io")).await;
        assert!(out.findings.is_empty() && out.skipped.as_deref().is_some_and(|r| r.starts_with("offline")));
        let out = check(ctx, shared, spec("contoso.azurcr.io")).await;
        assert_eq!(out.findings[0].code, Code::REG002);
    }

    #[test]
    fn short_digests() {
        assert_eq!(short_digest(&format!("sha256:{}", "a".repeat(64))), "sha256:aaaaaaaaaaaa…");
    }
}
