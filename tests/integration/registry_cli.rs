//! Inputs as users write them: lines that do not parse (exit 2), servers that parse but
//! cannot be used (REG001, the other targets still checked), typos, `.invalid` names,
//! refused ports, offline runs, and the human output on a laptop.

use crate::common::preflight_shared_home;
use crate::fake_acr::{Attrs, Config, FakeAcr};
use crate::registry_support::{text, Run};

const CONN: &str = "c1b2c3d4-0000-4000-8000-000000000001";

#[test]
fn a_line_that_does_not_parse_is_bad_input_naming_the_line() {
    let out = Run::pipeline("contoso.azurecr.io/app push\ncontoso.azurecr.io/web pul\n").exec();
    assert_eq!(out.code, 2);
    assert!(out.stdout.contains("registries line 2"), "{}", out.stdout);
    assert!(out.stdout.contains("contoso.azurecr.io/web pul"));
    assert!(out.stdout.contains("[pull|push]"), "the expected form is named: {}", out.stdout);
    assert!(out.stdout.contains("##vso[task.complete result=Failed"));

    let output = preflight_shared_home()
        .args(["--checks", "registry", "--registry", "contoso.azurecr.io/app platform=linux"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--registry") && stderr.contains("platform=linux"), "{stderr}");
}

#[test]
fn unusable_servers_are_reg001_while_the_other_targets_are_checked() {
    let fake = FakeAcr::start(Config::default().user("ci", "ci-pass-canary", &["pull"]).with_app(
        "shop/web",
        Attrs::open(),
        Attrs::open(),
    ));
    let s = fake.server();
    let out = Run::pipeline(&format!(
        "http://contoso.azurecr.io/app\nContoso.AzureCR.io/app\ncontoso.azurecr.io/Shop/Web\n{s}/shop/web:1.0"
    ))
    .env("AZP_PREFLIGHT_REGISTRY_USERNAME", "ci")
    .env("AZP_PREFLIGHT_REGISTRY_PASSWORD", "ci-pass-canary")
    .canary("ci-pass-canary")
    .watch(fake.tokens())
    .exec();
    assert_eq!(out.code, 1);
    let f = out.expect_error("http://contoso.azurecr.io/app", "REG001");
    assert_eq!(f["data"]["problem"], "http");
    assert!(text(&f["remedy"]).contains("Write it as `contoso.azurecr.io` in registries line 1"), "{f}");
    let f = out.expect_error("Contoso.AzureCR.io", "REG001");
    assert_eq!(f["data"]["problem"], "uppercase");
    assert!(text(&f["remedy"]).contains("`contoso.azurecr.io`"));
    let f = out.expect_error("Shop/Web", "REG001");
    assert!(text(&f["remedy"]).contains("`shop/web`"), "{f}");
    assert_eq!(out.status("shop/web:1.0"), "pass", "{}", out.dump());
    assert!(out.stdout.contains("##vso[task.complete result=Failed"));
}

#[test]
fn connection_with_a_path_or_an_empty_login_server_is_reg001() {
    let out = Run::pipeline("")
        .acr_sp_connection(CONN, "contoso.azurecr.io/shop", "app", "sp-canary-1")
        .acr_sp_connection("c1b2c3d4-0000-4000-8000-000000000002", "", "app", "sp-canary-2")
        .exec();
    let f = out.expect_error("contoso.azurecr.io/shop (connection", "REG001");
    assert_eq!(f["data"]["problem"], "path");
    let f = out.expect_error("(no server)", "REG001");
    assert_eq!(f["data"]["problem"], "empty");
}

#[test]
fn typo_of_azurecr_io_gets_reg002_and_no_credential() {
    let out = Run::pipeline("contoso.azureacr.io/shop/web push\ncontoso.azurecr.com/app")
        .acr_sp_connection(CONN, "contoso.azureacr.io", "app", "typo-canary-secret")
        .exec();
    let f = out.expect_error("contoso.azureacr.io/shop/web", "REG002");
    assert_eq!(f["data"]["suggestion"], "contoso.azurecr.io");
    assert!(text(&f["message"]).contains("no credential was sent"));
    assert!(text(&f["remedy"]).contains("Did you mean `contoso.azurecr.io`?"));
    let f = out.expect_error("contoso.azurecr.com", "REG002");
    assert_eq!(f["data"]["intended"], "azurecr.io");
    assert_eq!(f["data"]["link"], "typo");
}

#[test]
fn an_invalid_name_fails_dns_without_a_query() {
    let out = Run::pipeline("contoso.invalid/app").exec();
    let f = out.expect_error("contoso.invalid", "REG003");
    assert_eq!(f["data"]["kind"], "nxdomain");
    assert!(text(&f["remedy"]).contains("Check the spelling of `contoso.invalid` in registries line 1"), "{f}");
    assert_eq!(out.target("contoso.invalid")["links"], serde_json::json!(["syntax", "typo"]));
}

#[test]
fn a_closed_port_is_reg005_refused() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port");
    let out = Run::pipeline(&format!("http://127.0.0.1:{port}/app")).exec();
    let f = out.expect_error("127.0.0.1", "REG005");
    assert_eq!(f["data"]["kind"], "refused");
    assert_eq!(f["data"]["address"], format!("127.0.0.1:{port}"));
}

#[test]
fn offline_checks_syntax_typos_and_empty_credentials_only() {
    let out = Run::pipeline("contoso.azurecr.io/app push\nhttp://contoso.azurecr.io/app\ncontoso.azureacr.io/app")
        .env("INPUT_OFFLINE", "true")
        .generic_connection(CONN, "edge.azurecr.io", "", "offline-canary")
        .exec();
    let ok = out.target("contoso.azurecr.io/app (push)");
    assert_eq!(ok["status"], "skip");
    assert!(text(&ok["reason"]).starts_with("offline"), "{ok}");
    out.expect_error("http://contoso", "REG001");
    out.expect_error("azureacr", "REG002");
    let f = out.expect_error("edge.azurecr.io (connection", "REG009");
    assert_eq!(f["data"]["fields"], serde_json::json!(["username"]));
}

#[test]
fn no_target_is_a_skip_with_a_reason() {
    let out = Run::pipeline("").exec();
    assert_eq!(out.code, 0);
    let entry = out.target("(no registry targets)");
    assert_eq!(entry["status"], "skip");
}

#[test]
fn human_output_on_a_laptop_shows_what_was_proven() {
    let fake =
        FakeAcr::start(Config::default().user("ci", "ci-pass-canary-2", &["pull", "push", "metadata_read"]).with_app(
            "shop/web",
            Attrs::open(),
            Attrs::open(),
        ));
    let target = format!("{}/shop/web:1.0", fake.server());
    let output = preflight_shared_home()
        .args([
            "--checks",
            "registry",
            "--registry",
            &target,
            "--registry",
            &format!("{target} push platform=linux/amd64"),
        ])
        .env("AZP_PREFLIGHT_REGISTRY_USERNAME", "ci")
        .env("AZP_PREFLIGHT_REGISTRY_PASSWORD", "ci-pass-canary-2")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("✔ registry"), "{stdout}");
    assert!(stdout.contains("push allowed (token grants pull,push)"), "{stdout}");
    assert!(!stdout.contains("ci-pass-canary-2"));
    for token in fake.issued() {
        assert!(!stdout.contains(&token));
    }
}
