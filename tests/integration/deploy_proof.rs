//! The deploy gate never passes what it has not proven: repository conditions evaluated as
//! Azure does (negation, the actions a condition targets), group-inherited roles, node pools
//! with their own public IPs, public IP prefixes, scale sets that match no pool, and the
//! Windows build of the hosts. Fixtures follow the published ARM shapes (AKS ids with
//! `resourcegroups` in lower case, as the service writes them).

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::deploy_world::*;
use crate::common::{pipeline_env, preflight, stderr_of, stdout_of};
use crate::fake_acr::{Attrs, Config as AcrConfig, FakeAcr};
use crate::fake_arm::*;

const WRITER_ROLE: &str = "5c0ffee1-7a2b-4c3d-8e4f-a0b1c2d3e4f5";
const GROUP: &str = "0b9a8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d";
const CONTENT_READ: &str = "Microsoft.ContainerRegistry/registries/repositories/content/read";
const METADATA_READ: &str = "Microsoft.ContainerRegistry/registries/repositories/metadata/read";
const CONTENT_WRITE: &str = "Microsoft.ContainerRegistry/registries/repositories/content/write";
const REPO_ATTR: &str = "@Request[Microsoft.ContainerRegistry/registries/repositories:name]";

fn windows_registry(os_version: &str) -> FakeAcr {
    let config = AcrConfig::default()
        .login_server("contosoprod.azurecr.io")
        .accept_access_token(TOKEN)
        .entra("", &["pull"])
        .with_app("shop/web", Attrs::open(), Attrs::open())
        .with_windows_tag("shop/web", "1.4", os_version);
    FakeAcr::start(config)
}

/// Like `deploy_world::run`, with the image registry given.
fn run_with(dir: &Path, arm: &FakeArm, lines: &[String], acr: &FakeAcr) -> Run {
    let endpoints = format!("contosoprod.azurecr.io={}", acr.server());
    let out = preflight(dir)
        .envs(pipeline_env(dir))
        .envs(connection_env(arm))
        .env("AZP_PREFLIGHT_REGISTRY_ENDPOINTS", endpoints)
        .env("INPUT_DEPLOYTARGETS", lines.join("\n"))
        .args(["--format", "json"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let stdout = stdout_of(&out);
    let report = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    Run { code: out.status.code().unwrap_or(-1), report, stdout, stderr: stderr_of(&out) }
}

/// With the Linux image registry of the other deploy tests (linux/amd64 and linux/arm64).
fn run_default(dir: &Path, arm: &FakeArm, line: String) -> Run {
    run_with(dir, arm, &[line], &image_registry())
}

fn status(r: &Run) -> String {
    format!("{} {:?}", r.entry()["status"].as_str().unwrap_or("?"), r.codes())
}

// ---- 7. ABAC repository conditions ---------------------------------------------------

fn abac_world(arm: &FakeArm) {
    aks_world(arm);
    arm.clear_role_assignments();
    arm.put(REGISTRY, registry(REGISTRY, "contosoprod", json!({"roleAssignmentMode": "AbacRepositoryPermissions"})));
    arm.remove(&registries_list(SUB));
    put_registries(arm, registry(REGISTRY, "contosoprod", json!({"roleAssignmentMode": "AbacRepositoryPermissions"})));
    arm.put(
        &role_definition_id(SUB, WRITER_ROLE),
        role_definition(
            SUB,
            WRITER_ROLE,
            "Repository writer (custom)",
            "CustomRole",
            &[],
            &[],
            &[CONTENT_READ, METADATA_READ, CONTENT_WRITE],
        ),
    );
}

fn reader_with(arm: &FakeArm, condition: &str) {
    arm.add_role_assignment(role_assignment(
        REGISTRY,
        KUBELET_OID,
        &role_definition_id(SUB, REPOSITORY_READER),
        Some(condition),
    ));
}

#[test]
fn abac_a_negated_repository_condition_refuses_that_repository() {
    let dir = tempfile::tempdir().unwrap();
    let arm = FakeArm::start();
    abac_world(&arm);
    // Every repository but shop/web: the image's own repository is the one left out.
    reader_with(
        &arm,
        &format!(
            "((!(ActionMatches{{'{CONTENT_READ}'}}) AND !(ActionMatches{{'{METADATA_READ}'}})) OR (!({REPO_ATTR} StringEqualsIgnoreCase 'shop/web')))"
        ),
    );
    let r = run_default(dir.path(), &arm, aks_line());
    assert_eq!(r.code, 1, "{}", status(&r));
    let f = r.finding("DEP004");
    assert!(f["message"].as_str().unwrap().contains("does not cover the repository `shop/web`"), "{f:#}");
    assert_eq!(r.entry()["status"], "fail");

    // The same condition lets another repository through.
    let r = run_default(dir.path(), &arm, format!("aks:{CLUSTER} image=contosoprod.azurecr.io/shop/web-legacy:1.4"));
    assert!(!r.codes().contains(&"DEP004".to_string()), "{}", status(&r));
    assert!(r.entry()["proven"].to_string().contains("its condition covers `shop/web-legacy`"), "{}", r.stdout);
}

#[test]
fn abac_a_condition_on_write_actions_leaves_pull_granted() {
    let dir = tempfile::tempdir().unwrap();
    let arm = FakeArm::start();
    abac_world(&arm);
    arm.add_role_assignment(role_assignment(
        REGISTRY,
        KUBELET_OID,
        &role_definition_id(SUB, WRITER_ROLE),
        Some(&format!("(!(ActionMatches{{'{CONTENT_WRITE}'}})) OR ({REPO_ATTR} StringStartsWith 'team/')")),
    ));
    let r = run_default(dir.path(), &arm, aks_line());
    assert_eq!((r.code, r.entry()["status"].as_str()), (0, Some("pass")), "{}", r.stdout);
    assert!(r.entry()["proven"].to_string().contains("Repository writer (custom) at"), "{}", r.stdout);
}

#[test]
fn abac_a_condition_that_cannot_be_evaluated_is_not_proven() {
    let dir = tempfile::tempdir().unwrap();
    let arm = FakeArm::start();
    abac_world(&arm);
    reader_with(
        &arm,
        &format!(
            "(!(ActionMatches{{'{CONTENT_READ}'}})) OR (@Resource[Microsoft.ContainerRegistry/registries/repositories:tags] ForAnyOfAnyValues:StringEquals {{'release'}})"
        ),
    );
    let r = run_default(dir.path(), &arm, aks_line());
    assert_ne!(r.entry()["status"], "pass", "{}", status(&r));
    assert_eq!(step_notes(r.entry()), ["pullPermission:warning"]);
    let f = r.finding("DEP011");
    assert!(f["message"].as_str().unwrap().contains("cannot be evaluated"), "{f:#}");
    assert!(!r.codes().contains(&"DEP004".to_string()));
}

// ---- 11. Roles inherited through an Entra ID group -------------------------------------

fn group_assignment(scope: &str, group: &str, role: &str) -> Value {
    let mut a = role_assignment(scope, group, role, None);
    a["properties"]["principalType"] = json!("Group");
    a
}

#[test]
fn a_role_held_through_a_group_grants_the_pull() {
    let dir = tempfile::tempdir().unwrap();
    let arm = FakeArm::start();
    aks_world(&arm);
    arm.clear_role_assignments();
    arm.add_role_assignment(group_assignment(
        &format!("/subscriptions/{SUB}/resourcegroups/rg-acr"),
        GROUP,
        &role_definition_id(SUB, ACR_PULL),
    ));
    arm.add_group_member(GROUP, KUBELET_OID);
    let r = run_default(dir.path(), &arm, aks_line());
    assert_eq!((r.code, r.entry()["status"].as_str()), (0, Some("pass")), "{}", status(&r));
    let proven = r.entry()["proven"].to_string();
    assert!(
        proven.contains(&format!("AcrPull at /subscriptions/{SUB}/resourcegroups/rg-acr (through group {GROUP})")),
        "{proven}"
    );
    let ra = arm.requests().into_iter().find(|s| s.path.ends_with("/roleassignments")).unwrap();
    assert_eq!(ra.query["$filter"], format!("assignedTo('{KUBELET_OID}')"));

    // When ARM refuses the group-aware filter, no own role is not "no role": not proven.
    arm.refuse_assigned_to();
    let r = run_default(dir.path(), &arm, aks_line());
    assert!(!r.codes().contains(&"DEP003".to_string()), "{}", status(&r));
    assert_eq!(step_notes(r.entry()), ["pullPermission:warning"]);
    assert!(r.finding("DEP011")["message"].as_str().unwrap().contains("through Entra ID groups cannot be read"));
    // An own role still proves the pull without the group read.
    arm.add_role_assignment(role_assignment(REGISTRY, KUBELET_OID, &role_definition_id(SUB, ACR_PULL), None));
    let r = run_default(dir.path(), &arm, aks_line());
    assert_eq!(r.entry()["status"], "pass", "{}", status(&r));
}

// ---- 12. Scale sets that match no node pool --------------------------------------------

#[test]
fn a_node_pool_without_its_scale_set_is_not_proven() {
    let dir = tempfile::tempdir().unwrap();
    let arm = FakeArm::start();
    aks_world(&arm);
    let node_rg_id = format!("/subscriptions/{SUB}/resourcegroups/{NODE_RG}");
    arm.remove(&scale_sets_list());
    arm.add_to_list(&scale_sets_list(), scale_set(&node_rg_id, "aks-system-12345678-vmss", "system", &[&kubelet_id()]));
    // The arm pool's set carries another pool's tag (a renamed pool): it matches nothing.
    arm.add_to_list(&scale_sets_list(), scale_set(&node_rg_id, "aks-armpool-23456789-vmss", "armpool-old", &[]));
    let r = run_default(dir.path(), &arm, aks_line());
    assert_ne!(r.entry()["status"], "pass", "{}", status(&r));
    assert_eq!(step_notes(r.entry()), ["scaleSetIdentity:warning"]);
    assert_eq!(r.finding("DEP011")["data"]["pools"], json!(["armpool"]));
    assert!(r.entry()["proven"].to_string().contains("aks-system-12345678-vmss"));
}

// ---- 9 and 10. Node public IPs and public IP prefixes ----------------------------------

const NODE_PREFIX: &str =
    "/subscriptions/6b1f0c2e-3d4a-4b5c-8d9e-0f1a2b3c4d5e/resourcegroups/rg-net/providers/Microsoft.Network/publicIPPrefixes/aks-node-ips";

fn ip_prefix(id: &str, cidr: &str) -> Value {
    json!({
        "id": id,
        "name": id.rsplit('/').next().unwrap_or(""),
        "type": "Microsoft.Network/publicIPPrefixes",
        "location": "westeurope",
        "sku": {"name": "Standard", "tier": "Regional"},
        "properties": {
            "prefixLength": cidr.rsplit('/').next().and_then(|b| b.parse::<u8>().ok()).unwrap_or(32),
            "ipPrefix": cidr,
            "publicIPAddressVersion": "IPv4",
            "ipTags": [],
            "provisioningState": "Succeeded"
        }
    })
}

fn firewalled(arm: &FakeArm, rules: &[&str]) {
    let ip_rules: Vec<Value> = rules.iter().map(|r| json!({"action": "Allow", "value": r})).collect();
    let r = registry(
        REGISTRY,
        "contosoprod",
        json!({"publicNetworkAccess": "Enabled", "networkRuleSet": {"defaultAction": "Deny", "ipRules": ip_rules}}),
    );
    arm.remove(&registries_list(SUB));
    put_registries(arm, r);
    arm.empty_list(&format!("{REGISTRY}/privateEndpointConnections"));
}

fn public_ip_pools(prefix: Option<&str>) -> Vec<Value> {
    let mut pools = pools(Some(SUBNET));
    pools[1]["properties"]["enableNodePublicIP"] = json!(true);
    pools[1]["properties"]["nodePublicIPPrefixID"] = json!(prefix);
    pools
}

#[test]
fn node_public_ips_are_the_egress_of_their_pool() {
    let dir = tempfile::tempdir().unwrap();
    let arm = FakeArm::start();
    aks_world(&arm);
    // The load balancer's address is allowed; the arm pool's nodes do not use it.
    firewalled(&arm, &["20.61.7.8"]);
    put_cluster(&arm, true, "msi", lb_network(), &public_ip_pools(None));
    let r = run_default(dir.path(), &arm, aks_line());
    assert_ne!(r.entry()["status"], "pass", "{}", status(&r));
    assert_eq!(step_notes(r.entry()), ["network:warning"]);
    assert!(r.finding("DEP011")["message"]
        .as_str()
        .unwrap()
        .contains("node pool armpool gives each node its own public IP"));

    // From a prefix: the whole prefix must be allowed, one address of it is not enough.
    put_cluster(&arm, true, "msi", lb_network(), &public_ip_pools(Some(NODE_PREFIX)));
    arm.put(NODE_PREFIX, ip_prefix(NODE_PREFIX, "20.70.12.0/30"));
    firewalled(&arm, &["20.61.7.8", "20.70.12.1"]);
    let r = run_default(dir.path(), &arm, aks_line());
    assert_eq!(r.code, 1, "{}", status(&r));
    let f = r.finding("DEP009");
    assert_eq!(f["data"]["missing"], json!(["20.70.12.0/30"]));
    assert!(f["remedy"].as_str().unwrap().contains("--ip-address 20.70.12.0/30"));

    firewalled(&arm, &["20.61.7.8", "20.70.12.0/31", "20.70.12.2/31"]);
    let r = run_default(dir.path(), &arm, aks_line());
    assert_eq!(r.entry()["status"], "pass", "{}", status(&r));
    let proven = r.entry()["proven"].to_string();
    assert!(proven.contains("firewall allows the outbound addresses 20.70.12.0/30, 20.61.7.8"), "{proven}");
}

#[test]
fn an_outbound_prefix_is_checked_as_a_whole_range() {
    let dir = tempfile::tempdir().unwrap();
    let arm = FakeArm::start();
    aks_world(&arm);
    let lb_prefix = format!(
        "/subscriptions/{SUB}/resourcegroups/{NODE_RG}/providers/Microsoft.Network/publicIPPrefixes/aks-egress"
    );
    arm.put(&lb_prefix, ip_prefix(&lb_prefix, "51.124.30.16/28"));
    let network = json!({
        "networkPlugin": "azure", "loadBalancerSku": "standard", "outboundType": "loadBalancer",
        "loadBalancerProfile": {"outboundIPPrefixes": {"publicIPPrefixes": [{"id": lb_prefix}]},
            "effectiveOutboundIPs": [{"id": lb_prefix}]}
    });
    put_cluster(&arm, true, "msi", network, &pools(Some(SUBNET)));
    firewalled(&arm, &["51.124.30.16"]);
    let r = run_default(dir.path(), &arm, aks_line());
    assert_eq!(r.code, 1, "{}", status(&r));
    assert_eq!(r.finding("DEP009")["data"]["missing"], json!(["51.124.30.16/28"]));

    firewalled(&arm, &["51.124.30.0/24"]);
    let r = run_default(dir.path(), &arm, aks_line());
    assert_eq!(r.entry()["status"], "pass", "{}", status(&r));
}

// ---- 8. The Windows build of the hosts -------------------------------------------------

fn windows_pools() -> Vec<Value> {
    let mut win = agent_pool(CLUSTER, "win22", "Windows", "Windows2022", "Standard_D4s_v5", Some(SUBNET));
    win["properties"]["nodeImageVersion"] = json!("AKSWindows-2022-containerd-20348.2527.240612");
    vec![agent_pool(CLUSTER, "system", "Linux", "Ubuntu", "Standard_D4s_v5", Some(SUBNET)), win]
}

#[test]
fn a_windows_pool_needs_an_image_of_its_build() {
    let dir = tempfile::tempdir().unwrap();
    let arm = FakeArm::start();
    aks_world(&arm);
    put_cluster(&arm, true, "msi", lb_network(), &windows_pools());
    let node_rg_id = format!("/subscriptions/{SUB}/resourcegroups/{NODE_RG}");
    arm.remove(&scale_sets_list());
    arm.add_to_list(&scale_sets_list(), scale_set(&node_rg_id, "aks-system-12345678-vmss", "system", &[&kubelet_id()]));
    arm.add_to_list(&scale_sets_list(), scale_set(&node_rg_id, "akswin22", "win22", &[&kubelet_id()]));

    // A Windows Server 2019 image on Windows Server 2022 nodes.
    let r = run_with(dir.path(), &arm, &[aks_line()], &windows_registry("10.0.17763.5936"));
    assert_ne!(r.entry()["status"], "pass", "{}", status(&r));
    let f = r.finding("REG015");
    assert_eq!(f["severity"], "warning", "the Linux pool can run the image");
    assert!(f["message"].as_str().unwrap().contains("windows/amd64 (os.version 10.0.17763.5936)"), "{f:#}");
    assert!(f["remedy"].as_str().unwrap().contains("win22"));
    assert_eq!(
        r.entry()["deployTarget"]["wantedPlatforms"][1],
        json!({"os": "windows", "architecture": "amd64", "osVersion": "10.0.20348", "pools": ["win22"]})
    );

    // The same build: proven.
    let r = run_with(dir.path(), &arm, &[aks_line()], &windows_registry("10.0.20348.2527"));
    assert_eq!(r.entry()["status"], "pass", "{}", status(&r));

    // A Windows Server 2022 image on 2025 nodes may run under the runtime's compatibility
    // rules: not proven either way.
    let mut pools = windows_pools();
    pools[1]["properties"]["osSKU"] = json!("Windows2025");
    put_cluster(&arm, true, "msi", lb_network(), &pools);
    let r = run_with(dir.path(), &arm, &[aks_line()], &windows_registry("10.0.20348.2527"));
    assert_eq!(step_notes(r.entry()), ["image:warning"], "{}", status(&r));
}

#[test]
fn a_windows_web_app_build_is_not_proven() {
    let dir = tempfile::tempdir().unwrap();
    let arm = FakeArm::start();
    webapp_world(&arm);
    arm.put(
        SITE,
        site(
            SITE,
            "shop-web",
            "app,container,windows",
            json!({"type": "SystemAssigned", "principalId": WEB_PRINCIPAL, "tenantId": TENANT}),
            json!({}),
        ),
    );
    let r = run_with(dir.path(), &arm, &[webapp_line()], &windows_registry("10.0.17763.5936"));
    assert_ne!(r.entry()["status"], "pass", "{}", status(&r));
    assert_eq!(step_notes(r.entry()), ["image:warning"]);
    assert!(r.finding("DEP011")["message"]
        .as_str()
        .unwrap()
        .contains("the Windows build the target runs is not known"));
}
