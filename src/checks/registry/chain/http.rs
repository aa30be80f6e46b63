//! The chain's request sending and the answer helpers shared by every HTTP link: a transport
//! failure or an unexpected answer is REG007, a registry firewall's denial is REG008,
//! throttling is REG016, and a request that found no connection slot before the deadline is
//! RUN001.

use url::Url;

use super::{Chain, Step};
use crate::checks::registry::answer;
use crate::codes::Code;
use crate::finding::Finding;
use crate::net::{HttpError, HttpErrorKind, Request, Response};
use crate::sanitize::sanitize;

impl Chain<'_> {
    /// Sends one request; a transport failure becomes REG007 naming the request.
    pub(super) async fn send(&mut self, link: &'static str, what: &str, request: Request) -> Step<Response> {
        match self.try_send(request).await {
            Ok(r) => Ok(r),
            Err(e) => {
                let f = self.transport_fault(link, what, &e);
                Err(self.fail(f))
            }
        }
    }

    pub(super) async fn try_send(&self, request: Request) -> Result<Response, HttpError> {
        let wait = self.remaining();
        match tokio::time::timeout(wait, self.ctx.http.send(request.slot_deadline(self.deadline))).await {
            Ok(r) => r,
            Err(_) => Err(HttpError {
                kind: HttpErrorKind::Timeout,
                detail: format!("no complete answer within {:.1} s", wait.as_secs_f64()),
            }),
        }
    }

    /// RUN002: the agent ran out of file descriptors; says nothing about the network.
    pub(super) fn out_of_files(&self, what: &str, detail: &str) -> Finding {
        let mut f = crate::net::limit::out_of_files_finding(what, detail);
        if let Some(s) = &self.server {
            f = f.data("server", s.authority.clone());
        }
        f
    }

    /// RUN001: queued behind the run's other connections until the target's time was up;
    /// says nothing about the server.
    pub(super) fn no_slot(&self, link: &'static str, what: &str) -> Finding {
        let secs = self.ctx.settings.timeout.as_secs();
        self.finding(Code::RUN001, link, format!("{what} was not checked within the {secs} s deadline: {}", crate::net::limit::no_slot_detail()))
            .remedy(format!(
                "Nothing was learned about the registry. This run has more targets than it can check in {secs} s: raise `timeoutSeconds` \
                 (task) or `--timeout` (CLI), or split the targets over several steps."
            ))
            .data("kind", "no-slot")
            .data("timeoutSeconds", secs)
    }

    fn transport_fault(&self, link: &'static str, what: &str, e: &HttpError) -> Finding {
        let (kind, said) = match e.kind {
            HttpErrorKind::OutOfFiles => return self.out_of_files(what, &e.detail).data("link", link),
            HttpErrorKind::NoSlot => return self.no_slot(link, what),
            HttpErrorKind::Timeout => (
                "timeout",
                "did not answer in time (the server accepted the connection but sent no complete answer)".to_string(),
            ),
            HttpErrorKind::ConnectTimeout => ("timeout", "could not be connected to in time".to_string()),
            HttpErrorKind::ConnectionReset => ("reset", "reset the connection".to_string()),
            HttpErrorKind::ConnectionRefused => ("refused", "refused the connection".to_string()),
            HttpErrorKind::BodyTooLarge => ("too-large", "sent an answer larger than this tool reads".to_string()),
            HttpErrorKind::Body => ("truncated", "sent an answer that ended early or could not be read".to_string()),
            HttpErrorKind::Tls => ("tls", "failed TLS".to_string()),
            HttpErrorKind::Dns => ("dns", "could not be resolved".to_string()),
            HttpErrorKind::Refused => {
                ("insecure", "was not contacted: plain http is only allowed to loopback".to_string())
            }
            HttpErrorKind::Other => ("other", "failed".to_string()),
        };
        self.finding(Code::REG007, link, format!("{what} {said}: {}", sanitize(&e.detail)))
            .remedy(
                "Retry later; if it persists, a proxy or firewall between this agent and the registry is interfering (compare with \
                 `curl -v` to the same URL from the agent), or the registry is unhealthy (check its status page).",
            )
            .data("kind", kind)
    }

    /// Answers that mean the same thing at every link: throttling (REG016) and the
    /// firewall's DENIED with a client address (REG008).
    pub(super) fn common(&self, link: &'static str, what: &str, resp: &Response) -> Option<Finding> {
        let corr = answer::correlation_suffix(resp);
        if resp.status == 429 || answer::has_error_code(resp, "TOOMANYREQUESTS") {
            let after = answer::retry_after(resp);
            let mut f = self
                .finding(
                    Code::REG016,
                    link,
                    format!(
                        "{what} was throttled: HTTP {} {} after {} retr{}{}{corr}",
                        resp.status,
                        answer::quote(resp),
                        resp.retries,
                        if resp.retries == 1 { "y" } else { "ies" },
                        after.as_ref().map(|a| format!(", Retry-After: {a}")).unwrap_or_default()
                    ),
                )
                .remedy(if self.acr_like {
                    format!(
                        "The registry's request budget is used up for now. Run again later; reduce parallel pulls and pushes, or move the \
                         registry to a higher SKU (`az acr update --name {} --sku Premium`). Anonymous and admin-user requests share one \
                         budget: give pipelines their own identity.",
                        self.server().acr_name()
                    )
                } else {
                    "The registry's rate limit is reached. Run again later, authenticate (anonymous pulls have the smallest limits), or use a \
                     pull-through cache or mirror."
                        .to_string()
                })
                .data("status", resp.status)
                .data("retries", resp.retries);
            if let Some(a) = after {
                f = f.data("retryAfter", a);
            }
            return Some(self.with_correlation(f, resp));
        }
        let text = resp.text();
        if resp.status == 403 || answer::has_error_code(resp, "DENIED") {
            if let Some(ip) = answer::denied_client_ip(&text) {
                let f = self
                    .finding(
                        Code::REG008,
                        link,
                        format!("the registry firewall denied this agent at {what}: {}{corr}", answer::quote(resp)),
                    )
                    .remedy(format!(
                        "Allow the agent's address: `az acr network-rule add --name {} --ip-address {ip}`. Microsoft-hosted agents change \
                         addresses (their ranges rotate weekly), so prefer a self-hosted or scale-set agent with a fixed egress address or a \
                         private endpoint, or allow the agents' service tag range.",
                        self.server().acr_name()
                    ))
                    .data("clientIp", ip)
                    .data("status", resp.status);
                return Some(self.with_correlation(f, resp));
            }
        }
        None
    }

    pub(super) fn with_correlation(&self, mut f: Finding, resp: &Response) -> Finding {
        if let Some((header, value)) = answer::correlation(resp) {
            f = f.data("correlationId", value).data("correlationHeader", header);
        }
        f
    }

    /// An answer this link cannot use: REG007 with the status and the registry's words.
    pub(super) fn unexpected(&self, link: &'static str, what: &str, resp: &Response) -> Finding {
        let kind = if answer::looks_like_html(resp) {
            "html"
        } else if resp.status >= 500 {
            "server-error"
        } else {
            "status"
        };
        let f = self
            .finding(
                Code::REG007,
                link,
                format!(
                    "{what} answered HTTP {}{}: {}{}",
                    resp.status,
                    api_version_note(resp),
                    answer::quote(resp),
                    answer::correlation_suffix(resp)
                ),
            )
            .remedy(if kind == "html" {
                "An HTML page came back where the registry API should answer: a proxy, captive portal or web firewall intercepts the \
                 request. Allow the registry's host through it, or configure the proxy for the agent (agent proxy settings or HTTPS_PROXY)."
                    .to_string()
            } else if resp.status >= 500 {
                "The registry failed on its side. Retry later and check the registry's service health; quote the correlation id when \
                 contacting its support."
                    .to_string()
            } else {
                format!("Check that `{}` is a container registry (the Docker Registry HTTP API v2 answers at `/v2/`).", self.server().authority)
            })
            .data("kind", kind)
            .data("status", resp.status);
        self.with_correlation(f, resp)
    }

    pub(super) fn url(&self, path: &str) -> Option<Url> {
        self.server().base_url()?.join(path).ok()
    }
}

/// Whether the answer came from a registry at all: registries mark every answer with
/// `Docker-Distribution-Api-Version`.
fn api_version_note(resp: &Response) -> String {
    match resp.header("docker-distribution-api-version") {
        Some(v) => format!(" (Docker-Distribution-Api-Version: {})", sanitize(v)),
        None => " without a Docker-Distribution-Api-Version header (not a registry's answer)".to_string(),
    }
}
