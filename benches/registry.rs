//! Registry check concurrency: 20 targets behind a fake registry that answers every request
//! after 100 ms must take well under 1.5× the time of one target's chain, because targets
//! run concurrently. Prints both figures (median of a few runs).
//!
//! Run with `cargo bench --bench registry`.

#[path = "../tests/integration/fake_acr.rs"]
mod fake_acr;
#[path = "../tests/integration/fake_httpd.rs"]
mod fake_httpd;

use std::time::{Duration, Instant};

use azp_preflight::env::AgentEnv;
use fake_acr::{Attrs, Config, FakeAcr};

const LATENCY: Duration = Duration::from_millis(100);
const TARGETS: usize = 20;
const RUNS: usize = 3;

fn run(server: &str, targets: usize) -> (Duration, u8, String) {
    let mut args =
        vec!["azp-preflight".to_string(), "--checks".into(), "registry".into(), "--format".into(), "json".into()];
    for i in 0..targets {
        args.push("--registry".into());
        args.push(format!("{server}/team/app{i}:1.0 pull platform=linux/arm64"));
    }
    let env = AgentEnv::from_pairs([
        ("AZP_PREFLIGHT_REGISTRY_USERNAME", "bench"),
        ("AZP_PREFLIGHT_REGISTRY_PASSWORD", "bench-password"),
        ("HOME", "/nonexistent-bench-home"),
    ]);
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let mut io = azp_preflight::app::Io {
        stdout: &mut stdout,
        stderr: &mut stderr,
        stdout_is_terminal: false,
        cwd: std::env::temp_dir(),
    };
    let started = Instant::now();
    let exit = azp_preflight::app::run(args.into_iter().map(Into::into).collect(), env, &mut io);
    (started.elapsed(), exit.code(), String::from_utf8_lossy(&stdout).into_owned())
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let mut config = Config::default().user("bench", "bench-password", &["pull", "push", "metadata_read"]);
    for i in 0..TARGETS {
        config = config.with_app(&format!("team/app{i}"), Attrs::open(), Attrs::open());
    }
    config.latency = LATENCY;
    let fake = FakeAcr::start(config);
    let server = fake.server();

    let mut one = Vec::new();
    let mut many = Vec::new();
    for _ in 0..RUNS {
        let before = fake.httpd.seen().len();
        let (t, code, out) = run(&server, 1);
        let requests = fake.httpd.seen().len() - before;
        assert_eq!(code, 0, "one target must pass: {out}");
        if one.is_empty() {
            println!("one target's chain: {requests} requests at {} ms each", LATENCY.as_millis());
        }
        one.push(t);
        let (t, code, out) = run(&server, TARGETS);
        assert_eq!(code, 0, "all targets must pass: {out}");
        many.push(t);
    }
    let (one, many) = (median(one), median(many));
    let ratio = many.as_secs_f64() / one.as_secs_f64();
    println!("registry check, 1 target:   {:>6} ms (median of {RUNS})", one.as_millis());
    println!("registry check, {TARGETS} targets: {:>6} ms (median of {RUNS})", many.as_millis());
    println!("ratio: {ratio:.2} (must stay well under 1.5)");
    if ratio >= 1.5 {
        eprintln!("FAIL: {TARGETS} targets took {ratio:.2}x one target's chain");
        std::process::exit(1);
    }
}
