//! The identity check end to end against a misbehaving identity service: proxy pages and
//! truncated bodies (IDN011), a hanging endpoint (RUN001), a skewed clock (AGT003), and no
//! secret over plain http to a remote host.

use std::time::Duration;

use serde_json::Value;

use crate::common::identity_env::*;
use crate::fake_entra::{in_days, App, FakeEntra};

#[test]
fn a_proxy_page_and_a_truncated_body_are_idn011_with_status_and_excerpt() {
    let fake = FakeEntra::start();
    fake.add_app(App::new(APP).secret(SECRET, "azdo", in_days(100.0)));
    let mut env = Env::pipeline(&fake);
    env.spn_key(CONN, APP, SECRET, "Manual");
    env.set(&format!("ENDPOINT_AUTH_PARAMETER_{CONN}_TENANTID"), crate::fake_entra::TENANT_PROXY_HTML);
    let run = env.json();
    assert_eq!(run.codes(), ["IDN011"]);
    let f = run.finding("IDN011");
    assert_eq!(f["data"]["status"], 403);
    let message = text(&f["message"]);
    assert!(message.contains("HTTP 403") && message.contains("Blocked by corporate proxy"), "{message}");
    assert!(!run.stdout.contains("##vso[task.complete result=Succeeded]policy"), "commands in bodies are neutralised");

    env.set(&format!("ENDPOINT_AUTH_PARAMETER_{CONN}_TENANTID"), crate::fake_entra::TENANT_TRUNCATED);
    let run = env.json();
    let f = run.finding("IDN011");
    assert_eq!(f["data"]["status"], 200);
    let message = text(&f["message"]);
    assert!(message.contains("bytes of application/json, not a complete token response"), "{message}");
    assert!(!message.contains("access_tok"), "a cut-off token response is described, not quoted: {message}");

    // The pipeline format carries the same finding as an error issue.
    let run = env.run(&[]);
    assert!(run.stdout.contains("##vso[task.logissue type=error;code=IDN011]identity"), "{}", run.stdout);
}

#[test]
fn a_hanging_token_endpoint_ends_at_the_deadline_with_run001() {
    let fake = FakeEntra::start();
    let mut env = Env::pipeline(&fake);
    env.spn_key(CONN, APP, SECRET, "Manual");
    env.set(&format!("ENDPOINT_AUTH_PARAMETER_{CONN}_TENANTID"), crate::fake_entra::TENANT_HANG);
    let run = env.run(&["--format", "json", "--timeout", "2"]);
    assert_eq!(run.code, 1);
    let f = run.finding("RUN001");
    assert_eq!(f["data"]["check"], "identity");
    assert_eq!(f["data"]["target"], format!("{CONN} (Contoso Prod)"));
    assert!(run.elapsed < Duration::from_secs(10), "{:?}", run.elapsed);

    env.set("INPUT_TIMEOUTSECONDS", "1");
    let run = env.json();
    assert_eq!(run.finding("RUN001")["data"]["timeoutSeconds"], 1);
}

#[test]
fn a_skewed_server_clock_is_agt003_from_the_identity_requests() {
    let fake = FakeEntra::start();
    fake.add_app(App::new(APP).secret(SECRET, "azdo", in_days(300.0)));
    fake.state().date_skew_secs = 600;
    let mut env = Env::pipeline(&fake);
    env.spn_key(CONN, APP, SECRET, "Manual").set("INPUT_CHECKS", "identity,agent");
    let run = env.json();
    let agent: Vec<Value> = run.report()["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["check"] == "agent")
        .flat_map(|c| c["findings"].as_array().cloned().unwrap_or_default())
        .collect();
    let skew = agent.iter().find(|f| f["code"] == "AGT003").unwrap_or_else(|| panic!("{}", run.stdout));
    assert_eq!(skew["severity"], "error");
    let seconds = skew["data"]["skewSeconds"].as_i64().unwrap();
    assert!((595..=605).contains(&seconds), "{seconds}");
    assert!(skew["data"]["hosts"].to_string().contains("127.0.0.1"));
}

#[test]
fn no_secret_goes_over_plain_http_to_a_remote_host() {
    let fake = FakeEntra::start();
    let mut env = Env::pipeline(&fake);
    env.unset("AZURE_AUTHORITY_HOST");
    env.spn_key(CONN, APP, SECRET, "Manual");
    env.set(&format!("ENDPOINT_DATA_{CONN}_ENVIRONMENTAUTHORITYURL"), "http://login.contoso.example/");
    let run = env.json();
    let f = run.finding("IDN011");
    assert!(
        text(&f["message"]).contains("the token request was not sent: plain http to login.contoso.example is refused"),
        "{f}"
    );
    assert_eq!(f["data"]["kind"], "refused");
}
