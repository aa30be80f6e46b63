//! The error for bad input: names the input, the value and the expected form (exit 2).
//!
//! A module of its own so that the grammars and sources of input (settings, service
//! connections, targets, the advisory update, pipeline discovery) can all report one without
//! depending on the settings that gather them.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The input, flag or variable, e.g. `registries` (line 3) or `--timeout`.
    pub input: String,
    pub value: String,
    pub expected: String,
}

impl InputError {
    pub fn new(input: &str, value: &str, expected: &str) -> Self {
        InputError { input: input.to_string(), value: value.to_string(), expected: expected.to_string() }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: `{}` is not valid; expected {}", self.input, self.value, self.expected)
    }
}

impl std::error::Error for InputError {}
