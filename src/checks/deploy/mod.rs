//! The deploy check: proves that the AKS cluster or App Service that will run an image can
//! pull it, reading the target, the registry and their role assignments and networks
//! through Azure Resource Manager with the `azureSubscription` identity.
//!
//! One job per target. Inside a job the independent reads run concurrently; nothing here
//! prints. What cannot be proven is reported (DEP011), never passed.

pub mod abac;
mod aks;
pub mod expiry;
pub mod image;
pub mod network;
pub mod platform;
pub mod rbac;
mod reach;
pub mod registry;
mod webapp;

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::azure::arm::{ArmClient, ArmError};
use crate::check::family::{Family, Network};
use crate::check::{Context, TargetOutcome};
use crate::codes::Code;
use crate::codes::Severity;
use crate::connections::ServiceConnection;
use crate::deploy_target::{DeployTarget, TargetKind};
use crate::finding::Finding;
use crate::sanitize::sanitize;
use crate::settings::{CheckId, Settings, SourcedDeployTarget};

use registry::{Permission, Registry};

/// The deploy family: the targets given, and the Azure connections to read them with.
pub struct DeployCheck {
    targets: Vec<SourcedDeployTarget>,
    connections: Vec<ServiceConnection>,
}

impl DeployCheck {
    pub fn new(settings: &Settings) -> Self {
        DeployCheck { targets: settings.deploy_targets.clone(), connections: settings.azure_connections.clone() }
    }
}

impl Family for DeployCheck {
    type Target = DeployTarget;
    const ID: CheckId = CheckId::Deploy;
    const NETWORK: Network = Network::Remote { offline: "offline: the target is read through Azure Resource Manager" };
    const NOTHING_TO_CHECK: Option<(&'static str, &'static str)> =
        Some(("(no deploy targets)", "no deployTargets (task input) or --deploy-target (command line) was given"));

    fn targets(&self) -> Vec<DeployTarget> {
        self.targets.iter().map(|sourced| sourced.target.clone()).collect()
    }

    fn name(&self, target: &DeployTarget) -> String {
        target.display_name()
    }

    async fn check_one(self: Arc<Self>, ctx: Arc<Context>, target: DeployTarget) -> TargetOutcome {
        check_target(&ctx, &self.connections, target).await
    }
}

async fn check_target(ctx: &Context, connections: &[ServiceConnection], target: DeployTarget) -> TargetOutcome {
    // The image is checked before anything is sent anywhere.
    let (findings, acr) = image::validate(&target.image);
    let mut outcome = TargetOutcome { findings, ..Default::default() };
    outcome.extra.insert("deployTarget".into(), describe(&target));
    if outcome.findings.iter().any(|f| f.severity == Severity::Error) {
        return outcome;
    }
    if ctx.settings.offline {
        return outcome.stop_offline();
    }
    let Some(conn) = pick_connection(connections, &target) else {
        outcome.skipped = Some("no Azure Resource Manager connection to read the target with".into());
        return outcome;
    };
    let part = match ArmClient::connect(&ctx.services(), &conn).await {
        Err(e) => TargetOutcome {
            findings: vec![unreadable(kind_noun(target.kind), &target.resource.to_path(), &conn, &e)],
            ..Default::default()
        },
        Ok(arm) => match target.kind {
            TargetKind::Aks => aks::check(ctx, &arm, &conn, &target, acr).await,
            TargetKind::WebApp => webapp::check(ctx, &arm, &conn, &target, acr).await,
        },
    };
    merge(&mut outcome, part);
    outcome
}

/// The connection for the target's subscription, else the first one.
fn pick_connection(connections: &[ServiceConnection], target: &DeployTarget) -> Option<ServiceConnection> {
    connections
        .iter()
        .find(|c| c.data("SUBSCRIPTIONID").is_some_and(|s| s.eq_ignore_ascii_case(&target.resource.subscription)))
        .or_else(|| connections.first())
        .cloned()
}

fn describe(target: &DeployTarget) -> Value {
    json!({
        "kind": target.kind.as_str(),
        "resourceId": target.resource.to_path(),
        "image": sanitize(&target.image.to_string()),
        "registry": Value::Null,
        "pullingIdentity": Value::Null,
        "wantedPlatforms": [],
    })
}

fn kind_noun(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::Aks => "AKS cluster",
        TargetKind::WebApp => "web app",
    }
}

/// A resource id from ARM made safe for logs (no control characters, no logging commands)
/// but never shortened, since ids are also request paths.
pub(crate) fn clean_id(id: &str) -> String {
    crate::sanitize::neutralize_commands(&crate::sanitize::strip_controls(id)).replace(['\n', '\t'], "")
}

/// Adds a part's results; `extra` objects are merged key by key.
pub(crate) fn merge(into: &mut TargetOutcome, part: TargetOutcome) {
    into.findings.extend(part.findings);
    into.proven.extend(part.proven);
    for (k, v) in part.extra {
        match (into.extra.get_mut(&k), v) {
            (Some(Value::Object(existing)), Value::Object(more)) => existing.extend(more),
            (_, v) => {
                into.extra.insert(k, v);
            }
        }
    }
    if into.skipped.is_none() {
        into.skipped = part.skipped;
    }
}

/// Facts for the report entry's `deployTarget` object.
pub(crate) fn facts(pairs: Vec<(&str, Value)>) -> TargetOutcome {
    let mut map = Map::new();
    for (k, v) in pairs {
        map.insert(k.to_string(), v);
    }
    let mut outcome = TargetOutcome::default();
    outcome.extra.insert("deployTarget".into(), Value::Object(map));
    outcome
}

/// DEP011: something this check could not establish, and why. A warning when what is
/// missing is the pull permission or the network path itself.
pub(crate) fn not_verified(step: &str, what: String, remedy: String, warn: bool) -> Finding {
    let finding = Finding::new(Code::DEP011, what).remedy(remedy).data("step", step.to_string());
    if warn {
        finding.severity(Severity::Warning)
    } else {
        finding
    }
}

/// DEP001: the target itself cannot be read.
pub(crate) fn unreadable(noun: &str, id: &str, conn: &ServiceConnection, e: &ArmError) -> Finding {
    if let ArmError::Transport(t) = e {
        if t.kind == crate::net::HttpErrorKind::OutOfFiles {
            // Not a fact about Azure Resource Manager or the network: RUN002, not DEP001.
            return crate::net::limit::out_of_files_finding(&format!("reading the {noun} `{id}`"), &t.detail);
        }
    }
    let assignee = conn.param("SERVICEPRINCIPALID").unwrap_or("<the connection's client id>");
    let (kind, remedy) = match e {
        ArmError::Token(_) => (
            "token",
            "The connection's identity gets no token for Azure Resource Manager; the identity check (IDN codes) says why."
                .to_string(),
        ),
        ArmError::Transport(_) => (
            "unreachable",
            "Azure Resource Manager is unreachable from this agent: check the proxy and firewall (and the ARM URL of the connection's cloud)."
                .to_string(),
        ),
        ArmError::Status { status: 404, .. } => (
            "notFound",
            format!(
                "Check the resource id in the target line (subscription, resource group, name): `az resource show --ids {id}` \
                 shows whether it exists and is visible to the connection."
            ),
        ),
        ArmError::Status { status: 401 | 403, .. } => (
            "denied",
            format!("Let the connection's identity read the target: `az role assignment create --assignee {assignee} --role Reader --scope {id}`"),
        ),
        _ => ("unexpected", "Retry; if it persists, the error above names what Azure Resource Manager refused.".to_string()),
    };
    let mut finding = Finding::new(
        Code::DEP001,
        format!("the {noun} {id} cannot be read with the identity of connection {}: {e}", conn.label()),
    )
    .remedy(remedy)
    .data("kind", kind)
    .data("resourceId", id.to_string());
    if let Some(status) = e.status() {
        finding = finding.data("status", status);
    }
    if let ArmError::Status { code, .. } = e {
        finding = finding.data("armCode", code.clone());
    }
    finding
}

/// The identity a target pulls with, for messages and remedies.
#[derive(Debug, Clone)]
pub(crate) struct Puller {
    pub object_id: String,
    /// `kubelet identity aks1-agentpool`, `system-assigned identity of web app shop`.
    pub label: String,
    /// How to name it in `az role assignment create --assignee`.
    pub assignee: String,
    /// `az aks update ... --attach-acr` applies (cluster name, resource group, subscription).
    pub aks: Option<(String, String, String)>,
}

/// DEP003/DEP004 from the permission read, or what was proven.
pub(crate) fn permission_outcome(
    registry: &Registry,
    who: &Puller,
    repository: &str,
    perm: Permission,
) -> TargetOutcome {
    let mut out = TargetOutcome::default();
    let reg = sanitize(&registry.name);
    match perm {
        Permission::Granted(roles) => {
            let mode = if registry.abac() { " (ABAC repository permissions)" } else { "" };
            out.proven.push(format!("{} may pull from {reg}{mode}: {}", who.label, roles.join("; ")));
            if !registry.mode_known {
                out.findings.push(not_verified(
"roleAssignmentMode",
                    format!("registry {reg}'s role assignment mode is not reported by this cloud's API; the grant assumes the RBAC mode"),
                    format!("See the mode with `az acr show --name {reg} --query roleAssignmentMode`; in `AbacRepositoryPermissions` mode use the Container Registry Repository roles."),
                    false,
                ));
            }
        }
        Permission::Missing { ignored_in_abac, condition_excludes } if registry.abac() => {
            let mut why = Vec::new();
            if !ignored_in_abac.is_empty() {
                why.push(format!("it holds {}, which grant no image access in this mode", ignored_in_abac.join("; ")));
            }
            if !condition_excludes.is_empty() {
                why.push(format!(
                    "the condition of {} does not cover the repository `{}`",
                    condition_excludes.join("; "),
                    sanitize(repository)
                ));
            }
            let why = if why.is_empty() { "it has no repository role there".to_string() } else { why.join(", and ") };
            out.findings.push(
                Finding::new(
                    Code::DEP004,
                    format!(
                        "registry {reg} uses ABAC repository permissions (roleAssignmentMode AbacRepositoryPermissions) and {} \
                         cannot pull: {why}",
                        who.label
                    ),
                )
                .remedy(format!(
                    "Grant a repository role (AcrPull, AcrPush, Owner, Contributor and Reader do not give image access in this mode, \
                     and `az aks update --attach-acr` only assigns AcrPull):\n\
                     az role assignment create --assignee {} --role \"Container Registry Repository Reader\" --scope {}\n\
                     To limit it to this repository add `--condition-version 2.0 --condition` with \
                     `@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringEqualsIgnoreCase '{}'` \
                     (see `azp-preflight explain DEP004`).",
                    who.assignee,
                    registry.id,
                    sanitize(repository)
                ))
                .data("registry", registry.id.clone())
                .data("principalId", who.object_id.clone())
                .data("roleAssignmentMode", sanitize(&registry.role_assignment_mode))
                .data("ignoredRoles", ignored_in_abac)
                .data("conditionExcludes", condition_excludes),
            );
        }
        Permission::Missing { .. } => {
            let attach = who
                .aks
                .as_ref()
                .map(|(cluster, rg, sub)| {
                    format!(
                        "az aks update -n {cluster} -g {rg} --subscription {sub} --attach-acr {}\nor directly:\n",
                        registry.id
                    )
                })
                .unwrap_or_default();
            out.findings.push(
                Finding::new(
                    Code::DEP003,
                    format!(
                        "{} has no role on registry {reg} (or its resource group, subscription or management group) that \
                         grants Microsoft.ContainerRegistry/registries/pull/read; pulls fail with `unauthorized` / ImagePullBackOff",
                        who.label
                    ),
                )
                .remedy(format!(
                    "{attach}az role assignment create --assignee {} --role AcrPull --scope {}\nA new assignment can take a few minutes to apply.",
                    who.assignee, registry.id
                ))
                .data("registry", registry.id.clone())
                .data("principalId", who.object_id.clone()),
            );
        }
        Permission::Unknown(why) => out.findings.push(not_verified(
            "pullPermission",
            format!("whether {} may pull from {reg} is not proven: {why}", who.label),
            format!(
                "Let the connection's identity read role assignments and definitions at the registry (Reader on {}), \
                 or check by hand: `az role assignment list --assignee {} --scope {} --include-inherited`",
                registry.id, who.assignee, registry.id
            ),
            true,
        )),
    }
    out
}

/// DEP002 from a registry lookup that found nothing.
pub(crate) fn registry_not_found(host: &str, missing: registry::Missing) -> Finding {
    let host = sanitize(host);
    match missing {
        registry::Missing::Named { id, problem } => {
            Finding::new(Code::DEP002, format!("`registry={}` does not serve the image: {problem}", sanitize(&id)))
                .remedy(format!(
                    "Name the registry whose login server is `{host}`, or give the connection's identity Reader on it."
                ))
                .data("server", host)
                .data("registry", sanitize(&id))
        }
        registry::Missing::NotFound { searched, failures } => {
            let failed = if failures.is_empty() { String::new() } else { format!(" ({})", failures.join("; ")) };
            Finding::new(
                Code::DEP002,
                format!(
                    "no registry with login server `{host}` is visible to the connection's identity in subscription(s) {}{failed}; \
                     whether the target may pull from it is not proven",
                    searched.join(", ")
                ),
            )
            .remedy(format!(
                "If the registry is in another subscription, add `registry=<its resource id>` to the target line and give the connection's \
                 identity Reader on it (`az acr show --name {} --query id -o tsv` prints the id); if no such registry exists, fix the image.",
                host.split('.').next().unwrap_or(&host)
            ))
            .data("server", host)
            .data("searched", searched)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::family::FamilyCheck;
    use crate::check::{test_context, Check};

    const AKS: &str = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1";

    fn planned(ctx: &Arc<Context>) -> Vec<crate::check::TargetJob> {
        FamilyCheck::new(DeployCheck::new(&ctx.settings)).plan(ctx)
    }

    fn local(pairs: &[(&str, &str)]) -> Arc<Context> {
        let mut all = vec![("AZURE_CLIENT_ID", "app"), ("AZURE_TENANT_ID", "t"), ("AZURE_CLIENT_SECRET", "s3cret")];
        all.extend_from_slice(pairs);
        test_context(&all)
    }

    #[tokio::test]
    async fn typos_are_reported_before_anything_is_sent() {
        let line = format!("aks:{AKS} image=contoso.azurecr.com/web:1");
        let ctx = local(&[("INPUT_DEPLOYTARGETS", &line)]);
        let mut jobs = planned(&ctx);
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].target, "aks:rg/aks1 image=contoso.azurecr.com/web:1");
        let outcome = jobs.remove(0).work.await;
        assert_eq!(outcome.findings.iter().map(|f| f.code).collect::<Vec<_>>(), [Code::REG002]);
        assert_eq!(outcome.extra["deployTarget"]["kind"], "aks");
    }

    #[tokio::test]
    async fn no_targets_and_left_out_targets_are_skips() {
        let ctx = local(&[("INPUT_CHECKS", "deploy")]);
        let jobs = planned(&ctx);
        assert_eq!(jobs[0].target, "(no deploy targets)");
        let line = format!("aks:{AKS} image=contoso.azurecr.io/web:1");
        let ctx = local(&[("INPUT_DEPLOYTARGETS", &line), ("INPUT_OFFLINE", "true")]);
        let outcome = planned(&ctx).remove(0).work.await;
        assert!(outcome.findings.is_empty());
        assert_eq!(outcome.skipped.as_deref(), Some("offline: the target is read through Azure Resource Manager"));
        let left_out = FamilyCheck::left_out(DeployCheck::new(&ctx.settings), "left out".into());
        assert_eq!(left_out.plan(&ctx).remove(0).work.await.skipped.as_deref(), Some("left out"));
    }

    #[test]
    fn unreadable_classifies_arm_errors() {
        let ctx = local(&[]);
        let conn = &ctx.settings.azure_connections[0];
        let status =
            |s: u16| ArmError::Status { status: s, code: "X".into(), message: "m".into(), correlation_id: None };
        assert_eq!(unreadable("AKS cluster", AKS, conn, &status(404)).data["kind"], "notFound");
        let denied = unreadable("AKS cluster", AKS, conn, &status(403));
        assert_eq!(denied.data["kind"], "denied");
        assert!(denied.remedy.contains(&format!("--assignee app --role Reader --scope {AKS}")));
        assert_eq!(unreadable("AKS cluster", AKS, conn, &status(500)).data["kind"], "unexpected");
    }

    #[test]
    fn connection_for_the_target_subscription_wins() {
        let mk = |id: &str, sub: &str| ServiceConnection {
            id: id.into(),
            kind: crate::connections::ConnectionKind::AzureRm,
            origin: crate::connections::Origin::Pipeline,
            url: None,
            scheme: "ServicePrincipal".into(),
            params: Default::default(),
            secrets: Default::default(),
            data: [("SUBSCRIPTIONID".to_string(), sub.to_string())].into(),
        };
        let target = crate::deploy_target::parse_line(&format!("aks:{AKS} image=c.azurecr.io/a")).unwrap().unwrap();
        let conns = [mk("a", "other"), mk("b", "S1")];
        assert_eq!(pick_connection(&conns, &target).unwrap().id, "b");
        assert_eq!(pick_connection(&conns[..1], &target).unwrap().id, "a");
    }
}
