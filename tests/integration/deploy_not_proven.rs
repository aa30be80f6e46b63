//! The deploy check end to end when ARM does not answer as it should: what cannot be read is
//! DEP011 "not proven", an error quoting the secret leaks none of it, and a next link to
//! another origin is not followed.

use std::time::Duration;

use serde_json::json;

use crate::common::deploy_world::*;
use crate::fake_arm::*;

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
