//! Shared helpers: the binary with a scrubbed environment, and temp folders; the worlds the
//! deploy and identity tests run in.

pub mod deploy_world;
pub mod identity_env;

use std::path::{Path, PathBuf};

/// The binary with an empty environment except PATH and a private HOME, so nothing from the
/// machine running the tests (TF_BUILD, AZURE_*, proxies, Docker config) leaks in.
///
/// `AZP_PREFLIGHT_ADVISORY_UPDATE=off` (the documented machine-wide meaning of
/// `advisoryUpdate: auto`) keeps every run away from the published advisory document, even one
/// that asks for `auto`; the tests of the refresh name a loopback URL with `--advisory-update`
/// or `INPUT_ADVISORYUPDATE`.
pub fn preflight(home: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("azp-preflight").expect("the binary is built");
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AZP_PREFLIGHT_ADVISORY_UPDATE", "off")
        .current_dir(home);
    cmd
}

/// Environment of a pipeline step: TF_BUILD plus agent folders inside `dir`.
pub fn pipeline_env(dir: &Path) -> Vec<(String, String)> {
    let temp = dir.join("_temp");
    std::fs::create_dir_all(&temp).expect("temp dir");
    vec![
        ("TF_BUILD".into(), "True".into()),
        ("AGENT_TEMPDIRECTORY".into(), temp.display().to_string()),
        ("BUILD_SOURCESDIRECTORY".into(), dir.display().to_string()),
        ("AGENT_WORKFOLDER".into(), dir.display().to_string()),
        ("AGENT_NAME".into(), "Hosted Agent".into()),
        ("SYSTEM_COLLECTIONURI".into(), "https://dev.azure.com/contoso/".into()),
        ("SYSTEM_TEAMPROJECT".into(), "Shop".into()),
    ]
}

pub fn stdout_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The repository root, for files the tests use (oracles, examples).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Like `preflight`, for tests that need no folder of their own: one private HOME shared by
/// the whole test binary (kept until the process ends).
pub fn preflight_shared_home() -> assert_cmd::Command {
    static HOME: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let home = HOME.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("azp-preflight-home-")
            .tempdir()
            .map(|d| d.keep())
            .unwrap_or_else(|_| std::env::temp_dir())
    });
    preflight(home)
}

/// The JSON on stdout (`--format json`); a test fails with the text when it is not JSON.
pub fn json_of(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&output.stdout)))
}

/// (code, file, line, column) of every finding of every report entry.
pub fn findings(report: &serde_json::Value) -> Vec<(String, String, u64, u64)> {
    report["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no checks in {report:#}"))
        .iter()
        .flat_map(|c| c["findings"].as_array().into_iter().flatten())
        .map(|f| {
            let l = &f["location"];
            (
                f["code"].as_str().unwrap_or_default().to_string(),
                l["file"].as_str().unwrap_or("").to_string(),
                l["line"].as_u64().unwrap_or(0),
                l["column"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}
