//! The identity check end to end with a client secret: a valid one and how long it lasts, the
//! sign-in failures (IDN001-IDN004), expiry windows (IDN005, IDN006), and Graph refusing the
//! read (IDN008).

use serde_json::Value;

use crate::common::identity_env::*;
use crate::fake_entra::{in_days, App, FakeEntra, GraphAccess, APP_OBJECT_ID, TENANT};

#[test]
fn a_valid_secret_passes_and_reports_how_long_it_lasts() {
    let fake = FakeEntra::start();
    fake.add_app(App::new(APP).secret(SECRET, "azdo", in_days(400.5)));
    let mut env = Env::pipeline(&fake);
    env.spn_key(CONN, APP, SECRET, "Automatic");
    let run = env.json();
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let entry = &run.entries()[0];
    assert_eq!(entry["status"], "pass");
    assert_eq!(entry["target"], format!("{CONN} (Contoso Prod)"));
    assert!(run.findings().is_empty(), "{:#?}", run.findings());
    let proven = entry["proven"].to_string();
    assert!(proven.contains("Entra ID issues a token (secret)"), "{proven}");
    assert!(proven.contains("valid until") && proven.contains("(400 days)"), "{proven}");
    assert!(proven.contains("could use workload identity federation"), "{proven}");
    let facts = &entry["identity"];
    assert_eq!((facts["method"].as_str(), facts["appId"].as_str()), (Some("secret"), Some(APP)));
    assert_eq!(facts["credential"]["daysLeft"], 400);
    assert_eq!(facts["credential"]["keyId"], "0b5e1c6e-0000-4000-8000-000000000000");
    assert!(text(&facts["recommendation"]).contains("Convert"), "{facts}");
    // One token for Resource Manager, one for Graph, then both Graph objects.
    let tokens = fake.hits("/oauth2/v2.0/token");
    let mut scopes: Vec<&str> = tokens.iter().map(|h| h.form["scope"].as_str()).collect();
    scopes.sort();
    assert_eq!(scopes, [&format!("{}.default", fake.graph_url()), "https://management.azure.com/.default"]);
    assert_eq!(fake.hits("/graph/v1.0/applications(appId='").len(), 1);
    let sp = fake.hits("/graph/v1.0/servicePrincipals(appId='");
    assert_eq!(sp.len(), 1);
    assert!(sp[0].query.contains("$select=id,appId,displayName,passwordCredentials,keyCredentials"), "{}", sp[0].query);
}

#[test]
fn an_expired_secret_is_idn001_with_the_ids_and_the_automatic_remedy() {
    let fake = FakeEntra::start();
    fake.add_app(App::new(APP).secret(SECRET, "azdo", in_days(-2.0)));
    let mut env = Env::pipeline(&fake);
    env.spn_key(CONN, APP, SECRET, "Automatic");
    let run = env.json();
    assert_eq!(run.code, 1);
    let f = run.finding("IDN001");
    assert_eq!(f["severity"], "error");
    let message = text(&f["message"]);
    assert!(message.contains(APP) && message.contains("AADSTS7000222"), "{message}");
    assert!(message.contains("trace id 0000aaaa-11bb-cccc-dd33-000007000222"), "{message}");
    assert!(message.contains("correlation id aaaa0000-bb11-2222-33cc-000007000222"), "{message}");
    assert_eq!(f["data"]["errorCodes"][0], 7000222);
    let remedy = text(&f["remedy"]);
    assert!(remedy.contains("Edit the service connection and save it"), "{remedy}");
    assert!(
        remedy.contains(&format!("https://dev.azure.com/fabrikam/Shop/_settings/adminservices?resourceId={CONN}")),
        "{remedy}"
    );
    assert!(remedy.contains("workload identity federation"), "{remedy}");
    assert!(fake.hits("/graph/").is_empty(), "nothing read from Graph when the credential fails");
}

#[test]
fn an_invalid_secret_is_idn002_with_the_manual_remedy() {
    let fake = FakeEntra::start();
    fake.add_app(App::new(APP).secret("Xyz-the-real-secret-value", "azdo", in_days(100.0)));
    let mut env = Env::pipeline(&fake);
    env.spn_key(CONN, APP, SECRET, "Manual");
    let run = env.json();
    assert_eq!(run.code, 1);
    let f = run.finding("IDN002");
    assert!(text(&f["message"]).contains("AADSTS7000215"));
    let remedy = text(&f["remedy"]);
    assert!(remedy.contains(&format!("az ad app credential reset --id {APP} --append")), "{remedy}");
    assert!(remedy.contains("resourceId="), "{remedy}");
}

#[test]
fn an_unknown_app_is_idn003_and_an_unknown_tenant_idn004() {
    let fake = FakeEntra::start();
    fake.add_app(App::new(APP).secret(SECRET, "azdo", in_days(100.0)));
    let mut env = Env::pipeline(&fake);
    env.spn_key(CONN, APP2, SECRET, "Manual");
    let run = env.json();
    assert_eq!(run.codes(), ["IDN003"]);
    assert!(text(&run.finding("IDN003")["message"])
        .contains(&format!("application {APP2} was not found in tenant {TENANT}")));

    let mut env = Env::pipeline(&fake);
    env.spn_key(CONN, APP, SECRET, "Manual");
    env.set(&format!("ENDPOINT_AUTH_PARAMETER_{CONN}_TENANTID"), "contoso-typo.onmicrosoft.com");
    let run = env.json();
    assert_eq!(run.codes(), ["IDN004"]);
    let f = run.finding("IDN004");
    assert!(text(&f["message"]).contains("tenant contoso-typo.onmicrosoft.com was not found (AADSTS90002"), "{f}");
    assert_eq!(f["data"]["status"], 400);
}

#[test]
fn a_secret_ending_in_3_days_is_idn005_and_in_20_days_idn006() {
    let fake = FakeEntra::start();
    fake.add_app(App::new(APP).secret(SECRET, "azdo", in_days(3.5)));
    fake.add_app(
        App::new(APP2)
            .secret("Q7x-old-and-dead", "old", in_days(-40.0))
            .secret(SECRET, "azdo-2026", in_days(20.5))
            .secret("Zz9-far-future", "spare", in_days(700.0)),
    );
    let mut env = Env::pipeline(&fake);
    env.spn_key(CONN, APP, SECRET, "Manual");
    let run = env.json();
    assert_eq!(run.code, 1);
    assert_eq!(run.codes(), ["IDN005"]);
    let f = run.finding("IDN005");
    let message = text(&f["message"]);
    assert!(message.contains("`azdo`") && message.contains("keyId 0b5e1c6e-0000-4000-8000-000000000000"), "{message}");
    assert!(message.contains(", in 3 days"), "{message}");
    let expected_date = jiff::Timestamp::from_second(in_days(3.5)).unwrap().strftime("%Y-%m-%d").to_string();
    assert_eq!(f["data"]["expiresOn"], expected_date);
    assert_eq!(f["data"]["keyId"], "0b5e1c6e-0000-4000-8000-000000000000");
    assert_eq!(f["data"]["daysLeft"], 3);
    assert!(text(&f["remedy"]).contains("az ad app credential reset"));

    let mut env = Env::pipeline(&fake);
    env.spn_key(CONN2, APP2, SECRET, "Manual");
    let run = env.json();
    assert_eq!(run.code, 0, "a warning does not fail with failOn=error");
    assert_eq!(run.entries()[0]["status"], "warn");
    let f = run.finding("IDN006");
    assert_eq!(f["severity"], "warning");
    assert!(text(&f["message"]).contains(", in 20 days"), "{f}");
    assert_eq!(f["data"]["keyId"], "0b5e1c6e-0000-4000-8000-000000000001");
    // The app's other, expired secret is a note; the far-future one is not mentioned.
    let notes: Vec<Value> = run.findings().into_iter().filter(|f| f["severity"] == "note").collect();
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert_eq!(notes[0]["code"], "IDN006");
    assert_eq!(notes[0]["data"]["inUse"], false);
    assert!(
        text(&notes[0]["message"]).contains("expired on") && text(&notes[0]["message"]).contains("40 days ago"),
        "{}",
        notes[0]
    );
    assert!(text(&notes[0]["remedy"]).contains("az ad app credential delete --id"));
    // failOn=warning makes the same run fail.
    assert_eq!(env.run(&["--format", "json", "--fail-on", "warning"]).code, 1);
}

#[test]
fn graph_refusing_the_read_is_a_note_naming_the_permission() {
    let fake = FakeEntra::start();
    fake.add_app(App::new(APP).secret(SECRET, "azdo", in_days(3.0)).graph(GraphAccess::DenyAll));
    let mut env = Env::pipeline(&fake);
    env.spn_key(CONN, APP, SECRET, "Manual");
    let run = env.json();
    assert_eq!(run.code, 0);
    assert_eq!(run.codes(), ["IDN008"]);
    let f = run.finding("IDN008");
    assert_eq!(f["severity"], "note");
    assert!(text(&f["message"]).contains("403 Authorization_RequestDenied"), "{f}");
    assert!(text(&f["remedy"]).contains("Application.Read.All"));
    assert!(text(&f["remedy"]).contains("9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30=Role"));
    assert_eq!(f["data"]["reason"], "denied");

    // Only the application refused: the service principal is read, the secret is not on it.
    let fake = FakeEntra::start();
    fake.add_app(App::new(APP).secret(SECRET, "azdo", in_days(3.0)).graph(GraphAccess::DenyApplication));
    let mut env = Env::pipeline(&fake);
    env.spn_key(CONN, APP, SECRET, "Manual");
    let run = env.json();
    assert_eq!(run.codes(), ["IDN008"]);
    assert!(text(&run.finding("IDN008")["message"]).contains("application read"));

    // An automatic connection knows the application's object id: the direct read works.
    let fake = FakeEntra::start();
    fake.add_app(App::new(APP).secret(SECRET, "azdo", in_days(3.0)).graph(GraphAccess::SelfByObjectId));
    let mut env = Env::pipeline(&fake);
    env.spn_key(CONN, APP, SECRET, "Automatic").set(&format!("ENDPOINT_DATA_{CONN}_APPOBJECTID"), APP_OBJECT_ID);
    let run = env.json();
    assert_eq!(run.codes(), ["IDN005"], "{}", run.stdout);
    assert_eq!(fake.hits(&format!("/graph/v1.0/applications/{APP_OBJECT_ID}")).len(), 1);
}
