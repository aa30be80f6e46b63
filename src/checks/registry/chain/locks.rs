//! The ACR locks link: proves the repository (or the target tag or digest) is not locked
//! against what the intent does, by reading ACR's `changeableAttributes` (`writeEnabled` for a
//! push, `readEnabled` for a pull). A lock in the way is REG013.

use std::collections::BTreeSet;

use serde_json::Value;

use super::scope::{granted_actions, grants};
use super::{Auth, Chain, Step, Stop, METADATA_READ};
use crate::checks::registry::answer;
use crate::codes::Code;
use crate::finding::Finding;
use crate::net::{Request, Response};
use crate::registry_target::{Intent, Reference};

impl Chain<'_> {
    pub(super) async fn locks(&mut self, auth: &Auth, repo: &str, granted: Option<&BTreeSet<String>>) -> Step<()> {
        if let (Auth::Bearer(token), Some(_)) = (auth, granted) {
            if granted_actions(token.expose(), repo).is_some_and(|g| !grants(&g, METADATA_READ)) {
                self.unverified.push("locks: the token has no metadata_read for this repository".into());
                return Ok(());
            }
        }
        let server = self.server().clone();
        let Some(url) = self.url(&format!("acr/v1/{repo}")) else { return Err(Stop) };
        let what = format!("GET {}", url.path());
        let resp = self.send("locks", &what, auth.apply(Request::get(url))).await?;
        if let Some(f) = self.common("locks", &what, &resp) {
            return Err(self.fail(f));
        }
        let intent = self.spec.intent;
        match resp.status {
            200 => {
                let attrs = serde_json::from_slice::<Value>(&resp.body)
                    .ok()
                    .and_then(|v| v.get("changeableAttributes").cloned());
                let Some(attrs) = attrs else {
                    let f = self.unexpected("locks", &what, &resp);
                    return Err(self.fail(f));
                };
                if let Some(f) =
                    self.lock_finding(&attrs, &format!("repository `{repo}`"), &format!("--repository {repo}"), &resp)
                {
                    return Err(self.fail(f));
                }
                self.repository_seen = true;
                self.out.proven.push("repository unlocked".into());
            }
            404 => {
                if intent == Intent::Push {
                    self.out.proven.push("repository is new (the push creates it)".into());
                }
                self.pass("locks");
                return Ok(());
            }
            401 | 403 => {
                self.unverified.push(format!("locks: {what} answered HTTP {}", resp.status));
                return Ok(());
            }
            _ => {
                let f = self.unexpected("locks", &what, &resp);
                return Err(self.fail(f));
            }
        }
        let (path, label, image_arg, key) = match &self.spec.reference {
            Some(Reference::Tag(t)) => {
                (format!("acr/v1/{repo}/_tags/{t}"), format!("tag `{repo}:{t}`"), format!("--image {repo}:{t}"), "tag")
            }
            Some(Reference::Digest(d)) => (
                format!("acr/v1/{repo}/_manifests/{d}"),
                format!("manifest `{repo}@{d}`"),
                format!("--image {repo}@{d}"),
                "manifest",
            ),
            None => {
                self.pass("locks");
                return Ok(());
            }
        };
        let Some(url) = self.url(&path) else { return Err(Stop) };
        let what = format!("GET {}", url.path());
        let resp = self.send("locks", &what, auth.apply(Request::get(url))).await?;
        if let Some(f) = self.common("locks", &what, &resp) {
            return Err(self.fail(f));
        }
        match resp.status {
            200 => {
                let attrs = serde_json::from_slice::<Value>(&resp.body)
                    .ok()
                    .and_then(|v| v.get(key)?.get("changeableAttributes").cloned());
                match attrs {
                    Some(attrs) => {
                        if let Some(f) = self.lock_finding(&attrs, &label, &image_arg, &resp) {
                            return Err(self.fail(f));
                        }
                        self.out.proven.push(format!("{key} unlocked"));
                    }
                    None => {
                        let f = self.unexpected("locks", &what, &resp);
                        return Err(self.fail(f));
                    }
                }
            }
            404 => {}
            401 | 403 => self.unverified.push(format!("{key} lock: {what} answered HTTP {}", resp.status)),
            _ => {
                let f = self.unexpected("locks", &what, &resp);
                return Err(self.fail(f));
            }
        }
        let _ = server;
        self.pass("locks");
        Ok(())
    }

    fn lock_finding(&self, attrs: &Value, label: &str, target_arg: &str, resp: &Response) -> Option<Finding> {
        let flag = |name: &str| attrs.get(name).and_then(|v| v.as_bool());
        let (attribute, verb) = match self.spec.intent {
            Intent::Push => ("writeEnabled", "push"),
            Intent::Pull => ("readEnabled", "pull"),
        };
        if flag(attribute) != Some(false) {
            return None;
        }
        let cli_flag = if attribute == "writeEnabled" { "--write-enabled" } else { "--read-enabled" };
        let f = self
            .finding(
                Code::REG013,
                "locks",
                format!(
                    "{label} is locked: `{attribute}` is false, so a {verb} fails with \"The operation is disallowed on this registry, repository or image\"{}",
                    answer::correlation_suffix(resp)
                ),
            )
            .remedy(format!(
                "If the lock is no longer wanted: `az acr repository update --name {} {target_arg} {cli_flag} true`. Locks are often set on \
                 purpose (released images); push a new tag instead of overwriting a locked one.",
                self.server().acr_name()
            ))
            .data("attribute", attribute)
            .data("changeableAttributes", attrs.clone());
        Some(self.with_correlation(f, resp))
    }
}
