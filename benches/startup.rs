//! Start-up and size: the median wall time of `azp-preflight --version` and of an offline
//! agent-only run, and the size of the binary under test (and of the static musl release
//! build when it exists). Run with `cargo bench --bench startup`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time_runs(binary: &str, args: &[&str], runs: usize) -> Duration {
    let samples = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let status = Command::new(binary).args(args).env("NO_COLOR", "1").output().expect("the binary runs");
            assert!(status.status.code().is_some_and(|c| c <= 1), "{args:?} failed");
            start.elapsed()
        })
        .collect();
    median(samples)
}

fn size(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

fn main() {
    let binary = env!("CARGO_BIN_EXE_azp-preflight");
    let version = time_runs(binary, &["--version"], 51);
    let agent = time_runs(binary, &["--offline", "--checks", "agent", "--format", "json"], 21);
    println!("--version median wall time: {:.2} ms (51 runs)", version.as_secs_f64() * 1e3);
    println!("offline agent check median wall time: {:.2} ms (21 runs)", agent.as_secs_f64() * 1e3);
    if let Some(bytes) = size(Path::new(binary)) {
        println!("binary under test: {:.2} MiB ({bytes} bytes, {binary})", bytes as f64 / 1048576.0);
    }
    let musl = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/x86_64-unknown-linux-musl/release/azp-preflight");
    match size(&musl) {
        Some(bytes) => println!("static musl release binary: {:.2} MiB ({bytes} bytes)", bytes as f64 / 1048576.0),
        None => println!("static musl release binary: not built (scripts/build-binaries.sh linux-x64)"),
    }
}
