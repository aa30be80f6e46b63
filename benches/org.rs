//! How the organisation scan scales: a loopback fake organisation of 200 projects, 20,000
//! pipeline definitions (each with one completed run of three tasks) and 2,000 service
//! connections, every answer 50 ms late, as a remote service would be. Runs the release
//! binary once as one shard, then as four shards at once (as `strategy: parallel: 4` does), and
//! prints the wall times, their ratio, the requests per pipeline and the peak RSS of the
//! scanning process.
//!
//!     cargo bench --bench org
//!
//! `AZP_BENCH_ORG_PROJECTS` scales it down (each project keeps 100 definitions and 10
//! connections) for a quick look; `AZP_BENCH_BIN` runs another build of the binary, such as the
//! shipped static one (`scripts/build-binaries.sh`).
//!
//! The peak RSS is measured by a small process between the benchmark and the scan (this same
//! executable, started again): a child's `ru_maxrss` starts from the high-water mark of the
//! process it was started from, so measured from the benchmark itself, which holds the whole
//! fake organisation, it would report the benchmark's own size (207 MiB at 20,000 pipelines,
//! when the scan itself peaked at 155 MiB).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[allow(dead_code)]
#[path = "../tests/integration/fake_devops/mod.rs"]
mod fake_devops;

use fake_devops::{FakeDevOps, FakeRun, PAT};
use serde_json::{json, Value};

const DEFINITIONS_PER_PROJECT: i64 = 100;
const CONNECTIONS_PER_PROJECT: usize = 10;
const LATENCY: Duration = Duration::from_millis(50);

fn organisation(projects: usize) -> FakeDevOps {
    let ado = FakeDevOps::start();
    ado.set_page_sizes(100, 1000, 1000);
    let finished = "2026-11-30T03:00:00Z";
    for p in 0..projects {
        let id = format!("6F1E2D3C-AAAA-4000-8000-{p:012X}");
        ado.project(&id, &format!("project-{p:03}"));
        for c in 0..CONNECTIONS_PER_PROJECT {
            let conn = json!({
                "id": format!("A1B2C3D4-{p:04X}-4000-8000-{c:012X}"),
                "name": format!("conn-{c:02}"),
                "type": "azurerm",
                "url": "https://management.azure.com/",
                "authorization": {"scheme": "WorkloadIdentityFederation",
                                  "parameters": {"serviceprincipalid": format!("11111111-{p:04x}-4000-8000-{c:012x}"),
                                                 "tenantid": "22222222-0000-4000-8000-000000000000"}},
                "isReady": true,
            });
            ado.endpoint(&id, conn, Some("2026-12-01T03:00:00Z"));
        }
        for d in 0..DEFINITIONS_PER_PROJECT {
            let def_id = p as i64 * DEFINITIONS_PER_PROJECT + d + 1;
            let run = FakeRun {
                build_id: 100_000 + def_id,
                number: format!("2026.{def_id}"),
                finished: finished.into(),
                tasks: vec![
                    ("e213ff0f-5d5c-4791-802d-52ea3e7be1f1".into(), "PowerShell".into(), "2.247.1".into()),
                    ("80f3f6a0-82a6-4a22-ba7a-e5b8c541b9b8".into(), "AzureIoTEdge".into(), "2.241.1".into()),
                    ("46e4be58-730b-4389-8a2f-ea10b3e5e815".into(), "AzureCLI".into(), "2.276.2".into()),
                ],
            };
            ado.definition(&id, def_id, &format!("pipeline-{d:03}"), vec![run]);
        }
    }
    ado.set_latency(LATENCY);
    ado
}

/// Set for the measuring process: the binary it runs.
const MEASURE_VAR: &str = "BENCH_ORG_MEASURE";
/// How the measuring process reports the scan's peak RSS, as the last line of its stderr.
const PEAK_LINE: &str = "bench: peak RSS KiB ";

fn scan(ado: &FakeDevOps, dir: &Path, shard: Option<&str>) -> Command {
    let bin = std::env::var_os("AZP_BENCH_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_azp-preflight").into());
    let mut cmd = Command::new(std::env::current_exe().expect("the benchmark knows its own path"));
    cmd.env_clear()
        .env(MEASURE_VAR, bin)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("AZP_PREFLIGHT_ADO_TOKEN", PAT)
        .args(["org", "--organization", &ado.url(), "--format", "json", "--since", "30", "--concurrency", "16"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(shard) = shard {
        cmd.args(["--shard", shard]);
    }
    cmd
}

/// The measuring process: runs the scan with this process's arguments and stdio, then
/// reports the scan's peak RSS (its only child) and ends with its exit code.
fn measure(bin: std::ffi::OsString) -> ! {
    let status =
        Command::new(bin).args(std::env::args_os().skip(1)).env_remove(MEASURE_VAR).status().expect("the binary runs");
    eprintln!("\n{PEAK_LINE}{}", children_peak_rss_kib());
    std::process::exit(status.code().unwrap_or(3))
}

/// The scan's peak RSS in MiB, from what the measuring process reported.
fn peak_rss_mib(stderr: &[u8]) -> f64 {
    let text = String::from_utf8_lossy(stderr);
    let kib = text.lines().rev().find_map(|l| l.strip_prefix(PEAK_LINE)).and_then(|n| n.trim().parse::<f64>().ok());
    kib.unwrap_or(0.0) / 1024.0
}

/// The largest peak resident set of the children waited for so far, in KiB (Linux).
#[cfg(unix)]
fn children_peak_rss_kib() -> i64 {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) } != 0 {
        return 0;
    }
    usage.ru_maxrss
}

#[cfg(not(unix))]
fn children_peak_rss_kib() -> i64 {
    0
}

fn coverage(stdout: &[u8]) -> Value {
    serde_json::from_slice::<Value>(stdout).map(|r| r["coverage"].clone()).unwrap_or(Value::Null)
}

fn main() {
    if let Some(bin) = std::env::var_os(MEASURE_VAR) {
        measure(bin);
    }
    let projects: usize =
        std::env::var("AZP_BENCH_ORG_PROJECTS").ok().and_then(|v| v.parse().ok()).unwrap_or(200).clamp(1, 500);
    let ado = organisation(projects);
    let pipelines = projects as u64 * DEFINITIONS_PER_PROJECT as u64;
    let dir = tempfile::tempdir().expect("a temporary folder");

    let before = ado.requests();
    let started = Instant::now();
    let one = scan(&ado, dir.path(), None).output().expect("the binary runs");
    let one_wall = started.elapsed();
    let one_requests = ado.requests() - before;
    assert!(matches!(one.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&one.stderr));
    let whole = coverage(&one.stdout);
    let one_rss = peak_rss_mib(&one.stderr);
    println!(
        "1 shard:  {:.1} s, {one_requests} requests ({:.2} per pipeline), peak RSS {one_rss:.1} MiB, coverage {whole}",
        one_wall.as_secs_f64(),
        one_requests as f64 / pipelines as f64
    );

    let before = ado.requests();
    let started = Instant::now();
    let children: Vec<_> =
        (1..=4).map(|k| scan(&ado, dir.path(), Some(&format!("{k}/4"))).spawn().expect("the binary runs")).collect();
    let mut runs = 0;
    let mut connections = 0;
    let mut shard_rss: f64 = 0.0;
    for child in children {
        let out = child.wait_with_output().expect("the shard finishes");
        assert!(matches!(out.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&out.stderr));
        let c = coverage(&out.stdout);
        shard_rss = shard_rss.max(peak_rss_mib(&out.stderr));
        runs += c["runs"].as_u64().unwrap_or(0);
        connections += c["connections"].as_u64().unwrap_or(0);
    }
    let four_wall = started.elapsed();
    let four_requests = ado.requests() - before;
    assert_eq!((runs, connections), (whole["runs"].as_u64().unwrap_or(0), whole["connections"].as_u64().unwrap_or(0)));
    println!(
        "4 shards: {:.1} s at once ({:.2}x of 1 shard), {four_requests} requests ({:.2} per pipeline), peak RSS {shard_rss:.1} MiB (largest)",
        four_wall.as_secs_f64(),
        four_wall.as_secs_f64() / one_wall.as_secs_f64(),
        four_requests as f64 / pipelines as f64
    );
    println!(
        "{projects} projects, {pipelines} pipelines, {} connections, {} ms per answer; peak RSS of the scan {:.1} MiB",
        projects * CONNECTIONS_PER_PROJECT,
        LATENCY.as_millis(),
        one_rss.max(shard_rss)
    );
}
