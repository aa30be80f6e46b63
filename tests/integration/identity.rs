//! The identity check end to end: the binary, configured as the agent configures a task,
//! against the fake identity service.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::preflight;
use crate::fake_entra::{
    in_days, not_after, openssl_cert, App, FakeEntra, GraphAccess, Imds, APP_OBJECT_ID, JOB_TOKEN, OIDC_ISSUER, TENANT,
};

pub const CONN: &str = "1dfdea68-9549-409e-abee-c5da69cfec5f";
pub const CONN2: &str = "6a2c55b0-3d7e-4c55-9a1e-0f3b8f7c2d11";
pub const APP: &str = "46e6adf4-a9cf-4b60-9390-0ba6fb00bf6b";
pub const APP2: &str = "3f1c9b0e-7d51-4f3e-8c2a-5b6d7e8f9a01";
pub const SECRET: &str = "Abc8Q~canary-client-secret-7c1e4b";

/// The environment of one run: what the agent sets for a task step, pointed at the fake.
pub struct Env {
    pub vars: BTreeMap<String, String>,
    pub dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    pub dir: std::path::PathBuf,
}

impl Run {
    pub fn report(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }

    /// The identity entries of the report.
    pub fn entries(&self) -> Vec<Value> {
        self.report()["checks"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c["check"] == "identity")
            .collect()
    }

    pub fn findings(&self) -> Vec<Value> {
        self.entries().iter().flat_map(|e| e["findings"].as_array().cloned().unwrap_or_default()).collect()
    }

    pub fn finding(&self, code: &str) -> Value {
        self.findings()
            .into_iter()
            .find(|f| f["code"] == code)
            .unwrap_or_else(|| panic!("no {code} finding in:\n{}", self.stdout))
    }

    pub fn codes(&self) -> Vec<String> {
        self.findings().iter().map(|f| f["code"].as_str().unwrap_or_default().to_string()).collect()
    }
}

impl Env {
    pub fn pipeline(fake: &FakeEntra) -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut vars = BTreeMap::new();
        let path = dir.path().display().to_string();
        for (k, v) in [
            ("TF_BUILD", "True"),
            ("INPUT_CHECKS", "identity"),
            ("AGENT_TEMPDIRECTORY", path.as_str()),
            ("BUILD_SOURCESDIRECTORY", path.as_str()),
            ("SYSTEM_COLLECTIONURI", "https://dev.azure.com/fabrikam/"),
            ("SYSTEM_TEAMPROJECT", "Shop"),
            ("ENDPOINT_URL_SYSTEMVSSCONNECTION", "https://dev.azure.com/fabrikam/"),
            ("ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN", JOB_TOKEN),
            ("AZURE_AUTHORITY_HOST", fake.base.as_str()),
        ] {
            vars.insert(k.to_string(), v.to_string());
        }
        vars.insert("AZP_PREFLIGHT_GRAPH_URL".into(), fake.graph_url());
        vars.insert("AZP_PREFLIGHT_IMDS_URL".into(), fake.imds_url());
        vars.insert("SYSTEM_OIDCREQUESTURI".into(), fake.oidc_url());
        Env { vars, dir }
    }

    pub fn set(&mut self, key: &str, value: &str) -> &mut Env {
        self.vars.insert(key.to_string(), value.to_string());
        self
    }

    pub fn unset(&mut self, key: &str) -> &mut Env {
        self.vars.remove(key);
        self
    }

    /// Adds `id` to the `azureSubscription` input with the given scheme and parameters.
    pub fn azure_connection(
        &mut self,
        id: &str,
        scheme: &str,
        params: &[(&str, &str)],
        data: &[(&str, &str)],
    ) -> &mut Env {
        let input = match self.vars.get("INPUT_AZURESUBSCRIPTION") {
            Some(v) => format!("{v},{id}"),
            None => id.to_string(),
        };
        self.set("INPUT_AZURESUBSCRIPTION", &input);
        self.connection(id, "https://management.azure.com/", scheme, params, data)
    }

    pub fn connection(
        &mut self,
        id: &str,
        url: &str,
        scheme: &str,
        params: &[(&str, &str)],
        data: &[(&str, &str)],
    ) -> &mut Env {
        self.set(&format!("ENDPOINT_URL_{id}"), url);
        self.set(&format!("ENDPOINT_AUTH_SCHEME_{id}"), scheme);
        for (k, v) in params {
            self.set(&format!("ENDPOINT_AUTH_PARAMETER_{id}_{}", k.to_ascii_uppercase()), v);
        }
        for (k, v) in data {
            self.set(&format!("ENDPOINT_DATA_{id}_{}", k.to_ascii_uppercase()), v);
        }
        self
    }

    /// A secret-based connection as Azure DevOps makes them.
    pub fn spn_key(&mut self, id: &str, app: &str, secret: &str, mode: &str) -> &mut Env {
        self.azure_connection(
            id,
            "ServicePrincipal",
            &[
                ("serviceprincipalid", app),
                ("tenantid", TENANT),
                ("authenticationType", "spnKey"),
                ("serviceprincipalkey", secret),
            ],
            &[("subscriptionName", "Contoso Prod"), ("creationMode", mode), ("environment", "AzureCloud")],
        )
    }

    pub fn spn_cert(&mut self, id: &str, app: &str, pem: &str) -> &mut Env {
        self.azure_connection(
            id,
            "ServicePrincipal",
            &[
                ("serviceprincipalid", app),
                ("tenantid", TENANT),
                ("authenticationType", "spnCertificate"),
                ("servicePrincipalCertificate", pem),
            ],
            &[("subscriptionName", "Contoso Cert"), ("creationMode", "Manual")],
        )
    }

    pub fn wif(&mut self, id: &str, app: &str) -> &mut Env {
        self.azure_connection(
            id,
            "WorkloadIdentityFederation",
            &[("serviceprincipalid", app), ("tenantid", TENANT)],
            &[("subscriptionName", "Contoso WIF"), ("creationMode", "Automatic")],
        )
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let started = Instant::now();
        let out = preflight(self.dir.path())
            .envs(&self.vars)
            .args(args)
            .current_dir(self.dir.path())
            .timeout(Duration::from_secs(60))
            .output()
            .expect("the binary runs");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: started.elapsed(),
            dir: self.dir.path().to_path_buf(),
        }
    }

    pub fn json(&self) -> Run {
        self.run(&["--format", "json"])
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

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
fn sovereign_cloud_urls_come_from_the_connection() {
    let fake = FakeEntra::start();
    fake.add_app(App::new(APP).secret(SECRET, "azdo", in_days(200.0)));
    let mut env = Env::pipeline(&fake);
    env.unset("AZURE_AUTHORITY_HOST").unset("AZP_PREFLIGHT_GRAPH_URL");
    env.spn_key(CONN, APP, SECRET, "Manual");
    let trimmed = fake.base.trim_end_matches('/').to_string();
    env.set(&format!("ENDPOINT_DATA_{CONN}_ENVIRONMENTAUTHORITYURL"), &trimmed);
    env.set(&format!("ENDPOINT_DATA_{CONN}_GRAPHURL"), "https://graph.windows.net/");
    env.set(&format!("ENDPOINT_DATA_{CONN}_MICROSOFTGRAPHURL"), fake.graph_url().trim_end_matches('/'));
    let run = env.json();
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.entries()[0]["proven"].to_string().contains("valid until"));
    assert_eq!(fake.hits("/graph/v1.0/").len(), 2);
}

#[test]
fn acr_registry_connections_with_an_entra_identity_are_checked_others_not() {
    let fake = FakeEntra::start();
    fake.add_app(App::new(APP2).secret(SECRET, "acr-push", in_days(15.0)));
    let mut env = Env::pipeline(&fake);
    env.set("INPUT_CONTAINERREGISTRY", &format!("{CONN2},{CONN}"));
    env.connection(
        CONN2,
        "https://contoso.azurecr.io",
        "ServicePrincipal",
        &[
            ("loginServer", "contoso.azurecr.io"),
            ("serviceprincipalid", APP2),
            ("serviceprincipalkey", SECRET),
            ("tenantid", TENANT),
        ],
        &[("registryType", "ACR"), ("creationMode", "Manual")],
    );
    env.connection(
        CONN,
        "https://index.docker.io/v1/",
        "UsernamePassword",
        &[("registry", "https://index.docker.io/v1/"), ("username", "bob"), ("password", "docker-canary-password")],
        &[],
    );
    let run = env.json();
    let entries = run.entries();
    assert_eq!(entries.len(), 1, "{entries:#?}");
    assert_eq!(entries[0]["target"], format!("{CONN2} (contoso.azurecr.io)"));
    assert_eq!(entries[0]["identity"]["input"], "containerRegistry");
    assert_eq!(run.codes(), ["IDN006"]);
}

#[test]
fn bad_connection_parameters_name_the_connection_and_parameter_never_the_value() {
    let fake = FakeEntra::start();
    let mut env = Env::pipeline(&fake);
    env.azure_connection(
        CONN,
        "ServicePrincipal",
        &[("serviceprincipalid", APP), ("authenticationType", "spnKey"), ("serviceprincipalkey", SECRET)],
        &[("subscriptionName", "No Tenant")],
    );
    env.azure_connection(
        CONN2,
        "ServicePrincipal",
        &[("tenantid", TENANT), ("authenticationType", "spnKey"), ("serviceprincipalkey", SECRET)],
        &[("subscriptionName", "No App")],
    );
    let third = "0c0c0c0c-1111-4222-8333-444444444444";
    env.azure_connection(
        third,
        "ServicePrincipal",
        &[
            ("serviceprincipalid", APP),
            ("tenantid", TENANT),
            ("authenticationType", "spnCertificate"),
            ("servicePrincipalCertificate", "MIIcanary-not-a-pem-value"),
        ],
        &[("subscriptionName", "Bad Cert")],
    );
    let fourth = "0d0d0d0d-1111-4222-8333-444444444444";
    env.azure_connection(fourth, "Token", &[("apitoken", "token-canary-value")], &[("subscriptionName", "Odd Scheme")]);
    let run = env.json();
    assert_eq!(run.code, 1);
    let by_target = |name: &str| -> Value {
        run.entries().into_iter().find(|e| text(&e["target"]).contains(name)).unwrap_or_else(|| panic!("{name}"))
    };
    for (target, code, parameter) in [
        ("No Tenant", "IDN011", "tenantid"),
        ("No App", "IDN011", "serviceprincipalid"),
        ("Bad Cert", "IDN007", "servicePrincipalCertificate"),
        ("Odd Scheme", "IDN011", "scheme"),
    ] {
        let entry = by_target(target);
        let f = &entry["findings"][0];
        assert_eq!(f["code"], code, "{entry}");
        assert_eq!(f["data"]["parameter"], parameter, "{entry}");
        assert!(text(&f["message"]).contains(&format!("parameter `{parameter}`")), "{f}");
        assert!(text(&f["message"]).contains(&text(&entry["target"])), "names the connection: {f}");
    }
    for canary in [SECRET, "MIIcanary-not-a-pem-value", "token-canary-value"] {
        assert!(!run.stdout.contains(canary) && !run.stderr.contains(canary), "{canary} leaked");
    }
    assert!(fake.hits("/").is_empty());
}

#[test]
fn without_azure_connections_the_check_says_so() {
    let fake = FakeEntra::start();
    let run = Env::pipeline(&fake).json();
    assert_eq!(run.code, 0);
    let entries = run.entries();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["status"], "skip");
    assert!(text(&entries[0]["reason"]).contains("no azureSubscription connection"));
}

#[test]
fn explain_documents_every_identity_code() {
    for n in 1..=11 {
        let code = format!("IDN{n:03}");
        let home = tempfile::tempdir().unwrap();
        let out = preflight(home.path()).args(["explain", &code]).output().unwrap();
        assert!(out.status.success());
        let doc = String::from_utf8_lossy(&out.stdout);
        assert!(doc.starts_with(&format!("# {code}")) && doc.contains("## How to fix"), "{doc}");
    }
}

#[test]
fn local_azure_variables_are_checked_like_a_connection() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let (key, cert) = openssl_cert(10);
    let fake = FakeEntra::start();
    fake.add_app(App::new(APP).secret(SECRET, "laptop", in_days(2.0)));
    fake.add_app(App::new(APP2).cert(&cert, not_after(&cert)));
    const FEDERATED_APP: &str = "2b2b2b2b-aaaa-4bbb-8ccc-dddddddddddd";
    fake.add_app(App::new(FEDERATED_APP).federated(OIDC_ISSUER, "system:serviceaccount:ci:runner"));
    let local = |extra: &[(&str, &str)], app: &str| {
        let mut env = Env::pipeline(&fake);
        env.vars.retain(|k, _| !k.starts_with("TF_BUILD") && !k.starts_with("SYSTEM_") && !k.starts_with("ENDPOINT_"));
        env.set("AZURE_CLIENT_ID", app).set("AZURE_TENANT_ID", TENANT);
        for (k, v) in extra {
            env.set(k, v);
        }
        env
    };

    let run = local(&[("AZURE_CLIENT_SECRET", SECRET)], APP).json();
    assert_eq!(run.code, 1);
    let entry = &run.entries()[0];
    assert_eq!(entry["target"], "local");
    let f = run.finding("IDN005");
    assert!(text(&f["remedy"]).contains("AZURE_CLIENT_SECRET"), "{f}");
    assert!(!text(&f["remedy"]).contains("_settings/adminservices"), "{f}");
    assert!(!entry["proven"].to_string().contains("workload identity federation"), "no conversion advice for a laptop");
    let human = local(&[("AZURE_CLIENT_SECRET", SECRET)], APP).run(&[]);
    assert!(human.stdout.contains("error[IDN005]"), "{}", human.stdout);
    assert!(!human.stdout.contains(SECRET) && !human.stderr.contains(SECRET));

    let env = local(&[], APP2);
    let pem = env.dir.path().join("client.pem");
    std::fs::write(&pem, format!("{cert}{key}")).unwrap();
    let mut env = env;
    env.set("AZURE_CLIENT_CERTIFICATE_PATH", &pem.display().to_string());
    let run = env.json();
    assert_eq!(run.codes(), ["IDN006"], "{}", run.stdout);
    assert!(text(&run.finding("IDN006")["remedy"]).contains("AZURE_CLIENT_CERTIFICATE_PATH"));

    let claims = URL_SAFE_NO_PAD.encode(
        serde_json::json!({"iss": OIDC_ISSUER, "sub": "system:serviceaccount:ci:runner", "aud": "api://AzureADTokenExchange"})
            .to_string(),
    );
    let token = format!("eyJhbGciOiJSUzI1NiJ9.{claims}.local-federated-canary");
    fake.state().issued.push(token.clone());
    let env = local(&[], FEDERATED_APP);
    let file = env.dir.path().join("federated.jwt");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    let mut env = env;
    env.set("AZURE_FEDERATED_TOKEN_FILE", &file.display().to_string());
    let run = env.json();
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.entries()[0]["proven"].to_string().contains("workload identity federation"));
    assert!(fake.hits("/oidc").is_empty(), "the token file replaces the OIDC request");
    assert!(!run.stdout.contains("local-federated-canary"));
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
