//! The finding model shared by every check and every renderer.

use std::ops::Index;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::codes::{Code, Severity};

/// A place in a file: 1-based line and column (columns count characters).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Location {
    pub file: String,
    pub line: u32,
    pub column: u32,
}

impl Location {
    pub fn new(file: impl Into<String>, line: u32, column: u32) -> Self {
        Location { file: file.into(), line, column }
    }
}

/// One diagnosed problem (or proven fact, for notes).
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub code: Code,
    pub severity: Severity,
    pub title: String,
    pub message: String,
    pub remedy: String,
    pub location: Option<Location>,
    pub data: Data,
    pub help: String,
}

impl Finding {
    /// Starts a finding with the code's catalogue severity and title; the message is the
    /// specific observation (target, observed value, evidence).
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Finding {
            code,
            severity: code.default_severity(),
            title: code.title().to_string(),
            message: message.into(),
            remedy: String::new(),
            location: None,
            data: Data::default(),
            help: code.help(),
        }
    }

    pub fn severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    pub fn remedy(mut self, remedy: impl Into<String>) -> Self {
        self.remedy = remedy.into();
        self
    }

    pub fn at(mut self, location: Location) -> Self {
        self.location = Some(location);
        self
    }

    pub fn data(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.data.insert(key.to_string(), value.into());
        self
    }
}

/// A finding's `data`: a few named values, in key order (the order the JSON object is
/// written in). A flat list rather than a map: a map's node takes some 600 bytes however
/// few values it holds, and an organisation report holds a finding for most of its tens of
/// thousands of pipelines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Data(Vec<(String, Value)>);

/// What indexing finds for a key that is not there, as indexing a JSON value does.
static MISSING: Value = Value::Null;

impl Data {
    /// Sets `key`, replacing (and returning) its value if it had one.
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        match self.0.binary_search_by(|(k, _)| k.as_str().cmp(&key)) {
            Ok(at) => Some(std::mem::replace(&mut self.0[at].1, value)),
            Err(at) => {
                self.0.insert(at, (key, value));
                None
            }
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        let at = self.0.binary_search_by(|(k, _)| k.as_str().cmp(key)).ok()?;
        Some(&self.0[at].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Value> {
        self.0.iter_mut().map(|(_, v)| v)
    }
}

impl Index<&str> for Data {
    type Output = Value;

    fn index(&self, key: &str) -> &Value {
        self.get(key).unwrap_or(&MISSING)
    }
}

impl From<Map<String, Value>> for Data {
    fn from(map: Map<String, Value>) -> Self {
        // A JSON map iterates in key order already.
        Data(map.into_iter().collect())
    }
}

impl Serialize for Data {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_keeps_key_order_and_writes_as_a_json_object() {
        let f = Finding::new(crate::codes::Code::TSK001, "m")
            .data("version", "2.241.1")
            .data("buildId", 7)
            .data("url", "https://x/")
            .data("buildId", 8);
        let keys: Vec<&str> = f.data.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["buildId", "url", "version"]);
        assert_eq!(f.data["buildId"], 8);
        assert_eq!(f.data["absent"], Value::Null);
        let mut map = Map::new();
        map.insert("version".into(), "2.241.1".into());
        map.insert("buildId".into(), 8.into());
        map.insert("url".into(), "https://x/".into());
        assert_eq!(serde_json::to_value(&f.data).unwrap(), Value::Object(map.clone()));
        assert_eq!(Data::from(map), f.data);
    }
}
