//! What the advisory update is asked to do (`advisoryUpdate`: `auto`, `off` or a mirror's URL)
//! and where fetched documents are cached: read by the settings, acted on by the tasks check
//! (`checks::tasks::advisories::refresh`).
//!
//! A module of its own so that the settings can read the value without depending on the
//! check families.

use std::path::{Path, PathBuf};

use url::Url;

use crate::env::AgentEnv;
use crate::input_error::InputError;
use crate::net::ensure_secure_url;
use crate::secret::Redactor;

/// The document `auto` asks for: the database on the project's main branch.
pub const DEFAULT_URL: &str =
    "https://raw.githubusercontent.com/azp-preflight/azp-preflight/main/advisories/index.json";

/// The environment variable that says what `auto` means on this machine: `off` on agents that
/// must never reach out (and in the project's own tests), or a mirror's URL.
pub const DEFAULT_VAR: &str = "AZP_PREFLIGHT_ADVISORY_UPDATE";

const EXPECTED: &str = "auto, off, or the https URL of an advisory index document (plain http only to a loopback host)";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdvisoryUpdate {
    /// The embedded database only.
    Off,
    /// The document at this address (`auto` is [`DEFAULT_URL`]).
    Fetch(Url),
}

impl AdvisoryUpdate {
    /// Reads `auto` | `off` | URL. Credentials in a mirror's URL (user info, a signed query)
    /// are registered with the redactor and never shown.
    pub fn parse(name: &str, value: &str, redactor: &Redactor) -> Result<AdvisoryUpdate, InputError> {
        let value = value.trim();
        let bad = |shown: &str| InputError::new(name, shown, EXPECTED);
        if value.eq_ignore_ascii_case("off") {
            return Ok(AdvisoryUpdate::Off);
        }
        if value.eq_ignore_ascii_case("auto") {
            return Url::parse(DEFAULT_URL).map(AdvisoryUpdate::Fetch).map_err(|_| bad(value));
        }
        let url = Url::parse(value).map_err(|_| bad(value))?;
        if let Some(password) = url.password() {
            redactor.register(password);
        }
        if let Some(query) = url.query().filter(|q| !q.is_empty()) {
            redactor.register(query);
        }
        if ensure_secure_url(&url).is_err() || url.host_str().is_none_or(str::is_empty) {
            return Err(bad(&shown_url(&url)));
        }
        Ok(AdvisoryUpdate::Fetch(url))
    }

    /// Flag, else task input; `auto` (or neither) means what [`DEFAULT_VAR`] says, else the
    /// published document. The task always passes its default `auto`, so the variable is how
    /// an agent pool (or a test harness) turns the update off or points it at a mirror for
    /// every pipeline, while an explicit `off` or URL in a pipeline still wins.
    pub fn from_sources(flag: Option<&str>, env: &AgentEnv, redactor: &Redactor) -> Result<AdvisoryUpdate, InputError> {
        let explicit = match (flag, env.input("advisoryUpdate")) {
            (Some(v), _) => Some(("--advisory-update", v)),
            (None, Some(v)) => Some(("advisoryUpdate", v)),
            (None, None) => None,
        };
        match (explicit, env.get(DEFAULT_VAR)) {
            (Some((name, v)), _) if !v.trim().eq_ignore_ascii_case("auto") => AdvisoryUpdate::parse(name, v, redactor),
            (_, Some(v)) => AdvisoryUpdate::parse(DEFAULT_VAR, v, redactor),
            (_, None) => AdvisoryUpdate::parse("advisoryUpdate", "auto", redactor),
        }
    }
}

/// Where fetched documents are kept: the agent's tool cache in a pipeline, else the user's
/// cache folder. `None` when there is neither (nothing is cached then).
pub fn cache_dir(env: &AgentEnv) -> Option<PathBuf> {
    if let Some(tools) = env.get("AGENT_TOOLSDIRECTORY") {
        return Some(Path::new(tools).join("azp-preflight").join("advisories"));
    }
    let base = env
        .get("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| env.get("LOCALAPPDATA").map(PathBuf::from))
        .or_else(|| env.get("HOME").map(|h| Path::new(h).join(".cache")))?;
    Some(base.join("azp-preflight").join("advisories"))
}

/// A URL as shown: scheme, host, port and path; no user info, no query (a signed mirror URL
/// carries its credentials there).
pub fn shown_url(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_values() {
        let r = Redactor::default();
        let default = Url::parse(DEFAULT_URL).unwrap();
        assert_eq!(AdvisoryUpdate::parse("advisoryUpdate", " Auto ", &r).unwrap(), AdvisoryUpdate::Fetch(default));
        assert_eq!(AdvisoryUpdate::parse("advisoryUpdate", "OFF", &r).unwrap(), AdvisoryUpdate::Off);
        let mirror = AdvisoryUpdate::parse("advisoryUpdate", "http://127.0.0.1:8080/adv/index.json", &r).unwrap();
        assert!(matches!(mirror, AdvisoryUpdate::Fetch(u) if u.port() == Some(8080)));
        for bad in ["sometimes", "http://mirror.contoso.com/index.json", "ftp://127.0.0.1/x", "index.json"] {
            let err = AdvisoryUpdate::parse("advisoryUpdate", bad, &r).unwrap_err();
            assert_eq!(err.input, "advisoryUpdate");
            assert!(err.expected.contains("auto, off, or the https URL"), "{err}");
        }
    }

    #[test]
    fn mirror_credentials_are_never_shown() {
        let r = Redactor::default();
        let url = "https://reader:pa55word@mirror.contoso.com/adv/index.json?sv=2024&sig=c2lnbmF0dXJl";
        let AdvisoryUpdate::Fetch(parsed) = AdvisoryUpdate::parse("advisoryUpdate", url, &r).unwrap() else {
            panic!("a URL")
        };
        assert_eq!(shown_url(&parsed), "https://mirror.contoso.com/adv/index.json");
        assert_eq!(r.redact("x pa55word y sv=2024&sig=c2lnbmF0dXJl"), "x *** y ***");
        let err =
            AdvisoryUpdate::parse("advisoryUpdate", "http://u:topsecret@mirror.contoso.com/i.json", &r).unwrap_err();
        assert!(!err.to_string().contains("topsecret"), "{err}");
    }

    #[test]
    fn precedence_flag_input_variable_default() {
        let r = Redactor::default();
        let mirror = "https://mirror.contoso.com/index.json";
        let fetch = |u: &str| AdvisoryUpdate::Fetch(Url::parse(u).unwrap());
        let env = AgentEnv::from_pairs([("INPUT_ADVISORYUPDATE", "off"), (DEFAULT_VAR, "auto")]);
        assert_eq!(AdvisoryUpdate::from_sources(None, &env, &r).unwrap(), AdvisoryUpdate::Off);
        assert_eq!(AdvisoryUpdate::from_sources(Some(mirror), &env, &r).unwrap(), fetch(mirror));
        assert_eq!(AdvisoryUpdate::from_sources(Some("auto"), &env, &r).unwrap(), fetch(DEFAULT_URL));
        // The task's default `auto` defers to the machine's variable; an explicit value wins.
        let env = AgentEnv::from_pairs([("INPUT_ADVISORYUPDATE", "auto"), (DEFAULT_VAR, "off")]);
        assert_eq!(AdvisoryUpdate::from_sources(None, &env, &r).unwrap(), AdvisoryUpdate::Off);
        assert_eq!(AdvisoryUpdate::from_sources(Some("auto"), &env, &r).unwrap(), AdvisoryUpdate::Off);
        let env = AgentEnv::from_pairs([("INPUT_ADVISORYUPDATE", mirror), (DEFAULT_VAR, "off")]);
        assert_eq!(AdvisoryUpdate::from_sources(None, &env, &r).unwrap(), fetch(mirror));
        let env = AgentEnv::from_pairs([(DEFAULT_VAR, "off")]);
        assert_eq!(AdvisoryUpdate::from_sources(None, &env, &r).unwrap(), AdvisoryUpdate::Off);
        let env = AgentEnv::from_pairs([(DEFAULT_VAR, "maybe")]);
        assert_eq!(AdvisoryUpdate::from_sources(None, &env, &r).unwrap_err().input, DEFAULT_VAR);
        let none: [(&str, &str); 0] = [];
        assert_eq!(
            AdvisoryUpdate::from_sources(None, &AgentEnv::from_pairs(none), &r).unwrap(),
            AdvisoryUpdate::Fetch(Url::parse(DEFAULT_URL).unwrap())
        );
    }

    #[test]
    fn cache_folder_follows_the_platform_conventions() {
        let dir = |pairs: &[(&str, &str)]| cache_dir(&AgentEnv::from_pairs(pairs.iter().copied()));
        assert_eq!(
            dir(&[("AGENT_TOOLSDIRECTORY", "/opt/hostedtoolcache"), ("HOME", "/home/vsts")]),
            Some(PathBuf::from("/opt/hostedtoolcache/azp-preflight/advisories"))
        );
        assert_eq!(
            dir(&[("XDG_CACHE_HOME", "/c"), ("HOME", "/home/me")]),
            Some(PathBuf::from("/c/azp-preflight/advisories"))
        );
        assert_eq!(dir(&[("HOME", "/home/me")]), Some(PathBuf::from("/home/me/.cache/azp-preflight/advisories")));
        assert_eq!(dir(&[]), None);
    }
}
