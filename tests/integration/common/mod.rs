//! Shared by every integration module: the binary under test with a clean environment.

use assert_cmd::Command;

/// The `azp-preflight` binary with an empty environment except `PATH` and a private
/// temporary `HOME`, so nothing from the developer's machine leaks into a test.
pub fn preflight() -> Command {
    let home = std::env::temp_dir().join(format!("azp-preflight-test-home-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&home);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_azp-preflight"));
    cmd.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default()).env("HOME", &home);
    cmd
}
