//! Documented payload shapes: resources, role definitions and assignments as ARM returns them,
//! for the tests to seed the fake with.

use serde_json::{json, Value};

use super::FakeArm;

pub const ACR_PULL: &str = "7f951dda-4ed3-4680-a7ca-43fe172d538d";
pub const ACR_PUSH: &str = "8311e382-0749-4cb8-b61a-304f252e45ec";
pub const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
pub const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
pub const OWNER: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
pub const REPOSITORY_READER: &str = "b93aa761-3e63-49ed-ac28-beffa264f7ac";

pub fn role_definition_id(subscription: &str, guid: &str) -> String {
    format!("/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{guid}")
}

/// A role definition as `GET .../roleDefinitions/{id}` returns it.
pub fn role_definition(
    subscription: &str,
    guid: &str,
    name: &str,
    kind: &str,
    actions: &[&str],
    not_actions: &[&str],
    data_actions: &[&str],
) -> Value {
    json!({
        "id": role_definition_id(subscription, guid),
        "name": guid,
        "type": "Microsoft.Authorization/roleDefinitions",
        "properties": {
            "roleName": name,
            "type": kind,
            "description": format!("{name} role"),
            "assignableScopes": ["/"],
            "permissions": [{"actions": actions, "notActions": not_actions, "dataActions": data_actions, "notDataActions": []}],
            "createdOn": "2018-10-29T17:52:32.5201177Z",
            "updatedOn": "2021-11-11T20:13:33.8182216Z"
        }
    })
}

/// Serves the built-in roles the tests use, with their documented permissions.
pub fn put_builtin_roles(fake: &FakeArm, subscription: &str) {
    let roles = [
        role_definition(
            subscription,
            ACR_PULL,
            "AcrPull",
            "BuiltInRole",
            &["Microsoft.ContainerRegistry/registries/pull/read"],
            &[],
            &[],
        ),
        role_definition(
            subscription,
            ACR_PUSH,
            "AcrPush",
            "BuiltInRole",
            &["Microsoft.ContainerRegistry/registries/pull/read", "Microsoft.ContainerRegistry/registries/push/write"],
            &[],
            &[],
        ),
        role_definition(subscription, READER, "Reader", "BuiltInRole", &["*/read"], &[], &[]),
        role_definition(
            subscription,
            CONTRIBUTOR,
            "Contributor",
            "BuiltInRole",
            &["*"],
            &[
                "Microsoft.Authorization/*/Delete",
                "Microsoft.Authorization/*/Write",
                "Microsoft.Authorization/elevateAccess/Action",
                "Microsoft.Blueprint/blueprintAssignments/write",
                "Microsoft.Blueprint/blueprintAssignments/delete",
                "Microsoft.Compute/galleries/share/action",
            ],
            &[],
        ),
        role_definition(subscription, OWNER, "Owner", "BuiltInRole", &["*"], &[], &[]),
        role_definition(
            subscription,
            REPOSITORY_READER,
            "Container Registry Repository Reader",
            "BuiltInRole",
            &[],
            &[],
            &[
                "Microsoft.ContainerRegistry/registries/repositories/content/read",
                "Microsoft.ContainerRegistry/registries/repositories/metadata/read",
            ],
        ),
    ];
    for r in roles {
        fake.put(r["id"].as_str().unwrap(), r.clone());
    }
}

/// A role assignment as the list-for-scope endpoint returns it.
pub fn role_assignment(scope: &str, principal: &str, role_definition_id: &str, condition: Option<&str>) -> Value {
    let name = format!(
        "{:08x}-0000-4000-8000-000000000000",
        (scope.len() * 7919 + principal.len() * 31 + role_definition_id.len()) as u32
    );
    json!({
        "id": format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"),
        "name": name,
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "roleDefinitionId": role_definition_id,
            "principalId": principal,
            "principalType": "ServicePrincipal",
            "scope": scope,
            "condition": condition,
            "conditionVersion": condition.map(|_| "2.0"),
            "createdOn": "2025-03-04T10:11:12.0000000Z",
            "updatedOn": "2025-03-04T10:11:12.0000000Z"
        }
    })
}

/// A registry as `GET`/list return it (api-version 2025-11-01).
pub fn registry(id: &str, name: &str, extra: Value) -> Value {
    let mut props = json!({
        "loginServer": format!("{name}.azurecr.io"),
        "creationDate": "2024-01-10T08:00:00.0000000Z",
        "provisioningState": "Succeeded",
        "adminUserEnabled": false,
        "policies": {
            "quarantinePolicy": {"status": "disabled"},
            "trustPolicy": {"type": "Notary", "status": "disabled"},
            "retentionPolicy": {"days": 7, "status": "disabled"},
            "exportPolicy": {"status": "enabled"},
            "azureADAuthenticationAsArmPolicy": {"status": "enabled"}
        },
        "encryption": {"status": "disabled"},
        "dataEndpointEnabled": false,
        "dataEndpointHostNames": [],
        "privateEndpointConnections": [],
        "publicNetworkAccess": "Enabled",
        "networkRuleBypassOptions": "AzureServices",
        "zoneRedundancy": "Disabled",
        "anonymousPullEnabled": false,
        "roleAssignmentMode": "LegacyRegistryPermissions"
    });
    if let (Some(p), Some(e)) = (props.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            p.insert(k.clone(), v.clone());
        }
    }
    json!({
        "id": id,
        "name": name,
        "type": "Microsoft.ContainerRegistry/registries",
        "location": "westeurope",
        "sku": {"name": "Premium", "tier": "Premium"},
        "tags": {},
        "properties": props
    })
}

/// An agent pool as the `agentPools` list returns it.
pub fn agent_pool(cluster_id: &str, name: &str, os: &str, os_sku: &str, vm_size: &str, subnet: Option<&str>) -> Value {
    json!({
        "id": format!("{cluster_id}/agentPools/{name}"),
        "name": name,
        "type": "Microsoft.ContainerService/managedClusters/agentPools",
        "properties": {
            "count": 3,
            "vmSize": vm_size,
            "osDiskSizeGB": 128,
            "vnetSubnetID": subnet,
            "maxPods": 30,
            "type": "VirtualMachineScaleSets",
            "mode": if name == "system" { "System" } else { "User" },
            "orchestratorVersion": "1.29.4",
            "provisioningState": "Succeeded",
            "powerState": {"code": "Running"},
            "osType": os,
            "osSKU": os_sku,
            "enableNodePublicIP": false
        }
    })
}

/// A managed cluster (api-version 2024-05-01). `kubelet` is (objectId, clientId, resourceId).
pub fn managed_cluster(
    id: &str,
    name: &str,
    node_rg: &str,
    kubelet: Option<(&str, &str, &str)>,
    service_principal: &str,
    network_profile: Value,
    pools: &[Value],
) -> Value {
    let profiles: Vec<Value> = pools
        .iter()
        .map(|p| {
            let mut flat = p["properties"].clone();
            flat["name"] = p["name"].clone();
            flat
        })
        .collect();
    json!({
        "id": id,
        "location": "westeurope",
        "name": name,
        "type": "Microsoft.ContainerService/ManagedClusters",
        "identity": {"type": "SystemAssigned", "principalId": "11111111-2222-4333-8444-555555555555", "tenantId": "00000000-0000-0000-0000-000000000000"},
        "properties": {
            "provisioningState": "Succeeded",
            "powerState": {"code": "Running"},
            "kubernetesVersion": "1.29.4",
            "dnsPrefix": name,
            "fqdn": format!("{name}-dns-12345678.hcp.westeurope.azmk8s.io"),
            "agentPoolProfiles": profiles,
            "servicePrincipalProfile": {"clientId": service_principal},
            "nodeResourceGroup": node_rg,
            "enableRBAC": true,
            "networkProfile": network_profile,
            "identityProfile": kubelet.map(|(object_id, client_id, resource_id)| json!({
                "kubeletidentity": {"resourceId": resource_id, "clientId": client_id, "objectId": object_id}
            }))
        }
    })
}

/// A VM scale set of a node pool, with the identities assigned to it.
pub fn scale_set(node_rg_id: &str, name: &str, pool: &str, identities: &[&str]) -> Value {
    let assigned: serde_json::Map<String, Value> = identities
        .iter()
        .map(|id| (id.to_string(), json!({"principalId": "99999999-0000-4000-8000-000000000001", "clientId": "99999999-0000-4000-8000-000000000002"})))
        .collect();
    json!({
        "id": format!("{node_rg_id}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}"),
        "name": name,
        "type": "Microsoft.Compute/virtualMachineScaleSets",
        "location": "westeurope",
        "tags": {"aks-managed-poolName": pool, "aks-managed-createOperationID": "00000000-0000-0000-0000-000000000000"},
        "identity": {"type": "UserAssigned", "userAssignedIdentities": assigned},
        "sku": {"name": "Standard_D4s_v5", "tier": "Standard", "capacity": 3},
        "properties": {"provisioningState": "Succeeded", "uniqueId": "4f5a6b7c-0000-4000-8000-000000000000"}
    })
}

/// A web app (api-version 2023-12-01).
pub fn site(id: &str, name: &str, kind: &str, identity: Value, props: Value) -> Value {
    let mut p = json!({
        "state": "Running",
        "hostNames": [format!("{name}.azurewebsites.net")],
        "enabled": true,
        "serverFarmId": id.replace(&format!("Microsoft.Web/sites/{name}"), "Microsoft.Web/serverfarms/plan"),
        "reserved": kind.contains("linux"),
        "siteConfig": {"linuxFxVersion": null, "windowsFxVersion": null},
        "outboundIpAddresses": "20.50.2.10,20.50.2.11",
        "possibleOutboundIpAddresses": "20.50.2.10,20.50.2.11,20.50.2.12,20.50.2.13",
        "httpsOnly": true,
        "virtualNetworkSubnetId": null,
        "vnetRouteAllEnabled": false,
        "vnetImagePullEnabled": false,
        "publicNetworkAccess": "Enabled"
    });
    if let (Some(pm), Some(e)) = (p.as_object_mut(), props.as_object()) {
        for (k, v) in e {
            pm.insert(k.clone(), v.clone());
        }
    }
    json!({"id": id, "name": name, "type": "Microsoft.Web/sites", "kind": kind, "location": "West Europe", "identity": identity, "properties": p})
}

/// `GET {site}/config/web`.
pub fn site_config(site_id: &str, linux_fx: &str, acr_identity: bool, user_identity_client_id: Option<&str>) -> Value {
    json!({
        "id": format!("{site_id}/config/web"),
        "name": "web",
        "type": "Microsoft.Web/sites/config",
        "properties": {
            "numberOfWorkers": 1,
            "linuxFxVersion": linux_fx,
            "alwaysOn": true,
            "acrUseManagedIdentityCreds": acr_identity,
            "acrUserManagedIdentityID": user_identity_client_id,
            "vnetRouteAllEnabled": false,
            "http20Enabled": true,
            "minTlsVersion": "1.2",
            "ftpsState": "Disabled"
        }
    })
}

/// `POST {site}/config/appsettings/list`.
pub fn app_settings(site_id: &str, settings: &[(&str, &str)]) -> Value {
    let map: serde_json::Map<String, Value> =
        settings.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect();
    json!({"id": format!("{site_id}/config/appsettings"), "name": "appsettings", "type": "Microsoft.Web/sites/config", "location": "West Europe", "properties": map})
}

/// A private endpoint connection of a registry.
pub fn endpoint_connection(registry_id: &str, name: &str, endpoint_id: &str, status: &str) -> Value {
    json!({
        "id": format!("{registry_id}/privateEndpointConnections/{name}"),
        "name": name,
        "type": "Microsoft.ContainerRegistry/registries/privateEndpointConnections",
        "properties": {
            "privateEndpoint": {"id": endpoint_id},
            "privateLinkServiceConnectionState": {"status": status, "description": "Auto-Approved", "actionsRequired": "None"},
            "provisioningState": "Succeeded"
        }
    })
}

/// A private endpoint's DNS zone group pointing at a zone.
pub fn zone_group(endpoint_id: &str, zone_id: &str) -> Value {
    json!({
        "id": format!("{endpoint_id}/privateDnsZoneGroups/default"),
        "name": "default",
        "properties": {
            "provisioningState": "Succeeded",
            "privateDnsZoneConfigs": [{"name": "privatelink-azurecr-io", "properties": {"privateDnsZoneId": zone_id, "recordSets": []}}]
        }
    })
}

pub fn private_zone(zone_id: &str) -> Value {
    json!({
        "id": zone_id,
        "name": "privatelink.azurecr.io",
        "type": "Microsoft.Network/privateDnsZones",
        "location": "global",
        "properties": {"maxNumberOfRecordSets": 25000, "numberOfRecordSets": 3, "numberOfVirtualNetworkLinks": 1, "provisioningState": "Succeeded"}
    })
}

pub fn vnet_link(zone_id: &str, name: &str, vnet_id: &str, state: &str) -> Value {
    json!({
        "id": format!("{zone_id}/virtualNetworkLinks/{name}"),
        "name": name,
        "type": "Microsoft.Network/privateDnsZones/virtualNetworkLinks",
        "location": "global",
        "properties": {"virtualNetwork": {"id": vnet_id}, "registrationEnabled": false, "virtualNetworkLinkState": state, "provisioningState": "Succeeded"}
    })
}

pub fn virtual_network(vnet_id: &str, dns_servers: &[&str]) -> Value {
    json!({
        "id": vnet_id,
        "name": vnet_id.rsplit('/').next().unwrap_or(""),
        "type": "Microsoft.Network/virtualNetworks",
        "location": "westeurope",
        "properties": {"addressSpace": {"addressPrefixes": ["10.10.0.0/16"]}, "dhcpOptions": {"dnsServers": dns_servers}, "provisioningState": "Succeeded"}
    })
}

pub fn public_ip(id: &str, address: &str) -> Value {
    json!({
        "id": id,
        "name": id.rsplit('/').next().unwrap_or(""),
        "type": "Microsoft.Network/publicIPAddresses",
        "location": "westeurope",
        "sku": {"name": "Standard", "tier": "Regional"},
        "properties": {"ipAddress": address, "publicIPAddressVersion": "IPv4", "publicIPAllocationMethod": "Static", "provisioningState": "Succeeded"}
    })
}
