//! Service connections as the agent exposes them (`ENDPOINT_*` variables, research A §3),
//! and the local equivalents (`AZURE_*`) for runs outside a pipeline.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::env::AgentEnv;
use crate::fsread;
use crate::input_error::InputError;
use crate::secret::{Redactor, Secret};
use crate::userinfo;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ConnectionKind {
    /// `connectedService:AzureRM` (the `azureSubscription` input).
    AzureRm,
    /// `connectedService:dockerregistry` (the `containerRegistry` input).
    DockerRegistry,
}

impl ConnectionKind {
    pub fn input_name(self) -> &'static str {
        match self {
            ConnectionKind::AzureRm => "azureSubscription",
            ConnectionKind::DockerRegistry => "containerRegistry",
        }
    }
}

/// Where a connection came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A service connection exposed by the agent.
    Pipeline,
    /// Built from `AZURE_*` variables on a laptop.
    Local,
}

#[derive(Debug, Clone)]
pub struct ServiceConnection {
    /// The endpoint GUID as the agent gave it (or `local` for `AZURE_*`).
    pub id: String,
    pub kind: ConnectionKind,
    pub origin: Origin,
    pub url: Option<String>,
    /// `ENDPOINT_AUTH_SCHEME_<id>`: `ServicePrincipal`, `WorkloadIdentityFederation`,
    /// `ManagedServiceIdentity`, `UsernamePassword`, ...
    pub scheme: String,
    /// Non-secret authorization parameters, keys upper-cased (`TENANTID`, `USERNAME`, ...).
    pub params: BTreeMap<String, String>,
    /// Secret authorization parameters (`SERVICEPRINCIPALKEY`, `PASSWORD`, ...).
    pub secrets: BTreeMap<String, Secret>,
    /// `ENDPOINT_DATA_<id>_<KEY>`, keys upper-cased.
    pub data: BTreeMap<String, String>,
}

impl ServiceConnection {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str).filter(|v| !v.trim().is_empty())
    }

    /// A secret parameter; `Some` even when empty, so checks can say "empty" (REG009).
    pub fn secret(&self, key: &str) -> Option<&Secret> {
        self.secrets.get(key)
    }

    pub fn data(&self, key: &str) -> Option<&str> {
        self.data.get(key).map(String::as_str).filter(|v| !v.trim().is_empty())
    }

    /// How reports name the connection: its id plus the subscription or registry it is for.
    pub fn label(&self) -> String {
        let hint =
            self.data("SUBSCRIPTIONNAME").or_else(|| self.param("LOGINSERVER")).or_else(|| self.param("REGISTRY"));
        match hint {
            Some(h) => format!("{} ({h})", self.id),
            None => self.id.clone(),
        }
    }

    /// `{collection}{project}/_settings/adminservices?resourceId={id}`: where to edit it.
    pub fn settings_page(&self, env: &AgentEnv) -> Option<String> {
        if self.origin != Origin::Pipeline {
            return None;
        }
        let collection = env.get("SYSTEM_COLLECTIONURI")?;
        let project = env.get("SYSTEM_TEAMPROJECT")?;
        let sep = if collection.ends_with('/') { "" } else { "/" };
        Some(format!("{collection}{sep}{project}/_settings/adminservices?resourceId={}", self.id))
    }
}

/// Parameter names whose values are secrets. Everything else is safe to print.
fn is_secret_param(key: &str) -> bool {
    const EXACT: &[&str] = &[
        "SERVICEPRINCIPALKEY",
        "SERVICEPRINCIPALCERTIFICATE",
        "PASSWORD",
        "ACCESSTOKEN",
        "APITOKEN",
        "PUBLISHPROFILE",
        "IDTOKEN",
        "CERTIFICATE",
    ];
    EXACT.contains(&key) || key.ends_with("PASSWORD") || key.ends_with("SECRET") || key.ends_with("KEY")
}

/// A parameter as it may be shown: a registry URL written with `user:password@` keeps
/// `***@` in its place (the password becomes a secret; REG001 still sees the `@`).
fn shown_param(name: &str, value: &str, redactor: &Redactor) -> String {
    if matches!(name, "REGISTRY" | "LOGINSERVER" | "URL") {
        userinfo::strip(value, redactor)
    } else {
        value.to_string()
    }
}

/// Reads every connection named by one `connectedService` input (comma-separated GUIDs).
pub fn from_input(
    env: &AgentEnv,
    kind: ConnectionKind,
    value: &str,
    redactor: &Redactor,
) -> Result<Vec<ServiceConnection>, InputError> {
    let mut out = Vec::new();
    for id in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        out.push(read_endpoint(env, kind, id, redactor)?);
    }
    Ok(out)
}

fn read_endpoint(
    env: &AgentEnv,
    kind: ConnectionKind,
    id: &str,
    redactor: &Redactor,
) -> Result<ServiceConnection, InputError> {
    // The agent keeps the GUID's case; find the variables whatever case the user typed.
    let scheme = env.get_any_case(&format!("ENDPOINT_AUTH_SCHEME_{id}"));
    let url = env.get_any_case(&format!("ENDPOINT_URL_{id}"));
    let auth_json = env.get_any_case(&format!("ENDPOINT_AUTH_{id}"));
    if scheme.is_none() && url.is_none() && auth_json.is_none() {
        return Err(InputError::new(
            kind.input_name(),
            id,
            "a service connection this pipeline is authorised to use: the job has no ENDPOINT_* variables for it. \
             Authorise it under Project settings > Service connections > (connection) > Security > Pipeline permissions, \
             or check the connection name",
        ));
    }
    let mut params = BTreeMap::new();
    let mut secrets = BTreeMap::new();
    let param_prefix = format!("ENDPOINT_AUTH_PARAMETER_{id}_").to_ascii_uppercase();
    let data_prefix = format!("ENDPOINT_DATA_{id}_").to_ascii_uppercase();
    let mut data = BTreeMap::new();
    for (key, value) in env.iter() {
        let upper = key.to_ascii_uppercase();
        if let Some(name) = upper.strip_prefix(&param_prefix) {
            if is_secret_param(name) {
                secrets.insert(name.to_string(), redactor.secret(value));
            } else {
                params.insert(name.to_string(), shown_param(name, value, redactor));
            }
        } else if let Some(name) = upper.strip_prefix(&data_prefix) {
            data.insert(name.to_string(), value.to_string());
        }
    }
    // Older agents (and some hand-written test environments) only set the JSON form.
    if let Some(json) = auth_json {
        if let Ok(serde_json::Value::Object(auth)) = serde_json::from_str::<serde_json::Value>(json) {
            if let Some(serde_json::Value::Object(p)) = auth.get("parameters") {
                for (k, v) in p {
                    let name = k.to_ascii_uppercase();
                    let Some(v) = v.as_str() else { continue };
                    if is_secret_param(&name) {
                        secrets.entry(name).or_insert_with(|| redactor.secret(v));
                    } else {
                        let shown = shown_param(&name, v, redactor);
                        params.entry(name).or_insert(shown);
                    }
                }
            }
        }
    }
    let scheme = scheme
        .map(str::to_string)
        .or_else(|| {
            auth_json.and_then(|j| {
                serde_json::from_str::<serde_json::Value>(j).ok()?.get("scheme")?.as_str().map(str::to_string)
            })
        })
        .unwrap_or_default();
    Ok(ServiceConnection {
        id: id.to_string(),
        kind,
        origin: Origin::Pipeline,
        url: url.map(|u| userinfo::strip(u, redactor)),
        scheme,
        params,
        secrets,
        data,
    })
}

/// An Azure identity from the conventional `AZURE_*` variables, for local runs.
/// Certificate and federated-token files are read here so a bad path is an input error.
pub fn local_azure(env: &AgentEnv, redactor: &Redactor) -> Result<Option<ServiceConnection>, InputError> {
    let (Some(client), Some(tenant)) = (env.get("AZURE_CLIENT_ID"), env.get("AZURE_TENANT_ID")) else {
        return Ok(None);
    };
    let mut params = BTreeMap::from([
        ("SERVICEPRINCIPALID".to_string(), client.to_string()),
        ("TENANTID".to_string(), tenant.to_string()),
    ]);
    let mut secrets = BTreeMap::new();
    // Regular files only, capped: `/dev/zero` or a FIFO here must not grow memory or block
    // the run before its deadline has even started.
    let read = |var: &str, path: &str, what: &str, limit: u64| {
        fsread::read_to_string(std::path::Path::new(path), limit)
            .map_err(|e| InputError::new(var, path, &format!("the path of a readable {what} ({e})")))
    };
    let scheme = if let Some(secret) = env.get("AZURE_CLIENT_SECRET") {
        params.insert("AUTHENTICATIONTYPE".into(), "spnKey".into());
        secrets.insert("SERVICEPRINCIPALKEY".into(), redactor.secret(secret));
        "ServicePrincipal"
    } else if let Some(path) = env.get("AZURE_CLIENT_CERTIFICATE_PATH") {
        params.insert("AUTHENTICATIONTYPE".into(), "spnCertificate".into());
        secrets.insert(
            "SERVICEPRINCIPALCERTIFICATE".into(),
            redactor.secret(read(
                "AZURE_CLIENT_CERTIFICATE_PATH",
                path,
                "PEM file holding the certificate and its private key",
                fsread::limits::CERTIFICATE,
            )?),
        );
        "ServicePrincipal"
    } else if let Some(path) = env.get("AZURE_FEDERATED_TOKEN_FILE") {
        let token = read(
            "AZURE_FEDERATED_TOKEN_FILE",
            path,
            "file holding one federated ID token (a JWT)",
            fsread::limits::TOKEN_FILE,
        )?;
        secrets.insert("IDTOKEN".into(), redactor.secret(token.trim()));
        "WorkloadIdentityFederation"
    } else {
        "ManagedServiceIdentity"
    };
    Ok(Some(ServiceConnection {
        id: "local".into(),
        kind: ConnectionKind::AzureRm,
        origin: Origin::Local,
        url: None,
        scheme: scheme.into(),
        params,
        secrets,
        data: BTreeMap::new(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "1dfdea68-9549-409e-abee-c5da69cfec5f";

    #[test]
    fn reads_parameters_secrets_and_data_and_registers_secrets() {
        let env = AgentEnv::from_pairs([
            (format!("ENDPOINT_URL_{ID}"), "https://management.azure.com/".to_string()),
            (format!("ENDPOINT_AUTH_SCHEME_{ID}"), "ServicePrincipal".to_string()),
            (format!("ENDPOINT_AUTH_PARAMETER_{ID}_SERVICEPRINCIPALID"), "app-1".to_string()),
            (format!("ENDPOINT_AUTH_PARAMETER_{ID}_SERVICEPRINCIPALKEY"), "canary-secret-value".to_string()),
            (format!("ENDPOINT_DATA_{ID}_SUBSCRIPTIONNAME"), "Contoso Prod".to_string()),
        ]);
        let r = Redactor::default();
        let conns = from_input(&env, ConnectionKind::AzureRm, &format!(" {ID} "), &r).unwrap();
        let c = &conns[0];
        assert_eq!((c.scheme.as_str(), c.param("SERVICEPRINCIPALID")), ("ServicePrincipal", Some("app-1")));
        assert_eq!(c.secret("SERVICEPRINCIPALKEY").unwrap().expose(), "canary-secret-value");
        assert!(c.param("SERVICEPRINCIPALKEY").is_none());
        assert_eq!(c.label(), format!("{ID} (Contoso Prod)"));
        assert_eq!(r.redact("x canary-secret-value"), "x ***");
    }

    #[test]
    fn a_connection_without_variables_is_an_input_error_naming_it() {
        let err = from_input(&AgentEnv::default(), ConnectionKind::DockerRegistry, "abc, def", &Redactor::default())
            .unwrap_err();
        assert_eq!(err.input, "containerRegistry");
        assert_eq!(err.value, "abc");
        assert!(err.expected.contains("authorised"));
    }

    #[test]
    fn settings_page_link() {
        let env = AgentEnv::from_pairs([
            ("SYSTEM_COLLECTIONURI", "https://dev.azure.com/fabrikam/"),
            ("SYSTEM_TEAMPROJECT", "Shop"),
        ]);
        let c = ServiceConnection {
            id: ID.into(),
            kind: ConnectionKind::AzureRm,
            origin: Origin::Pipeline,
            url: None,
            scheme: String::new(),
            params: BTreeMap::new(),
            secrets: BTreeMap::new(),
            data: BTreeMap::new(),
        };
        assert_eq!(
            c.settings_page(&env).unwrap(),
            format!("https://dev.azure.com/fabrikam/Shop/_settings/adminservices?resourceId={ID}")
        );
    }
}
