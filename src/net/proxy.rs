//! Proxy settings: the agent's proxy in a pipeline, `HTTPS_PROXY`/`NO_PROXY` on a laptop.
//! Loopback destinations never go through a proxy (a proxy cannot reach our loopback).

use url::Url;

use crate::env::AgentEnv;
use crate::secret::{Redactor, Secret};

#[derive(Debug, Clone, Default)]
pub struct ProxyConfig {
    pub url: Option<Url>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Agent bypass list entries are regular expressions over the URL; `NO_PROXY` entries
    /// are host suffixes. Both end up here as compiled patterns.
    pub bypass: Vec<Bypass>,
}

#[derive(Debug, Clone)]
pub enum Bypass {
    Pattern(regex_lite::Regex),
    HostSuffix(String),
    All,
}

impl ProxyConfig {
    /// Reads the agent proxy (`AGENT_PROXYURL`, ...) first, then the conventional variables.
    /// A proxy URL that does not parse is reported as an input error by the caller.
    pub fn from_env(env: &AgentEnv, redactor: &Redactor) -> Result<ProxyConfig, String> {
        if let Some(raw) = env.get("AGENT_PROXYURL") {
            // Credentials written into the URL never reach a message, even when it does
            // not parse.
            let mut url = Url::parse(raw).map_err(|e| {
                format!("AGENT_PROXYURL `{}` is not a URL ({e})", crate::userinfo::strip(raw, redactor))
            })?;
            let (url_user, url_password) = take_userinfo(&mut url, redactor);
            let bypass = match env.get("AGENT_PROXYBYPASSLIST") {
                Some(list) => parse_agent_bypass(list)?,
                None => Vec::new(),
            };
            return Ok(ProxyConfig {
                url: Some(url),
                username: env.get("AGENT_PROXYUSERNAME").map(str::to_string).or(url_user),
                password: env.get("AGENT_PROXYPASSWORD").map(|p| redactor.secret(p)).or(url_password),
                bypass,
            });
        }
        let raw = ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"].iter().find_map(|k| env.get(k));
        let Some(raw) = raw else { return Ok(ProxyConfig::default()) };
        let with_scheme = if raw.contains("://") { raw.to_string() } else { format!("http://{raw}") };
        let mut url = Url::parse(&with_scheme)
            .map_err(|e| format!("HTTPS_PROXY `{}` is not a URL ({e})", crate::userinfo::strip(raw, redactor)))?;
        let (username, password) = take_userinfo(&mut url, redactor);
        let no_proxy = ["NO_PROXY", "no_proxy"].iter().find_map(|k| env.get(k)).unwrap_or("");
        Ok(ProxyConfig { url: Some(url), username, password, bypass: parse_no_proxy(no_proxy) })
    }

    /// Whether a request to `url` should skip the proxy.
    pub fn bypasses(&self, url: &Url) -> bool {
        let host = url.host_str().unwrap_or("");
        if super::is_loopback_host(host) {
            return true;
        }
        self.bypass.iter().any(|b| match b {
            Bypass::All => true,
            Bypass::Pattern(re) => re.is_match(url.as_str()) || re.is_match(host),
            Bypass::HostSuffix(suffix) => {
                let host = host.to_ascii_lowercase();
                host == *suffix || host.ends_with(&format!(".{suffix}"))
            }
        })
    }
}

/// Credentials inside a proxy URL are secrets: they are taken out of the URL (which may be
/// shown) and kept apart, the password registered with the redactor.
fn take_userinfo(url: &mut Url, redactor: &Redactor) -> (Option<String>, Option<Secret>) {
    let username = (!url.username().is_empty()).then(|| url.username().to_string());
    let password = url.password().map(|p| redactor.secret(p));
    if let (Some(u), Some(p)) = (&username, &password) {
        redactor.register_basic(u, p.expose());
    }
    let _ = url.set_username("");
    let _ = url.set_password(None);
    (username, password)
}

/// `AGENT_PROXYBYPASSLIST` is a JSON array of regular expressions (the agent's `.proxybypass`).
fn parse_agent_bypass(list: &str) -> Result<Vec<Bypass>, String> {
    let entries: Vec<String> = serde_json::from_str(list)
        .map_err(|e| format!("AGENT_PROXYBYPASSLIST is not a JSON array of strings ({e})"))?;
    entries
        .iter()
        .map(|p| {
            regex_lite::Regex::new(p)
                .map(Bypass::Pattern)
                .map_err(|e| format!("AGENT_PROXYBYPASSLIST entry `{p}` is not a regular expression ({e})"))
        })
        .collect()
}

fn parse_no_proxy(list: &str) -> Vec<Bypass> {
    list.split(',')
        .map(|s| s.trim().trim_start_matches("*.").trim_start_matches('.').to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .map(|s| if s == "*" { Bypass::All } else { Bypass::HostSuffix(s) })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn agent_proxy_with_regex_bypass_and_secret_password() {
        let r = Redactor::default();
        let env = AgentEnv::from_pairs([
            ("AGENT_PROXYURL", "http://proxy.corp:8080"),
            ("AGENT_PROXYUSERNAME", "svc"),
            ("AGENT_PROXYPASSWORD", "proxy-canary-pw"),
            ("AGENT_PROXYBYPASSLIST", r#"["\\.internal\\.corp$", "github\\.com"]"#),
        ]);
        let p = ProxyConfig::from_env(&env, &r).unwrap();
        assert!(p.bypasses(&url("https://svc.internal.corp/x")));
        assert!(!p.bypasses(&url("https://contoso.azurecr.io/v2/")));
        assert!(p.bypasses(&url("http://127.0.0.1:5000/v2/")));
        assert_eq!(r.redact("proxy-canary-pw"), "***");
    }

    #[test]
    fn conventional_proxy_strips_credentials_and_honours_no_proxy() {
        let r = Redactor::default();
        let env = AgentEnv::from_pairs([
            ("HTTPS_PROXY", "http://me:pw-canary@proxy:3128"),
            ("NO_PROXY", "corp.local,.azurecr.io"),
        ]);
        let p = ProxyConfig::from_env(&env, &r).unwrap();
        assert_eq!(p.url.as_ref().unwrap().as_str(), "http://proxy:3128/");
        assert_eq!(p.username.as_deref(), Some("me"));
        assert!(p.bypasses(&url("https://contoso.azurecr.io/")));
        assert!(p.bypasses(&url("https://a.corp.local/")));
        assert!(!p.bypasses(&url("https://graph.microsoft.com/")));
    }

    #[test]
    fn bad_bypass_list_is_an_error() {
        let env = AgentEnv::from_pairs([("AGENT_PROXYURL", "http://p:1"), ("AGENT_PROXYBYPASSLIST", "not json")]);
        assert!(ProxyConfig::from_env(&env, &Redactor::default()).unwrap_err().contains("AGENT_PROXYBYPASSLIST"));
    }
}
