//! Fuzzing on the stable toolchain: proptest feeds every parser that reads outside input
//! (`azp_preflight::fuzz`) arbitrary bytes and inputs built from its grammar, and fails on a
//! panic, a broken property, or an input that takes too long. `worst_case` times the largest
//! inputs of each shape against a fixed bound.
//!
//! CI runs `AZP_FUZZ_CASES` cases per target (256 by default); docs/fuzzing.md has the long run.

mod regressions;
mod strategies;
mod worst_case;

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use azp_preflight::fuzz;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use strategies::*;

/// Most CPU time one generated input may take (debug build): the inputs are at most a few
/// kilobytes, so anything near this is a complexity bug, not a slow machine.
const PER_CASE: Duration = Duration::from_secs(2);

/// An input still running after this long is a hang: the watchdog names it and ends the run,
/// since a test thread cannot be stopped from outside.
const HANG: Duration = Duration::from_secs(60);

fn config() -> ProptestConfig {
    let cases = std::env::var("AZP_FUZZ_CASES").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(256);
    ProptestConfig {
        cases,
        // A failure is turned into a named regression test by hand; nothing is written to disk.
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..ProptestConfig::default()
    }
}

type Running = HashMap<ThreadId, (Instant, &'static str, Vec<u8>)>;

fn running() -> &'static Mutex<Running> {
    static RUNNING: OnceLock<Mutex<Running>> = OnceLock::new();
    RUNNING.get_or_init(|| {
        std::thread::spawn(|| loop {
            std::thread::sleep(Duration::from_millis(250));
            let map = running().lock().unwrap_or_else(|p| p.into_inner());
            if let Some((_, (_, name, data))) = map.iter().find(|(_, (start, _, _))| start.elapsed() > HANG) {
                let shown = String::from_utf8_lossy(&data[..data.len().min(4096)]).into_owned();
                eprintln!("fuzz: {name} hangs (over {HANG:?}) on {} bytes: {shown:?}", data.len());
                std::process::exit(3);
            }
        });
        Mutex::new(HashMap::new())
    })
}

/// CPU time of the calling thread: the bounds measure the parser's work, not how busy the
/// machine is (other builds, the other test threads).
#[cfg(unix)]
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant the OS defines.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(u64::try_from(ts.tv_sec).unwrap_or(0), u32::try_from(ts.tv_nsec).unwrap_or(0))
}

/// Elsewhere, time since the first call (wall time).
#[cfg(not(unix))]
pub fn thread_cpu_time() -> Duration {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

/// Runs one target on one input under the watchdog and the per-input time bound.
fn run(name: &'static str, target: fn(&[u8]), data: &[u8]) -> Result<(), TestCaseError> {
    let me = std::thread::current().id();
    running().lock().unwrap_or_else(|p| p.into_inner()).insert(me, (Instant::now(), name, data.to_vec()));
    let start = thread_cpu_time();
    let outcome = std::panic::catch_unwind(|| target(data));
    let took = thread_cpu_time().saturating_sub(start);
    running().lock().unwrap_or_else(|p| p.into_inner()).remove(&me);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    prop_assert!(took < PER_CASE, "{} took {:?} on {} bytes", name, took, data.len());
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn registry_target_bytes(data in bytes()) { run("registry_target", fuzz::registry_target, &data)?; }
    #[test]
    fn registry_target_grammar(text in soup(REGISTRY, 24)) { run("registry_target", fuzz::registry_target, text.as_bytes())?; }

    #[test]
    fn registry_server_bytes(data in bytes()) { run("registry_server", fuzz::registry_server, &data)?; }
    #[test]
    fn registry_server_grammar(text in soup(REGISTRY, 12)) { run("registry_server", fuzz::registry_server, text.as_bytes())?; }

    #[test]
    fn deploy_target_bytes(data in bytes()) { run("deploy_target", fuzz::deploy_target, &data)?; }
    #[test]
    fn deploy_target_grammar(text in soup(DEPLOY, 32)) { run("deploy_target", fuzz::deploy_target, text.as_bytes())?; }

    #[test]
    fn pipeline_yaml_bytes(data in bytes()) { run("pipeline_yaml", fuzz::pipeline_yaml, &data)?; }
    #[test]
    fn pipeline_yaml_grammar(text in soup(YAML, 64)) { run("pipeline_yaml", fuzz::pipeline_yaml, text.as_bytes())?; }
    #[test]
    fn pipeline_yaml_documents(text in pipeline_document()) { run("pipeline_yaml", fuzz::pipeline_yaml, text.as_bytes())?; }

    #[test]
    fn advisory_toml_bytes(data in bytes()) { run("advisory_toml", fuzz::advisory_toml, &data)?; }
    #[test]
    fn advisory_toml_grammar(text in soup(TOML, 48)) { run("advisory_toml", fuzz::advisory_toml, text.as_bytes())?; }
    #[test]
    fn advisory_toml_documents(text in advisory_document()) { run("advisory_toml", fuzz::advisory_toml, text.as_bytes())?; }

    #[test]
    fn versions_bytes(data in bytes()) { run("versions", fuzz::versions, &data)?; }
    #[test]
    fn versions_grammar(text in soup(VERSIONS, 16)) { run("versions", fuzz::versions, text.as_bytes())?; }

    #[test]
    fn www_authenticate_bytes(data in bytes()) { run("www_authenticate", fuzz::www_authenticate, &data)?; }
    #[test]
    fn www_authenticate_grammar(text in soup(CHALLENGE, 32)) { run("www_authenticate", fuzz::www_authenticate, text.as_bytes())?; }

    #[test]
    fn jwt_claims_bytes(data in bytes()) { run("jwt_claims", fuzz::jwt_claims, &data)?; }
    #[test]
    fn jwt_claims_tokens(text in jwt()) { run("jwt_claims", fuzz::jwt_claims, text.as_bytes())?; }

    #[test]
    fn json_answers_bytes(data in bytes()) { run("json_answers", fuzz::json_answers, &data)?; }
    #[test]
    fn json_answers_documents(data in json_answer()) { run("json_answers", fuzz::json_answers, &data)?; }

    #[test]
    fn docker_config_bytes(data in bytes()) { run("docker_config", fuzz::docker_config, &data)?; }
    #[test]
    fn docker_config_documents(data in docker_config()) { run("docker_config", fuzz::docker_config, &data)?; }

    #[test]
    fn connection_env_bytes(data in bytes()) { run("connection_env", fuzz::connection_env, &data)?; }
    #[test]
    fn connection_env_variables(text in connection_variables()) { run("connection_env", fuzz::connection_env, text.as_bytes())?; }

    #[test]
    fn certificate_pem_bytes(data in bytes()) { run("certificate_pem", fuzz::certificate_pem, &data)?; }
    #[test]
    fn certificate_pem_blocks(text in pem()) { run("certificate_pem", fuzz::certificate_pem, text.as_bytes())?; }
}
