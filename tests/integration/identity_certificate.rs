//! The identity check end to end with a certificate: its end read from Graph or judged
//! locally, and unusable certificates (IDN007).

use serde_json::Value;

use crate::common::identity_env::*;
use crate::fake_entra::{not_after, openssl_cert, App, FakeEntra, GraphAccess};

#[test]
fn a_certificate_near_its_end_signs_in_and_is_idn005_from_graph() {
    let (key, cert) = openssl_cert(3);
    let fake = FakeEntra::start();
    fake.add_app(App::new(APP).cert(&cert, not_after(&cert)));
    let mut env = Env::pipeline(&fake);
    env.spn_cert(CONN, APP, &format!("{cert}{key}"));
    let run = env.json();
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(run.codes(), ["IDN005"]);
    let f = run.finding("IDN005");
    assert_eq!(f["data"]["credentialType"], "certificate");
    assert_eq!(f["data"]["source"], "graph");
    assert_eq!(f["data"]["keyId"], "9a3c0000-0000-4000-8000-000000000000");
    assert!(text(&f["message"]).contains("thumbprint"), "{f}");
    assert!(text(&f["remedy"]).contains("--create-cert --append"));
    let proven = run.entries()[0]["proven"].to_string();
    assert!(proven.contains("Entra ID issues a token (certificate)"), "{proven}");
    // The fake verified the RS256 signature, both thumbprints, audience and lifetime.
    let token_hits = fake.hits("/oauth2/v2.0/token");
    assert_eq!(token_hits.len(), 2);
    assert!(token_hits.iter().all(|h| !h.form.contains_key("client_secret")));
    assert_ne!(
        token_hits[0].form["client_assertion"], token_hits[1].form["client_assertion"],
        "a fresh assertion each time"
    );
}

#[test]
fn a_certificate_is_judged_locally_when_graph_is_unreadable() {
    let (key, cert) = openssl_cert(20);
    let fake = FakeEntra::start();
    fake.add_app(App::new(APP).cert(&cert, not_after(&cert)).graph(GraphAccess::DenyAll));
    let mut env = Env::pipeline(&fake);
    env.spn_cert(CONN, APP, &format!("{key}\n{cert}"));
    let run = env.json();
    let mut codes = run.codes();
    codes.sort();
    assert_eq!(codes, ["IDN006", "IDN008"]);
    let f = run.finding("IDN006");
    assert_eq!(f["data"]["source"], "certificate");
    assert_eq!(f["data"]["keyId"], Value::Null);
    assert!(text(&f["message"]).contains("in 19 days") || text(&f["message"]).contains("in 20 days"), "{f}");
}

#[test]
fn an_expired_certificate_is_idn007_without_a_request_and_offline_still_sees_it() {
    let (key, cert) = openssl_cert(-1);
    let fake = FakeEntra::start();
    fake.add_app(App::new(APP).cert(&cert, not_after(&cert)));
    let mut env = Env::pipeline(&fake);
    env.spn_cert(CONN, APP, &format!("{cert}{key}"));
    let run = env.json();
    assert_eq!(run.codes(), ["IDN007"]);
    let f = run.finding("IDN007");
    assert!(
        text(&f["message"]).contains("expired on") && text(&f["message"]).contains("no token was requested"),
        "{f}"
    );
    assert_eq!(f["data"]["reason"], "expired");
    assert!(fake.hits("/oauth2/").is_empty());

    let (key, cert) = openssl_cert(2);
    let mut env = Env::pipeline(&fake);
    env.spn_cert(CONN, APP, &format!("{cert}{key}")).set("INPUT_OFFLINE", "true");
    let run = env.json();
    let entry = &run.entries()[0];
    assert!(text(&entry["reason"]).starts_with("offline"), "{entry}");
    assert_eq!(run.codes(), ["IDN005"], "the certificate's own end date needs no network");
    assert_eq!(run.finding("IDN005")["data"]["source"], "certificate");
    assert!(fake.hits("/").is_empty(), "offline sends nothing");
}

#[test]
fn a_certificate_unknown_to_the_app_is_idn007_from_700027() {
    let (key, cert) = openssl_cert(90);
    let (_, other) = openssl_cert(90);
    let fake = FakeEntra::start();
    fake.add_app(App::new(APP).cert(&other, not_after(&other)));
    let mut env = Env::pipeline(&fake);
    env.spn_cert(CONN, APP, &format!("{cert}{key}"));
    let run = env.json();
    assert_eq!(run.codes(), ["IDN007"]);
    let f = run.finding("IDN007");
    assert!(
        text(&f["message"]).contains("AADSTS700027") && text(&f["message"]).contains("The key was not found"),
        "{f}"
    );
    assert!(text(&f["remedy"]).contains("Upload the certificate"), "{f}");
}
