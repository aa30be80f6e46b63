//! The low-level links, probed directly so each failure names its layer: DNS (REG003), the
//! address class (REG004), TCP (REG005) and TLS (REG006). The HTTP exchanges that follow go
//! through the run's HTTP client; these probes only open and close a connection.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsFailure {
    /// `nxdomain`, `temporary`, `timeout`, `out-of-files` (a local limit), `other`.
    pub kind: &'static str,
    pub detail: String,
}

/// The failure kind for "this process has no file descriptor left": never a network verdict.
pub const OUT_OF_FILES: &str = "out-of-files";

/// Resolves `host` (not an IP literal) with a deadline. `.invalid` names fail at once, as
/// RFC 6761 asks resolvers to do, without a query.
pub async fn resolve(host: &str, port: u16, timeout: Duration) -> Result<Vec<SocketAddr>, DnsFailure> {
    if host == "invalid" || host.ends_with(".invalid") {
        return Err(DnsFailure { kind: "nxdomain", detail: "names under `.invalid` never resolve (RFC 6761)".into() });
    }
    match tokio::time::timeout(timeout, tokio::net::lookup_host((host, port))).await {
        Err(_) => Err(DnsFailure {
            kind: "timeout",
            detail: format!("no answer from the resolver within {} ms", timeout.as_millis()),
        }),
        Ok(Err(e)) => {
            let text = e.to_string();
            let lower = text.to_ascii_lowercase();
            // The resolver needs a socket too: without a descriptor the name is not at fault.
            let kind = if crate::net::limit::is_out_of_files(&e) || crate::net::limit::mentions_out_of_files(&text) {
                OUT_OF_FILES
            } else if lower.contains("not known") || lower.contains("no address") || lower.contains("nodename nor") {
                "nxdomain"
            } else if lower.contains("temporary") || lower.contains("try again") {
                "temporary"
            } else {
                "other"
            };
            Err(DnsFailure { kind, detail: text })
        }
        Ok(Ok(addrs)) => {
            let mut out: Vec<SocketAddr> = Vec::new();
            for a in addrs {
                if !out.contains(&a) {
                    out.push(a);
                }
            }
            if out.is_empty() {
                Err(DnsFailure { kind: "nxdomain", detail: "the resolver returned no address".into() })
            } else {
                Ok(out)
            }
        }
    }
}

/// How an address is reached: public internet, a private network (private endpoint, VPN),
/// or this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Public,
    Private,
    Loopback,
}

pub fn address_class(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if v4.is_loopback() {
                AddressClass::Loopback
            } else if v4.is_private()
                || v4.is_link_local()
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || v4.is_unspecified()
            {
                AddressClass::Private
            } else {
                AddressClass::Public
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return address_class(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            if v6.is_loopback() {
                AddressClass::Loopback
            } else if (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80 || v6.is_unspecified() {
                AddressClass::Private
            } else {
                AddressClass::Public
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpFailure {
    /// `timeout`, `refused`, `unreachable`, `out-of-files` (a local limit), `other`.
    pub kind: &'static str,
    pub address: SocketAddr,
    pub detail: String,
}

/// Connects to the first address that accepts, within `timeout` overall.
pub async fn connect(addrs: &[SocketAddr], timeout: Duration) -> Result<(TcpStream, SocketAddr), TcpFailure> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = None;
    for (i, addr) in addrs.iter().enumerate() {
        // Leave the later addresses a share of the time: a dead IPv6 route must not eat it all.
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let share = if i + 1 < addrs.len() { remaining / 2 } else { remaining };
        match tokio::time::timeout(share, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Ok((stream, *addr)),
            Ok(Err(e)) => {
                let kind = match e.kind() {
                    _ if crate::net::limit::is_out_of_files(&e) => OUT_OF_FILES,
                    std::io::ErrorKind::ConnectionRefused => "refused",
                    std::io::ErrorKind::TimedOut => "timeout",
                    _ if is_unreachable(&e) => "unreachable",
                    _ => "other",
                };
                let failure = TcpFailure { kind, address: *addr, detail: e.to_string() };
                // Another address would fail the same way, and must not hide the cause.
                if kind == OUT_OF_FILES {
                    return Err(failure);
                }
                last = Some(failure);
            }
            Err(_) => {
                last = Some(TcpFailure {
                    kind: "timeout",
                    address: *addr,
                    detail: format!("no answer to the connection attempt within {} ms", share.as_millis()),
                })
            }
        }
    }
    Err(last.unwrap_or(TcpFailure {
        kind: "other",
        address: SocketAddr::from(([0, 0, 0, 0], 0)),
        detail: "no address to connect to".into(),
    }))
}

fn is_unreachable(e: &std::io::Error) -> bool {
    let text = e.to_string().to_ascii_lowercase();
    text.contains("unreachable") || text.contains("no route")
}

/// The trust the HTTP client uses: Mozilla's roots, the OS store and `SSL_CERT_FILE`.
pub fn client_config(extra_roots_pem: Option<&[u8]>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in rustls_native_certs::load_native_certs().certs {
        // One odd certificate in the OS store must not make every registry unreachable.
        let _ = roots.add(cert);
    }
    if let Some(pem) = extra_roots_pem {
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("SSL_CERT_FILE holds a certificate that does not parse ({e})"))?;
            roots.add(cert).map_err(|e| format!("SSL_CERT_FILE holds an unusable certificate ({e})"))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration failed ({e})"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFailure {
    /// `certificate` or `handshake`.
    pub kind: &'static str,
    /// A short machine-readable reason: `unknown-issuer`, `name-mismatch`, `expired`,
    /// `not-tls`, `timeout`, ...
    pub reason: &'static str,
    pub detail: String,
}

/// What the handshake established.
#[derive(Debug, Clone)]
pub struct TlsInfo {
    pub version: String,
}

pub async fn handshake(
    stream: TcpStream,
    host: &str,
    config: Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> Result<TlsInfo, TlsFailure> {
    let name = ServerName::try_from(host.to_string()).map_err(|e| TlsFailure {
        kind: "handshake",
        reason: "bad-name",
        detail: format!("`{host}` cannot be used as a TLS server name ({e})"),
    })?;
    let connector = tokio_rustls::TlsConnector::from(config);
    match tokio::time::timeout(timeout, connector.connect(name, stream)).await {
        Err(_) => Err(TlsFailure {
            kind: "handshake",
            reason: "timeout",
            detail: format!("the TLS handshake did not finish within {} ms", timeout.as_millis()),
        }),
        Ok(Err(e)) => Err(classify_tls(&e, host)),
        Ok(Ok(tls)) => {
            let version = tls
                .get_ref()
                .1
                .protocol_version()
                .map(|v| format!("{v:?}").replace("TLSv1_", "TLS 1."))
                .unwrap_or_else(|| "TLS".into());
            Ok(TlsInfo { version })
        }
    }
}

fn classify_tls(e: &std::io::Error, host: &str) -> TlsFailure {
    use rustls::CertificateError as C;
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match inner {
        Some(rustls::Error::InvalidCertificate(cert)) => {
            let (reason, detail) = match cert {
                C::UnknownIssuer => (
                    "unknown-issuer",
                    "the certificate is issued by an authority this agent does not trust (a TLS-inspecting proxy or a private CA)".to_string(),
                ),
                C::NotValidForName | C::NotValidForNameContext { .. } => {
                    ("name-mismatch", format!("the certificate is not valid for the name `{host}`"))
                }
                C::Expired | C::ExpiredContext { .. } => ("expired", "the certificate has expired".to_string()),
                C::NotValidYet | C::NotValidYetContext { .. } => {
                    ("not-yet-valid", "the certificate is not valid yet (or this agent's clock is behind)".to_string())
                }
                C::Revoked => ("revoked", "the certificate has been revoked".to_string()),
                C::BadSignature | C::UnsupportedSignatureAlgorithmContext { .. } => {
                    ("bad-signature", "the certificate's signature cannot be verified".to_string())
                }
                other => ("invalid", format!("the certificate was rejected ({other:?})")),
            };
            TlsFailure { kind: "certificate", reason, detail }
        }
        Some(rustls::Error::InvalidMessage(_)) | Some(rustls::Error::InappropriateMessage { .. }) => TlsFailure {
            kind: "handshake",
            reason: "not-tls",
            detail: "the server did not answer with TLS (plain http on this port, or a proxy that breaks TLS)".into(),
        },
        Some(rustls::Error::AlertReceived(alert)) => TlsFailure {
            kind: "handshake",
            reason: "alert",
            detail: format!("the server aborted the handshake with the alert {alert:?}"),
        },
        Some(rustls::Error::PeerIncompatible(p)) => TlsFailure {
            kind: "handshake",
            reason: "incompatible",
            detail: format!("the server offers no protocol version or cipher this agent accepts ({p:?})"),
        },
        Some(other) => TlsFailure { kind: "handshake", reason: "other", detail: other.to_string() },
        None => {
            let reason = match e.kind() {
                std::io::ErrorKind::UnexpectedEof => "closed",
                std::io::ErrorKind::ConnectionReset => "reset",
                _ => "other",
            };
            TlsFailure {
                kind: "handshake",
                reason,
                detail: format!("the connection ended during the TLS handshake ({e})"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_classes() {
        for (ip, class) in [
            ("10.1.2.3", AddressClass::Private),
            ("172.16.0.9", AddressClass::Private),
            ("192.168.1.1", AddressClass::Private),
            ("100.64.0.1", AddressClass::Private),
            ("169.254.1.1", AddressClass::Private),
            ("20.38.1.1", AddressClass::Public),
            ("127.0.0.1", AddressClass::Loopback),
            ("::1", AddressClass::Loopback),
            ("fd00::1", AddressClass::Private),
            ("::ffff:10.0.0.1", AddressClass::Private),
            ("2603:1030::1", AddressClass::Public),
        ] {
            assert_eq!(address_class(ip.parse().unwrap()), class, "{ip}");
        }
    }

    #[tokio::test]
    async fn invalid_names_fail_without_a_query_and_loopback_resolves() {
        let e = resolve("contoso.invalid", 443, Duration::from_secs(1)).await.unwrap_err();
        assert_eq!(e.kind, "nxdomain");
        let addrs = resolve("localhost", 5000, Duration::from_secs(2)).await.unwrap();
        assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 5000));
    }

    /// A listener whose accept queue is full drops further SYNs: the connect times out.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_connect_that_gets_no_answer_times_out() {
        use std::os::fd::FromRawFd;
        // SAFETY: plain socket calls on a descriptor this test owns; it is wrapped (and so
        // closed) by a TcpListener right after.
        let listener = unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
            assert!(fd >= 0);
            let mut addr: libc::sockaddr_in = std::mem::zeroed();
            addr.sin_family = libc::AF_INET as libc::sa_family_t;
            addr.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
            let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            assert_eq!(libc::bind(fd, &addr as *const libc::sockaddr_in as *const libc::sockaddr, len), 0);
            assert_eq!(libc::listen(fd, 0), 0);
            std::net::TcpListener::from_raw_fd(fd)
        };
        let addr = listener.local_addr().unwrap();
        let mut held = Vec::new();
        let mut timed_out = None;
        for _ in 0..8 {
            match connect(&[addr], Duration::from_millis(300)).await {
                Ok((s, _)) => held.push(s),
                Err(e) => {
                    timed_out = Some(e);
                    break;
                }
            }
        }
        let e = timed_out.expect("a full accept queue leaves a connect unanswered");
        assert_eq!(e.kind, "timeout", "{e:?}");
    }

    #[tokio::test]
    async fn refused_connections_and_plain_http_on_a_tls_port_are_classified() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let e = connect(&[addr], Duration::from_secs(2)).await.unwrap_err();
        assert_eq!(e.kind, "refused");

        // A server that answers the ClientHello with plain HTTP.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            if let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 512];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n").await;
            }
        });
        let (stream, _) = connect(&[addr], Duration::from_secs(2)).await.unwrap();
        let config = client_config(None).unwrap();
        let e = handshake(stream, "localhost", config, Duration::from_secs(2)).await.unwrap_err();
        assert_eq!((e.kind, e.reason), ("handshake", "not-tls"), "{e:?}");
    }
}
