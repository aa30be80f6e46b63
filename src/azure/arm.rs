//! Azure Resource Manager reads for a connection's identity: one token, GETs by resource id
//! with an api-version, list pages followed through `nextLink`, and ARM's error body
//! (`{"error": {"code", "message"}}`) kept with its request ids.

use serde_json::Value;
use url::Url;

use super::entra::{self, AccessToken, TokenError};
use crate::check::Context;
use crate::connections::ServiceConnection;
use crate::net::http::{HttpError, Request};
use crate::report::sanitize::sanitize;

/// Most pages a list may follow: protects against a `nextLink` that loops.
const MAX_PAGES: usize = 20;

#[derive(Debug, Clone)]
pub enum ArmError {
    Token(TokenError),
    Transport(HttpError),
    /// ARM answered with an error (`code`, `message`) or an unexpected status.
    Status {
        status: u16,
        code: String,
        message: String,
        correlation_id: Option<String>,
    },
    /// A 2xx whose body is not the JSON expected.
    NotJson {
        status: u16,
        excerpt: String,
    },
    BadId(String),
}

impl std::fmt::Display for ArmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArmError::Token(e) => write!(f, "no Azure Resource Manager token: {e}"),
            ArmError::Transport(e) => write!(f, "Azure Resource Manager unreachable: {e}"),
            ArmError::Status { status, code, message, correlation_id } => {
                write!(f, "HTTP {status} {code}: {message}")?;
                if let Some(id) = correlation_id {
                    write!(f, " (correlation id {id})")?;
                }
                Ok(())
            }
            ArmError::NotJson { status, excerpt } => write!(f, "HTTP {status} with a body that is not JSON: {excerpt}"),
            ArmError::BadId(id) => write!(f, "`{id}` is not a resource id"),
        }
    }
}

impl ArmError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ArmError::Status { status, .. } | ArmError::NotJson { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The ARM base for a connection: `AZP_PREFLIGHT_ARM_URL` when set, else the connection's
/// own `ENDPOINT_URL_<id>` (its cloud), else the public cloud.
pub fn base_for(ctx: &Context, conn: &ServiceConnection) -> Url {
    if ctx.endpoints.arm_overridden {
        return ctx.endpoints.arm.clone();
    }
    conn.url
        .as_deref()
        .and_then(|u| crate::net::endpoints::base_url("ENDPOINT_URL", u).ok())
        .unwrap_or_else(|| ctx.endpoints.arm.clone())
}

pub struct ArmClient<'a> {
    ctx: &'a Context,
    base: Url,
    token: AccessToken,
}

impl<'a> ArmClient<'a> {
    /// Gets a token for ARM with the connection's identity.
    pub async fn connect(ctx: &'a Context, conn: &ServiceConnection) -> Result<ArmClient<'a>, ArmError> {
        let base = base_for(ctx, conn);
        let audience = conn.data("ACTIVEDIRECTORYSERVICEENDPOINTRESOURCEID").unwrap_or("https://management.azure.com/");
        let scope = format!("{}/.default", audience.trim_end_matches('/'));
        let token = entra::acquire(ctx, conn, &scope).await.map_err(ArmError::Token)?;
        Ok(ArmClient { ctx, base, token })
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    fn url(&self, id_or_path: &str, api_version: &str) -> Result<Url, ArmError> {
        let mut url =
            self.base.join(id_or_path.trim_start_matches('/')).map_err(|_| ArmError::BadId(sanitize(id_or_path)))?;
        url.query_pairs_mut().append_pair("api-version", api_version);
        Ok(url)
    }

    /// `GET {arm}{id}?api-version=...` as JSON.
    pub async fn get(&self, id_or_path: &str, api_version: &str) -> Result<Value, ArmError> {
        let url = self.url(id_or_path, api_version)?;
        self.get_url(url).await
    }

    /// `POST {arm}{id}?api-version=...` with an empty body, as JSON: ARM's read-like actions
    /// (`config/appsettings/list`, `listCredentials`). The answer may hold secrets: the caller
    /// registers any it keeps with the redactor.
    pub async fn post(&self, id_or_path: &str, api_version: &str) -> Result<Value, ArmError> {
        let url = self.url(id_or_path, api_version)?;
        self.send(Request::post(url).empty_body()).await
    }

    async fn get_url(&self, url: Url) -> Result<Value, ArmError> {
        self.send(Request::get(url)).await
    }

    async fn send(&self, request: Request) -> Result<Value, ArmError> {
        let resp = self.ctx.http.send(request.bearer(&self.token.token)).await.map_err(ArmError::Transport)?;
        let correlation_id =
            resp.header("x-ms-correlation-request-id").or(resp.header("x-ms-request-id")).map(sanitize);
        if !resp.is_success() {
            let body: Value = resp.json().unwrap_or(Value::Null);
            let err = &body["error"];
            return Err(ArmError::Status {
                status: resp.status,
                code: err["code"].as_str().map(sanitize).unwrap_or_else(|| "(no error code)".into()),
                message: err["message"]
                    .as_str()
                    .map(sanitize)
                    .unwrap_or_else(|| entra::redacted_excerpt(&self.ctx.redactor, &resp)),
                correlation_id,
            });
        }
        resp.json().map_err(|_| ArmError::NotJson {
            status: resp.status,
            excerpt: entra::redacted_excerpt(&self.ctx.redactor, &resp),
        })
    }

    /// A list: every item of `value` over all pages.
    pub async fn list(&self, path: &str, api_version: &str) -> Result<Vec<Value>, ArmError> {
        let mut items = Vec::new();
        let mut next = Some(self.url(path, api_version)?);
        for _ in 0..MAX_PAGES {
            let Some(url) = next.take() else { break };
            let page = self.get_url(url).await?;
            if let Some(values) = page["value"].as_array() {
                items.extend(values.iter().cloned());
            }
            next = page["nextLink"].as_str().and_then(|l| Url::parse(l).ok());
        }
        Ok(items)
    }
}

/// The parts of `/subscriptions/<sub>/resourceGroups/<rg>/providers/<ns>/<type>/<name>[/...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceId {
    pub subscription: String,
    pub resource_group: String,
    pub provider: String,
    /// `type/name` pairs after the provider, e.g. `[("managedClusters", "aks1")]`.
    pub segments: Vec<(String, String)>,
}

impl ResourceId {
    pub fn parse(id: &str) -> Option<ResourceId> {
        let parts: Vec<&str> = id.trim().trim_matches('/').split('/').collect();
        if parts.len() < 8
            || !parts[0].eq_ignore_ascii_case("subscriptions")
            || !parts[2].eq_ignore_ascii_case("resourcegroups")
            || !parts[4].eq_ignore_ascii_case("providers")
        {
            return None;
        }
        if parts.iter().any(|p| p.is_empty() || p.chars().any(char::is_whitespace)) || (parts.len() - 6) % 2 != 0 {
            return None;
        }
        let segments = parts[6..].chunks(2).map(|c| (c[0].to_string(), c[1].to_string())).collect();
        Some(ResourceId {
            subscription: parts[1].into(),
            resource_group: parts[3].into(),
            provider: parts[5].into(),
            segments,
        })
    }

    /// The canonical string form.
    pub fn to_path(&self) -> String {
        let mut s = format!(
            "/subscriptions/{}/resourceGroups/{}/providers/{}",
            self.subscription, self.resource_group, self.provider
        );
        for (t, n) in &self.segments {
            s.push_str(&format!("/{t}/{n}"));
        }
        s
    }

    pub fn name(&self) -> &str {
        self.segments.last().map(|(_, n)| n.as_str()).unwrap_or("")
    }

    pub fn is_type(&self, provider: &str, resource_type: &str) -> bool {
        self.provider.eq_ignore_ascii_case(provider)
            && self.segments.first().is_some_and(|(t, _)| t.eq_ignore_ascii_case(resource_type))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::test_context;
    use crate::testing::{FakeServer, Route};
    use serde_json::json;

    #[test]
    fn resource_ids() {
        let id = ResourceId::parse(
            "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1",
        )
        .unwrap();
        assert!(id.is_type("microsoft.containerservice", "managedclusters"));
        assert_eq!((id.name(), id.subscription.as_str()), ("aks1", "s1"));
        assert_eq!(
            id.to_path(),
            "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1"
        );
        for bad in [
            "",
            "/subscriptions/s1",
            "/subscriptions/s1/resourceGroups/rg/providers/X/y",
            "/subs/s1/resourceGroups/rg/providers/X/y/z",
            "/subscriptions/s 1/resourceGroups/rg/providers/X/y/z",
        ] {
            assert!(ResourceId::parse(bad).is_none(), "{bad}");
        }
    }

    #[tokio::test]
    async fn reads_lists_across_pages_and_keeps_arm_errors() {
        let server = FakeServer::start(vec![
            Route::json(
                "POST /tenant-1/oauth2/v2.0/token",
                200,
                json!({"access_token": "arm-token-canary", "expires_in": 3599}),
            ),
            Route::json("GET /subscriptions/s1/things?api-version=1&page=2", 200, json!({"value": [{"id": "b"}]})),
            Route::json(
                "GET /subscriptions/s1/things?",
                200,
                json!({"value": [{"id": "a"}], "nextLink": "{base}subscriptions/s1/things?api-version=1&page=2"}),
            ),
            Route::json(
                "GET /subscriptions/s1/denied",
                403,
                json!({"error": {"code": "AuthorizationFailed", "message": "The client does not have authorization"}}),
            ),
        ])
        .await;
        let ctx = test_context(&[
            ("AZURE_CLIENT_ID", "app-1"),
            ("AZURE_TENANT_ID", "tenant-1"),
            ("AZURE_CLIENT_SECRET", "secret-canary"),
            ("AZURE_AUTHORITY_HOST", &server.base),
            ("AZP_PREFLIGHT_ARM_URL", &server.base),
        ]);
        let conn = ctx.settings.azure_connections[0].clone();
        let client = ArmClient::connect(&ctx, &conn).await.unwrap();
        let items = client.list("subscriptions/s1/things", "1").await.unwrap();
        assert_eq!(items.iter().map(|v| v["id"].as_str().unwrap()).collect::<Vec<_>>(), ["a", "b"]);
        match client.get("/subscriptions/s1/denied", "2022-04-01").await {
            Err(ArmError::Status { status: 403, code, message, .. }) => {
                assert_eq!(
                    (code.as_str(), message.as_str()),
                    ("AuthorizationFailed", "The client does not have authorization")
                )
            }
            other => panic!("{other:?}"),
        }
        let requests = server.requests.lock().unwrap().join("\n");
        assert!(requests.contains("authorization: Bearer arm-token-canary"), "{requests}");
        assert!(requests.contains("client_secret=secret-canary"));
    }
}
