//! The scope link: proves the token grants what the intent needs on the repository, from the
//! token's `access` claim or, for opaque tokens, by probing a pull and an upload (which is
//! cancelled at once). Missing grants are REG012; a registry that refuses every write (HTTP 405,
//! read-only) is REG013; anonymous access that grants less than the intent needs is REG009.

use std::collections::BTreeSet;

use serde_json::Value;
use url::Url;

use super::{Auth, Chain, Step, Stop, PULL, PUSH};
use crate::checks::registry::answer;
use crate::codes::Code;
use crate::finding::Finding;
use crate::net::{Request, Response};
use crate::registry_target::Intent;
use crate::sanitize::sanitize;

impl Chain<'_> {
    /// Compares what the token grants with what the intent needs. Returns the granted
    /// actions when the token says (a JWT with `access`), else what the probes observed.
    pub(super) async fn scope(&mut self, auth: &Auth, repo: &str) -> Step<Option<BTreeSet<String>>> {
        let needed: Vec<&str> = match self.spec.intent {
            Intent::Pull => vec![PULL],
            Intent::Push => vec![PULL, PUSH],
        };
        let claimed = match auth {
            Auth::Bearer(token) => granted_actions(token.expose(), repo),
            _ => None,
        };
        if let Some(granted) = &claimed {
            let missing: Vec<&str> = needed.iter().copied().filter(|a| !grants(granted, a)).collect();
            if !missing.is_empty() {
                // Ask the registry too, so the finding quotes its own refusal.
                let evidence = if missing.contains(&PUSH) {
                    self.upload_probe(auth, repo).await.map(|p| p.evidence).unwrap_or_default()
                } else {
                    self.pull_probe(auth, repo).await.map(|p| p.evidence).unwrap_or_default()
                };
                let f = self.scope_finding(&needed, granted, &evidence);
                return Err(self.fail(f));
            }
            self.pass("scope");
            let shown = shown_actions(granted);
            self.out.proven.push(match self.spec.intent {
                Intent::Push => format!("push allowed (token grants {shown})"),
                Intent::Pull => format!("pull allowed (token grants {shown})"),
            });
            if self.spec.intent == Intent::Push && !self.acr_like {
                // The token server does not know whether the registry takes writes (read-only mode).
                self.push_probe(auth, repo, granted).await?;
            }
            return Ok(claimed);
        }
        // Opaque token, Basic or open registry: observe instead.
        let mut observed = BTreeSet::new();
        let pull = self.pull_probe(auth, repo).await?;
        if pull.allowed {
            observed.insert(PULL.to_string());
        } else {
            let f = self.scope_finding(&needed, &observed, &pull.evidence);
            return Err(self.fail(f));
        }
        if self.spec.intent == Intent::Push {
            self.push_probe(auth, repo, &observed).await?;
            observed.insert(PUSH.to_string());
        } else {
            self.out.proven.push("pull allowed".into());
        }
        self.pass("scope");
        Ok(Some(observed))
    }

    pub(super) fn scope_finding(&self, needed: &[&str], granted: &BTreeSet<String>, evidence: &str) -> Finding {
        let requested: Vec<String> = needed.iter().map(|s| s.to_string()).collect();
        // Only the actions an intent is about; metadata_read and the like are not the question.
        let granted_list: Vec<String> =
            ordered(granted).into_iter().filter(|a| a == PULL || a == PUSH || a == "*").collect();
        let shown_granted = if granted_list.is_empty() { "nothing".to_string() } else { granted_list.join(",") };
        let repo = self.spec.repository.clone().unwrap_or_default();
        let source = self.credential_source.clone().unwrap_or_default();
        let registry_said =
            if evidence.is_empty() { String::new() } else { format!("; the registry answered: {evidence}") };
        if self.anonymous {
            return self
                .finding(
                    Code::REG009,
                    "credential",
                    format!(
                        "no credential for `{}` was found, and anonymous access to `{repo}` grants {shown_granted} where {} needs {}{registry_said}",
                        self.server().authority,
                        self.spec.intent.as_str(),
                        requested.join(",")
                    ),
                )
                .remedy(self.missing_credential_remedy())
                .data("requested", requested)
                .data("granted", granted_list);
        }
        let remedy = if self.acr_like {
            let role = if needed.contains(&PUSH) { "AcrPush" } else { "AcrPull" };
            let mut r = self.role_remedy(role);
            if self.identity.is_none() && self.credential_kind == "basic" {
                r.push_str(&format!(
                    " For a repository-scoped token, add the actions to its scope map: `az acr scope-map update --name <scope-map> --registry {} \
                     --add-repository {repo} content/read{}`.",
                    self.server().acr_name(),
                    if needed.contains(&PUSH) { " content/write" } else { "" }
                ));
            }
            r
        } else {
            format!(
                "Give the account behind {source} {} rights on `{repo}` in the registry (its owner, team or project permissions), or change the \
                 target's intent if the pipeline only pulls.",
                if needed.contains(&PUSH) { "write (push)" } else { "read (pull)" }
            )
        };
        self.finding(
            Code::REG012,
            "scope",
            format!(
                "{source} may not {} `{repo}`: requested {}, granted {shown_granted}{registry_said}",
                self.spec.intent.as_str(),
                requested.join(","),
            ),
        )
        .remedy(remedy)
        .data("requested", requested)
        .data("granted", granted_list)
    }

    /// `GET /v2/<repo>/tags/list`: read access, and whether the repository exists.
    pub(super) async fn pull_probe(&mut self, auth: &Auth, repo: &str) -> Step<Probe> {
        let Some(mut url) = self.url(&format!("v2/{repo}/tags/list")) else { return Err(Stop) };
        url.query_pairs_mut().append_pair("n", &crate::checks::registry::tags::TAGS_ASKED.to_string());
        let what = format!("GET {}", url.path());
        let resp = self.send("scope", &what, auth.apply(Request::get(url))).await?;
        if let Some(f) = self.common("scope", &what, &resp) {
            return Err(self.fail(f));
        }
        let evidence = self.evidence(&what, &resp);
        match resp.status {
            200 => {
                let tags = serde_json::from_slice::<Value>(&resp.body)
                    .ok()
                    .and_then(|v| {
                        v.get("tags")
                            .and_then(|t| t.as_array())
                            .map(|a| a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect())
                    })
                    .unwrap_or_default();
                Ok(Probe { allowed: true, evidence, tags: Some(tags), repo_missing: false })
            }
            404 => Ok(Probe { allowed: true, evidence, tags: None, repo_missing: true }),
            401 | 403 => Ok(Probe { allowed: false, evidence, tags: None, repo_missing: false }),
            _ => {
                let f = self.unexpected("scope", &what, &resp);
                Err(self.fail(f))
            }
        }
    }

    /// `POST /v2/<repo>/blobs/uploads/`: write access, without writing.
    async fn upload_probe(&mut self, auth: &Auth, repo: &str) -> Step<Probe> {
        let Some(url) = self.url(&format!("v2/{repo}/blobs/uploads/")) else { return Err(Stop) };
        let what = format!("POST {}", url.path());
        // Never retried: a second POST would open a second session.
        let resp = self.send("scope", &what, auth.apply(Request::post(url.clone()).form(&[]).no_retry())).await?;
        let evidence = self.evidence(&what, &resp);
        if matches!(resp.status, 201 | 202) {
            self.cancel_upload(auth, &url, &resp).await;
            return Ok(Probe { allowed: true, evidence, tags: None, repo_missing: false });
        }
        if let Some(f) = self.common("scope", &what, &resp) {
            return Err(self.fail(f));
        }
        match resp.status {
            401 | 403 => Ok(Probe { allowed: false, evidence, tags: None, repo_missing: false }),
            405 => {
                let allow = resp.header("allow").map(|a| format!(" (Allow: {})", sanitize(a))).unwrap_or_default();
                let f = self
                    .finding(
                        Code::REG013,
                        "locks",
                        format!("the registry refuses writes: {what} answered HTTP 405 {}{allow}{}: it is read-only (maintenance mode) or this repository does not take pushes", answer::quote(&resp), answer::correlation_suffix(&resp)),
                    )
                    .remedy(
                        "Ask the registry's operator when writes are enabled again (a distribution registry in `storage.maintenance.readonly` mode \
                         refuses every push), or push to another registry meanwhile.",
                    )
                    .data("status", 405)
                    .data("kind", "read-only");
                Err(self.fail(f))
            }
            _ => {
                let f = self.unexpected("scope", &what, &resp);
                Err(self.fail(f))
            }
        }
    }

    /// Upload probe for a push target whose rights are already known or just observed.
    async fn push_probe(&mut self, auth: &Auth, repo: &str, granted: &BTreeSet<String>) -> Step<()> {
        let probe = self.upload_probe(auth, repo).await?;
        if probe.allowed {
            self.out.proven.push("push allowed (upload session opened and cancelled)".into());
            return Ok(());
        }
        let mut shown = granted.clone();
        shown.remove(PUSH);
        let f = self.scope_finding(&[PULL, PUSH], &shown, &probe.evidence);
        Err(self.fail(f))
    }

    async fn cancel_upload(&mut self, auth: &Auth, post_url: &Url, resp: &Response) {
        let Some(location) = resp.header("location").and_then(|l| post_url.join(l).ok()) else {
            self.unverified.push(
                "the upload session opened by the push probe had no Location to cancel; the registry expires it".into(),
            );
            return;
        };
        // Credentials go only back to the registry's own origin.
        let same_origin = location.origin() == post_url.origin();
        let request = if same_origin {
            auth.apply(Request::new(reqwest::Method::DELETE, location))
        } else {
            Request::new(reqwest::Method::DELETE, location)
        };
        match self.try_send(request).await {
            Ok(r) if r.is_success() => {}
            Ok(r) => self.unverified.push(format!(
                "cancelling the probe's upload session answered HTTP {}; the registry expires it",
                r.status
            )),
            Err(e) => self.unverified.push(format!(
                "cancelling the probe's upload session failed ({}); the registry expires it",
                sanitize(&e.detail)
            )),
        }
    }

    /// The registry's words for a refusal: status, challenge error, body, correlation id.
    pub(super) fn evidence(&self, what: &str, resp: &Response) -> String {
        let error = answer::challenge_error(resp).map(|e| format!(" error=\"{e}\"")).unwrap_or_default();
        format!("{what} → HTTP {}{error} {}{}", resp.status, answer::quote(resp), answer::correlation_suffix(resp))
    }
}

pub(super) struct Probe {
    pub(super) allowed: bool,
    pub(super) evidence: String,
    pub(super) tags: Option<Vec<String>>,
    pub(super) repo_missing: bool,
}

/// The actions a registry token grants on `repo`, from its `access` claim; `None` when the
/// token is not a JWT with that claim (opaque tokens are judged by probing instead).
pub fn granted_actions(token: &str, repo: &str) -> Option<BTreeSet<String>> {
    let claims = crate::azure::jwt::claims(token)?;
    let access = claims.get("access")?.as_array()?;
    let mut out = BTreeSet::new();
    for entry in access {
        let kind = entry.get("type").and_then(|t| t.as_str()).unwrap_or("");
        let name = entry.get("name").and_then(|n| n.as_str()).unwrap_or("");
        if (kind == "repository" || kind.starts_with("repository(")) && name == repo {
            if let Some(actions) = entry.get("actions").and_then(|a| a.as_array()) {
                out.extend(actions.iter().filter_map(|a| a.as_str().map(str::to_string)));
            }
        }
    }
    Some(out)
}

pub(super) fn grants(granted: &BTreeSet<String>, action: &str) -> bool {
    granted.contains(action) || granted.contains("*")
}

/// `pull`, `push` first, then the rest alphabetically.
fn ordered(granted: &BTreeSet<String>) -> Vec<String> {
    let mut out: Vec<String> = [PULL, PUSH].iter().filter(|a| granted.contains(**a)).map(|s| s.to_string()).collect();
    out.extend(granted.iter().filter(|a| a.as_str() != PULL && a.as_str() != PUSH).cloned());
    out
}

fn shown_actions(granted: &BTreeSet<String>) -> String {
    let main: Vec<String> = ordered(granted).into_iter().filter(|a| a == PULL || a == PUSH || a == "*").collect();
    if main.is_empty() {
        "nothing".into()
    } else {
        main.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    fn jwt(payload: &Value) -> String {
        format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(b"{\"alg\":\"ES256\"}"),
            URL_SAFE_NO_PAD.encode(payload.to_string())
        )
    }

    #[test]
    fn granted_actions_come_from_the_access_claim_of_the_named_repository() {
        let t = jwt(&serde_json::json!({"access": [
            {"type": "repository", "name": "team/app", "actions": ["pull", "metadata_read"]},
            {"type": "repository", "name": "other", "actions": ["push"]},
        ]}));
        let g = granted_actions(&t, "team/app").unwrap();
        assert!(grants(&g, "pull") && !grants(&g, "push") && grants(&g, "metadata_read"));
        assert_eq!(ordered(&g), ["pull", "metadata_read"]);
        assert_eq!(shown_actions(&g), "pull");
        let none = granted_actions(&jwt(&serde_json::json!({"access": []})), "team/app").unwrap();
        assert!(none.is_empty());
        let star = granted_actions(
            &jwt(&serde_json::json!({"access": [{"type": "repository", "name": "a", "actions": ["*"]}]})),
            "a",
        )
        .unwrap();
        assert!(grants(&star, "push"));
        assert_eq!(granted_actions("opaque-token-value", "a"), None);
        assert_eq!(granted_actions(&jwt(&serde_json::json!({"sub": "x"})), "a"), None);
    }
}
