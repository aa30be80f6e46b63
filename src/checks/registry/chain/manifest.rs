//! The manifest and platform links: proves the tag or digest exists in the repository (REG014,
//! with the closest tags as hints) and, when a platform is asked for, that the image offers it
//! (REG015). An answer that is not a manifest is REG007.

use std::collections::BTreeSet;

use serde_json::Value;
use url::Url;

use super::{Auth, Chain, Step, Stop, PULL};
use crate::checks::registry::answer;
use crate::checks::registry::missing;
use crate::checks::registry::platform;
use crate::checks::registry::tags::closest_tags;
use crate::codes::Code;
use crate::finding::Finding;
use crate::net::Request;
use crate::registry_target::{Intent, Platform, Reference};
use crate::sanitize::sanitize;

impl Chain<'_> {
    pub(super) async fn manifest(&mut self, auth: &Auth, repo: &str) -> Step<()> {
        let intent = self.spec.intent;
        let reference = match (&self.spec.reference, intent, &self.spec.platform) {
            (Some(Reference::Tag(t)), _, _) => t.clone(),
            (Some(Reference::Digest(d)), _, _) => d.clone(),
            // Docker pulls `latest` when no tag is given.
            (None, Intent::Pull, Some(_)) => "latest".to_string(),
            (None, Intent::Pull, None) => return self.repository_readable(auth, repo).await,
            (None, Intent::Push, _) => return Ok(()),
        };
        let Some(url) = self.url(&format!("v2/{repo}/manifests/{reference}")) else { return Err(Stop) };
        let what = format!("HEAD {}", url.path());
        let resp = self
            .send("manifest", &what, auth.apply(Request::head(url.clone()).header("accept", platform::MANIFEST_ACCEPT)))
            .await?;
        if let Some(f) = self.common("manifest", &what, &resp) {
            return Err(self.fail(f));
        }
        let shown_ref = match &self.spec.reference {
            Some(Reference::Digest(d)) => format!("{repo}@{d}"),
            _ => format!("{repo}:{reference}"),
        };
        match resp.status {
            200 => {}
            404 => {
                if intent == Intent::Push {
                    self.out.proven.push(format!("`{shown_ref}` is not in the registry yet (the push creates it)"));
                    self.pass("manifest");
                    return Ok(());
                }
                let f = self.missing_manifest(auth, repo, &reference, &shown_ref, &url).await?;
                return Err(self.fail(f));
            }
            401 | 403 => {
                let evidence = self.evidence(&what, &resp);
                let f = self.scope_finding(&[PULL], &BTreeSet::new(), &evidence);
                return Err(self.fail(f));
            }
            _ => {
                let f = self.unexpected("manifest", &what, &resp);
                return Err(self.fail(f));
            }
        }
        let digest = resp.header("docker-content-digest").map(sanitize);
        let media = resp.header("content-type").unwrap_or("").to_string();
        let short = digest.as_deref().map(|d| format!(" ({})", short_digest(d))).unwrap_or_default();
        self.out.proven.push(format!("`{shown_ref}` present{short}"));
        self.pass("manifest");
        if intent == Intent::Push {
            return Ok(());
        }
        let Some(wanted) = self.spec.platform.clone() else { return Ok(()) };
        self.platform(auth, repo, &url, &media, &wanted, &shown_ref).await
    }

    async fn repository_readable(&mut self, auth: &Auth, repo: &str) -> Step<()> {
        let probe = self.pull_probe(auth, repo).await?;
        if !probe.allowed {
            let f = self.scope_finding(&[PULL], &BTreeSet::new(), &probe.evidence);
            return Err(self.fail(f));
        }
        if probe.repo_missing && self.repository_seen {
            // The attributes showed the repository: only the list is missing.
            self.unverified.push(format!(
                "manifest: the repository was found, but its tags could not be listed: {}",
                probe.evidence
            ));
            return Ok(());
        }
        if probe.repo_missing {
            let f = self
                .finding(
                    Code::REG014,
                    "manifest",
                    format!(
                        "the repository `{repo}` does not exist in `{}`: {}",
                        self.server().authority,
                        probe.evidence
                    ),
                )
                .remedy(self.tag_list_remedy(repo, &[]))
                .data("kind", "repository");
            return Err(self.fail(f));
        }
        let n = probe.tags.as_ref().map(Vec::len).unwrap_or(0);
        self.out.proven.push(format!(
            "repository readable ({n}{} tag{})",
            if n >= 100 { "+" } else { "" },
            if n == 1 { "" } else { "s" }
        ));
        self.pass("manifest");
        Ok(())
    }

    async fn missing_manifest(
        &mut self,
        auth: &Auth,
        repo: &str,
        reference: &str,
        shown_ref: &str,
        url: &Url,
    ) -> Step<Finding> {
        // HEAD carries no body: ask again with GET for the registry's own words.
        let what = format!("GET {}", url.path());
        let get = self
            .send("manifest", &what, auth.apply(Request::get(url.clone()).header("accept", platform::MANIFEST_ACCEPT)))
            .await?;
        let evidence =
            if get.status == 404 { self.evidence(&what, &get) } else { format!("{what} → HTTP {}", get.status) };
        let probe = self.pull_probe(auth, repo).await?;
        let code = ["NAME_UNKNOWN", "MANIFEST_UNKNOWN"].into_iter().find(|c| answer::has_error_code(&get, c));
        if missing::judge(code, probe.repo_missing, self.repository_seen) == missing::Missing::Repository {
            // Said by the tag list alone: quote it too.
            let evidence = if code.is_none() { format!("{evidence}; {}", probe.evidence) } else { evidence };
            return Ok(self
                .finding(
                    Code::REG014,
                    "manifest",
                    format!(
                        "`{shown_ref}` cannot be pulled: the repository `{repo}` does not exist in `{}` ({evidence})",
                        self.server().authority
                    ),
                )
                .remedy(self.tag_list_remedy(repo, &[]))
                .data("kind", "repository"));
        }
        let (near, listed) = match &probe.tags {
            Some(tags) => {
                let near = closest_tags(reference, tags);
                let sentence = missing::listed_sentence(missing::TagList::Listed(tags), &near);
                (near, sentence)
            }
            None => (Vec::new(), missing::listed_sentence(missing::TagList::Unread(&probe.evidence), &[])),
        };
        let kind = if reference.contains(':') { "digest" } else { "tag" };
        Ok(self
            .finding(
                Code::REG014,
                "manifest",
                format!("`{shown_ref}` is not in `{}`: {evidence}.{listed}", self.server().authority),
            )
            .remedy(self.tag_list_remedy(repo, &near))
            .data("kind", kind)
            .data("closest", near))
    }

    fn tag_list_remedy(&self, repo: &str, near: &[String]) -> String {
        let server = self.server();
        let list = if self.acr_like {
            format!("`az acr repository show-tags --name {} --repository {repo} --orderby time_desc --top 20 --output table`", server.acr_name())
        } else {
            format!(
                "`skopeo list-tags docker://{}/{repo}` (or `crane ls {}/{repo}`)",
                server.authority, server.authority
            )
        };
        let pick = if near.is_empty() { String::new() } else { format!(" — perhaps `{}` is meant", near[0]) };
        format!(
            "List what exists with {list}{pick}, then correct {}, or make sure the build that pushes this image runs (and succeeds) before this pipeline pulls it.",
            self.spec.source
        )
    }

    async fn platform(
        &mut self,
        auth: &Auth,
        repo: &str,
        url: &Url,
        media: &str,
        wanted: &Platform,
        shown_ref: &str,
    ) -> Step<()> {
        let what = format!("GET {}", url.path());
        let resp = self
            .send("platform", &what, auth.apply(Request::get(url.clone()).header("accept", platform::MANIFEST_ACCEPT)))
            .await?;
        if let Some(f) = self.common("platform", &what, &resp) {
            return Err(self.fail(f));
        }
        if resp.status != 200 {
            let f = self.unexpected("platform", &what, &resp);
            return Err(self.fail(f));
        }
        let Ok(doc) = serde_json::from_slice::<Value>(&resp.body) else {
            let f = self
                .finding(
                    Code::REG007,
                    "platform",
                    format!("{what} answered with a manifest that is not JSON: {}", answer::quote(&resp)),
                )
                .remedy("A proxy altered the answer, or the registry stores a corrupt manifest; push the image again.")
                .data("kind", "not-json");
            return Err(self.fail(f));
        };
        let media = resp.header("content-type").map(str::to_string).unwrap_or_else(|| media.to_string());
        let doc_media = doc.get("mediaType").and_then(|m| m.as_str()).unwrap_or("");
        let available: Vec<platform::Offered> =
            if platform::is_index(&media) || platform::is_index(doc_media) || doc.get("manifests").is_some() {
                platform::index_platforms(&doc)
            } else {
                match self.config_platform(auth, repo, &doc).await? {
                    Some(p) => vec![p],
                    None => {
                        self.unverified.push("platform: the image configuration could not be read".into());
                        return Ok(());
                    }
                }
            };
        match platform::fit(wanted, &available) {
            platform::Fit::Yes => {
                self.out.proven.push(format!("{wanted} present"));
                self.pass("platform");
                return Ok(());
            }
            platform::Fit::Unsure(why) => {
                self.unverified.push(format!("platform: {why}"));
                return Ok(());
            }
            platform::Fit::No => {}
        }
        let shown: Vec<String> = available.iter().map(platform::Offered::describe).collect();
        let f = self
            .finding(
                Code::REG015,
                "platform",
                format!(
                    "`{shown_ref}` has no image for {wanted}; it offers {} (Docker: \"no matching manifest for {wanted} in the manifest list entries\")",
                    if shown.is_empty() { "no platform at all".to_string() } else { shown.join(", ") }
                ),
            )
            .remedy(format!(
                "Build and push the image for {wanted} as well, e.g. `docker buildx build --platform {} --push`, or run the job on an agent \
                 whose platform the image has, or correct `platform=` in {}.",
                platform::buildx_platforms(&available, wanted),
                self.spec.source
            ))
            .data("available", shown)
            .data("requested", wanted.to_string());
        Err(self.fail(f))
    }

    /// The platform of a single-platform image, from its configuration blob.
    async fn config_platform(&mut self, auth: &Auth, repo: &str, manifest: &Value) -> Step<Option<platform::Offered>> {
        let Some(digest) = manifest.get("config").and_then(|c| c.get("digest")).and_then(|d| d.as_str()) else {
            return Ok(None);
        };
        let Some(url) = self.url(&format!("v2/{repo}/blobs/{digest}")) else { return Ok(None) };
        let what = format!("GET {}", url.path());
        let resp = self.send("platform", &what, auth.apply(Request::get(url))).await?;
        if let Some(f) = self.common("platform", &what, &resp) {
            return Err(self.fail(f));
        }
        if resp.status != 200 {
            return Ok(None);
        }
        let Ok(config) = serde_json::from_slice::<Value>(&resp.body) else { return Ok(None) };
        let offered = platform::Offered::from_json(&config);
        if offered.os.is_empty() || offered.architecture.is_empty() {
            return Ok(None);
        }
        Ok(Some(offered))
    }
}

fn short_digest(digest: &str) -> String {
    match digest.split_once(':') {
        Some((alg, hex)) if hex.len() > 12 => format!("{alg}:{}…", &hex[..12]),
        _ => digest.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_digests() {
        assert_eq!(short_digest(&format!("sha256:{}", "a".repeat(64))), "sha256:aaaaaaaaaaaa…");
    }
}
