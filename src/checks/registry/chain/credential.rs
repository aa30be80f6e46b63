//! The credential link: proves a credential is present and readable for a registry that asks
//! for one, choosing between the target's fixed credential and what the agent holds (Azure
//! identity, variables, Docker config). Missing, empty or unreadable credentials are REG009.

use super::{Chain, Gate, Step};
use crate::checks::registry::credentials::{self, Credential, Sourced};
use crate::codes::Code;
use crate::connections::ConnectionKind;
use crate::finding::Finding;
use crate::sanitize::sanitize;

impl Chain<'_> {
    pub(super) async fn credential(&mut self, gate: &Gate) -> Step<Sourced> {
        let sourced = match self.spec.credential.clone() {
            Some(s) => s,
            None => self.resolve_credential().await,
        };
        self.credential_source = Some(sourced.source.clone());
        self.identity = sourced.connection.as_deref().cloned();
        self.credential_kind = match &sourced.credential {
            Credential::Anonymous => "anonymous",
            Credential::Basic { .. } => "basic",
            Credential::RefreshToken { .. } => "refresh-token",
            Credential::Entra { .. } => "entra",
            Credential::Empty { .. } | Credential::Unreadable { .. } => "unusable",
        };
        match &sourced.credential {
            Credential::Empty { fields } => {
                let f = self.empty_credential_finding(&sourced, fields);
                return Err(self.fail(f));
            }
            Credential::Unreadable { detail } => {
                let f = self
                    .finding(Code::REG009, "credential", format!("the credential for `{}` cannot be read from {}: {}", self.server().authority, sourced.source, sanitize(detail)))
                    .remedy(format!(
                        "Fix the Docker configuration or its credential helper (`docker login {}` writes a working entry), or give the credential \
                         through AZP_PREFLIGHT_REGISTRY_USERNAME and AZP_PREFLIGHT_REGISTRY_PASSWORD.",
                        self.server().authority
                    ))
                    .data("source", sourced.source.clone());
                return Err(self.fail(f));
            }
            Credential::Anonymous => {
                self.anonymous = true;
                if matches!(gate, Gate::Basic) {
                    let f = self
                        .finding(
                            Code::REG009,
                            "credential",
                            format!(
                                "`{}` requires a username and password (Basic), and no credential for it was found",
                                self.server().authority
                            ),
                        )
                        .remedy(self.missing_credential_remedy())
                        .data("source", "none");
                    return Err(self.fail(f));
                }
            }
            _ => {}
        }
        self.pass("credential");
        Ok(sourced)
    }

    async fn resolve_credential(&mut self) -> Sourced {
        let server = self.server().clone();
        let azure_ok = server.is_acr_host() || (server.is_loopback() && self.acr_like);
        if azure_ok {
            if let Some(conn) = self.shared.azure.first() {
                self.acr_like = true;
                return Sourced {
                    credential: Credential::Entra { connection: Box::new(conn.clone()) },
                    source: format!("Azure identity {} (azureSubscription)", conn.label()),
                    connection: Some(Box::new(conn.clone())),
                };
            }
        }
        if let Some(v) = &self.shared.variables {
            return v.clone();
        }
        if let Some(found) = self.shared.docker.lookup(&server, &self.ctx.redactor).await {
            return found;
        }
        Sourced::anonymous()
    }

    pub(super) fn empty_credential_finding(&self, sourced: &Sourced, fields: &[&'static str]) -> Finding {
        let settings = sourced.connection.as_ref().and_then(|c| c.settings_page(&self.ctx.env));
        let what = fields.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(" and ");
        let mut remedy = match &sourced.connection {
            Some(c) if c.kind == ConnectionKind::DockerRegistry && credentials::is_acr_connection(c) => format!(
                "Edit the service connection and enter the service principal's application id and secret (or recreate it with \
                 workload identity federation){}.",
                settings.as_ref().map(|s| format!(": {s}")).unwrap_or_default()
            ),
            Some(_) => format!(
                "Edit the service connection and fill in {what} (for an ACR admin user: the registry name and a password from \
                 `az acr credential show --name {}`){}.",
                self.server.as_ref().map(|s| s.acr_name()).unwrap_or_else(|| "<registry>".into()),
                settings.as_ref().map(|s| format!(": {s}")).unwrap_or_default()
            ),
            None => format!("Set {what} to non-empty values."),
        };
        remedy.push_str(
            " Nothing is sent while a value is empty; `docker login` would fail with an empty username, as the AzureIoTEdge@2 2.241.x \
             regression showed (\"The username for container registry is ''\").",
        );
        let mut f = Finding::new(
            Code::REG009,
            format!("{what} {} empty in {}", if fields.len() == 1 { "is" } else { "are" }, sourced.source),
        )
        .data("link", "credential")
        .data("fields", fields.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .data("source", sourced.source.clone())
        .remedy(remedy);
        if let Some(s) = &self.server {
            f = f.data("server", s.authority.clone());
        }
        f
    }

    pub(super) fn missing_credential_remedy(&self) -> String {
        let server = self.server();
        if server.is_acr_host() {
            format!(
                "Give the step a credential for `{0}`: a `containerRegistry` service connection for it, or an `azureSubscription` \
                 connection whose identity has AcrPull/AcrPush on the registry. Locally, `az acr login --name {1}` or `docker login {0}`.",
                server.authority,
                server.acr_name()
            )
        } else {
            format!(
                "Give the step a credential for `{0}`: a `containerRegistry` service connection, or locally `docker login {0}` or \
                 AZP_PREFLIGHT_REGISTRY_USERNAME/AZP_PREFLIGHT_REGISTRY_PASSWORD.",
                server.authority
            )
        }
    }
}
