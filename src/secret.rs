//! Secrets and the redactor that keeps them out of every output.
//!
//! A `Secret` never prints its value (`Debug`/`Display` show `***`). Every secret the run
//! reads or obtains is registered with the run's `Redactor`; renderers pass everything they
//! write through it, and the `azure-pipelines` renderer registers each one with the agent's
//! masker (`task.setsecret`).

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine as _;

use crate::sanitize::sanitize;

/// Values shorter than this are not redacted inside other text: a one-character "secret"
/// would shred every message. They are still never printed on their own.
const MIN_REDACTED_LEN: usize = 4;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for sending to the service it belongs to. Never format it into text.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The set of secret values known to this run. Cheap to clone; shared by all checks.
///
/// Each value is kept with the forms a server may echo it in (form-encoded, JSON-escaped,
/// base64), so an echo in any of them is redacted and masked by the agent too.
#[derive(Clone, Default)]
pub struct Redactor {
    values: Arc<Mutex<Vec<String>>>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} values)", self.lock().len())
    }
}

impl Redactor {
    fn lock(&self) -> MutexGuard<'_, Vec<String>> {
        // A poisoned lock only means another thread panicked mid-push; the data is intact.
        self.values.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a value (and each line of a multi-line value, such as a PEM key) and
    /// returns it wrapped.
    pub fn secret(&self, value: impl Into<String>) -> Secret {
        let value = value.into();
        self.register(&value);
        Secret(value)
    }

    /// Registers a value, each line of a multi-line value, and the encoded forms of each.
    pub fn register(&self, value: &str) {
        let mut values = self.lock();
        add_with_forms(&mut values, value, true);
        if value.contains('\n') {
            for line in value.lines() {
                add_with_forms(&mut values, line, true);
            }
        }
        sort_longest_first(&mut values);
    }

    /// Registers the password and the base64 of `user:password` that a Basic credential (a
    /// Docker config `auth` field, an `Authorization: Basic` header) carries.
    pub fn register_basic(&self, username: &str, password: &str) {
        self.register(password);
        let pair = format!("{username}:{password}");
        let mut values = self.lock();
        for encoded in base64_forms(&pair) {
            // The blob itself may be echoed form-encoded (`+`, `/`, `=` escaped).
            add_with_forms(&mut values, &encoded, false);
        }
        sort_longest_first(&mut values);
    }

    /// Registers the credential of an `Authorization` header value (`Basic <b64>`,
    /// `Bearer <token>`), so whatever the client sends is known before any answer arrives.
    pub fn register_authorization(&self, header_value: &str) {
        let Some((scheme, credential)) = header_value.trim().split_once(' ') else { return };
        let credential = credential.trim();
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD.decode(credential).ok();
            if let Some((user, password)) =
                decoded.as_deref().and_then(|b| std::str::from_utf8(b).ok()).and_then(|t| t.split_once(':'))
            {
                self.register_basic(user, password);
                return;
            }
        }
        self.register(credential);
    }

    /// Every registered value, for `task.setsecret`.
    pub fn values(&self) -> Vec<String> {
        self.lock().clone()
    }

    /// Replaces every registered value in `text` with `***`. Overlapping occurrences (of one
    /// value or of several) are replaced as one span, so no part of either survives.
    pub fn redact(&self, text: &str) -> String {
        let values = self.lock();
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for v in values.iter().filter(|v| v.len() >= MIN_REDACTED_LEN) {
            let mut from = 0;
            while let Some(found) = text[from..].find(v.as_str()) {
                let start = from + found;
                spans.push((start, start + v.len()));
                // Step one character, not the whole match, to find overlapping occurrences.
                from = start + text[start..].chars().next().map_or(1, char::len_utf8);
            }
        }
        drop(values);
        if spans.is_empty() {
            return text.to_string();
        }
        spans.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut written = 0;
        let mut current = spans[0];
        for &(start, end) in &spans[1..] {
            if start <= current.1 {
                current.1 = current.1.max(end);
            } else {
                out.push_str(&text[written..current.0]);
                out.push_str("***");
                written = current.1;
                current = (start, end);
            }
        }
        out.push_str(&text[written..current.0]);
        out.push_str("***");
        out.push_str(&text[current.1..]);
        out
    }

    /// The one way to quote untrusted text (a server's answer, a helper's output) in a
    /// message: every secret is replaced first, then the text is made one safe line, then it
    /// is cut to `max_chars` (plus `…`). Cutting first would leave the start of a secret that
    /// is no longer a whole registered value.
    pub fn excerpt(&self, text: &str, max_chars: usize) -> String {
        // Redact again after sanitising: dropping a control character inside a secret, or
        // joining lines, can put a registered value back together.
        let clean = self.redact(&sanitize(&self.redact(text)));
        cap(clean.trim(), max_chars)
    }

    /// Redacts every string inside a JSON value in place.
    /// Redacts `text` where it is, keeping its own allocation when nothing in it is secret
    /// (a report redacts every string of tens of thousands of entries, nearly all clean).
    pub fn redact_in_place(&self, text: &mut String) {
        let redacted = self.redact(text);
        if redacted != *text {
            *text = redacted;
        }
    }

    pub fn redact_json(&self, value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(s) => self.redact_in_place(s),
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            serde_json::Value::Object(map) => map.values_mut().for_each(|v| self.redact_json(v)),
            _ => {}
        }
    }
}

/// Adds `value` (trimmed) and, when it is long enough to be redacted at all, the forms a
/// server may echo it in: form-encoded (a request body quoted back), JSON-escaped (a value
/// quoted inside a JSON string) and, with `base64`, its base64 encodings.
fn add_with_forms(values: &mut Vec<String>, value: &str, base64: bool) {
    let value = value.trim();
    if value.is_empty() {
        return;
    }
    push_new(values, value.to_string());
    if value.len() < MIN_REDACTED_LEN {
        return;
    }
    push_new(values, url::form_urlencoded::byte_serialize(value.as_bytes()).collect());
    if let Ok(quoted) = serde_json::to_string(value) {
        push_new(values, quoted[1..quoted.len() - 1].to_string());
    }
    if base64 {
        for encoded in base64_forms(value) {
            push_new(values, encoded);
        }
    }
}

fn push_new(values: &mut Vec<String>, value: String) {
    if !values.contains(&value) {
        values.push(value);
    }
}

/// Standard base64 with and without padding, and URL-safe base64 without padding (JWTs,
/// Docker's `auth`, HTTP Basic).
fn base64_forms(value: &str) -> [String; 3] {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    [STANDARD.encode(value), STANDARD_NO_PAD.encode(value), URL_SAFE_NO_PAD.encode(value)]
}

/// Longest first, so `task.setsecret` registers a value before any value it contains.
fn sort_longest_first(values: &mut [String]) {
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
}

/// Cuts `text` to `max_chars` characters, marking the cut with `…`. Private on purpose: only
/// `Redactor::excerpt` cuts, after redacting.
fn cap(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((byte, _)) => format!("{}…", &text[..byte]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_format_their_value() {
        let s = Secret::new("hunter2-canary");
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
    }

    #[test]
    fn redactor_replaces_whole_values_and_pem_lines() {
        let r = Redactor::default();
        r.secret("abcd");
        r.secret("abcdefgh");
        r.register("-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END KEY-----");
        assert_eq!(r.redact("x abcdefgh y abcd"), "x *** y ***");
        assert_eq!(r.redact("line MIIEvQIBADANBgkqhkiG9w0BAQEFAASC end"), "line *** end");
        let mut json = serde_json::json!({"a": ["abcd", {"b": "zz abcdefgh"}]});
        r.redact_json(&mut json);
        assert_eq!(json.to_string(), r#"{"a":["***",{"b":"zz ***"}]}"#);
    }

    /// No prefix of `secret` of 4 characters or more is left in `text`.
    fn assert_no_prefix(text: &str, secret: &str) {
        for n in MIN_REDACTED_LEN..=secret.len() {
            assert!(!text.contains(&secret[..n]), "`{}` survives in {text}", &secret[..n]);
        }
    }

    #[test]
    fn excerpt_redacts_before_it_cuts_wherever_the_cut_falls() {
        let secret = "Sx9~canary-secret-value-4471";
        let r = Redactor::default();
        r.register(secret);
        for at in 0..60 {
            let text = format!("{}{secret} trailing words", "a".repeat(at));
            for max in [20, 40, 50] {
                assert_no_prefix(&r.excerpt(&text, max), secret);
            }
        }
        // A control character or a line break inside the secret does not smuggle it out.
        let split = format!("before {}\u{7}{} after", &secret[..10], &secret[10..]);
        assert_eq!(r.excerpt(&split, 200), "before *** after");
        assert_eq!(r.excerpt("##vso[task.complete]x\nnext", 200), "# #vso[task.complete]x next");
        assert_eq!(r.excerpt(&"é".repeat(10), 4), "éééé…");
    }

    #[test]
    fn encoded_forms_of_every_secret_are_redacted_and_masked() {
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
        let secret = "p@ss+w/rd\"q=1&x\\y?~";
        let r = Redactor::default();
        r.register(secret);
        r.register_basic("robot$builder", "Basic-pa55+word/=");
        let forms = [
            url::form_urlencoded::byte_serialize(secret.as_bytes()).collect::<String>(),
            serde_json::to_string(secret).unwrap().trim_matches('"').to_string(),
            STANDARD.encode(secret),
            STANDARD_NO_PAD.encode(secret),
            URL_SAFE_NO_PAD.encode(secret),
            STANDARD.encode("robot$builder:Basic-pa55+word/="),
            URL_SAFE_NO_PAD.encode("robot$builder:Basic-pa55+word/="),
            url::form_urlencoded::byte_serialize(STANDARD.encode("robot$builder:Basic-pa55+word/=").as_bytes())
                .collect::<String>(),
            "Basic-pa55+word/=".to_string(),
        ];
        let values = r.values();
        for form in &forms {
            assert_eq!(r.redact(&format!("<{form}>")), "<***>", "{form}");
            assert!(values.contains(form), "{form} is not handed to task.setsecret");
        }
        // Short values are not expanded, and nothing equal to the value is listed twice.
        let short = Redactor::default();
        short.register("abc");
        short.register("plainvalue");
        assert_eq!(short.values(), ["cGxhaW52YWx1ZQ==", "cGxhaW52YWx1ZQ", "plainvalue", "abc"]);
    }

    #[test]
    fn authorization_headers_register_what_they_carry() {
        use base64::engine::general_purpose::STANDARD;
        let r = Redactor::default();
        r.register_authorization(&format!("Basic {}", STANDARD.encode("user:hunter2-canary")));
        r.register_authorization("Bearer eyJ.token-canary");
        assert_eq!(r.redact("hunter2-canary eyJ.token-canary"), "*** ***");
        assert_eq!(r.redact(&STANDARD.encode("user:hunter2-canary")), "***");
    }

    #[test]
    fn overlapping_occurrences_leave_no_part_behind() {
        let r = Redactor::default();
        r.register("abcXabc");
        r.register("CDEFGH");
        assert_eq!(r.redact("abcXabcXabc!"), "***!");
        r.register("ABCDEF");
        assert_eq!(r.redact("xxABCDEFGHyy"), "xx***yy");
    }
}
