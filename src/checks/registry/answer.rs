//! Reading what a registry said: `WWW-Authenticate` challenges (RFC 7235), the distribution
//! error envelope, the firewall's client IP, correlation ids, and short quotes for messages,
//! each made through `Response::excerpt` (secrets redacted before anything is cut).

use std::collections::BTreeMap;

use crate::net::Response;

/// One challenge: `Bearer realm="...",service="..."`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Lower case: `bearer`, `basic`, ...
    pub scheme: String,
    /// Keys lower case, values unquoted.
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Parses every challenge in one header value. Tolerant: what does not parse is skipped.
pub fn parse_challenges(value: &str) -> Vec<Challenge> {
    let chars: Vec<char> = value.chars().collect();
    let mut i = 0;
    let mut out: Vec<Challenge> = Vec::new();
    let skip = |i: &mut usize, set: &str| {
        while *i < chars.len() && (chars[*i].is_whitespace() || set.contains(chars[*i])) {
            *i += 1;
        }
    };
    let token = |i: &mut usize| -> String {
        let start = *i;
        while *i < chars.len() && is_tchar(chars[*i]) {
            *i += 1;
        }
        chars[start..*i].iter().collect()
    };
    loop {
        skip(&mut i, ",");
        if i >= chars.len() {
            break;
        }
        let scheme = token(&mut i);
        if scheme.is_empty() {
            i += 1;
            continue;
        }
        let mut challenge = Challenge { scheme: scheme.to_ascii_lowercase(), params: BTreeMap::new() };
        loop {
            skip(&mut i, "");
            let save = i;
            let name = token(&mut i);
            skip(&mut i, "");
            if name.is_empty() || i >= chars.len() || chars[i] != '=' {
                // Not `name=`: the next challenge starts here (or a token68 we ignore).
                if name.is_empty() {
                    skip(&mut i, ",");
                    if i < chars.len() && !is_tchar(chars[i]) {
                        i += 1;
                    }
                } else {
                    i = save;
                }
                break;
            }
            i += 1; // '='
            skip(&mut i, "");
            let mut val = String::new();
            if i < chars.len() && chars[i] == '"' {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    val.push(chars[i]);
                    i += 1;
                }
                i += 1; // closing quote
            } else {
                while i < chars.len() && chars[i] != ',' && !chars[i].is_whitespace() {
                    val.push(chars[i]);
                    i += 1;
                }
            }
            challenge.params.insert(name.to_ascii_lowercase(), val);
            skip(&mut i, "");
            if i < chars.len() && chars[i] == ',' {
                i += 1;
                continue;
            }
            break;
        }
        out.push(challenge);
    }
    out
}

/// Every challenge in a response, across repeated `WWW-Authenticate` headers.
pub fn challenges(resp: &Response) -> Vec<Challenge> {
    resp.headers.get_all("www-authenticate").iter().filter_map(|v| v.to_str().ok()).flat_map(parse_challenges).collect()
}

/// The `error="..."` of a Bearer challenge (`insufficient_scope`, `invalid_token`).
pub fn challenge_error(resp: &Response) -> Option<String> {
    challenges(resp).iter().find_map(|c| c.param("error").map(|e| resp.excerpt(e, 80)))
}

/// One entry of the distribution error envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryError {
    pub code: String,
    pub message: String,
}

/// `{"errors":[{"code","message","detail"}]}`, quoted; empty when the body is not that.
pub fn registry_errors(resp: &Response) -> Vec<RegistryError> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&resp.body) else { return Vec::new() };
    let Some(errors) = value.get("errors").and_then(|e| e.as_array()) else { return Vec::new() };
    errors
        .iter()
        .filter_map(|e| {
            let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("").to_string();
            let message = e.get("message").and_then(|m| m.as_str()).unwrap_or("").to_string();
            (!code.is_empty() || !message.is_empty())
                .then(|| RegistryError { code: resp.excerpt(&code, 80), message: resp.excerpt(&message, 240) })
        })
        .collect()
}

pub fn has_error_code(resp: &Response, code: &str) -> bool {
    registry_errors(resp).iter().any(|e| e.code.eq_ignore_ascii_case(code))
}

fn is_html(resp: &Response) -> bool {
    let ct = resp.header("content-type").unwrap_or("").to_ascii_lowercase();
    if ct.contains("html") {
        return true;
    }
    let head: String =
        String::from_utf8_lossy(&resp.body[..resp.body.len().min(512)]).trim_start().to_ascii_lowercase();
    head.starts_with("<!doctype html") || head.starts_with("<html")
}

/// The `<title>` of an HTML page, if any.
fn html_title(resp: &Response, text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let start = lower.find("<title")?;
    let open_end = start + lower[start..].find('>')? + 1;
    let close = open_end + lower[open_end..].find("</title")?;
    let title = text.get(open_end..close)?.trim();
    (!title.is_empty()).then(|| resp.excerpt(title, 120))
}

/// The registry's own words, quoted for a message: the error envelope's `CODE: message`
/// entries, an HTML page's title, or a short excerpt of the body.
pub fn quote(resp: &Response) -> String {
    let errors = registry_errors(resp);
    if !errors.is_empty() {
        return errors
            .iter()
            .take(3)
            .map(|e| if e.message.is_empty() { e.code.clone() } else { format!("{}: {}", e.code, e.message) })
            .collect::<Vec<_>>()
            .join("; ");
    }
    let text = resp.text();
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return "(empty body)".into();
    }
    if is_html(resp) {
        return match html_title(resp, trimmed) {
            Some(title) => format!("an HTML page titled \"{title}\" (a proxy, firewall or login page, not a registry)"),
            None => "an HTML page (a proxy, firewall or login page, not a registry)".into(),
        };
    }
    format!("\"{}\"", resp.excerpt(trimmed, 200))
}

/// Whether the body looks like an HTML page rather than a registry's JSON.
pub fn looks_like_html(resp: &Response) -> bool {
    is_html(resp)
}

/// Headers that let the registry's operator find the request in their logs.
const CORRELATION_HEADERS: &[&str] = &[
    "x-ms-correlation-request-id",
    "x-ms-request-id",
    "x-ms-client-request-id",
    "x-request-id",
    "x-amzn-requestid",
    "x-github-request-id",
    "cf-ray",
];

/// `(header, value)` of the first correlation header present.
pub fn correlation(resp: &Response) -> Option<(&'static str, String)> {
    CORRELATION_HEADERS.iter().find_map(|h| resp.header(h).map(|v| (*h, resp.excerpt(v, 80))))
}

/// ` [x-ms-correlation-request-id: ...]` or nothing.
pub fn correlation_suffix(resp: &Response) -> String {
    correlation(resp).map(|(h, v)| format!(" [{h}: {v}]")).unwrap_or_default()
}

/// The client address a registry firewall names: `client with IP '203.0.113.7' is not allowed access`.
pub fn denied_client_ip(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let at = lower.find("client with ip")?;
    let rest = &text[at + "client with ip".len()..];
    let ip: String = rest
        .trim_start()
        .trim_start_matches(['\'', '"'])
        .trim_start_matches("\\u0027")
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || *c == '.' || *c == ':')
        .collect();
    ip.parse::<std::net::IpAddr>().is_ok().then_some(ip)
}

/// The seconds a throttled answer asks to wait, when it says.
pub fn retry_after(resp: &Response) -> Option<String> {
    resp.header("retry-after").map(|v| resp.excerpt(v, 40))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn response(status: u16, headers: &[(&'static str, &str)], body: &str) -> Response {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(*k, HeaderValue::from_str(v).unwrap());
        }
        Response {
            status,
            url: url::Url::parse("https://r.example/v2/").unwrap(),
            headers: map,
            body: body.as_bytes().to_vec(),
            retries: 0,
            redactor: Default::default(),
        }
    }

    #[test]
    fn parses_bearer_basic_and_several_challenges() {
        let c = parse_challenges(
            r#"Bearer realm="https://contoso.azurecr.io/oauth2/token",service="contoso.azurecr.io",scope="repository:team/app:push,pull",error="insufficient_scope""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("https://contoso.azurecr.io/oauth2/token"));
        assert_eq!(c[0].param("scope"), Some("repository:team/app:push,pull"));
        assert_eq!(c[0].param("error"), Some("insufficient_scope"));
        let c = parse_challenges(r#"Basic realm="Azure Container Registry", Bearer realm="https://a/b", service=svc"#);
        assert_eq!(c.iter().map(|c| c.scheme.as_str()).collect::<Vec<_>>(), ["basic", "bearer"]);
        assert_eq!(c[1].param("service"), Some("svc"));
        let c = parse_challenges(r#"Basic realm="with \"quotes\", and comma""#);
        assert_eq!(c[0].param("realm"), Some(r#"with "quotes", and comma"#));
        assert!(parse_challenges("").is_empty());
        assert_eq!(parse_challenges("Negotiate abc==, Basic realm=x")[1].scheme, "basic");
    }

    #[test]
    fn quotes_the_registry_error_html_pages_and_plain_bodies() {
        let denied = r#"{"errors":[{"code":"DENIED","message":"client with IP '203.0.113.7' is not allowed access. Refer https://aka.ms/acr/firewall to grant access."}]}"#;
        let r = response(403, &[("x-ms-correlation-request-id", "c0ffee")], denied);
        assert!(quote(&r).starts_with("DENIED: client with IP '203.0.113.7'"));
        assert_eq!(correlation_suffix(&r), " [x-ms-correlation-request-id: c0ffee]");
        assert_eq!(denied_client_ip(&r.text()).as_deref(), Some("203.0.113.7"));
        assert_eq!(denied_client_ip(r"client with IP \u00272001:db8::1\u0027 is not").as_deref(), Some("2001:db8::1"));
        let page = response(
            200,
            &[("content-type", "text/html")],
            "<html><head><title>Proxy ##vso[x] login</title></head></html>",
        );
        let q = quote(&page);
        assert!(q.contains("HTML page titled \"Proxy # #vso[x] login\""), "{q}");
        assert_eq!(quote(&response(405, &[], "Method not allowed\n")), "\"Method not allowed\"");
        assert_eq!(quote(&response(502, &[], "")), "(empty body)");
    }

    #[test]
    fn every_quote_redacts_before_it_cuts() {
        let secret = "reg-Pa55word~canary-Zk81";
        let redactor = crate::secret::Redactor::default();
        redactor.register(secret);
        let no_prefix = |text: &str| (4..=secret.len()).all(|n| !text.contains(&secret[..n]));
        // Each quote cuts at its own length; slide the secret across every cut.
        for at in 60..250 {
            let pad = "p".repeat(at);
            let with = |mut r: Response| {
                r.redactor = redactor.clone();
                r
            };
            let envelope = serde_json::json!({"errors": [{"code": "DENIED", "message": format!("{pad}{secret}")}]});
            let raw =
                with(response(500, &[("x-request-id", &format!("{pad}{secret}"))], &format!("{pad}{secret} tail")));
            let page = with(response(
                502,
                &[("content-type", "text/html")],
                &format!("<html><title>{pad}{secret}</title></html>"),
            ));
            let env = with(response(403, &[], &envelope.to_string()));
            for quoted in [quote(&raw), quote(&page), quote(&env), correlation_suffix(&raw)] {
                assert!(no_prefix(&quoted), "a cut left part of the secret: {quoted}");
            }
        }
    }
}
