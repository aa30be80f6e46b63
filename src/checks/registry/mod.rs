//! The registry check (README, "Checks and codes"; docs/codes/REG*.md): proves, for every `containerRegistry` connection and every
//! `registries` target, that the credential works for what the pipeline intends, and names
//! the first link of the chain that breaks (REG001–REG016).
//!
//! Targets: each `registries` line (its credential is the connection for its server if one
//! is given, else the Azure identity for an ACR, else the variables or Docker config, else
//! anonymous), and each connection that no line uses (checked at registry level).

pub mod answer;
pub mod chain;
pub mod credentials;
pub mod helper;
pub mod missing;
pub mod netprobe;
pub mod platform;
pub mod server;
pub mod tags;

use std::sync::{Arc, OnceLock};

use crate::check::family::{Family, Network};
use crate::check::{Context, TargetOutcome};
use crate::settings::{CheckId, Settings};
use chain::{Shared, TargetSpec};
use server::{parse_server, ServerOrigin};

/// The registry family: its targets are worked out from the settings once, before the run.
pub struct RegistryCheck {
    specs: Vec<TargetSpec>,
    /// What every target's chain shares (Docker config, TLS roots, Entra tokens), built by the
    /// first job: reading the Docker config is I/O, which belongs in a job, not in planning.
    shared: OnceLock<Arc<Shared>>,
}

impl RegistryCheck {
    pub fn new(settings: &Settings) -> Self {
        RegistryCheck { specs: targets(settings), shared: OnceLock::new() }
    }
}

impl Family for RegistryCheck {
    type Target = TargetSpec;
    const ID: CheckId = CheckId::Registry;
    const NETWORK: Network = Network::Remote {
        offline: "offline: the login server was checked for syntax and typos only; DNS, TLS and the registry API were not contacted",
    };
    const NOTHING_TO_CHECK: Option<(&'static str, &'static str)> = Some((
        "(no registry targets)",
        "no `containerRegistry` connection and no `registries` line (or --registry) to check",
    ));

    fn targets(&self) -> Vec<TargetSpec> {
        self.specs.clone()
    }

    fn name(&self, spec: &TargetSpec) -> String {
        spec.name.clone()
    }

    async fn check_one(self: Arc<Self>, ctx: Arc<Context>, spec: TargetSpec) -> TargetOutcome {
        let shared = self.shared.get_or_init(|| Arc::new(Shared::new(&ctx))).clone();
        chain::check(ctx, shared, spec).await
    }
}

/// Every target of the run, in input order: `registries` lines first, then connections no
/// line covers.
pub fn targets(settings: &Settings) -> Vec<TargetSpec> {
    let connections: Vec<_> = settings
        .registry_connections
        .iter()
        .map(|c| {
            let (raw, origin) = credentials::connection_server(c);
            (c, raw.clone(), origin, parse_server(&raw, origin).ok())
        })
        .collect();
    let mut used = vec![false; connections.len()];
    let mut specs = Vec::new();
    for sourced in &settings.registries {
        let t = &sourced.target;
        let line_server = parse_server(&t.server, ServerOrigin::Line).ok();
        let connection = line_server.as_ref().and_then(|ls| {
            connections.iter().position(|(_, _, _, cs)| cs.as_ref().is_some_and(|cs| cs.same_registry(ls)))
        });
        let (credential, acr_connection) = match connection {
            Some(i) => {
                used[i] = true;
                let conn = connections[i].0;
                (Some(credentials::from_connection(conn)), credentials::is_acr_connection(conn))
            }
            None => (None, false),
        };
        let mut name = t.display_name();
        if let Some(p) = &t.platform {
            // Two lines may differ only in platform: keep their names apart.
            name = format!("{}, {p})", name.trim_end_matches(')'));
        }
        specs.push(TargetSpec {
            name,
            source: sourced.source.clone(),
            server_raw: t.server.clone(),
            origin: ServerOrigin::Line,
            repository: t.repository.clone(),
            reference: t.reference.clone(),
            intent: t.intent,
            platform: t.platform.clone(),
            credential,
            acr_connection,
        });
    }
    for (i, (conn, raw, origin, parsed)) in connections.iter().enumerate() {
        if used[i] {
            continue;
        }
        let shown = parsed.as_ref().map(|s| s.authority.clone()).unwrap_or_else(|| raw.trim().to_string());
        let shown = if shown.is_empty() { "(no server)".to_string() } else { crate::sanitize::sanitize(&shown) };
        specs.push(TargetSpec {
            name: format!("{shown} (connection {})", conn.id),
            source: format!("service connection {}", conn.label()),
            server_raw: raw.clone(),
            origin: *origin,
            repository: None,
            reference: None,
            intent: crate::registry_target::Intent::Pull,
            platform: None,
            credential: Some(credentials::from_connection(conn)),
            acr_connection: credentials::is_acr_connection(conn),
        });
    }
    specs
}
