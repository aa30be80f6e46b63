//! The one integration test binary: every test runs the real `azp-preflight` executable.

mod common;
mod fake_acr;
mod registry_acr;
mod registry_cli;
mod registry_lab;
mod registry_oci;
mod registry_support;
