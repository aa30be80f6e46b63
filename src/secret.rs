//! Secrets and the redactor that keeps them out of every output.
//!
//! A `Secret` never prints its value (`Debug`/`Display` show `***`). Every secret the run
//! reads or obtains is registered with the run's `Redactor`; renderers pass everything they
//! write through it, and the `azure-pipelines` renderer registers each one with the agent's
//! masker (`task.setsecret`).

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

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

    pub fn register(&self, value: &str) {
        let mut values = self.lock();
        let mut add = |v: &str| {
            let v = v.trim();
            if !v.is_empty() && !values.iter().any(|known| known == v) {
                values.push(v.to_string());
            }
        };
        add(value);
        if value.contains('\n') {
            value.lines().for_each(&mut add);
        }
        // Longest first, so a secret that contains another is replaced whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }

    /// Registers a Basic credential: the password and the base64 of `user:password`, the
    /// form an `Authorization` header or a Docker config `auth` field carries.
    pub fn register_basic(&self, user: &str, password: &str) {
        use base64::Engine;
        self.register(password);
        if !password.is_empty() {
            self.register(&base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")));
        }
    }

    /// Every registered value, for `task.setsecret`.
    pub fn values(&self) -> Vec<String> {
        self.lock().clone()
    }

    /// Replaces every registered value in `text` with `***`.
    pub fn redact(&self, text: &str) -> String {
        let values = self.lock();
        let mut out = text.to_string();
        for v in values.iter().filter(|v| v.len() >= MIN_REDACTED_LEN) {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), "***");
            }
        }
        out
    }

    /// Redacts every string inside a JSON value in place.
    pub fn redact_json(&self, value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(s) => *s = self.redact(s),
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            serde_json::Value::Object(map) => map.values_mut().for_each(|v| self.redact_json(v)),
            _ => {}
        }
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
}
