//! The chain of links for one target, stopping at the first that fails:
//! syntax (REG001) → typo guard (REG002) → DNS (REG003, REG004) → TCP (REG005) → TLS (REG006)
//! → `GET /v2/` (REG007, REG008) → credential present (REG009) → authenticate (REG010,
//! REG011) → granted scope (REG012) → ACR locks (REG013) → manifest (REG014) → platform
//! (REG015); throttling anywhere is REG016.
//!
//! This file holds the chain's state, its entry points and the order of the links; each link
//! is an `impl Chain` block in its own file (`syntax`, `transport`, `challenge`, `credential`,
//! `authenticate`, `scope`, `locks`, `manifest`), and `http` holds the request and answer
//! helpers they share.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;
use url::Url;

use super::credentials::{self, DockerConfig, Sourced};
use super::netprobe;
use super::server::{Server, ServerOrigin};
use crate::azure::entra::{self, AccessToken, TokenError};
use crate::check::{Context, TargetOutcome};
use crate::codes::Code;
use crate::connections::ServiceConnection;
use crate::finding::Finding;
use crate::net::Request;
use crate::registry_target::{Intent, Platform, Reference};
use crate::secret::Secret;

mod authenticate;
mod challenge;
mod credential;
mod http;
mod locks;
mod manifest;
mod scope;
mod syntax;
mod transport;

pub use scope::granted_actions;

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
        cell.get_or_init(|| async { entra::acquire(&ctx.services(), conn, scope).await }).await.clone()
    }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A push target on `server`, shared by the link files' tests.
    pub(super) fn spec(server: &str) -> TargetSpec {
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
}
