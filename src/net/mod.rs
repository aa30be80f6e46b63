//! Everything that talks to a remote service goes through here: one HTTP client builder
//! (TLS roots, timeouts, proxy, retries, the loopback-only rule for plain http) and the
//! `Endpoints` value every service URL comes from.

pub mod endpoints;
pub mod http;
pub mod limit;
pub mod proxy;
pub mod route;

pub use endpoints::Endpoints;
pub use http::{HttpClient, HttpError, HttpErrorKind, Request, Response};

use url::Url;

/// True for 127.0.0.0/8, ::1 and `localhost`: the only hosts plain http may reach.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Refuses `http://` to anything but loopback, and every scheme other than http(s).
pub fn ensure_secure_url(url: &Url) -> Result<(), String> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if url.host_str().is_some_and(is_loopback_host) => Ok(()),
        "http" => Err(format!(
            "plain http to {} is refused: only loopback hosts (127.0.0.0/8, ::1, localhost) may use http; use https",
            url.host_str().unwrap_or("?")
        )),
        other => Err(format!("scheme `{other}` is not supported; use https")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback() {
        for ok in [
            "https://example.com/",
            "http://127.0.0.1:5000/",
            "http://[::1]:80/",
            "http://localhost/",
            "http://127.8.9.1/",
        ] {
            assert!(ensure_secure_url(&Url::parse(ok).unwrap()).is_ok(), "{ok}");
        }
        for bad in ["http://example.com/", "http://10.0.0.1/", "ftp://127.0.0.1/", "http://localhost.evil.com/"] {
            assert!(ensure_secure_url(&Url::parse(bad).unwrap()).is_err(), "{bad}");
        }
    }
}
