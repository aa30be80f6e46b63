//! End-to-end tests of the `azp-preflight` binary: one test binary, one module per area,
//! driving the binary as a process against in-repo fakes and a real registry on loopback.

mod common;

mod advisory_update;
mod bounded;
mod cli;
mod deploy_healthy;
mod deploy_input;
mod deploy_network;
mod deploy_not_proven;
mod deploy_proof;
mod deploy_pull_rights;
mod e2e_snapshots;
mod echo_canary;
mod fake_acr;
mod fake_arm;
mod fake_devops;
mod fake_entra;
mod fake_httpd;
mod hostile_output;
mod identity_canary;
mod identity_certificate;
mod identity_connections;
mod identity_faults;
mod identity_federated_and_managed;
mod identity_secret;
mod org_scan;
mod pipeline_output;
mod registry_acr;
mod registry_cli;
mod registry_endpoint;
mod registry_lab;
mod registry_oci;
mod registry_support;
mod report_merge;
mod tasks;
mod tasks_corpus;
mod tasks_hostile;
mod tasks_realworld;
