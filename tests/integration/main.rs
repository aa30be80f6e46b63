//! End-to-end tests of the `azp-preflight` binary: one test binary, one module per area,
//! driving the binary as a process against in-repo fakes on loopback.

mod common;

mod cli;
mod fake_entra;
mod identity;
mod identity_canary;
mod pipeline_output;
