//! Can the target reach a network-restricted registry? Through a private endpoint (approved,
//! and its `privatelink.azurecr.io` zone linked to the network the pull leaves from), or
//! publicly (public access enabled and every outbound address allowed by the IP rules).

use std::net::Ipv4Addr;

use futures_util::future::join_all;

use crate::azure::arm::ArmClient;
use crate::azure::resource_id::ResourceId;
use crate::check::TargetOutcome;
use crate::codes::Code;
use crate::finding::Finding;
use crate::sanitize::sanitize;

use super::network::{not_allowed, parse_rule, same_id, show, Net};
use super::not_verified;
use super::registry::{self, Registry, NETWORK_API};

/// Where the pull's public traffic comes from.
#[derive(Debug, Clone)]
pub enum Egress {
    Addresses(Vec<Ipv4Addr>),
    /// Public IP and public IP prefix resources to read (an AKS load balancer's, NAT
    /// gateway's, or the prefixes node pools take their nodes' own addresses from).
    PublicIps(Vec<String>),
    /// Not knowable from the target's configuration; the reason.
    Unknown(String),
}

/// How a target's image pulls travel.
#[derive(Debug, Clone)]
pub struct Reach {
    /// Virtual networks the pull leaves from when it can use a private endpoint.
    pub vnets: Vec<String>,
    /// AKS nodes always resolve and connect from their network; a web app only when it
    /// pulls over its virtual network.
    pub private_capable: bool,
    /// An AKS-managed network (in this node resource group) that the pools do not name.
    pub managed_vnet_group: Option<String>,
    pub egress: Egress,
    /// A web app's integrated network that its image pulls do not use.
    pub unused_vnet: Option<String>,
    /// The target, for remedies.
    pub target_id: String,
    pub subscription: String,
    pub is_webapp: bool,
}

fn vnet_name(id: &str) -> String {
    id.rsplit('/').next().unwrap_or(id).to_string()
}

fn is_prefix(id: &str) -> bool {
    id.to_ascii_lowercase().contains("/providers/microsoft.network/publicipprefixes/")
}

/// The networks the pull's public traffic may leave from: single addresses, and whole
/// prefixes (any address of a prefix may be handed to a node).
async fn public_addresses(arm: &ArmClient<'_>, egress: &Egress) -> Result<Vec<Net>, String> {
    match egress {
        Egress::Addresses(a) => Ok(a.iter().map(|ip| (*ip, 32)).collect()),
        Egress::Unknown(why) => Err(why.clone()),
        Egress::PublicIps(ids) if ids.is_empty() => Err("the cluster reports no outbound public IP".into()),
        Egress::PublicIps(ids) => {
            let reads = join_all(ids.iter().map(|id| arm.get(id, NETWORK_API))).await;
            let mut out = Vec::new();
            for (id, r) in ids.iter().zip(reads) {
                let prefix = is_prefix(id);
                let noun = if prefix { "public IP prefix" } else { "outbound public IP" };
                let v = r.map_err(|e| format!("the {noun} {} cannot be read: {e}", sanitize(id)))?;
                let net = if prefix {
                    v.pointer("/properties/ipPrefix")
                        .and_then(|v| v.as_str())
                        .filter(|t| t.contains('/'))
                        .and_then(parse_rule)
                } else {
                    v.pointer("/properties/ipAddress")
                        .and_then(|v| v.as_str())
                        .and_then(|s| s.parse::<Ipv4Addr>().ok())
                        .map(|ip| (ip, 32))
                };
                match net {
                    Some(n) => {
                        if !out.contains(&n) {
                            out.push(n)
                        }
                    }
                    None => return Err(format!("the {noun} {} has no IPv4 address (range)", sanitize(id))),
                }
            }
            Ok(out)
        }
    }
}

pub async fn check(arm: &ArmClient<'_>, registry: &Registry, reach: &Reach) -> TargetOutcome {
    let mut outcome = TargetOutcome::default();
    let reg = sanitize(&registry.name);
    if !registry.restricted() {
        outcome.proven.push(format!("registry {reg} accepts public network access from anywhere"));
        return outcome;
    }
    let firewall = registry.firewall_on();
    let (endpoints, egress) = tokio::join!(registry::private_endpoints(arm, registry), async {
        if firewall {
            public_addresses(arm, &reach.egress).await
        } else {
            Ok(Vec::new())
        }
    });

    let mut unknown: Vec<String> = Vec::new();
    let mut missing: Vec<Net> = Vec::new();
    let public = if registry.public_disabled() {
        Some(false)
    } else {
        match &egress {
            Ok(ips) if ips.is_empty() => {
                unknown.push("no outbound address of the target is known".into());
                None
            }
            Ok(ips) => {
                missing = not_allowed(ips, &registry.ip_rules);
                Some(missing.is_empty())
            }
            Err(why) => {
                unknown.push(why.clone());
                None
            }
        }
    };

    let (approved, pending) = match &endpoints {
        Ok(list) => list.iter().cloned().partition::<Vec<_>, _>(|c| c.approved()),
        Err(e) => {
            unknown.push(format!("the registry's private endpoint connections cannot be read: {e}"));
            (Vec::new(), Vec::new())
        }
    };
    let zone_name = registry.private_zone_name();
    let mut unlinked: Vec<String> = Vec::new();
    let mut zone: Option<String> = None;
    let private = if !reach.private_capable {
        Some(false)
    } else if endpoints.is_err() {
        None
    } else if approved.is_empty() {
        Some(false)
    } else if reach.vnets.is_empty() {
        let group = reach.managed_vnet_group.as_deref().unwrap_or("the node resource group");
        unknown.push(format!(
            "the node pools use the AKS-managed virtual network in {}, which the cluster does not name; whether it reaches \
             the private endpoint and resolves {zone_name} is not proven",
            sanitize(group)
        ));
        None
    } else {
        let endpoint_ids: Vec<String> = approved.iter().filter_map(|c| c.endpoint_id.clone()).collect();
        let mut subscriptions = vec![reach.subscription.clone()];
        if !subscriptions.iter().any(|s| s.eq_ignore_ascii_case(&registry.subscription)) {
            subscriptions.push(registry.subscription.clone());
        }
        let dns = registry::private_dns(arm, &zone_name, &endpoint_ids, &subscriptions).await;
        if dns.zones.is_empty() {
            let failures =
                if dns.failures.is_empty() { String::new() } else { format!(" ({})", dns.failures.join("; ")) };
            unknown.push(format!(
                "no {zone_name} private DNS zone was found for the endpoints or in subscription(s) {}{failures}",
                subscriptions.join(", ")
            ));
            None
        } else {
            zone = dns.zones.first().cloned();
            let not_linked: Vec<String> = reach.vnets.iter().filter(|v| !dns.is_linked(v)).cloned().collect();
            let servers = join_all(not_linked.iter().map(|v| registry::vnet_dns_servers(arm, v))).await;
            for (vnet, servers) in not_linked.iter().zip(servers) {
                match servers {
                    Ok(list) if !list.is_empty() => unknown.push(format!(
                        "virtual network {} uses its own DNS servers ({}); whether they forward {zone_name} is not proven",
                        sanitize(vnet),
                        sanitize(&list.join(", "))
                    )),
                    _ => unlinked.push(vnet.clone()),
                }
            }
            if !unlinked.is_empty() {
                Some(false)
            } else if not_linked.is_empty() {
                Some(true)
            } else {
                None
            }
        }
    };

    let endpoint_names = approved.iter().map(|c| sanitize(&c.name)).collect::<Vec<_>>().join(", ");
    match (private, public) {
        (Some(true), _) => outcome.proven.push(format!(
            "pulls from {reg} over private endpoint {endpoint_names}; {zone_name} is linked to {}",
            reach.vnets.iter().map(|v| sanitize(&vnet_name(v))).collect::<Vec<_>>().join(", ")
        )),
        (_, Some(true)) => {
            let ips = egress.as_ref().map(|a| a.iter().map(|n| show(*n)).collect::<Vec<_>>()).unwrap_or_default();
            outcome.proven.push(format!("registry {reg} firewall allows the outbound addresses {}", ips.join(", ")));
        }
        (Some(false), Some(false)) => {
            outcome.findings.push(failure(registry, reach, &approved, &pending, &unlinked, zone.as_deref(), &missing))
        }
        _ => outcome.findings.push(not_verified(
"network",
            format!("registry {reg} restricts network access and the target's path to it is not proven: {}", unknown.join("; ")),
            format!(
                "Check from a node or the app: `nslookup {}` must give the private endpoint's address (or the public one \
                 when the target's outbound addresses are allowed), then pull the image once.",
                sanitize(&registry.login_server)
            ),
            true,
        )),
    }
    outcome
}

#[allow(clippy::too_many_arguments)]
fn failure(
    registry: &Registry,
    reach: &Reach,
    approved: &[registry::EndpointConnection],
    pending: &[registry::EndpointConnection],
    unlinked: &[String],
    zone: Option<&str>,
    missing: &[Net],
) -> Finding {
    let reg = sanitize(&registry.name);
    let zone_name = registry.private_zone_name();
    let closed_public = if registry.public_disabled() {
        "public network access is disabled".to_string()
    } else if missing.is_empty() {
        "the public path is closed".to_string()
    } else {
        format!("the firewall does not allow {}", missing.iter().map(|n| show(*n)).collect::<Vec<_>>().join(", "))
    };
    if !unlinked.is_empty() && !approved.is_empty() {
        let zone_id = zone.and_then(ResourceId::parse);
        let (zone_rg, zone_sub) = zone_id
            .as_ref()
            .map(|z| (z.resource_group.clone(), z.subscription.clone()))
            .unwrap_or_else(|| ("<zone resource group>".into(), registry.subscription.clone()));
        let commands = unlinked
            .iter()
            .map(|v| {
                format!(
                    "az network private-dns link vnet create -g {zone_rg} -z {zone_name} -n {}-acr-link -v {} -e false --subscription {zone_sub}",
                    sanitize(&vnet_name(v)),
                    sanitize(v)
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        return Finding::new(
            Code::DEP010,
            format!(
                "registry {reg} has the approved private endpoint {} but the {zone_name} zone{} is not linked to \
                 virtual network {}, so pulls there resolve the public address, and {closed_public}: pulls fail with 403 or an i/o timeout",
                approved.iter().map(|c| sanitize(&c.name)).collect::<Vec<_>>().join(", "),
                zone.map(|z| format!(" ({})", sanitize(z))).unwrap_or_default(),
                unlinked.iter().map(|v| sanitize(v)).collect::<Vec<_>>().join(", ")
            ),
        )
        .remedy(format!("Link the zone to the target's network:\n{commands}"))
        .data("registry", registry.id.clone())
        .data("zone", zone.map(sanitize).unwrap_or_default())
        .data("unlinkedVnets", unlinked.iter().map(|v| sanitize(v)).collect::<Vec<_>>());
    }
    if registry.public_disabled() {
        let pending_text = if pending.is_empty() {
            String::new()
        } else {
            format!(
                "; private endpoint connection(s) {} are not approved ({})",
                pending.iter().map(|c| sanitize(&c.name)).collect::<Vec<_>>().join(", "),
                pending.iter().map(|c| sanitize(&c.status)).collect::<Vec<_>>().join(", ")
            )
        };
        let (path, remedy) = if reach.is_webapp {
            match (&reach.unused_vnet, approved.is_empty()) {
                (Some(vnet), false) => (
                    format!("the app is integrated with {} but does not pull images over it", sanitize(&vnet_name(vnet))),
                    format!(
                        "Pull images over the integrated network: `az resource update --ids {} --set properties.vnetImagePullEnabled=true`",
                        reach.target_id
                    ),
                ),
                _ => (
                    "the app pulls over the public internet".to_string(),
                    format!(
                        "Integrate the app with a virtual network that reaches a private endpoint of {reg} and pull over it: \
                         `az webapp vnet-integration add --ids {} --vnet <vnet> --subnet <subnet>`, then \
                         `az resource update --ids {} --set properties.vnetImagePullEnabled=true`; or allow public access: \
                         `az acr update --name {reg} --public-network-enabled true`",
                        reach.target_id, reach.target_id
                    ),
                ),
            }
        } else {
            let create = format!(
                "create a private endpoint in the cluster's network (or one peered with it): \
                 `az network private-endpoint create -g <network resource group> -n {reg}-pe --vnet-name <vnet> --subnet <subnet> \
                 --private-connection-resource-id {} --group-id registry --connection-name {reg}-pe`, and link {zone_name} to that network; \
                 or allow public access: `az acr update --name {reg} --public-network-enabled true`",
                registry.id
            );
            let remedy = match pending.first() {
                Some(c) => format!(
                    "Approve the pending connection: `az network private-endpoint-connection approve --id {}`; or {create}",
                    sanitize(&c.id)
                ),
                None => format!("Either {create}"),
            };
            ("the registry has no approved private endpoint".to_string(), remedy)
        };
        return Finding::new(
            Code::DEP008,
            format!("registry {reg} has public network access disabled and {path}{pending_text}"),
        )
        .remedy(remedy)
        .data("registry", registry.id.clone())
        .data("publicNetworkAccess", sanitize(&registry.public_network_access));
    }
    let commands = missing
        .iter()
        .map(|n| format!("az acr network-rule add --name {reg} --ip-address {}", show(*n)))
        .collect::<Vec<_>>()
        .join("\n");
    Finding::new(
        Code::DEP009,
        format!(
            "registry {reg} allows only selected networks and its IP rules do not include the target's outbound \
             address(es) {}; pulls fail with `client with IP ... is not allowed access`",
            missing.iter().map(|n| show(*n)).collect::<Vec<_>>().join(", ")
        ),
    )
    .remedy(format!(
        "Allow the addresses (all of them: the target may use any):\n{commands}\nor reach the registry through a private endpoint instead."
    ))
    .data("registry", registry.id.clone())
    .data("missing", missing.iter().map(|n| show(*n)).collect::<Vec<_>>())
    .data("ipRules", registry.ip_rules.iter().map(|r| sanitize(r)).collect::<Vec<_>>())
}

/// The distinct virtual networks of subnet ids.
pub fn vnets_of(subnets: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in subnets {
        if let Some(v) = super::network::vnet_of_subnet(s) {
            if !out.iter().any(|o| same_id(o, &v)) {
                out.push(v);
            }
        }
    }
    out
}
