//! The deploy check end to end on who pulls and whether it may: one scenario per finding code
//! from the target (DEP001) to the scale sets (DEP007), and service principal clusters read
//! through Microsoft Graph.

use serde_json::json;

use crate::common::deploy_world::*;
use crate::fake_arm::*;

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
