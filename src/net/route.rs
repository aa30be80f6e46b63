//! Names whose connections go to another address (`AZP_PREFLIGHT_REGISTRY_ENDPOINTS`): a
//! registry behind a private endpoint, or a test fake.
//!
//! The name stays in every URL, so everything that compares origins (a challenge's realm on
//! the login server, an upload `Location`, the Entra exchange) sees the registry's own name,
//! and an https connection verifies the certificate for that name and sends it as SNI and
//! `Host`, as a private endpoint expects. Only the socket goes elsewhere: the client's resolver
//! answers the name with the override's address. A plain-http override (loopback only) cannot
//! carry the name in TLS, so its requests are rewritten to the override's origin with the name
//! kept in `Host`.

use std::net::SocketAddr;
use std::sync::Arc;

use url::Url;

#[derive(Debug, Clone)]
struct Route {
    /// Lower-case host of the name (IPv6 without brackets).
    host: String,
    /// Explicit port of the name; `None` for the https default.
    port: Option<u16>,
    /// `host[:port]` as it goes in `Host`.
    authority: String,
    to: Url,
}

/// Every override of the run; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Routes(Arc<Vec<Route>>);

/// What a request to a routed name becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed {
    /// The URL stays; the resolver connects the name to the override's address.
    Resolve,
    /// Plain http to loopback: this URL instead, with the name in `Host`.
    Rewrite { url: Url, host: String },
}

impl Routes {
    /// From `(login server as written, override URL)` pairs. A name that does not form an
    /// https origin is skipped (the registry check reports it as a bad server anyway).
    pub fn new(pairs: &[(String, Url)]) -> Routes {
        let routes = pairs
            .iter()
            .filter_map(|(name, to)| {
                let named = Url::parse(&format!("https://{name}/")).ok()?;
                let host = bare_host(&named)?;
                let authority = match named.port() {
                    Some(p) => format!("{}:{p}", named.host_str()?),
                    None => named.host_str()?.to_string(),
                };
                Some(Route { host, port: named.port(), authority, to: to.clone() })
            })
            .collect();
        Routes(Arc::new(routes))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether any override needs the client's resolver (an https override).
    pub fn resolves(&self) -> bool {
        self.0.iter().any(|r| r.to.scheme() == "https")
    }

    fn find(&self, url: &Url) -> Option<&Route> {
        if url.scheme() != "https" {
            return None;
        }
        let host = bare_host(url)?;
        self.0.iter().find(|r| r.host == host && r.port == url.port())
    }

    /// Whether `url` is on an overridden name (such requests never go through a proxy: the
    /// proxy would resolve the name itself and miss the override).
    pub fn covers(&self, url: &Url) -> bool {
        self.find(url).is_some()
    }

    /// How a request to `url` is made; `None` when the name is not overridden.
    pub fn route(&self, url: &Url) -> Option<Routed> {
        let route = self.find(url)?;
        if route.to.scheme() == "https" {
            return Some(Routed::Resolve);
        }
        let mut rewritten = route.to.clone();
        rewritten.set_path(url.path());
        rewritten.set_query(url.query());
        Some(Routed::Rewrite { url: rewritten, host: route.authority.clone() })
    }

    /// The address (host, port) the resolver uses for a name, when it is overridden over https.
    fn connect_to(&self, name: &str) -> Option<(String, u16)> {
        let route = self.0.iter().find(|r| r.to.scheme() == "https" && r.host.eq_ignore_ascii_case(name))?;
        Some((bare_host(&route.to)?, route.to.port_or_known_default()?))
    }
}

/// The host as a resolver takes it: IPv6 literals without brackets.
fn bare_host(url: &Url) -> Option<String> {
    match url.host()? {
        url::Host::Ipv6(ip) => Some(ip.to_string()),
        url::Host::Ipv4(ip) => Some(ip.to_string()),
        url::Host::Domain(d) => Some(d.to_ascii_lowercase()),
    }
}

/// The client's resolver when https overrides exist: an overridden name resolves to the
/// override's address (with its port, which the connection uses when the URL names none);
/// any other name resolves as usual (port 0: the URL's port or the scheme's default).
pub struct RouteResolver(pub Routes);

impl reqwest::dns::Resolve for RouteResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let (host, port) = self.0.connect_to(name.as_str()).unwrap_or_else(|| (name.as_str().to_string(), 0));
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port)).await?.collect();
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes() -> Routes {
        Routes::new(&[
            ("contoso.azurecr.io".into(), Url::parse("https://10.1.2.3/").unwrap()),
            ("lab.azurecr.io".into(), Url::parse("http://127.0.0.1:5000/").unwrap()),
            ("ported.example:8443".into(), Url::parse("https://localhost:9443/").unwrap()),
        ])
    }

    #[test]
    fn an_https_override_keeps_the_url_and_resolves_the_name_to_the_address() {
        let r = routes();
        let realm = Url::parse("https://contoso.azurecr.io/oauth2/token?service=x").unwrap();
        assert_eq!(r.route(&realm), Some(Routed::Resolve));
        assert!(r.covers(&realm));
        assert_eq!(r.connect_to("contoso.azurecr.io"), Some(("10.1.2.3".into(), 443)));
        assert_eq!(r.connect_to("Contoso.AzureCR.io"), Some(("10.1.2.3".into(), 443)));
        assert_eq!(r.connect_to("ported.example"), Some(("localhost".into(), 9443)));
        // The plain-http override is not the resolver's business.
        assert_eq!(r.connect_to("lab.azurecr.io"), None);
        assert!(r.resolves());
    }

    #[test]
    fn a_plain_http_override_rewrites_to_its_origin_and_keeps_the_name_in_host() {
        let url = Url::parse("https://lab.azurecr.io/v2/shop/web/tags/list?n=100").unwrap();
        assert_eq!(
            routes().route(&url),
            Some(Routed::Rewrite {
                url: Url::parse("http://127.0.0.1:5000/v2/shop/web/tags/list?n=100").unwrap(),
                host: "lab.azurecr.io".into()
            })
        );
    }

    #[test]
    fn other_hosts_ports_and_schemes_are_not_routed() {
        let r = routes();
        for url in [
            "https://auth.contoso.example/oauth2/token",
            "http://contoso.azurecr.io/v2/",
            "https://contoso.azurecr.io:444/v2/",
            "https://ported.example/v2/",
            "https://contoso.azurecr.io.evil.example/v2/",
        ] {
            assert_eq!(r.route(&Url::parse(url).unwrap()), None, "{url}");
        }
        assert!(r.covers(&Url::parse("https://ported.example:8443/v2/").unwrap()));
        // A name written with the default port is the same origin as without it.
        let explicit = Routes::new(&[("contoso.azurecr.io:443".into(), Url::parse("https://10.1.2.3/").unwrap())]);
        assert!(explicit.covers(&Url::parse("https://contoso.azurecr.io/v2/").unwrap()));
        assert!(Routes::default().is_empty() && !Routes::default().resolves());
    }
}
