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

/// Every input problem of a run, reported together (exit 2): a user fixes them in one go
/// rather than one per run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InputErrors(pub Vec<InputError>);

impl InputErrors {
    /// Keeps `result`'s value, or records its error and goes on with `fallback`.
    pub fn take<T>(&mut self, result: Result<T, InputError>, fallback: T) -> T {
        match result {
            Ok(value) => value,
            Err(e) => {
                self.0.push(e);
                fallback
            }
        }
    }

    pub fn into_result<T>(self, value: T) -> Result<T, InputErrors> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for InputErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}
