//! The integration tests: one binary that drives `azp-preflight` as a process against
//! in-repo fakes on loopback.

mod common;
mod fake_entra;
mod identity;
mod identity_canary;
