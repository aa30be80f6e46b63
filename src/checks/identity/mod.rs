//! The identity check (IDN001–IDN011): for every Azure Resource Manager connection and every
//! ACR registry connection with an Entra identity, prove that a token can be had now, then
//! read from Microsoft Graph how long the credential in use stays valid.
//!
//! One job per connection. Entra ID errors are classified by `error_codes`, never by their
//! text. A certificate's own validity is checked locally, so its expiry is known even when
//! Graph may not be read.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::azure::entra::{self, Credential, Method};
use crate::azure::graph;
use crate::check::family::{Family, Network};
use crate::check::{Context, TargetOutcome};
use crate::connections::{ConnectionKind, Origin, ServiceConnection};
use crate::net::endpoints::base_url;
use crate::sanitize::sanitize;
use crate::settings::{CheckId, Settings};

mod about;
mod classify;
mod expiry;

use about::{federation_advice, About};
use classify::token_finding;
use expiry::{certificate_unusable_locally, expiry, expiry_verdict, InUse};
// The deploy check words and judges its own credentials' expiry the same way.
pub(crate) use expiry::expiry_code;

/// The identity family: the connections it proves are picked from the settings once.
pub struct IdentityCheck {
    connections: Vec<ServiceConnection>,
}

impl IdentityCheck {
    pub fn new(settings: &Settings) -> Self {
        IdentityCheck { connections: targets(settings) }
    }
}

impl Family for IdentityCheck {
    type Target = ServiceConnection;
    const ID: CheckId = CheckId::Identity;
    const NETWORK: Network = Network::Remote { offline: "offline: no token requested and Microsoft Graph not read" };
    const NOTHING_TO_CHECK: Option<(&'static str, &'static str)> = Some((
        "(no Azure identity)",
        "no azureSubscription connection and no ACR containerRegistry connection with an Entra identity \
         (locally: set AZURE_CLIENT_ID and AZURE_TENANT_ID)",
    ));

    fn targets(&self) -> Vec<ServiceConnection> {
        self.connections.clone()
    }

    fn name(&self, conn: &ServiceConnection) -> String {
        conn.label()
    }

    async fn check_one(self: Arc<Self>, ctx: Arc<Context>, conn: ServiceConnection) -> TargetOutcome {
        check_connection(&ctx, &conn).await
    }
}

/// The connections this check proves: every Azure Resource Manager connection, and every
/// registry connection of type ACR that signs in with an Entra identity. Each id once.
pub fn targets(settings: &Settings) -> Vec<ServiceConnection> {
    let mut out: Vec<ServiceConnection> = Vec::new();
    let acr = settings.registry_connections.iter().filter(|c| uses_entra_identity(c));
    for conn in settings.azure_connections.iter().chain(acr) {
        if !out.iter().any(|known| known.id.eq_ignore_ascii_case(&conn.id)) {
            out.push(conn.clone());
        }
    }
    out
}

/// An ACR registry connection whose scheme is a service principal, federation or a
/// managed identity (admin-user and username/password connections have no Entra identity).
pub fn uses_entra_identity(conn: &ServiceConnection) -> bool {
    conn.kind == ConnectionKind::DockerRegistry
        && conn.data("REGISTRYTYPE").is_some_and(|t| t.eq_ignore_ascii_case("ACR"))
        && matches!(
            conn.scheme.to_ascii_lowercase().as_str(),
            "serviceprincipal" | "workloadidentityfederation" | "managedserviceidentity"
        )
}

fn method_name(method: Method) -> &'static str {
    match method {
        Method::Secret => "secret",
        Method::Certificate => "certificate",
        Method::Federation => "workload identity federation",
        Method::ManagedIdentity => "managed identity",
    }
}

async fn check_connection(ctx: &Context, conn: &ServiceConnection) -> TargetOutcome {
    let about = About::new(ctx, conn);
    let mut out = TargetOutcome::default();
    let mut facts = Map::new();
    facts.insert("connection".into(), json!(conn.id));
    facts.insert("input".into(), json!(about.input));
    if let Some(app) = &about.app_id {
        facts.insert("appId".into(), json!(app));
    }
    if let Some(tenant) = &about.tenant {
        facts.insert("tenantId".into(), json!(tenant));
    }
    run(ctx, conn, &about, &mut out, &mut facts).await;
    out.extra.insert("identity".into(), Value::Object(facts));
    out
}

async fn run(
    ctx: &Context,
    conn: &ServiceConnection,
    about: &About,
    out: &mut TargetOutcome,
    facts: &mut Map<String, Value>,
) {
    let method = match Method::of(conn) {
        Ok(m) => m,
        Err(_) if conn.scheme.eq_ignore_ascii_case("PublishProfile") => {
            out.skipped = Some("a publish-profile connection signs in with the profile, not an Entra identity".into());
            return;
        }
        Err(e) => {
            out.findings.push(token_finding(about, None, &e, None));
            return;
        }
    };
    facts.insert("method".into(), json!(method_name(method)));

    // The certificate is checked before any request: an expired or broken one is known
    // without asking anyone, and offline runs still learn when it ends.
    let mut local_cert = None;
    if method == Method::Certificate {
        match entra::connection_certificate(conn) {
            Err(e) => {
                out.findings.push(token_finding(about, Some(method), &e, None));
                return;
            }
            Ok(cert) => {
                facts.insert(
                    "certificate".into(),
                    json!({
                        "subject": sanitize(&cert.subject),
                        "thumbprint": cert.thumbprint_hex(),
                        "notAfter": cert.not_after.to_string(),
                    }),
                );
                if let Some(f) = certificate_unusable_locally(ctx, about, &cert) {
                    out.findings.push(f);
                    return;
                }
                local_cert = Some(cert);
            }
        }
    }

    if ctx.settings.offline {
        if let Some(cert) = &local_cert {
            expiry_verdict(ctx, about, &InUse::local(cert), out, facts);
        }
        out.stopped_offline = true;
        return;
    }

    let credential = match Credential::prepare(&ctx.services(), conn).await {
        Ok(c) => c,
        Err(e) => {
            out.findings.push(token_finding(about, Some(method), &e, None));
            return;
        }
    };
    let scope = arm_scope(ctx, conn);
    let reads_graph = matches!(method, Method::Secret | Method::Certificate);
    let services = ctx.services();
    let graph_url = graph::base(&services, conn);
    // The Graph token is asked for alongside the first one: one round trip instead of two.
    let (token, graph_token) = tokio::join!(credential.token(&services, &scope), async {
        if reads_graph {
            Some(credential.token(&services, &graph::scope(&graph_url)).await)
        } else {
            None
        }
    });
    match token {
        Ok(token) => {
            out.proven.push(format!("Entra ID issues a token ({})", method_name(method)));
            facts.insert("token".into(), json!({"scope": scope, "expiresOn": token.expires_on.map(|t| t.to_string())}));
        }
        Err(e) => {
            out.findings.push(token_finding(about, Some(method), &e, credential.presented_claims()));
            // Whatever Entra ID said, the certificate's own end date is still worth knowing.
            if let Some(cert) = &local_cert {
                expiry_verdict(ctx, about, &InUse::local(cert), out, facts);
            }
            return;
        }
    }

    match (method, graph_token) {
        (Method::Secret | Method::Certificate, Some(graph_token)) => {
            expiry(ctx, conn, about, &credential, &graph_url, graph_token, local_cert.as_ref(), out, facts).await;
            if conn.origin == Origin::Pipeline {
                out.proven.push(format!(
                    "could use workload identity federation (no {} to expire)",
                    if method == Method::Certificate { "certificate" } else { "secret" }
                ));
                facts.insert("recommendation".into(), json!(federation_advice(about)));
            }
        }
        (Method::ManagedIdentity, _) => out.proven.push("managed identity: Azure rotates its credentials".into()),
        _ => out.proven.push("workload identity federation: no secret or certificate to expire".into()),
    }
}

/// The audience of the "token now": the connection's Resource Manager.
fn arm_scope(ctx: &Context, conn: &ServiceConnection) -> String {
    if let Some(resource) = conn.data("ACTIVEDIRECTORYSERVICEENDPOINTRESOURCEID") {
        return format!("{}/.default", resource.trim().trim_end_matches('/'));
    }
    let from_connection = (conn.kind == ConnectionKind::AzureRm && !ctx.endpoints.arm_overridden)
        .then(|| conn.url.as_deref().and_then(|u| base_url("url", u).ok()))
        .flatten()
        .filter(|u| u.scheme() == "https");
    let arm = from_connection.unwrap_or_else(|| ctx.endpoints.arm.clone());
    format!("{arm}.default")
}

#[cfg(test)]
mod tests {
    use super::about::Creation;
    use super::*;
    use crate::check::test_context;
    use std::collections::BTreeMap;

    pub(super) const ID: &str = "1dfdea68-9549-409e-abee-c5da69cfec5f";

    fn conn(kind: ConnectionKind, scheme: &str, data: &[(&str, &str)]) -> ServiceConnection {
        ServiceConnection {
            id: ID.into(),
            kind,
            origin: Origin::Pipeline,
            url: None,
            scheme: scheme.into(),
            params: BTreeMap::from([
                ("SERVICEPRINCIPALID".to_string(), "app-1".to_string()),
                ("TENANTID".to_string(), "tenant-1".to_string()),
            ]),
            secrets: BTreeMap::new(),
            data: data.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    pub(super) fn about(mode: Creation) -> About {
        About {
            label: format!("{ID} (Prod)"),
            input: "azureSubscription",
            origin: Origin::Pipeline,
            app_id: Some("app-1".into()),
            tenant: Some("tenant-1".into()),
            creation: mode,
            settings_page: Some(format!("https://dev.azure.com/o/p/_settings/adminservices?resourceId={ID}")),
        }
    }

    #[test]
    fn targets_are_azure_connections_and_entra_acr_connections_once_each() {
        let mut ctx = test_context(&[]);
        let settings = &mut Arc::get_mut(&mut ctx).unwrap().settings;
        let arm = conn(ConnectionKind::AzureRm, "ServicePrincipal", &[]);
        let acr = |id: &str, scheme: &str, kind: &str| {
            let mut c = conn(ConnectionKind::DockerRegistry, scheme, &[("REGISTRYTYPE", kind)]);
            c.id = id.into();
            c
        };
        settings.azure_connections = vec![arm.clone(), arm];
        settings.registry_connections = vec![
            acr("acr-sp", "ServicePrincipal", "ACR"),
            acr("acr-wif", "WorkloadIdentityFederation", "acr"),
            acr("acr-admin", "UsernamePassword", "ACR"),
            acr("hub", "UsernamePassword", "Others"),
        ];
        let ids: Vec<String> = targets(settings).into_iter().map(|c| c.id).collect();
        assert_eq!(ids, [ID, "acr-sp", "acr-wif"]);
    }

    #[test]
    fn graph_and_resource_manager_urls_follow_the_connections_cloud() {
        let ctx = test_context(&[]);
        let base = |data: &[(&str, &str)]| {
            graph::base(&ctx.services(), &conn(ConnectionKind::AzureRm, "ServicePrincipal", data)).to_string()
        };
        assert_eq!(base(&[]), "https://graph.microsoft.com/");
        assert_eq!(
            base(&[("GRAPHURL", "https://graph.windows.net/"), ("ENVIRONMENT", "AzureUSGovernment")]),
            "https://graph.microsoft.us/"
        );
        assert_eq!(
            base(&[("MICROSOFTGRAPHURL", "https://microsoftgraph.chinacloudapi.cn")]),
            "https://microsoftgraph.chinacloudapi.cn/"
        );
        assert_eq!(
            base(&[("GRAPHURL", "https://graph.contoso-stack.example/")]),
            "https://graph.contoso-stack.example/"
        );
        let overridden = test_context(&[("AZP_PREFLIGHT_GRAPH_URL", "http://127.0.0.1:9/g")]);
        let c =
            conn(ConnectionKind::AzureRm, "ServicePrincipal", &[("MICROSOFTGRAPHURL", "https://graph.microsoft.us/")]);
        assert_eq!(graph::base(&overridden.services(), &c).to_string(), "http://127.0.0.1:9/g/");
        assert_eq!(graph::scope(&graph::base(&overridden.services(), &c)), "http://127.0.0.1:9/g/.default");

        let mut arm = conn(ConnectionKind::AzureRm, "ServicePrincipal", &[]);
        arm.url = Some("https://management.usgovcloudapi.net".into());
        assert_eq!(arm_scope(&ctx, &arm), "https://management.usgovcloudapi.net/.default");
        arm.data
            .insert("ACTIVEDIRECTORYSERVICEENDPOINTRESOURCEID".into(), "https://management.core.windows.net/".into());
        assert_eq!(arm_scope(&ctx, &arm), "https://management.core.windows.net/.default");
        let acr = conn(ConnectionKind::DockerRegistry, "ServicePrincipal", &[]);
        assert_eq!(arm_scope(&ctx, &acr), "https://management.azure.com/.default");
    }
}
