//! The `connections` entries: one per service connection this shard owns, with what Azure
//! DevOps says of it (ready, failed, last used) and when its credential ends.

use serde_json::{json, Value};

use super::credentials::{self, Kind};
use super::{Scan, Unit};
use crate::check::TargetOutcome;
use crate::codes::Code;
use crate::devops::model::{lower, Project, ServiceEndpoint};
use crate::finding::Finding;

/// Service connection types that can sign in with workload identity federation instead.
const FEDERATION_CAPABLE: &[&str] = &["azurerm", "dockerregistry", "kubernetes"];

/// Every connection of one project that this shard owns; `Err` when the list could not be read.
pub async fn scan_project(scan: &Scan<'_>, project: &Project) -> Result<Vec<Unit>, String> {
    let endpoints = scan.client.endpoints(&project.id).await.map_err(|e| e.to_string())?;
    let project_id = lower(&project.id);
    let owned: Vec<ServiceEndpoint> =
        endpoints.into_iter().filter(|e| scan.options.shard.owns(&format!("{project_id}/{}", lower(&e.id)))).collect();
    let jobs = owned.into_iter().map(|endpoint| async move {
        let target = format!("{}/{}", project.name, endpoint.name);
        match tokio::time::timeout_at(scan.options.deadline, connection(scan, project, &endpoint)).await {
            Ok(outcome) => Unit::Done { target, outcome },
            Err(_) => Unit::Late { scope: target },
        }
    });
    Ok(super::bounded(jobs).await)
}

async fn connection(scan: &Scan<'_>, project: &Project, endpoint: &ServiceEndpoint) -> TargetOutcome {
    let mut outcome = TargetOutcome::default();
    let kind = Kind::of(endpoint);
    let auth = endpoint.authorization.as_ref();
    let app_id =
        auth.and_then(|a| a.param("serviceprincipalid")).map(lower).filter(|a| crate::azure::graph::is_app_id(a));
    let tenant_id = auth.and_then(|a| a.param("tenantid")).map(lower);
    let scheme = auth.and_then(|a| a.scheme.clone());
    let is_ready = endpoint.is_ready.unwrap_or(false);
    let kind_name = endpoint.kind.to_ascii_lowercase();

    let last_used = match scan.client.last_used(&project.id, &endpoint.id).await {
        Ok(at) => Ok(at.and_then(|t| t.trim().parse::<jiff::Timestamp>().ok())),
        Err(e) => Err(e.to_string()),
    };
    let (credential, expiry_findings) =
        credentials::judge(&scan.services, scan.graph, scan.options.windows, kind, app_id.as_deref()).await;

    // ORG001: not ready, or its last operation failed.
    let state = endpoint.operation_status.as_ref().and_then(|s| s.state.clone()).unwrap_or_default();
    let failed = state.eq_ignore_ascii_case("failed");
    if !is_ready || failed {
        let why = endpoint
            .operation_status
            .as_ref()
            .and_then(|s| s.status_message.clone())
            .filter(|m| !m.trim().is_empty())
            .map(|m| format!(": {}", crate::sanitize::sanitize(&m)))
            .unwrap_or_default();
        let what = if failed { format!("its last operation failed (state {state})") } else { "it is not ready".into() };
        outcome.findings.push(
            Finding::new(Code::ORG001, format!("Service connection `{}` cannot be used: {what}{why}.", endpoint.name))
                .remedy("Open the connection in Project settings → Service connections, fix what its status names, and save it again (Verify).")
                .data("state", state.clone())
                .data("isReady", is_ready),
        );
    }
    // ORG002: a secret or certificate where federation would need none.
    if matches!(kind, Kind::Secret | Kind::Certificate) && FEDERATION_CAPABLE.contains(&kind_name.as_str()) {
        outcome.findings.push(
            Finding::new(
                Code::ORG002,
                format!(
                    "Service connection `{}` signs in with a {}, which has to be rotated; workload identity federation needs no secret.",
                    endpoint.name,
                    if kind == Kind::Secret { "client secret" } else { "certificate" }
                ),
            )
            .remedy("Convert the connection to workload identity federation (the connection's page offers the conversion for Azure Resource Manager connections)."),
        );
    }
    // ORG003: unused for `--since` days.
    let since = scan.options.since_days;
    match &last_used {
        Ok(Some(at)) if crate::expiry::days_left(*at, scan.now) < i64::from(since) => {}
        Ok(found) => {
            let when = found
                .map(|at| format!("last used on {}", crate::expiry::date(at)))
                .unwrap_or_else(|| "never used".into());
            outcome.findings.push(
                Finding::new(
                    Code::ORG003,
                    format!("Service connection `{}` was {when}: not in the last {since} days.", endpoint.name),
                )
                .remedy("Delete the connection if nothing needs it (an unused credential is still a credential), or keep it and ignore this warning.")
                .data("sinceDays", since),
            );
        }
        Err(why) => outcome.proven.push(format!("last use unknown: the execution history could not be read ({why})")),
    }
    outcome.findings.extend(expiry_findings);
    let last_used_day = last_used.ok().flatten().map(crate::expiry::date);
    outcome.extra.insert(
        "connection".into(),
        json!({
            "id": lower(&endpoint.id),
            "name": endpoint.name,
            "project": project.name,
            "type": kind_name,
            "scheme": scheme,
            "isReady": is_ready,
            "appId": app_id,
            "tenantId": tenant_id,
            "credential": credential,
            "lastUsed": last_used_day.map(Value::from).unwrap_or(Value::Null),
        }),
    );
    outcome
}
