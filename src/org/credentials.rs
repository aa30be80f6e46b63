//! Which credential a connection signs in with, and when the app registration's credentials
//! of that kind end, read from Microsoft Graph once per application. The connection's own
//! secret is never returned by Azure DevOps, so the judgement is about the app's credentials
//! of the kind in use (the newest of them: the one a rotation would have put in place) and
//! says so; without Graph it is "not proven", never a pass.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::sync::OnceCell;
use url::Url;

use crate::azure::graph::{self, GraphObject, ObjectCredentials};
use crate::azure::Services;
use crate::codes::Code;
use crate::devops::model::ServiceEndpoint;
use crate::expiry::{self, Windows};
use crate::finding::Finding;
use crate::secret::Secret;

/// The Graph permission that lets an identity read every app registration's credentials.
pub const GRAPH_PERMISSION: &str = "Application.Read.All";

/// The kind of credential a connection presents to Entra ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Secret,
    Certificate,
    Federation,
    ManagedIdentity,
    None,
    Unknown,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Secret => "secret",
            Kind::Certificate => "certificate",
            Kind::Federation => "federation",
            Kind::ManagedIdentity => "managedIdentity",
            Kind::None => "none",
            Kind::Unknown => "unknown",
        }
    }

    /// From the endpoint's scheme and `authenticationType` parameter.
    pub fn of(endpoint: &ServiceEndpoint) -> Kind {
        let Some(auth) = &endpoint.authorization else { return Kind::Unknown };
        let scheme = auth.scheme.as_deref().unwrap_or_default().to_ascii_lowercase();
        match scheme.as_str() {
            "serviceprincipal" => match auth.param("authenticationType").map(str::to_ascii_lowercase).as_deref() {
                Some("spncertificate") => Kind::Certificate,
                // `spnKey`, or absent on older connections: a client secret.
                _ => Kind::Secret,
            },
            "workloadidentityfederation" => Kind::Federation,
            "managedserviceidentity" => Kind::ManagedIdentity,
            "" => Kind::Unknown,
            _ => Kind::None,
        }
    }
}

/// One application's Graph read, shared by every connection that signs in as it.
type AppRead = Arc<OnceCell<Result<ObjectCredentials, String>>>;

/// How Graph may be read: a token for the scanning identity, or why there is none.
pub struct GraphAccess {
    pub base: Url,
    pub token: Result<Secret, String>,
    cache: Mutex<HashMap<String, AppRead>>,
}

impl GraphAccess {
    pub fn new(base: Url, token: Result<Secret, String>) -> GraphAccess {
        GraphAccess { base, token, cache: Mutex::new(HashMap::new()) }
    }

    /// The application's credentials, read once per application id however many
    /// connections use it.
    async fn application(&self, services: &Services<'_>, app_id: &str) -> Result<ObjectCredentials, String> {
        let token = self.token.as_ref().map_err(Clone::clone)?;
        let cell = {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache.entry(app_id.to_ascii_lowercase()).or_default().clone()
        };
        cell.get_or_init(|| async {
            graph::read(services, &self.base, token, GraphObject::Application, app_id).await.map_err(|e| e.to_string())
        })
        .await
        .clone()
    }
}

/// The `credential` object of a connection entry and its findings.
pub async fn judge(
    services: &Services<'_>,
    graph: &GraphAccess,
    windows: Windows,
    kind: Kind,
    app_id: Option<&str>,
) -> (Value, Vec<Finding>) {
    let unproven = json!({"kind": kind.as_str(), "expiresOn": null, "daysLeft": null, "proven": false});
    let (Some(app_id), Kind::Secret | Kind::Certificate) = (app_id, kind) else {
        // Federation and managed identities have no secret to expire.
        return (unproven, Vec::new());
    };
    let what = if kind == Kind::Secret { "client secret" } else { "certificate" };
    let app = match graph.application(services, app_id).await {
        Ok(app) => app,
        Err(why) => {
            let note = Finding::new(
                Code::IDN008,
                format!(
                    "When the {what} of application {app_id} expires is not proven: Microsoft Graph could not be read ({why})."
                ),
            )
            .remedy(format!(
                "Grant the scanning identity the Microsoft Graph application permission {GRAPH_PERMISSION} (with admin consent), or run the scan with an identity that has it."
            ))
            .data("permission", GRAPH_PERMISSION)
            .data("appId", app_id);
            return (unproven, vec![note]);
        }
    };
    let ends: Vec<jiff::Timestamp> = match kind {
        Kind::Secret => app.passwords.iter().filter_map(|p| p.end).collect(),
        _ => app.keys.iter().filter(|k| k.is_client_credential()).filter_map(|k| k.end).collect(),
    };
    let Some(newest) = ends.iter().max().copied() else {
        let finding = Finding::new(
            Code::IDN001,
            format!(
                "Application {app_id} has no {what} in Microsoft Graph, so the connection's {what} cannot sign in."
            ),
        )
        .remedy(format!("Add a {what} to the app registration and update the service connection."))
        .data("appId", app_id);
        return (json!({"kind": kind.as_str(), "expiresOn": null, "daysLeft": null, "proven": true}), vec![finding]);
    };
    let now = services.now;
    let credential = json!({
        "kind": kind.as_str(),
        "expiresOn": expiry::date(newest),
        "daysLeft": expiry::days_left(now, newest),
        "proven": true,
    });
    let judged = match ends.len() {
        1 => format!("the application's only {what}"),
        n => format!("the newest of the application's {n} {what}s"),
    };
    let code = if newest <= now { Some(Code::IDN001) } else { windows.code(now, newest) };
    let findings = code
        .map(|code| {
            Finding::new(code, format!("The {what} of application {app_id} {} ({judged}).", expiry::when(now, newest)))
                .remedy(format!(
                    "Create a new {what} for the app registration and update the service connection, or move the connection to workload identity federation."
                ))
                .data("appId", app_id)
                .data("expiresOn", expiry::date(newest))
                .data("judged", judged)
        })
        .into_iter()
        .collect();
    (credential, findings)
}
