//! Classifies a failed token request into its finding and remedy: Entra ID errors by
//! their `error_codes` only (7000222 → IDN001, 7000215 → IDN002, 700016 → IDN003,
//! 90002/900023 → IDN004, federation codes → IDN009, 700027 → IDN007, others → IDN011),
//! plus federation ID-token (IDN009), managed identity (IDN010), connection
//! configuration and transport failures. The description is shown as evidence only.

use serde_json::Value;

use super::about::{About, Creation};
use crate::azure::entra::{EntraError, Method, PresentedClaims, TokenError, CERTIFICATE_PARAMETER};
use crate::codes::Code;
use crate::finding::Finding;
use crate::net::HttpErrorKind;
use crate::sanitize::sanitize;

/// Entra ID codes that mean federation did not match or is not allowed.
const FEDERATION_CODES: &[u64] = &[70021, 700211, 700213, 7002138, 70025, 700223, 700238, 70052];

/// Maps a token failure to its finding. Classification uses `error_codes` only; the
/// description is shown as evidence.
pub(super) fn token_finding(
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
    use super::super::tests::{about, ID};
    use super::*;
    use crate::connections::Origin;

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
}
