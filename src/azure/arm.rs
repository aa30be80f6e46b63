//! Azure Resource Manager reads for a connection's identity: one token, GETs by resource id
//! with an api-version, list pages followed through `nextLink` (on the origin that produced
//! them only), and ARM's error body (`{"error": {"code", "message"}}`) kept with its request
//! ids.

use serde_json::Value;
use url::Url;

use super::entra::{self, AccessToken, TokenError};
use super::Services;
use crate::connections::ServiceConnection;
use crate::net::http::{HttpError, Request};
use crate::sanitize::sanitize;

/// Most pages a list may follow: protects against a `nextLink` that loops. A list with more
/// is not proven complete.
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
    /// A list whose pages could not all be read: its `nextLink` leaves the origin that
    /// produced it (the bearer token is never sent there), is not a URL, or the pages do not
    /// end. Whatever a caller concludes from the items read is not proven.
    Incomplete(String),
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
            ArmError::Incomplete(why) => write!(f, "the list cannot be proven complete: {why}"),
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
pub fn base_for(services: &Services<'_>, conn: &ServiceConnection) -> Url {
    if services.endpoints.arm_overridden {
        return services.endpoints.arm.clone();
    }
    conn.url
        .as_deref()
        .and_then(|u| crate::net::endpoints::base_url("ENDPOINT_URL", u).ok())
        .unwrap_or_else(|| services.endpoints.arm.clone())
}

pub struct ArmClient<'a> {
    services: Services<'a>,
    base: Url,
    token: AccessToken,
}

impl<'a> ArmClient<'a> {
    /// Gets a token for ARM with the connection's identity.
    pub async fn connect(services: &Services<'a>, conn: &ServiceConnection) -> Result<ArmClient<'a>, ArmError> {
        let base = base_for(services, conn);
        let audience = conn.data("ACTIVEDIRECTORYSERVICEENDPOINTRESOURCEID").unwrap_or("https://management.azure.com/");
        let scope = format!("{}/.default", audience.trim_end_matches('/'));
        let token = entra::acquire(services, conn, &scope).await.map_err(ArmError::Token)?;
        Ok(ArmClient { services: *services, base, token })
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
        let resp = self.services.http.send(request.bearer(&self.token.token)).await.map_err(ArmError::Transport)?;
        let correlation_id = resp
            .header("x-ms-correlation-request-id")
            .or(resp.header("x-ms-request-id"))
            .map(|id| resp.excerpt(id, 80));
        if !resp.is_success() {
            let body: Value = resp.json().unwrap_or(Value::Null);
            let err = &body["error"];
            return Err(ArmError::Status {
                status: resp.status,
                code: err["code"].as_str().map(|c| resp.excerpt(c, 80)).unwrap_or_else(|| "(no error code)".into()),
                message: err["message"]
                    .as_str()
                    .map(|m| resp.excerpt(m, 300))
                    .unwrap_or_else(|| resp.body_excerpt(200)),
                correlation_id,
            });
        }
        resp.json().map_err(|_| ArmError::NotJson { status: resp.status, excerpt: resp.body_excerpt(200) })
    }

    /// A list: every item of `value` over all pages. A `nextLink` is followed only on the
    /// origin (scheme, host, port) of the request whose page named it: the request carries
    /// the ARM token, and a page must not be able to send it elsewhere.
    pub async fn list(&self, path: &str, api_version: &str) -> Result<Vec<Value>, ArmError> {
        let mut items = Vec::new();
        let mut next = Some(self.url(path, api_version)?);
        let mut pages = 0;
        while let Some(url) = next.take() {
            if pages == MAX_PAGES {
                return Err(ArmError::Incomplete(format!("it still names a next page after {MAX_PAGES} pages")));
            }
            pages += 1;
            let page = self.get_url(url.clone()).await?;
            if let Some(values) = page["value"].as_array() {
                items.extend(values.iter().cloned());
            }
            next = next_page(&page, &url, pages)?;
        }
        Ok(items)
    }
}

/// The next page `page` (page number `number`, read from `from`) names, if it may be read.
fn next_page(page: &Value, from: &Url, number: usize) -> Result<Option<Url>, ArmError> {
    let Some(link) = page["nextLink"].as_str().map(str::trim).filter(|l| !l.is_empty()) else { return Ok(None) };
    let Ok(url) = Url::parse(link) else {
        return Err(ArmError::Incomplete(format!("page {number} names a next page that is not a URL")));
    };
    if url.origin() != from.origin() {
        return Err(ArmError::Incomplete(format!(
            "page {number} names its next page on {}, not on {} that served it; it was not requested, so the token \
             does not leave Azure Resource Manager",
            sanitize(&url.origin().ascii_serialization()),
            from.origin().ascii_serialization()
        )));
    }
    Ok(Some(url))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::azure::services::TestServices;
    use crate::testing::{FakeServer, Route};
    use serde_json::json;

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
        let fixture = TestServices::new(&[
            ("AZURE_CLIENT_ID", "app-1"),
            ("AZURE_TENANT_ID", "tenant-1"),
            ("AZURE_CLIENT_SECRET", "secret-canary"),
            ("AZURE_AUTHORITY_HOST", &server.base),
            ("AZP_PREFLIGHT_ARM_URL", &server.base),
        ]);
        let conn = fixture.local_connection();
        let client = ArmClient::connect(&fixture.services(), &conn).await.unwrap();
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

    #[tokio::test]
    async fn a_next_link_on_another_origin_is_never_requested() {
        // Same host, another port: another origin, as much as another host is.
        let elsewhere = FakeServer::start(vec![Route::json("GET /", 200, json!({"value": [{"id": "stolen"}]}))]).await;
        let foreign = format!("{}subscriptions/s1/things?api-version=1&page=2", elsewhere.base);
        let server = FakeServer::start(vec![
            Route::json(
                "POST /tenant-1/oauth2/v2.0/token",
                200,
                json!({"access_token": "arm-token-canary", "expires_in": 3599}),
            ),
            Route::json("GET /subscriptions/s1/things?", 200, json!({"value": [{"id": "a"}], "nextLink": foreign})),
            Route::json("GET /subscriptions/s1/bad?", 200, json!({"value": [], "nextLink": "not a url"})),
            Route::json(
                "GET /subscriptions/s1/loop?",
                200,
                json!({"value": [], "nextLink": "{base}subscriptions/s1/loop?x"}),
            ),
        ])
        .await;
        let fixture = TestServices::new(&[
            ("AZURE_CLIENT_ID", "app-1"),
            ("AZURE_TENANT_ID", "tenant-1"),
            ("AZURE_CLIENT_SECRET", "secret-canary"),
            ("AZURE_AUTHORITY_HOST", &server.base),
            ("AZP_PREFLIGHT_ARM_URL", &server.base),
        ]);
        let conn = fixture.local_connection();
        let client = ArmClient::connect(&fixture.services(), &conn).await.unwrap();
        match client.list("subscriptions/s1/things", "1").await {
            Err(e @ ArmError::Incomplete(_)) => {
                let text = e.to_string();
                assert!(
                    text.contains("cannot be proven complete") && text.contains(elsewhere.base.trim_end_matches('/')),
                    "{text}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(elsewhere.requests.lock().unwrap().is_empty(), "the token left for another origin");
        assert!(matches!(client.list("subscriptions/s1/bad", "1").await, Err(ArmError::Incomplete(_))));
        // A next link that never ends is not a complete list either.
        assert!(matches!(client.list("subscriptions/s1/loop", "1").await, Err(ArmError::Incomplete(_))));
        let loops =
            server.requests.lock().unwrap().iter().filter(|r| r.starts_with("GET /subscriptions/s1/loop")).count();
        assert_eq!(loops, MAX_PAGES);
    }

    #[tokio::test]
    async fn an_error_message_quoting_a_secret_is_redacted_before_it_is_cut() {
        let secret = "arm-echo-Secret~canary-7Yq2";
        // The secret starts 290 characters in: a 300-character cut would keep its first ten.
        let message = format!("{} client_secret={secret} was refused", "x".repeat(276));
        let server = FakeServer::start(vec![
            Route::json("POST /tenant-1/oauth2/v2.0/token", 200, json!({"access_token": "arm-token-canary"})),
            Route::json("GET /denied", 400, json!({"error": {"code": "BadRequest", "message": message}})),
        ])
        .await;
        let fixture = TestServices::new(&[
            ("AZURE_CLIENT_ID", "app-1"),
            ("AZURE_TENANT_ID", "tenant-1"),
            ("AZURE_CLIENT_SECRET", secret),
            ("AZURE_AUTHORITY_HOST", &server.base),
            ("AZP_PREFLIGHT_ARM_URL", &server.base),
        ]);
        let conn = fixture.local_connection();
        let client = ArmClient::connect(&fixture.services(), &conn).await.unwrap();
        let text = client.get("/denied", "1").await.unwrap_err().to_string();
        assert!(text.contains("client_secret=***"), "{text}");
        for n in 4..=secret.len() {
            assert!(!text.contains(&secret[..n]), "{text}");
        }
    }
}
