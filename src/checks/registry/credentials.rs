//! Where a target's credential comes from: its service connection, the Azure identity (for
//! ACR), `AZP_PREFLIGHT_REGISTRY_USERNAME`/`..._PASSWORD`, the Docker config (`auths`,
//! `credsStore`, `credHelpers`), or nothing (anonymous). Every value read is registered
//! with the redactor at once.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;

use super::helper;
use super::server::{parse_server, Server, ServerOrigin};
use crate::connections::ServiceConnection;
use crate::env::AgentEnv;
use crate::fsread;
use crate::sanitize::sanitize;
use crate::secret::{Redactor, Secret};

/// The username ACR expects with a refresh token.
pub const ACR_REFRESH_USERNAME: &str = "00000000-0000-0000-0000-000000000000";

/// A credential helper gets this long to answer.
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub enum Credential {
    Anonymous,
    /// Username and password (admin user, service principal, repository token, Docker login).
    Basic {
        username: String,
        password: Secret,
    },
    /// A refresh/identity token for the token endpoint (`az acr login --expose-token`, a
    /// Docker identity token).
    RefreshToken {
        token: Secret,
    },
    /// An Azure identity to exchange for an ACR refresh token.
    Entra {
        connection: Box<ServiceConnection>,
    },
    /// The source exists but a value in it is empty: nothing may be sent (REG009).
    Empty {
        fields: Vec<&'static str>,
    },
    /// The source exists but could not be read (a failing credential helper).
    Unreadable {
        detail: String,
    },
}

/// A credential and a description of where it came from (never its value).
#[derive(Debug, Clone)]
pub struct Sourced {
    pub credential: Credential,
    /// `service connection 1dfd... (contoso.azurecr.io)`, `Docker config /home/u/.docker/config.json`, ...
    pub source: String,
    /// The connection it came from, for its settings page and app id.
    pub connection: Option<Box<ServiceConnection>>,
}

impl Sourced {
    pub fn anonymous() -> Self {
        Sourced { credential: Credential::Anonymous, source: "no credential (anonymous)".into(), connection: None }
    }
}

pub fn is_acr_connection(conn: &ServiceConnection) -> bool {
    conn.data("REGISTRYTYPE").is_some_and(|t| t.eq_ignore_ascii_case("ACR"))
}

/// The server a `containerRegistry` connection points at, as written, and how to parse it.
pub fn connection_server(conn: &ServiceConnection) -> (String, ServerOrigin) {
    if is_acr_connection(conn) {
        (conn.params.get("LOGINSERVER").cloned().unwrap_or_default(), ServerOrigin::LoginServer)
    } else {
        let raw = conn.params.get("REGISTRY").cloned().filter(|r| !r.trim().is_empty()).or_else(|| conn.url.clone());
        (raw.unwrap_or_default(), ServerOrigin::RegistryUrl)
    }
}

/// The credential a `containerRegistry` connection carries.
pub fn from_connection(conn: &ServiceConnection) -> Sourced {
    let source = format!("service connection {}", conn.label());
    let credential = if is_acr_connection(conn) {
        let scheme = if conn.scheme.trim().is_empty() {
            conn.param("SCHEME").unwrap_or("ServicePrincipal").to_string()
        } else {
            conn.scheme.clone()
        };
        match scheme.to_ascii_lowercase().as_str() {
            "workloadidentityfederation" | "managedserviceidentity" => {
                Credential::Entra { connection: Box::new(conn.clone()) }
            }
            _ => basic_or_empty(
                conn.param("SERVICEPRINCIPALID"),
                conn.secret("SERVICEPRINCIPALKEY"),
                ("serviceprincipalid", "serviceprincipalkey"),
            ),
        }
    } else {
        basic_or_empty(conn.param("USERNAME"), conn.secret("PASSWORD"), ("username", "password"))
    };
    Sourced { credential, source, connection: Some(Box::new(conn.clone())) }
}

fn basic_or_empty(user: Option<&str>, password: Option<&Secret>, names: (&'static str, &'static str)) -> Credential {
    let mut fields = Vec::new();
    if user.is_none_or(|u| u.trim().is_empty()) {
        fields.push(names.0);
    }
    if password.is_none_or(Secret::is_empty) {
        fields.push(names.1);
    }
    match (user, password) {
        (Some(u), Some(p)) if fields.is_empty() => {
            Credential::Basic { username: u.trim().to_string(), password: p.clone() }
        }
        _ => Credential::Empty { fields },
    }
}

/// `AZP_PREFLIGHT_REGISTRY_USERNAME` / `..._PASSWORD`, when either is set.
pub fn from_variables(env: &AgentEnv, redactor: &Redactor) -> Option<Sourced> {
    let user = env.get("AZP_PREFLIGHT_REGISTRY_USERNAME");
    let pass = env.get("AZP_PREFLIGHT_REGISTRY_PASSWORD").map(|p| redactor.secret(p));
    if user.is_none() && pass.is_none() {
        return None;
    }
    let credential =
        basic_or_empty(user, pass.as_ref(), ("AZP_PREFLIGHT_REGISTRY_USERNAME", "AZP_PREFLIGHT_REGISTRY_PASSWORD"));
    Some(Sourced {
        credential,
        source: "AZP_PREFLIGHT_REGISTRY_USERNAME/AZP_PREFLIGHT_REGISTRY_PASSWORD".into(),
        connection: None,
    })
}

/// The Docker client configuration, parsed once per run.
#[derive(Debug, Clone, Default)]
pub struct DockerConfig {
    pub path: Option<PathBuf>,
    /// Set when the file exists but cannot be used.
    pub error: Option<String>,
    auths: Vec<(String, AuthEntry)>,
    creds_store: Option<String>,
    cred_helpers: BTreeMap<String, String>,
    /// The environment helpers run with (the run's, not this process's).
    helper_env: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default)]
struct AuthEntry {
    username: Option<String>,
    password: Option<Secret>,
    identity_token: Option<Secret>,
}

impl DockerConfig {
    /// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json` (`USERPROFILE` on Windows).
    pub fn load(env: &AgentEnv, redactor: &Redactor) -> DockerConfig {
        let (path, named_by) = match env.get("DOCKER_CONFIG") {
            Some(dir) => (PathBuf::from(dir).join("config.json"), "DOCKER_CONFIG"),
            None => match env
                .get("HOME")
                .map(|h| (h, "HOME"))
                .or_else(|| env.get("USERPROFILE").map(|h| (h, "USERPROFILE")))
            {
                Some((home, var)) => (PathBuf::from(home).join(".docker").join("config.json"), var),
                None => return DockerConfig::default(),
            },
        };
        let helper_env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        // Regular file only, capped: `/dev/zero` or a FIFO named as the config must cost
        // nothing and block nothing.
        let text = match fsread::read_to_string(&path, fsread::limits::DOCKER_CONFIG) {
            Ok(t) => t,
            Err(e) if e.is_not_found() => return DockerConfig { helper_env, ..Default::default() },
            Err(e) => {
                return DockerConfig {
                    error: Some(format!(
                        "`{}` (from {named_by}) cannot be read: expected the Docker client's JSON config as a regular \
                         file ({e})",
                        path.display()
                    )),
                    path: Some(path),
                    helper_env,
                    ..Default::default()
                }
            }
        };
        let mut config = DockerConfig { path: Some(path.clone()), helper_env, ..Default::default() };
        let value: serde_json::Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                config.error = Some(format!("{} is not valid JSON ({e})", path.display()));
                return config;
            }
        };
        config.creds_store =
            value.get("credsStore").and_then(|v| v.as_str()).filter(|s| !s.is_empty()).map(str::to_string);
        if let Some(helpers) = value.get("credHelpers").and_then(|v| v.as_object()) {
            for (server, helper) in helpers {
                if let Some(h) = helper.as_str().filter(|h| !h.is_empty()) {
                    config.cred_helpers.insert(server.clone(), h.to_string());
                }
            }
        }
        if let Some(auths) = value.get("auths").and_then(|v| v.as_object()) {
            for (server, entry) in auths {
                let mut parsed = AuthEntry::default();
                if let Some(auth) = entry.get("auth").and_then(|v| v.as_str()).filter(|a| !a.is_empty()) {
                    redactor.register(auth);
                    if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(auth.trim()) {
                        let decoded = String::from_utf8_lossy(&bytes).to_string();
                        if let Some((u, p)) = decoded.split_once(':') {
                            parsed.username = Some(u.to_string());
                            parsed.password = Some(redactor.secret(p));
                        }
                    }
                }
                if let Some(u) = entry.get("username").and_then(|v| v.as_str()) {
                    parsed.username.get_or_insert_with(|| u.to_string());
                }
                if let Some(p) = entry.get("password").and_then(|v| v.as_str()).filter(|p| !p.is_empty()) {
                    parsed.password.get_or_insert_with(|| redactor.secret(p));
                }
                if let (Some(u), Some(p)) = (&parsed.username, &parsed.password) {
                    // The `auth` blob in each base64 form, however it was written here.
                    redactor.register_basic(u, p.expose());
                }
                if let Some(t) = entry.get("identitytoken").and_then(|v| v.as_str()).filter(|t| !t.is_empty()) {
                    parsed.identity_token = Some(redactor.secret(t));
                }
                config.auths.push((server.clone(), parsed));
            }
        }
        config
    }

    /// The credential this config holds for `server`, if any.
    pub async fn lookup(&self, server: &Server, redactor: &Redactor) -> Option<Sourced> {
        let path = self.path.as_ref()?;
        let source = format!("Docker config {}", path.display());
        if let Some(error) = &self.error {
            return Some(Sourced {
                credential: Credential::Unreadable { detail: error.clone() },
                source,
                connection: None,
            });
        }
        let matches = |key: &str| key_server(key).is_some_and(|s| s.same_registry(server));
        if let Some((key, helper)) = self.cred_helpers.iter().find(|(k, _)| matches(k)) {
            return self.run_helper(helper, key, &source, redactor).await;
        }
        if let Some(store) = &self.creds_store {
            let key = self
                .auths
                .iter()
                .find(|(k, _)| matches(k))
                .map(|(k, _)| k.clone())
                .unwrap_or_else(|| helper_key(server));
            if let Some(found) = self.run_helper(store, &key, &source, redactor).await {
                return Some(found);
            }
        }
        let (key, entry) = self.auths.iter().find(|(k, _)| matches(k))?;
        let source = format!("{source} (auths entry `{}`)", sanitize(key));
        let credential = if let Some(token) = &entry.identity_token {
            Credential::RefreshToken { token: token.clone() }
        } else if entry.username.is_none() && entry.password.is_none() {
            // `{}` placeholders are what `docker login` leaves when a store holds the secret.
            return None;
        } else {
            basic_or_empty(entry.username.as_deref(), entry.password.as_ref(), ("username", "password"))
        };
        Some(Sourced { credential, source, connection: None })
    }

    /// `docker-credential-<helper> get`, server URL on stdin, JSON on stdout.
    async fn run_helper(&self, helper: &str, key: &str, source: &str, redactor: &Redactor) -> Option<Sourced> {
        let shown = crate::sanitize::sanitize(helper);
        let program = format!("docker-credential-{shown}");
        let source = format!("{source} (credential helper {program})");
        let unreadable = |detail: String| {
            Some(Sourced { credential: Credential::Unreadable { detail }, source: source.clone(), connection: None })
        };
        // A helper is a program found on PATH by its suffix. A name with a path separator or
        // anything but a plain word would make the config file choose an arbitrary program.
        if helper.is_empty() || !helper.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
            return unreadable(format!(
                "the credential helper name `{shown}` is not a plain name (letters, digits, `-`, `_`, `.`); \
                 nothing was run"
            ));
        }
        let mut command = tokio::process::Command::new(&program);
        command.arg("get").env_clear().envs(self.helper_env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let limits = helper::Limits { time: HELPER_TIMEOUT, ..helper::Limits::default() };
        let output = match helper::run(command, key.as_bytes(), limits).await {
            Ok(o) => o,
            Err(helper::Failure::Spawn(e)) => {
                return unreadable(format!("`{program}` cannot be started ({e}); is it installed and on PATH?"))
            }
            Err(helper::Failure::Timeout(limit)) => {
                return unreadable(format!(
                    "`{program} get` did not answer within {} s and was stopped",
                    limit.as_secs()
                ))
            }
            Err(helper::Failure::Flood { stream, limit }) => {
                return unreadable(format!(
                    "`{program} get` printed more than {} KiB on {stream} (a credential answer is a small JSON \
                     document) and was stopped",
                    limit >> 10
                ))
            }
            Err(helper::Failure::Io(e)) => return unreadable(format!("`{program} get` failed ({e})")),
        };
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        if !output.status.success() {
            let said = format!("{} {}", stdout.trim(), String::from_utf8_lossy(&output.stderr).trim());
            // The helper has nothing for this server: Docker goes on without a credential.
            if said.to_ascii_lowercase().contains("credentials not found") {
                return None;
            }
            return unreadable(format!(
                "`{program} get` exited with {}: {}",
                output.status.code().map(|c| c.to_string()).unwrap_or_else(|| "a signal".into()),
                redactor.excerpt(said.trim(), 200)
            ));
        }
        #[derive(serde::Deserialize)]
        struct HelperAnswer {
            #[serde(rename = "Username", default)]
            username: String,
            #[serde(rename = "Secret", default)]
            secret: String,
        }
        let answer: HelperAnswer = match serde_json::from_str(&stdout) {
            Ok(a) => a,
            Err(_) => return unreadable(format!("`{program} get` did not print the expected JSON")),
        };
        let secret = redactor.secret(answer.secret);
        redactor.register_basic(&answer.username, secret.expose());
        let credential = if answer.username == "<token>" {
            Credential::RefreshToken { token: secret }
        } else {
            basic_or_empty(Some(&answer.username), Some(&secret), ("Username", "Secret"))
        };
        Some(Sourced { credential, source, connection: None })
    }
}

/// Docker's config keys are URLs or hosts (`https://index.docker.io/v1/`, `contoso.azurecr.io`).
fn key_server(key: &str) -> Option<Server> {
    let without_scheme = key.trim().trim_start_matches("https://").trim_start_matches("http://");
    let host = without_scheme.split('/').next().unwrap_or("");
    parse_server(&host.to_ascii_lowercase(), ServerOrigin::Line).ok()
}

/// What Docker passes to a credential store for a server it has no entry for.
fn helper_key(server: &Server) -> String {
    if server.is_docker_hub() {
        "https://index.docker.io/v1/".into()
    } else {
        server.authority.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connections::{ConnectionKind, Origin};

    fn conn(
        scheme: &str,
        params: &[(&str, &str)],
        secrets: &[(&str, &str)],
        data: &[(&str, &str)],
    ) -> ServiceConnection {
        ServiceConnection {
            id: "c1".into(),
            kind: ConnectionKind::DockerRegistry,
            origin: Origin::Pipeline,
            url: None,
            scheme: scheme.into(),
            params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            secrets: secrets.iter().map(|(k, v)| (k.to_string(), Secret::new(*v))).collect(),
            data: data.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn connection_credentials_and_empty_fields() {
        let generic = conn(
            "UsernamePassword",
            &[("REGISTRY", "https://index.docker.io/v1/"), ("USERNAME", "")],
            &[("PASSWORD", "pw-canary")],
            &[],
        );
        assert_eq!(connection_server(&generic), ("https://index.docker.io/v1/".into(), ServerOrigin::RegistryUrl));
        match from_connection(&generic).credential {
            Credential::Empty { fields } => assert_eq!(fields, ["username"]),
            other => panic!("{other:?}"),
        }
        let acr = conn(
            "ServicePrincipal",
            &[("LOGINSERVER", "contoso.azurecr.io"), ("SERVICEPRINCIPALID", "app-1")],
            &[("SERVICEPRINCIPALKEY", "sp-canary")],
            &[("REGISTRYTYPE", "ACR")],
        );
        assert_eq!(connection_server(&acr).1, ServerOrigin::LoginServer);
        assert!(
            matches!(from_connection(&acr).credential, Credential::Basic { ref username, .. } if username == "app-1")
        );
        let wif = conn(
            "WorkloadIdentityFederation",
            &[("LOGINSERVER", "contoso.azurecr.io")],
            &[],
            &[("REGISTRYTYPE", "acr")],
        );
        assert!(matches!(from_connection(&wif).credential, Credential::Entra { .. }));
    }

    #[tokio::test]
    async fn docker_config_auths_helpers_and_placeholders() {
        let dir = tempfile::tempdir().unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:docker-canary");
        let config = serde_json::json!({
            "auths": {
                "https://index.docker.io/v1/": {"auth": auth},
                "contoso.azurecr.io": {"identitytoken": "refresh-canary"},
                "stored.example.com": {}
            },
            "credHelpers": {
                "helped.example.com": "nonexistent-helper-for-test",
                "pathed.example.com": "x/../../tmp/evil"
            }
        });
        std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
        let env = AgentEnv::from_pairs([("DOCKER_CONFIG", dir.path().to_str().unwrap()), ("PATH", "/nonexistent")]);
        let redactor = Redactor::default();
        let docker = DockerConfig::load(&env, &redactor);
        assert_eq!(redactor.redact("docker-canary refresh-canary"), "*** ***");
        let hub = parse_server("docker.io", ServerOrigin::Line).unwrap();
        match docker.lookup(&hub, &redactor).await.unwrap().credential {
            Credential::Basic { username, password } => {
                assert_eq!((username.as_str(), password.expose()), ("alice", "docker-canary"))
            }
            other => panic!("{other:?}"),
        }
        let acr = parse_server("contoso.azurecr.io", ServerOrigin::Line).unwrap();
        assert!(matches!(docker.lookup(&acr, &redactor).await.unwrap().credential, Credential::RefreshToken { .. }));
        let stored = parse_server("stored.example.com", ServerOrigin::Line).unwrap();
        assert!(docker.lookup(&stored, &redactor).await.is_none());
        let helped = parse_server("helped.example.com", ServerOrigin::Line).unwrap();
        match docker.lookup(&helped, &redactor).await.unwrap().credential {
            Credential::Unreadable { detail } => {
                assert!(detail.contains("docker-credential-nonexistent-helper-for-test"), "{detail}")
            }
            other => panic!("{other:?}"),
        }
        let pathed = parse_server("pathed.example.com", ServerOrigin::Line).unwrap();
        match docker.lookup(&pathed, &redactor).await.unwrap().credential {
            Credential::Unreadable { detail } => assert!(detail.contains("not a plain name"), "{detail}"),
            other => panic!("{other:?}"),
        }
        let other = parse_server("other.example.com", ServerOrigin::Line).unwrap();
        assert!(docker.lookup(&other, &redactor).await.is_none());
    }
}
