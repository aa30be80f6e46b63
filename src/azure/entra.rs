//! Token acquisition for an Azure service connection: client secret, certificate assertion,
//! workload identity federation (the pipeline's OIDC token or a federated token file) and
//! managed identity (IMDS). Errors keep Entra's own `error_codes`, trace and correlation ids
//! so checks can map them to findings; no secret or token ever enters an error.

use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::check::Context;
use crate::connections::ServiceConnection;
use crate::net::http::{HttpError, Request, Response};
use crate::net::Endpoints;
use crate::report::sanitize::sanitize;
use crate::secret::Secret;

/// IMDS is either there at once or not at all; a long wait only delays the verdict.
pub const IMDS_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: Secret,
    pub expires_on: Option<jiff::Timestamp>,
}

/// Entra ID's error body (`error`, `error_codes`, `trace_id`, ...), sanitized.
#[derive(Debug, Clone, Default)]
pub struct EntraError {
    pub status: u16,
    pub error: String,
    pub codes: Vec<u64>,
    /// `error_description`, sanitized and capped (it quotes app ids, never secrets).
    pub description: String,
    pub trace_id: Option<String>,
    pub correlation_id: Option<String>,
    pub timestamp: Option<String>,
}

impl EntraError {
    pub fn has_code(&self, code: u64) -> bool {
        self.codes.contains(&code)
    }

    /// `AADSTS7000222` for the first code, or the `error` value.
    pub fn headline(&self) -> String {
        match self.codes.first() {
            Some(c) => format!("AADSTS{c}"),
            None => self.error.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub enum TokenError {
    /// Entra ID answered with an error body.
    Entra(Box<EntraError>),
    /// The pipeline's OIDC endpoint did not give an ID token (federation).
    Oidc { status: Option<u16>, detail: String },
    /// No managed identity: IMDS unreachable, not Azure's, or no identity assigned.
    ManagedIdentity { status: Option<u16>, detail: String },
    /// The connection lacks a parameter or has an unusable one; names it, never its value.
    Config { parameter: String, problem: String },
    /// An answer that is not Entra's (proxy page, truncated or non-JSON body).
    Unusable { status: u16, excerpt: String, request_id: Option<String> },
    /// No answer: DNS, connect, TLS, timeout.
    Transport(HttpError),
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenError::Entra(e) => write!(f, "{} ({} {}): {}", e.headline(), e.status, e.error, e.description),
            TokenError::Oidc { status, detail } => {
                write!(f, "OIDC token request failed{}: {detail}", status_suffix(*status))
            }
            TokenError::ManagedIdentity { status, detail } => {
                write!(f, "managed identity unavailable{}: {detail}", status_suffix(*status))
            }
            TokenError::Config { parameter, problem } => write!(f, "parameter `{parameter}`: {problem}"),
            TokenError::Unusable { status, excerpt, .. } => {
                write!(f, "HTTP {status} with a body that is not Entra ID's: {excerpt}")
            }
            TokenError::Transport(e) => write!(f, "{e}"),
        }
    }
}

fn status_suffix(status: Option<u16>) -> String {
    status.map(|s| format!(" (HTTP {s})")).unwrap_or_default()
}

/// How the connection proves who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Secret,
    Certificate,
    Federation,
    ManagedIdentity,
}

impl Method {
    pub fn of(conn: &ServiceConnection) -> Result<Method, TokenError> {
        match conn.scheme.to_ascii_lowercase().as_str() {
            "serviceprincipal" => match conn.param("AUTHENTICATIONTYPE").map(str::to_ascii_lowercase).as_deref() {
                Some("spncertificate") => Ok(Method::Certificate),
                Some("spnkey") | None => Ok(Method::Secret),
                Some(other) => Err(TokenError::Config {
                    parameter: "authenticationType".into(),
                    problem: format!("`{}` is not spnKey or spnCertificate", sanitize(other)),
                }),
            },
            "workloadidentityfederation" => Ok(Method::Federation),
            "managedserviceidentity" => Ok(Method::ManagedIdentity),
            other => Err(TokenError::Config {
                parameter: "scheme".into(),
                problem: format!(
                    "`{}` is not a scheme this check understands (ServicePrincipal, WorkloadIdentityFederation, ManagedServiceIdentity)",
                    sanitize(other)
                ),
            }),
        }
    }
}

/// The Entra authority for a connection: its own cloud's (endpoint data) when given, else
/// `AZURE_AUTHORITY_HOST` or the public cloud.
pub fn authority(ctx: &Context, conn: &ServiceConnection) -> Result<Url, TokenError> {
    let from_data = conn.data("ENVIRONMENTAUTHORITYURL").or_else(|| conn.data("ACTIVEDIRECTORYAUTHORITY"));
    match from_data {
        Some(v) if !ctx.endpoints.authority_overridden => crate::net::endpoints::base_url("environmentAuthorityUrl", v)
            .map_err(|problem| TokenError::Config { parameter: "environmentAuthorityUrl".into(), problem }),
        _ => Ok(ctx.endpoints.authority.clone()),
    }
}

fn required<'a>(conn: &'a ServiceConnection, key: &str, name: &str) -> Result<&'a str, TokenError> {
    conn.param(key).ok_or_else(|| TokenError::Config { parameter: name.into(), problem: "is missing or empty".into() })
}

/// Gets an access token for `scope` (e.g. `https://management.azure.com/.default`).
pub async fn acquire(ctx: &Context, conn: &ServiceConnection, scope: &str) -> Result<AccessToken, TokenError> {
    let method = Method::of(conn)?;
    if method == Method::ManagedIdentity {
        return managed_identity(ctx, conn, scope).await;
    }
    let tenant = required(conn, "TENANTID", "tenantid")?;
    let client_id = required(conn, "SERVICEPRINCIPALID", "serviceprincipalid")?;
    let token_url = Endpoints::token_url(&authority(ctx, conn)?, tenant).map_err(|e| TokenError::Config {
        parameter: "tenantid".into(),
        problem: format!("does not form a token URL ({e})"),
    })?;
    let assertion_type = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
    let request = match method {
        Method::Secret => {
            let secret = conn.secret("SERVICEPRINCIPALKEY").filter(|s| !s.is_empty()).ok_or_else(|| {
                TokenError::Config { parameter: "serviceprincipalkey".into(), problem: "is missing or empty".into() }
            })?;
            Request::post(token_url).form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("scope", scope),
                ("client_secret", secret.expose()),
            ])
        }
        Method::Certificate => {
            let assertion = certificate_assertion(ctx, conn, client_id, &token_url)?;
            Request::post(token_url).form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("scope", scope),
                ("client_assertion_type", assertion_type),
                ("client_assertion", assertion.expose()),
            ])
        }
        Method::Federation => {
            let id_token = federated_token(ctx, conn).await?;
            Request::post(token_url).form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("scope", scope),
                ("client_assertion_type", assertion_type),
                ("client_assertion", id_token.expose()),
            ])
        }
        Method::ManagedIdentity => unreachable!("handled above"),
    };
    let response = ctx.http.send(request).await.map_err(TokenError::Transport)?;
    parse_token_response(ctx, &response)
}

/// A signed client assertion from the connection's PEM (certificate + private key).
fn certificate_assertion(
    _ctx: &Context,
    _conn: &ServiceConnection,
    _client_id: &str,
    _token_url: &Url,
) -> Result<Secret, TokenError> {
    Err(TokenError::Config {
        parameter: "servicePrincipalCertificate".into(),
        problem: "certificate-based connections cannot be checked by this build".into(),
    })
}

/// The federated ID token: from the pipeline's OIDC endpoint, or a local token file.
pub async fn federated_token(ctx: &Context, conn: &ServiceConnection) -> Result<Secret, TokenError> {
    if let Some(token) = conn.secret("IDTOKEN").filter(|t| !t.is_empty()) {
        return Ok(token.clone());
    }
    let Some(base) = ctx.endpoints.oidc_request.clone() else {
        return Err(TokenError::Oidc { status: None, detail: "SYSTEM_OIDCREQUESTURI is not set in this job".into() });
    };
    let Some(job_token) = ctx.settings.job_token.clone() else {
        return Err(TokenError::Oidc {
            status: None,
            detail: "no job access token (SYSTEM_ACCESSTOKEN or the system connection) to ask for an ID token".into(),
        });
    };
    let mut url = base;
    url.query_pairs_mut().append_pair("api-version", "7.1").append_pair("serviceConnectionId", &conn.id);
    let request = Request::post(url)
        .header("x-tfs-fedauthredirect", "Suppress")
        .bearer(&job_token)
        .json(&serde_json::json!({}))
        .no_retry();
    let response = ctx.http.send(request).await.map_err(|e| TokenError::Oidc { status: None, detail: e.detail })?;
    if !response.is_success() {
        return Err(TokenError::Oidc {
            status: Some(response.status),
            detail: format!(
                "the OIDC endpoint refused the request{}: {}",
                response.header("x-vss-e2eid").map(|id| format!(" (x-vss-e2eid {})", sanitize(id))).unwrap_or_default(),
                excerpt(&response)
            ),
        });
    }
    #[derive(Deserialize)]
    struct Oidc {
        #[serde(rename = "oidcToken")]
        oidc_token: Option<String>,
    }
    match response.json::<Oidc>() {
        Ok(Oidc { oidc_token: Some(t) }) if !t.is_empty() => Ok(ctx.redactor.secret(t)),
        _ => Err(TokenError::Oidc {
            status: Some(response.status),
            detail: format!("no `oidcToken` in the answer: {}", excerpt(&response)),
        }),
    }
}

async fn managed_identity(ctx: &Context, conn: &ServiceConnection, scope: &str) -> Result<AccessToken, TokenError> {
    let resource = scope.trim_end_matches(".default").trim_end_matches('/');
    let mut url = ctx
        .endpoints
        .imds
        .join("metadata/identity/oauth2/token")
        .map_err(|e| TokenError::Config { parameter: "AZP_PREFLIGHT_IMDS_URL".into(), problem: e.to_string() })?;
    url.query_pairs_mut().append_pair("api-version", "2018-02-01").append_pair("resource", &format!("{resource}/"));
    if let Some(client) = conn.data("MSICLIENTID") {
        url.query_pairs_mut().append_pair("client_id", client);
    }
    let request = Request::get(url).header("metadata", "true").no_retry();
    let response = match tokio::time::timeout(IMDS_PROBE_TIMEOUT, ctx.http.send_direct(request)).await {
        Err(_) => {
            return Err(TokenError::ManagedIdentity {
                status: None,
                detail: format!(
                    "the instance metadata service did not answer within {} s: this agent is not an Azure VM",
                    IMDS_PROBE_TIMEOUT.as_secs()
                ),
            })
        }
        Ok(Err(e)) => {
            return Err(TokenError::ManagedIdentity {
                status: None,
                detail: format!("the instance metadata service is unreachable ({e})"),
            })
        }
        Ok(Ok(r)) => r,
    };
    if response.is_success() {
        return parse_token_response(ctx, &response).map_err(|_| TokenError::ManagedIdentity {
            status: Some(response.status),
            detail: format!("the metadata service at this address is not Azure's: {}", excerpt(&response)),
        });
    }
    let detail = match response.status {
        400 => "no managed identity is assigned to this agent's VM or scale set (or not the one the connection names)"
            .to_string(),
        _ => format!("the metadata service answered HTTP {}: {}", response.status, excerpt(&response)),
    };
    Err(TokenError::ManagedIdentity { status: Some(response.status), detail })
}

/// A sanitized, short excerpt of a body, for messages.
pub fn excerpt(response: &Response) -> String {
    let text = response.text();
    let trimmed = text.trim();
    if trimmed.is_empty() {
        "(empty body)".into()
    } else {
        crate::report::sanitize::cap(&sanitize(trimmed), 200)
    }
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: Option<String>,
    expires_in: Option<serde_json::Value>,
    expires_on: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ErrorBody {
    error: Option<String>,
    error_description: Option<String>,
    error_codes: Vec<u64>,
    trace_id: Option<String>,
    correlation_id: Option<String>,
    timestamp: Option<String>,
}

fn number(v: &serde_json::Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str()?.trim().parse().ok())
}

/// Turns a token endpoint's answer into a token or a classified error. The token is
/// registered with the redactor before anything else sees it.
pub fn parse_token_response(ctx: &Context, response: &Response) -> Result<AccessToken, TokenError> {
    if response.is_success() {
        if let Ok(TokenBody { access_token: Some(token), expires_in, expires_on }) = response.json::<TokenBody>() {
            let token = ctx.redactor.secret(token);
            let expires_on =
                expires_on.as_ref().and_then(number).and_then(|s| jiff::Timestamp::from_second(s).ok()).or_else(|| {
                    expires_in
                        .as_ref()
                        .and_then(number)
                        .and_then(|s| ctx.now.checked_add(jiff::SignedDuration::from_secs(s)).ok())
                });
            return Ok(AccessToken { token, expires_on });
        }
    } else if let Ok(body) = response.json::<ErrorBody>() {
        if body.error.is_some() || !body.error_codes.is_empty() {
            return Err(TokenError::Entra(Box::new(EntraError {
                status: response.status,
                error: body.error.map(|e| sanitize(&e)).unwrap_or_default(),
                codes: body.error_codes,
                description: body
                    .error_description
                    .map(|d| crate::report::sanitize::cap(&sanitize(&d), 400))
                    .unwrap_or_default(),
                trace_id: body.trace_id.map(|t| sanitize(&t)),
                correlation_id: body.correlation_id.map(|t| sanitize(&t)),
                timestamp: body.timestamp.map(|t| sanitize(&t)),
            })));
        }
    }
    Err(TokenError::Unusable {
        status: response.status,
        excerpt: excerpt(response),
        request_id: response.header("x-ms-request-id").or(response.header("client-request-id")).map(sanitize),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::test_context;
    use reqwest::header::HeaderMap;

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            url: Url::parse("https://login.microsoftonline.com/t/oauth2/v2.0/token").unwrap(),
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
            retries: 0,
        }
    }

    #[test]
    fn success_registers_the_token_as_a_secret() {
        let ctx = test_context(&[]);
        let t = parse_token_response(
            &ctx,
            &response(200, r#"{"token_type":"Bearer","expires_in":3599,"access_token":"eyJ-canary-access"}"#),
        )
        .unwrap();
        assert_eq!(t.token.expose(), "eyJ-canary-access");
        assert!(t.expires_on.is_some());
        assert_eq!(ctx.redactor.redact("x eyJ-canary-access"), "x ***");
        // IMDS sends numbers as strings.
        let t = parse_token_response(&ctx, &response(200, r#"{"access_token":"tok-imds","expires_on":"1506484173"}"#))
            .unwrap();
        assert_eq!(t.expires_on.unwrap().as_second(), 1506484173);
    }

    #[test]
    fn documented_error_body_keeps_codes_and_ids() {
        let ctx = test_context(&[]);
        let body = r#"{"error":"invalid_client","error_description":"AADSTS7000222: The provided client secret keys for app '00000000-aaaa' are expired.\r\nTrace ID: 69ade0e5\r\nCorrelation ID: 10057011\r\nTimestamp: 2020-04-13 19:49:19Z","error_codes":[7000222],"timestamp":"2020-04-13 19:49:19Z","trace_id":"69ade0e5","correlation_id":"10057011"}"#;
        match parse_token_response(&ctx, &response(401, body)) {
            Err(TokenError::Entra(e)) => {
                assert!(e.has_code(7000222));
                assert_eq!(
                    (e.headline().as_str(), e.error.as_str(), e.status),
                    ("AADSTS7000222", "invalid_client", 401)
                );
                assert_eq!((e.trace_id.as_deref(), e.correlation_id.as_deref()), (Some("69ade0e5"), Some("10057011")));
                assert!(!e.description.contains('\n'));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn proxy_pages_and_truncated_bodies_are_unusable() {
        let ctx = test_context(&[]);
        for (status, body) in [
            (403, "<html><body>Access denied by proxy ##vso[task.complete]</body></html>"),
            (200, r#"{"access_tok"#),
            (502, ""),
        ] {
            match parse_token_response(&ctx, &response(status, body)) {
                Err(TokenError::Unusable { status: s, excerpt, .. }) => {
                    assert_eq!(s, status);
                    assert!(!excerpt.contains("##vso["));
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn method_from_scheme_and_authentication_type() {
        let conn = |scheme: &str, auth: Option<&str>| ServiceConnection {
            id: "c".into(),
            kind: crate::connections::ConnectionKind::AzureRm,
            origin: crate::connections::Origin::Pipeline,
            url: None,
            scheme: scheme.into(),
            params: auth.map(|a| [("AUTHENTICATIONTYPE".to_string(), a.to_string())].into()).unwrap_or_default(),
            secrets: Default::default(),
            data: Default::default(),
        };
        assert_eq!(Method::of(&conn("ServicePrincipal", Some("spnCertificate"))).unwrap(), Method::Certificate);
        assert_eq!(Method::of(&conn("ServicePrincipal", None)).unwrap(), Method::Secret);
        assert_eq!(Method::of(&conn("WorkloadIdentityFederation", None)).unwrap(), Method::Federation);
        assert!(matches!(Method::of(&conn("PublishProfile", None)), Err(TokenError::Config { .. })));
    }
}
