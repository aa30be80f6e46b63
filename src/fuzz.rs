//! Fuzz entry points: one function per parser that reads outside input (inputs, environment,
//! pipeline files, advisory files, what servers answer). Each takes arbitrary bytes, runs the
//! parser the way the tool does, and panics when a property the rest of the code relies on
//! does not hold, so a harness only has to call it and report a panic.
//!
//! `tests/fuzz.rs` drives these with proptest on the stable toolchain (a short run in CI); a
//! cargo-fuzz or AFL harness can call the same functions (`docs/fuzzing.md`). Not part of the
//! tool's interface.

use std::borrow::Cow;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::azure::resource_id::ResourceId;
use crate::azure::{certificate, entra, graph, jwt};
use crate::check::Context;
use crate::checks::registry::server::{self, ServerOrigin};
use crate::checks::registry::{answer, chain, credentials, platform};
use crate::checks::tasks::advice::Edit;
use crate::checks::tasks::advisories::lint::{self, Source};
use crate::checks::tasks::advisories::range::VersionRange;
use crate::checks::tasks::advisories::Advisory;
use crate::checks::tasks::reference::{self, TaskVersion};
use crate::checks::tasks::{fix, scan, templates};
use crate::connections::{self, ConnectionKind};
use crate::env::AgentEnv;
use crate::net::{Endpoints, Response};
use crate::registry_target::{self, Reference, RegistryTarget};
use crate::secret::Redactor;
use crate::{deploy_target, settings};

fn text(data: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// What may never reach a log line: an Azure Pipelines logging command.
fn assert_inert(what: &str, out: &str) {
    assert!(!out.contains("##vso[") && !out.contains("##["), "{what} can become a logging command: {out:?}");
}

/// The `user:password@` written in a server, if any: up to the last `@` before the path,
/// after a scheme that has none (and not just `@` or `***@`, the masked form).
fn userinfo(server: &str) -> Option<&str> {
    let host_start = server.find("://").map_or(0, |i| i + 3);
    let end = server[host_start..].find('/').map_or(server.len(), |i| host_start + i);
    let at = server[..end].rfind('@')?;
    let start = if at < host_start || server[..host_start].contains('@') { 0 } else { host_start };
    (!server[start..at].chars().all(|c| c == '*')).then(|| &server[start..=at])
}

/// The `registries` input and `--registry`: every line through the grammar.
pub fn registry_target(data: &[u8]) {
    let text = text(data);
    for line in text.lines() {
        match registry_target::parse_line(line) {
            Ok(None) => assert!(line.split('#').next().unwrap_or("").trim().is_empty(), "{line:?} read as blank"),
            Ok(Some(t)) => check_registry_target(&t),
            Err(e) => assert!(!e.is_empty()),
        }
    }
}

fn check_registry_target(t: &RegistryTarget) {
    assert!(!t.server.is_empty() && !t.server.contains(char::is_whitespace) && !t.server.contains('#'));
    let shown = t.display_name();
    if let Some(user) = userinfo(&t.server) {
        assert!(!shown.contains(user), "{shown:?} repeats the credentials {user:?}");
    }
    // What the parser kept is enough to write the line again.
    let mut line = t.server.clone();
    if let Some(repo) = &t.repository {
        line.push('/');
        line.push_str(repo);
    }
    match &t.reference {
        Some(Reference::Tag(tag)) => line.push_str(&format!(":{tag}")),
        Some(Reference::Digest(d)) => line.push_str(&format!("@{d}")),
        None => {}
    }
    line.push(' ');
    line.push_str(t.intent.as_str());
    if let Some(p) = &t.platform {
        line.push_str(&format!(" platform={p}"));
    }
    assert_eq!(registry_target::parse_line(&line).as_ref(), Ok(&Some(t.clone())), "{line:?}");
    for origin in [ServerOrigin::Line, ServerOrigin::LoginServer, ServerOrigin::RegistryUrl] {
        check_server(&t.server, origin);
    }
    if let Some(repo) = &t.repository {
        let _ = server::check_repository(repo);
    }
}

/// A login server as written (a target, a connection's `loginServer` or registry URL).
fn check_server(raw: &str, origin: ServerOrigin) {
    match server::parse_server(raw, origin) {
        Ok(s) => {
            assert!(!s.host.is_empty() && !s.authority.contains('@'));
            let _ = (s.base_url(), s.uses_tls(), s.is_acr_host(), s.is_ip_literal(), s.port_or_default());
            let _ = (s.acr_name(), s.api_repository("team/app"), s.same_registry(&s));
            let _ = server::typo_of_known_domain(&s.host);
        }
        Err(m) => {
            // Credentials are refused before anything else, without repeating the value.
            if userinfo(raw).is_some() {
                assert_eq!(m.problem, "userinfo", "{raw:?}");
                assert!(!m.explanation.contains(raw) && !m.suggestion.unwrap_or_default().contains('@'));
            }
        }
    }
}

/// Login servers, repository names and the typo guard on their own.
pub fn registry_server(data: &[u8]) {
    let text = text(data);
    for origin in [ServerOrigin::Line, ServerOrigin::LoginServer, ServerOrigin::RegistryUrl] {
        check_server(&text, origin);
    }
    let _ = server::check_repository(&text);
    let _ = server::typo_of_known_domain(&text);
    // The tag list a registry answers, against the tag the target wants.
    let mut parts = text.split('\n');
    let wanted = parts.next().unwrap_or("");
    let tags: Vec<String> = parts.map(str::to_string).collect();
    let near = crate::checks::registry::tags::closest_tags(wanted, &tags);
    assert!(near.len() <= 5);
    for t in &near {
        assert_inert("a suggested tag", t);
    }
}

/// The `deployTargets` input and `--deploy-target`.
pub fn deploy_target(data: &[u8]) {
    let text = text(data);
    for line in text.lines() {
        if let Ok(Some(t)) = deploy_target::parse_line(line) {
            let shown = t.display_name();
            if let Some(user) = userinfo(&t.image.server) {
                assert!(!shown.contains(user), "{shown:?} repeats the credentials {user:?}");
            }
            let _ = (t.image.host(), t.image.to_string());
            for id in std::iter::once(&t.resource).chain(&t.registry) {
                assert_eq!(ResourceId::parse(&id.to_path()).as_ref(), Some(id));
            }
            check_server(&t.image.server, ServerOrigin::Line);
        }
        for word in line.split_whitespace() {
            if let Some(id) = ResourceId::parse(word.split_once('=').map_or(word, |(_, v)| v)) {
                assert!(!id.segments.is_empty());
                assert_eq!(ResourceId::parse(&id.to_path()), Some(id));
            }
        }
    }
}

/// A pipeline YAML file: the scanner, the task references and includes it finds, and `fix`
/// rewriting every value the scanner says it may.
pub fn pipeline_yaml(data: &[u8]) {
    let text = text(data);
    let lines = scan::Lines::new(&text);
    let line_count = scan::line_starts(&text).len();
    // Characters per line, counted once per line (a long line may hold many references).
    let mut widths = std::collections::HashMap::new();
    let mut chars_in = |line: u32| *widths.entry(line).or_insert_with(|| lines.line(line).chars().count() as u32);
    // The fast reader of plain block YAML must read every file it accepts exactly as the
    // general parser does, positions included.
    if let Err(why) = scan::fast_reader_agrees(&text) {
        panic!("the fast reader and the parser disagree: {why}");
    }
    let scanned = scan::scan(&text);
    let mut edits = Vec::new();
    for r in &scanned.references {
        assert!(r.line >= 1 && r.line as usize <= line_count, "line {} of {line_count}", r.line);
        assert!(r.column >= 1 && r.column <= chars_in(r.line) + 1, "column {} on line {}", r.column, r.line);
        assert!(r.step_line >= 1 && r.step_line as usize <= line_count);
        if let Some(span) = &r.edit_span {
            assert_eq!(text.get(span.clone()), Some(scanned.value(r)), "edit span {span:?}");
            edits.push(Edit {
                path: "fuzz.yml".into(),
                display: "fuzz.yml".into(),
                line: r.line,
                span: span.clone(),
                old_value: scanned.value(r).to_string(),
                new_value: "Fuzz@1.2.3".into(),
                comment: Some(format!("{} fuzz", crate::checks::tasks::advice::PIN_MARKER)),
            });
        }
        let _ = reference::parse(scanned.value(r));
    }
    for inc in &scanned.includes {
        assert!(inc.line >= 1 && inc.line as usize <= line_count);
        assert!(inc.column >= 1 && inc.column <= chars_in(inc.line) + 1);
        let root = Path::new("/nonexistent-azp-preflight-fuzz");
        // Resolution is by spelling only: nothing is looked up on disk.
        let _ = templates::resolve_include_with(&inc.value, &root.join("azure-pipelines.yml"), root, &|_| false);
    }
    for problem in &scanned.problems {
        match problem {
            scan::Problem::Syntax { line, .. } => assert!(*line as usize <= line_count + 1),
            scan::Problem::Handlebars { line, snippet, .. } => {
                assert!(*line >= 1 && *line as usize <= line_count && snippet.chars().count() <= 60)
            }
        }
    }
    // Spans never overlap (each is one scalar), so every edit applies and no line is added.
    let refs: Vec<&Edit> = edits.iter().collect();
    let (fixed, applied) = fix::apply(&text, &refs);
    assert_eq!(applied, edits.len());
    assert_eq!(scan::line_starts(&fixed).len(), line_count, "fix changed the lines: {fixed:?}");
    // Only values (and the comments after them) change: every step is still there.
    if scanned.problems.is_empty() {
        assert_eq!(scan::scan(&fixed).references.len(), scanned.references.len(), "fix lost a step: {fixed:?}");
    }
}

/// One advisory file (`advisoryFile`, `--advisories`, `advisories lint`).
pub fn advisory_toml(data: &[u8]) {
    let text = text(data);
    if let Ok(a) = Advisory::parse(&text, "fuzz") {
        for r in &a.affected {
            assert_eq!(VersionRange::parse(&r.to_string()).as_ref(), Ok(r));
        }
        assert!(!a.pinnable || !a.affected.is_empty());
    }
    for embedded in [false, true] {
        let sources = [
            Source { file: "extra/FUZZ-ADV-0001.toml".into(), text: &text, embedded },
            Source { file: "extra/second.toml".into(), text: &text, embedded: false },
        ];
        let (parsed, problems) = lint::lint(&sources);
        // The same file twice among the extra files is a duplicate id.
        if parsed.len() == 2 && !embedded {
            assert!(problems.iter().any(|p| p.message.starts_with("duplicate id")), "{problems:?}");
        }
    }
}

/// Versions and ranges as advisories and `task:` values write them.
pub fn versions(data: &[u8]) {
    let text = text(data);
    if let Ok(r) = VersionRange::parse(&text) {
        assert_eq!(VersionRange::parse(&r.to_string()), Ok(r));
        assert_eq!(r.contains(r.lower.version), r.lower.inclusive);
        assert!(!r.entirely_above(r.lower.version) || !r.lower.inclusive);
    }
    if let Some(v) = TaskVersion::parse(&text) {
        assert_eq!(TaskVersion::parse(&v.to_string()), Some(v));
    }
    if let reference::Parsed::Ok(r) = reference::parse(&text) {
        assert!(!r.name.is_empty() && !r.version_text.is_empty());
    }
    let (a, b) = text.split_once(' ').unwrap_or((&text, "1.0"));
    let forward = reference::compare_dotted(a, b);
    assert_eq!(forward.map(std::cmp::Ordering::reverse), reference::compare_dotted(b, a));
}

fn response(status: u16, headers: &[(&str, &[u8])], body: &[u8]) -> Response {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value)) {
            map.append(n, v);
        }
    }
    Response {
        status,
        url: url::Url::parse("https://registry.fuzz.invalid/v2/").expect("a fixed URL parses"),
        headers: map,
        body: body.to_vec(),
        retries: 0,
        redactor: crate::secret::Redactor::default(),
    }
}

/// `WWW-Authenticate` challenges, and the other headers read from a registry's answer
/// (`Retry-After`, `Date`, correlation ids).
pub fn www_authenticate(data: &[u8]) {
    let text = text(data);
    let lower = text.to_ascii_lowercase();
    let challenges = answer::parse_challenges(&text);
    assert!(challenges.len() <= text.len());
    for c in &challenges {
        assert!(!c.scheme.is_empty() && lower.contains(&c.scheme), "scheme {:?}", c.scheme);
        for (key, value) in &c.params {
            assert!(!key.is_empty() && lower.contains(key.as_str()), "param {key:?}");
            // A value is the input's own characters, quotes and escapes removed.
            let mut rest = text.chars();
            assert!(value.chars().all(|v| rest.any(|c| c == v)), "value {value:?} is not from the input");
        }
    }
    let headers: [(&str, &[u8]); 4] =
        [("www-authenticate", data), ("retry-after", data), ("date", data), ("x-ms-request-id", data)];
    let resp = response(401, &headers, b"");
    let _ = answer::challenges(&resp);
    if let Some(error) = answer::challenge_error(&resp) {
        assert_inert("a challenge's error", &error);
    }
    if let Some(wait) = answer::retry_after(&resp) {
        assert_inert("Retry-After", &wait);
        assert!(wait.chars().count() <= 41);
    }
    if let Some((_, id)) = answer::correlation(&resp) {
        assert_inert("a correlation id", &id);
    }
    let _ = httpdate::parse_http_date(&text);
}

/// JWT claims: the federated token's and the registry token's `access`.
pub fn jwt_claims(data: &[u8]) {
    let text = text(data);
    let claims = jwt::claims(&text);
    let granted = chain::granted_actions(&text, "team/app");
    assert_eq!(claims.as_ref().is_some_and(|c| c.get("access").is_some_and(|a| a.is_array())), granted.is_some());
}

/// A context for the parsers that take one, with a fresh redactor each time (the rest is
/// made once: building the HTTP client loads the trust store).
fn context() -> Context {
    static SHARED: OnceLock<Arc<Context>> = OnceLock::new();
    let shared = SHARED.get_or_init(|| {
        let env = AgentEnv::default();
        let redactor = Redactor::default();
        let settings = settings::Settings::from_args(
            &crate::cli::RunArgs::default(),
            &env,
            &redactor,
            std::path::PathBuf::from("."),
        )
        .expect("default settings are valid");
        let endpoints = Endpoints::from_env(&env).expect("default endpoints are valid");
        let http = crate::net::HttpClient::new(crate::net::http::HttpSettings::default()).expect("client builds");
        Arc::new(Context::new(settings, env, endpoints, http, redactor))
    });
    Context::new(
        shared.settings.clone(),
        shared.env.clone(),
        shared.endpoints.clone(),
        shared.http.clone(),
        Redactor::default(),
    )
}

/// JSON answers: Entra token and error bodies, Graph credentials, ARM and registry error
/// envelopes, manifests and indexes, tag lists. The first byte picks the status.
pub fn json_answers(data: &[u8]) {
    let (status, body) = match data.split_first() {
        Some((b, rest)) => ([200, 400, 401, 403, 404, 429, 500][usize::from(*b) % 7], rest),
        None => (200, data),
    };
    let resp = response(status, &[("content-type", b"application/json")], body);
    let ctx = context();
    match entra::parse_token_response(&ctx.services(), &resp) {
        Ok(token) => {
            assert!(resp.is_success());
            let value = token.token.expose().trim();
            assert!(value.is_empty() || ctx.redactor.values().iter().any(|v| v == value), "token not registered");
        }
        Err(e) => assert_inert("a token error", &e.to_string()),
    }
    for object in [graph::GraphObject::Application, graph::GraphObject::ServicePrincipal] {
        match graph::parse(object, &resp) {
            Ok(found) => {
                for key in &found.keys {
                    let _ = (key.matches(&[0; 20], &[0; 32]), key.is_client_credential());
                }
            }
            Err(e) => assert_inert("a Graph error", &e.to_string()),
        }
    }
    for e in answer::registry_errors(&resp) {
        assert_inert("a registry error", &format!("{}: {}", e.code, e.message));
        assert!(!e.message.contains('\n') && e.message.chars().count() <= 241);
    }
    assert_inert("a quoted answer", &answer::quote(&resp));
    let _ = answer::looks_like_html(&resp);
    if let Some(ip) = answer::denied_client_ip(&text(body)) {
        assert!(ip.parse::<std::net::IpAddr>().is_ok());
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        for offered in platform::index_platforms(&value) {
            let (os, arch, variant) = (&offered.os, &offered.architecture, offered.variant.as_deref());
            assert!(!os.is_empty() && !arch.is_empty());
            let _ = platform::describe(os, arch, variant);
            let _ = platform::normalize(os, arch, variant);
        }
        if let Some(tags) = value.get("tags").and_then(|t| t.as_array()) {
            let tags: Vec<String> = tags.iter().filter_map(|t| t.as_str().map(str::to_string)).collect();
            let _ = crate::checks::registry::tags::closest_tags("latest", &tags);
        }
        // ARM: error codes and resource ids from list pages.
        let _ = value["error"]["code"].as_str();
        for item in value["value"].as_array().into_iter().flatten() {
            if let Some(id) = item["id"].as_str().and_then(ResourceId::parse) {
                assert_eq!(ResourceId::parse(&id.to_path()), Some(id));
            }
        }
    }
}

/// Docker's `config.json` (`auths`, `credsStore`, `credHelpers`), read from a file as the
/// tool does. Credential helpers are never run here.
pub fn docker_config(data: &[u8]) {
    thread_local! {
        static DIR: std::path::PathBuf = {
            let id = format!("{:?}", std::thread::current().id()).replace(|c: char| !c.is_ascii_alphanumeric(), "");
            let dir = std::env::temp_dir().join(format!("azp-preflight-fuzz-{}-{id}", std::process::id()));
            let _ = std::fs::create_dir_all(&dir);
            dir
        };
    }
    DIR.with(|dir| {
        if std::fs::write(dir.join("config.json"), data).is_err() {
            return;
        }
        let env = AgentEnv::from_pairs([("DOCKER_CONFIG", dir.to_string_lossy().into_owned())]);
        let redactor = Redactor::default();
        let config = credentials::DockerConfig::load(&env, &redactor);
        let valid = std::str::from_utf8(data).is_ok_and(|t| serde_json::from_str::<serde_json::Value>(t).is_ok());
        assert_eq!(config.error.is_none(), valid, "{:?}", config.error);
        // Every password the file holds is known to the redactor before anything prints (a
        // `password` next to an `auth` is not used, as with Docker).
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
            for entry in value["auths"].as_object().into_iter().flat_map(|a| a.values()) {
                if let Some(auth) = entry["auth"].as_str().map(str::trim).filter(|a| !a.is_empty()) {
                    assert!(redactor.values().iter().any(|v| v == auth), "auth {auth:?} not registered");
                    continue;
                }
                if let Some(p) = entry["password"].as_str().map(str::trim).filter(|p| !p.is_empty()) {
                    assert!(redactor.values().iter().any(|v| v == p), "password {p:?} not registered");
                }
            }
        }
    });
}

/// Service connections from the agent's `ENDPOINT_*` variables. The first line is the
/// input (comma-separated ids); each later line is `NAME=value`.
pub fn connection_env(data: &[u8]) {
    let text = text(data);
    let mut lines = text.split('\n');
    let input = lines.next().unwrap_or("");
    let pairs: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let env = AgentEnv::from_pairs(pairs);
    let redactor = Redactor::default();
    for kind in [ConnectionKind::AzureRm, ConnectionKind::DockerRegistry] {
        let Ok(conns) = connections::from_input(&env, kind, input, &redactor) else { continue };
        for conn in &conns {
            for (key, secret) in &conn.secrets {
                let value = secret.expose().trim();
                assert!(value.is_empty() || redactor.values().iter().any(|v| v == value), "{key} not registered");
            }
            let _ = (conn.label(), conn.settings_page(&env), credentials::from_connection(conn));
            let (raw, origin) = credentials::connection_server(conn);
            check_server(&raw, origin);
            let _ = entra::Method::of(conn);
            let _ = entra::connection_certificate(conn);
        }
    }
    let _ = crate::net::proxy::ProxyConfig::from_env(&env, &redactor);
    let _ = Endpoints::from_env(&env);
}

/// A certificate connection's PEM (key and certificate chain).
pub fn certificate_pem(data: &[u8]) {
    let _ = certificate::ClientCertificate::from_pem(&text(data));
}
