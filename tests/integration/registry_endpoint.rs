//! `AZP_PREFLIGHT_REGISTRY_ENDPOINTS` against registries that answer like ACR: the challenge
//! names its realm on the login server (`https://contoso.azurecr.io/oauth2/token`), the
//! certificate is for the login server, and the agent reaches it at another address (a
//! private endpoint). Also what REG014 and REG015 may claim from what such a registry says.

use crate::fake_acr::{Attrs, Config, FakeAcr, Fault, Reply, Req, TlsMaterial};
use crate::registry_support::{text, Run};

const LOGIN: &str = "contoso.azurecr.io";
const TOKEN_SERVICE: &str = "auth.contoso.example";
const APP: &str = "11111111-2222-3333-4444-555555555555";
const SP_SECRET: &str = "sp-secret-canary-Zr7~q";
const AZURE: &str = "a1b2c3d4-0000-4000-8000-0000000000a2";
const USER: (&str, &str) = ("ci-bot", "ci-bot-pass-canary-41");

/// Entra ID for the exchange, on its own loopback listener (a separate origin, as
/// login.microsoftonline.com is).
fn entra_id() -> FakeAcr {
    FakeAcr::start(Config::default().entra(SP_SECRET, &[]))
}

/// A registry that takes the Entra token `entra` issued, grants pull, and holds `shop/web`.
fn registry(entra: &FakeAcr) -> Config {
    Config::default()
        .login_server(LOGIN)
        .accept_access_token(&entra.entra_token)
        .entra("", &["pull", "metadata_read"])
        .user(USER.0, USER.1, &["pull", "metadata_read"])
        .with_app("shop/web", Attrs::open(), Attrs::open())
}

fn hosts(reqs: &[Req]) -> Vec<String> {
    reqs.iter().map(|r| r.header("host").unwrap_or("").to_string()).collect()
}

/// Whether a request carried `token` anywhere: a header or the body.
fn carries(r: &Req, token: &str) -> bool {
    r.headers.iter().any(|(_, v)| v.contains(token)) || String::from_utf8_lossy(&r.body).contains(token)
}

/// The exchange through a private-endpoint override, over TLS with the login server's
/// certificate and over a plain-http loopback override: both reach the realm on the login
/// server through the override, with the name in `Host` (and SNI). Baseline: REG006 over TLS
/// (the certificate was checked against the address), REG011 over plain http (the realm was
/// "not on the login server").
#[test]
fn the_exchange_reaches_the_realm_on_the_login_server_through_the_override() {
    let tls = TlsMaterial::for_names(&[LOGIN]);
    for secure in [true, false] {
        let entra = entra_id();
        let acr = if secure { FakeAcr::start_tls(registry(&entra), &tls) } else { FakeAcr::start(registry(&entra)) };
        let scheme = if secure { "https" } else { "http" };
        let run = Run::pipeline(&format!("{LOGIN}/shop/web:1.0 pull platform=linux/amd64"));
        let ca = tls.write_ca(&run.dir());
        let out = run
            .azure_sp(AZURE, APP, SP_SECRET)
            .env("AZURE_AUTHORITY_HOST", &entra.server())
            .env("SSL_CERT_FILE", &ca)
            .env("AZP_PREFLIGHT_REGISTRY_ENDPOINTS", &format!("{LOGIN}={scheme}://{}", acr.httpd.addr))
            .canary(&entra.entra_token)
            .watch(acr.tokens())
            .exec();
        assert_eq!(out.code, 0, "{scheme}: {}", out.dump());
        let target = format!("{LOGIN}/shop/web:1.0");
        let proven = out.proven(&target);
        assert!(proven.iter().any(|p| p.contains("Azure identity")), "{scheme}: {proven:?}");
        assert!(proven.iter().any(|p| p == "linux/amd64 present"), "{scheme}: {proven:?}");
        if secure {
            assert!(proven.iter().any(|p| p.starts_with("reachable over TLS")), "{proven:?}");
        }
        let reqs = acr.requests();
        let exchange = reqs.iter().find(|r| r.path == "/oauth2/exchange").expect("the exchange reached the registry");
        assert_eq!(exchange.form_value("access_token").as_deref(), Some(entra.entra_token.as_str()));
        assert!(reqs.iter().any(|r| r.method == "POST" && r.path == "/oauth2/token"), "{scheme}");
        // Every request named the login server, never the address it was sent to.
        assert!(hosts(&reqs).iter().all(|h| h == LOGIN), "{scheme}: {:?}", hosts(&reqs));
        // Messages keep the registry's name.
        assert!(!out.target(&target).to_string().contains("127.0.0.1"), "{}", out.dump());
    }
}

/// A realm on another host is contacted as named (its own override here, `Host` naming it)
/// with a registry credential, and never receives the Entra token: the exchange stops with
/// REG011 before any token is asked for.
#[test]
fn a_realm_on_another_host_is_contacted_as_named_and_gets_no_entra_token() {
    let tls = TlsMaterial::for_names(&[LOGIN, TOKEN_SERVICE]);
    let entra = entra_id();
    let mut config = registry(&entra);
    config.realm_host = Some(TOKEN_SERVICE.into());
    // One listener stands in for both origins; `Host` tells which one a request was for.
    let acr = FakeAcr::start_tls(config, &tls);
    let endpoints = format!("{LOGIN}=https://{0},{TOKEN_SERVICE}=https://{0}", acr.httpd.addr);
    let line = format!("{LOGIN}/shop/web:1.0 pull");

    let run = Run::pipeline(&line);
    let ca = tls.write_ca(&run.dir());
    let out = run
        .env("SSL_CERT_FILE", &ca)
        .env("AZP_PREFLIGHT_REGISTRY_ENDPOINTS", &endpoints)
        .env("AZP_PREFLIGHT_REGISTRY_USERNAME", USER.0)
        .env("AZP_PREFLIGHT_REGISTRY_PASSWORD", USER.1)
        .canary(USER.1)
        .watch(acr.tokens())
        .exec();
    assert_eq!(out.code, 0, "{}", out.dump());
    let reqs = acr.requests();
    let token = reqs.iter().find(|r| r.path == "/oauth2/token").expect("a token request");
    assert_eq!(token.header("host"), Some(TOKEN_SERVICE), "the realm is asked under its own name");
    assert_eq!(token.basic().map(|(u, _)| u).as_deref(), Some(USER.0));
    assert!(reqs.iter().filter(|r| r.path.starts_with("/v2/")).all(|r| r.header("host") == Some(LOGIN)));

    let entra2 = entra_id();
    let mut config = registry(&entra2);
    config.realm_host = Some(TOKEN_SERVICE.into());
    let acr = FakeAcr::start_tls(config, &tls);
    let endpoints = format!("{LOGIN}=https://{0},{TOKEN_SERVICE}=https://{0}", acr.httpd.addr);
    let run = Run::pipeline(&line);
    let ca = tls.write_ca(&run.dir());
    let out = run
        .azure_sp(AZURE, APP, SP_SECRET)
        .env("AZURE_AUTHORITY_HOST", &entra2.server())
        .env("SSL_CERT_FILE", &ca)
        .env("AZP_PREFLIGHT_REGISTRY_ENDPOINTS", &endpoints)
        .canary(&entra2.entra_token)
        .exec();
    let f = out.expect_error("shop/web:1.0", "REG011");
    assert_eq!(f["data"]["stage"], "realm", "{}", out.dump());
    assert!(text(&f["message"]).contains(TOKEN_SERVICE), "{f}");
    let reqs = acr.requests();
    assert!(!reqs.iter().any(|r| carries(r, &entra2.entra_token)), "the Entra token reached the registry side");
    assert!(!reqs.iter().any(|r| r.path == "/oauth2/exchange" || r.path == "/oauth2/token"));
    assert!(
        !entra2.requests().iter().any(|r| r.path.ends_with("/oauth2/v2.0/token")),
        "no Entra token was even asked for"
    );
}

/// A tag list refused (401, 403) or missing (404) while the manifest answers
/// `MANIFEST_UNKNOWN`: the tag is missing, the repository is not (its attributes were read),
/// and nothing is claimed about the tags. Baseline: "the repository `shop/web` does not
/// exist" for the 404, "The repository has no tags." for 401/403.
#[test]
fn a_missing_tag_behind_an_unreadable_tag_list_is_only_a_missing_tag() {
    let answers = [
        (
            401,
            Reply::json(401, serde_json::json!({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required", "detail": null}]}))
                .with_header("Www-Authenticate", "Bearer realm=\"https://contoso.azurecr.io/oauth2/token\",service=\"contoso.azurecr.io\",error=\"insufficient_scope\""),
        ),
        (403, Reply::json(403, serde_json::json!({"errors": [{"code": "DENIED", "message": "requested access to the resource is denied", "detail": null}]}))),
        (404, Reply::json(404, serde_json::json!({"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known to registry", "detail": null}]}))),
    ];
    for (status, answer) in answers {
        // A loopback lab answering like ACR (realm on its own name, `/acr/v1` attributes).
        let config = Config::default()
            .user(USER.0, USER.1, &["pull", "metadata_read"])
            .with_app("shop/web", Attrs::open(), Attrs::open())
            .fault("/v2/shop/web/tags/list", Fault::Reply(answer));
        let acr = FakeAcr::start(config);
        let s = acr.server();
        let out = Run::pipeline(&format!("{s}/shop/web:1.1 pull\n{s}/shop/web pull"))
            .env("AZP_PREFLIGHT_REGISTRY_USERNAME", USER.0)
            .env("AZP_PREFLIGHT_REGISTRY_PASSWORD", USER.1)
            .canary(USER.1)
            .watch(acr.tokens())
            .exec();
        let f = out.expect_error("shop/web:1.1", "REG014");
        let message = text(&f["message"]);
        assert_eq!(f["data"]["kind"], "tag", "{status}: {message}");
        assert!(message.contains("MANIFEST_UNKNOWN"), "{status}: {message}");
        assert!(!message.contains("does not exist") && !message.contains("has no tags"), "{status}: {message}");
        assert!(
            message.contains(&format!("The tags could not be listed: GET /v2/shop/web/tags/list → HTTP {status}")),
            "{status}: {message}"
        );
        assert!(out.proven("shop/web:1.1").iter().any(|p| p == "repository unlocked"), "{}", out.dump());
        if status == 404 {
            // Without a tag, the list is all there is: not proven, and not called missing.
            assert!(!out.codes("shop/web (pull)").contains(&"REG014".to_string()), "{}", out.dump());
            let unverified = out.target("shop/web (pull)")["unverified"].to_string();
            assert!(unverified.contains("the repository was found, but its tags could not be listed"), "{unverified}");
        }
    }
}

/// REG015 for a Windows image: the remedy's `--platform` lists platforms, not the
/// `(os.version …)` the message shows. Baseline:
/// `--platform linux/amd64,windows/amd64 (os.version 10.0.17763.5936),linux/arm64`.
#[test]
fn the_buildx_remedy_for_a_windows_image_names_platforms_only() {
    let entra = entra_id();
    let acr = FakeAcr::start(registry(&entra).with_windows_tag("shop/web", "win", "10.0.17763.5936"));
    let out = Run::pipeline(&format!("{LOGIN}/shop/web:win pull platform=linux/arm64"))
        .env("AZP_PREFLIGHT_REGISTRY_ENDPOINTS", &format!("{LOGIN}=http://{}", acr.httpd.addr))
        .env("AZP_PREFLIGHT_REGISTRY_USERNAME", USER.0)
        .env("AZP_PREFLIGHT_REGISTRY_PASSWORD", USER.1)
        .canary(USER.1)
        .watch(acr.tokens())
        .exec();
    let f = out.expect_error("shop/web:win", "REG015");
    assert!(text(&f["message"]).contains("windows/amd64 (os.version 10.0.17763.5936)"), "{f}");
    let remedy = text(&f["remedy"]);
    assert!(
        remedy.contains("`docker buildx build --platform linux/amd64,windows/amd64,linux/arm64 --push`"),
        "{remedy}"
    );
}
