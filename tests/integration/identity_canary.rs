//! No secret the identity check reads or obtains appears in any output, except inside the
//! `##vso[task.setsecret]` lines that hand it to the agent's masker; and every token
//! obtained is handed over that way.

use crate::common::identity_env::{Env, APP, APP2, CONN, CONN2, SECRET};
use crate::fake_entra::{in_days, not_after, openssl_cert, App, FakeEntra, Imds, JOB_TOKEN, OIDC_ISSUER};

const WIF_CONN: &str = "7e7e7e7e-1111-4222-8333-444444444444";
const MSI_CONN: &str = "8f8f8f8f-1111-4222-8333-444444444444";
const EXPIRED_CONN: &str = "9a9a9a9a-1111-4222-8333-444444444444";
const WIF_APP: &str = "5d5d5d5d-aaaa-4bbb-8ccc-dddddddddddd";
const EXPIRED_APP: &str = "6e6e6e6e-aaaa-4bbb-8ccc-dddddddddddd";
const EXPIRED_SECRET: &str = "Exp~canary-expired-secret-91ab3";
const ECHO_CONN: &str = "0e0e0e0e-1111-4222-8333-444444444444";
/// Characters that form encoding changes, so the echoed form differs from the value.
const ECHO_SECRET: &str = "Ech0~canary+secret/with=odd&chars";

/// Every line of every output, with where it came from.
fn outputs(run: &crate::common::identity_env::Run, extra_files: &[&str]) -> Vec<(String, String)> {
    let mut lines: Vec<(String, String)> = Vec::new();
    lines.extend(run.stdout.lines().map(|l| ("stdout".to_string(), l.to_string())));
    lines.extend(run.stderr.lines().map(|l| ("stderr".to_string(), l.to_string())));
    for name in extra_files {
        let path = run.dir.join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{} was not written: {e}", path.display()));
        lines.extend(text.lines().map(|l| (name.to_string(), l.to_string())));
    }
    lines
}

#[test]
fn no_secret_or_token_leaks_and_every_token_is_masked() {
    let (key, cert) = openssl_cert(200);
    let fake = FakeEntra::start();
    fake.add_app(App::new(APP).secret(SECRET, "azdo", in_days(5.0)).secret(
        "Old-other-secret-canary",
        "old",
        in_days(-3.0),
    ));
    fake.add_app(App::new(APP2).cert(&cert, not_after(&cert)));
    fake.add_app(App::new(WIF_APP).federated(OIDC_ISSUER, "sc://fabrikam/Shop/wif"));
    fake.add_app(App::new(EXPIRED_APP).secret(EXPIRED_SECRET, "gone", in_days(-1.0)));
    fake.state().oidc_subjects.insert(WIF_CONN.into(), "sc://fabrikam/Shop/wif".into());
    fake.state().imds = Imds::Token;

    let mut env = Env::pipeline(&fake);
    env.spn_key(CONN, APP, SECRET, "Manual");
    env.spn_cert(CONN2, APP2, &format!("{cert}{key}"));
    env.wif(WIF_CONN, WIF_APP);
    env.azure_connection(MSI_CONN, "ManagedServiceIdentity", &[("tenantid", crate::fake_entra::TENANT)], &[]);
    env.spn_key(EXPIRED_CONN, EXPIRED_APP, EXPIRED_SECRET, "Automatic");
    // A proxy page that quotes the blocked request, form-encoded secret included.
    env.spn_key(ECHO_CONN, APP, ECHO_SECRET, "Manual");
    env.set(&format!("ENDPOINT_AUTH_PARAMETER_{ECHO_CONN}_TENANTID"), crate::fake_entra::TENANT_PROXY_ECHO);
    env.set("SYSTEM_ACCESSTOKEN", JOB_TOKEN);
    env.set("AZP_PREFLIGHT_LOG", "debug");

    let pipeline = env.run(&[]);
    assert_eq!(pipeline.code, 1, "{}\n{}", pipeline.stdout, pipeline.stderr);
    for code in ["IDN001", "IDN005", "IDN011"] {
        assert!(pipeline.stdout.contains(&format!("code={code}]")), "{code} missing:\n{}", pipeline.stdout);
    }
    let issued_in_pipeline_run = fake.state().issued.clone();
    let json = env.run(&["--format", "json", "--report", "second-report.json"]);

    let state = fake.state();
    let issued = state.issued.clone();
    let assertions: Vec<String> = state.hits.iter().filter_map(|h| h.form.get("client_assertion").cloned()).collect();
    drop(state);
    assert!(
        issued_in_pipeline_run.len() >= 7,
        "ARM and Graph tokens, an ID token, the IMDS token: {issued_in_pipeline_run:?}"
    );
    let key_lines: Vec<String> =
        key.lines().filter(|l| !l.starts_with("-----") && l.len() >= 16).map(str::to_string).collect();
    let mut canaries: Vec<(String, &str)> = vec![
        (SECRET.to_string(), "client secret"),
        (EXPIRED_SECRET.to_string(), "expired client secret"),
        (ECHO_SECRET.to_string(), "echoed client secret"),
        (
            url::form_urlencoded::byte_serialize(ECHO_SECRET.as_bytes()).collect::<String>(),
            "form-encoded client secret",
        ),
        // A secret cut in half by an excerpt must not survive either.
        (ECHO_SECRET[..8].to_string(), "start of the echoed client secret"),
        (JOB_TOKEN.to_string(), "job access token"),
    ];
    canaries.extend(key_lines.iter().map(|l| (l.clone(), "private key line")));
    canaries.extend(issued.iter().map(|t| (t.clone(), "access or ID token")));
    canaries.extend(assertions.iter().map(|a| (a.clone(), "client assertion")));

    let mut all = outputs(&pipeline, &["azp-preflight-report.json", "azp-preflight-summary.md"]);
    all.extend(outputs(&json, &["second-report.json"]));
    for (source, line) in &all {
        if line.starts_with("##vso[task.setsecret]") {
            continue;
        }
        for (canary, what) in &canaries {
            assert!(!line.contains(canary.as_str()), "{what} appears in {source}: {line}");
        }
    }
    let masked: Vec<&str> = pipeline.stdout.lines().filter_map(|l| l.strip_prefix("##vso[task.setsecret]")).collect();
    for token in &issued_in_pipeline_run {
        assert!(masked.contains(&token.as_str()), "token not registered with task.setsecret: {token}");
    }
    for secret in [SECRET, EXPIRED_SECRET, JOB_TOKEN] {
        assert!(masked.contains(&secret), "{secret} not registered");
    }
    // setsecret comes first, before anything that might print a secret.
    let lines: Vec<&str> = pipeline.stdout.lines().collect();
    let first_other = lines.iter().position(|l| !l.starts_with("##vso[task.setsecret]")).unwrap_or(0);
    let last_secret = lines.iter().rposition(|l| l.starts_with("##vso[task.setsecret]")).unwrap_or(0);
    assert!(last_secret < first_other);
}

#[test]
fn a_secret_quoted_in_entra_error_description_leaves_no_part_and_no_encoding() {
    use base64::Engine as _;
    // JSON escaping and form encoding both change these characters.
    const QUOTED_SECRET: &str = "Qz7\"quoted\\canary+secret/=&x";
    let fake = FakeEntra::start();
    fake.add_app(crate::fake_entra::App::new(APP));
    let mut env = Env::pipeline(&fake);
    env.spn_key(ECHO_CONN, APP, QUOTED_SECRET, "Manual");
    env.set(&format!("ENDPOINT_AUTH_PARAMETER_{ECHO_CONN}_TENANTID"), crate::fake_entra::TENANT_ENTRA_ECHO);
    let pipeline = env.run(&[]);
    let json = env.run(&["--format", "json", "--report", "echo-report.json"]);
    let human = env.run(&["--format", "human"]);
    assert!(json.stdout.contains("AADSTS50000: There was an error issuing a token"), "quoted: {}", json.stdout);

    let mut forbidden: Vec<String> = (4..=QUOTED_SECRET.len()).map(|n| QUOTED_SECRET[..n].to_string()).collect();
    let json_escaped = serde_json::to_string(QUOTED_SECRET).unwrap();
    forbidden.extend([
        url::form_urlencoded::byte_serialize(QUOTED_SECRET.as_bytes()).collect::<String>(),
        json_escaped.trim_matches('"').to_string(),
        base64::engine::general_purpose::STANDARD.encode(QUOTED_SECRET),
    ]);
    let mut all = outputs(&pipeline, &["azp-preflight-report.json", "azp-preflight-summary.md"]);
    all.extend(outputs(&json, &["echo-report.json"]));
    all.extend(outputs(&human, &[]));
    for (source, line) in &all {
        if line.starts_with("##vso[task.setsecret]") {
            continue;
        }
        for bad in &forbidden {
            assert!(!line.contains(bad.as_str()), "`{bad}` appears in {source}: {line}");
        }
    }
}
