//! The `/v2/` challenge: proves a registry answers at the server (REG007; REG008 when a
//! registry firewall denies this agent), learns how it wants clients to authenticate, and
//! applies the realm policy so the credential is only sent to a token endpoint that may
//! receive it (REG007 for a refused realm, REG002 for a near miss of a known token host).
//! A server that does not form a URL here is REG001.

use serde_json::Value;
use url::Url;

use super::{Chain, Gate, Step};
use crate::checks::registry::answer::{self, Challenge};
use crate::checks::registry::server;
use crate::codes::Code;
use crate::net::{Request, Response};
use crate::sanitize::sanitize;

/// Whether the token endpoint a challenge names may receive the credential. Plain http is
/// acceptable only when the registry itself was reached over plain http on loopback (a local
/// lab): a registry reached any other way that names an `http://` realm, loopback included,
/// would have the credential sent unencrypted, or to whatever listens on this agent.
fn realm_policy(realm: &Url, requested: &Url, answered_from: &Url) -> Result<(), String> {
    crate::net::ensure_secure_url(realm)?;
    let local_lab = |u: &Url| u.scheme() == "http" && u.host_str().is_some_and(crate::net::is_loopback_host);
    if realm.scheme() == "http" && !(local_lab(requested) && local_lab(answered_from)) {
        return Err(format!(
            "plain http is refused for a token endpoint unless the registry itself is reached over plain http on \
             loopback, and this registry answered from {}",
            answered_from.origin().ascii_serialization()
        ));
    }
    Ok(())
}

impl Chain<'_> {
    pub(super) async fn challenge(&mut self) -> Step<Gate> {
        let Some(url) = self.url("v2/") else {
            return Err(self.fail(self.finding(Code::REG001, "syntax", "the server does not form a URL".into())));
        };
        let what = format!("GET {url}");
        let resp = self.send("challenge", &what, Request::get(url.clone())).await?;
        if let Some(f) = self.common("challenge", &what, &resp) {
            return Err(self.fail(f));
        }
        let gate = match resp.status {
            200 => {
                // A page, whatever its headers, is a proxy or portal speaking for the registry.
                let is_registry = !answer::looks_like_html(&resp)
                    && (resp.header("docker-distribution-api-version").is_some()
                        || serde_json::from_slice::<Value>(&resp.body).is_ok_and(|v| v.is_object()));
                if !is_registry {
                    let f = self.unexpected("challenge", &what, &resp);
                    return Err(self.fail(f));
                }
                Gate::Open
            }
            401 => {
                let challenges = answer::challenges(&resp);
                let bearer = challenges.iter().find(|c| c.scheme == "bearer" && c.param("realm").is_some());
                match bearer {
                    Some(c) => self.bearer_gate(c, &url, &resp)?,
                    None if challenges.iter().any(|c| c.scheme == "basic") => Gate::Basic,
                    None => {
                        let f = self
                            .finding(
                                Code::REG007,
                                "challenge",
                                format!(
                                    "{what} answered 401 without a usable `WWW-Authenticate` challenge (Bearer with a realm, or Basic): {}{}",
                                    answer::quote(&resp),
                                    answer::correlation_suffix(&resp)
                                ),
                            )
                            .remedy("A proxy or gateway in front of the registry probably rewrites the answer; let registry traffic through unchanged.")
                            .data("kind", "no-challenge")
                            .data("status", 401);
                        return Err(self.fail(f));
                    }
                }
            }
            403 if answer::has_error_code(&resp, "DENIED") => {
                let f = self
                    .finding(
                        Code::REG008,
                        "challenge",
                        format!("the registry refused this agent before any credential: {}{}", answer::quote(&resp), answer::correlation_suffix(&resp)),
                    )
                    .remedy(format!(
                        "The registry's network rules exclude this agent (public access disabled, or an IP rule). See them with \
                         `az acr show --name {} --query networkRuleSet`; add the agent's address with `az acr network-rule add`, or run on an \
                         agent inside the registry's network.",
                        self.server().acr_name()
                    ))
                    .data("status", 403);
                let f = self.with_correlation(f, &resp);
                return Err(self.fail(f));
            }
            _ => {
                let f = self.unexpected("challenge", &what, &resp);
                return Err(self.fail(f));
            }
        };
        self.pass("challenge");
        Ok(gate)
    }

    fn bearer_gate(&mut self, c: &Challenge, v2: &Url, resp: &Response) -> Step<Gate> {
        let realm_text = c.param("realm").unwrap_or_default().to_string();
        let realm = match v2.join(&realm_text) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => u,
            _ => {
                let f = self
                    .finding(
                        Code::REG007,
                        "challenge",
                        format!("the Bearer challenge names a realm that is not a URL: `{}`{}", sanitize(&realm_text), answer::correlation_suffix(resp)),
                    )
                    .remedy("A proxy or a misconfigured registry sends this challenge; the registry's token endpoint must be an absolute https URL.")
                    .data("kind", "bad-realm");
                return Err(self.fail(f));
            }
        };
        let realm_host = realm.host_str().unwrap_or("").to_string();
        if let Some(t) = server::typo_of_known_domain(&realm_host) {
            let f = self
                .finding(
                    Code::REG002,
                    "challenge",
                    format!(
                        "the registry sends clients to the token endpoint `{realm_host}`, a near miss of {}'s `{}`; no credential was sent there",
                        t.owner, t.intended
                    ),
                )
                .remedy("Check the registry's token-auth configuration (`auth.token.realm`); it must name the real token service.")
                .data("suggestion", t.suggestion.clone());
            return Err(self.fail(f));
        }
        if let Err(e) = realm_policy(&realm, v2, &resp.url) {
            let f = self
                .finding(
                    Code::REG007,
                    "challenge",
                    format!("the token endpoint `{}` cannot be used: {e}", sanitize(realm.as_str())),
                )
                .remedy("Configure the registry's token realm with an https URL.")
                .data("kind", "insecure-realm");
            return Err(self.fail(f));
        }
        let server = self.server().clone();
        if !self.acr_like && realm_host == v2.host_str().unwrap_or("") && realm.path() == "/oauth2/token" {
            // ACR's own shape: the token service lives on the login server.
            self.acr_like = server.is_acr_host() || server.is_loopback();
        }
        if server.is_acr_host() {
            self.acr_like = true;
        }
        Ok(Gate::Bearer { realm, service: c.param("service").map(str::to_string) })
    }
}
