//! End-to-end tests of the `azp-preflight` binary: one test binary, one module per area.

mod common;

mod cli;
mod pipeline_output;
