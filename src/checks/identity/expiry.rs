//! Credential expiry (IDN005, IDN006, IDN007, IDN008): when the credential a connection
//! uses ends, from the end dates registered in Microsoft Graph and from a certificate's
//! own validity, worded as "expires on …, in N days". IDN005 within `expiryErrorDays`,
//! IDN006 within `expiryWarningDays` (also as notes for the app's other credentials),
//! IDN007 for a certificate that is unusable by its own dates, IDN008 when Graph cannot
//! be read.

use serde_json::{json, Map, Value};

use super::about::About;
use crate::azure::certificate::ClientCertificate;
use crate::azure::entra::{AccessToken, Credential, Method, TokenError, CERTIFICATE_PARAMETER};
use crate::azure::graph::{self, GraphError, GraphObject, ObjectCredentials};
use crate::check::{Context, TargetOutcome};
use crate::codes::Code;
use crate::codes::Severity;
use crate::connections::ServiceConnection;
use crate::expiry::{date, days_left, when};
use crate::finding::Finding;
use crate::sanitize::sanitize;

/// At most this many notes about an app's other credentials, so one crowded app
/// registration does not bury the rest of the report.
const MAX_OTHER_NOTES: usize = 5;

/// Microsoft Graph's application id and the `Application.Read.All` app role.
const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
const APPLICATION_READ_ALL_ROLE: &str = "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30";

/// An expired or not-yet-valid certificate: IDN007 without sending anything.
pub(super) fn certificate_unusable_locally(ctx: &Context, about: &About, cert: &ClientCertificate) -> Option<Finding> {
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
pub(super) struct InUse {
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

    pub(super) fn local(cert: &ClientCertificate) -> InUse {
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
    ctx.settings.expiry_windows().code(ctx.now, end)
}

/// IDN005/IDN006 for the credential in use, or a statement of how long it lasts.
pub(super) fn expiry_verdict(
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
pub(super) async fn expiry(
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
            let services = ctx.services();
            let (mut app, sp) = tokio::join!(
                graph::read(&services, graph_url, &token.token, GraphObject::Application, &app_id),
                graph::read(&services, graph_url, &token.token, GraphObject::ServicePrincipal, &app_id)
            );
            // Automatic connections record the application's object id; the direct read by
            // object id may be allowed where the appId form is not.
            if let (Err(GraphError::Denied { .. }), Some(object_id)) = (&app, conn.data("APPOBJECTID")) {
                if let Ok(found) =
                    graph::read_application_by_object_id(&services, graph_url, &token.token, object_id).await
                {
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

#[cfg(test)]
mod tests {
    use super::super::about::Creation;
    use super::super::tests::about;
    use super::*;
    use crate::check::test_context;

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
}
