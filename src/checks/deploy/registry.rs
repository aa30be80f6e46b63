//! The registry side of a deployment: finding the registry behind the image's login
//! server, whether a principal's role assignments let it pull, and the registry's private
//! endpoints and private DNS zones.

use futures_util::future::join_all;
use serde_json::Value;

use crate::azure::arm::{ArmClient, ArmError};
use crate::azure::resource_id::ResourceId;
use crate::connections::ServiceConnection;
use crate::deploy_target::DeployTarget;
use crate::sanitize::sanitize;

use super::abac::{self, Verdict};
use super::clean_id;
use super::network::same_id;
use super::rbac::{self, RoleDefinition};

/// `roleAssignmentMode` is returned from this version on.
pub const REGISTRY_API: &str = "2025-11-01";
/// For clouds that do not offer `REGISTRY_API` yet; the mode is then unknown.
pub const REGISTRY_API_FALLBACK: &str = "2023-07-01";
pub const AUTHORIZATION_API: &str = "2022-04-01";
pub const PRIVATE_DNS_API: &str = "2020-06-01";
pub const NETWORK_API: &str = "2024-05-01";

#[derive(Debug, Clone)]
pub struct Registry {
    pub id: String,
    pub name: String,
    pub resource_group: String,
    pub subscription: String,
    pub login_server: String,
    pub admin_user_enabled: bool,
    pub anonymous_pull_enabled: bool,
    pub public_network_access: String,
    pub default_action: String,
    pub ip_rules: Vec<String>,
    pub role_assignment_mode: String,
    /// False when the registry was read with the older api-version, which omits the mode.
    pub mode_known: bool,
}

impl Registry {
    pub fn from_arm(v: &Value, mode_known: bool) -> Option<Registry> {
        let id_text = v["id"].as_str()?;
        let id = ResourceId::parse(id_text)?;
        let props = &v["properties"];
        let rules = &props["networkRuleSet"];
        // Everything here reaches messages and remedies: sanitized once, on reading.
        let text = |v: &Value, default: &str| sanitize(v.as_str().unwrap_or(default));
        Some(Registry {
            id: clean_id(id_text),
            name: text(&v["name"], id.name()),
            resource_group: id.resource_group.clone(),
            subscription: id.subscription.clone(),
            login_server: text(&props["loginServer"], "").to_ascii_lowercase(),
            admin_user_enabled: props["adminUserEnabled"].as_bool().unwrap_or(false),
            anonymous_pull_enabled: props["anonymousPullEnabled"].as_bool().unwrap_or(false),
            public_network_access: text(&props["publicNetworkAccess"], "Enabled"),
            default_action: text(&rules["defaultAction"], "Allow"),
            ip_rules: rules["ipRules"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter(|r| r["action"].as_str().is_none_or(|x| x.eq_ignore_ascii_case("allow")))
                        .filter_map(|r| r["value"].as_str().map(sanitize))
                        .collect()
                })
                .unwrap_or_default(),
            role_assignment_mode: text(&props["roleAssignmentMode"], "LegacyRegistryPermissions"),
            mode_known,
        })
    }

    pub fn abac(&self) -> bool {
        self.role_assignment_mode.eq_ignore_ascii_case("AbacRepositoryPermissions")
    }

    pub fn public_disabled(&self) -> bool {
        self.public_network_access.eq_ignore_ascii_case("Disabled")
    }

    /// Public access limited to the IP rules ("Selected networks").
    pub fn firewall_on(&self) -> bool {
        !self.public_disabled() && self.default_action.eq_ignore_ascii_case("Deny")
    }

    pub fn restricted(&self) -> bool {
        self.public_disabled() || self.firewall_on()
    }

    /// `privatelink.azurecr.io` (or the sovereign-cloud equivalent) for this registry.
    pub fn private_zone_name(&self) -> String {
        let suffix = self.login_server.split_once('.').map(|(_, s)| s).unwrap_or("azurecr.io");
        format!("privatelink.{suffix}")
    }
}

/// Why no registry was found for a target's image.
#[derive(Debug)]
pub enum Missing {
    /// No registry with the image's login server among those the identity can list.
    NotFound { searched: Vec<String>, failures: Vec<String> },
    /// `registry=` named one that could not be read, or one with another login server.
    Named { id: String, problem: String },
}

fn api_version_refused(e: &ArmError) -> bool {
    match e {
        ArmError::Status { status: 400, code, .. } => {
            let code = code.to_ascii_lowercase();
            code.contains("apiversion") || code == "noregisteredproviderfound"
        }
        _ => false,
    }
}

async fn read_registry(arm: &ArmClient<'_>, id: &str) -> Result<Registry, ArmError> {
    let (value, known) = match arm.get(id, REGISTRY_API).await {
        Err(e) if api_version_refused(&e) => (arm.get(id, REGISTRY_API_FALLBACK).await?, false),
        other => (other?, true),
    };
    Registry::from_arm(&value, known)
        .ok_or_else(|| ArmError::NotJson { status: 200, excerpt: "the registry has no resource id".into() })
}

async fn list_registries(arm: &ArmClient<'_>, subscription: &str) -> Result<Vec<Registry>, ArmError> {
    let path = format!("/subscriptions/{subscription}/providers/Microsoft.ContainerRegistry/registries");
    let (values, known) = match arm.list(&path, REGISTRY_API).await {
        Err(e) if api_version_refused(&e) => (arm.list(&path, REGISTRY_API_FALLBACK).await?, false),
        other => (other?, true),
    };
    Ok(values.iter().filter_map(|v| Registry::from_arm(v, known)).collect())
}

/// Finds the registry whose login server is the image's host: the one `registry=` names, or
/// by listing the registries of the target's subscription and the connection's own.
pub async fn find(arm: &ArmClient<'_>, target: &DeployTarget, conn: &ServiceConnection) -> Result<Registry, Missing> {
    let host = target.image.host();
    let host = host.split(':').next().unwrap_or(&host).to_string();
    if let Some(id) = &target.registry {
        let id = id.to_path();
        return match read_registry(arm, &id).await {
            Ok(r) if r.login_server == host => Ok(r),
            Ok(r) => Err(Missing::Named {
                id,
                problem: format!(
                    "its login server is `{}`, not the image's `{}`",
                    sanitize(&r.login_server),
                    sanitize(&host)
                ),
            }),
            Err(e) => Err(Missing::Named { id, problem: format!("it cannot be read: {e}") }),
        };
    }
    let mut subscriptions = vec![target.resource.subscription.clone()];
    if let Some(own) = conn.data("SUBSCRIPTIONID") {
        if !subscriptions.iter().any(|s| s.eq_ignore_ascii_case(own)) {
            subscriptions.push(own.to_string());
        }
    }
    let lists = join_all(subscriptions.iter().map(|s| list_registries(arm, s))).await;
    let mut failures = Vec::new();
    for (sub, list) in subscriptions.iter().zip(lists) {
        match list {
            Ok(registries) => {
                if let Some(r) = registries.into_iter().find(|r| r.login_server == host) {
                    return Ok(r);
                }
            }
            Err(e) => failures.push(format!("subscription {sub}: {e}")),
        }
    }
    Err(Missing::NotFound { searched: subscriptions, failures })
}

/// Whether a principal may pull the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permission {
    /// The roles that grant it, as `<role> at <scope>`.
    Granted(Vec<String>),
    Missing {
        /// Legacy roles (AcrPull, Owner, ...) the principal holds that ABAC mode ignores.
        ignored_in_abac: Vec<String>,
        /// Repository roles whose condition leaves out this repository.
        condition_excludes: Vec<String>,
    },
    /// Not decidable: the reason.
    Unknown(String),
}

pub fn is_guid(text: &str) -> bool {
    text.len() == 36
        && text
            .chars()
            .enumerate()
            .all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { c == '-' } else { c.is_ascii_hexdigit() })
}

/// Reads the role assignments that reach the registry for the principal and the Entra ID
/// groups it belongs to (`assignedTo`), and the definitions of their roles, and decides for
/// the registry's mode. When ARM refuses `assignedTo`, the principal's own assignments are
/// read instead: a grant among them still proves the pull, their absence proves nothing.
pub async fn pull_permission(
    arm: &ArmClient<'_>,
    registry: &Registry,
    object_id: &str,
    repository: &str,
) -> Permission {
    if !is_guid(object_id) {
        return Permission::Unknown(format!("`{}` is not an object id", sanitize(object_id)));
    }
    let base = format!("{}/providers/Microsoft.Authorization/roleAssignments", registry.id);
    let (assignments, groups_unread) =
        match arm.list(&format!("{base}?$filter=assignedTo('{object_id}')"), AUTHORIZATION_API).await {
            Ok(a) => (a, None),
            Err(group_error) => {
                match arm.list(&format!("{base}?$filter=principalId%20eq%20'{object_id}'"), AUTHORIZATION_API).await {
                    Ok(a) => (a, Some(group_error)),
                    Err(e) => {
                        return Permission::Unknown(format!("the role assignments at the registry cannot be read: {e}"))
                    }
                }
            }
        };
    // `assignedTo` answers with the principal's assignments and its groups'; the fallback
    // only with its own.
    let applying: Vec<&Value> = assignments
        .iter()
        .filter(|a| {
            let p = &a["properties"];
            let whose = groups_unread.is_none()
                || p["principalId"].as_str().is_none_or(|id| id.eq_ignore_ascii_case(object_id));
            whose && p["scope"].as_str().is_some_and(|s| rbac::scope_applies(s, &registry.id))
        })
        .collect();
    let mut definition_ids: Vec<String> = Vec::new();
    for a in &applying {
        if let Some(id) = a["properties"]["roleDefinitionId"].as_str() {
            if !definition_ids.iter().any(|d| same_id(d, id)) {
                definition_ids.push(id.to_string());
            }
        }
    }
    let reads = join_all(definition_ids.iter().map(|id| arm.get(id, AUTHORIZATION_API))).await;
    let definitions: Vec<(String, Result<RoleDefinition, String>)> = definition_ids
        .iter()
        .zip(reads)
        .map(|(id, r)| {
            let def = match r {
                Ok(v) => RoleDefinition::from_arm(&v).ok_or_else(|| "no permissions in the answer".to_string()),
                Err(e) => Err(e.to_string()),
            };
            (id.clone(), def)
        })
        .collect();

    let mut granted = Vec::new();
    let mut ignored_in_abac = Vec::new();
    let mut condition_excludes = Vec::new();
    let mut unreadable = Vec::new();
    let mut unevaluated = Vec::new();
    for a in applying {
        let p = &a["properties"];
        let (Some(def_id), Some(scope)) = (p["roleDefinitionId"].as_str(), p["scope"].as_str()) else { continue };
        let scope = sanitize(scope);
        let via = match p["principalId"].as_str() {
            Some(id) if !id.eq_ignore_ascii_case(object_id) => {
                let kind = p["principalType"].as_str().unwrap_or("group");
                format!(" (through {} {})", sanitize(&kind.to_ascii_lowercase()), sanitize(id))
            }
            _ => String::new(),
        };
        let Some((_, def)) = definitions.iter().find(|(id, _)| same_id(id, def_id)) else { continue };
        match def {
            Ok(def) => {
                let role = format!("{} at {scope}{via}", sanitize(&def.name));
                if registry.abac() {
                    if def.grants_abac_pull() {
                        match p["condition"].as_str().filter(|c| !c.trim().is_empty()) {
                            None => granted.push(role),
                            Some(c) => {
                                let metadata = def.grants_data_action(rbac::ABAC_METADATA_READ);
                                match abac::pull_verdict(c, repository, metadata) {
                                    Verdict::Allows => granted
                                        .push(format!("{role} (its condition covers `{}`)", sanitize(repository))),
                                    Verdict::Denies => condition_excludes.push(role),
                                    Verdict::Unknown(why) => unevaluated.push(format!("{role} ({why})")),
                                }
                            }
                        }
                    } else if def.grants_legacy_pull() {
                        ignored_in_abac.push(role);
                    }
                } else if def.grants_legacy_pull() {
                    granted.push(role);
                }
            }
            Err(why) => match rbac::builtin_legacy_puller(def_id) {
                Some(name) if registry.abac() => ignored_in_abac.push(format!("{name} at {scope}{via}")),
                Some(name) => granted.push(format!("{name} at {scope}{via}")),
                None => unreadable.push(format!("{} ({why})", sanitize(def_id))),
            },
        }
    }
    if !granted.is_empty() {
        return Permission::Granted(granted);
    }
    let mut unknown = Vec::new();
    if !unreadable.is_empty() {
        unknown.push(format!("the role definitions {} cannot be read", unreadable.join(", ")));
    }
    if !unevaluated.is_empty() {
        unknown.push(format!("the repository condition of {} cannot be evaluated", unevaluated.join("; ")));
    }
    if let Some(e) = groups_unread {
        unknown.push(format!(
            "no role of its own grants pull, and the assignments it holds through Entra ID groups cannot be read \
             (`$filter=assignedTo(...)` was refused: {e})"
        ));
    }
    if unknown.is_empty() {
        Permission::Missing { ignored_in_abac, condition_excludes }
    } else {
        Permission::Unknown(unknown.join("; "))
    }
}

/// A private endpoint connection of the registry.
#[derive(Debug, Clone)]
pub struct EndpointConnection {
    pub id: String,
    pub name: String,
    pub endpoint_id: Option<String>,
    pub status: String,
}

impl EndpointConnection {
    pub fn approved(&self) -> bool {
        self.status.eq_ignore_ascii_case("Approved")
    }
}

pub async fn private_endpoints(arm: &ArmClient<'_>, registry: &Registry) -> Result<Vec<EndpointConnection>, ArmError> {
    let items = arm.list(&format!("{}/privateEndpointConnections", registry.id), REGISTRY_API).await?;
    Ok(items
        .iter()
        .map(|c| {
            let p = &c["properties"];
            EndpointConnection {
                id: clean_id(c["id"].as_str().unwrap_or_default()),
                name: sanitize(c["name"].as_str().unwrap_or("(unnamed)")),
                endpoint_id: p["privateEndpoint"]["id"].as_str().map(clean_id),
                status: sanitize(p["privateLinkServiceConnectionState"]["status"].as_str().unwrap_or("Unknown")),
            }
        })
        .collect())
}

/// The private DNS zones that serve the registry's private addresses and the virtual
/// networks linked to them.
#[derive(Debug, Clone, Default)]
pub struct PrivateDns {
    /// Zone ids, authoritative first: those the private endpoints' DNS zone groups write to.
    pub zones: Vec<String>,
    /// Virtual network ids (as ARM wrote them) with a completed link to one of the zones.
    pub linked: Vec<String>,
    /// Reads that failed, for messages.
    pub failures: Vec<String>,
}

impl PrivateDns {
    pub fn is_linked(&self, vnet: &str) -> bool {
        self.linked.iter().any(|l| same_id(l, vnet))
    }
}

fn is_zone(id: &str, zone_name: &str) -> bool {
    id.rsplit('/').next().is_some_and(|n| n.eq_ignore_ascii_case(zone_name))
        && id.to_ascii_lowercase().contains("/providers/microsoft.network/privatednszones/")
}

/// Zones from the endpoints' DNS zone groups (where the endpoint writes its records); only
/// when there are none, zones of that name found in `subscriptions`.
pub async fn private_dns(
    arm: &ArmClient<'_>,
    zone_name: &str,
    endpoint_ids: &[String],
    subscriptions: &[String],
) -> PrivateDns {
    let mut dns = PrivateDns::default();
    let groups = join_all(endpoint_ids.iter().map(|pe| {
        let path = format!("{pe}/privateDnsZoneGroups");
        async move { arm.list(&path, NETWORK_API).await }
    }))
    .await;
    for (pe, g) in endpoint_ids.iter().zip(groups) {
        match g {
            Ok(groups) => {
                for group in groups {
                    let configs = group["properties"]["privateDnsZoneConfigs"].as_array().cloned().unwrap_or_default();
                    for config in configs {
                        if let Some(zone) = config["properties"]["privateDnsZoneId"].as_str() {
                            if is_zone(zone, zone_name) && !dns.zones.iter().any(|z| same_id(z, zone)) {
                                dns.zones.push(clean_id(zone));
                            }
                        }
                    }
                }
            }
            Err(e) => dns.failures.push(format!("DNS zone groups of {}: {e}", sanitize(pe))),
        }
    }
    if dns.zones.is_empty() {
        let lists = join_all(subscriptions.iter().map(|s| {
            let path = format!("/subscriptions/{s}/providers/Microsoft.Network/privateDnsZones");
            async move { arm.list(&path, PRIVATE_DNS_API).await }
        }))
        .await;
        for (sub, list) in subscriptions.iter().zip(lists) {
            match list {
                Ok(zones) => {
                    for z in zones {
                        if let Some(id) = z["id"].as_str() {
                            if is_zone(id, zone_name) && !dns.zones.iter().any(|known| same_id(known, id)) {
                                dns.zones.push(clean_id(id));
                            }
                        }
                    }
                }
                Err(e) => dns.failures.push(format!("private DNS zones of subscription {sub}: {e}")),
            }
        }
    }
    let links = join_all(dns.zones.iter().map(|z| {
        let path = format!("{z}/virtualNetworkLinks");
        async move { arm.list(&path, PRIVATE_DNS_API).await }
    }))
    .await;
    for (zone, l) in dns.zones.clone().iter().zip(links) {
        match l {
            Ok(links) => {
                for link in links {
                    let p = &link["properties"];
                    let done =
                        p["virtualNetworkLinkState"].as_str().is_none_or(|s| s.eq_ignore_ascii_case("Completed"));
                    if let (Some(vnet), true) = (p["virtualNetwork"]["id"].as_str(), done) {
                        dns.linked.push(clean_id(vnet));
                    }
                }
            }
            Err(e) => dns.failures.push(format!("links of {}: {e}", sanitize(zone))),
        }
    }
    dns
}

/// The custom DNS servers of a virtual network (empty: Azure-provided DNS).
pub async fn vnet_dns_servers(arm: &ArmClient<'_>, vnet: &str) -> Result<Vec<String>, ArmError> {
    let v = arm.get(vnet, NETWORK_API).await?;
    Ok(v["properties"]["dhcpOptions"]["dnsServers"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn registry_facts_with_defaults() {
        let r = Registry::from_arm(
            &json!({
                "id": "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/contoso",
                "name": "contoso",
                "properties": {"loginServer": "Contoso.azurecr.io"}
            }),
            true,
        )
        .unwrap();
        assert_eq!((r.login_server.as_str(), r.abac(), r.restricted()), ("contoso.azurecr.io", false, false));
        assert_eq!(r.private_zone_name(), "privatelink.azurecr.io");
        let r = Registry::from_arm(
            &json!({
                "id": "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/gov",
                "properties": {"loginServer": "gov.azurecr.us", "publicNetworkAccess": "Enabled",
                    "roleAssignmentMode": "AbacRepositoryPermissions",
                    "networkRuleSet": {"defaultAction": "Deny", "ipRules": [{"action": "Allow", "value": "1.2.3.4"}]}}
            }),
            true,
        )
        .unwrap();
        assert!(r.abac() && r.firewall_on() && !r.public_disabled());
        assert_eq!((r.name.as_str(), r.ip_rules.len()), ("gov", 1));
        assert_eq!(r.private_zone_name(), "privatelink.azurecr.us");
    }

    #[test]
    fn guids() {
        assert!(is_guid("5a4b3c2d-1e0f-4a1b-9c8d-7e6f5a4b3c2d"));
        assert!(!is_guid("5a4b3c2d-1e0f-4a1b-9c8d-7e6f5a4b3c2' or 1"));
        assert!(!is_guid("msi"));
    }
}
