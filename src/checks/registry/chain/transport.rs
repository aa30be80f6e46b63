//! The transport links: DNS (REG003; REG004 for a name that resolves only to private
//! addresses), TCP (REG005) and TLS (REG006) prove the registry can be reached from this agent
//! before any HTTP request is sent. A server that does not form a URL here is REG001.

use std::time::Duration;

use super::{Chain, Step};
use crate::checks::registry::netprobe::{self, AddressClass};
use crate::codes::Code;
use crate::codes::Severity;
use crate::finding::Finding;
use crate::sanitize::sanitize;

impl Chain<'_> {
    pub(super) async fn transport(&mut self) -> Step<()> {
        let server = self.server().clone();
        let Some(base) = server.base_url() else {
            return Err(self.fail(self.finding(
                Code::REG001,
                "syntax",
                format!("`{}` does not form a URL", server.authority),
            )));
        };
        let proxy = &self.ctx.http.settings().proxy;
        // An overridden address is connected to directly (`net::route`).
        if let (Some(proxy_url), false) = (&proxy.url, proxy.bypasses(&base) || server.endpoint.is_some()) {
            // Through a proxy the agent may not resolve or reach the host itself: the HTTP
            // links below classify failures instead.
            self.out.proven.push(format!("reached through the proxy {}", proxy_url.host_str().unwrap_or("?")));
            return Ok(());
        }
        let host = server.host.clone();
        let port = server.port_or_default();
        let api_host = base.host_str().unwrap_or(&host).trim_start_matches('[').trim_end_matches(']').to_string();
        // The probes below take a resolver socket and a connection: they count against the
        // run's connection slots like any request, until the probe's connection is closed.
        let slot_key = crate::net::limit::host_key(&base);
        let slot = self.ctx.http.limiter().acquire(&slot_key);
        let Ok(_permit) = tokio::time::timeout_at(self.deadline, slot).await else {
            let f = self.no_slot("tcp", &format!("the connection to `{api_host}`"));
            return Err(self.fail(f));
        };
        // The name stays for TLS and messages; the socket goes to the override's address.
        let connect_host = server.connect_host().unwrap_or_else(|| api_host.clone());
        let overridden = if server.endpoint.is_some() {
            format!(" (the address AZP_PREFLIGHT_REGISTRY_ENDPOINTS gives for `{}`)", server.authority)
        } else {
            String::new()
        };
        let addrs = if let Ok(ip) = connect_host.parse::<std::net::IpAddr>() {
            vec![std::net::SocketAddr::new(ip, port)]
        } else {
            let wait = self.remaining().min(Duration::from_secs(5));
            match netprobe::resolve(&connect_host, port, wait).await {
                Ok(a) => a,
                Err(e) if e.kind == netprobe::OUT_OF_FILES => {
                    let f = self.out_of_files(&format!("resolving `{connect_host}`"), &e.detail);
                    return Err(self.fail(f));
                }
                Err(e) => {
                    let single_label = !api_host.contains('.') && !server.is_loopback();
                    let mut remedy = format!(
                        "Check the spelling of `{api_host}` in {}; `nslookup {api_host}` on the agent shows what its DNS answers.",
                        self.spec.source
                    );
                    if single_label {
                        remedy.push_str(&format!(
                            " A single-label name needs its domain: for an Azure Container Registry, `{api_host}.azurecr.io`."
                        ));
                    }
                    if server.is_acr_host() {
                        remedy.push_str(&format!(
                            " `az acr show --name {} --query loginServer --output tsv` prints the registry's real name (a deleted registry no longer \
                             resolves). With a private endpoint, the agent's DNS must resolve `privatelink.azurecr.io`: link the private DNS zone to \
                             the agent's virtual network, or forward queries to 168.63.129.16.",
                            server.acr_name()
                        ));
                    }
                    if e.kind == "timeout" || e.kind == "temporary" {
                        remedy.push_str(" The resolver itself did not answer: check the agent's DNS servers.");
                    }
                    if server.endpoint.is_some() {
                        remedy = format!(
                            "Correct the address given for `{}` in AZP_PREFLIGHT_REGISTRY_ENDPOINTS, or check that the agent's DNS resolves `{connect_host}`.",
                            server.authority
                        );
                    }
                    let finding = self
                        .finding(
                            Code::REG003,
                            "dns",
                            format!(
                                "`{connect_host}`{overridden} does not resolve ({}): {}",
                                e.kind,
                                sanitize(&e.detail)
                            ),
                        )
                        .remedy(remedy)
                        .data("kind", e.kind);
                    return Err(self.fail(finding));
                }
            }
        };
        let private: Vec<String> = addrs
            .iter()
            .filter(|a| netprobe::address_class(a.ip()) == AddressClass::Private)
            .map(|a| a.ip().to_string())
            .collect();
        self.pass("dns");
        let wait = self.remaining().min(self.ctx.http.settings().connect_timeout);
        let stream = match netprobe::connect(&addrs, wait).await {
            Ok((stream, _)) => stream,
            Err(e) if e.kind == netprobe::OUT_OF_FILES => {
                let f = self.out_of_files(&format!("connecting to {}", e.address), &e.detail);
                return Err(self.fail(f));
            }
            Err(e) => {
                if !private.is_empty() {
                    let note = self.private_note(&api_host, &private, Severity::Warning, false);
                    self.out.findings.push(note);
                }
                let (what, fix) = match e.kind {
                    "timeout" => (
                        "timed out: a firewall, NSG or route drops the traffic".to_string(),
                        format!(
                            "Allow outbound TCP {port} from this agent to `{api_host}` (for an Azure Container Registry also to `*.data.azurecr.io`, \
                             or use the `AzureContainerRegistry` service tag). A proxy, if the network requires one, goes in the agent's proxy settings \
                             or HTTPS_PROXY."
                        ),
                    ),
                    "refused" => (
                        "was refused: nothing listens on that port".to_string(),
                        format!("Check the port in {} and that the registry is running and listening on port {port}.", self.spec.source),
                    ),
                    _ => (
                        format!("failed: {}", sanitize(&e.detail)),
                        "Check the agent's network routes to the registry.".to_string(),
                    ),
                };
                let finding = self
                    .finding(Code::REG005, "tcp", format!("TCP connection to {} (`{api_host}`) {what}", e.address))
                    .remedy(fix)
                    .data("kind", e.kind)
                    .data("address", e.address.to_string());
                return Err(self.fail(finding));
            }
        };
        if !private.is_empty() {
            let note = self.private_note(&api_host, &private, Severity::Note, true);
            self.out.findings.push(note);
        }
        self.pass("tcp");
        if !server.uses_tls() {
            drop(stream);
            self.out.proven.push("reachable (plain http on loopback)".into());
            return Ok(());
        }
        let config = match self.shared.tls(self.ctx) {
            Ok(c) => c,
            Err(e) => {
                let finding = self
                    .finding(Code::REG006, "tls", format!("the TLS trust store cannot be built: {}", sanitize(&e)))
                    .remedy("Point SSL_CERT_FILE at a readable PEM bundle of the CA certificates to trust.")
                    .data("kind", "certificate")
                    .data("reason", "trust-store");
                return Err(self.fail(finding));
            }
        };
        let wait = self.remaining().min(Duration::from_secs(10));
        match netprobe::handshake(stream, &api_host, config, wait).await {
            Ok(info) => {
                self.pass("tls");
                self.out.proven.push(format!("reachable over {}", info.version));
                Ok(())
            }
            Err(e) => {
                let fix = match e.reason {
                    "unknown-issuer" => "If a proxy inspects TLS on this network, add its root CA to the agent's trust store or to the PEM file named by \
                        SSL_CERT_FILE; for a registry with a private CA, add that CA the same way. Do not turn certificate verification off."
                        .to_string(),
                    "name-mismatch" => format!(
                        "Use the name the certificate was issued for, or reissue the certificate with `{api_host}` as a subject alternative name."
                    ),
                    "expired" | "not-yet-valid" => "Renew the registry's certificate, and check the agent's clock.".to_string(),
                    "not-tls" => format!(
                        "The port speaks plain HTTP: if this is a loopback test registry use `http://{}`, otherwise enable TLS on the registry.",
                        server.authority
                    ),
                    _ => "Check for a proxy or firewall that interferes with TLS to the registry, and that the registry's TLS configuration \
                        offers TLS 1.2 or 1.3."
                        .to_string(),
                };
                let finding = self
                    .finding(
                        Code::REG006,
                        "tls",
                        format!("TLS {} failure with `{api_host}`: {}", e.kind, sanitize(&e.detail)),
                    )
                    .remedy(fix)
                    .data("kind", e.kind)
                    .data("reason", e.reason);
                Err(self.fail(finding))
            }
        }
    }

    /// REG004: a note while the private address is reachable, a warning when it is not.
    fn private_note(&self, host: &str, private: &[String], severity: Severity, reachable: bool) -> Finding {
        let state = if reachable { "this agent reaches it" } else { "and this agent cannot reach it" };
        self.finding(
            Code::REG004,
            "dns",
            format!("`{host}` resolves to the private address {} (a private endpoint or internal network); {state}", private.join(", ")),
        )
        .severity(severity)
        .remedy(if reachable {
            "Nothing to do while the agent runs inside that network. Microsoft-hosted agents never reach private endpoints: \
             keep this pipeline on a self-hosted or scale-set agent in the registry's virtual network."
        } else {
            "Run the pipeline on an agent inside the registry's virtual network (self-hosted or scale-set agent), or peer the agent's \
             network with it; check that NSGs and firewalls allow TCP 443 to the private endpoint's address."
        })
        .data("addresses", private.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::spec;
    use super::super::Shared;
    use super::*;

    #[tokio::test]
    async fn private_addresses_are_a_note_when_reachable_and_a_warning_when_not() {
        let ctx = crate::check::test_context(&[]);
        let shared = Shared::new(&ctx);
        let spec = spec("contoso.azurecr.io");
        let mut chain = Chain::new(&ctx, &shared, &spec, Duration::from_secs(5));
        assert!(chain.syntax().is_ok() && chain.typo_guard().is_ok());
        let note = chain.private_note("contoso.azurecr.io", &["10.1.2.3".into()], Severity::Note, true);
        assert_eq!((note.code, note.severity), (Code::REG004, Severity::Note));
        assert_eq!(note.data["addresses"], serde_json::json!(["10.1.2.3"]));
        let warning = chain.private_note("contoso.azurecr.io", &["10.1.2.3".into()], Severity::Warning, false);
        assert_eq!(warning.severity, Severity::Warning);
        assert!(warning.message.contains("cannot reach") && warning.remedy.contains("virtual network"));
        assert_eq!(
            chain.role_remedy("AcrPush").split("--name ").nth(1).and_then(|r| r.split(' ').next()),
            Some("contoso")
        );
    }
}
