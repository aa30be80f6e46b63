//! The identity check end to end without a stored credential: workload identity federation
//! (IDN009) and managed identity (IDN010).

use std::time::Duration;

use crate::common::identity_env::*;
use crate::fake_entra::{App, FakeEntra, Imds, JOB_TOKEN, OIDC_ISSUER, TENANT};

#[test]
fn federation_succeeds_and_a_subject_mismatch_is_idn009_showing_what_was_presented() {
    let subject = "sc://fabrikam/Shop/contoso-wif";
    let fake = FakeEntra::start();
    fake.add_app(App::new(APP).federated(OIDC_ISSUER, subject));
    fake.state().oidc_subjects.insert(CONN.into(), subject.into());
    let mut env = Env::pipeline(&fake);
    env.wif(CONN, APP);
    let run = env.json();
    assert_eq!(run.code, 0, "{}", run.stdout);
    let entry = &run.entries()[0];
    assert_eq!(entry["status"], "pass");
    assert!(entry["proven"].to_string().contains("no secret or certificate to expire"));
    let oidc = fake.hits("/oidc");
    assert_eq!(oidc.len(), 1);
    assert!(
        oidc[0].query.contains("api-version=7.1") && oidc[0].query.contains(&format!("serviceConnectionId={CONN}"))
    );
    assert_eq!(oidc[0].headers["authorization"], format!("Bearer {JOB_TOKEN}"));
    assert!(fake.hits("/graph/").is_empty(), "nothing expires under federation");

    fake.state().oidc_subjects.insert(CONN.into(), "sc://fabrikam/Shop/renamed-connection".into());
    let run = env.json();
    assert_eq!(run.codes(), ["IDN009"]);
    let f = run.finding("IDN009");
    let message = text(&f["message"]);
    assert!(message.contains("AADSTS700213"), "{message}");
    assert!(message.contains("subject `sc://fabrikam/Shop/renamed-connection`"), "{message}");
    assert!(message.contains(&format!("issuer `{OIDC_ISSUER}`")), "{message}");
    assert!(text(&f["remedy"]).contains("Edit and save the connection"), "{f}");
}

#[test]
fn federation_without_an_id_token_is_idn009() {
    let fake = FakeEntra::start();
    fake.add_app(App::new(APP).federated(OIDC_ISSUER, "sc://x/y/z"));
    let mut env = Env::pipeline(&fake);
    env.wif(CONN, APP);
    let run = env.json();
    let f = run.finding("IDN009");
    assert_eq!(f["data"]["status"], 400);
    assert!(text(&f["message"]).contains("No service connection found with identifier"), "{f}");
    assert!(text(&f["message"]).contains("not be authorised"), "{f}");

    env.unset("SYSTEM_OIDCREQUESTURI");
    let f = env.json().finding("IDN009");
    assert!(text(&f["message"]).contains("SYSTEM_OIDCREQUESTURI is not set"), "{f}");
}

#[test]
fn managed_identity_absent_is_idn010_and_fast() {
    let fake = FakeEntra::start();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut env = Env::pipeline(&fake);
    env.azure_connection(
        CONN,
        "ManagedServiceIdentity",
        &[("tenantid", TENANT)],
        &[("subscriptionName", "Contoso MSI")],
    );
    env.set("AZP_PREFLIGHT_IMDS_URL", &format!("http://127.0.0.1:{port}/"));
    env.set("INPUT_TIMEOUTSECONDS", "30");
    let run = env.json();
    assert_eq!(run.codes(), ["IDN010"]);
    let f = run.finding("IDN010");
    assert_eq!(f["data"]["reason"], "absent");
    assert!(text(&f["message"]).contains("does not run on an Azure VM"), "{f}");
    assert!(run.elapsed < Duration::from_secs(5), "took {:?} against a 30 s deadline", run.elapsed);
}

#[test]
fn managed_identity_present_missing_or_not_azure() {
    let fake = FakeEntra::start();
    let mut env = Env::pipeline(&fake);
    env.azure_connection(
        CONN,
        "ManagedServiceIdentity",
        &[("tenantid", TENANT)],
        &[("subscriptionName", "Contoso MSI")],
    );
    let run = env.json();
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.entries()[0]["proven"].to_string().contains("managed identity"));
    let hits = fake.hits("/imds/");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].headers["metadata"], "true");
    assert!(hits[0].query.contains("resource=https%3A%2F%2Fmanagement.azure.com%2F"), "{}", hits[0].query);

    fake.state().imds = Imds::NoIdentity;
    let f = env.json().finding("IDN010");
    assert_eq!(f["data"]["reason"], "no-identity");
    assert!(text(&f["message"]).contains("Identity not found"), "{f}");

    fake.state().imds = Imds::NotAzure;
    let f = env.json().finding("IDN010");
    assert_eq!(f["data"]["reason"], "not-azure");
    assert!(text(&f["message"]).contains("EC2ws"), "{f}");
}
