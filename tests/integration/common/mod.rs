//! Shared by every integration test: the binary, started with a clean environment.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

/// The binary with an empty environment except `PATH` and a temporary `HOME`, so nothing
/// from the machine running the tests (credentials, proxies, pipeline variables) leaks in.
pub fn preflight() -> assert_cmd::Command {
    static HOME: OnceLock<PathBuf> = OnceLock::new();
    let home = HOME.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("azp-preflight-home-")
            .tempdir()
            .map(|d| d.keep())
            .unwrap_or_else(|_| std::env::temp_dir())
    });
    let mut cmd = assert_cmd::cargo_bin_cmd!("azp-preflight");
    cmd.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default()).env("HOME", home);
    cmd
}
