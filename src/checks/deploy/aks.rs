//! An AKS cluster as a deployment target: who pulls (the kubelet identity, or the cluster's
//! service principal on older clusters), whether that identity may pull from the registry,
//! whether the node pools' scale sets still carry it, the network path from the nodes to the
//! registry, and the platforms the node pools run.

use serde_json::{json, Value};

use crate::azure::arm::ArmClient;
use crate::azure::entra;
use crate::check::{Context, TargetOutcome};
use crate::codes::Code;
use crate::connections::ServiceConnection;
use crate::deploy_target::DeployTarget;
use crate::finding::Finding;
use crate::net::http::Request;
use crate::sanitize::sanitize;

use super::clean_id;
use super::network::same_id;
use super::reach::{self, Egress, Reach};
use super::registry::{self, is_guid, Registry};
use super::{
    expiry, facts, image, merge, not_verified, permission_outcome, platform, registry_not_found, unreadable, Puller,
};

pub const AKS_API: &str = "2024-05-01";
pub const COMPUTE_API: &str = "2024-07-01";

/// Who the nodes pull with.
#[derive(Debug, Clone)]
enum Identity {
    Kubelet { object_id: String, client_id: String, resource_id: Option<String> },
    ServicePrincipal { client_id: String },
}

pub async fn check(
    ctx: &Context,
    arm: &ArmClient<'_>,
    conn: &ServiceConnection,
    target: &DeployTarget,
    acr: bool,
) -> TargetOutcome {
    let id = target.resource.to_path();
    let pools_path = format!("{id}/agentPools");
    let (cluster, pools, lookup) = tokio::join!(arm.get(&id, AKS_API), arm.list(&pools_path, AKS_API), async {
        if acr {
            Some(registry::find(arm, target, conn).await)
        } else {
            None
        }
    });
    let mut out = TargetOutcome::default();
    let cluster = match cluster {
        Ok(c) => c,
        Err(e) => {
            out.findings.push(unreadable("AKS cluster", &id, conn, &e));
            return out;
        }
    };
    let props = &cluster["properties"];
    // The pools list is authoritative; the cluster's own copy serves when it cannot be read.
    let pools: Vec<Value> = match pools {
        Ok(p) if !p.is_empty() => p,
        _ => props["agentPoolProfiles"].as_array().cloned().unwrap_or_default(),
    };
    let wanted = platform::aks_platforms(&pools);
    let (cluster_name, rg, sub) = (
        target.resource.name().to_string(),
        target.resource.resource_group.clone(),
        target.resource.subscription.clone(),
    );

    let identity = identity_of(props);
    let registry = match lookup {
        Some(Ok(r)) => Some(r),
        Some(Err(missing)) => {
            out.findings.push(registry_not_found(&target.image.host(), missing));
            None
        }
        None => None,
    };
    merge(
        &mut out,
        facts(vec![
            ("registry", registry.as_ref().map(|r| json!(r.id)).unwrap_or(Value::Null)),
            ("wantedPlatforms", serde_json::to_value(&wanted).unwrap_or_default()),
            (
                "pullingIdentity",
                match &identity {
                    Some(Identity::Kubelet { object_id, client_id, resource_id }) => json!({
                        "type": "kubeletIdentity", "objectId": object_id, "clientId": client_id, "resourceId": resource_id
                    }),
                    Some(Identity::ServicePrincipal { client_id }) => {
                        json!({"type": "servicePrincipal", "clientId": client_id})
                    }
                    None => Value::Null,
                },
            ),
        ]),
    );
    if identity.is_none() {
        out.findings.push(
            Finding::new(
                Code::DEP005,
                "the cluster reports neither a kubelet identity (identityProfile.kubeletidentity) nor a service principal \
                 (servicePrincipalProfile.clientId), so its nodes have nothing to authenticate to a registry with",
            )
            .remedy(format!("Give the cluster a managed identity: `az aks update -n {cluster_name} -g {rg} --subscription {sub} --enable-managed-identity`"))
            .data("resourceId", id.clone()),
        );
    }

    let node_rg = props["nodeResourceGroup"].as_str().map(sanitize);
    let subnets: Vec<String> =
        pools.iter().filter_map(|p| pool_props(p)["vnetSubnetID"].as_str().map(clean_id)).collect();
    let managed = pools.iter().any(|p| pool_props(p)["vnetSubnetID"].as_str().is_none_or(|s| s.is_empty()));
    let reach = Reach {
        vnets: reach::vnets_of(&subnets),
        private_capable: true,
        managed_vnet_group: if managed { node_rg.clone().or(Some(format!("MC_{rg}_{cluster_name}"))) } else { None },
        egress: egress_of(&props["networkProfile"], &pools),
        unused_vnet: None,
        target_id: id.clone(),
        subscription: sub.clone(),
        is_webapp: false,
    };

    let image_part = image::resolve_image(ctx, &target.image, &wanted);
    let expiry_part = async {
        match &identity {
            Some(Identity::ServicePrincipal { client_id }) => expiry::cluster_sp_expiry(ctx, conn, client_id).await,
            _ => TargetOutcome::default(),
        }
    };
    let permission_part = async {
        match (&registry, &identity) {
            (Some(reg), Some(who)) => {
                permission(ctx, arm, conn, reg, who, &target.image.repository, (&cluster_name, &rg, &sub)).await
            }
            _ => TargetOutcome::default(),
        }
    };
    let scale_set_part = async {
        match (&identity, &node_rg) {
            (Some(Identity::Kubelet { resource_id: Some(kubelet), .. }), Some(node_rg)) => {
                scale_sets(arm, &sub, node_rg, kubelet, &pools).await
            }
            _ => TargetOutcome::default(),
        }
    };
    let network_part = async {
        match &registry {
            Some(reg) => reach::check(arm, reg, &reach).await,
            None => TargetOutcome::default(),
        }
    };
    let (image_out, expiry_out, permission_out, scale_set_out, network_out) =
        tokio::join!(image_part, expiry_part, permission_part, scale_set_part, network_part);
    for part in [permission_out, scale_set_out, network_out, expiry_out, image_out] {
        merge(&mut out, part);
    }
    out
}

/// The pool's properties: `agentPools` items nest them, `agentPoolProfiles` do not.
fn pool_props(pool: &Value) -> &Value {
    if pool["properties"].is_object() {
        &pool["properties"]
    } else {
        pool
    }
}

fn identity_of(props: &Value) -> Option<Identity> {
    let sp = props["servicePrincipalProfile"]["clientId"]
        .as_str()
        .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("msi"));
    if let Some(client_id) = sp {
        return Some(Identity::ServicePrincipal { client_id: sanitize(client_id) });
    }
    let kubelet = &props["identityProfile"]["kubeletidentity"];
    let object_id = kubelet["objectId"].as_str()?;
    Some(Identity::Kubelet {
        object_id: sanitize(object_id),
        client_id: sanitize(kubelet["clientId"].as_str().unwrap_or_default()),
        resource_id: kubelet["resourceId"].as_str().map(clean_id),
    })
}

/// The public addresses the nodes' traffic leaves from. A pool with `enableNodePublicIP`
/// gives each node its own public address, which its outbound traffic uses instead of the
/// load balancer's: from `nodePublicIPPrefixID` when set (the whole prefix must be allowed,
/// any address of it may go to a new node), else from no fixed range at all.
fn egress_of(network: &Value, pools: &[Value]) -> Egress {
    let mut ids: Vec<String> = Vec::new();
    let mut behind_cluster_egress = pools.is_empty();
    for pool in pools {
        let p = pool_props(pool);
        if p["enableNodePublicIP"].as_bool() != Some(true) {
            behind_cluster_egress = true;
            continue;
        }
        let name = sanitize(pool["name"].as_str().unwrap_or("(unnamed)"));
        match p["nodePublicIPPrefixID"].as_str().map(str::trim).filter(|s| !s.is_empty()) {
            Some(prefix) => {
                if !ids.iter().any(|i| same_id(i, prefix)) {
                    ids.push(clean_id(prefix));
                }
            }
            None => {
                return Egress::Unknown(format!(
                "node pool {name} gives each node its own public IP (enableNodePublicIP) without a public IP prefix \
                     (nodePublicIPPrefixID), so the addresses its pulls come from change with every node"
            ))
            }
        }
    }
    if !behind_cluster_egress {
        return Egress::PublicIps(ids);
    }
    let outbound = network["outboundType"].as_str().unwrap_or("loadBalancer");
    let effective = |profile: &Value| -> Vec<String> {
        profile["effectiveOutboundIPs"]
            .as_array()
            .map(|a| a.iter().filter_map(|ip| ip["id"].as_str().map(clean_id)).collect())
            .unwrap_or_default()
    };
    let cluster_ids = match outbound.to_ascii_lowercase().as_str() {
        "loadbalancer" => effective(&network["loadBalancerProfile"]),
        "managednatgateway" => effective(&network["natGatewayProfile"]),
        _ => {
            return Egress::Unknown(format!(
                "the cluster's outbound type is `{}`: its egress address belongs to a NAT gateway or firewall the cluster does not name",
                sanitize(outbound)
            ))
        }
    };
    if cluster_ids.is_empty() {
        // Reported as "no outbound public IP" rather than proven by the prefixes alone.
        return Egress::PublicIps(Vec::new());
    }
    for id in cluster_ids {
        if !ids.iter().any(|i| same_id(i, &id)) {
            ids.push(id);
        }
    }
    Egress::PublicIps(ids)
}

#[allow(clippy::too_many_arguments)]
async fn permission(
    ctx: &Context,
    arm: &ArmClient<'_>,
    conn: &ServiceConnection,
    registry: &Registry,
    who: &Identity,
    repository: &str,
    (cluster, rg, sub): (&str, &str, &str),
) -> TargetOutcome {
    let aks = Some((cluster.to_string(), rg.to_string(), sub.to_string()));
    let puller = match who {
        Identity::Kubelet { object_id, client_id, .. } => Puller {
            object_id: object_id.clone(),
            label: format!("the kubelet identity (client id {client_id}, object id {object_id})"),
            assignee: object_id.clone(),
            aks,
        },
        Identity::ServicePrincipal { client_id } => match service_principal_object_id(ctx, conn, client_id).await {
            SpLookup::Found(object_id) => Puller {
                object_id,
                label: format!("the cluster's service principal {client_id}"),
                assignee: client_id.clone(),
                aks,
            },
            SpLookup::Gone => {
                let mut out = TargetOutcome::default();
                out.findings.push(
                    Finding::new(
                        Code::DEP005,
                        format!("the cluster pulls with the service principal {client_id}, which no longer exists in the tenant"),
                    )
                    .remedy(format!(
                        "Move the cluster to a managed identity: `az aks update -n {cluster} -g {rg} --subscription {sub} --enable-managed-identity`, \
                         then `az aks update -n {cluster} -g {rg} --subscription {sub} --attach-acr {}`",
                        registry.id
                    ))
                    .data("clientId", client_id.clone()),
                );
                return out;
            }
            SpLookup::Unknown(why) => {
                let mut out = TargetOutcome::default();
                out.findings.push(not_verified(
"pullPermission",
                    format!("the cluster pulls with the service principal {client_id}, whose object id is needed to read its role assignments: {why}"),
                    format!(
                        "Grant the connection's identity Microsoft Graph Application.Read.All, or check by hand: \
                         `az role assignment list --assignee {client_id} --scope {} --include-inherited`",
                        registry.id
                    ),
                    true,
                ));
                return out;
            }
        },
    };
    let perm = registry::pull_permission(arm, registry, &puller.object_id, repository).await;
    permission_outcome(registry, &puller, repository, perm)
}

enum SpLookup {
    Found(String),
    /// Graph says there is no such service principal.
    Gone,
    Unknown(String),
}

/// The object id of a service principal by application (client) id, from Microsoft Graph.
async fn service_principal_object_id(ctx: &Context, conn: &ServiceConnection, client_id: &str) -> SpLookup {
    if !is_guid(client_id) {
        return SpLookup::Unknown(format!("`{}` is not an application id", sanitize(client_id)));
    }
    let audience = conn.data("MICROSOFTGRAPHURL").or(conn.data("GRAPHURL")).unwrap_or("https://graph.microsoft.com/");
    let base = if ctx.endpoints.graph_overridden {
        ctx.endpoints.graph.clone()
    } else {
        crate::net::endpoints::base_url("microsoftGraphUrl", audience).unwrap_or_else(|_| ctx.endpoints.graph.clone())
    };
    let token =
        match entra::acquire(&ctx.services(), conn, &format!("{}/.default", audience.trim_end_matches('/'))).await {
            Ok(t) => t,
            Err(e) => return SpLookup::Unknown(format!("no Microsoft Graph token: {e}")),
        };
    let mut url = match base.join(&format!("v1.0/servicePrincipals(appId='{client_id}')")) {
        Ok(u) => u,
        Err(e) => return SpLookup::Unknown(format!("the Microsoft Graph URL cannot be formed ({e})")),
    };
    url.query_pairs_mut().append_pair("$select", "id,appId,displayName");
    let response = match ctx.http.send(Request::get(url).bearer(&token.token)).await {
        Ok(r) => r,
        Err(e) => return SpLookup::Unknown(format!("Microsoft Graph is unreachable: {e}")),
    };
    match response.status {
        200..=299 => match response.json::<Value>().ok().and_then(|v| v["id"].as_str().map(str::to_string)) {
            Some(id) if is_guid(&id) => SpLookup::Found(id),
            _ => SpLookup::Unknown(format!(
                "Microsoft Graph answered without an object id: {}",
                response.body_excerpt(200)
            )),
        },
        404 => SpLookup::Gone,
        status => {
            let body: Value = response.json().unwrap_or(Value::Null);
            let code = body["error"]["code"].as_str().map(sanitize).unwrap_or_else(|| "(no error code)".into());
            SpLookup::Unknown(format!("Microsoft Graph refused to read it (HTTP {status} {code})"))
        }
    }
}

/// DEP007: each VM scale set of a node pool must carry the kubelet identity, or its nodes
/// get no token to pull with.
async fn scale_sets(arm: &ArmClient<'_>, sub: &str, node_rg: &str, kubelet: &str, pools: &[Value]) -> TargetOutcome {
    let mut out = TargetOutcome::default();
    let path =
        format!("/subscriptions/{sub}/resourceGroups/{node_rg}/providers/Microsoft.Compute/virtualMachineScaleSets");
    let sets = match arm.list(&path, COMPUTE_API).await {
        Ok(s) => s,
        Err(e) => {
            out.findings.push(not_verified(
"scaleSetIdentity",
                format!("the node pools' scale sets in {} cannot be read, so whether they carry the kubelet identity is not proven: {e}", sanitize(node_rg)),
                format!("Let the connection's identity read the node resource group: Reader on /subscriptions/{sub}/resourceGroups/{node_rg}"),
                false,
            ));
            return out;
        }
    };
    let mut missing = Vec::new();
    let mut carrying = Vec::new();
    let mut unmatched = Vec::new();
    for pool in pools {
        let pool_type = pool_props(pool)["type"].as_str().unwrap_or("VirtualMachineScaleSets");
        if !pool_type.eq_ignore_ascii_case("VirtualMachineScaleSets") {
            continue;
        }
        let Some(pool_name) = pool["name"].as_str() else {
            unmatched.push("(unnamed)".to_string());
            continue;
        };
        let Some(set) = sets.iter().find(|s| s["tags"]["aks-managed-poolName"].as_str() == Some(pool_name)) else {
            unmatched.push(sanitize(pool_name));
            continue;
        };
        let set_name = sanitize(set["name"].as_str().unwrap_or("(unnamed)"));
        let has = set["identity"]["userAssignedIdentities"]
            .as_object()
            .is_some_and(|ids| ids.keys().any(|k| same_id(k, kubelet)));
        if has {
            carrying.push(set_name);
        } else {
            missing.push(set_name);
        }
    }
    if !missing.is_empty() {
        let commands = missing
            .iter()
            .map(|s| {
                format!(
                    "az vmss identity assign -g {node_rg} -n {} --identities {kubelet} --subscription {sub}",
                    sanitize(s)
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        out.findings.push(
            Finding::new(
                Code::DEP007,
                format!(
                    "the kubelet identity {} is not assigned to the node pool scale set(s) {}, so kubelet there gets no token \
                     and pulls fail with `unauthorized` even with AcrPull in place",
                    sanitize(kubelet),
                    missing.iter().map(|s| sanitize(s)).collect::<Vec<_>>().join(", ")
                ),
            )
            .remedy(format!("Assign it back to each scale set:\n{commands}"))
            .data("scaleSets", missing.iter().map(|s| sanitize(s)).collect::<Vec<_>>())
            .data("kubeletIdentity", sanitize(kubelet)),
        );
    } else if !carrying.is_empty() {
        out.proven.push(format!("the kubelet identity is assigned to scale set(s) {}", carrying.join(", ")));
    }
    if !unmatched.is_empty() {
        out.findings.push(
            not_verified(
                "scaleSetIdentity",
                format!(
                    "no scale set in {} carries the tag aks-managed-poolName for node pool(s) {}, so whether their nodes carry \
                     the kubelet identity is not proven",
                    sanitize(node_rg),
                    unmatched.join(", ")
                ),
                format!(
                    "List the scale sets with their tags: `az vmss list -g {node_rg} --subscription {sub} --query \"[].[name, tags]\"`; \
                     each node pool's set must list {} under `identity.userAssignedIdentities`",
                    sanitize(kubelet)
                ),
                true,
            )
            .data("pools", unmatched),
        );
    }
    out
}
