//! Shared by the integration test modules.

use std::path::PathBuf;

/// The binary with a scrubbed environment: nothing from the developer's or CI's environment
/// leaks in; `PATH` stays, `HOME` is an empty folder under the target directory.
pub fn azp_preflight() -> assert_cmd::Command {
    let home = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("home");
    let _ = std::fs::create_dir_all(&home);
    let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("azp-preflight");
    cmd.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default()).env("HOME", home);
    cmd
}
