//! The deploy check end to end on the network path to the registry: public access off without
//! a private path (DEP008), firewall rules (DEP009), private DNS zones (DEP010).

use serde_json::json;

use crate::common::deploy_world::*;
use crate::fake_arm::*;

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
