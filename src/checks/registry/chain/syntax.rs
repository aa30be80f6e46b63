//! The static links, which need no network: syntax (REG001) proves the server name forms a
//! registry URL the run may use, and the typo guard (REG002) that it is not a near miss of a
//! well-known registry's name. An offline run stops after them and says so.

use super::{Chain, Step, Stop};
use crate::checks::registry::credentials::Credential;
use crate::checks::registry::server;
use crate::codes::Code;
use crate::sanitize::sanitize;

impl Chain<'_> {
    pub(super) fn syntax(&mut self) -> Step<()> {
        let where_ = self.spec.source.clone();
        match server::parse_server(&self.spec.server_raw, self.spec.origin) {
            Ok(mut s) => {
                // Only an https name can keep its name through an override (`net::route`).
                if s.https {
                    s.endpoint = self.ctx.endpoints.registry_endpoint(&s.authority).cloned();
                }
                // Decided here, not at the first request, so an offline run says the same.
                if s.base_url().is_none() {
                    let shown = sanitize(&s.authority);
                    let finding = self
                        .finding(Code::REG001, "syntax", format!("`{shown}` ({where_}) does not form a URL"))
                        .remedy(format!("Correct the server in {where_}: a host name with an optional port."))
                        .data("problem", "url")
                        .data("value", shown);
                    return Err(self.fail(finding));
                }
                self.server = Some(s);
            }
            Err(m) => {
                let shown = sanitize(&crate::registry_target::mask_userinfo(&self.spec.server_raw));
                let fix = match &m.suggestion {
                    Some(s) => format!("Write it as `{}` in {where_}.", sanitize(s)),
                    None => format!("Correct the server in {where_}."),
                };
                let finding = self
                    .finding(Code::REG001, "syntax", format!("the login server `{shown}` ({where_}) cannot be used: {}", m.explanation))
                    .remedy(format!(
                        "{fix} A login server is a lower-case host name with an optional port, e.g. `contoso.azurecr.io`; \
                         `https://` may precede it, `http://` only for a loopback registry. Nothing was sent to it."
                    ))
                    .data("problem", m.problem)
                    .data("value", shown);
                return Err(self.fail(finding));
            }
        }
        if let Some(repo) = self.spec.repository.clone() {
            if let Err(m) = server::check_repository(&repo) {
                let finding = self
                    .finding(Code::REG001, "syntax", format!("{} ({where_})", m.explanation))
                    .remedy(match &m.suggestion {
                        Some(s) => format!(
                            "Write the repository as `{s}` in {where_}; Docker refuses upper-case repository names."
                        ),
                        None => format!("Correct the repository name in {where_}."),
                    })
                    .data("problem", m.problem);
                return Err(self.fail(finding));
            }
        }
        self.pass("syntax");
        Ok(())
    }

    pub(super) fn typo_guard(&mut self) -> Step<()> {
        let host = self.server().host.clone();
        if let Some(t) = server::typo_of_known_domain(&host) {
            let finding = self
                .finding(
                    Code::REG002,
                    "typo",
                    format!(
                        "`{host}` ({}) looks like a misspelling of {}'s domain `{}` (`{}` is not it); no credential was sent to it",
                        self.spec.source, t.owner, t.intended, t.written
                    ),
                )
                .remedy(format!(
                    "Did you mean `{}`? Correct the server in {}. A near-miss domain may belong to someone else, so \
                     azp-preflight does not contact it with a credential.",
                    t.suggestion, self.spec.source
                ))
                .data("suggestion", t.suggestion.clone())
                .data("intended", t.intended);
            return Err(self.fail(finding));
        }
        self.pass("typo");
        Ok(())
    }

    /// Offline: the static links only, plus what the credential alone shows.
    pub(super) fn offline(&mut self) -> Step<()> {
        if let Some(sourced) = self.spec.credential.clone() {
            if let Credential::Empty { fields } = &sourced.credential {
                let f = self.empty_credential_finding(&sourced, fields);
                self.out.findings.push(f);
            }
        }
        self.out.stopped_offline = true;
        Err(Stop)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::tests::spec;
    use super::super::{check, Shared};
    use super::*;

    #[tokio::test]
    async fn offline_runs_only_the_static_links() {
        let ctx = crate::check::test_context(&[("INPUT_OFFLINE", "true")]);
        let shared = Arc::new(Shared::new(&ctx));
        let out = check(ctx.clone(), shared.clone(), spec("contoso.azurecr.io")).await;
        assert!(out.findings.is_empty() && out.stopped_offline && out.skipped.is_none());
        let out = check(ctx, shared, spec("contoso.azurcr.io")).await;
        assert_eq!(out.findings[0].code, Code::REG002);
    }
}
