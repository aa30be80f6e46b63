//! The deploy check end to end on healthy targets: an AKS cluster and a web app that pass with
//! every step proven, the platforms an image must have, and the proof that several targets'
//! reads overlap.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::deploy_world::*;
use crate::fake_arm::*;

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
