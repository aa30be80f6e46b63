//! Every service URL the run may call, resolved once from the environment and flags.
//! Sovereign clouds, Azure Stack and the test fakes all enter here.

use url::Url;

use crate::env::AgentEnv;

pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com/";
pub const DEFAULT_GRAPH: &str = "https://graph.microsoft.com/";
pub const DEFAULT_ARM: &str = "https://management.azure.com/";
pub const DEFAULT_IMDS: &str = "http://169.254.169.254/";

#[derive(Debug, Clone)]
pub struct Endpoints {
    /// Entra ID authority host (`AZURE_AUTHORITY_HOST`), used unless a connection names its own.
    pub authority: Url,
    /// Microsoft Graph (`AZP_PREFLIGHT_GRAPH_URL`).
    pub graph: Url,
    /// Azure Resource Manager (`AZP_PREFLIGHT_ARM_URL`).
    pub arm: Url,
    /// Instance metadata service (`AZP_PREFLIGHT_IMDS_URL`); never proxied.
    pub imds: Url,
    /// The Azure DevOps collection (`ENDPOINT_URL_SYSTEMVSSCONNECTION`, `SYSTEM_COLLECTIONURI`).
    pub devops: Option<Url>,
    /// Where workload identity federation asks for an ID token (`SYSTEM_OIDCREQUESTURI`).
    pub oidc_request: Option<Url>,
    /// Whether Graph/ARM/authority were overridden explicitly; an explicit override wins
    /// over the cloud a connection's endpoint data names.
    pub graph_overridden: bool,
    pub arm_overridden: bool,
    pub authority_overridden: bool,
    /// Registry login servers mapped to the address to use instead
    /// (`AZP_PREFLIGHT_REGISTRY_ENDPOINTS=contoso.azurecr.io=https://10.1.2.3:443,...`): a
    /// registry behind a private endpoint or a test fake keeps its name in every message.
    pub registries: Vec<(String, Url)>,
}

impl Endpoints {
    /// Reads the overrides; a value that is not an absolute URL is an input error naming
    /// the variable.
    pub fn from_env(env: &AgentEnv) -> Result<Endpoints, String> {
        let pick = |var: &str, default: &str| -> Result<(Url, bool), String> {
            match env.get(var) {
                Some(v) => Ok((base_url(var, v)?, true)),
                None => Ok((base_url(var, default)?, false)),
            }
        };
        let (authority, authority_overridden) = pick("AZURE_AUTHORITY_HOST", DEFAULT_AUTHORITY)?;
        let (graph, graph_overridden) = pick("AZP_PREFLIGHT_GRAPH_URL", DEFAULT_GRAPH)?;
        let (arm, arm_overridden) = pick("AZP_PREFLIGHT_ARM_URL", DEFAULT_ARM)?;
        let (imds, _) = pick("AZP_PREFLIGHT_IMDS_URL", DEFAULT_IMDS)?;
        let devops = match env
            .get("ENDPOINT_URL_SYSTEMVSSCONNECTION")
            .map(|v| ("ENDPOINT_URL_SYSTEMVSSCONNECTION", v))
            .or_else(|| env.get("SYSTEM_COLLECTIONURI").map(|v| ("SYSTEM_COLLECTIONURI", v)))
        {
            Some((var, v)) => Some(base_url(var, v)?),
            None => None,
        };
        let oidc_request = match env.get("SYSTEM_OIDCREQUESTURI") {
            Some(v) => {
                Some(Url::parse(v).map_err(|e| format!("SYSTEM_OIDCREQUESTURI `{v}` is not an absolute URL ({e})"))?)
            }
            None => None,
        };
        let registries = match env.get("AZP_PREFLIGHT_REGISTRY_ENDPOINTS") {
            Some(v) => parse_registry_endpoints(v)?,
            None => Vec::new(),
        };
        Ok(Endpoints {
            authority,
            graph,
            arm,
            imds,
            devops,
            oidc_request,
            graph_overridden,
            arm_overridden,
            authority_overridden,
            registries,
        })
    }

    /// The address to use for a registry's login server (`host[:port]`), when overridden.
    pub fn registry_endpoint(&self, authority: &str) -> Option<&Url> {
        self.registries.iter().find(|(name, _)| name.eq_ignore_ascii_case(authority)).map(|(_, url)| url)
    }

    /// `{authority}{tenant}/oauth2/v2.0/token`.
    pub fn token_url(authority: &Url, tenant: &str) -> Result<Url, url::ParseError> {
        authority.join(&format!("{tenant}/oauth2/v2.0/token"))
    }
}

fn parse_registry_endpoints(value: &str) -> Result<Vec<(String, Url)>, String> {
    let var = "AZP_PREFLIGHT_REGISTRY_ENDPOINTS";
    value
        .split([',', ' ', '\n'])
        .filter(|p| !p.trim().is_empty())
        .map(|pair| {
            let (name, url) = pair
                .trim()
                .split_once('=')
                .ok_or_else(|| format!("{var}: `{pair}` is not valid; expected <login server>=<URL>, e.g. contoso.azurecr.io=https://10.1.2.3/"))?;
            Ok((name.to_ascii_lowercase(), base_url(var, url)?))
        })
        .collect()
}

/// Parses a base URL and makes sure it ends with `/`, so `join` appends instead of
/// replacing the last segment (a base given without a trailing slash works the same).
pub fn base_url(name: &str, value: &str) -> Result<Url, String> {
    let trimmed = value.trim();
    let with_slash = if trimmed.ends_with('/') { trimmed.to_string() } else { format!("{trimmed}/") };
    let url = Url::parse(&with_slash)
        .map_err(|e| format!("{name} `{trimmed}` is not an absolute URL ({e}); expected e.g. https://host/"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{name} `{trimmed}` must be an http(s) URL"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides_with_or_without_trailing_slash() {
        let e = Endpoints::from_env(&AgentEnv::default()).unwrap();
        assert_eq!(e.graph.as_str(), DEFAULT_GRAPH);
        assert!(!e.graph_overridden);
        let env = AgentEnv::from_pairs([
            ("AZP_PREFLIGHT_GRAPH_URL", "http://127.0.0.1:9/graph"),
            ("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us"),
        ]);
        let e = Endpoints::from_env(&env).unwrap();
        assert_eq!(e.graph.join("v1.0/applications").unwrap().as_str(), "http://127.0.0.1:9/graph/v1.0/applications");
        assert_eq!(
            Endpoints::token_url(&e.authority, "t1").unwrap().as_str(),
            "https://login.microsoftonline.us/t1/oauth2/v2.0/token"
        );
    }

    #[test]
    fn registry_endpoint_overrides() {
        let env = AgentEnv::from_pairs([(
            "AZP_PREFLIGHT_REGISTRY_ENDPOINTS",
            "Contoso.azurecr.io=http://127.0.0.1:5000, b.azurecr.io=https://10.0.0.4",
        )]);
        let e = Endpoints::from_env(&env).unwrap();
        assert_eq!(e.registry_endpoint("contoso.azurecr.io").unwrap().as_str(), "http://127.0.0.1:5000/");
        assert!(e.registry_endpoint("other.azurecr.io").is_none());
        let err =
            Endpoints::from_env(&AgentEnv::from_pairs([("AZP_PREFLIGHT_REGISTRY_ENDPOINTS", "nope")])).unwrap_err();
        assert!(err.contains("expected <login server>=<URL>"), "{err}");
    }

    #[test]
    fn a_bad_override_names_the_variable() {
        let err = Endpoints::from_env(&AgentEnv::from_pairs([("AZP_PREFLIGHT_ARM_URL", "not a url")])).unwrap_err();
        assert!(err.starts_with("AZP_PREFLIGHT_ARM_URL `not a url`"), "{err}");
    }
}
