//! Token acquisition for an Azure service connection: client secret, certificate assertion,
//! workload identity federation (the pipeline's OIDC token or a federated token file) and
//! managed identity (IMDS). Errors keep Entra's own `error_codes`, trace and correlation ids
//! so checks can map them to findings; no secret or token ever enters an error.

use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::certificate::ClientCertificate;
use super::Services;
use crate::connections::ServiceConnection;
use crate::net::http::{HttpError, Request, Response};
use crate::net::Endpoints;
use crate::sanitize::sanitize;
use crate::secret::Secret;

/// How long a reachable metadata service may take to hand out a token (it asks Entra ID
/// itself, so the first token can take a moment).
pub const IMDS_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

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
    /// `error_description`, quoted through the redactor: it names app ids, and a proxy or a
    /// fake speaking for Entra ID may echo the request, secret included.
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
                Some("spnkey") => Ok(Method::Secret),
                // Without the type, what the connection holds tells.
                None if conn.secret("SERVICEPRINCIPALKEY").is_none_or(Secret::is_empty)
                    && conn.secret("SERVICEPRINCIPALCERTIFICATE").is_some_and(|c| !c.is_empty()) =>
                {
                    Ok(Method::Certificate)
                }
                None => Ok(Method::Secret),
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
pub fn authority(services: &Services<'_>, conn: &ServiceConnection) -> Result<Url, TokenError> {
    let from_data = conn.data("ENVIRONMENTAUTHORITYURL").or_else(|| conn.data("ACTIVEDIRECTORYAUTHORITY"));
    match from_data {
        Some(v) if !services.endpoints.authority_overridden => {
            crate::net::endpoints::base_url("environmentAuthorityUrl", v)
                .map_err(|problem| TokenError::Config { parameter: "environmentAuthorityUrl".into(), problem })
        }
        _ => Ok(services.endpoints.authority.clone()),
    }
}

fn required<'a>(conn: &'a ServiceConnection, key: &str, name: &str) -> Result<&'a str, TokenError> {
    conn.param(key).ok_or_else(|| TokenError::Config { parameter: name.into(), problem: "is missing or empty".into() })
}

/// Gets an access token for `scope` (e.g. `https://management.azure.com/.default`).
pub async fn acquire(
    services: &Services<'_>,
    conn: &ServiceConnection,
    scope: &str,
) -> Result<AccessToken, TokenError> {
    Credential::prepare(services, conn).await?.token(services, scope).await
}

/// What the connection presents to Entra ID.
enum Proof {
    Secret(Secret),
    Certificate(Box<ClientCertificate>),
    Federated(Secret),
    ManagedIdentity { client_id: Option<String> },
}

/// A connection's identity made ready to ask for tokens: its parameters checked, its
/// certificate parsed and its federated ID token fetched once, so several scopes cost one
/// OIDC request. Holds secrets; never printed.
pub struct Credential {
    pub method: Method,
    /// Tenant and application (client) id; `None` for a managed identity.
    pub tenant: Option<String>,
    pub client_id: Option<String>,
    token_url: Option<Url>,
    proof: Proof,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("method", &self.method)
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// The public claims of a federated ID token: what Entra ID compares with the app's
/// federated credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PresentedClaims {
    pub issuer: Option<String>,
    pub subject: Option<String>,
    pub audience: Option<String>,
}

impl Credential {
    /// Checks the connection's parameters and gathers its proof. Federation fetches the
    /// pipeline's ID token here; nothing else touches the network.
    pub async fn prepare(services: &Services<'_>, conn: &ServiceConnection) -> Result<Credential, TokenError> {
        let method = Method::of(conn)?;
        if method == Method::ManagedIdentity {
            let client_id = conn.data("MSICLIENTID").or_else(|| conn.param("SERVICEPRINCIPALID")).map(str::to_string);
            return Ok(Credential {
                method,
                tenant: conn.param("TENANTID").map(str::to_string),
                client_id: None,
                token_url: None,
                proof: Proof::ManagedIdentity { client_id },
            });
        }
        let tenant = required(conn, "TENANTID", "tenantid")?;
        if !tenant.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
            return Err(TokenError::Config {
                parameter: "tenantid".into(),
                problem: "is neither a tenant id (GUID) nor a domain name".into(),
            });
        }
        let client_id = required(conn, "SERVICEPRINCIPALID", "serviceprincipalid")?;
        let token_url = Endpoints::token_url(&authority(services, conn)?, tenant).map_err(|e| TokenError::Config {
            parameter: "tenantid".into(),
            problem: format!("does not form a token URL ({e})"),
        })?;
        let proof = match method {
            Method::Secret => {
                let secret =
                    conn.secret("SERVICEPRINCIPALKEY").filter(|s| !s.is_empty()).ok_or_else(|| TokenError::Config {
                        parameter: "serviceprincipalkey".into(),
                        problem: "is missing or empty".into(),
                    })?;
                // Registered with its encoded forms (a proxy echoing the form shows it
                // form-encoded), whoever read it first.
                services.redactor.register(secret.expose());
                Proof::Secret(secret.clone())
            }
            Method::Certificate => Proof::Certificate(Box::new(connection_certificate(conn)?)),
            Method::Federation => Proof::Federated(federated_token(services, conn).await?),
            Method::ManagedIdentity => Proof::ManagedIdentity { client_id: None },
        };
        Ok(Credential {
            method,
            tenant: Some(tenant.to_string()),
            client_id: Some(client_id.to_string()),
            token_url: Some(token_url),
            proof,
        })
    }

    /// The parsed client certificate of a certificate connection.
    pub fn certificate(&self) -> Option<&ClientCertificate> {
        match &self.proof {
            Proof::Certificate(c) => Some(c),
            _ => None,
        }
    }

    /// Issuer, subject and audience of the federated token (read, not verified).
    pub fn presented_claims(&self) -> Option<PresentedClaims> {
        let Proof::Federated(token) = &self.proof else { return None };
        let claims = crate::azure::jwt::claims(token.expose()).unwrap_or_default();
        let text = |k: &str| match &claims[k] {
            serde_json::Value::String(s) => Some(sanitize(s)),
            serde_json::Value::Array(items) => {
                Some(items.iter().filter_map(|v| v.as_str()).map(sanitize).collect::<Vec<_>>().join(", "))
            }
            _ => None,
        };
        Some(PresentedClaims { issuer: text("iss"), subject: text("sub"), audience: text("aud") })
    }

    /// A token for `scope`. Each certificate request carries a freshly signed assertion.
    pub async fn token(&self, services: &Services<'_>, scope: &str) -> Result<AccessToken, TokenError> {
        let (client_id, token_url) = match (&self.proof, &self.client_id, &self.token_url) {
            (Proof::ManagedIdentity { client_id }, _, _) => {
                return managed_identity(services, client_id.as_deref(), scope).await;
            }
            (_, Some(c), Some(u)) => (c.as_str(), u),
            // `prepare` sets both for every other proof.
            _ => {
                return Err(TokenError::Config {
                    parameter: "serviceprincipalid".into(),
                    problem: "is missing or empty".into(),
                })
            }
        };
        let mut fields = vec![("grant_type", "client_credentials"), ("client_id", client_id), ("scope", scope)];
        let signed;
        let request = match &self.proof {
            Proof::Secret(secret) => {
                fields.push(("client_secret", secret.expose()));
                Request::post(token_url.clone()).form(&fields)
            }
            Proof::Certificate(cert) => {
                signed = sign_assertion(services, cert, client_id, token_url)?;
                assertion_request(token_url, fields, &signed)
            }
            Proof::Federated(id_token) => assertion_request(token_url, fields, id_token),
            Proof::ManagedIdentity { client_id } => {
                return managed_identity(services, client_id.as_deref(), scope).await
            }
        };
        let response = services.http.send(request).await.map_err(TokenError::Transport)?;
        parse_token_response(services, &response)
    }
}

fn assertion_request<'a>(token_url: &Url, mut fields: Vec<(&'a str, &'a str)>, assertion: &'a Secret) -> Request {
    fields.push(("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"));
    fields.push(("client_assertion", assertion.expose()));
    // An assertion is meant to be presented once; a retry would replay it.
    Request::post(token_url.clone()).form(&fields).no_retry()
}

/// The connection's certificate (`servicePrincipalCertificate`: PEM with the private key).
pub fn connection_certificate(conn: &ServiceConnection) -> Result<ClientCertificate, TokenError> {
    let pem = conn
        .secret("SERVICEPRINCIPALCERTIFICATE")
        .or_else(|| conn.secret("CERTIFICATE"))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| TokenError::Config {
            parameter: CERTIFICATE_PARAMETER.into(),
            problem: "is missing or empty".into(),
        })?;
    ClientCertificate::from_pem(pem.expose())
        .map_err(|e| TokenError::Config { parameter: CERTIFICATE_PARAMETER.into(), problem: e.to_string() })
}

/// How the certificate parameter is named in messages.
pub const CERTIFICATE_PARAMETER: &str = "servicePrincipalCertificate";

/// A signed client assertion from the connection's PEM (certificate + private key).
pub fn certificate_assertion(
    services: &Services<'_>,
    conn: &ServiceConnection,
    client_id: &str,
    token_url: &Url,
) -> Result<Secret, TokenError> {
    sign_assertion(services, &connection_certificate(conn)?, client_id, token_url)
}

/// Signs an assertion for `token_url` and registers it as a secret: for its lifetime it
/// is as good as the key.
fn sign_assertion(
    services: &Services<'_>,
    cert: &ClientCertificate,
    client_id: &str,
    token_url: &Url,
) -> Result<Secret, TokenError> {
    cert.client_assertion(client_id, token_url.as_str(), jiff::Timestamp::now())
        .map(|jwt| services.redactor.secret(jwt))
        .map_err(|e| TokenError::Config { parameter: CERTIFICATE_PARAMETER.into(), problem: e.to_string() })
}

/// The federated ID token: from the pipeline's OIDC endpoint, or a local token file.
pub async fn federated_token(services: &Services<'_>, conn: &ServiceConnection) -> Result<Secret, TokenError> {
    if let Some(token) = conn.secret("IDTOKEN").filter(|t| !t.is_empty()) {
        return Ok(token.clone());
    }
    let Some(base) = services.endpoints.oidc_request.clone() else {
        return Err(TokenError::Oidc { status: None, detail: "SYSTEM_OIDCREQUESTURI is not set in this job".into() });
    };
    let Some(job_token) = services.job_token.cloned() else {
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
    let response = services
        .http
        .send(request)
        .await
        .map_err(|e| TokenError::Oidc { status: None, detail: format!("the OIDC endpoint did not answer ({e})") })?;
    if !response.is_success() {
        return Err(TokenError::Oidc {
            status: Some(response.status),
            detail: format!(
                "the OIDC endpoint refused the request{}: {}",
                response.header("x-vss-e2eid").map(|id| format!(" (x-vss-e2eid {})", sanitize(id))).unwrap_or_default(),
                response.body_excerpt(200)
            ),
        });
    }
    #[derive(Deserialize)]
    struct Oidc {
        #[serde(rename = "oidcToken")]
        oidc_token: Option<String>,
    }
    match response.json::<Oidc>() {
        Ok(Oidc { oidc_token: Some(t) }) if !t.trim().is_empty() => Ok(services.redactor.secret(t.trim())),
        _ => Err(TokenError::Oidc {
            status: Some(response.status),
            detail: format!("no `oidcToken` in the answer ({})", shape(&response)),
        }),
    }
}

/// IMDS is either reachable at once or not at all: a TCP connect within this time decides.
pub const IMDS_CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);

/// Managed identity through the instance metadata service: a quick TCP probe first (an
/// agent outside Azure fails in about a second, not after the client's long timeouts), then
/// the token request, never through a proxy and never retried.
async fn managed_identity(
    services: &Services<'_>,
    client_id: Option<&str>,
    scope: &str,
) -> Result<AccessToken, TokenError> {
    let resource = scope.trim_end_matches(".default").trim_end_matches('/');
    let imds = &services.endpoints.imds;
    let mut url = imds
        .join("metadata/identity/oauth2/token")
        .map_err(|e| TokenError::Config { parameter: "AZP_PREFLIGHT_IMDS_URL".into(), problem: e.to_string() })?;
    url.query_pairs_mut().append_pair("api-version", "2018-02-01").append_pair("resource", &format!("{resource}/"));
    if let Some(client) = client_id {
        url.query_pairs_mut().append_pair("client_id", client);
    }
    let host = imds.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_string();
    let port = imds.port_or_known_default().unwrap_or(80);
    let absent = |why: String| TokenError::ManagedIdentity {
        status: None,
        detail: format!(
            "no instance metadata service at {host}:{port} ({why}): this agent does not run on an Azure VM or scale set"
        ),
    };
    match tokio::time::timeout(IMDS_CONNECT_TIMEOUT, tokio::net::TcpStream::connect((host.as_str(), port))).await {
        Err(_) => return Err(absent(format!("no connection within {} ms", IMDS_CONNECT_TIMEOUT.as_millis()))),
        Ok(Err(e)) => return Err(absent(e.kind().to_string())),
        Ok(Ok(_probe)) => {}
    }
    let request = Request::get(url).header("metadata", "true").no_retry();
    let response = match tokio::time::timeout(IMDS_PROBE_TIMEOUT, services.http.send_direct(request)).await {
        Err(_) => {
            return Err(TokenError::ManagedIdentity {
                status: None,
                detail: format!(
                    "the instance metadata service accepted the connection but gave no token within {} s",
                    IMDS_PROBE_TIMEOUT.as_secs()
                ),
            })
        }
        Ok(Err(e)) => {
            return Err(TokenError::ManagedIdentity {
                status: None,
                detail: format!("the instance metadata service did not answer ({e})"),
            })
        }
        Ok(Ok(r)) => r,
    };
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct ImdsError {
        error: Option<String>,
        error_description: Option<String>,
    }
    let azure_error = response.json::<ImdsError>().ok().filter(|e| e.error.is_some());
    if response.is_success() {
        return parse_token_response(services, &response)
            .map_err(|_| TokenError::ManagedIdentity { status: Some(response.status), detail: not_azure(&response) });
    }
    let Some(err) = azure_error else {
        return Err(TokenError::ManagedIdentity { status: Some(response.status), detail: not_azure(&response) });
    };
    let said = format!(
        "{}{}",
        response.excerpt(err.error.as_deref().unwrap_or_default(), 80),
        err.error_description.map(|d| format!(": {}", response.excerpt(&d, 200))).unwrap_or_default()
    );
    let detail = match response.status {
        400 => format!(
            "the metadata service has no managed identity {} for this agent ({said})",
            match client_id {
                Some(c) => format!("with client id {}", sanitize(c)),
                None => "assigned".to_string(),
            }
        ),
        s => format!("the metadata service answered HTTP {s} ({said})"),
    };
    Err(TokenError::ManagedIdentity { status: Some(response.status), detail })
}

/// An answer at the metadata address that is not Azure's: another cloud's metadata
/// service, or something listening where IMDS should be.
fn not_azure(response: &Response) -> String {
    format!(
        "a metadata service answered HTTP {}{} but not as Azure's does (another cloud's metadata service?): {}",
        response.status,
        response.header("server").map(|s| format!(" (server `{}`)", sanitize(s))).unwrap_or_default(),
        if response.is_success() { shape(response) } else { response.body_excerpt(200) }
    )
}

/// What a successful answer that could not be used looked like, without its text: a cut-off
/// token response would otherwise print part of a token nobody registered as a secret.
pub fn shape(response: &Response) -> String {
    format!(
        "{} bytes of {}, not a complete token response",
        response.body.len(),
        response.header("content-type").map(sanitize).unwrap_or_else(|| "unlabelled content".into())
    )
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
pub fn parse_token_response(services: &Services<'_>, response: &Response) -> Result<AccessToken, TokenError> {
    if response.is_success() {
        if let Ok(TokenBody { access_token: Some(token), expires_in, expires_on }) = response.json::<TokenBody>() {
            let token = services.redactor.secret(token);
            let expires_on =
                expires_on.as_ref().and_then(number).and_then(|s| jiff::Timestamp::from_second(s).ok()).or_else(|| {
                    expires_in
                        .as_ref()
                        .and_then(number)
                        .and_then(|s| services.now.checked_add(jiff::SignedDuration::from_secs(s)).ok())
                });
            return Ok(AccessToken { token, expires_on });
        }
    } else if let Ok(body) = response.json::<ErrorBody>() {
        if body.error.is_some() || !body.error_codes.is_empty() {
            return Err(TokenError::Entra(Box::new(EntraError {
                status: response.status,
                error: body.error.map(|e| response.excerpt(&e, 80)).unwrap_or_default(),
                codes: body.error_codes,
                description: body.error_description.map(|d| response.excerpt(&d, 400)).unwrap_or_default(),
                trace_id: body.trace_id.map(|t| response.excerpt(&t, 80)),
                correlation_id: body.correlation_id.map(|t| response.excerpt(&t, 80)),
                timestamp: body.timestamp.map(|t| response.excerpt(&t, 80)),
            })));
        }
    }
    Err(TokenError::Unusable {
        status: response.status,
        excerpt: if response.is_success() { shape(response) } else { response.body_excerpt(200) },
        request_id: response
            .header("x-ms-request-id")
            .or(response.header("client-request-id"))
            .map(|id| response.excerpt(id, 80)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::azure::services::TestServices;
    use reqwest::header::HeaderMap;

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            url: Url::parse("https://login.microsoftonline.com/t/oauth2/v2.0/token").unwrap(),
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
            retries: 0,
            redactor: Default::default(),
        }
    }

    #[test]
    fn success_registers_the_token_as_a_secret() {
        let fixture = TestServices::new(&[]);
        let services = fixture.services();
        let t = parse_token_response(
            &services,
            &response(200, r#"{"token_type":"Bearer","expires_in":3599,"access_token":"eyJ-canary-access"}"#),
        )
        .unwrap();
        assert_eq!(t.token.expose(), "eyJ-canary-access");
        assert!(t.expires_on.is_some());
        assert_eq!(services.redactor.redact("x eyJ-canary-access"), "x ***");
        // IMDS sends numbers as strings.
        let t =
            parse_token_response(&services, &response(200, r#"{"access_token":"tok-imds","expires_on":"1506484173"}"#))
                .unwrap();
        assert_eq!(t.expires_on.unwrap().as_second(), 1506484173);
    }

    #[test]
    fn documented_error_body_keeps_codes_and_ids() {
        let fixture = TestServices::new(&[]);
        let services = fixture.services();
        let body = r#"{"error":"invalid_client","error_description":"AADSTS7000222: The provided client secret keys for app '00000000-aaaa' are expired.\r\nTrace ID: 69ade0e5\r\nCorrelation ID: 10057011\r\nTimestamp: 2020-04-13 19:49:19Z","error_codes":[7000222],"timestamp":"2020-04-13 19:49:19Z","trace_id":"69ade0e5","correlation_id":"10057011"}"#;
        match parse_token_response(&services, &response(401, body)) {
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
        let fixture = TestServices::new(&[]);
        let services = fixture.services();
        for (status, body) in [
            (403, "<html><body>Access denied by proxy ##vso[task.complete]</body></html>"),
            (200, r#"{"access_tok"#),
            (200, r#"{"token_type":"Bearer","access_token":"eyJpartial-canary"#),
            (502, ""),
        ] {
            match parse_token_response(&services, &response(status, body)) {
                Err(TokenError::Unusable { status: s, excerpt, .. }) => {
                    assert_eq!(s, status);
                    assert!(!excerpt.contains("##vso["));
                    assert!(!excerpt.contains("eyJpartial"), "part of a token is never quoted: {excerpt}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn prepare_checks_parameters_before_any_request() {
        let fixture = TestServices::new(&[]);
        let services = fixture.services();
        let mut c = ServiceConnection {
            id: "c".into(),
            kind: crate::connections::ConnectionKind::AzureRm,
            origin: crate::connections::Origin::Pipeline,
            url: None,
            scheme: "ServicePrincipal".into(),
            params: [
                ("TENANTID".to_string(), "../evil?x=".to_string()),
                ("SERVICEPRINCIPALID".to_string(), "a".to_string()),
            ]
            .into(),
            secrets: [("SERVICEPRINCIPALKEY".to_string(), services.redactor.secret("p@ss~word/+"))].into(),
            data: Default::default(),
        };
        match Credential::prepare(&services, &c).await {
            Err(TokenError::Config { parameter, problem }) => {
                assert_eq!(parameter, "tenantid");
                assert!(!problem.contains("evil"), "{problem}");
            }
            other => panic!("{other:?}"),
        }
        c.params.insert("TENANTID".into(), "contoso.onmicrosoft.com".into());
        let cred = Credential::prepare(&services, &c).await.unwrap();
        assert_eq!((cred.method, cred.tenant.as_deref()), (Method::Secret, Some("contoso.onmicrosoft.com")));
        assert!(cred.presented_claims().is_none());
        assert!(!format!("{cred:?}").contains("p@ss"));
        // The form-encoded secret is registered as well.
        assert_eq!(services.redactor.redact("client_secret=p%40ss%7Eword%2F%2B"), "client_secret=***");
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
        // Without an authentication type, a connection holding only a certificate uses it.
        let mut cert_only = conn("ServicePrincipal", None);
        cert_only.secrets.insert("SERVICEPRINCIPALCERTIFICATE".into(), Secret::new("-----BEGIN CERTIFICATE-----"));
        assert_eq!(Method::of(&cert_only).unwrap(), Method::Certificate);
        cert_only.secrets.insert("SERVICEPRINCIPALKEY".into(), Secret::new("k3y-value"));
        assert_eq!(Method::of(&cert_only).unwrap(), Method::Secret);
    }
}
