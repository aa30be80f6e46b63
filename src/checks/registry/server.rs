//! The first two links, which need no network: is the server usable as written (REG001),
//! and is it a near miss of a well-known registry domain (REG002)?

use url::Url;

use crate::net::is_loopback_host;

/// Where a server string came from; each allows a different shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerOrigin {
    /// A `registries` line or `--registry`: the parser already split the repository off.
    Line,
    /// The ACR connection's `loginServer`: a bare host.
    LoginServer,
    /// The generic connection's `registry` URL: `https://index.docker.io/v1/` and
    /// `https://host/v2/` style URLs are what `docker login` accepts, so a version path is fine.
    RegistryUrl,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub https: bool,
    /// Lower-case host; IPv6 literals without brackets.
    pub host: String,
    pub port: Option<u16>,
    /// `host[:port]` as written (brackets kept for IPv6).
    pub authority: String,
    /// The host the API lives on: Docker Hub's aliases all serve from `registry-1.docker.io`.
    pub api_authority: String,
    /// Where requests for this registry really go (`AZP_PREFLIGHT_REGISTRY_ENDPOINTS`): the
    /// name stays the registry's, the network address is the override's.
    pub endpoint: Option<Url>,
}

pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
const DOCKER_HUB_ALIASES: &[&str] =
    &["docker.io", "index.docker.io", "registry.hub.docker.com", "registry-1.docker.io"];

/// ACR's login-server suffixes per cloud (public, China, US Government).
const ACR_SUFFIXES: &[&str] = &["azurecr.io", "azurecr.cn", "azurecr.us"];

impl Server {
    /// The registry's own URL. With an endpoint override it is still the name's: the HTTP
    /// client connects it to the override's address (`net::route`), so realms, redirects and
    /// the Entra exchange are judged against the login server itself.
    pub fn base_url(&self) -> Option<Url> {
        let scheme = if self.https { "https" } else { "http" };
        Url::parse(&format!("{scheme}://{}/", self.api_authority)).ok()
    }

    /// The host the agent connects to (resolves, opens TCP to): the override's, else the API's.
    pub fn connect_host(&self) -> Option<String> {
        let url = match &self.endpoint {
            Some(e) => e.clone(),
            None => self.base_url()?,
        };
        Some(url.host_str()?.trim_start_matches('[').trim_end_matches(']').to_string())
    }

    /// Whether the connection to the registry's address uses TLS.
    pub fn uses_tls(&self) -> bool {
        self.endpoint.as_ref().map_or(self.https, |e| e.scheme() == "https")
    }

    pub fn is_docker_hub(&self) -> bool {
        DOCKER_HUB_ALIASES.contains(&self.host.as_str())
    }

    /// `*.azurecr.io` and the sovereign-cloud equivalents.
    pub fn is_acr_host(&self) -> bool {
        ACR_SUFFIXES.iter().any(|s| self.host.ends_with(&format!(".{s}")))
    }

    pub fn is_loopback(&self) -> bool {
        is_loopback_host(&self.host)
    }

    pub fn is_ip_literal(&self) -> bool {
        self.host.parse::<std::net::IpAddr>().is_ok()
    }

    pub fn port_or_default(&self) -> u16 {
        if let Some(port) = self.endpoint.as_ref().and_then(|e| e.port_or_known_default()) {
            return port;
        }
        self.port.unwrap_or(if self.https { 443 } else { 80 })
    }

    /// The registry name the `az acr` commands take: the first label of an ACR login server.
    pub fn acr_name(&self) -> String {
        if self.is_acr_host() {
            self.host.split('.').next().unwrap_or("<registry>").to_string()
        } else {
            "<registry-name>".to_string()
        }
    }

    /// Two servers are the same registry when host and port match (Docker Hub aliases match).
    pub fn same_registry(&self, other: &Server) -> bool {
        self.api_authority == other.api_authority && self.port_or_default() == other.port_or_default()
    }

    /// The repository as the API names it: Docker Hub puts official images under `library/`.
    pub fn api_repository(&self, repository: &str) -> String {
        if self.is_docker_hub() && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository.to_string()
        }
    }
}

/// Why a server cannot be used, with a corrected form when one is obvious.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// `empty`, `whitespace`, `scheme`, `http`, `path`, `uppercase`, `userinfo`, `port`, `character`.
    pub problem: &'static str,
    pub explanation: String,
    pub suggestion: Option<String>,
}

impl Malformed {
    fn new(problem: &'static str, explanation: impl Into<String>, suggestion: Option<String>) -> Self {
        Malformed { problem, explanation: explanation.into(), suggestion }
    }
}

/// Parses a server as written: an optional `https://` (or `http://` for loopback only), then a
/// lower-case host with an optional port, and no path except the version path a registry URL
/// may carry. What breaks these rules is REG001 (docs/codes/REG001.md).
pub fn parse_server(raw: &str, origin: ServerOrigin) -> Result<Server, Malformed> {
    if raw.trim().is_empty() {
        return Err(Malformed::new("empty", "the server is empty", None));
    }
    // Credentials first: every later message repeats the value or a corrected form of it,
    // and a password must not be among them.
    if let Some((_, host)) = before_path(raw).rsplit_once('@') {
        return Err(Malformed::new(
            "userinfo",
            "the server carries credentials (`user@`); they belong in the connection's username and password",
            Some(host.trim().to_string()).filter(|h| !h.is_empty()),
        ));
    }
    if raw.chars().any(char::is_whitespace) {
        let fixed: String = raw.split_whitespace().collect();
        return Err(Malformed::new(
            "whitespace",
            "the server contains whitespace (a stray space, tab or line break in the value)",
            Some(fixed),
        ));
    }
    let (https, rest) = match raw.find("://") {
        Some(i) => {
            let scheme = raw[..i].to_ascii_lowercase();
            let rest = &raw[i + 3..];
            match scheme.as_str() {
                "https" => (true, rest),
                "http" => (false, rest),
                _ => {
                    return Err(Malformed::new(
                        "scheme",
                        format!("the scheme `{}://` is not one a registry speaks; use https", &raw[..i]),
                        Some(rest.split('/').next().unwrap_or(rest).to_string()),
                    ))
                }
            }
        }
        None => (true, raw),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err(Malformed::new("empty", "the server has a scheme but no host", None));
    }
    let path_ok = match origin {
        ServerOrigin::Line => path.is_empty(),
        ServerOrigin::LoginServer => path.is_empty() || path == "/",
        ServerOrigin::RegistryUrl => {
            matches!(path.trim_end_matches('/'), "" | "/v1" | "/v2")
        }
    };
    if !path_ok {
        return Err(Malformed::new(
            "path",
            format!(
                "a login server is a host name, but `{raw}` carries the path `{path}`; the repository belongs in the image name, not in the server"
            ),
            Some(authority.to_ascii_lowercase()),
        ));
    }
    let (host, port) = split_host_port(authority)?;
    if host.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(Malformed::new(
            "uppercase",
            format!("`{host}` has upper-case letters; registry names are lower case (Docker: \"repository name must be lowercase\")"),
            Some(authority.to_ascii_lowercase()),
        ));
    }
    let is_ipv6 = host.contains(':');
    if !is_ipv6 && !valid_hostname(&host) {
        return Err(Malformed::new(
            "character",
            format!("`{host}` is not a host name: only letters, digits, `-` and `.` between non-empty labels"),
            None,
        ));
    }
    if !https && !is_loopback_host(&host) {
        return Err(Malformed::new(
            "http",
            format!(
                "plain `http://` to `{host}` would send the credential unencrypted; only loopback hosts (127.0.0.0/8, ::1, localhost) may use http"
            ),
            Some(authority.to_string()),
        ));
    }
    let api_authority = if DOCKER_HUB_ALIASES.contains(&host.as_str()) && port.is_none() {
        DOCKER_HUB_API.to_string()
    } else {
        authority.to_string()
    };
    Ok(Server { https, host, port, authority: authority.to_string(), api_authority, endpoint: None })
}

/// A server as written up to its path: `[scheme://][user[:password]@]host[:port]` (an `@`
/// anywhere in it, even before the `://`, marks credentials).
fn before_path(raw: &str) -> &str {
    let host_start = raw.find("://").map_or(0, |i| i + 3);
    raw[host_start..].find('/').map_or(raw, |i| &raw[..host_start + i])
}

fn split_host_port(authority: &str) -> Result<(String, Option<u16>), Malformed> {
    let (host, port_text) = if let Some(rest) = authority.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return Err(Malformed::new("character", format!("`{authority}` has an unclosed `[`"), None));
        };
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(Malformed::new("character", format!("`{authority}` is not host[:port]"), None)),
        };
        (rest[..end].to_string(), port)
    } else if authority.parse::<std::net::Ipv6Addr>().is_ok() {
        // A bare IPv6 literal: its colons are not a port separator.
        (authority.to_string(), None)
    } else {
        match authority.split_once(':') {
            // `h.example:5000:6000`: the first colon ends the host, and what follows must be
            // one port; a host never contains a colon unless it is a bracketed IPv6 literal.
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    let port = match port_text {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.chars().all(|c| c.is_ascii_digit()) => Some(n),
            _ => {
                return Err(Malformed::new(
                    "port",
                    format!("`{p}` is not a port number (1-65535)"),
                    Some(host.to_ascii_lowercase()),
                ))
            }
        },
    };
    if host.is_empty() {
        return Err(Malformed::new("empty", "the server has a port but no host", None));
    }
    Ok((host, port))
}

fn valid_hostname(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// The repository grammar of the distribution spec: lower-case path components.
pub fn check_repository(repository: &str) -> Result<(), Malformed> {
    if repository.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(Malformed::new(
            "uppercase",
            format!("the repository `{repository}` has upper-case letters; repository names are lower case"),
            Some(repository.to_ascii_lowercase()),
        ));
    }
    let component_ok = |c: &str| {
        let bytes = c.as_bytes();
        if bytes.is_empty() || !bytes[0].is_ascii_alphanumeric() || !bytes[bytes.len() - 1].is_ascii_alphanumeric() {
            return false;
        }
        // Separators between alphanumerics: `.`, `_`, `__` or runs of `-`.
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if b.is_ascii_lowercase() || b.is_ascii_digit() {
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() && matches!(bytes[i], b'.' | b'_' | b'-') {
                i += 1;
            }
            let sep = &c[start..i];
            if !(sep == "." || sep == "_" || sep == "__" || sep.chars().all(|ch| ch == '-')) {
                return false;
            }
            if i < bytes.len() && !(bytes[i].is_ascii_lowercase() || bytes[i].is_ascii_digit()) {
                return false;
            }
        }
        true
    };
    if repository.len() > 255 || !repository.split('/').all(component_ok) {
        return Err(Malformed::new(
            "repository",
            format!(
                "`{repository}` is not a repository name: lower-case letters and digits, separated by `.`, `_`, `__` or `-`, in `/`-separated parts"
            ),
            None,
        ));
    }
    Ok(())
}

/// Well-known registry domains and whose they are.
const KNOWN_DOMAINS: &[(&str, &str)] = &[
    ("azurecr.io", "Azure Container Registry"),
    ("azurecr.cn", "Azure Container Registry (China)"),
    ("azurecr.us", "Azure Container Registry (US Government)"),
    ("docker.io", "Docker Hub"),
    ("ghcr.io", "GitHub Container Registry"),
    ("gcr.io", "Google Container Registry"),
    ("pkg.dev", "Google Artifact Registry"),
    ("quay.io", "Quay"),
    ("amazonaws.com", "Amazon ECR"),
    ("public.ecr.aws", "Amazon ECR Public"),
    ("mcr.microsoft.com", "Microsoft Artifact Registry"),
    ("registry.gitlab.com", "GitLab Container Registry"),
    ("nvcr.io", "NVIDIA NGC"),
    ("ocir.io", "Oracle Cloud Registry"),
    ("jfrog.io", "JFrog Artifactory"),
];

/// Real domains that sit close to a known one and must not be called typos.
const NOT_TYPOS: &[&str] = &["docker.com", "microsoft.com", "github.com", "gitlab.com"];

/// A near miss of a well-known registry domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Typo {
    /// The part of the host that is off (`azureacr.io`).
    pub written: String,
    /// The domain it resembles (`azurecr.io`).
    pub intended: &'static str,
    pub owner: &'static str,
    /// The host with the domain corrected.
    pub suggestion: String,
}

/// Whether `host` looks like a typo of a well-known registry domain. Hosts that end in a
/// known domain exactly, IP addresses, loopback and `.invalid` names are not typos.
pub fn typo_of_known_domain(host: &str) -> Option<Typo> {
    if host.parse::<std::net::IpAddr>().is_ok() || is_loopback_host(host) || host.ends_with(".invalid") {
        return None;
    }
    let labels: Vec<&str> = host.split('.').collect();
    let suffix = |n: usize| -> Option<String> { (labels.len() >= n).then(|| labels[labels.len() - n..].join(".")) };
    // A host under a known domain is that domain's, whatever else is close to it.
    for (domain, _) in KNOWN_DOMAINS {
        if host == *domain || host.ends_with(&format!(".{domain}")) {
            return None;
        }
    }
    for (domain, owner) in KNOWN_DOMAINS {
        let n = domain.split('.').count();
        let Some(written) = suffix(n) else { continue };
        if NOT_TYPOS.contains(&written.as_str()) {
            continue;
        }
        // Short domains get a tighter threshold: `gcr.io` is one edit from many real names.
        let threshold = if domain.len() >= 9 { 2 } else { 1 };
        let Some(distance) = edit_distance_at_most(&written, domain, threshold) else { continue };
        if distance > 0 {
            let prefix = &labels[..labels.len() - n];
            let suggestion =
                if prefix.is_empty() { domain.to_string() } else { format!("{}.{domain}", prefix.join(".")) };
            return Some(Typo { written, intended: domain, owner, suggestion });
        }
    }
    // `contosoazurecr.io`: the dot before the ACR suffix is missing.
    for suffix in ACR_SUFFIXES {
        if let Some(name) = host.strip_suffix(suffix) {
            if !name.is_empty() && !name.ends_with('.') {
                return Some(Typo {
                    written: host.to_string(),
                    intended: suffix,
                    owner: "Azure Container Registry",
                    suggestion: format!("{name}.{suffix}"),
                });
            }
        }
    }
    None
}

/// Optimal string alignment distance: insertions, deletions, substitutions and adjacent
/// transpositions each cost one.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows (the transposition looks two back), not the whole table: a tag of a
    // megabyte against a wanted tag of 128 characters would otherwise need gigabytes.
    let mut before: Vec<usize> = Vec::new();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0usize; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (previous[j] + 1).min(current[j - 1] + 1).min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            current[j] = best;
        }
        before = std::mem::replace(&mut previous, std::mem::replace(&mut current, before));
        current.resize(b.len() + 1, 0);
    }
    previous[b.len()]
}

/// The distance when it is at most `limit`. Lengths that differ by more cannot be that close,
/// and are answered without the quadratic table (registry answers hold tags of any length).
pub fn edit_distance_at_most(a: &str, b: &str, limit: usize) -> Option<usize> {
    let (la, lb) = (a.chars().count(), b.chars().count());
    if la.abs_diff(lb) > limit {
        return None;
    }
    Some(edit_distance(a, b)).filter(|d| *d <= limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str, origin: ServerOrigin) -> Server {
        parse_server(raw, origin).unwrap_or_else(|e| panic!("{raw}: {e:?}"))
    }

    fn problem(raw: &str, origin: ServerOrigin) -> &'static str {
        parse_server(raw, origin).map(|s| panic!("{raw} parsed as {s:?}")).unwrap_err().problem
    }

    #[test]
    fn an_endpoint_override_changes_the_address_not_the_name() {
        let mut s = ok("contoso.azurecr.io", ServerOrigin::LoginServer);
        s.endpoint = Some(Url::parse("https://10.1.2.3:8443/").unwrap());
        assert_eq!(s.base_url().unwrap().as_str(), "https://contoso.azurecr.io/");
        assert_eq!((s.connect_host().as_deref(), s.port_or_default(), s.uses_tls()), (Some("10.1.2.3"), 8443, true));
        s.endpoint = Some(Url::parse("http://[::1]:5000/").unwrap());
        assert_eq!((s.connect_host().as_deref(), s.port_or_default(), s.uses_tls()), (Some("::1"), 5000, false));
        s.endpoint = None;
        assert_eq!((s.connect_host().as_deref(), s.port_or_default()), (Some("contoso.azurecr.io"), 443));
    }

    #[test]
    fn accepts_the_documented_forms() {
        let s = ok("contoso.azurecr.io", ServerOrigin::LoginServer);
        assert!(s.https && s.is_acr_host());
        assert_eq!((s.acr_name().as_str(), s.port_or_default()), ("contoso", 443));
        let s = ok("https://contoso.azurecr.io/", ServerOrigin::LoginServer);
        assert_eq!(s.base_url().unwrap().as_str(), "https://contoso.azurecr.io/");
        let s = ok("http://127.0.0.1:5000", ServerOrigin::Line);
        assert!(!s.https && s.is_loopback());
        assert_eq!(s.base_url().unwrap().as_str(), "http://127.0.0.1:5000/");
        let s = ok("http://[::1]:5000", ServerOrigin::Line);
        assert_eq!((s.host.as_str(), s.port), ("::1", Some(5000)));
        let s = ok("localhost:5000", ServerOrigin::Line);
        assert_eq!(s.authority, "localhost:5000");
    }

    #[test]
    fn docker_hub_urls_in_a_registry_parameter_are_understood() {
        for raw in [
            "https://index.docker.io/v1/",
            "https://index.docker.io/v1",
            "docker.io",
            "https://registry-1.docker.io/v2/",
        ] {
            let s = ok(raw, ServerOrigin::RegistryUrl);
            assert!(s.is_docker_hub(), "{raw}");
            assert_eq!(s.base_url().unwrap().as_str(), "https://registry-1.docker.io/");
            assert_eq!(s.api_repository("nginx"), "library/nginx");
        }
        assert!(ok("https://registry.example.com/v2/", ServerOrigin::RegistryUrl)
            .same_registry(&ok("registry.example.com", ServerOrigin::Line)));
        assert!(ok("index.docker.io", ServerOrigin::Line).same_registry(&ok("docker.io", ServerOrigin::Line)));
    }

    #[test]
    fn refuses_unusable_servers_with_a_reason_and_a_fix() {
        assert_eq!(problem("", ServerOrigin::Line), "empty");
        assert_eq!(problem("  ", ServerOrigin::LoginServer), "empty");
        assert_eq!(problem("contoso.azurecr.io ", ServerOrigin::LoginServer), "whitespace");
        assert_eq!(problem("http://contoso.azurecr.io", ServerOrigin::Line), "http");
        assert_eq!(problem("http://10.0.0.4:5000", ServerOrigin::Line), "http");
        assert_eq!(problem("ftp://contoso.azurecr.io", ServerOrigin::Line), "scheme");
        assert_eq!(problem("contoso.azurecr.io/app", ServerOrigin::LoginServer), "path");
        assert_eq!(problem("https://registry.example.com/team", ServerOrigin::RegistryUrl), "path");
        assert_eq!(problem("user@contoso.azurecr.io", ServerOrigin::Line), "userinfo");
        assert_eq!(problem("contoso.azurecr.io:99999", ServerOrigin::Line), "port");
        assert_eq!(problem("h.example:5000:6000", ServerOrigin::Line), "port");
        assert_eq!(problem("contoso_acr.azurecr.io", ServerOrigin::Line), "character");
        let e = parse_server("Contoso.AzureCR.io", ServerOrigin::Line).unwrap_err();
        assert_eq!((e.problem, e.suggestion.as_deref()), ("uppercase", Some("contoso.azurecr.io")));
    }

    #[test]
    fn repository_names_follow_the_distribution_grammar() {
        for good in ["app", "team/app", "a.b_c__d--e/f-1", "library/nginx"] {
            assert!(check_repository(good).is_ok(), "{good}");
        }
        for bad in ["App", "team/-app", "a..b", "a___b", "team/app-"] {
            assert!(check_repository(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn typo_guard_catches_near_misses_only() {
        for (host, suggestion) in [
            ("contoso.azureacr.io", "contoso.azurecr.io"),
            ("contoso.azurecr.com", "contoso.azurecr.io"),
            ("contoso.azurcr.io", "contoso.azurecr.io"),
            ("contoso.auzrecr.io", "contoso.azurecr.io"),
            ("contosoazurecr.io", "contoso.azurecr.io"),
            ("registry.dokcer.io", "registry.docker.io"),
            ("ghrc.io", "ghcr.io"),
            ("mrc.microsoft.com", "mcr.microsoft.com"),
        ] {
            let t = typo_of_known_domain(host).unwrap_or_else(|| panic!("{host} not flagged"));
            assert_eq!(t.suggestion, suggestion, "{host}");
        }
        for host in [
            "contoso.azurecr.io",
            "contoso.westeurope.data.azurecr.io",
            "contoso.azurecr.cn",
            "registry-1.docker.io",
            "ghcr.io",
            "gcr.io",
            "europe-docker.pkg.dev",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            "contoso.invalid",
            "azureacr.invalid",
            "registry.contoso.com",
            "harbor.example.io",
            "download.docker.com",
            "127.0.0.1",
            "localhost",
            "myregistry",
        ] {
            assert_eq!(typo_of_known_domain(host), None, "{host}");
        }
    }

    #[test]
    fn edit_distance_counts_transpositions_once() {
        assert_eq!(edit_distance("azurecr.io", "azurecr.io"), 0);
        assert_eq!(edit_distance("azureacr.io", "azurecr.io"), 1);
        assert_eq!(edit_distance("auzrecr.io", "azurecr.io"), 1);
        assert_eq!(edit_distance("azurecr.com", "azurecr.io"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("ca", "abc"), 3);
        assert_eq!(edit_distance("1.0.2", "1.0.0"), 1);
        assert_eq!(edit_distance_at_most("lastest", "latest", 2), Some(1));
        assert_eq!(edit_distance_at_most("1.0.0", "9.9.9", 2), None);
    }

    #[test]
    fn credentials_in_a_server_never_reach_a_message() {
        // Found by fuzzing: the path (and scheme) messages repeated the value, password included.
        for (raw, origin) in [
            ("https://user:s3cret@myreg.io/team", ServerOrigin::Line),
            ("ftp://user:s3cret@myreg.io", ServerOrigin::Line),
            ("user:s3cret@myreg.io /v2", ServerOrigin::RegistryUrl),
            ("user:s3cret@linux/amd64", ServerOrigin::Line),
            ("user:s3cret@https://myreg.io", ServerOrigin::Line),
        ] {
            let m = parse_server(raw, origin).unwrap_err();
            assert_eq!(m.problem, "userinfo", "{raw}");
            let said = format!("{} {:?}", m.explanation, m.suggestion);
            assert!(!said.contains("s3cret") && !said.contains("user:"), "{said}");
        }
        let m = parse_server("https://user:s3cret@myreg.io", ServerOrigin::Line).unwrap_err();
        assert_eq!(m.suggestion.as_deref(), Some("myreg.io"));
    }

    #[test]
    fn distances_to_very_long_names_are_cheap() {
        // Found by fuzzing: a 2 MB tag against a 128-character one built a 2 GB table, and a
        // long IPv6-like host took seconds in the typo guard.
        let start = std::time::Instant::now();
        assert_eq!(edit_distance_at_most(&"t".repeat(128), &"x".repeat(2 << 20), 64), None);
        assert_eq!(typo_of_known_domain(&format!("{}:1.azurecr.io", "a".repeat(1 << 20))), None);
        assert_eq!(edit_distance(&"a".repeat(2_000), &"b".repeat(2_000)), 2_000);
        assert!(start.elapsed() < std::time::Duration::from_secs(2), "{:?}", start.elapsed());
    }
}
