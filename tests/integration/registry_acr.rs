//! ACR behaviour against the in-repo fake: service principal and Entra ID exchange flows,
//! granted scope, locks, tags, platforms, firewall, throttling and every kind of remote fault.

use std::time::{Duration, Instant};

use crate::fake_acr::{Attrs, Config, FakeAcr, Fault, Reply};
use crate::registry_support::{text, Run};

const APP: &str = "11111111-2222-3333-4444-555555555555";
const SP_SECRET: &str = "sp-secret-canary-Q8~x";
const CONN: &str = "a1b2c3d4-0000-4000-8000-000000000001";
const AZURE: &str = "a1b2c3d4-0000-4000-8000-0000000000a2";

fn acr(config: Config) -> FakeAcr {
    FakeAcr::start(config)
}

fn full() -> Config {
    Config::default().user(APP, SP_SECRET, &["pull", "push", "metadata_read"]).with_app(
        "shop/web",
        Attrs::open(),
        Attrs::open(),
    )
}

#[test]
fn service_principal_can_push_and_pull_with_platforms_proven() {
    let fake = acr(full());
    let s = fake.server();
    let out = Run::pipeline(&format!(
        "{s}/shop/web:1.0 push\n{s}/shop/web:1.0 pull platform=linux/arm64\n{s}/shop/web:single pull platform=linux/amd64\n{s}/shop/web"
    ))
    .acr_sp_connection(CONN, &s, APP, SP_SECRET)
    .watch(fake.tokens()).exec();
    assert_eq!(out.code, 0, "{}\n{}", out.dump(), out.stdout);
    let push = out.proven(":1.0 (push)");
    for expected in ["push allowed (token grants pull,push)", "repository unlocked", "tag unlocked"] {
        assert!(push.iter().any(|p| p == expected), "{push:?}");
    }
    assert!(out.proven("1.0 (pull, linux/arm64)").iter().any(|p| p == "linux/arm64 present"));
    assert!(out.proven(":single").iter().any(|p| p == "linux/amd64 present"));
    assert!(out.proven("shop/web (pull)").iter().any(|p| p.starts_with("repository readable (2 tags")));
    // The connection is checked through its lines, not as a separate target.
    assert_eq!(out.registry_entries().len(), 4);
    // Pushing was proven from the token and the locks: nothing was written.
    assert_eq!(fake.open_uploads(), 0);
    assert!(!fake.httpd.seen().iter().any(|(m, p)| m == "POST" && p.contains("/blobs/uploads/")));
    let issued = fake.issued();
    assert!(!issued.is_empty());
    // Tokens are registered as secrets for the agent's masker, and nowhere else.
    assert!(issued.iter().all(|t| out.stdout.contains(&format!("##vso[task.setsecret]{t}"))));
    assert!(out.summary.contains("push allowed"), "{}", out.summary);
}

#[test]
fn connection_alone_is_checked_at_registry_level() {
    let fake = acr(full());
    let out = Run::pipeline("").acr_sp_connection(CONN, &fake.server(), APP, SP_SECRET).watch(fake.tokens()).exec();
    assert_eq!(out.code, 0, "{}", out.dump());
    let name = format!("{} (connection {CONN})", fake.httpd.addr);
    assert_eq!(out.status(&name), "pass");
    assert!(
        out.proven(&name).iter().any(|p| p.starts_with("credential accepted (service connection")),
        "{}",
        out.dump()
    );
}

#[test]
fn pull_only_identity_asked_to_push_gets_reg012_with_the_registry_words() {
    let fake = acr(Config::default().user(APP, SP_SECRET, &["pull", "metadata_read"]).with_app(
        "shop/web",
        Attrs::open(),
        Attrs::open(),
    ));
    let s = fake.server();
    let out = Run::pipeline(&format!("{s}/shop/web push"))
        .acr_sp_connection(CONN, &s, APP, SP_SECRET)
        .watch(fake.tokens())
        .exec();
    assert_eq!(out.code, 1);
    let f = out.expect_error("shop/web (push)", "REG012");
    assert_eq!(f["data"]["requested"], serde_json::json!(["pull", "push"]));
    assert_eq!(f["data"]["granted"], serde_json::json!(["pull"]));
    let message = text(&f["message"]);
    assert!(
        message.contains("insufficient_scope") && message.contains("x-ms-correlation-request-id: corr-"),
        "{message}"
    );
    let remedy = text(&f["remedy"]);
    assert!(remedy.contains(&format!("az role assignment create --assignee {APP} --role AcrPush")), "{remedy}");
    assert_eq!(fake.open_uploads(), 0);
}

#[test]
fn opaque_tokens_are_judged_by_probes_that_leave_nothing_behind() {
    let mut denied = Config::default().user("reader", "reader-pass-canary", &["pull"]).with_app(
        "shop/web",
        Attrs::open(),
        Attrs::open(),
    );
    denied.opaque_tokens = true;
    let fake = acr(denied);
    let s = fake.server();
    let out = Run::pipeline(&format!("{s}/shop/web push"))
        .generic_connection(CONN, &s, "reader", "reader-pass-canary")
        .watch(fake.tokens())
        .exec();
    let f = out.expect_error("shop/web (push)", "REG012");
    assert_eq!(f["data"]["granted"], serde_json::json!(["pull"]));
    assert!(text(&f["message"]).contains("POST /v2/shop/web/blobs/uploads/"));

    let mut writer = Config::default().user("writer", "writer-pass-canary", &["pull", "push"]).with_app(
        "shop/web",
        Attrs::open(),
        Attrs::open(),
    );
    writer.opaque_tokens = true;
    let fake = acr(writer);
    let s = fake.server();
    let out = Run::pipeline(&format!("{s}/shop/web push"))
        .generic_connection(CONN, &s, "writer", "writer-pass-canary")
        .watch(fake.tokens())
        .exec();
    assert_eq!(out.code, 0, "{}", out.dump());
    assert!(out.proven("shop/web (push)").iter().any(|p| p == "push allowed (upload session opened and cancelled)"));
    let seen = fake.httpd.seen();
    assert!(seen.iter().any(|(m, p)| m == "DELETE" && p.starts_with("/v2/shop/web/blobs/uploads/")), "{seen:?}");
    assert_eq!(fake.open_uploads(), 0, "the probe's upload session must be cancelled");
    // Without metadata_read the lock attributes are reported as unverified, not as a failure.
    assert!(out.target("shop/web (push)")["unverified"].to_string().contains("locks"));
}

#[test]
fn entra_identity_is_exchanged_for_an_acr_token() {
    let fake = acr(Config::default().entra(SP_SECRET, &["pull", "push", "metadata_read"]).with_app(
        "shop/web",
        Attrs::open(),
        Attrs::open(),
    ));
    let s = fake.server();
    let out = Run::pipeline(&format!("{s}/shop/web:1.0 pull platform=linux/amd64"))
        .azure_sp(AZURE, APP, SP_SECRET)
        .env("AZURE_AUTHORITY_HOST", &s)
        .canary(&fake.entra_token)
        .watch(fake.tokens())
        .exec();
    assert_eq!(out.code, 0, "{}", out.dump());
    let proven = out.proven("shop/web:1.0");
    assert!(proven.iter().any(|p| p.contains("Azure identity") && p.contains("Contoso Prod")), "{proven:?}");
    assert!(proven.iter().any(|p| p == "linux/amd64 present"));
    let seen: Vec<String> = fake.httpd.seen().into_iter().map(|(m, p)| format!("{m} {p}")).collect();
    assert!(seen.contains(&"POST /tenant-1/oauth2/v2.0/token".to_string()), "{seen:?}");
    assert!(seen.contains(&"POST /oauth2/exchange".to_string()));
    assert!(seen.contains(&"POST /oauth2/token".to_string()));
    // The canary list checked above includes the refresh and access tokens the fake issued.
    let issued = fake.issued();
    assert!(issued.iter().any(|t| t.starts_with("refresh-canary-")));
    for t in &issued {
        assert!(!out.report.to_string().contains(t.as_str()));
    }
}

#[test]
fn workload_identity_acr_connection_uses_the_pipeline_oidc_token() {
    let fake = acr(Config::default().entra("unused-secret", &["pull", "metadata_read"]).with_app(
        "shop/web",
        Attrs::open(),
        Attrs::open(),
    ));
    let s = fake.server();
    let job_token = "job-access-token-canary-31";
    let mut run = Run::pipeline(&format!("{s}/shop/web:1.0"))
        .env("AZURE_AUTHORITY_HOST", &s)
        .env("SYSTEM_OIDCREQUESTURI", &format!("{s}/oidc"))
        .env("ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN", job_token)
        .canary(job_token)
        .canary(crate::fake_acr::OIDC_TOKEN)
        .canary(&fake.entra_token);
    for (k, v) in [
        (format!("ENDPOINT_AUTH_SCHEME_{CONN}"), "WorkloadIdentityFederation".to_string()),
        (format!("ENDPOINT_AUTH_PARAMETER_{CONN}_LOGINSERVER"), s.clone()),
        (format!("ENDPOINT_AUTH_PARAMETER_{CONN}_SERVICEPRINCIPALID"), APP.to_string()),
        (format!("ENDPOINT_AUTH_PARAMETER_{CONN}_TENANTID"), "tenant-1".to_string()),
        (format!("ENDPOINT_DATA_{CONN}_REGISTRYTYPE"), "ACR".to_string()),
        ("INPUT_CONTAINERREGISTRY".to_string(), CONN.to_string()),
    ] {
        run = run.env(&k, &v);
    }
    let out = run.watch(fake.tokens()).exec();
    assert_eq!(out.code, 0, "{}", out.dump());
    assert!(out.proven("shop/web:1.0").iter().any(|p| p.starts_with("`shop/web:1.0` present")));
}

#[test]
fn rejected_exchange_and_failing_entra_token_are_reg011() {
    let mut config = Config::default().entra(SP_SECRET, &["pull"]).with_app("shop/web", Attrs::open(), Attrs::open());
    config.exchange_fault = Some(Reply::text(403, "application/json", ""));
    let fake = acr(config);
    let s = fake.server();
    let out = Run::pipeline(&format!("{s}/shop/web:1.0"))
        .azure_sp(AZURE, APP, SP_SECRET)
        .env("AZURE_AUTHORITY_HOST", &s)
        .watch(fake.tokens())
        .exec();
    let f = out.expect_error("shop/web:1.0", "REG011");
    assert!(text(&f["message"]).contains("HTTP 403 (empty body)"), "{f}");
    assert!(text(&f["remedy"]).contains("--role AcrPull"));
    assert!(f["data"]["correlationId"].as_str().is_some_and(|c| c.starts_with("corr-")));

    let fake =
        acr(Config::default().entra("the-right-secret", &["pull"]).with_app("shop/web", Attrs::open(), Attrs::open()));
    let s = fake.server();
    let out = Run::pipeline(&format!("{s}/shop/web:1.0"))
        .azure_sp(AZURE, APP, "a-wrong-secret-canary")
        .env("AZURE_AUTHORITY_HOST", &s)
        .watch(fake.tokens())
        .exec();
    let f = out.expect_error("shop/web:1.0", "REG011");
    assert!(text(&f["message"]).contains("AADSTS7000215"), "{f}");
    assert!(!fake.httpd.seen().iter().any(|(_, p)| p == "/oauth2/exchange"), "nothing to exchange after Entra refused");
}

#[test]
fn wrong_service_principal_secret_is_reg010_with_the_reset_command() {
    let fake = acr(full());
    let s = fake.server();
    let out = Run::pipeline(&format!("{s}/shop/web:1.0"))
        .acr_sp_connection(CONN, &s, APP, "stale-secret-canary")
        .watch(fake.tokens())
        .exec();
    let f = out.expect_error("shop/web:1.0", "REG010");
    assert!(text(&f["message"]).contains("UNAUTHORIZED: authentication required"), "{f}");
    assert!(text(&f["remedy"]).contains(&format!("az ad app credential reset --id {APP} --append")));
    assert!(text(&f["remedy"]).contains("_settings/adminservices?resourceId="));
}

#[test]
fn locks_block_the_intent_they_lock() {
    let locked_repo = Attrs { write_enabled: false, read_enabled: true };
    let locked_tag = Attrs { write_enabled: false, read_enabled: false };
    let fake = acr(Config::default()
        .user(APP, SP_SECRET, &["pull", "push", "metadata_read"])
        .with_app("frozen/repo", locked_repo, Attrs::open())
        .with_app("shop/web", Attrs::open(), locked_tag));
    let s = fake.server();
    let out = Run::pipeline(&format!(
        "{s}/frozen/repo:1.0 push\n{s}/shop/web:1.0 push\n{s}/shop/web:single pull\n{s}/frozen/repo:1.0 pull"
    ))
    .acr_sp_connection(CONN, &s, APP, SP_SECRET)
    .watch(fake.tokens())
    .exec();
    let f = out.expect_error("frozen/repo:1.0 (push)", "REG013");
    assert!(
        text(&f["remedy"])
            .contains("az acr repository update --name <registry-name> --repository frozen/repo --write-enabled true"),
        "{f}"
    );
    assert_eq!(f["data"]["attribute"], "writeEnabled");
    let f = out.expect_error("shop/web:1.0 (push)", "REG013");
    assert!(text(&f["remedy"]).contains("--image shop/web:1.0 --write-enabled true"), "{f}");
    assert!(text(&f["message"]).contains("The operation is disallowed on this registry, repository or image"));
    let f = out.expect_error("shop/web:single (pull)", "REG013");
    assert!(text(&f["remedy"]).contains("--read-enabled true"));
    // A write lock does not stop pulls.
    assert_eq!(out.status("frozen/repo:1.0 (pull)"), "pass", "{}", out.dump());
}

#[test]
fn missing_tag_repository_and_platform() {
    let fake = acr(full());
    let s = fake.server();
    let out = Run::pipeline(&format!(
        "{s}/shop/web:1.1\n{s}/shop/gone:1.0\n{s}/shop/web:1.0 platform=linux/s390x\n{s}/shop/web:1.1 push"
    ))
    .acr_sp_connection(CONN, &s, APP, SP_SECRET)
    .watch(fake.tokens())
    .exec();
    let f = out.expect_error("shop/web:1.1 (pull)", "REG014");
    let message = text(&f["message"]);
    assert!(
        message.contains("MANIFEST_UNKNOWN: manifest tagged by \\\"1.1\\\" is not found")
            || message.contains("manifest tagged by \"1.1\" is not found"),
        "{message}"
    );
    assert!(message.contains("`1.0`"), "closest tag suggested: {message}");
    assert!(text(&f["remedy"]).contains("az acr repository show-tags --name <registry-name> --repository shop/web"));
    let f = out.expect_error("shop/gone", "REG014");
    assert_eq!(f["data"]["kind"], "repository");
    let f = out.expect_error("linux/s390x", "REG015");
    assert_eq!(f["data"]["available"], serde_json::json!(["linux/amd64", "linux/arm64/v8"]));
    assert!(text(&f["message"]).contains("no matching manifest for linux/s390x"));
    // A tag that does not exist yet is fine for a push.
    assert_eq!(out.status("shop/web:1.1 (push)"), "pass", "{}", out.dump());
}

#[test]
fn firewall_denial_names_the_client_ip() {
    let fake = acr(full().fault("/", Fault::DeniedIp("203.0.113.7".into())));
    let s = fake.server();
    let out =
        Run::pipeline(&format!("{s}/shop/web")).acr_sp_connection(CONN, &s, APP, SP_SECRET).watch(fake.tokens()).exec();
    let f = out.expect_error("shop/web", "REG008");
    assert_eq!(f["data"]["clientIp"], "203.0.113.7");
    assert!(text(&f["message"]).contains("DENIED: client with IP '203.0.113.7' is not allowed access"));
    assert!(text(&f["remedy"]).contains("az acr network-rule add --name <registry-name> --ip-address 203.0.113.7"));
    assert!(f["data"]["correlationId"].is_string());
}

#[test]
fn throttling_after_bounded_retries_is_a_warning() {
    let fake = acr(full().fault("/oauth2/token", Fault::Throttle(1)));
    let s = fake.server();
    let out =
        Run::pipeline(&format!("{s}/shop/web")).acr_sp_connection(CONN, &s, APP, SP_SECRET).watch(fake.tokens()).exec();
    assert_eq!(out.code, 0, "a warning does not fail the default threshold: {}", out.dump());
    let f = out.finding("shop/web", "REG016");
    assert_eq!(f["severity"], "warning");
    assert_eq!(f["data"]["retries"], 2);
    assert_eq!(f["data"]["retryAfter"], "1");
    assert!(text(&f["message"]).contains("TOOMANYREQUESTS: too many requests"));
    assert_eq!(out.status("shop/web"), "warn");
    assert_eq!(fake.httpd.seen().iter().filter(|(_, p)| p == "/oauth2/token").count(), 3);
}

#[test]
fn remote_faults_each_yield_a_specific_finding_in_time() {
    type Case = (&'static str, Fault, &'static str);
    let cases: Vec<Case> = vec![
        (
            "/v2/",
            Fault::Reply(Reply::json(
                503,
                serde_json::json!({"errors": [{"code": "UNAVAILABLE", "message": "service unavailable"}]}),
            )),
            "server-error",
        ),
        ("/v2/", Fault::Html(200), "html"),
        ("/v2/", Fault::Html(403), "html"),
        ("/v2/", Fault::Huge, "too-large"),
        ("/v2/", Fault::Reply(Reply::Reset), "reset"),
        ("/oauth2/token", Fault::Reply(Reply::Truncated), "truncated"),
        ("/v2/shop/web/manifests/", Fault::Reply(Reply::text(200, "text/plain", "not json at all")), "status"),
        ("/v2/", Fault::Reply(Reply::Hang), "timeout"),
    ];
    for (path, fault, kind) in cases {
        let fake = acr(full().fault(path, fault.clone()));
        let s = fake.server();
        let started = Instant::now();
        let out = Run::pipeline(&format!("{s}/shop/web:1.0 platform=linux/amd64"))
            .acr_sp_connection(CONN, &s, APP, SP_SECRET)
            .env("INPUT_TIMEOUTSECONDS", "4")
            .watch(fake.tokens())
            .exec();
        assert!(started.elapsed() < Duration::from_secs(8), "{path} {kind}: took {:?}", started.elapsed());
        let codes = out.codes("shop/web");
        assert!(
            !codes.contains(&"RUN001".to_string()),
            "{kind}: the chain must name the link, not the deadline: {}",
            out.dump()
        );
        if kind == "status" {
            // A manifest that is not JSON is caught when the platform is read.
            let f = out.expect_error("shop/web", "REG007");
            assert_eq!(f["data"]["link"], "platform", "{f}");
            continue;
        }
        let f = out.expect_error("shop/web", "REG007");
        assert_eq!(f["data"]["kind"], kind, "{path}: {f}");
        assert_eq!(out.stdout.matches("##vso[task.complete").count(), 1, "{}", out.stdout);
        assert!(!out.stdout.contains("##vso[task.complete result=Succeeded]"), "server text must not inject commands");
        if kind == "html" {
            assert!(text(&f["message"]).contains("Contoso Web Gateway - Access Blocked"), "{f}");
        }
    }
}

#[test]
fn anonymous_without_rights_and_empty_username_are_reg009() {
    let fake = acr(full());
    let s = fake.server();
    let out = Run::pipeline(&format!("{s}/shop/web:1.0")).watch(fake.tokens()).exec();
    let f = out.expect_error("shop/web", "REG009");
    assert_eq!(f["data"]["granted"], serde_json::json!([]));

    // The AzureIoTEdge@2 2.241.x case: a connection whose username is empty.
    let fake = acr(full());
    let s = fake.server();
    let out = Run::pipeline(&format!("{s}/modules/filter push"))
        .generic_connection(CONN, &s, "", "edge-password-canary")
        .watch(fake.tokens())
        .exec();
    let f = out.expect_error("modules/filter", "REG009");
    assert_eq!(f["data"]["fields"], serde_json::json!(["username"]));
    assert!(text(&f["remedy"]).contains("https://dev.azure.com/fabrikam/Shop/_settings/adminservices?resourceId="));
    assert!(text(&f["remedy"]).contains("AzureIoTEdge@2"));
    // Nothing but the unauthenticated challenge reached the registry.
    let seen = fake.httpd.seen();
    assert!(seen.iter().all(|(_, p)| p == "/v2/"), "{seen:?}");
}
