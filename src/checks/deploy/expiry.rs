//! The secret expiry of an AKS cluster's service principal (clusters created before managed
//! identities pull with it; when its secret expires, nodes get `401 Unauthorized` from the
//! registry and pods sit in `ImagePullBackOff`).

use crate::check::{Context, TargetOutcome};
use crate::connections::ServiceConnection;

use super::not_verified;

/// Reads the expiry of the credentials of the application `client_id` through Microsoft
/// Graph with `conn`'s identity and reports them against `expiryWarningDays` /
/// `expiryErrorDays`, like the identity check does for connections.
///
/// The Graph expiry logic lives in the identity check; until it is connected here this says
/// so instead of passing.
pub async fn cluster_sp_expiry(_ctx: &Context, _conn: &ServiceConnection, client_id: &str) -> TargetOutcome {
    let finding = not_verified(
"servicePrincipalExpiry",
        format!(
            "the cluster pulls with the service principal {client_id}; the expiry of its secret is read by the identity check, not here"
        ),
        format!(
            "See when its secrets expire: `az ad app credential list --id {client_id} --query \"[].endDateTime\"`; \
             renew with `az ad app credential reset --id {client_id} --append` and \
             `az aks update-credentials -g <resource group> -n <cluster> --reset-service-principal --service-principal {client_id} --client-secret <new secret>`, or move the cluster to a managed identity: \
             `az aks update --enable-managed-identity`."
        ),
        false,
    )
    .data("clientId", client_id);
    TargetOutcome { findings: vec![finding], ..Default::default() }
}
