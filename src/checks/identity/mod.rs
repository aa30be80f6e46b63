//! The identity check (IDN001–IDN011): for every Azure Resource Manager connection and every
//! ACR registry connection with an Entra identity, prove that a token can be had now, then
//! read from Microsoft Graph how long the credential in use stays valid.
//!
//! One job per connection. Entra ID errors are classified by `error_codes`, never by their
//! text. A certificate's own validity is checked locally, so its expiry is known even when
//! Graph may not be read.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::azure::certificate::ClientCertificate;
use crate::azure::entra::{
    self, AccessToken, Credential, EntraError, Method, PresentedClaims, TokenError, CERTIFICATE_PARAMETER,
};
use crate::azure::graph::{self, GraphError, GraphObject, ObjectCredentials};
use crate::check::{Check, Context, TargetJob, TargetOutcome};
use crate::codes::Code;
use crate::connections::{ConnectionKind, Origin, ServiceConnection};
use crate::finding::{Finding, Severity};
use crate::net::endpoints::base_url;
use crate::net::HttpErrorKind;
use crate::report::sanitize::sanitize;
use crate::settings::{CheckId, Settings};

/// At most this many notes about an app's other credentials, so one crowded app
/// registration does not bury the rest of the report.
const MAX_OTHER_NOTES: usize = 5;

/// Microsoft Graph's application id and the `Application.Read.All` app role.
const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
const APPLICATION_READ_ALL_ROLE: &str = "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30";

pub struct IdentityCheck;

impl Check for IdentityCheck {
    fn id(&self) -> CheckId {
        CheckId::Identity
    }

    fn plan(&self, ctx: &Arc<Context>) -> Vec<TargetJob> {
        let connections = targets(&ctx.settings);
        if connections.is_empty() {
            return vec![TargetJob::ready(
                "(no Azure identity)",
                TargetOutcome::skip(
                    "no azureSubscription connection and no ACR containerRegistry connection with an Entra identity \
                     (locally: set AZURE_CLIENT_ID and AZURE_TENANT_ID)",
                ),
            )];
        }
        connections
            .into_iter()
            .map(|conn| {
                let ctx = ctx.clone();
                TargetJob::new(conn.label(), async move { check_connection(&ctx, &conn).await })
            })
            .collect()
    }
}

/// The connections this check proves: every Azure Resource Manager connection, and every
/// registry connection of type ACR that signs in with an Entra identity. Each id once.
pub fn targets(settings: &Settings) -> Vec<ServiceConnection> {
    let mut out: Vec<ServiceConnection> = Vec::new();
    let acr = settings.registry_connections.iter().filter(|c| uses_entra_identity(c));
    for conn in settings.azure_connections.iter().chain(acr) {
        if !out.iter().any(|known| known.id.eq_ignore_ascii_case(&conn.id)) {
            out.push(conn.clone());
        }
    }
    out
}

/// An ACR registry connection whose scheme is a service principal, federation or a
/// managed identity (admin-user and username/password connections have no Entra identity).
pub fn uses_entra_identity(conn: &ServiceConnection) -> bool {
    conn.kind == ConnectionKind::DockerRegistry
        && conn.data("REGISTRYTYPE").is_some_and(|t| t.eq_ignore_ascii_case("ACR"))
        && matches!(
            conn.scheme.to_ascii_lowercase().as_str(),
            "serviceprincipal" | "workloadidentityfederation" | "managedserviceidentity"
        )
}

/// How the connection was made (`creationMode`): decides how to rotate its secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Creation {
    Automatic,
    Manual,
    Unknown,
}

/// What messages and remedies say about a connection.
struct About {
    label: String,
    input: &'static str,
    origin: Origin,
    app_id: Option<String>,
    tenant: Option<String>,
    creation: Creation,
    settings_page: Option<String>,
}

impl About {
    fn new(ctx: &Context, conn: &ServiceConnection) -> About {
        let creation = match conn.data("CREATIONMODE").map(str::to_ascii_lowercase).as_deref() {
            Some("automatic") => Creation::Automatic,
            Some("manual") => Creation::Manual,
            _ => Creation::Unknown,
        };
        About {
            label: conn.label(),
            input: conn.kind.input_name(),
            origin: conn.origin,
            app_id: conn.param("SERVICEPRINCIPALID").map(sanitize),
            tenant: conn.param("TENANTID").map(sanitize),
            creation,
            settings_page: conn.settings_page(&ctx.env),
        }
    }

    fn app(&self) -> String {
        self.app_id.clone().unwrap_or_else(|| "<appId>".into())
    }

    /// Where to edit the connection: the portal path, and the link when the job knows it.
    fn where_to_edit(&self) -> String {
        match (&self.settings_page, self.origin) {
            (_, Origin::Local) => "the AZURE_* variables of this shell".into(),
            (Some(url), _) => format!("Project settings > Service connections > {}, at {url}", self.label),
            (None, _) => format!("Project settings > Service connections > {}", self.label),
        }
    }

    fn base_data(&self, finding: Finding) -> Finding {
        let mut f = finding.data("connection", self.label.clone()).data("input", self.input);
        if let Some(app) = &self.app_id {
            f = f.data("appId", app.clone());
        }
        if let Some(tenant) = &self.tenant {
            f = f.data("tenantId", tenant.clone());
        }
        if let Some(page) = &self.settings_page {
            f = f.data("settingsUrl", page.clone());
        }
        f
    }

    fn rotate_secret(&self) -> String {
        let app = self.app();
        match (self.origin, self.creation) {
            (Origin::Local, _) => format!(
                "Create a new client secret with `az ad app credential reset --id {app} --append` and set AZURE_CLIENT_SECRET to the printed password."
            ),
            (_, Creation::Automatic) => format!(
                "Edit the service connection and save it without changes ({}): Azure DevOps then issues a new secret on its app registration. \
                 Better, convert it to workload identity federation (Edit > Convert), which leaves no secret to expire.",
                self.where_to_edit()
            ),
            _ => format!(
                "Create a new secret on the app registration, keeping the current one until the connection uses the new value: \
                 `az ad app credential reset --id {app} --append` (or portal: Microsoft Entra ID > App registrations > {app} > \
                 Certificates & secrets > New client secret; copy the Value, not the Secret ID). Paste it as the service principal key \
                 and Verify and save ({}). Or move the connection to workload identity federation, which leaves no secret to expire.",
                self.where_to_edit()
            ),
        }
    }

    fn rotate_certificate(&self) -> String {
        let app = self.app();
        let target = match self.origin {
            Origin::Local => "point AZURE_CLIENT_CERTIFICATE_PATH at the new PEM".to_string(),
            Origin::Pipeline => {
                format!(
                    "put the PEM (certificate and private key) into the connection and Verify and save ({})",
                    self.where_to_edit()
                )
            }
        };
        format!(
            "Add a new certificate to the app registration, keeping the current one until the connection uses the new one: \
             `az ad app credential reset --id {app} --create-cert --append` prints a PEM with certificate and key \
             (or upload your own with `--cert @new-cert.pem --append`); then {target}."
        )
    }
}

fn method_name(method: Method) -> &'static str {
    match method {
        Method::Secret => "secret",
        Method::Certificate => "certificate",
        Method::Federation => "workload identity federation",
        Method::ManagedIdentity => "managed identity",
    }
}

/// Whole days from `now` to `end`, rounded down (negative once past).
pub(crate) fn days_left(now: jiff::Timestamp, end: jiff::Timestamp) -> i64 {
    (end.as_second() - now.as_second()).div_euclid(86_400)
}

pub(crate) fn date(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%d").to_string()
}

/// "expires on 2026-12-09, in 17 days" / "expired on 2026-11-20, 2 days ago".
pub(crate) fn when(now: jiff::Timestamp, end: jiff::Timestamp) -> String {
    if end <= now {
        match (now.as_second() - end.as_second()).div_euclid(86_400) {
            0 => format!("expired on {} (today)", date(end)),
            1 => format!("expired on {}, 1 day ago", date(end)),
            n => format!("expired on {}, {n} days ago", date(end)),
        }
    } else {
        match days_left(now, end) {
            0 => format!("expires on {}, in less than a day", date(end)),
            1 => format!("expires on {}, in 1 day", date(end)),
            n => format!("expires on {}, in {n} days", date(end)),
        }
    }
}

async fn check_connection(ctx: &Context, conn: &ServiceConnection) -> TargetOutcome {
    let about = About::new(ctx, conn);
    let mut out = TargetOutcome::default();
    let mut facts = Map::new();
    facts.insert("connection".into(), json!(conn.id));
    facts.insert("input".into(), json!(about.input));
    if let Some(app) = &about.app_id {
        facts.insert("appId".into(), json!(app));
    }
    if let Some(tenant) = &about.tenant {
        facts.insert("tenantId".into(), json!(tenant));
    }
    run(ctx, conn, &about, &mut out, &mut facts).await;
    out.extra.insert("identity".into(), Value::Object(facts));
    out
}

async fn run(
    ctx: &Context,
    conn: &ServiceConnection,
    about: &About,
    out: &mut TargetOutcome,
    facts: &mut Map<String, Value>,
) {
    let method = match Method::of(conn) {
        Ok(m) => m,
        Err(_) if conn.scheme.eq_ignore_ascii_case("PublishProfile") => {
            out.skipped = Some("a publish-profile connection signs in with the profile, not an Entra identity".into());
            return;
        }
        Err(e) => {
            out.findings.push(token_finding(about, None, &e, None));
            return;
        }
    };
    facts.insert("method".into(), json!(method_name(method)));

    // The certificate is checked before any request: an expired or broken one is known
    // without asking anyone, and offline runs still learn when it ends.
    let mut local_cert = None;
    if method == Method::Certificate {
        match entra::connection_certificate(conn) {
            Err(e) => {
                out.findings.push(token_finding(about, Some(method), &e, None));
                return;
            }
            Ok(cert) => {
                facts.insert(
                    "certificate".into(),
                    json!({
                        "subject": sanitize(&cert.subject),
                        "thumbprint": cert.thumbprint_hex(),
                        "notAfter": cert.not_after.to_string(),
                    }),
                );
                if let Some(f) = certificate_unusable_locally(ctx, about, &cert) {
                    out.findings.push(f);
                    return;
                }
                local_cert = Some(cert);
            }
        }
    }

    if ctx.settings.offline {
        if let Some(cert) = &local_cert {
            expiry_verdict(ctx, about, &InUse::local(cert), out, facts);
        }
        out.skipped = Some("offline: no token requested and Microsoft Graph not read".into());
        return;
    }

    let credential = match Credential::prepare(ctx, conn).await {
        Ok(c) => c,
        Err(e) => {
            out.findings.push(token_finding(about, Some(method), &e, None));
            return;
        }
    };
    let scope = arm_scope(ctx, conn);
    let reads_graph = matches!(method, Method::Secret | Method::Certificate);
    let graph_url = graph::base(ctx, conn);
    // The Graph token is asked for alongside the first one: one round trip instead of two.
    let (token, graph_token) = tokio::join!(credential.token(ctx, &scope), async {
        if reads_graph {
            Some(credential.token(ctx, &graph::scope(&graph_url)).await)
        } else {
            None
        }
    });
    match token {
        Ok(token) => {
            out.proven.push(format!("Entra ID issues a token ({})", method_name(method)));
            facts.insert("token".into(), json!({"scope": scope, "expiresOn": token.expires_on.map(|t| t.to_string())}));
        }
        Err(e) => {
            out.findings.push(token_finding(about, Some(method), &e, credential.presented_claims()));
            // Whatever Entra ID said, the certificate's own end date is still worth knowing.
            if let Some(cert) = &local_cert {
                expiry_verdict(ctx, about, &InUse::local(cert), out, facts);
            }
            return;
        }
    }

    match (method, graph_token) {
        (Method::Secret | Method::Certificate, Some(graph_token)) => {
            expiry(ctx, conn, about, &credential, &graph_url, graph_token, local_cert.as_ref(), out, facts).await;
            if conn.origin == Origin::Pipeline {
                out.proven.push(format!(
                    "could use workload identity federation (no {} to expire)",
                    if method == Method::Certificate { "certificate" } else { "secret" }
                ));
                facts.insert("recommendation".into(), json!(federation_advice(about)));
            }
        }
        (Method::ManagedIdentity, _) => out.proven.push("managed identity: Azure rotates its credentials".into()),
        _ => out.proven.push("workload identity federation: no secret or certificate to expire".into()),
    }
}

/// Microsoft recommends federation over secrets and certificates; how to get there
/// depends on how the connection was made.
fn federation_advice(about: &About) -> String {
    let open = match &about.settings_page {
        Some(url) => format!("open the connection ({url})"),
        None => format!("open Project settings > Service connections > {}", about.label),
    };
    match about.creation {
        Creation::Automatic => format!(
            "Convert the connection to workload identity federation: {open} and choose Edit > Convert. \
             It then has nothing that expires."
        ),
        _ => format!(
            "Move the connection to workload identity federation: add a federated credential to app {} with the issuer and \
             subject Azure DevOps shows for the connection, then {open} and switch it to workload identity federation. \
             It then has nothing that expires.",
            about.app()
        ),
    }
}

/// The audience of the "token now": the connection's Resource Manager.
fn arm_scope(ctx: &Context, conn: &ServiceConnection) -> String {
    if let Some(resource) = conn.data("ACTIVEDIRECTORYSERVICEENDPOINTRESOURCEID") {
        return format!("{}/.default", resource.trim().trim_end_matches('/'));
    }
    let from_connection = (conn.kind == ConnectionKind::AzureRm && !ctx.endpoints.arm_overridden)
        .then(|| conn.url.as_deref().and_then(|u| base_url("url", u).ok()))
        .flatten()
        .filter(|u| u.scheme() == "https");
    let arm = from_connection.unwrap_or_else(|| ctx.endpoints.arm.clone());
    format!("{arm}.default")
}

/// An expired or not-yet-valid certificate: IDN007 without sending anything.
fn certificate_unusable_locally(ctx: &Context, about: &About, cert: &ClientCertificate) -> Option<Finding> {
    let now = ctx.now;
    let problem = if cert.not_after <= now {
        format!("{} by its own validity", when(now, cert.not_after))
    } else if cert.not_before > now + jiff::SignedDuration::from_mins(5) {
        format!("is not valid before {}", cert.not_before)
    } else {
        return None;
    };
    Some(
        about
            .base_data(Finding::new(
                Code::IDN007,
                format!(
                    "the certificate of service connection {} ({}, thumbprint {}) {problem}; no token was requested",
                    about.label,
                    sanitize(&cert.subject),
                    cert.thumbprint_hex()
                ),
            ))
            .remedy(about.rotate_certificate())
            .data("parameter", CERTIFICATE_PARAMETER)
            .data("thumbprint", cert.thumbprint_hex())
            .data("notBefore", cert.not_before.to_string())
            .data("notAfter", cert.not_after.to_string())
            .data("reason", if cert.not_after <= now { "expired" } else { "not-yet-valid" }),
    )
}

/// The credential the connection presents, and when it ends.
#[derive(Debug, Clone)]
struct InUse {
    certificate: bool,
    key_id: Option<String>,
    display_name: Option<String>,
    end: Option<jiff::Timestamp>,
    object: Option<GraphObject>,
    thumbprint: Option<String>,
    /// `graph`: the registered end date (for a certificate, the earlier of it and the
    /// certificate's own); `certificate`: the certificate's `notAfter` alone.
    source: &'static str,
}

impl InUse {
    /// A client secret registered on `object`, as Graph lists it.
    fn secret(object: GraphObject, p: &graph::PasswordCredential) -> InUse {
        InUse {
            certificate: false,
            key_id: p.key_id.clone(),
            display_name: p.display_name.clone(),
            end: p.end,
            object: Some(object),
            thumbprint: None,
            source: "graph",
        }
    }

    fn local(cert: &ClientCertificate) -> InUse {
        InUse {
            certificate: true,
            key_id: None,
            display_name: Some(sanitize(&cert.subject)),
            end: Some(cert.not_after),
            object: None,
            thumbprint: Some(cert.thumbprint_hex()),
            source: "certificate",
        }
    }

    /// "the client secret this connection uses (`azdo`, keyId ...) on app registration X".
    fn describe(&self, app: Option<&str>) -> String {
        let kind = if self.certificate { "certificate" } else { "client secret" };
        let mut parts = Vec::new();
        if let Some(name) = &self.display_name {
            parts.push(format!("`{name}`"));
        }
        if let Some(t) = &self.thumbprint {
            parts.push(format!("thumbprint {t}"));
        }
        if let Some(k) = &self.key_id {
            parts.push(format!("keyId {k}"));
        }
        let detail = if parts.is_empty() { String::new() } else { format!(" ({})", parts.join(", ")) };
        let app = app.unwrap_or("<appId>");
        let on = match self.object {
            Some(GraphObject::Application) => format!(" on app registration {app}"),
            Some(GraphObject::ServicePrincipal) => format!(" on the service principal of app {app}"),
            None => String::new(),
        };
        format!("the {kind} this connection uses{detail}{on}")
    }
}

/// IDN005 when `end` falls within `expiryErrorDays`, IDN006 within `expiryWarningDays`.
pub(crate) fn expiry_code(ctx: &Context, end: jiff::Timestamp) -> Option<Code> {
    let remaining = end.as_second() - ctx.now.as_second();
    let within = |days: u32| remaining <= i64::from(days) * 86_400;
    if within(ctx.settings.expiry_error_days) {
        Some(Code::IDN005)
    } else if within(ctx.settings.expiry_warning_days) {
        Some(Code::IDN006)
    } else {
        None
    }
}

/// IDN005/IDN006 for the credential in use, or a statement of how long it lasts.
fn expiry_verdict(
    ctx: &Context,
    about: &About,
    in_use: &InUse,
    out: &mut TargetOutcome,
    facts: &mut Map<String, Value>,
) {
    let now = ctx.now;
    let Some(end) = in_use.end else {
        out.proven.push(format!("{} has no end date", in_use.describe(about.app_id.as_deref())));
        return;
    };
    let days = days_left(now, end);
    facts.insert(
        "credential".into(),
        json!({
            "type": if in_use.certificate { "certificate" } else { "secret" },
            "keyId": in_use.key_id,
            "displayName": in_use.display_name,
            "expiresOn": end.to_string(),
            "daysLeft": days,
            "source": in_use.source,
        }),
    );
    let Some(code) = expiry_code(ctx, end) else {
        out.proven.push(format!(
            "{} valid until {} ({days} days)",
            in_use.describe(about.app_id.as_deref()),
            date(end)
        ));
        return;
    };
    let threshold =
        if code == Code::IDN005 { ctx.settings.expiry_error_days } else { ctx.settings.expiry_warning_days };
    let remedy = if in_use.certificate { about.rotate_certificate() } else { about.rotate_secret() };
    out.findings.push(
        about
            .base_data(Finding::new(code, format!("{} {}", in_use.describe(about.app_id.as_deref()), when(now, end))))
            .remedy(remedy)
            .data("expiresOn", date(end))
            .data("keyId", in_use.key_id.clone().map(Value::from).unwrap_or(Value::Null))
            .data("daysLeft", days)
            .data("thresholdDays", threshold)
            .data("credentialType", if in_use.certificate { "certificate" } else { "secret" })
            .data("source", in_use.source),
    );
}

/// Reads the app's credentials from Graph, identifies the one in use and judges its end
/// date; the others of the same app become notes when they end soon or have ended.
#[allow(clippy::too_many_arguments)]
async fn expiry(
    ctx: &Context,
    conn: &ServiceConnection,
    about: &About,
    credential: &Credential,
    graph_url: &url::Url,
    graph_token: Result<AccessToken, TokenError>,
    cert: Option<&ClientCertificate>,
    out: &mut TargetOutcome,
    facts: &mut Map<String, Value>,
) {
    let app_id = credential.client_id.clone().unwrap_or_default();
    let mut failures: Vec<(Option<GraphObject>, String, bool)> = Vec::new();
    let mut readable: Vec<ObjectCredentials> = Vec::new();
    match graph_token {
        Err(e) => failures.push((None, format!("no token for Microsoft Graph: {e}"), false)),
        Ok(token) => {
            let (mut app, sp) = tokio::join!(
                graph::read(ctx, graph_url, &token.token, GraphObject::Application, &app_id),
                graph::read(ctx, graph_url, &token.token, GraphObject::ServicePrincipal, &app_id)
            );
            // Automatic connections record the application's object id; the direct read by
            // object id may be allowed where the appId form is not.
            if let (Err(GraphError::Denied { .. }), Some(object_id)) = (&app, conn.data("APPOBJECTID")) {
                if let Ok(found) = graph::read_application_by_object_id(ctx, graph_url, &token.token, object_id).await {
                    app = Ok(found);
                }
            }
            for (object, result) in [(GraphObject::Application, app), (GraphObject::ServicePrincipal, sp)] {
                match result {
                    Ok(c) => readable.push(c),
                    // Another tenant's app, or a service principal without an application here:
                    // nothing to read is not a refusal.
                    Err(GraphError::NotFound { .. }) => {}
                    Err(e) => {
                        // 401 means the token did not suit this Graph (wrong cloud?), not a missing permission.
                        let denied = matches!(e, GraphError::Denied { status: 403, .. });
                        failures.push((Some(object), format!("{} read: {e}", object.as_str()), denied));
                    }
                }
            }
        }
    }

    let secret_prefix: Option<String> = (credential.method == Method::Secret)
        .then(|| conn.secret("SERVICEPRINCIPALKEY").map(|s| s.expose().chars().take(3).collect()))
        .flatten();
    let mut candidates: Vec<(InUse, (GraphObject, Option<String>))> = Vec::new();
    for object in &readable {
        if let Some(cert) = cert {
            for key in object.keys.iter().filter(|k| k.is_client_credential() && k.matches(cert.sha1(), cert.sha256()))
            {
                candidates.push((
                    InUse {
                        certificate: true,
                        key_id: key.key_id.clone(),
                        display_name: key.display_name.clone().or_else(|| Some(sanitize(&cert.subject))),
                        // Entra ID goes by the registered end date; the certificate's own may be earlier.
                        end: match key.end {
                            Some(e) => Some(e.min(cert.not_after)),
                            None => Some(cert.not_after),
                        },
                        object: Some(object.object),
                        thumbprint: Some(cert.thumbprint_hex()),
                        source: "graph",
                    },
                    (object.object, key.key_id.clone()),
                ));
            }
        } else if let Some(prefix) = &secret_prefix {
            for p in object.passwords.iter().filter(|p| p.hint.as_deref() == Some(prefix.as_str())) {
                candidates.push((InUse::secret(object.object, p), (object.object, p.key_id.clone())));
            }
        }
    }
    // Secrets made before Graph kept hints have none: a lone secret must be the one in use.
    if candidates.is_empty() && cert.is_none() && failures.is_empty() {
        let all: Vec<_> = readable.iter().flat_map(|o| o.passwords.iter().map(move |p| (o.object, p))).collect();
        if let [(object, p)] = all.as_slice() {
            if p.hint.as_deref().is_none_or(str::is_empty) {
                candidates.push((InUse::secret(*object, p), (*object, p.key_id.clone())));
            }
        }
    }
    // Several secrets may share a three-character hint: judge the one that ends first.
    candidates.sort_by_key(|(c, _)| c.end.unwrap_or(jiff::Timestamp::MAX));
    let shared_hint = candidates.len() > 1 && cert.is_none();

    match candidates.first() {
        Some((in_use, _)) => {
            expiry_verdict(ctx, about, in_use, out, facts);
            if shared_hint {
                out.proven.push(format!(
                    "{} secrets of the app start with the same characters; the earliest end date was judged",
                    candidates.len()
                ));
            }
        }
        None => {
            if !failures.is_empty() {
                out.findings.push(graph_unreadable(about, &failures, cert.is_some()));
            } else {
                out.proven.push(format!(
                    "the {} in use was not found among the app's credentials in Microsoft Graph",
                    if cert.is_some() { "certificate" } else { "secret" }
                ));
            }
            if let Some(cert) = cert {
                expiry_verdict(ctx, about, &InUse::local(cert), out, facts);
            }
        }
    }

    let in_use_ids: Vec<&(GraphObject, Option<String>)> = candidates.iter().map(|(_, id)| id).collect();
    other_credentials(ctx, about, &readable, &in_use_ids, !candidates.is_empty(), out);
}

/// IDN008: Graph would not tell when the credential ends.
fn graph_unreadable(about: &About, failures: &[(Option<GraphObject>, String, bool)], certificate: bool) -> Finding {
    let denied = failures.iter().any(|(_, _, d)| *d);
    let reasons: Vec<&str> = failures.iter().map(|(_, r, _)| r.as_str()).collect();
    let app = about.app();
    let local = if certificate { " (the certificate's own end date is still checked)" } else { "" };
    let message = format!(
        "cannot tell when the {} of app {app} expires: Microsoft Graph {}: {}{local}",
        if certificate { "certificate" } else { "client secret" },
        if denied { "refused the read" } else { "could not be read" },
        reasons.join("; ")
    );
    let remedy = if denied {
        format!(
            "Let the connection's identity read its own app registration: grant it the Microsoft Graph application permission \
             Application.Read.All with admin consent (`az ad app permission add --id {app} --api {GRAPH_APP_ID} \
             --api-permissions {APPLICATION_READ_ALL_ROLE}=Role`, then `az ad app permission admin-consent --id {app}`), \
             or have someone who may read the directory track it with `az ad app credential list --id {app}`. \
             With workload identity federation there is nothing to track."
        )
    } else {
        "Make sure this agent reaches Microsoft Graph (proxy, firewall, the cloud's Graph URL in the connection or \
         AZP_PREFLIGHT_GRAPH_URL); until then expiry is not checked."
            .to_string()
    };
    about
        .base_data(Finding::new(Code::IDN008, message))
        .remedy(remedy)
        .data("reason", if denied { "denied" } else { "unavailable" })
        .data("errors", reasons.iter().map(|r| r.to_string()).collect::<Vec<_>>())
        .data("permission", "Application.Read.All")
}

/// Notes for the app's other credentials that end within the warning window or have ended.
fn other_credentials(
    ctx: &Context,
    about: &About,
    readable: &[ObjectCredentials],
    in_use: &[&(GraphObject, Option<String>)],
    identified: bool,
    out: &mut TargetOutcome,
) {
    let now = ctx.now;
    let horizon = i64::from(ctx.settings.expiry_warning_days) * 86_400;
    let mut notes = Vec::new();
    for object in readable {
        let passwords = object.passwords.iter().map(|p| ("client secret", &p.key_id, &p.display_name, p.end));
        let keys = object
            .keys
            .iter()
            .filter(|k| k.is_client_credential())
            .map(|k| ("certificate", &k.key_id, &k.display_name, k.end));
        for (kind, key_id, name, end) in passwords.chain(keys) {
            let Some(end) = end else { continue };
            if in_use.iter().any(|(o, k)| *o == object.object && k == key_id) {
                continue;
            }
            if end.as_second() - now.as_second() > horizon {
                continue;
            }
            notes.push((end, kind, key_id.clone(), name.clone(), object.object));
        }
    }
    notes.sort_by_key(|n| n.0);
    let app = about.app();
    let total = notes.len();
    for (end, kind, key_id, name, object) in notes.into_iter().take(MAX_OTHER_NOTES) {
        let id = key_id.clone().unwrap_or_else(|| "?".into());
        let label = name.as_deref().map(|n| format!("`{n}`, ")).unwrap_or_default();
        let expired = end <= now;
        let command = match object {
            GraphObject::Application => format!("az ad app credential delete --id {app} --key-id {id}"),
            GraphObject::ServicePrincipal => format!("az ad sp credential delete --id {app} --key-id {id}"),
        };
        let remedy = if expired {
            format!("Nothing breaks for this connection. Remove the dead credential to keep the app tidy: `{command}`.")
        } else {
            format!(
                "Nothing breaks for this connection. If another pipeline or service signs in with it, rotate it there; \
                 otherwise let it lapse or remove it: `{command}`."
            )
        };
        out.findings.push(
            about
                .base_data(Finding::new(
                    Code::IDN006,
                    format!(
                        "{} {kind} ({label}keyId {id}) {} {}; {}",
                        if identified { "another" } else { "a" },
                        match object {
                            GraphObject::Application => format!("on app registration {app}"),
                            GraphObject::ServicePrincipal => format!("on the service principal of app {app}"),
                        },
                        when(now, end),
                        if identified {
                            "this connection does not use it"
                        } else {
                            "the credential this connection uses could not be identified, so it may be this one"
                        }
                    ),
                ))
                .severity(Severity::Note)
                .remedy(remedy)
                .data("expiresOn", date(end))
                .data("keyId", key_id.map(Value::from).unwrap_or(Value::Null))
                .data("daysLeft", days_left(now, end))
                .data("credentialType", if kind == "certificate" { "certificate" } else { "secret" })
                .data("inUse", if identified { Value::from(false) } else { Value::Null }),
        );
    }
    if total > MAX_OTHER_NOTES {
        out.proven.push(format!(
            "{} more credentials of app {app} end soon or have ended (`az ad app credential list --id {app}`)",
            total - MAX_OTHER_NOTES
        ));
    }
}

/// Entra ID codes that mean federation did not match or is not allowed.
const FEDERATION_CODES: &[u64] = &[70021, 700211, 700213, 7002138, 70025, 700223, 700238, 70052];

/// Maps a token failure to its finding. Classification uses `error_codes` only; the
/// description is shown as evidence.
fn token_finding(
    about: &About,
    method: Option<Method>,
    error: &TokenError,
    claims: Option<PresentedClaims>,
) -> Finding {
    match error {
        TokenError::Entra(e) => entra_finding(about, method, e, claims),
        TokenError::Oidc { status, detail } => {
            let hint = match status {
                Some(401) => " The job access token was refused.",
                Some(400 | 403 | 404) => {
                    " The pipeline may not be authorised to use this connection, or it is not a workload identity connection."
                }
                _ => "",
            };
            about
                .base_data(Finding::new(
                    Code::IDN009,
                    format!("could not get an ID token for workload identity federation: {}.{hint}", sanitize(detail)),
                ))
                .remedy(format!(
                    "Run the step in a pipeline job that may use the connection: authorise the pipeline under {} > Security > \
                     Pipeline permissions, and reference the connection in the task's `azureSubscription` input so the job \
                     receives SYSTEM_OIDCREQUESTURI and its access token.",
                    about.where_to_edit()
                ))
                .data("status", status.map(Value::from).unwrap_or(Value::Null))
                .data("stage", "oidc")
        }
        TokenError::ManagedIdentity { status, detail } => {
            let (reason, remedy) = match status {
                None => (
                    "absent",
                    "Managed identity connections work only on self-hosted agents running on an Azure VM or virtual machine \
                     scale set: run the job in such a pool, or switch the connection to workload identity federation.",
                ),
                Some(400) => (
                    "no-identity",
                    "Assign the identity to the agent's VM or scale set (`az vm identity assign -g <group> -n <vm>`, or \
                     `--identities <resource id>` for a user-assigned one) and make sure it is the identity the connection names.",
                ),
                Some(_) if detail.contains("not as Azure's") => (
                    "not-azure",
                    "This agent is not on Azure: its metadata address belongs to another cloud or service. Run the job on an \
                     Azure VM or scale set agent, or use workload identity federation.",
                ),
                Some(_) => (
                    "unavailable",
                    "The metadata service had trouble; retry later. If it persists, check the VM's health and that no proxy \
                     intercepts 169.254.169.254.",
                ),
            };
            about
                .base_data(Finding::new(Code::IDN010, format!("managed identity unavailable: {}", sanitize(detail))))
                .remedy(remedy)
                .data("status", status.map(Value::from).unwrap_or(Value::Null))
                .data("reason", reason)
        }
        TokenError::Config { parameter, problem } => {
            let code = match parameter.as_str() {
                p if p == CERTIFICATE_PARAMETER => Code::IDN007,
                "serviceprincipalkey" => Code::IDN002,
                _ => Code::IDN011,
            };
            let remedy = match code {
                Code::IDN007 => format!(
                    "Give the connection one PEM text holding the certificate and its unencrypted RSA private key \
                     (`cat cert.pem key.pem`) ({}); the certificate's public part must be on the app registration.",
                    about.where_to_edit()
                ),
                _ => format!("Edit the service connection and set `{parameter}` ({}).", about.where_to_edit()),
            };
            about
                .base_data(Finding::new(
                    code,
                    format!("service connection {}: parameter `{parameter}` {problem}", about.label),
                ))
                .remedy(remedy)
                .data("parameter", parameter.clone())
        }
        TokenError::Unusable { status, excerpt, request_id } => about
            .base_data(Finding::new(
                Code::IDN011,
                format!(
                    "the token endpoint answered HTTP {status} with a body that is not Entra ID's (a proxy or gateway page?){}: {excerpt}",
                    request_id.as_deref().map(|r| format!(", request id {r}")).unwrap_or_default()
                ),
            ))
            .remedy(
                "Something between the agent and Entra ID answered instead of it. Let the agent reach the authority host directly \
                 or through a proxy that passes it unchanged (agent proxy bypass list or NO_PROXY), then run again.",
            )
            .data("status", *status)
            .data("excerpt", excerpt.clone())
            .data("requestId", request_id.clone().map(Value::from).unwrap_or(Value::Null)),
        TokenError::Transport(e) if e.kind == HttpErrorKind::OutOfFiles => {
            about.base_data(crate::net::limit::out_of_files_finding("the token request", &e.detail))
        }
        TokenError::Transport(e) => about
            .base_data(Finding::new(
                Code::IDN011,
                match e.kind {
                    HttpErrorKind::Body | HttpErrorKind::BodyTooLarge => {
                        format!("the Entra ID token endpoint's answer could not be read: {}", sanitize(&e.detail))
                    }
                    HttpErrorKind::Refused => format!("the token request was not sent: {}", sanitize(&e.detail)),
                    _ => format!("no answer from the Entra ID token endpoint: {}", sanitize(&e.detail)),
                },
            ))
            .remedy(
                "Check that this agent resolves and reaches the authority host (DNS, firewall, proxy settings), and that the \
                 connection's cloud is right.",
            )
            .data("kind", format!("{:?}", e.kind).to_ascii_lowercase()),
    }
}

fn entra_finding(about: &About, method: Option<Method>, e: &EntraError, claims: Option<PresentedClaims>) -> Finding {
    let app = about.app();
    let tenant = about.tenant.clone().unwrap_or_else(|| "<tenant>".into());
    let ids = format!(
        "{}{}",
        e.trace_id.as_deref().map(|t| format!(", trace id {t}")).unwrap_or_default(),
        e.correlation_id.as_deref().map(|c| format!(", correlation id {c}")).unwrap_or_default()
    );
    let headline = e.headline();
    let federation = method == Some(Method::Federation);
    let (code, message, remedy) = if e.has_code(7000222) {
        (Code::IDN001, format!("the client secret of app {app} has expired ({headline}{ids})"), about.rotate_secret())
    } else if e.has_code(7000215) {
        (
            Code::IDN002,
            format!("Entra ID rejected the client secret of app {app} as invalid ({headline}{ids}); often the secret's ID was pasted instead of its value"),
            about.rotate_secret(),
        )
    } else if e.has_code(700016) {
        (
            Code::IDN003,
            format!("application {app} was not found in tenant {tenant} ({headline}{ids})"),
            format!(
                "Check the service principal (client) id and the tenant id in the connection ({}): the app may have been deleted, \
                 or it lives in another tenant. `az ad sp show --id {app}` in the tenant tells.",
                about.where_to_edit()
            ),
        )
    } else if e.has_code(90002) || e.has_code(900023) {
        (
            Code::IDN004,
            format!("tenant {tenant} was not found ({headline}{ids})"),
            format!(
                "Set the connection's tenant id to the directory (tenant) id of the app registration ({}); \
                 `az account show --query tenantId` prints yours. For a sovereign cloud, check its authority URL.",
                about.where_to_edit()
            ),
        )
    } else if FEDERATION_CODES.iter().any(|c| e.has_code(*c)) || (federation && e.has_code(700024)) {
        let claims = claims.unwrap_or_default();
        let presented = match (&claims.issuer, &claims.subject) {
            (Some(i), Some(s)) => format!("; the pipeline presented issuer `{i}` and subject `{s}`"),
            _ => String::new(),
        };
        let remedy = if e.has_code(700024) {
            "The ID token was outside its validity when Entra ID saw it: check the agent's clock (AGT003) and run again.".to_string()
        } else if e.has_code(700223) || e.has_code(700238) {
            "A tenant policy restricts workload identity federation or this issuer: ask the tenant's administrators to allow it."
                .to_string()
        } else if e.has_code(70052) {
            "Federation with the Entra issuer needs a single-tenant app or a managed identity: make the app single-tenant, \
             or use a user-assigned managed identity for the connection."
                .to_string()
        } else {
            let auto = if about.creation == Creation::Automatic {
                format!(
                    "Edit and save the connection ({}) so Azure DevOps recreates its federated credential, or ",
                    about.where_to_edit()
                )
            } else {
                String::new()
            };
            format!(
                "{auto}add a federated credential to app {app} with exactly the issuer and subject the pipeline presents and \
                 audience api://AzureADTokenExchange (Microsoft Entra ID > App registrations > {app} > Certificates & secrets > \
                 Federated credentials, or `az ad app federated-credential create --id {app} --parameters <json>`). Renaming the \
                 organization, project or connection changes the subject."
            )
        };
        (
            Code::IDN009,
            format!(
                "workload identity federation for app {app} failed ({headline}{ids}){presented}: {}",
                e.description
            ),
            remedy,
        )
    } else if e.has_code(700027) {
        // The code says the assertion failed validation; the description tells an expired
        // registered key from one that was never uploaded, which only changes the advice.
        let remedy = if e.description.contains("expired") {
            about.rotate_certificate()
        } else {
            format!(
                "Upload the certificate's public part to app {app} (Microsoft Entra ID > App registrations > {app} > \
                 Certificates & secrets > Certificates > Upload, or `az ad app credential reset --id {app} --cert @cert.pem --append`)."
            )
        };
        (
            Code::IDN007,
            format!(
                "Entra ID did not accept the certificate's signature for app {app} ({headline}{ids}): {}",
                e.description
            ),
            remedy,
        )
    } else {
        let what = if e.has_code(700024) {
            "The assertion was outside its validity: check the agent's clock (AGT003)."
        } else {
            "Look the code up in Microsoft's error reference and quote the trace and correlation ids to support if needed."
        };
        (
            Code::IDN011,
            format!(
                "Entra ID refused the token request for app {app}: HTTP {} {} ({headline}{ids}): {}",
                e.status, e.error, e.description
            ),
            match e.codes.first() {
                Some(c) => format!("{what} Error reference: https://login.microsoftonline.com/error?code={c}"),
                None => what.to_string(),
            },
        )
    };
    about
        .base_data(Finding::new(code, message))
        .remedy(remedy)
        .data("status", e.status)
        .data("error", e.error.clone())
        .data("errorCodes", e.codes.clone())
        .data("traceId", e.trace_id.clone().map(Value::from).unwrap_or(Value::Null))
        .data("correlationId", e.correlation_id.clone().map(Value::from).unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::test_context;
    use std::collections::BTreeMap;

    const ID: &str = "1dfdea68-9549-409e-abee-c5da69cfec5f";

    fn conn(kind: ConnectionKind, scheme: &str, data: &[(&str, &str)]) -> ServiceConnection {
        ServiceConnection {
            id: ID.into(),
            kind,
            origin: Origin::Pipeline,
            url: None,
            scheme: scheme.into(),
            params: BTreeMap::from([
                ("SERVICEPRINCIPALID".to_string(), "app-1".to_string()),
                ("TENANTID".to_string(), "tenant-1".to_string()),
            ]),
            secrets: BTreeMap::new(),
            data: data.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    fn about(mode: Creation) -> About {
        About {
            label: format!("{ID} (Prod)"),
            input: "azureSubscription",
            origin: Origin::Pipeline,
            app_id: Some("app-1".into()),
            tenant: Some("tenant-1".into()),
            creation: mode,
            settings_page: Some(format!("https://dev.azure.com/o/p/_settings/adminservices?resourceId={ID}")),
        }
    }

    fn entra(status: u16, error: &str, codes: &[u64], description: &str) -> TokenError {
        TokenError::Entra(Box::new(EntraError {
            status,
            error: error.into(),
            codes: codes.to_vec(),
            description: description.into(),
            trace_id: Some("t-1".into()),
            correlation_id: Some("c-1".into()),
            timestamp: None,
        }))
    }

    #[test]
    fn entra_codes_map_to_findings_by_code_only() {
        let a = about(Creation::Manual);
        let cases: &[(&[u64], Option<Method>, Code)] = &[
            (&[7000222], Some(Method::Secret), Code::IDN001),
            (&[7000215], Some(Method::Secret), Code::IDN002),
            (&[700016], Some(Method::Secret), Code::IDN003),
            (&[90002], Some(Method::Secret), Code::IDN004),
            (&[900023], Some(Method::Secret), Code::IDN004),
            (&[70021], Some(Method::Federation), Code::IDN009),
            (&[700211], Some(Method::Federation), Code::IDN009),
            (&[700213], Some(Method::Federation), Code::IDN009),
            (&[7002138], Some(Method::Federation), Code::IDN009),
            (&[70025], Some(Method::Federation), Code::IDN009),
            (&[700223], Some(Method::Federation), Code::IDN009),
            (&[700238], Some(Method::Federation), Code::IDN009),
            (&[70052], Some(Method::Federation), Code::IDN009),
            (&[700024], Some(Method::Federation), Code::IDN009),
            (&[700024], Some(Method::Certificate), Code::IDN011),
            (&[700027], Some(Method::Certificate), Code::IDN007),
            (&[53003], Some(Method::Secret), Code::IDN011),
            (&[], Some(Method::Secret), Code::IDN011),
        ];
        for (codes, method, expected) in cases {
            // The description deliberately names another code: only `error_codes` decide.
            let f = token_finding(&a, *method, &entra(400, "invalid_client", codes, "AADSTS7000222: misleading"), None);
            assert_eq!(f.code, *expected, "{codes:?} {method:?}");
            assert!(f.message.contains("t-1") && f.message.contains("c-1"), "{}", f.message);
            assert_eq!(f.data["traceId"], "t-1");
            if matches!(expected, Code::IDN001 | Code::IDN002 | Code::IDN003 | Code::IDN004) {
                assert!(f.remedy.contains(&format!("resourceId={ID}")), "links the connection: {}", f.remedy);
            }
        }
    }

    #[test]
    fn remedies_follow_the_creation_mode() {
        let err = entra(401, "invalid_client", &[7000222], "");
        let auto = token_finding(&about(Creation::Automatic), Some(Method::Secret), &err, None);
        assert!(auto.remedy.contains("save it without changes") && auto.remedy.contains("Convert"), "{}", auto.remedy);
        assert!(!auto.remedy.contains("az ad app credential reset"));
        let manual = token_finding(&about(Creation::Manual), Some(Method::Secret), &err, None);
        assert!(manual.remedy.contains("az ad app credential reset --id app-1 --append"), "{}", manual.remedy);
        assert!(manual.remedy.contains(&format!("resourceId={ID}")));
        let mut local = about(Creation::Unknown);
        local.origin = Origin::Local;
        local.settings_page = None;
        let f = token_finding(&local, Some(Method::Secret), &err, None);
        assert!(f.remedy.contains("AZURE_CLIENT_SECRET"), "{}", f.remedy);
    }

    #[test]
    fn federation_failures_show_the_presented_claims() {
        let claims = PresentedClaims {
            issuer: Some("https://vstoken.dev.azure.com/org".into()),
            subject: Some("sc://o/p/c".into()),
            audience: Some("api://AzureADTokenExchange".into()),
        };
        let f = token_finding(
            &about(Creation::Manual),
            Some(Method::Federation),
            &entra(401, "invalid_client", &[700213], "No matching federated identity record"),
            Some(claims),
        );
        assert_eq!(f.code, Code::IDN009);
        assert!(f.message.contains("subject `sc://o/p/c`") && f.message.contains("No matching"), "{}", f.message);
        assert!(f.remedy.contains("az ad app federated-credential create --id app-1"), "{}", f.remedy);
    }

    #[test]
    fn configuration_problems_name_the_parameter() {
        let a = about(Creation::Manual);
        for (parameter, code) in [
            ("tenantid", Code::IDN011),
            ("serviceprincipalkey", Code::IDN002),
            (CERTIFICATE_PARAMETER, Code::IDN007),
            ("scheme", Code::IDN011),
        ] {
            let f = token_finding(
                &a,
                None,
                &TokenError::Config { parameter: parameter.into(), problem: "is missing or empty".into() },
                None,
            );
            assert_eq!(f.code, code, "{parameter}");
            assert!(
                f.message.contains(&format!("service connection {ID} (Prod): parameter `{parameter}`")),
                "{}",
                f.message
            );
            assert_eq!(f.data["parameter"], parameter);
        }
    }

    #[test]
    fn days_and_phrasing() {
        let now: jiff::Timestamp = "2026-11-22T12:00:00Z".parse().unwrap();
        let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        assert_eq!(when(now, at("2026-11-25T18:00:00Z")), "expires on 2026-11-25, in 3 days");
        assert_eq!(when(now, at("2026-11-23T11:00:00Z")), "expires on 2026-11-23, in less than a day");
        assert_eq!(when(now, at("2026-11-23T12:00:00Z")), "expires on 2026-11-23, in 1 day");
        assert_eq!(when(now, at("2026-11-22T11:00:00Z")), "expired on 2026-11-22 (today)");
        assert_eq!(when(now, at("2026-11-21T12:00:00Z")), "expired on 2026-11-21, 1 day ago");
        assert_eq!(when(now, at("2026-10-13T12:00:00Z")), "expired on 2026-10-13, 40 days ago");
        assert_eq!(days_left(now, at("2026-11-21T12:00:00Z")), -1);
    }

    #[test]
    fn thresholds_decide_error_warning_or_proof() {
        let ctx = test_context(&[("INPUT_EXPIRYWARNINGDAYS", "30"), ("INPUT_EXPIRYERRORDAYS", "7")]);
        let verdict = |days: i64| {
            let in_use = InUse {
                certificate: false,
                key_id: Some("k".into()),
                display_name: None,
                end: Some(ctx.now + jiff::SignedDuration::from_secs(days * 86_400 + 60)),
                object: Some(GraphObject::Application),
                thumbprint: None,
                source: "graph",
            };
            let mut out = TargetOutcome::default();
            expiry_verdict(&ctx, &about(Creation::Manual), &in_use, &mut out, &mut Map::new());
            (out.findings.first().map(|f| (f.code, f.severity)), out.proven)
        };
        assert_eq!(verdict(3).0, Some((Code::IDN005, Severity::Error)));
        assert_eq!(verdict(7).0, Some((Code::IDN006, Severity::Warning)), "7 days and a minute is outside 7 days");
        assert_eq!(verdict(29).0, Some((Code::IDN006, Severity::Warning)));
        let (none, proven) = verdict(31);
        assert!(none.is_none());
        assert!(proven[0].contains("valid until") && proven[0].contains("(31 days)"), "{proven:?}");
    }

    #[test]
    fn other_credentials_become_notes_worded_by_whether_the_one_in_use_is_known() {
        let ctx = test_context(&[]);
        let password = |key: &str, days: i64| graph::PasswordCredential {
            key_id: Some(key.into()),
            display_name: Some(key.into()),
            hint: Some("abc".into()),
            end: Some(ctx.now + jiff::SignedDuration::from_secs(days * 86_400)),
        };
        let objects = vec![ObjectCredentials {
            object: GraphObject::Application,
            display_name: None,
            passwords: vec![password("in-use", 10), password("dead", -3), password("far", 300), password("soon", 12)],
            keys: Vec::new(),
        }];
        let in_use = (GraphObject::Application, Some("in-use".to_string()));
        let mut out = TargetOutcome::default();
        other_credentials(&ctx, &about(Creation::Manual), &objects, &[&in_use], true, &mut out);
        let keys: Vec<&Value> = out.findings.iter().map(|f| &f.data["keyId"]).collect();
        assert_eq!(keys, [&json!("dead"), &json!("soon")], "earliest first, in-use and far-future left out");
        assert!(out.findings.iter().all(|f| f.code == Code::IDN006 && f.severity == Severity::Note));
        assert!(
            out.findings[0].message.starts_with("another client secret (`dead`, keyId dead)"),
            "{}",
            out.findings[0].message
        );
        assert!(out.findings[0].remedy.contains("az ad app credential delete --id app-1 --key-id dead"));

        let mut out = TargetOutcome::default();
        other_credentials(&ctx, &about(Creation::Manual), &objects, &[], false, &mut out);
        assert_eq!(out.findings.len(), 3);
        assert!(
            out.findings[0].message.contains("could not be identified, so it may be this one"),
            "{}",
            out.findings[0].message
        );
        assert_eq!(out.findings[0].data["inUse"], Value::Null);
    }

    #[test]
    fn targets_are_azure_connections_and_entra_acr_connections_once_each() {
        let mut ctx = test_context(&[]);
        let settings = &mut Arc::get_mut(&mut ctx).unwrap().settings;
        let arm = conn(ConnectionKind::AzureRm, "ServicePrincipal", &[]);
        let acr = |id: &str, scheme: &str, kind: &str| {
            let mut c = conn(ConnectionKind::DockerRegistry, scheme, &[("REGISTRYTYPE", kind)]);
            c.id = id.into();
            c
        };
        settings.azure_connections = vec![arm.clone(), arm];
        settings.registry_connections = vec![
            acr("acr-sp", "ServicePrincipal", "ACR"),
            acr("acr-wif", "WorkloadIdentityFederation", "acr"),
            acr("acr-admin", "UsernamePassword", "ACR"),
            acr("hub", "UsernamePassword", "Others"),
        ];
        let ids: Vec<String> = targets(settings).into_iter().map(|c| c.id).collect();
        assert_eq!(ids, [ID, "acr-sp", "acr-wif"]);
    }

    #[test]
    fn graph_and_resource_manager_urls_follow_the_connections_cloud() {
        let ctx = test_context(&[]);
        let base = |data: &[(&str, &str)]| {
            graph::base(&ctx, &conn(ConnectionKind::AzureRm, "ServicePrincipal", data)).to_string()
        };
        assert_eq!(base(&[]), "https://graph.microsoft.com/");
        assert_eq!(
            base(&[("GRAPHURL", "https://graph.windows.net/"), ("ENVIRONMENT", "AzureUSGovernment")]),
            "https://graph.microsoft.us/"
        );
        assert_eq!(
            base(&[("MICROSOFTGRAPHURL", "https://microsoftgraph.chinacloudapi.cn")]),
            "https://microsoftgraph.chinacloudapi.cn/"
        );
        assert_eq!(
            base(&[("GRAPHURL", "https://graph.contoso-stack.example/")]),
            "https://graph.contoso-stack.example/"
        );
        let overridden = test_context(&[("AZP_PREFLIGHT_GRAPH_URL", "http://127.0.0.1:9/g")]);
        let c =
            conn(ConnectionKind::AzureRm, "ServicePrincipal", &[("MICROSOFTGRAPHURL", "https://graph.microsoft.us/")]);
        assert_eq!(graph::base(&overridden, &c).to_string(), "http://127.0.0.1:9/g/");
        assert_eq!(graph::scope(&graph::base(&overridden, &c)), "http://127.0.0.1:9/g/.default");

        let mut arm = conn(ConnectionKind::AzureRm, "ServicePrincipal", &[]);
        arm.url = Some("https://management.usgovcloudapi.net".into());
        assert_eq!(arm_scope(&ctx, &arm), "https://management.usgovcloudapi.net/.default");
        arm.data
            .insert("ACTIVEDIRECTORYSERVICEENDPOINTRESOURCEID".into(), "https://management.core.windows.net/".into());
        assert_eq!(arm_scope(&ctx, &arm), "https://management.core.windows.net/.default");
        let acr = conn(ConnectionKind::DockerRegistry, "ServicePrincipal", &[]);
        assert_eq!(arm_scope(&ctx, &acr), "https://management.azure.com/.default");
    }
}
