//! The secret expiry of an AKS cluster's service principal (clusters created before managed
//! identities pull with it; when its secret expires, nodes get `401 Unauthorized` from the
//! registry and pods sit in `ImagePullBackOff`).

use crate::azure::entra;
use crate::azure::graph::{self, GraphError, GraphObject};
use crate::check::{Context, TargetOutcome};
use crate::checks::identity::expiry_code;
use crate::connections::ServiceConnection;
use crate::expiry::{date, days_left, when};
use crate::finding::Finding;

use super::not_verified;

/// Reads the application's secrets through Microsoft Graph with `conn`'s identity and judges
/// the one that lasts longest (the cluster was most likely last updated with it) against
/// `expiryErrorDays` (IDN005) / `expiryWarningDays` (IDN006), as the identity check does for
/// connections. What cannot be read is said, never passed.
pub async fn cluster_sp_expiry(ctx: &Context, conn: &ServiceConnection, client_id: &str) -> TargetOutcome {
    let mut out = TargetOutcome::default();
    let remedy = format!(
        "Add a secret and give it to the cluster: `az ad app credential reset --id {client_id} --append` then \
         `az aks update-credentials -g <resource group> -n <cluster> --reset-service-principal --service-principal {client_id} --client-secret <new secret>`; \
         or move the cluster to a managed identity (no secret to expire): `az aks update -g <resource group> -n <cluster> --enable-managed-identity`."
    );
    let unread = |why: String| {
        not_verified(
            "servicePrincipalExpiry",
            format!("the expiry of the secrets of the cluster's service principal {client_id} could not be read: {why}"),
            format!(
                "Grant the connection's identity the Microsoft Graph application permission Application.Read.All (admin consent), \
                 or check by hand: `az ad app credential list --id {client_id} --query \"[].endDateTime\"`. {remedy}"
            ),
            false,
        )
        .data("clientId", client_id)
    };
    let graph_url = graph::base(&ctx.services(), conn);
    let token = match entra::acquire(&ctx.services(), conn, &graph::scope(&graph_url)).await {
        Ok(t) => t,
        Err(e) => {
            out.findings.push(unread(format!("no Microsoft Graph token ({e})")));
            return out;
        }
    };
    let app = match graph::read(&ctx.services(), &graph_url, &token.token, GraphObject::Application, client_id).await {
        Ok(app) => app,
        Err(GraphError::NotFound { .. }) => {
            out.findings.push(unread("the application is not in the connection's tenant".into()));
            return out;
        }
        Err(e) => {
            out.findings.push(unread(e.to_string()));
            return out;
        }
    };
    let Some(latest) = app.passwords.iter().filter_map(|p| p.end.map(|end| (end, p))).max_by_key(|(end, _)| *end)
    else {
        out.proven.push(format!("service principal {client_id} has no secret with an end date"));
        return out;
    };
    let (end, secret) = latest;
    let now = ctx.now;
    let Some(code) = expiry_code(ctx, end) else {
        out.proven.push(format!(
            "service principal {client_id}'s newest secret valid until {} ({} days)",
            date(end),
            days_left(now, end)
        ));
        return out;
    };
    out.findings.push(
        Finding::new(
            code,
            format!(
                "the cluster pulls with service principal {client_id}, whose newest secret{} {}; after that its nodes get `401 Unauthorized` from the registry",
                secret.hint.as_deref().map(|h| format!(" ({h}…)")).unwrap_or_default(),
                when(now, end)
            ),
        )
        .remedy(remedy)
        .data("clientId", client_id)
        .data("expiresOn", date(end))
        .data("keyId", secret.key_id.clone().map(serde_json::Value::from).unwrap_or(serde_json::Value::Null))
        .data("daysLeft", days_left(now, end)),
    );
    out
}
