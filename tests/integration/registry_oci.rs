//! The OCI paths against a real registry (Debian's docker-registry, CNCF distribution 2.8):
//! Basic auth, token auth with a pull-only user, TLS trust, read-only mode, manifests,
//! indexes and platforms, credentials from the Docker config and a credential helper.

use crate::registry_lab::{token_users, Lab, Mode, ALICE};
use crate::registry_support::{text, Run};

const CONN: &str = "b1b2c3d4-0000-4000-8000-000000000001";

#[test]
fn basic_auth_registry_tags_platforms_and_push_probe() {
    let lab = Lab::start(Mode::Htpasswd);
    lab.push_single("team/app", "1.0", "linux", "amd64");
    lab.push_index("team/multi", "2.0");
    let s = lab.server();
    let out = Run::pipeline(&format!(
        "{s}/team/app:1.0 pull platform=linux/amd64\n\
         {s}/team/multi:2.0 platform=linux/arm64\n\
         {s}/team/multi:2.0 platform=linux/s390x\n\
         {s}/team/app:2.0\n\
         {s}/team/app push\n\
         {s}/team/brand-new:1.0 push"
    ))
    .generic_connection(CONN, &s, ALICE.0, ALICE.1)
    .exec();
    assert_eq!(out.status("team/app:1.0"), "pass", "{}\n{}", out.dump(), lab.log());
    assert!(out.proven("team/app:1.0").iter().any(|p| p == "linux/amd64 present"));
    assert!(out.proven("linux/arm64").iter().any(|p| p == "linux/arm64 present"));
    let f = out.expect_error("linux/s390x", "REG015");
    // The attestation entry (unknown/unknown) is not offered as a platform.
    assert_eq!(f["data"]["available"], serde_json::json!(["linux/amd64", "linux/arm64/v8"]));
    let f = out.expect_error("team/app:2.0", "REG014");
    assert!(text(&f["message"]).contains("MANIFEST_UNKNOWN"), "{f}");
    assert_eq!(f["data"]["closest"], serde_json::json!(["1.0"]));
    assert!(text(&f["remedy"]).contains(&format!("skopeo list-tags docker://127.0.0.1:{}/team/app", lab.port)));
    for push in ["team/app (push)", "team/brand-new:1.0 (push)"] {
        assert_eq!(out.status(push), "pass", "{}", out.dump());
        assert!(
            out.proven(push).iter().any(|p| p == "push allowed (upload session opened and cancelled)"),
            "{:?}",
            out.proven(push)
        );
    }
    // The push probe wrote nothing: no new repository appeared.
    let mut catalog = lab.catalog();
    catalog.sort();
    assert_eq!(catalog, ["team/app", "team/multi"]);
    assert_eq!(out.code, 1);
}

#[test]
fn basic_auth_wrong_password_and_missing_credential() {
    let lab = Lab::start(Mode::Htpasswd);
    let s = lab.server();
    let out =
        Run::pipeline(&format!("{s}/team/app")).generic_connection(CONN, &s, ALICE.0, "not-the-password-canary").exec();
    let f = out.expect_error("team/app", "REG010");
    assert!(text(&f["message"]).contains("UNAUTHORIZED: authentication required"), "{f}");
    let out = Run::pipeline(&format!("{s}/team/app")).exec();
    let f = out.expect_error("team/app", "REG009");
    assert!(text(&f["message"]).contains("requires a username and password"), "{f}");
}

#[test]
fn token_auth_pull_only_user_gets_the_registry_insufficient_scope() {
    let lab = Lab::start(Mode::Token);
    lab.push_index("team/app", "1.0");
    let s = lab.server();
    let users = token_users();
    let (bob_pw, _) = users["bob"];
    let (alice_pw, _) = users["alice"];

    let out = Run::pipeline(&format!("{s}/team/app push\n{s}/team/app:1.0 platform=linux/amd64"))
        .generic_connection(CONN, &s, "bob", bob_pw)
        .watch(lab.tokens())
        .exec();
    let f = out.expect_error("team/app (push)", "REG012");
    assert_eq!(f["data"]["requested"], serde_json::json!(["pull", "push"]));
    assert_eq!(f["data"]["granted"], serde_json::json!(["pull"]));
    let message = text(&f["message"]);
    assert!(message.contains("error=\"insufficient_scope\""), "the registry's own refusal is quoted: {message}");
    assert_eq!(out.status("team/app:1.0"), "pass", "{}", out.dump());
    assert!(out.proven("team/app:1.0").iter().any(|p| p == "pull allowed (token grants pull)"));

    let out = Run::pipeline(&format!("{s}/team/app push"))
        .generic_connection(CONN, &s, "alice", alice_pw)
        .watch(lab.tokens())
        .exec();
    assert_eq!(out.code, 0, "{}\n{}", out.dump(), lab.log());
    let proven = out.proven("team/app (push)");
    assert!(proven.iter().any(|p| p == "push allowed (token grants pull,push)"), "{proven:?}");
    assert!(proven.iter().any(|p| p == "push allowed (upload session opened and cancelled)"), "{proven:?}");

    let out = Run::pipeline(&format!("{s}/team/app"))
        .generic_connection(CONN, &s, "bob", "wrong-token-pass-canary")
        .watch(lab.tokens())
        .exec();
    let f = out.expect_error("team/app", "REG010");
    assert!(text(&f["message"]).contains("invalid username or password"), "{f}");

    // No credential: the token service hands out an empty anonymous token.
    let out = Run::pipeline(&format!("{s}/team/app:1.0")).watch(lab.tokens()).exec();
    let f = out.expect_error("team/app:1.0", "REG009");
    assert_eq!(f["data"]["granted"], serde_json::json!([]));

    // Registry level only: the credential is accepted, the token works on /v2/.
    let out = Run::pipeline("").generic_connection(CONN, &s, "bob", bob_pw).watch(lab.tokens()).exec();
    assert_eq!(out.code, 0, "{}", out.dump());
    assert!(out.proven("(connection").iter().any(|p| p.starts_with("credential accepted")));
}

#[test]
fn tls_trust_comes_from_ssl_cert_file() {
    let lab = Lab::start(Mode::Tls);
    let ca = lab.write_ca();
    let server = lab.server();
    let out = Run::local(&["--registry", &server]).env("SSL_CERT_FILE", &ca.to_string_lossy()).exec();
    assert_eq!(out.code, 0, "{}\n{}", out.dump(), lab.log());
    let proven = out.proven(&server);
    assert!(proven.iter().any(|p| p.starts_with("reachable over TLS 1.")), "{proven:?}");

    let out = Run::local(&["--registry", &server]).exec();
    let f = out.expect_error(&server, "REG006");
    assert_eq!(
        (f["data"]["kind"].as_str(), f["data"]["reason"].as_str()),
        (Some("certificate"), Some("unknown-issuer")),
        "{f}"
    );
    assert!(text(&f["remedy"]).contains("SSL_CERT_FILE"));

    // Trusting some other CA does not help.
    let (other_ca, _, _) = crate::registry_lab::tls_material();
    let other = lab.dir.path().join("other-ca.pem");
    std::fs::write(&other, other_ca).expect("write");
    let out = Run::local(&["--registry", &server]).env("SSL_CERT_FILE", &other.to_string_lossy()).exec();
    out.expect_error(&server, "REG006");

    // Plain http to the TLS port: the handshake link says so.
    let out = Run::local(&["--registry", &format!("https://127.0.0.1:{}", lab.port)])
        .env("SSL_CERT_FILE", &ca.to_string_lossy())
        .exec();
    assert_eq!(out.status("127.0.0.1"), "pass", "{}", out.dump());
    let out = Run::local(&["--registry", &format!("http://127.0.0.1:{}", lab.port)]).exec();
    let f = out.expect_error("127.0.0.1", "REG007");
    assert!(text(&f["message"]).contains("400"), "{f}");
}

#[test]
fn a_tls_registry_naming_a_plain_http_loopback_realm_gets_no_credential() {
    // The registry is reached over TLS; its challenge sends clients to http://127.0.0.1:<port>.
    let lab = Lab::start(Mode::TlsToken);
    let ca = lab.write_ca();
    let server = lab.server();
    let (alice_pw, _) = token_users()["alice"];
    let out = Run::local(&["--registry", &server])
        .env("SSL_CERT_FILE", &ca.to_string_lossy())
        .env("AZP_PREFLIGHT_REGISTRY_USERNAME", "alice")
        .env("AZP_PREFLIGHT_REGISTRY_PASSWORD", alice_pw)
        .canary(alice_pw)
        .exec();
    let f = out.expect_error(&server, "REG007");
    assert_eq!(f["data"]["kind"], "insecure-realm", "{f}");
    assert!(text(&f["message"]).contains("plain http"), "{f}");
    let issuer = lab.issuer.as_ref().expect("the token lab has an issuer");
    assert_eq!(issuer.httpd.seen(), Vec::<(String, String)>::new(), "a request reached the plain http realm");

    // The same realm is fine for a registry that is itself a plain http lab on loopback.
    let lab = Lab::start(Mode::Token);
    let s = lab.server();
    let out = Run::local(&["--registry", &s])
        .env("AZP_PREFLIGHT_REGISTRY_USERNAME", "alice")
        .env("AZP_PREFLIGHT_REGISTRY_PASSWORD", alice_pw)
        .canary(alice_pw)
        .exec();
    assert_eq!(out.status(&s), "pass", "{}", out.dump());
    assert!(!lab.issuer.as_ref().expect("issuer").httpd.seen().is_empty());
}

#[test]
fn read_only_registry_refuses_pushes() {
    let lab = Lab::start(Mode::ReadOnly);
    let s = lab.server();
    let out = Run::pipeline(&format!("{s}/team/app push\n{s}/team/app"))
        .generic_connection(CONN, &s, ALICE.0, ALICE.1)
        .exec();
    let f = out.expect_error("team/app (push)", "REG013");
    assert_eq!(f["data"]["kind"], "read-only");
    assert!(text(&f["message"]).contains("405") && text(&f["message"]).contains("Method not allowed"), "{f}");
    let f = out.expect_error("team/app (pull)", "REG014");
    assert_eq!(f["data"]["kind"], "repository");
}

#[test]
fn docker_config_auths_and_credential_helpers_supply_local_credentials() {
    let lab = Lab::start(Mode::Htpasswd);
    lab.push_single("team/app", "1.0", "linux", "amd64");
    let authority = format!("127.0.0.1:{}", lab.port);
    let target = format!("{}/team/app:1.0", lab.server());

    // `docker login` style entry.
    let run = Run::local(&["--registry", &target]);
    let docker = run.dir().join("docker");
    std::fs::create_dir_all(&docker).expect("mkdir");
    let auth = base64_encode(&format!("{}:{}", ALICE.0, ALICE.1));
    std::fs::write(
        docker.join("config.json"),
        serde_json::json!({"auths": {authority.clone(): {"auth": auth}}}).to_string(),
    )
    .expect("write");
    let out = run.env("DOCKER_CONFIG", &docker.to_string_lossy()).canary(ALICE.1).canary(&auth).exec();
    assert_eq!(out.code, 0, "{}", out.dump());
    assert!(text(&out.target("team/app")["credential"]).starts_with("Docker config"), "{}", out.dump());

    // A credential helper on PATH (`credHelpers`).
    let run = Run::local(&["--registry", &target]);
    let dir = run.dir();
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let helper = bin.join("docker-credential-labtest");
    std::fs::write(
        &helper,
        format!("#!/bin/sh\nread server\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{}\",\"Secret\":\"{}\"}}' \"$server\"\n", ALICE.0, ALICE.1),
    )
    .expect("write helper");
    set_executable(&helper);
    let docker = dir.join("docker");
    std::fs::create_dir_all(&docker).expect("mkdir");
    std::fs::write(
        docker.join("config.json"),
        serde_json::json!({"credHelpers": {authority.clone(): "labtest"}}).to_string(),
    )
    .expect("write");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let out = run.env("DOCKER_CONFIG", &docker.to_string_lossy()).env("PATH", &path).canary(ALICE.1).exec();
    assert_eq!(out.code, 0, "{}", out.dump());
    assert!(text(&out.target("team/app")["credential"]).contains("docker-credential-labtest"));

    // A helper that fails is reported, with what it said.
    let run = Run::local(&["--registry", &target]);
    let dir = run.dir();
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let helper = bin.join("docker-credential-broken");
    std::fs::write(&helper, "#!/bin/sh\necho 'keychain is locked' >&2\nexit 3\n").expect("write helper");
    set_executable(&helper);
    let docker = dir.join("docker");
    std::fs::create_dir_all(&docker).expect("mkdir");
    std::fs::write(docker.join("config.json"), serde_json::json!({"credsStore": "broken"}).to_string()).expect("write");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let out = run.env("DOCKER_CONFIG", &docker.to_string_lossy()).env("PATH", &path).exec();
    let f = out.expect_error("team/app", "REG009");
    assert!(text(&f["message"]).contains("keychain is locked"), "{f}");

    // AZP_PREFLIGHT_REGISTRY_* variables.
    let out = Run::local(&["--registry", &target])
        .env("AZP_PREFLIGHT_REGISTRY_USERNAME", ALICE.0)
        .env("AZP_PREFLIGHT_REGISTRY_PASSWORD", ALICE.1)
        .canary(ALICE.1)
        .exec();
    assert_eq!(out.code, 0, "{}", out.dump());
}

fn base64_encode(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn set_executable(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut perms = std::fs::metadata(path).expect("metadata").permissions();
    perms.set_mode(0o755);
    std::fs::set_permissions(path, perms).expect("chmod");
}
