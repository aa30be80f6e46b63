//! The identity check end to end on what it is given: sovereign cloud URLs, ACR connections,
//! bad connection parameters, no connection at all, local Azure variables, and `explain`.

use serde_json::Value;

use crate::common::identity_env::*;
use crate::common::preflight;
use crate::fake_entra::{in_days, not_after, openssl_cert, App, FakeEntra, OIDC_ISSUER, TENANT};

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
