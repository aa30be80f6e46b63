//! Microsoft Graph reads of the credentials on an application and its service principal
//! (`passwordCredentials`, `keyCredentials`), for the expiry part of the identity check.
//! The reads use the connection's own identity, which may read its own objects.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::Deserialize;
use url::Url;

use super::Services;
use crate::connections::ServiceConnection;
use crate::net::endpoints::base_url;
use crate::net::http::{HttpError, Request, Response};
use crate::sanitize::sanitize;
use crate::secret::Secret;

/// Legacy Azure AD Graph hosts: endpoint data still names them in `graphUrl`, but they do
/// not serve Microsoft Graph's `v1.0` API.
const LEGACY_GRAPH_HOSTS: &[&str] = &["graph.windows.net", "graph.chinacloudapi.cn", "graph.cloudapi.de"];

/// The Graph base for a connection: an explicit `AZP_PREFLIGHT_GRAPH_URL` wins, then the
/// connection's cloud (`microsoftGraphUrl`, a non-legacy `graphUrl`, the environment
/// name), then the default.
pub fn base(services: &Services<'_>, conn: &ServiceConnection) -> Url {
    if services.endpoints.graph_overridden {
        return services.endpoints.graph.clone();
    }
    let parse = |v: &str| base_url("graph", v).ok();
    if let Some(url) = conn.data("MICROSOFTGRAPHURL").and_then(parse) {
        return url;
    }
    if let Some(url) = conn
        .data("GRAPHURL")
        .and_then(parse)
        .filter(|u| !u.host_str().is_some_and(|h| LEGACY_GRAPH_HOSTS.iter().any(|l| h.eq_ignore_ascii_case(l))))
    {
        return url;
    }
    let by_cloud = match conn.data("ENVIRONMENT").map(str::to_ascii_lowercase).as_deref() {
        Some("azureusgovernment") => parse("https://graph.microsoft.us/"),
        Some("azurechinacloud") => parse("https://microsoftgraph.chinacloudapi.cn/"),
        _ => None,
    };
    by_cloud.unwrap_or_else(|| services.endpoints.graph.clone())
}

/// The app-only scope for a Graph base (`https://graph.microsoft.com/.default`).
pub fn scope(graph: &Url) -> String {
    graph.join(".default").map(|u| u.to_string()).unwrap_or_else(|_| format!("{graph}.default"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphObject {
    Application,
    ServicePrincipal,
}

impl GraphObject {
    fn collection(self) -> &'static str {
        match self {
            GraphObject::Application => "applications",
            GraphObject::ServicePrincipal => "servicePrincipals",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GraphObject::Application => "application",
            GraphObject::ServicePrincipal => "service principal",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordCredential {
    pub key_id: Option<String>,
    pub display_name: Option<String>,
    /// The first three characters of the secret.
    pub hint: Option<String>,
    pub end: Option<jiff::Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCredential {
    pub key_id: Option<String>,
    pub display_name: Option<String>,
    pub end: Option<jiff::Timestamp>,
    /// Usually the certificate's SHA-1 thumbprint (Graph `Binary`: base64).
    pub custom_key_identifier: Option<String>,
    /// The certificate, base64 DER (returned when `$select`ed on one object).
    pub key: Option<String>,
    /// `Verify` for client-authentication certificates, `Sign` for SAML signing.
    pub usage: Option<String>,
}

impl KeyCredential {
    /// Whether this is the certificate with these thumbprints: by the certificate itself
    /// when Graph returned it, else by `customKeyIdentifier`, which tools write as the raw
    /// hash, as its hex text, or base64 of either.
    pub fn matches(&self, sha1: &[u8], sha256: &[u8]) -> bool {
        if let Some(der) = self.key.as_deref().and_then(|k| STANDARD.decode(k.trim()).ok()) {
            if ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &der).as_ref() == sha1 {
                return true;
            }
        }
        let Some(id) = self.custom_key_identifier.as_deref().map(str::trim).filter(|s| !s.is_empty()) else {
            return false;
        };
        let hexes = [super::certificate::hex_upper(sha1), super::certificate::hex_upper(sha256)];
        let hex_match = |text: &str| hexes.iter().any(|h| h.eq_ignore_ascii_case(text.trim()));
        if hex_match(id) {
            return true;
        }
        match STANDARD.decode(id) {
            Ok(bytes) => bytes == sha1 || bytes == sha256 || std::str::from_utf8(&bytes).is_ok_and(hex_match),
            Err(_) => false,
        }
    }

    /// Certificates used to sign in; SAML signing keys on a service principal are not.
    pub fn is_client_credential(&self) -> bool {
        !self.usage.as_deref().is_some_and(|u| u.eq_ignore_ascii_case("sign"))
    }
}

/// What one Graph object holds.
#[derive(Debug, Clone)]
pub struct ObjectCredentials {
    pub object: GraphObject,
    pub display_name: Option<String>,
    pub passwords: Vec<PasswordCredential>,
    pub keys: Vec<KeyCredential>,
}

#[derive(Debug, Clone)]
pub enum GraphError {
    /// 401/403: the identity may not read the object (`Authorization_RequestDenied`).
    Denied { status: u16, code: String, request_id: Option<String> },
    /// 404: no such object (a managed identity or another tenant's app has no application here).
    NotFound { code: String },
    /// Any other answer: a proxy page, a server error, a body that is not Graph's.
    Unusable { status: u16, excerpt: String },
    /// No answer.
    Transport(HttpError),
}

impl std::fmt::Display for GraphError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GraphError::Denied { status, code, request_id } => write!(
                f,
                "HTTP {status} {code}{}",
                request_id.as_deref().map(|r| format!(" (request-id {r})")).unwrap_or_default()
            ),
            GraphError::NotFound { code } => write!(f, "HTTP 404 {code}"),
            GraphError::Unusable { status, excerpt } => write!(f, "HTTP {status}: {excerpt}"),
            GraphError::Transport(e) => write!(f, "no answer ({e})"),
        }
    }
}

/// Application ids are GUIDs; anything else is not put into a Graph URL.
pub fn is_app_id(text: &str) -> bool {
    !text.is_empty() && text.len() <= 64 && text.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// `GET {graph}v1.0/{applications|servicePrincipals}(appId='...')?$select=...`.
pub async fn read(
    services: &Services<'_>,
    graph: &Url,
    token: &Secret,
    object: GraphObject,
    app_id: &str,
) -> Result<ObjectCredentials, GraphError> {
    if !is_app_id(app_id) {
        return Err(GraphError::NotFound { code: "the application id is not a GUID".into() });
    }
    get(services, graph, token, object, &format!("v1.0/{}(appId='{app_id}')", object.collection())).await
}

/// `GET {graph}v1.0/applications/{objectId}`: the direct form, which an application may be
/// allowed to read for itself where the `appId` form is refused.
pub async fn read_application_by_object_id(
    services: &Services<'_>,
    graph: &Url,
    token: &Secret,
    object_id: &str,
) -> Result<ObjectCredentials, GraphError> {
    if !is_app_id(object_id) {
        return Err(GraphError::NotFound { code: "the application object id is not a GUID".into() });
    }
    get(services, graph, token, GraphObject::Application, &format!("v1.0/applications/{object_id}")).await
}

async fn get(
    services: &Services<'_>,
    graph: &Url,
    token: &Secret,
    object: GraphObject,
    path: &str,
) -> Result<ObjectCredentials, GraphError> {
    let mut url = graph
        .join(path)
        .map_err(|e| GraphError::Unusable { status: 0, excerpt: format!("cannot form the Graph URL ({e})") })?;
    url.set_query(Some("$select=id,appId,displayName,passwordCredentials,keyCredentials"));
    let response = services
        .http
        .send(Request::get(url).bearer(token).header("accept", "application/json"))
        .await
        .map_err(GraphError::Transport)?;
    parse(object, &response)
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct GraphBody {
    display_name: Option<String>,
    password_credentials: Option<Vec<RawPassword>>,
    key_credentials: Option<Vec<RawKey>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawPassword {
    key_id: Option<String>,
    display_name: Option<String>,
    hint: Option<String>,
    end_date_time: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawKey {
    key_id: Option<String>,
    display_name: Option<String>,
    end_date_time: Option<String>,
    custom_key_identifier: Option<String>,
    key: Option<String>,
    usage: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ErrorEnvelope {
    error: Option<ErrorBody>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ErrorBody {
    code: Option<String>,
    inner_error: Option<serde_json::Value>,
}

/// An ISO 8601 instant from Graph; an unparseable or far-future value counts as none.
fn instant(text: Option<String>) -> Option<jiff::Timestamp> {
    text.and_then(|t| t.trim().parse::<jiff::Timestamp>().ok())
}

fn clean(text: Option<String>) -> Option<String> {
    text.map(|t| sanitize(&t)).filter(|t| !t.trim().is_empty())
}

pub fn parse(object: GraphObject, response: &Response) -> Result<ObjectCredentials, GraphError> {
    if response.is_success() {
        return match response.json::<GraphBody>() {
            Ok(body) if body.password_credentials.is_some() || body.key_credentials.is_some() => {
                Ok(ObjectCredentials {
                    object,
                    display_name: clean(body.display_name),
                    passwords: body
                        .password_credentials
                        .unwrap_or_default()
                        .into_iter()
                        .map(|p| PasswordCredential {
                            key_id: clean(p.key_id),
                            display_name: clean(p.display_name),
                            hint: p.hint,
                            end: instant(p.end_date_time),
                        })
                        .collect(),
                    keys: body
                        .key_credentials
                        .unwrap_or_default()
                        .into_iter()
                        .map(|k| KeyCredential {
                            key_id: clean(k.key_id),
                            display_name: clean(k.display_name),
                            end: instant(k.end_date_time),
                            custom_key_identifier: k.custom_key_identifier,
                            key: k.key,
                            usage: k.usage,
                        })
                        .collect(),
                })
            }
            _ => Err(GraphError::Unusable { status: response.status, excerpt: response.body_excerpt(200) }),
        };
    }
    let body = response.json::<ErrorEnvelope>().ok().and_then(|e| e.error);
    let code = body.as_ref().and_then(|b| b.code.clone()).map(|c| sanitize(&c));
    match (response.status, code) {
        (401 | 403, Some(code)) => {
            let request_id = body
                .as_ref()
                .and_then(|b| b.inner_error.as_ref())
                .and_then(|i| i.get("request-id"))
                .and_then(|v| v.as_str())
                .or(response.header("request-id"))
                .map(sanitize);
            Err(GraphError::Denied { status: response.status, code, request_id })
        }
        (404, Some(code)) => Err(GraphError::NotFound { code }),
        (status, _) => Err(GraphError::Unusable { status, excerpt: response.body_excerpt(200) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            url: Url::parse("https://graph.microsoft.com/v1.0/applications").unwrap(),
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
            retries: 0,
            redactor: Default::default(),
        }
    }

    #[test]
    fn reads_documented_credentials_payload() {
        let body = r#"{"@odata.context":"x","id":"7bec","appId":"46e6","displayName":"myorg-sc",
          "passwordCredentials":[{"customKeyIdentifier":null,"displayName":"azdo","endDateTime":"2027-01-15T10:30:00Z",
            "hint":"Abc","keyId":"0b5e","secretText":null,"startDateTime":"2025-01-15T10:30:00Z"}],
          "keyCredentials":[{"customKeyIdentifier":"AAEC","displayName":"CN=x","endDateTime":"2026-12-22T00:09:01.5Z",
            "key":null,"keyId":"9a3c","type":"AsymmetricX509Cert","usage":"Verify"}]}"#;
        let c = parse(GraphObject::Application, &response(200, body)).unwrap();
        assert_eq!(c.display_name.as_deref(), Some("myorg-sc"));
        assert_eq!(c.passwords[0].hint.as_deref(), Some("Abc"));
        assert_eq!(c.passwords[0].end.unwrap().to_string(), "2027-01-15T10:30:00Z");
        assert_eq!(c.keys[0].key_id.as_deref(), Some("9a3c"));
        assert!(c.keys[0].is_client_credential());
    }

    #[test]
    fn denial_not_found_and_proxy_pages() {
        let denied = r#"{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges to complete the operation.","innerError":{"date":"2024-12-05T12:07:47","request-id":"3957016c","client-request-id":"3957016c"}}}"#;
        match parse(GraphObject::Application, &response(403, denied)) {
            Err(GraphError::Denied { status: 403, code, request_id }) => {
                assert_eq!((code.as_str(), request_id.as_deref()), ("Authorization_RequestDenied", Some("3957016c")))
            }
            other => panic!("{other:?}"),
        }
        let missing = r#"{"error":{"code":"Request_ResourceNotFound","message":"Resource does not exist"}}"#;
        assert!(matches!(parse(GraphObject::Application, &response(404, missing)), Err(GraphError::NotFound { .. })));
        assert!(matches!(
            parse(GraphObject::Application, &response(403, "<html>proxy</html>")),
            Err(GraphError::Unusable { status: 403, .. })
        ));
        assert!(matches!(
            parse(GraphObject::Application, &response(200, "{\"value\":")),
            Err(GraphError::Unusable { status: 200, .. })
        ));
    }

    #[test]
    fn certificate_matching_by_every_known_identifier_form() {
        let sha1: Vec<u8> = (1..=20).collect();
        let sha256: Vec<u8> = (1..=32).collect();
        let hex = super::super::certificate::hex_upper(&sha1);
        let key = |cki: &str| KeyCredential {
            key_id: None,
            display_name: None,
            end: None,
            custom_key_identifier: Some(cki.into()),
            key: None,
            usage: Some("Verify".into()),
        };
        assert!(key(&STANDARD.encode(&sha1)).matches(&sha1, &sha256));
        assert!(key(&STANDARD.encode(&sha256)).matches(&sha1, &sha256));
        assert!(key(&STANDARD.encode(hex.as_bytes())).matches(&sha1, &sha256));
        assert!(key(&hex.to_lowercase()).matches(&sha1, &sha256));
        assert!(!key(&STANDARD.encode([9u8; 20])).matches(&sha1, &sha256));
        assert!(!key("").matches(&sha1, &sha256));
    }

    #[test]
    fn app_ids_only_guids() {
        assert!(is_app_id("46e6adf4-a9cf-4b60-9390-0ba6fb00bf6b"));
        assert!(!is_app_id("x') or 1 eq 1"));
        assert!(!is_app_id(""));
    }
}
