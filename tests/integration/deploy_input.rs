//! The deploy check end to end on its input: the typo guard, bad target lines, targets left out
//! by `checks` or `--offline`, and a local run with Azure variables.

use serde_json::Value;

use crate::common::deploy_world::*;
use crate::common::{preflight, stderr_of, stdout_of};
use crate::fake_arm::*;

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
