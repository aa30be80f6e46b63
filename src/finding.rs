//! The finding model shared by every check and every renderer.

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
    pub data: Map<String, Value>,
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
            data: Map::new(),
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
