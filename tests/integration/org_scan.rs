//! `azp-preflight org` end to end against the fake organisation (`fake_devops`) and, for the
//! credential expiry, the fake Entra ID and Microsoft Graph of `fake_arm`.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

use crate::common::{preflight, stderr_of, stdout_of};
use crate::fake_arm::FakeArm;
use crate::fake_devops::{FakeDevOps, FakeRun, BEARER, PAT};

const SHOP: &str = "6F1E2D3C-AAAA-4000-8000-00000000000A";
const PLATFORM: &str = "6f1e2d3c-aaaa-4000-8000-00000000000b";
const HIDDEN: &str = "6F1E2D3C-AAAA-4000-8000-00000000000C";
/// The app registration two connections sign in as (mixed case, as the service returns it).
const APP: &str = "11111111-AAAA-4BBB-8CCC-DDDDDDDDDDDD";
const TENANT: &str = "22222222-0000-4000-8000-000000000000";
/// The scanning identity's own secret (Entra client credentials to the fake).
const SCANNER_SECRET: &str = "scanner-client-secret-canary-93ab";
const IOT_EDGE: &str = "80f3f6a0-82a6-4a22-ba7a-e5b8c541b9b8";
const AZURE_CLI: &str = "46E4BE58-730B-4389-8A2F-EA10B3E5E815";

fn days_from_now(days: i64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let at = now + days * 86_400;
    httpdate_rfc3339(at)
}

/// `days` and a half from now: a whole number of days left that stays the same for hours, so
/// scans run seconds apart (the shards, the merge test) judge it alike.
fn half_a_day_after(days: i64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    httpdate_rfc3339(now + days * 86_400 + 43_200)
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (civil-from-days, proleptic Gregorian).
fn httpdate_rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

fn arm_connection(id: &str, name: &str, scheme: &str, auth_type: Option<&str>, ready: bool) -> Value {
    let mut parameters = json!({"tenantid": TENANT, "serviceprincipalid": APP, "serviceprincipalkey": null});
    if let Some(t) = auth_type {
        parameters["authenticationType"] = json!(t);
    }
    json!({
        "id": id, "name": name, "type": "AzureRM", "url": "https://management.azure.com/",
        "authorization": {"scheme": scheme, "parameters": parameters},
        "data": {"subscriptionId": "33333333-0000-4000-8000-000000000000", "environment": "AzureCloud"},
        "isReady": ready,
        "operationStatus": if ready { json!({"state": "Ready", "statusMessage": ""}) } else { json!({"state": "Failed", "statusMessage": "Failed to create an app in Microsoft Entra ID."}) },
    })
}

fn run(number: i64, days_ago: i64, tasks: &[(&str, &str, &str)]) -> Vec<FakeRun> {
    vec![FakeRun {
        build_id: 1000 + number,
        number: format!("2026.{number}"),
        finished: days_from_now(-days_ago),
        tasks: tasks.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect(),
    }]
}

/// Three projects (one hidden from the token), five connections, nine pipelines.
fn organisation() -> FakeDevOps {
    let ado = FakeDevOps::start();
    ado.project(SHOP, "Shop");
    ado.project(PLATFORM, "Platform");
    ado.project(HIDDEN, "Hidden");
    ado.deny(HIDDEN);
    ado.endpoint(
        SHOP,
        arm_connection("A1B2C3D4-0000-4000-8000-000000000001", "prod-arm", "ServicePrincipal", Some("spnKey"), true),
        Some(&days_from_now(-2)),
    );
    ado.endpoint(
        SHOP,
        arm_connection("a1b2c3d4-0000-4000-8000-000000000002", "broken-arm", "WorkloadIdentityFederation", None, false),
        None,
    );
    ado.endpoint(
        SHOP,
        json!({"id": "A1B2C3D4-0000-4000-8000-000000000003", "name": "old-acr", "type": "dockerregistry", "url": "https://contoso.azurecr.io",
               "authorization": {"scheme": "UsernamePassword", "parameters": {"username": "contoso", "password": null}}, "isReady": true}),
        Some(&days_from_now(-100)),
    );
    ado.endpoint(
        PLATFORM,
        arm_connection(
            "B1B2C3D4-0000-4000-8000-000000000004",
            "platform-arm",
            "ServicePrincipal",
            Some("spnKey"),
            true,
        ),
        Some(&days_from_now(-1)),
    );
    ado.endpoint(
        PLATFORM,
        arm_connection("b1b2c3d4-0000-4000-8000-000000000005", "wif-arm", "WorkloadIdentityFederation", None, true),
        Some(&days_from_now(-1)),
    );
    ado.definition(
        SHOP,
        1,
        "iot-edge",
        run(
            1,
            3,
            &[(IOT_EDGE, "AzureIoTEdge", "2.241.1"), ("E213FF0F-5D5C-4791-802D-52EA3E7BE1F1", "PowerShell", "2.247.1")],
        ),
    );
    ado.definition(SHOP, 2, "old-cli", run(2, 5, &[(AZURE_CLI, "AzureCLI", "1.275.1")]));
    for id in 3..=7 {
        ado.definition(
            SHOP,
            id,
            &format!("web-{id}"),
            run(id, id, &[("E213FF0F-5D5C-4791-802D-52EA3E7BE1F1", "PowerShell", "2.247.1")]),
        );
    }
    ado.definition(SHOP, 8, "stale", run(8, 90, &[(IOT_EDGE, "AzureIoTEdge", "2.241.1")]));
    ado.definition(PLATFORM, 9, "infra", run(9, 1, &[(IOT_EDGE, "AzureIoTEdge", "2.243.2")]));
    ado
}

/// The app registration's secrets as Graph returns them: the newest ends in 3 days.
fn graph(arm: &FakeArm) {
    arm.put(
        &format!("/v1.0/applications(appId='{}')", APP.to_ascii_lowercase()),
        json!({"id": "obj", "appId": APP.to_ascii_lowercase(), "displayName": "prod",
               "passwordCredentials": [
                   {"keyId": "k1", "displayName": "old", "endDateTime": days_from_now(-40)},
                   {"keyId": "k2", "displayName": "new", "hint": "Abc", "endDateTime": half_a_day_after(3)}],
               "keyCredentials": []}),
    );
}

struct Scan {
    code: i32,
    report: Value,
    stdout: String,
    stderr: String,
}

fn scan(dir: &Path, ado: &FakeDevOps, arm: Option<&FakeArm>, token: &str, args: &[&str]) -> Scan {
    let mut cmd = preflight(dir);
    // The bearer token stands for the job's access token; anything else is a PAT.
    cmd.env(if token == BEARER { "SYSTEM_ACCESSTOKEN" } else { "AZP_PREFLIGHT_ADO_TOKEN" }, token);
    if let Some(arm) = arm {
        cmd.env("AZURE_CLIENT_ID", "44444444-0000-4000-8000-000000000000")
            .env("AZURE_TENANT_ID", TENANT)
            .env("AZURE_CLIENT_SECRET", SCANNER_SECRET)
            .env("AZURE_AUTHORITY_HOST", arm.entra_url())
            .env("AZP_PREFLIGHT_GRAPH_URL", arm.graph_url());
    }
    let report = dir.join("report.json");
    let out = cmd
        .args(["org", "--organization", &ado.url(), "--format", "json", "--report"])
        .arg(&report)
        .args(args)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let stdout = stdout_of(&out);
    let report = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    Scan { code: out.status.code().unwrap_or(-1), report, stdout, stderr: stderr_of(&out) }
}

fn entry<'a>(report: &'a Value, check: &str, target: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == check && c["target"] == target)
        .unwrap_or_else(|| panic!("no {check} entry {target} in {report:#}"))
}

fn codes(entry: &Value) -> Vec<String> {
    entry["findings"].as_array().unwrap().iter().map(|f| f["code"].as_str().unwrap().to_string()).collect()
}

#[test]
fn scans_connections_and_runs_with_paging_mixed_case_ids_and_an_unreadable_project() {
    let dir = tempfile::tempdir().unwrap();
    let ado = organisation();
    let arm = FakeArm::start();
    graph(&arm);
    let out = scan(dir.path(), &ado, Some(&arm), PAT, &[]);
    assert_eq!(out.code, 1, "errors found: {}\n{}", out.stdout, out.stderr);
    let r = &out.report;
    assert_eq!(r["scope"]["shard"], json!({"index": 1, "count": 1}));
    assert_eq!(r["scope"]["organization"], ado.url());
    // Both project pages and all three definition pages were followed.
    assert_eq!(r["coverage"]["projects"], 3, "{:#}", r["coverage"]);
    assert_eq!(r["coverage"]["connections"], 5);
    assert_eq!(r["coverage"]["pipelines"], 9);
    assert_eq!(r["coverage"]["runs"], 8, "the stale pipeline has no run in 30 days");
    let not_covered = r["coverage"]["notCovered"].as_array().unwrap();
    assert_eq!(not_covered.len(), 2, "{not_covered:#?}");
    assert!(not_covered.iter().all(|n| n["scope"] == "Hidden" && n["reason"].as_str().unwrap().contains("TF401019")));
    assert_eq!(codes(entry(r, "connections", "Hidden")), ["ORG004"]);
    assert_eq!(codes(entry(r, "runs", "Hidden")), ["ORG004"]);

    let prod = entry(r, "connections", "Shop/prod-arm");
    let conn = &prod["connection"];
    assert_eq!(conn["id"], "a1b2c3d4-0000-4000-8000-000000000001", "ids are lower-cased");
    assert_eq!(conn["appId"], APP.to_ascii_lowercase());
    assert_eq!(conn["scheme"], "ServicePrincipal");
    assert_eq!(conn["type"], "azurerm");
    assert_eq!(conn["credential"]["kind"], "secret");
    assert_eq!(conn["credential"]["proven"], true);
    // Three and a half days from the test's clock: three whole days from the binary's.
    assert!(matches!(conn["credential"]["daysLeft"].as_i64(), Some(3)), "{conn:#}");
    let mut prod_codes = codes(prod);
    prod_codes.sort();
    assert_eq!(prod_codes, ["IDN005", "ORG002"]);
    let idn005 = prod["findings"].as_array().unwrap().iter().find(|f| f["code"] == "IDN005").unwrap();
    assert!(
        idn005["message"].as_str().unwrap().contains("the newest of the application's 2 client secrets"),
        "{idn005:#}"
    );

    let mut broken = codes(entry(r, "connections", "Shop/broken-arm"));
    broken.sort();
    assert_eq!(broken, ["ORG001", "ORG003"]);
    assert_eq!(codes(entry(r, "connections", "Shop/old-acr")), ["ORG003"]);
    assert!(codes(entry(r, "connections", "Platform/wif-arm")).is_empty());
    assert_eq!(entry(r, "connections", "Platform/wif-arm")["connection"]["credential"]["kind"], "federation");

    // Graph was read once for the app both secret connections use.
    let graph_reads = arm.requests().iter().filter(|r| r.service == "graph").count();
    assert_eq!(graph_reads, 1, "one Graph read per application");
    let seen = ado.seen();
    assert_eq!(seen.iter().filter(|p| p.as_str() == "/contoso/_apis/projects").count(), 2, "two project pages");
    let shop_definitions = format!("/contoso/{}/_apis/build/definitions", SHOP.to_ascii_lowercase());
    assert_eq!(
        seen.iter().filter(|p| **p == shop_definitions).count(),
        3,
        "three definition pages (body and header tokens)"
    );
    assert_eq!(seen.iter().filter(|p| p.ends_with("/timeline")).count(), 8, "one timeline per run");
    let iot = entry(r, "runs", "Shop/iot-edge");
    assert_eq!(codes(iot), ["TSK001"]);
    let tsk001 = &iot["findings"][0]["data"];
    assert_eq!(tsk001["buildId"], 1001);
    assert_eq!(tsk001["version"], "2.241.1");
    assert_eq!(tsk001["advisory"], "AZP-ADV-0001");
    assert!(tsk001["url"].as_str().unwrap().ends_with("_build/results?buildId=1001"));
    let tasks = iot["run"]["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 2, "distinct task versions: {tasks:#?}");
    assert_eq!(codes(entry(r, "runs", "Shop/old-cli")), ["TSK003"]);
    assert!(codes(entry(r, "runs", "Platform/infra")).is_empty(), "the fixed version");
    // The report file is the same report.
    let file: Value = serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(file["coverage"], r["coverage"]);
}

#[test]
fn throttling_is_honoured_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let ado = organisation();
    ado.throttle();
    let out = scan(dir.path(), &ado, None, BEARER, &["--project", "Shop", "--concurrency", "4"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let throttled = &out.report["throttled"];
    assert!(throttled["responses"].as_u64().unwrap() >= 5, "{throttled}");
    assert!(throttled["seconds"].as_f64().unwrap() >= 1.0, "the 429's Retry-After: 1 was waited: {throttled}");
    assert_eq!(out.report["coverage"]["pipelines"], 8, "the refused list was retried, not lost");
    // Without an Azure identity, expiry is not proven and the note names the permission.
    let prod = entry(&out.report, "connections", "Shop/prod-arm");
    assert_eq!(prod["connection"]["credential"]["proven"], false);
    let note = prod["findings"].as_array().unwrap().iter().find(|f| f["code"] == "IDN008").expect("IDN008");
    assert_eq!(note["data"]["permission"], "Application.Read.All");
}

fn sorted_entries(report: &Value) -> Vec<Value> {
    let mut entries: Vec<Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let mut c = c.clone();
            c.as_object_mut().unwrap().remove("durationMs");
            c
        })
        .collect();
    entries.sort_by_key(|c| format!("{}|{}", c["check"], c["target"]));
    entries
}

#[test]
fn four_shards_are_disjoint_and_together_equal_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let ado = organisation();
    let arm = FakeArm::start();
    graph(&arm);
    let whole = sorted_entries(&scan(dir.path(), &ado, Some(&arm), PAT, &[]).report);
    let mut union = Vec::new();
    let mut connections = 0;
    for k in 1..=4 {
        let out = scan(dir.path(), &ado, Some(&arm), PAT, &["--shard", &format!("{k}/4")]);
        assert!(matches!(out.code, 0 | 1), "{}", out.stderr);
        assert_eq!(out.report["scope"]["shard"], json!({"index": k, "count": 4}));
        connections += out.report["coverage"]["connections"].as_u64().unwrap();
        union.extend(sorted_entries(&out.report));
    }
    assert_eq!(connections, 5);
    let mut sorted = union.clone();
    sorted.sort_by_key(|c| format!("{}|{}", c["check"], c["target"]));
    let keys: Vec<String> = sorted.iter().map(|c| format!("{}|{}", c["check"], c["target"])).collect();
    let mut distinct = keys.clone();
    distinct.dedup();
    assert_eq!(keys, distinct, "no entry in two shards");
    assert_eq!(sorted, whole);
}

/// What users run: four shards at once, each writing its report, then `report merge`. The
/// merged report equals one unsharded scan: the same entries and the same coverage.
#[test]
fn a_merge_of_four_shard_reports_equals_one_unsharded_scan() {
    let ado = organisation();
    let arm = FakeArm::start();
    graph(&arm);
    let whole_dir = tempfile::tempdir().unwrap();
    let whole = scan(whole_dir.path(), &ado, Some(&arm), PAT, &[]).report;
    let shards = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for k in 1..=4 {
        let dir = shards.path().join(format!("shard-{k}"));
        std::fs::create_dir_all(&dir).unwrap();
        let out = scan(&dir, &ado, Some(&arm), PAT, &["--shard", &format!("{k}/4")]);
        assert!(matches!(out.code, 0 | 1), "{}", out.stderr);
        files.push(dir.join("report.json"));
    }
    let out = preflight(shards.path())
        .args(["report", "merge", "--format", "json"])
        .args(&files)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "the organisation has errors: {}", stderr_of(&out));
    let merged: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(merged["scope"]["shard"], json!({"index": 1, "count": 1}));
    assert_eq!(merged["scope"]["merged"], json!([1, 2, 3, 4]));
    assert_eq!(merged["coverage"], whole["coverage"], "coverage proves nothing was skipped");
    assert_eq!(
        (merged["result"].clone(), merged["counts"].clone()),
        (whole["result"].clone(), whole["counts"].clone())
    );
    assert_eq!(sorted_entries(&merged), sorted_entries(&whole));
}

/// In a pipeline, a scan started from a script step names its identity with AZURE_*: Graph is
/// read with it (no IDN008), as on a laptop.
#[test]
fn in_a_pipeline_the_azure_variables_name_the_scanning_identity() {
    let dir = tempfile::tempdir().unwrap();
    let ado = organisation();
    let arm = FakeArm::start();
    graph(&arm);
    let mut cmd = preflight(dir.path());
    cmd.envs(crate::common::pipeline_env(dir.path())).env("SYSTEM_ACCESSTOKEN", BEARER);
    cmd.env("AZURE_CLIENT_ID", "44444444-0000-4000-8000-000000000000")
        .env("AZURE_TENANT_ID", TENANT)
        .env("AZURE_CLIENT_SECRET", SCANNER_SECRET)
        .env("AZURE_AUTHORITY_HOST", arm.entra_url())
        .env("AZP_PREFLIGHT_GRAPH_URL", arm.graph_url());
    let out = cmd
        .args(["org", "--organization", &ado.url(), "--format", "json", "--project", "Shop"])
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert!(report["checks"].is_array(), "{}\n{}", stdout_of(&out), stderr_of(&out));
    let prod = entry(&report, "connections", "Shop/prod-arm");
    assert!(!codes(prod).contains(&"IDN008".to_string()), "{prod:#}");
    assert_eq!(prod["connection"]["credential"]["proven"], true, "{prod:#}");
}

/// The service's own page sizes (and a round trip per answer) give the same report as the
/// tests' small pages: paging changes how many requests, not what is found.
#[test]
fn service_sized_pages_and_latency_give_the_same_report() {
    let arm = FakeArm::start();
    graph(&arm);
    let small = organisation();
    let dir = tempfile::tempdir().unwrap();
    let with_small_pages = scan(dir.path(), &small, Some(&arm), PAT, &[]);
    let large = organisation();
    large.set_page_sizes(100, 1000, 1000);
    large.set_latency(Duration::from_millis(20));
    let with_large_pages = scan(dir.path(), &large, Some(&arm), PAT, &[]);
    assert!(large.requests() < small.requests(), "{} < {}", large.requests(), small.requests());
    // The two fakes listen on different ports and were filled a moment apart: run URLs and
    // finish times differ by that alone.
    let comparable = |entries: Vec<Value>, url: &str| -> Vec<Value> {
        entries
            .into_iter()
            .map(|e| {
                let mut e: Value = serde_json::from_str(&e.to_string().replace(url, "ORG/")).unwrap();
                if let Some(run) = e.get_mut("run").and_then(Value::as_object_mut) {
                    run.remove("finished");
                }
                e
            })
            .collect()
    };
    assert_eq!(
        comparable(sorted_entries(&with_small_pages.report), &small.url()),
        comparable(sorted_entries(&with_large_pages.report), &large.url())
    );
    assert_eq!(with_small_pages.report["coverage"], with_large_pages.report["coverage"]);
}

/// The task in organisation mode runs `azp-preflight org` with the step's inputs: the
/// organisation, the projects and the window come from them, and the task's own copy of the
/// job token (ENDPOINT_AUTH_*) is never taken for the scanning identity.
#[test]
fn task_mode_reads_its_inputs_and_never_the_task_copy_of_the_job_token() {
    let dir = tempfile::tempdir().unwrap();
    let ado = organisation();
    let task_env = |cmd: &mut assert_cmd::Command| {
        cmd.envs(crate::common::pipeline_env(dir.path()))
            .env("SYSTEM_COLLECTIONURI", "https://dev.azure.com/not-this-one/")
            .env("INPUT_MODE", "organization")
            .env("INPUT_ORGANIZATION", ado.url())
            .env("INPUT_PROJECTS", "Platform\n# a comment\n")
            .env("INPUT_SINCEDAYS", "30")
            .env("ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN", "task-copy-of-the-job-token");
    };
    let mut cmd = preflight(dir.path());
    task_env(&mut cmd);
    let out = cmd.env("AZP_PREFLIGHT_ADO_TOKEN", PAT).args(["org", "--format", "json"]).output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(report["scope"]["organization"], ado.url(), "{}", stderr_of(&out));
    assert_eq!(report["coverage"]["projects"], 1, "only the projects input: {:#}", report["coverage"]);
    assert!(report["checks"].as_array().unwrap().iter().all(|c| c["target"].as_str().unwrap().starts_with("Platform")));
    let requests = ado.requests();

    let mut cmd = preflight(dir.path());
    task_env(&mut cmd);
    let out = cmd.env("INPUT_SINCEDAYS", "400").args(["org"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stdout = stdout_of(&out);
    assert!(stdout.contains("sinceDays: `400` is not valid; expected a whole number from 1 to 365"), "{stdout}");

    let mut cmd = preflight(dir.path());
    task_env(&mut cmd);
    let out = cmd.args(["org"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stdout = stdout_of(&out);
    assert!(stdout.contains("AZP_PREFLIGHT_ADO_TOKEN"), "no token: the task's copy was not taken: {stdout}");
    assert_eq!(ado.requests(), requests, "bad input and a missing token send nothing");
}

#[test]
fn shard_defaults_come_from_the_pipeline_and_bad_flags_are_all_named() {
    let dir = tempfile::tempdir().unwrap();
    let ado = organisation();
    let out = preflight(dir.path())
        .env("AZP_PREFLIGHT_ADO_TOKEN", PAT)
        .env("SYSTEM_COLLECTIONURI", ado.url())
        .env("SYSTEM_JOBPOSITIONINPHASE", "2")
        .env("SYSTEM_TOTALJOBSINPHASE", "3")
        .args(["org", "--format", "json", "--project", "Platform"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["scope"]["shard"], json!({"index": 2, "count": 3}));
    assert_eq!(report["scope"]["organization"], ado.url());

    let out = preflight(dir.path())
        .env("AZP_PREFLIGHT_ADO_TOKEN", PAT)
        .args(["org", "--organization", "ftp://x", "--shard", "5/4", "--since", "0", "--concurrency", "65"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr_of(&out);
    for named in ["--organization", "ftp://x", "--shard", "5/4", "--since", "--concurrency", "65"] {
        assert!(err.contains(named), "{named} in {err}");
    }
    let out = preflight(dir.path()).args(["org", "--organization", &ado.url()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "no token at all");
    assert!(stderr_of(&out).contains("AZP_PREFLIGHT_ADO_TOKEN"));
}

#[test]
fn canary_no_token_or_secret_in_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let ado = organisation();
    let arm = FakeArm::start();
    graph(&arm);
    let mut seen = String::new();
    for (format, token) in [("json", PAT), ("human", PAT), ("azure-pipelines", PAT), ("sarif", BEARER)] {
        let mut cmd = preflight(dir.path());
        cmd.env(if token == BEARER { "SYSTEM_ACCESSTOKEN" } else { "AZP_PREFLIGHT_ADO_TOKEN" }, token)
            .env("AZURE_CLIENT_ID", "44444444-0000-4000-8000-000000000000")
            .env("AZURE_TENANT_ID", TENANT)
            .env("AZURE_CLIENT_SECRET", SCANNER_SECRET)
            .env("AZURE_AUTHORITY_HOST", arm.entra_url())
            .env("AZP_PREFLIGHT_GRAPH_URL", arm.graph_url())
            .env("RUST_LOG", "trace")
            .env("AZP_PREFLIGHT_LOG", "trace");
        let out = cmd
            .args(["org", "--organization", &ado.url(), "--format", format, "--report"])
            .arg(dir.path().join("r.json"))
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap();
        // `##vso[task.setsecret]` lines hand the secrets to the agent's masker: the one place
        // they are meant to appear (azure-pipelines format).
        for line in stdout_of(&out).lines().filter(|l| !l.starts_with("##vso[task.setsecret]")) {
            seen.push_str(line);
            seen.push('\n');
        }
        seen.push_str(&stderr_of(&out));
        seen.push_str(&std::fs::read_to_string(dir.path().join("r.json")).unwrap_or_default());
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    for secret in [PAT, BEARER, SCANNER_SECRET, crate::fake_arm::TOKEN] {
        for form in
            [secret.to_string(), b64.encode(secret), b64.encode(format!(":{secret}")), secret.replace('-', "%2D")]
        {
            assert!(!seen.contains(&form), "{form} leaked");
        }
    }
    assert!(ado.requests() > 0);
    assert!(seen.contains("Shop/prod-arm"), "the scans ran");
}

#[test]
fn a_scan_cut_off_by_its_deadline_reports_what_it_covered_and_lists_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let ado = organisation();
    ado.slow_timelines();
    let started = std::time::Instant::now();
    let out = scan(dir.path(), &ado, None, PAT, &["--timeout", "3", "--project", "Shop"]);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(out.code, 1, "the connections' findings; not exit 3: {}", out.stderr);
    let coverage = &out.report["coverage"];
    assert_eq!(coverage["connections"], 3, "{coverage:#}");
    assert_eq!(coverage["runs"], 0);
    let late: Vec<&Value> = coverage["notCovered"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["reason"] == "the deadline came first")
        .collect();
    assert_eq!(late.len(), 7, "every run that was cut off is listed: {coverage:#}");
    assert!(late.iter().any(|n| n["scope"] == "Shop/iot-edge"));
}

#[test]
fn a_scan_that_could_read_nothing_exits_3_and_still_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let ado = organisation();
    let out = scan(dir.path(), &ado, None, PAT, &["--project", "Hidden"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(codes(entry(&out.report, "connections", "Hidden")), ["ORG004"]);
    assert_eq!(out.report["coverage"]["notCovered"].as_array().unwrap().len(), 2);
}
