//! End-to-end tests of the `azp-preflight` binary, one module per area.

mod common;
mod tasks;
