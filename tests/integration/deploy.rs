//! The deploy check end to end: the binary in a pipeline step's environment against the ARM
//! fake, one scenario per finding code, healthy AKS and web app targets, bad target lines,
//! and the proof that several targets' reads overlap.

use std::path::Path;
use std::time::{Duration, Instant};

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

#[test]
fn a_healthy_aks_target_proves_each_step_and_reads_through_arm() {
    let dir = tempfile::tempdir().unwrap();
    let arm = FakeArm::start();
    aks_world(&arm);
    let r = run(dir.path(), &arm, &[aks_line()], &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let e = r.entry();
    assert_eq!(
        (e["status"].as_str(), e["target"].as_str()),
        (Some("pass"), Some(&*format!("aks:rg-aks/aks-prod image={IMAGE}")))
    );
    let proven = e["proven"].to_string();
    assert!(proven.contains("kubelet identity") && proven.contains("AcrPull at /subscriptions/"), "{proven}");
    assert!(
        proven.contains("aks-system-12345678-vmss") && proven.contains("accepts public network access"),
        "{proven}"
    );
    // Nothing left unproven: the image was resolved through the registry chain too.
    assert_eq!(step_notes(e), [] as [&str; 0]);
    assert!(proven.contains("image") && proven.contains("linux/amd64"), "{proven}");
    let facts = &e["deployTarget"];
    assert_eq!(facts["registry"], REGISTRY);
    assert_eq!(facts["pullingIdentity"]["objectId"], KUBELET_OID);
    assert_eq!(
        facts["wantedPlatforms"],
        json!([{"os": "linux", "architecture": "amd64", "pools": ["system"]}, {"os": "linux", "architecture": "arm64", "pools": ["armpool"]}])
    );
    // Every ARM read carried the token and a real api-version; lists were followed past page one.
    let seen = arm.requests();
    let token = seen.iter().find(|s| s.path.ends_with("/oauth2/v2.0/token")).expect("a token request");
    assert!(token.path.starts_with(&format!("/{TENANT}")) && token.body.contains(&format!("client_id={SPN_CLIENT}")));
    assert!(seen.iter().any(|s| s.query.contains_key("$skiptoken")), "the registries list has a second page");
    // Each service was reached under its own prefix: the token at Entra, the rest at ARM,
    // second pages through the absolute nextLink ARM gave.
    assert_eq!(token.service, "entra");
    let second_pages: Vec<&Seen> = seen.iter().filter(|s| s.query.contains_key("$skiptoken")).collect();
    assert!(second_pages.iter().all(|s| s.service == "arm"), "{second_pages:?}");
    // The nextLink kept the mixed case of the path (`Microsoft.ContainerRegistry`), as ARM's do.
    assert!(
        second_pages.iter().all(|s| s.sent_path.contains("/providers/Microsoft.ContainerRegistry/")),
        "{second_pages:?}"
    );
    assert!(seen.iter().all(|s| s.service == "entra" || s.service == "arm"), "{seen:?}");
    for s in seen.iter().filter(|s| !s.path.ends_with("/token")) {
        assert_eq!(s.authorization.as_deref(), Some(&*format!("Bearer {TOKEN}")), "{}", s.path);
        assert!(s.query.contains_key("api-version"), "{}", s.path);
    }
    let ra = seen.iter().find(|s| s.path.ends_with("/roleassignments")).unwrap();
    assert_eq!(ra.query["$filter"], format!("assignedTo('{KUBELET_OID}')"));
    r.assert_no_secret(dir.path());
}

#[test]
fn a_healthy_web_app_with_an_inherited_role_passes() {
    let dir = tempfile::tempdir().unwrap();
    let arm = FakeArm::start();
    webapp_world(&arm);
    let r = run(dir.path(), &arm, &[webapp_line()], &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let e = r.entry();
    assert_eq!(e["status"], "pass");
    assert!(e["proven"].to_string().contains(
        "system-assigned identity of web app shop-web may pull from contosoprod: AcrPull at /subscriptions/"
    ));
    assert_eq!(e["deployTarget"]["wantedPlatforms"], json!([{"os": "linux", "architecture": "amd64", "pools": []}]));
    assert_eq!(e["deployTarget"]["pullingIdentity"]["type"], "systemAssigned");
    assert!(arm.requests().iter().any(|s| s.method == "POST" && s.path.ends_with("/config/appsettings/list")));
}

#[test]
fn dep001_names_a_missing_or_unreadable_target() {
    let dir = tempfile::tempdir().unwrap();
    let arm = FakeArm::start();
    aks_world(&arm);
    arm.remove(CLUSTER);
    arm.fail(&format!("{CLUSTER}/agentPools"), 404, "ResourceNotFound", "not found");
    let r = run(dir.path(), &arm, &[aks_line()], &[]);
    assert_eq!(r.code, 1);
    let f = r.finding("DEP001");
    assert_eq!((f["data"]["kind"].as_str(), f["data"]["status"].as_u64()), (Some("notFound"), Some(404)));
    assert!(f["remedy"].as_str().unwrap().contains(&format!("az resource show --ids {CLUSTER}")));

    arm.fail(
        SITE,
        403,
        "AuthorizationFailed",
        "The client does not have authorization to perform action 'Microsoft.Web/sites/read'",
    );
    let r = run(dir.path(), &arm, &[webapp_line()], &[]);
    let f = r.finding("DEP001");
    assert_eq!(
        (f["data"]["kind"].as_str(), f["data"]["armCode"].as_str()),
        (Some("denied"), Some("AuthorizationFailed"))
    );
    assert!(f["remedy"].as_str().unwrap().contains(&format!("--assignee {SPN_CLIENT} --role Reader --scope {SITE}")));
    r.assert_no_secret(dir.path());
}

#[test]
fn dep002_when_the_registry_is_out_of_reach_and_registry_override_finds_it() {
    let dir = tempfile::tempdir().unwrap();
    let arm = FakeArm::start();
    aks_world(&arm);
    let hub_registry = format!(
        "/subscriptions/{HUB_SUB}/resourceGroups/rg-hub/providers/Microsoft.ContainerRegistry/registries/hubacr"
    );
    let line = format!("aks:{CLUSTER} image=hubacr.azurecr.io/shop/web:1.4");
    let r = run(dir.path(), &arm, std::slice::from_ref(&line), &[]);
    assert_eq!(r.code, 0, "a warning does not fail the default gate");
    assert_eq!(r.entry()["status"], "warn");
    let f = r.finding("DEP002");
    assert_eq!((f["severity"].as_str(), f["data"]["searched"].clone()), (Some("warning"), json!([SUB])));
    assert!(!r.codes().contains(&"DEP003".to_string()), "no permission verdict without the registry");

    // Named explicitly, the registry in the hub subscription is read directly.
    arm.put(&hub_registry, registry(&hub_registry, "hubacr", json!({})));
    arm.add_role_assignment(role_assignment(
        &format!("/subscriptions/{HUB_SUB}"),
        KUBELET_OID,
        &role_definition_id(HUB_SUB, READER),
        None,
    ));
    put_builtin_roles(&arm, HUB_SUB);
    let r = run(dir.path(), &arm, &[format!("{line} registry={hub_registry}")], &[]);
    assert_eq!(r.entry()["status"], "pass", "{}", r.stdout);
    assert!(r.entry()["proven"].to_string().contains(&format!("Reader at /subscriptions/{HUB_SUB}")));
}

#[test]
fn dep003_when_no_role_reaches_the_registry_with_attach_acr_remedy() {
    let dir = tempfile::tempdir().unwrap();
    let arm = FakeArm::start();
    aks_world(&arm);
    arm.clear_role_assignments();
    // Near misses that must not count: another registry, a child scope, another principal,
    // and a custom role whose notActions take pull away.
    let other = format!(
        "/subscriptions/{SUB}/resourceGroups/rg-acr/providers/Microsoft.ContainerRegistry/registries/buildcache"
    );
    arm.add_role_assignment(role_assignment(&other, KUBELET_OID, &role_definition_id(SUB, ACR_PULL), None));
    arm.add_role_assignment(role_assignment(
        &format!("{REGISTRY}/scopeMaps/_repositories_pull"),
        KUBELET_OID,
        &role_definition_id(SUB, ACR_PULL),
        None,
    ));
    arm.add_role_assignment(role_assignment(REGISTRY, WEB_PRINCIPAL, &role_definition_id(SUB, ACR_PULL), None));
    let custom = "c0ffee00-1111-4222-8333-444455556666";
    arm.put(
        &role_definition_id(SUB, custom),
        role_definition(
            SUB,
            custom,
            "Registry auditor",
            "CustomRole",
            &["Microsoft.ContainerRegistry/*"],
            &["*/pull/read"],
            &[],
        ),
    );
    arm.add_role_assignment(role_assignment(
        &format!("/subscriptions/{SUB}"),
        KUBELET_OID,
        &role_definition_id(SUB, custom),
        None,
    ));
    let r = run(dir.path(), &arm, &[aks_line()], &[]);
    assert_eq!(r.code, 1);
    let f = r.finding("DEP003");
    let remedy = f["remedy"].as_str().unwrap();
    assert!(
        remedy.contains(&format!("az aks update -n aks-prod -g rg-aks --subscription {SUB} --attach-acr {REGISTRY}")),
        "{remedy}"
    );
    assert!(remedy
        .contains(&format!("az role assignment create --assignee {KUBELET_OID} --role AcrPull --scope {REGISTRY}")));
    assert_eq!(f["data"]["principalId"], KUBELET_OID);

    // A wildcard custom role at the management group reaches it.
    let wildcard = "c0ffee00-aaaa-4bbb-8ccc-ddddeeeeffff";
    arm.put(
        &role_definition_id(SUB, wildcard),
        role_definition(
            SUB,
            wildcard,
            "Image consumer",
            "CustomRole",
            &["Microsoft.ContainerRegistry/registries/*/read"],
            &[],
            &[],
        ),
    );
    arm.add_role_assignment(role_assignment(
        "/providers/Microsoft.Management/managementGroups/contoso-root",
        KUBELET_OID,
        &role_definition_id(SUB, wildcard),
        None,
    ));
    let r = run(dir.path(), &arm, &[aks_line()], &[]);
    assert_eq!(r.entry()["status"], "pass", "{}", r.stdout);
    assert!(r.entry()["proven"]
        .to_string()
        .contains("Image consumer at /providers/Microsoft.Management/managementGroups/contoso-root"));
}

#[test]
fn dep004_abac_mode_ignores_acrpull_and_honours_repository_conditions() {
    let dir = tempfile::tempdir().unwrap();
    let arm = FakeArm::start();
    aks_world(&arm);
    let abac = registry(REGISTRY, "contosoprod", json!({"roleAssignmentMode": "AbacRepositoryPermissions"}));
    arm.remove(&registries_list(SUB));
    put_registries(&arm, abac);
    let r = run(dir.path(), &arm, &[aks_line()], &[]);
    assert_eq!(r.code, 1);
    let f = r.finding("DEP004");
    assert_eq!(f["data"]["ignoredRoles"][0].as_str().unwrap(), format!("AcrPull at {REGISTRY}"));
    assert!(f["remedy"].as_str().unwrap().contains(&format!(
        "az role assignment create --assignee {KUBELET_OID} --role \"Container Registry Repository Reader\" --scope {REGISTRY}"
    )));

    let condition = |repo: &str| {
        format!("((!(ActionMatches{{'Microsoft.ContainerRegistry/registries/repositories/content/read'}}) AND !(ActionMatches{{'Microsoft.ContainerRegistry/registries/repositories/metadata/read'}})) OR (@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWithIgnoreCase '{repo}'))")
    };
    arm.add_role_assignment(role_assignment(
        REGISTRY,
        KUBELET_OID,
        &role_definition_id(SUB, REPOSITORY_READER),
        Some(&condition("billing/")),
    ));
    let r = run(dir.path(), &arm, &[aks_line()], &[]);
    let f = r.finding("DEP004");
    assert!(f["data"]["conditionExcludes"][0].as_str().unwrap().starts_with("Container Registry Repository Reader"));
    assert!(f["message"].as_str().unwrap().contains("does not cover the repository `shop/web`"));

    arm.clear_role_assignments();
    arm.add_role_assignment(role_assignment(
        REGISTRY,
        KUBELET_OID,
        &role_definition_id(SUB, REPOSITORY_READER),
        Some(&condition("shop/")),
    ));
    let r = run(dir.path(), &arm, &[aks_line()], &[]);
    assert_eq!(r.entry()["status"], "pass", "{}", r.stdout);
    assert!(r.entry()["proven"].to_string().contains("(ABAC repository permissions)"));
}

#[test]
fn dep005_when_the_target_has_nothing_to_pull_with() {
    let dir = tempfile::tempdir().unwrap();
    let arm = FakeArm::start();
    webapp_world(&arm);
    // acrUserManagedIdentityID names an identity the app does not have.
    let uami = format!("/subscriptions/{SUB}/resourceGroups/rg-web/providers/Microsoft.ManagedIdentity/userAssignedIdentities/shop-pull");
    arm.put(
        SITE,
        site(
            SITE,
            "shop-web",
            "app,linux,container",
            json!({"type": "UserAssigned", "userAssignedIdentities": {uami.clone(): {"principalId": "1b2c3d4e-5f60-4718-9a0b-c1d2e3f4a5b6", "clientId": "0f1e2d3c-4b5a-4697-8877-665544332211"}}}),
            json!({}),
        ),
    );
    arm.put(
        &format!("{SITE}/config/web"),
        site_config(SITE, "DOCKER|x", true, Some("aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee")),
    );
    let r = run(dir.path(), &arm, &[webapp_line()], &[]);
    assert_eq!(r.code, 1);
    let f = r.finding("DEP005");
    assert!(f["message"]
        .as_str()
        .unwrap()
        .contains("acrUserManagedIdentityID names the client id aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"));

    // The matching client id works, through the user-assigned identity's principal.
    arm.put(
        &format!("{SITE}/config/web"),
        site_config(SITE, "DOCKER|x", true, Some("0f1e2d3c-4b5a-4697-8877-665544332211")),
    );
    arm.add_role_assignment(role_assignment(
        REGISTRY,
        "1b2c3d4e-5f60-4718-9a0b-c1d2e3f4a5b6",
        &role_definition_id(SUB, ACR_PUSH),
        None,
    ));
    let r = run(dir.path(), &arm, &[webapp_line()], &[]);
    assert_eq!(r.entry()["status"], "pass", "{}", r.stdout);
    assert!(r.entry()["proven"]
        .to_string()
        .contains("user-assigned identity shop-pull of the app may pull from contosoprod: AcrPush"));

    // No managed identity credentials and no registry settings: anonymous, refused.
    arm.put(&format!("{SITE}/config/web"), site_config(SITE, "DOCKER|x", false, None));
    let r = run(dir.path(), &arm, &[webapp_line()], &[]);
    let f = r.finding("DEP005");
    assert!(f["remedy"].as_str().unwrap().contains(
        "az webapp config set -g rg-web -n shop-web --generic-configurations '{\"acrUseManagedIdentityCreds\": true}'"
    ));
}

#[test]
fn dep006_compares_admin_credentials_without_revealing_them() {
    let dir = tempfile::tempdir().unwrap();
    let arm = FakeArm::start();
    webapp_world(&arm);
    arm.put(&format!("{SITE}/config/web"), site_config(SITE, "DOCKER|x", false, None));
    arm.put_post(
        &format!("{SITE}/config/appsettings/list"),
        200,
        app_settings(
            SITE,
            &[
                ("DOCKER_REGISTRY_SERVER_URL", "https://contosoprod.azurecr.io"),
                ("DOCKER_REGISTRY_SERVER_USERNAME", "contosoprod"),
                ("DOCKER_REGISTRY_SERVER_PASSWORD", OLD_PASSWORD),
            ],
        ),
    );
    // Admin user disabled.
    let r = run(dir.path(), &arm, &[webapp_line()], &[]);
    assert_eq!(r.code, 1);
    assert_eq!(r.finding("DEP006")["data"]["reason"], "adminDisabled");

    // Enabled, but the password was regenerated.
    arm.remove(&registries_list(SUB));
    put_registries(&arm, registry(REGISTRY, "contosoprod", json!({"adminUserEnabled": true})));
    arm.put_post(
        &format!("{REGISTRY}/listCredentials"),
        200,
        json!({"username": "contosoprod", "passwords": [{"name": "password", "value": ADMIN_PASSWORD}, {"name": "password2", "value": "second-admin-canary-Rt5"}]}),
    );
    let r = run(dir.path(), &arm, &[webapp_line()], &[]);
    let f = r.finding("DEP006");
    assert_eq!(f["data"]["reason"], "passwordStale");
    r.assert_no_secret(dir.path());
    assert!(!r.stdout.contains("second-admin-canary-Rt5"));

    // Current password: proven.
    arm.put_post(
        &format!("{SITE}/config/appsettings/list"),
        200,
        app_settings(
            SITE,
            &[("DOCKER_REGISTRY_SERVER_USERNAME", "contosoprod"), ("DOCKER_REGISTRY_SERVER_PASSWORD", ADMIN_PASSWORD)],
        ),
    );
    let r = run(dir.path(), &arm, &[webapp_line()], &[]);
    assert_eq!(r.entry()["status"], "pass", "{}", r.stdout);
    assert!(r.entry()["proven"].to_string().contains("admin credentials match"));
    r.assert_no_secret(dir.path());
}

#[test]
fn dep007_when_a_scale_set_lost_the_kubelet_identity() {
    let dir = tempfile::tempdir().unwrap();
    let arm = FakeArm::start();
    aks_world(&arm);
    let node_rg_id = format!("/subscriptions/{SUB}/resourceGroups/{NODE_RG}");
    arm.remove(&scale_sets_list());
    arm.add_to_list(&scale_sets_list(), scale_set(&node_rg_id, "aks-system-12345678-vmss", "system", &[&kubelet_id()]));
    arm.add_to_list(&scale_sets_list(), scale_set(&node_rg_id, "aks-armpool-23456789-vmss", "armpool", &[]));
    let r = run(dir.path(), &arm, &[aks_line()], &[]);
    assert_eq!(r.code, 1);
    let f = r.finding("DEP007");
    assert_eq!(f["data"]["scaleSets"], json!(["aks-armpool-23456789-vmss"]));
    assert!(f["remedy"].as_str().unwrap().contains(&format!(
        "az vmss identity assign -g {NODE_RG} -n aks-armpool-23456789-vmss --identities {}",
        kubelet_id()
    )));
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

#[test]
fn dep008_when_public_access_is_off_and_there_is_no_private_path() {
    let dir = tempfile::tempdir().unwrap();
    let arm = FakeArm::start();
    aks_world(&arm);
    private_registry(&arm, "Disabled", "Deny", json!([]));
    arm.add_to_list(
        &format!("{REGISTRY}/privateEndpointConnections"),
        endpoint_connection(REGISTRY, "pending-from-hub", PE, "Pending"),
    );
    let r = run(dir.path(), &arm, &[aks_line()], &[]);
    assert_eq!(r.code, 1);
    let f = r.finding("DEP008");
    assert!(f["message"].as_str().unwrap().contains("pending-from-hub are not approved (Pending)"));
    assert!(f["remedy"].as_str().unwrap().contains(&format!(
        "az network private-endpoint-connection approve --id {REGISTRY}/privateEndpointConnections/pending-from-hub"
    )));

    // A web app integrated with a network that does not carry its image pulls.
    let arm = FakeArm::start();
    webapp_world(&arm);
    private_registry(&arm, "Disabled", "Deny", json!([]));
    arm.add_to_list(
        &format!("{REGISTRY}/privateEndpointConnections"),
        endpoint_connection(REGISTRY, "pe-hub", PE, "Approved"),
    );
    arm.put(
        SITE,
        site(
            SITE,
            "shop-web",
            "app,linux,container",
            json!({"type": "SystemAssigned", "principalId": WEB_PRINCIPAL}),
            json!({"virtualNetworkSubnetId": format!("{VNET}/subnets/apps")}),
        ),
    );
    let r = run(dir.path(), &arm, &[webapp_line()], &[]);
    let f = r.finding("DEP008");
    assert!(f["remedy"]
        .as_str()
        .unwrap()
        .contains(&format!("az resource update --ids {SITE} --set properties.vnetImagePullEnabled=true")));
}

#[test]
fn dep009_lists_outbound_addresses_the_firewall_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let arm = FakeArm::start();
    webapp_world(&arm);
    private_registry(
        &arm,
        "Enabled",
        "Deny",
        json!([{"action": "Allow", "value": "20.50.2.10"}, {"action": "Allow", "value": "20.50.2.11/32"}]),
    );
    let r = run(dir.path(), &arm, &[webapp_line()], &[]);
    assert_eq!(r.code, 1);
    let f = r.finding("DEP009");
    assert_eq!(f["data"]["missing"], json!(["20.50.2.12", "20.50.2.13"]));
    let remedy = f["remedy"].as_str().unwrap();
    assert!(remedy.contains("az acr network-rule add --name contosoprod --ip-address 20.50.2.12\naz acr network-rule add --name contosoprod --ip-address 20.50.2.13"));

    // An AKS cluster whose load balancer address is allowed passes the same firewall.
    let arm = FakeArm::start();
    aks_world(&arm);
    private_registry(&arm, "Enabled", "Deny", json!([{"action": "Allow", "value": "20.61.0.0/16"}]));
    let r = run(dir.path(), &arm, &[aks_line()], &[]);
    assert_eq!(r.entry()["status"], "pass", "{}", r.stdout);
    assert!(r.entry()["proven"].to_string().contains("firewall allows the outbound addresses 20.61.7.8"));
}

#[test]
fn dep010_when_the_private_zone_is_not_linked_to_the_cluster_network() {
    let dir = tempfile::tempdir().unwrap();
    let arm = FakeArm::start();
    aks_world(&arm);
    private_registry(&arm, "Disabled", "Deny", json!([]));
    arm.add_to_list(
        &format!("{REGISTRY}/privateEndpointConnections"),
        endpoint_connection(REGISTRY, "pe-hub", PE, "Approved"),
    );
    arm.add_to_list(&format!("{PE}/privateDnsZoneGroups"), zone_group(PE, ZONE));
    arm.put(ZONE, private_zone(ZONE));
    arm.add_to_list(&format!("{ZONE}/virtualNetworkLinks"), vnet_link(ZONE, "hub-link", HUB_VNET, "Completed"));
    arm.put(VNET, virtual_network(VNET, &[]));
    let r = run(dir.path(), &arm, &[aks_line()], &[]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let f = r.finding("DEP010");
    assert_eq!(f["data"]["unlinkedVnets"], json!([VNET]));
    assert!(f["remedy"].as_str().unwrap().contains(&format!(
        "az network private-dns link vnet create -g rg-dns -z privatelink.azurecr.io -n vnet-spoke-acr-link -v {VNET} -e false"
    )));

    // Custom DNS servers may forward the zone: not proven, not failed.
    arm.put(VNET, virtual_network(VNET, &["10.0.0.4"]));
    let r = run(dir.path(), &arm, &[aks_line()], &[]);
    assert_eq!(r.code, 0);
    assert_eq!(step_notes(r.entry()), ["network:warning"]);

    // Without a DNS zone group on the endpoint, the zone is found in the subscription.
    let listed = FakeArm::start();
    aks_world(&listed);
    private_registry(&listed, "Disabled", "Deny", json!([]));
    listed.add_to_list(
        &format!("{REGISTRY}/privateEndpointConnections"),
        endpoint_connection(REGISTRY, "pe-hub", PE, "Approved"),
    );
    listed.empty_list(&format!("{PE}/privateDnsZoneGroups"));
    listed
        .add_to_list(&format!("/subscriptions/{SUB}/providers/Microsoft.Network/privateDnsZones"), private_zone(ZONE));
    listed.add_to_list(&format!("{ZONE}/virtualNetworkLinks"), vnet_link(ZONE, "spoke-link", VNET, "Completed"));
    let r = run(dir.path(), &listed, &[aks_line()], &[]);
    assert_eq!(r.entry()["status"], "pass", "{}", r.stdout);

    // Linked: the private path is proven.
    arm.add_to_list(&format!("{ZONE}/virtualNetworkLinks"), vnet_link(ZONE, "spoke-link", VNET, "Completed"));
    let r = run(dir.path(), &arm, &[aks_line()], &[]);
    assert_eq!(r.entry()["status"], "pass", "{}", r.stdout);
    assert!(r.entry()["proven"]
        .to_string()
        .contains("over private endpoint pe-hub; privatelink.azurecr.io is linked to vnet-spoke"));
}

#[test]
fn dep011_reports_what_could_not_be_read_instead_of_passing() {
    let dir = tempfile::tempdir().unwrap();
    let arm = FakeArm::start();
    aks_world(&arm);
    arm.fail(
        &format!("{REGISTRY}/providers/Microsoft.Authorization/roleAssignments"),
        403,
        "AuthorizationFailed",
        "The client does not have authorization to perform action 'Microsoft.Authorization/roleAssignments/read'",
    );
    arm.fail(&scale_sets_list(), 403, "AuthorizationFailed", "no access to the node resource group");
    let r = run(dir.path(), &arm, &[aks_line()], &[]);
    assert_eq!(r.code, 0, "warnings do not fail the default gate");
    assert_eq!(r.entry()["status"], "warn");
    assert_eq!(step_notes(r.entry()), ["pullPermission:warning", "scaleSetIdentity:note"]);
    let r = run(dir.path(), &arm, &[aks_line()], &[("INPUT_FAILON", "warning")]);
    assert_eq!(r.code, 1);

    // Reads the web app's credentials need are refused: not proven, with the permission named.
    let web = FakeArm::start();
    webapp_world(&web);
    web.put(&format!("{SITE}/config/web"), site_config(SITE, "DOCKER|x", false, None));
    web.put_post(
        &format!("{SITE}/config/appsettings/list"),
        403,
        json!({"error": {"code": "AuthorizationFailed", "message": "does not have authorization to perform action 'Microsoft.Web/sites/config/list/action'"}}),
    );
    let r = run(dir.path(), &web, &[webapp_line()], &[]);
    assert_eq!(step_notes(r.entry()), ["registryCredentials:warning"]);
    assert!(r.finding("DEP011")["remedy"].as_str().unwrap().contains("Microsoft.Web/sites/config/list/action"));

    // A network path that configuration cannot decide: user-defined routing behind a firewall,
    // and an AKS-managed network in front of a private endpoint.
    let net = FakeArm::start();
    aks_world(&net);
    put_cluster(
        &net,
        true,
        "msi",
        json!({"networkPlugin": "azure", "outboundType": "userDefinedRouting"}),
        &pools(Some(SUBNET)),
    );
    private_registry(&net, "Enabled", "Deny", json!([{"action": "Allow", "value": "20.61.7.8"}]));
    let r = run(dir.path(), &net, &[aks_line()], &[]);
    assert_eq!(step_notes(r.entry()), ["network:warning"]);
    assert!(r.finding("DEP011")["message"].as_str().unwrap().contains("outbound type is `userDefinedRouting`"));
    put_cluster(&net, true, "msi", lb_network(), &pools(None));
    private_registry(&net, "Disabled", "Deny", json!([]));
    net.add_to_list(
        &format!("{REGISTRY}/privateEndpointConnections"),
        endpoint_connection(REGISTRY, "pe-hub", PE, "Approved"),
    );
    let r = run(dir.path(), &net, &[aks_line()], &[]);
    assert_eq!(step_notes(r.entry()), ["network:warning"]);
    assert!(r.finding("DEP011")["message"]
        .as_str()
        .unwrap()
        .contains(&format!("AKS-managed virtual network in {NODE_RG}")));

    // A cloud without the newest registry api-version: read with the older one, mode unknown.
    let old = FakeArm::start();
    aks_world(&old);
    old.refuse_api_version("2025-11-01");
    let r = run(dir.path(), &old, &[aks_line()], &[]);
    assert_eq!(r.entry()["status"], "pass", "{}", r.stdout);
    assert_eq!(step_notes(r.entry()), ["roleAssignmentMode:note"]);

    // An image on another registry: nothing to look up, said so.
    let arm = FakeArm::start();
    aks_world(&arm);
    let r = run(dir.path(), &arm, &[format!("aks:{CLUSTER} image=mcr.microsoft.com/dotnet/aspnet:8.0")], &[]);
    assert_eq!(r.entry()["status"], "pass", "{}", r.stdout);
    assert_eq!(step_notes(r.entry()), ["registry:note"]);
    assert!(
        !arm.requests().iter().any(|s| s.path.contains("/microsoft.containerregistry/")),
        "no registry lookup for an image on mcr"
    );
}

#[test]
fn an_arm_error_quoting_the_secret_leaves_no_part_and_no_encoding() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let arm = FakeArm::start();
    aks_world(&arm);
    // A gateway in front of ARM that quotes the credential it saw, in several encodings, and
    // whole just before the 300-character cut of an error message.
    let encoded = format!(
        "secret as base64 {} and json {}",
        base64::engine::general_purpose::STANDARD.encode(SPN_SECRET),
        serde_json::to_string(SPN_SECRET).unwrap().trim_matches('"')
    );
    let message = format!("{:.<292}{SPN_SECRET} is not accepted here", format!("Refused: {encoded} "));
    arm.fail(CLUSTER, 400, "InvalidAuthenticationToken", &message);
    let r = run(dir.path(), &arm, &[aks_line()], &[]);
    let text = r.finding("DEP001")["message"].as_str().unwrap().to_string();
    assert!(text.contains("InvalidAuthenticationToken: Refused: secret as base64 ***"), "{text}");
    let report = std::fs::read_to_string(dir.path().join("_temp/azp-preflight-report.json")).unwrap_or_default();
    for (what, output) in [("stdout", &r.stdout), ("stderr", &r.stderr), ("report", &report)] {
        for n in 4..=SPN_SECRET.len() {
            assert!(!output.contains(&SPN_SECRET[..n]), "`{}` leaked into {what}: {output}", &SPN_SECRET[..n]);
        }
        assert!(!output.contains(&base64::engine::general_purpose::STANDARD_NO_PAD.encode(SPN_SECRET)), "{what}");
    }
}

/// A listener on another loopback port that records each request and answers with a page
/// of role assignments granting the kubelet identity AcrPull.
fn foreign_page_server() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let grant = json!({"value": [role_assignment(REGISTRY, KUBELET_OID, &role_definition_id(SUB, ACR_PULL), None)]})
        .to_string();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = [0u8; 8192];
            let n = stream.read(&mut buf).unwrap_or(0);
            log.lock().unwrap().push(String::from_utf8_lossy(&buf[..n]).to_string());
            let _ = stream.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{grant}",
                    grant.len()
                )
                .as_bytes(),
            );
        }
    });
    (base, seen)
}

#[test]
fn a_next_link_to_another_origin_is_not_followed_and_the_list_is_not_proven() {
    let dir = tempfile::tempdir().unwrap();
    let arm = FakeArm::start();
    aks_world(&arm);
    arm.clear_role_assignments();
    let (elsewhere, seen) = foreign_page_server();
    // Page 1 of the role assignments at the registry is empty and names its next page on
    // another port, where a page granting AcrPull waits for the bearer token.
    arm.put_page(
        &format!("{REGISTRY}/providers/Microsoft.Authorization/roleAssignments"),
        json!({"value": [], "nextLink": format!("{elsewhere}{REGISTRY}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$skiptoken=2")}),
    );
    let r = run(dir.path(), &arm, &[aks_line()], &[]);
    let requested = seen.lock().unwrap().clone();
    assert!(requested.is_empty(), "the next page on another origin was requested:\n{}", requested.join("\n"));
    assert_ne!(r.entry()["status"], "pass", "{}", r.stdout);
    assert_eq!(step_notes(r.entry()), ["pullPermission:warning"], "{}", r.stdout);
    let message = r.finding("DEP011")["message"].as_str().unwrap().to_string();
    assert!(message.contains("cannot be proven complete") && message.contains(&elsewhere), "{message}");
    r.assert_no_secret(dir.path());
}

#[test]
fn a_service_principal_cluster_is_looked_up_in_graph() {
    let dir = tempfile::tempdir().unwrap();
    let arm = FakeArm::start();
    aks_world(&arm);
    put_cluster(&arm, false, CLUSTER_SP, lb_network(), &pools(Some(SUBNET)));
    arm.put(
        &format!("/v1.0/servicePrincipals(appId='{CLUSTER_SP}')"),
        json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#servicePrincipals(id,appId,displayName)/$entity", "id": CLUSTER_SP_OID, "appId": CLUSTER_SP, "displayName": "aks-prod-sp"}),
    );
    arm.clear_role_assignments();
    arm.add_role_assignment(role_assignment(REGISTRY, CLUSTER_SP_OID, &role_definition_id(SUB, ACR_PULL), None));
    let r = run(dir.path(), &arm, &[aks_line()], &[]);
    assert_eq!(r.entry()["status"], "pass", "{}", r.stdout);
    assert!(r.entry()["proven"].to_string().contains(&format!("service principal {CLUSTER_SP} may pull")));
    assert_eq!(step_notes(r.entry()), ["servicePrincipalExpiry:note"]);
    let graph = arm
        .requests()
        .into_iter()
        .find(|s| s.path.to_ascii_lowercase().starts_with("/v1.0/serviceprincipals"))
        .unwrap();
    assert_eq!(graph.query["$select"], "id,appId,displayName");
    assert_eq!(graph.service, "graph", "Graph is read at Graph, not at ARM");

    // Graph refuses to read other service principals: the permission is not proven.
    arm.fail(
        &format!("/v1.0/servicePrincipals(appId='{CLUSTER_SP}')"),
        403,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    );
    let r = run(dir.path(), &arm, &[aks_line()], &[]);
    assert_eq!(step_notes(r.entry()), ["pullPermission:warning", "servicePrincipalExpiry:note"]);
    assert!(r.finding("DEP011")["message"].as_str().unwrap().contains("HTTP 403 Authorization_RequestDenied"));

    // Deleted from the tenant: nothing to pull with.
    arm.remove(&format!("/v1.0/servicePrincipals(appId='{CLUSTER_SP}')"));
    let r = run(dir.path(), &arm, &[aks_line()], &[]);
    assert!(r.finding("DEP005")["message"].as_str().unwrap().contains("no longer exists in the tenant"));
}

#[test]
fn typo_guard_stops_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let arm = FakeArm::start();
    aks_world(&arm);
    let r = run(dir.path(), &arm, &[format!("aks:{CLUSTER} image=contosoprod.azureacr.io/shop/web:1.4")], &[]);
    assert_eq!(r.code, 1);
    let f = r.finding("REG002");
    assert!(f["remedy"].as_str().unwrap().contains("image=contosoprod.azurecr.io/shop/web:1.4"));
    assert!(arm.requests().is_empty(), "no token request, no ARM read: {:?}", arm.requests());
}

#[test]
fn bad_target_lines_are_bad_input_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let arm = FakeArm::start();
    let cases = [
        (
            vec![aks_line(), format!("aks:{SITE} image={IMAGE}")],
            "deployTargets line 2",
            "is not a Microsoft.ContainerService/managedClusters",
        ),
        (
            vec!["# comment".to_string(), format!("aks:{CLUSTER}")],
            "deployTargets line 2",
            "`image=<registry>/<repository>",
        ),
        (
            vec![format!("webapp:/subscriptions/{SUB}/resourceGroups/rg image={IMAGE}")],
            "deployTargets line 1",
            "is not a resource id",
        ),
    ];
    for (lines, input, reason) in cases {
        let r = run(dir.path(), &arm, &lines, &[]);
        assert_eq!(r.code, 2, "{lines:?}");
        assert!(r.stdout.contains(&format!("{input}: `")), "{}", r.stdout);
        assert!(r.stdout.contains(reason), "{}", r.stdout);
        assert!(r.stdout.contains("##vso[task.complete result=Failed]"), "{}", r.stdout);
    }
    // The flag, outside a pipeline.
    let out = preflight(dir.path())
        .args(["--deploy-target", &format!("webapp:{SITE}"), "--checks", "deploy"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr_of(&out);
    assert!(
        err.contains(&format!(
            "--deploy-target: `webapp:{SITE}` is not valid; expected aks:<managed cluster resource id>"
        )),
        "{err}"
    );
    assert!(arm.requests().is_empty());
}

#[test]
fn deploy_targets_left_out_by_checks_or_offline_are_skipped_not_passed() {
    let dir = tempfile::tempdir().unwrap();
    let arm = FakeArm::start();
    aks_world(&arm);
    let r = run(dir.path(), &arm, &[aks_line()], &[("INPUT_CHECKS", "agent")]);
    assert_eq!(r.code, 0);
    let e = r.entry();
    assert_eq!(
        (e["status"].as_str(), e["reason"].as_str()),
        (Some("skip"), Some("`checks` is `agent`, which leaves out deploy"))
    );
    let r = run(
        dir.path(),
        &arm,
        &[aks_line()],
        &[("INPUT_CHECKS", "registry,identity,tasks,agent"), ("INPUT_OFFLINE", "true")],
    );
    assert_eq!(r.entry()["status"], "skip");
    assert!(arm.requests().is_empty());
}

#[test]
fn a_local_run_uses_azure_variables_and_the_arm_override() {
    let dir = tempfile::tempdir().unwrap();
    let arm = FakeArm::start();
    webapp_world(&arm);
    let acr = image_registry();
    let out = preflight(dir.path())
        .env("AZP_PREFLIGHT_REGISTRY_ENDPOINTS", format!("contosoprod.azurecr.io={}", acr.server()))
        .args(["--checks", "deploy"])
        .env("AZURE_CLIENT_ID", SPN_CLIENT)
        .env("AZURE_TENANT_ID", TENANT)
        .env("AZURE_CLIENT_SECRET", SPN_SECRET)
        .env("AZURE_AUTHORITY_HOST", arm.entra_url())
        .env("AZP_PREFLIGHT_ARM_URL", arm.arm_url())
        .args(["--deploy-target", &webapp_line(), "--format", "json"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_str(&stdout_of(&out)).unwrap();
    let deploy: Vec<&Value> = report["checks"].as_array().unwrap().iter().filter(|c| c["check"] == "deploy").collect();
    assert_eq!(deploy[0]["status"], "pass", "{report:#}");
    assert!(!stdout_of(&out).contains(SPN_SECRET) && !stdout_of(&out).contains(TOKEN));
}

#[test]
fn several_targets_read_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let arm = FakeArm::start();
    aks_world(&arm);
    arm.set_latency(Duration::from_millis(200));
    let lines: Vec<String> = (0..5).map(|_| aks_line()).collect();
    let started = Instant::now();
    let r = run(dir.path(), &arm, &lines, &[]);
    let wall = started.elapsed();
    assert_eq!(r.code, 0, "{}", r.stdout);
    let entries = r.entries();
    assert_eq!(entries.len(), 5);
    let sum: u64 = entries.iter().map(|e| e["durationMs"].as_u64().unwrap()).sum();
    let longest = entries.iter().map(|e| e["durationMs"].as_u64().unwrap()).max().unwrap();
    // Each target needs several 200 ms round trips; run one after another they would take
    // the sum, together about the longest.
    assert!(longest >= 800, "each target takes several round trips: {longest} ms");
    assert!(
        r.report["durationMs"].as_u64().unwrap() < sum / 2,
        "run {} ms, targets {sum} ms in total",
        r.report["durationMs"]
    );
    assert!(wall < Duration::from_millis(sum / 2 + 2000), "wall {wall:?}, sum {sum} ms");
    let requests = arm.requests().len();
    assert!(requests >= 5 * 8, "{requests} requests");
}

#[test]
fn the_image_is_resolved_for_every_platform_the_cluster_runs() {
    let dir = tempfile::tempdir().unwrap();
    let arm = FakeArm::start();
    aks_world(&arm);
    // Add a Windows pool: the image index has only linux/amd64 and linux/arm64.
    let mut with_windows = pools(Some(SUBNET));
    with_windows.push(agent_pool(CLUSTER, "win", "Windows", "Windows2022", "Standard_D4s_v5", Some(SUBNET)));
    put_cluster(&arm, true, "msi", lb_network(), &with_windows);
    let r = run(dir.path(), &arm, &[aks_line()], &[]);
    let e = r.entry();
    let reg015 = finding(e, "REG015");
    assert_eq!(reg015["severity"], "warning", "other pools can run the image: {reg015:#}");
    assert!(reg015["message"].as_str().unwrap().starts_with(&format!("image {IMAGE}: ")), "{reg015:#}");
    assert!(reg015["remedy"].as_str().unwrap().contains("node pool(s) win"), "{reg015:#}");
    assert_eq!(e["status"], "warn");
}

#[test]
fn a_missing_tag_fails_the_target_with_the_registry_finding() {
    let dir = tempfile::tempdir().unwrap();
    let arm = FakeArm::start();
    aks_world(&arm);
    let line = format!("aks:{CLUSTER} image=contosoprod.azurecr.io/shop/web:9.9");
    let r = run(dir.path(), &arm, &[line], &[]);
    let e = r.entry();
    let missing = finding(e, "REG014");
    assert_eq!(missing["severity"], "error");
    assert!(missing["message"].as_str().unwrap().contains("9.9"), "{missing:#}");
    assert_eq!(e["status"], "fail");
    assert_eq!(r.code, 1);
}

#[test]
fn a_service_principal_clusters_secret_expiry_is_read_from_graph() {
    let dir = tempfile::tempdir().unwrap();
    let arm = FakeArm::start();
    aks_world(&arm);
    put_cluster(&arm, false, CLUSTER_SP, lb_network(), &pools(Some(SUBNET)));
    arm.put(
        &format!("/v1.0/servicePrincipals(appId='{CLUSTER_SP}')"),
        json!({"id": CLUSTER_SP_OID, "appId": CLUSTER_SP, "displayName": "aks-prod-sp"}),
    );
    arm.clear_role_assignments();
    arm.add_role_assignment(role_assignment(REGISTRY, CLUSTER_SP_OID, &role_definition_id(SUB, ACR_PULL), None));
    let day = 86_400;
    let at = |days: i64| {
        jiff::Timestamp::now().checked_add(jiff::SignedDuration::from_secs(days * day)).unwrap().to_string()
    };
    let app = |newest_days: i64| {
        json!({"id": "aaaa0000-0000-4000-8000-000000000001", "appId": CLUSTER_SP, "displayName": "aks-prod-sp",
               "passwordCredentials": [
                   {"keyId": "11111111-0000-4000-8000-000000000001", "hint": "old", "endDateTime": at(-30)},
                   {"keyId": "22222222-0000-4000-8000-000000000002", "hint": "Q~x", "endDateTime": at(newest_days)}],
               "keyCredentials": []})
    };
    arm.put(&format!("/v1.0/applications(appId='{CLUSTER_SP}')"), app(3));
    let r = run(dir.path(), &arm, &[aks_line()], &[]);
    let f = r.finding("IDN005");
    assert_eq!(f["severity"], "error");
    assert_eq!(f["data"]["keyId"], "22222222-0000-4000-8000-000000000002", "the newest secret is judged");
    assert!(f["message"].as_str().unwrap().contains("(Q~x…)"), "{f:#}");
    assert!(f["remedy"].as_str().unwrap().contains("az aks update-credentials"));
    assert_eq!(r.code, 1);

    arm.put(&format!("/v1.0/applications(appId='{CLUSTER_SP}')"), app(20));
    let r = run(dir.path(), &arm, &[aks_line()], &[]);
    assert_eq!(r.finding("IDN006")["severity"], "warning");

    arm.put(&format!("/v1.0/applications(appId='{CLUSTER_SP}')"), app(200));
    let r = run(dir.path(), &arm, &[aks_line()], &[]);
    assert_eq!(r.entry()["status"], "pass", "{}", r.stdout);
    assert_eq!(step_notes(r.entry()), [] as [&str; 0]);
    assert!(r.entry()["proven"].to_string().contains("newest secret valid until"));
}
