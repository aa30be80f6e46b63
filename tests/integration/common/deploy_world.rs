//! The world the deploy tests run in: the ARM fake seeded with a healthy AKS cluster or web
//! app, the registry its image lives in, and a run of the binary in a pipeline step's
//! environment with its JSON report.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{pipeline_env, preflight, stderr_of, stdout_of};
use crate::fake_acr::{Attrs, Config as AcrConfig, FakeAcr};
use crate::fake_arm::*;

pub(crate) const SUB: &str = "6b1f0c2e-3d4a-4b5c-8d9e-0f1a2b3c4d5e";
pub(crate) const HUB_SUB: &str = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a";
pub(crate) const CONN: &str = "2f6e7c1a-9b8d-4e3f-a1b2-c3d4e5f6a7b8";
pub(crate) const TENANT: &str = "5e4d3c2b-1a0f-4e9d-8c7b-6a5f4e3d2c1b";
pub(crate) const SPN_CLIENT: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
pub(crate) const SPN_SECRET: &str = "spn-secret-canary-Zq8wX";
pub(crate) const ADMIN_PASSWORD: &str = "acr-admin-password-canary-Lm3";
pub(crate) const OLD_PASSWORD: &str = "old-admin-password-canary-Pq9";

pub(crate) const CLUSTER: &str = "/subscriptions/6b1f0c2e-3d4a-4b5c-8d9e-0f1a2b3c4d5e/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks-prod";
pub(crate) const NODE_RG: &str = "MC_rg-aks_aks-prod_westeurope";
pub(crate) const KUBELET_OID: &str = "3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a";
pub(crate) const KUBELET_CLIENT: &str = "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d";
pub(crate) const CLUSTER_SP: &str = "4d3c2b1a-0f9e-4d8c-b7a6-5f4e3d2c1b0a";
pub(crate) const CLUSTER_SP_OID: &str = "8e7d6c5b-4a39-4281-9f0e-1d2c3b4a5968";
pub(crate) const SUBNET: &str = "/subscriptions/6b1f0c2e-3d4a-4b5c-8d9e-0f1a2b3c4d5e/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vnet-spoke/subnets/aks-nodes";
pub(crate) const VNET: &str = "/subscriptions/6b1f0c2e-3d4a-4b5c-8d9e-0f1a2b3c4d5e/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vnet-spoke";
pub(crate) const HUB_VNET: &str = "/subscriptions/6b1f0c2e-3d4a-4b5c-8d9e-0f1a2b3c4d5e/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vnet-hub";
pub(crate) const ZONE: &str = "/subscriptions/6b1f0c2e-3d4a-4b5c-8d9e-0f1a2b3c4d5e/resourceGroups/rg-dns/providers/Microsoft.Network/privateDnsZones/privatelink.azurecr.io";
pub(crate) const PE: &str = "/subscriptions/6b1f0c2e-3d4a-4b5c-8d9e-0f1a2b3c4d5e/resourceGroups/rg-net/providers/Microsoft.Network/privateEndpoints/contosoprod-pe";

pub(crate) const REGISTRY: &str = "/subscriptions/6b1f0c2e-3d4a-4b5c-8d9e-0f1a2b3c4d5e/resourceGroups/rg-acr/providers/Microsoft.ContainerRegistry/registries/contosoprod";
pub(crate) const IMAGE: &str = "contosoprod.azurecr.io/shop/web:1.4";

pub(crate) const SITE: &str =
    "/subscriptions/6b1f0c2e-3d4a-4b5c-8d9e-0f1a2b3c4d5e/resourceGroups/rg-web/providers/Microsoft.Web/sites/shop-web";
pub(crate) const WEB_PRINCIPAL: &str = "6f5e4d3c-2b1a-4098-8f7e-6d5c4b3a2918";

pub(crate) fn kubelet_id() -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{NODE_RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/aks-prod-agentpool")
}

pub(crate) fn registries_list(sub: &str) -> String {
    format!("/subscriptions/{sub}/providers/Microsoft.ContainerRegistry/registries")
}

pub(crate) fn scale_sets_list() -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{NODE_RG}/providers/Microsoft.Compute/virtualMachineScaleSets")
}

pub(crate) fn outbound_ip_id() -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{NODE_RG}/providers/Microsoft.Network/publicIPAddresses/kubernetes-outbound")
}

/// Registries in the subscription: the target's one third, so finding it takes two pages.
pub(crate) fn put_registries(arm: &FakeArm, target_registry: Value) {
    for other in ["buildcache", "legacyimages"] {
        let id = format!(
            "/subscriptions/{SUB}/resourceGroups/rg-acr/providers/Microsoft.ContainerRegistry/registries/{other}"
        );
        let r = registry(&id, other, json!({}));
        arm.put(&id, r.clone());
        arm.add_to_list(&registries_list(SUB), r);
    }
    arm.put(REGISTRY, target_registry.clone());
    arm.add_to_list(&registries_list(SUB), target_registry);
}

pub(crate) fn pools(subnet: Option<&str>) -> Vec<Value> {
    vec![
        agent_pool(CLUSTER, "system", "Linux", "Ubuntu", "Standard_D4s_v5", subnet),
        agent_pool(CLUSTER, "armpool", "Linux", "AzureLinux", "Standard_D4ps_v5", subnet),
    ]
}

pub(crate) fn put_cluster(arm: &FakeArm, kubelet: bool, service_principal: &str, network: Value, pools: &[Value]) {
    let kid = kubelet_id();
    let kubelet = kubelet.then_some((KUBELET_OID, KUBELET_CLIENT, kid.as_str()));
    arm.put(CLUSTER, managed_cluster(CLUSTER, "aks-prod", NODE_RG, kubelet, service_principal, network, pools));
    arm.remove(&format!("{CLUSTER}/agentPools"));
    for p in pools {
        arm.add_to_list(&format!("{CLUSTER}/agentPools"), p.clone());
    }
}

pub(crate) fn lb_network() -> Value {
    json!({
        "networkPlugin": "azure", "loadBalancerSku": "standard", "outboundType": "loadBalancer",
        "loadBalancerProfile": {"managedOutboundIPs": {"count": 1}, "effectiveOutboundIPs": [{"id": outbound_ip_id()}]}
    })
}

/// A healthy AKS target: kubelet identity with AcrPull on the registry, on both scale sets,
/// registry open to public networks.
pub(crate) fn aks_world(arm: &FakeArm) {
    put_builtin_roles(arm, SUB);
    put_cluster(arm, true, "msi", lb_network(), &pools(Some(SUBNET)));
    let node_rg_id = format!("/subscriptions/{SUB}/resourceGroups/{NODE_RG}");
    arm.remove(&scale_sets_list());
    arm.add_to_list(&scale_sets_list(), scale_set(&node_rg_id, "aks-system-12345678-vmss", "system", &[&kubelet_id()]));
    arm.add_to_list(
        &scale_sets_list(),
        scale_set(&node_rg_id, "aks-armpool-23456789-vmss", "armpool", &[&kubelet_id()]),
    );
    arm.put(&outbound_ip_id(), public_ip(&outbound_ip_id(), "20.61.7.8"));
    put_registries(arm, registry(REGISTRY, "contosoprod", json!({})));
    arm.add_role_assignment(role_assignment(REGISTRY, KUBELET_OID, &role_definition_id(SUB, ACR_PULL), None));
}

/// A healthy Linux web app pulling with its system-assigned identity, AcrPull inherited from
/// the registry's resource group.
pub(crate) fn webapp_world(arm: &FakeArm) {
    put_builtin_roles(arm, SUB);
    arm.put(
        SITE,
        site(
            SITE,
            "shop-web",
            "app,linux,container",
            json!({"type": "SystemAssigned", "principalId": WEB_PRINCIPAL, "tenantId": TENANT}),
            json!({}),
        ),
    );
    arm.put(&format!("{SITE}/config/web"), site_config(SITE, &format!("DOCKER|{IMAGE}"), true, None));
    arm.put_post(
        &format!("{SITE}/config/appsettings/list"),
        200,
        app_settings(SITE, &[("WEBSITES_ENABLE_APP_SERVICE_STORAGE", "false")]),
    );
    put_registries(arm, registry(REGISTRY, "contosoprod", json!({})));
    arm.add_role_assignment(role_assignment(
        &format!("/subscriptions/{SUB}/resourceGroups/rg-acr"),
        WEB_PRINCIPAL,
        &role_definition_id(SUB, ACR_PULL),
        None,
    ));
}

pub(crate) fn aks_line() -> String {
    format!("aks:{CLUSTER} image={IMAGE}")
}

pub(crate) fn webapp_line() -> String {
    format!("webapp:{SITE} image={IMAGE}")
}

pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) report: Value,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    pub(crate) fn entries(&self) -> Vec<&Value> {
        self.report["checks"]
            .as_array()
            .map(|a| a.iter().filter(|c| c["check"] == "deploy").collect())
            .unwrap_or_default()
    }

    pub(crate) fn entry(&self) -> &Value {
        let entries = self.entries();
        assert_eq!(entries.len(), 1, "{}", self.stdout);
        entries[0]
    }

    pub(crate) fn codes(&self) -> Vec<String> {
        codes(self.entry())
    }

    pub(crate) fn finding(&self, code: &str) -> &Value {
        finding(self.entry(), code)
    }

    pub(crate) fn assert_no_secret(&self, dir: &Path) {
        let report_file = std::fs::read_to_string(dir.join("_temp/azp-preflight-report.json")).unwrap_or_default();
        for secret in [SPN_SECRET, TOKEN, ADMIN_PASSWORD, OLD_PASSWORD] {
            for (what, text) in [("stdout", &self.stdout), ("stderr", &self.stderr), ("report", &report_file)] {
                assert!(!text.contains(secret), "{secret} leaked into {what}");
            }
        }
    }
}

pub(crate) fn codes(entry: &Value) -> Vec<String> {
    entry["findings"].as_array().unwrap().iter().map(|f| f["code"].as_str().unwrap().to_string()).collect()
}

pub(crate) fn finding<'a>(entry: &'a Value, code: &str) -> &'a Value {
    entry["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == code)
        .unwrap_or_else(|| panic!("no {code} in {entry:#}"))
}

pub(crate) fn step_notes(entry: &Value) -> Vec<String> {
    entry["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "DEP011")
        .map(|f| format!("{}:{}", f["data"]["step"].as_str().unwrap(), f["severity"].as_str().unwrap()))
        .collect()
}

pub(crate) fn connection_env(arm: &FakeArm) -> Vec<(String, String)> {
    let p = |k: &str| format!("ENDPOINT_AUTH_PARAMETER_{CONN}_{k}");
    vec![
        ("INPUT_AZURESUBSCRIPTION".into(), CONN.into()),
        (format!("ENDPOINT_URL_{CONN}"), arm.arm_url()),
        (format!("ENDPOINT_AUTH_SCHEME_{CONN}"), "ServicePrincipal".into()),
        (p("SERVICEPRINCIPALID"), SPN_CLIENT.into()),
        (p("TENANTID"), TENANT.into()),
        (p("AUTHENTICATIONTYPE"), "spnKey".into()),
        (p("SERVICEPRINCIPALKEY"), SPN_SECRET.into()),
        (format!("ENDPOINT_DATA_{CONN}_SUBSCRIPTIONID"), SUB.into()),
        (format!("ENDPOINT_DATA_{CONN}_SUBSCRIPTIONNAME"), "Contoso Prod".into()),
        (format!("ENDPOINT_DATA_{CONN}_ENVIRONMENTAUTHORITYURL"), arm.entra_url()),
        ("AZP_PREFLIGHT_GRAPH_URL".into(), arm.graph_url()),
        ("INPUT_CHECKS".into(), "deploy".into()),
    ]
}

/// The registries the targets' images live in: one fake ACR on loopback stands in for both
/// login servers, with `shop/web` tags 1.0 and 1.4 (linux/amd64 and linux/arm64).
pub(crate) fn image_registry() -> FakeAcr {
    let mut config = AcrConfig::default()
        .login_server("contosoprod.azurecr.io")
        .login_server("hubacr.azurecr.io")
        .accept_access_token(TOKEN)
        .entra("", &["pull"])
        .with_app("shop/web", Attrs::open(), Attrs::open());
    if let Some(repo) = config.repos.get_mut("shop/web") {
        if let Some(image) = repo.tags.get("1.0").cloned() {
            repo.tags.insert("1.4".into(), image);
        }
    }
    FakeAcr::start(config)
}

pub(crate) fn run(dir: &Path, arm: &FakeArm, lines: &[String], extra: &[(&str, &str)]) -> Run {
    let acr = image_registry();
    let endpoints = format!("contosoprod.azurecr.io={0},hubacr.azurecr.io={0}", acr.server());
    let out = preflight(dir)
        .envs(pipeline_env(dir))
        .envs(connection_env(arm))
        .env("AZP_PREFLIGHT_REGISTRY_ENDPOINTS", endpoints)
        .env("INPUT_DEPLOYTARGETS", lines.join("\n"))
        .envs(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        .args(["--format", "json"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let stdout = stdout_of(&out);
    let report = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    Run { code: out.status.code().unwrap_or(-1), report, stdout, stderr: stderr_of(&out) }
}
pub(crate) fn private_registry(arm: &FakeArm, public: &str, default_action: &str, rules: Value) {
    arm.remove(&registries_list(SUB));
    put_registries(
        arm,
        registry(
            REGISTRY,
            "contosoprod",
            json!({"publicNetworkAccess": public, "networkRuleSet": {"defaultAction": default_action, "ipRules": rules}}),
        ),
    );
    arm.empty_list(&format!("{REGISTRY}/privateEndpointConnections"));
}
