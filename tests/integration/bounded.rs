//! Hostile inputs cost little: paths that are FIFOs or `/dev/zero`, credential helpers that
//! flood or hang, a registry that lists a 1.9 MB tag, and hundreds of targets under a low
//! open-files limit. Each run is measured from outside: exit code, wall time, peak RSS and,
//! for the last, the peak number of open descriptors.
#![cfg(target_os = "linux")]

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fake_acr::{Attrs, Config, FakeAcr, Image, MEDIA_MANIFEST};

const APP: &str = "11111111-2222-3333-4444-555555555555";
const SP_SECRET: &str = "sp-secret-canary-Q8~x";
const CONN: &str = "a1b2c3d4-0000-4000-8000-0000000000b7";

/// What a run of the binary cost.
struct Measured {
    code: i32,
    stdout: String,
    stderr: String,
    elapsed: Duration,
    /// Peak resident set, from the kernel's accounting of the reaped child.
    max_rss_kib: i64,
    /// Peak count of `/proc/<pid>/fd` entries seen while it ran.
    peak_fds: usize,
}

/// Runs `cmd` to the end (killing it after `limit`), sampling its open descriptors.
// The child is reaped with wait4 (for its rusage), not through `Child::wait`.
#[allow(clippy::zombie_processes)]
fn measure(mut cmd: Command, limit: Duration) -> Measured {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().expect("the binary starts");
    let pid = child.id() as i32;
    let (mut out, mut err) = (child.stdout.take().expect("stdout"), child.stderr.take().expect("stderr"));
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (done, peak) = (done.clone(), peak.clone());
        std::thread::spawn(move || {
            let dir = format!("/proc/{pid}/fd");
            while !done.load(Ordering::SeqCst) {
                if let Ok(entries) = std::fs::read_dir(&dir) {
                    peak.fetch_max(entries.count(), Ordering::SeqCst);
                }
                if started.elapsed() > limit {
                    // SAFETY: signalling our own child, which has not been reaped yet.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child and fills the two out-parameters; the Child handle is
    // not waited on afterwards.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4 failed");
    done.store(true, Ordering::SeqCst);
    let _ = sampler.join();
    let elapsed = started.elapsed();
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    Measured {
        code,
        stdout: String::from_utf8_lossy(&out_reader.join().unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned(),
        elapsed,
        max_rss_kib: usage.ru_maxrss,
        peak_fds: peak.load(Ordering::SeqCst),
    }
}

/// The binary with nothing from this machine's environment but PATH, a private HOME and `vars`.
fn binary(home: &Path, vars: &BTreeMap<String, String>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_azp-preflight"));
    // As in `common::preflight`: no run may reach the published advisory document.
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AZP_PREFLIGHT_ADVISORY_UPDATE", "off")
        .current_dir(home)
        .envs(vars);
    cmd
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL in a temp path");
    // SAFETY: a valid NUL-terminated path; mkfifo has no other preconditions.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", path.display());
}

/// A FIFO and a symlink to `/dev/zero`, both under the file name `name`, in two folders.
fn hostile_files(dir: &Path, name: &str) -> [(PathBuf, &'static str); 2] {
    let (fifo_dir, zero_dir) = (dir.join("fifo"), dir.join("zero"));
    std::fs::create_dir_all(&fifo_dir).unwrap();
    std::fs::create_dir_all(&zero_dir).unwrap();
    mkfifo(&fifo_dir.join(name));
    std::os::unix::fs::symlink("/dev/zero", zero_dir.join(name)).unwrap();
    [
        (fifo_dir.join(name), "it is a FIFO, not a regular file"),
        (zero_dir.join(name), "it is a device, not a regular file"),
    ]
}

const RSS_CAP_KIB: i64 = 100 * 1024;

#[test]
fn certificate_token_and_ca_bundle_paths_that_are_fifos_or_dev_zero_are_bad_input_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    for (variable, file) in [
        ("AZURE_CLIENT_CERTIFICATE_PATH", "client.pem"),
        ("AZURE_FEDERATED_TOKEN_FILE", "token.jwt"),
        ("SSL_CERT_FILE", "ca.pem"),
    ] {
        for (path, why) in hostile_files(&home.join(variable), file) {
            let mut vars = BTreeMap::new();
            vars.insert("AZURE_CLIENT_ID".to_string(), APP.to_string());
            vars.insert("AZURE_TENANT_ID".to_string(), "contoso.onmicrosoft.com".to_string());
            vars.insert(variable.to_string(), path.display().to_string());
            let mut cmd = binary(home, &vars);
            cmd.args(["--checks", "identity", "--offline", "--format", "json"]);
            let run = measure(cmd, Duration::from_secs(20));
            let shown =
                format!("{variable}={}: {run:?}", path.display(), run = (&run.stderr, run.elapsed, run.max_rss_kib));
            assert_eq!(run.code, 2, "{shown}");
            assert!(
                run.stderr.contains(&format!("{variable}: `{}` is not valid; expected", path.display())),
                "{shown}"
            );
            assert!(run.stderr.contains(why), "{shown}");
            assert!(run.elapsed < Duration::from_secs(2), "{shown}");
            assert!(run.max_rss_kib < RSS_CAP_KIB, "{shown}");
        }
    }
}

/// A pipeline step checking `registries` with the ACR service principal connection.
fn pipeline_vars(temp: &Path, registries: &str, login_server: Option<&str>) -> BTreeMap<String, String> {
    let mut vars: BTreeMap<String, String> = [
        ("TF_BUILD", "True"),
        ("INPUT_CHECKS", "registry"),
        ("SYSTEM_COLLECTIONURI", "https://dev.azure.com/fabrikam/"),
        ("SYSTEM_TEAMPROJECT", "Shop"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let temp = temp.display().to_string();
    vars.insert("AGENT_TEMPDIRECTORY".into(), temp.clone());
    vars.insert("BUILD_SOURCESDIRECTORY".into(), temp);
    vars.insert("INPUT_REGISTRIES".into(), registries.into());
    if let Some(login_server) = login_server {
        for (k, v) in [
            ("LOGINSERVER", login_server),
            ("SERVICEPRINCIPALID", APP),
            ("SERVICEPRINCIPALKEY", SP_SECRET),
            ("TENANTID", "t"),
        ] {
            vars.insert(format!("ENDPOINT_AUTH_PARAMETER_{CONN}_{k}"), v.into());
        }
        vars.insert(format!("ENDPOINT_AUTH_SCHEME_{CONN}"), "ServicePrincipal".into());
        vars.insert(format!("ENDPOINT_DATA_{CONN}_REGISTRYTYPE"), "ACR".into());
        vars.insert("INPUT_CONTAINERREGISTRY".into(), CONN.into());
    }
    vars
}

fn report(temp: &Path) -> Value {
    let text = std::fs::read_to_string(temp.join("azp-preflight-report.json")).unwrap_or_default();
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Every finding of the registry entries, as (target, code, message).
fn findings(report: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for entry in report["checks"].as_array().into_iter().flatten() {
        for f in entry["findings"].as_array().into_iter().flatten() {
            let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
            out.push((s(&entry["target"]), s(&f["code"]), s(&f["message"])));
        }
    }
    out
}

fn open_registry() -> FakeAcr {
    FakeAcr::start(Config::default().user(APP, SP_SECRET, &["pull", "push", "metadata_read"]).with_app(
        "shop/web",
        Attrs::open(),
        Attrs::open(),
    ))
}

#[test]
fn a_docker_config_that_is_a_fifo_or_dev_zero_is_reg009_naming_it() {
    let fake = open_registry();
    let s = fake.server();
    let dir = tempfile::tempdir().unwrap();
    for (path, why) in hostile_files(dir.path(), "config.json") {
        let temp = path.parent().unwrap().join("temp");
        std::fs::create_dir_all(&temp).unwrap();
        let mut vars = pipeline_vars(&temp, &format!("{s}/shop/web:1.0 pull"), None);
        vars.insert("DOCKER_CONFIG".into(), path.parent().unwrap().display().to_string());
        let run = measure(binary(dir.path(), &vars), Duration::from_secs(20));
        let found = findings(&report(&temp));
        let shown = format!("{found:?} {} {:?} {} KiB", run.stderr, run.elapsed, run.max_rss_kib);
        let reg009 = found.iter().find(|(_, code, _)| code == "REG009").unwrap_or_else(|| panic!("{shown}"));
        let named = format!("`{}` (from DOCKER_CONFIG) cannot be read", path.display());
        assert!(reg009.2.contains(&named) && reg009.2.contains(why), "{shown}");
        assert_eq!(run.code, 1, "{shown}");
        assert!(run.elapsed < Duration::from_secs(2), "{shown}");
        assert!(run.max_rss_kib < RSS_CAP_KIB, "{shown}");
    }
}

#[test]
fn credential_helpers_that_flood_or_hang_are_stopped_and_reported() {
    let fake = open_registry();
    let port = fake.httpd.addr.port();
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for (name, script) in [("flood", "head -c 100000000 /dev/zero"), ("hang", "sleep 60")] {
        let path = bin.join(format!("docker-credential-{name}"));
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // One registry under two names, each with its own helper.
    let config = serde_json::json!({"credHelpers": {
        format!("127.0.0.1:{port}"): "flood",
        format!("localhost:{port}"): "hang",
    }});
    let docker = dir.path().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::write(docker.join("config.json"), config.to_string()).unwrap();
    let temp = dir.path().join("temp");
    std::fs::create_dir_all(&temp).unwrap();
    let registries = format!("http://127.0.0.1:{port}/shop/web:1.0 pull\nhttp://localhost:{port}/shop/web:1.0 pull");
    let mut vars = pipeline_vars(&temp, &registries, None);
    vars.insert("DOCKER_CONFIG".into(), docker.display().to_string());
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut cmd = binary(dir.path(), &vars);
    cmd.env("PATH", path);
    let run = measure(cmd, Duration::from_secs(60));
    let found = findings(&report(&temp));
    let shown = format!("{found:?}\n{} {:?} {} KiB", run.stderr, run.elapsed, run.max_rss_kib);
    let message = |needle: &str| {
        found
            .iter()
            .find(|(target, code, _)| target.contains(needle) && code == "REG009")
            .map(|(_, _, m)| m.clone())
            .unwrap_or_else(|| panic!("no REG009 for {needle}: {shown}"))
    };
    assert!(
        message("127.0.0.1").contains("`docker-credential-flood get` printed more than 1024 KiB on stdout"),
        "{shown}"
    );
    assert!(message("localhost").contains("`docker-credential-hang get` did not answer within 5 s"), "{shown}");
    assert_eq!(run.code, 1, "{shown}");
    // The hanging helper gets its 5 s; nothing waits for the 60 s sleep.
    assert!(run.elapsed < Duration::from_secs(9), "{shown}");
    assert!(run.max_rss_kib < RSS_CAP_KIB, "{shown}");
}

#[test]
fn a_registry_listing_a_huge_tag_name_costs_little() {
    let mut config = Config::default().user(APP, SP_SECRET, &["pull", "push", "metadata_read"]).with_app(
        "shop/web",
        Attrs::open(),
        Attrs::open(),
    );
    let image = Image { media_type: MEDIA_MANIFEST.into(), body: b"{}".to_vec(), attrs: Attrs::open() };
    if let Some(repo) = config.repos.get_mut("shop/web") {
        // Just under the client's 2 MiB body cap, so the list is read whole.
        repo.tags.insert("x".repeat(1_900_000), image.clone());
        repo.tags.insert("1.0.1".into(), image);
    }
    let fake = FakeAcr::start(config);
    let s = fake.server();
    let dir = tempfile::tempdir().unwrap();
    let targets: Vec<String> = (0..4).map(|i| format!("{s}/shop/web:1.0.{} pull", i + 2)).collect();
    let vars = pipeline_vars(dir.path(), &targets.join("\n"), Some(&s));
    let run = measure(binary(dir.path(), &vars), Duration::from_secs(60));
    let found = findings(&report(dir.path()));
    let shown = format!("{:?}\n{} {:?} {} KiB", found, run.stderr, run.elapsed, run.max_rss_kib);
    let reg014: Vec<_> = found.iter().filter(|(_, code, _)| code == "REG014").collect();
    assert_eq!(reg014.len(), 4, "{shown}");
    for (_, _, message) in reg014 {
        assert!(message.contains("Tags that exist: `1.0.1`"), "{shown}");
        assert!(!message.contains("xxxxxxxx"), "{shown}");
    }
    // Memory is the sharp measure (the unbounded suggestion allocated ~200 MiB for four
    // targets); time is checked loosely, since a loaded machine stretches it.
    assert!(run.elapsed < Duration::from_secs(10), "{shown}");
    assert!(run.max_rss_kib < 64 * 1024, "{shown}");
}

/// The binary under an open-files limit of `limit` (as `ulimit -n` would set it; set in the
/// child itself because a shell would drop the agent's `ENDPOINT_*_<guid>` variables, whose
/// names are not shell identifiers).
fn with_open_files_limit(limit: u64, mut cmd: Command) -> Command {
    // SAFETY: the closure runs in the forked child before exec and only calls setrlimit,
    // which is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let rlimit = libc::rlimit { rlim_cur: limit as libc::rlim_t, rlim_max: limit as libc::rlim_t };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    cmd
}

#[test]
fn three_hundred_targets_under_256_open_files_stay_under_the_limit_with_no_false_network_finding() {
    let fake = open_registry();
    let s = fake.server();
    let dir = tempfile::tempdir().unwrap();
    // Half the targets exist, half are missing tags: both take several requests each.
    let targets: Vec<String> = (0..300)
        .map(|i| if i % 2 == 0 { format!("{s}/shop/web:1.0 pull") } else { format!("{s}/shop/web:m{i} pull") })
        .collect();
    let vars = pipeline_vars(dir.path(), &targets.join("\n"), Some(&s));
    let run = measure(with_open_files_limit(256, binary(dir.path(), &vars)), Duration::from_secs(60));
    let report = report(dir.path());
    let found = findings(&report);
    let entries = report["checks"].as_array().map(Vec::len).unwrap_or(0);
    let shown = format!(
        "{} entries, peak {} fds, {:?}, {} KiB\nstderr: {}\n{:?}",
        entries,
        run.peak_fds,
        run.elapsed,
        run.max_rss_kib,
        run.stderr,
        found.iter().filter(|(_, c, _)| c != "REG014").take(5).collect::<Vec<_>>()
    );
    assert_eq!(entries, 300, "{shown}");
    assert!(found.iter().all(|(_, code, _)| code == "REG014"), "only the missing tags are findings: {shown}");
    assert_eq!(found.len(), 150, "{shown}");
    assert!(run.peak_fds > 0 && run.peak_fds < 256, "{shown}");
    assert!(run.elapsed < Duration::from_secs(20), "{shown}");
}

#[test]
fn running_out_of_file_descriptors_is_run002_never_a_network_finding() {
    // Eight registries, so the per-host limit does not keep the run under the low limit.
    let fakes: Vec<FakeAcr> = (0..8).map(|_| open_registry()).collect();
    let dir = tempfile::tempdir().unwrap();
    let targets: Vec<String> =
        (0..120).map(|i| format!("{}/shop/web:1.0 pull", fakes[i % fakes.len()].server())).collect();
    let mut vars = pipeline_vars(dir.path(), &targets.join("\n"), None);
    vars.insert("AZP_PREFLIGHT_REGISTRY_USERNAME".into(), APP.into());
    vars.insert("AZP_PREFLIGHT_REGISTRY_PASSWORD".into(), SP_SECRET.into());
    // Too few descriptors for the run's own connection slots.
    let run = measure(with_open_files_limit(24, binary(dir.path(), &vars)), Duration::from_secs(60));
    let report = report(dir.path());
    let found = findings(&report);
    let shown = format!(
        "code {} {:?}\nstdout: {}\nstderr: {}\n{:?}",
        run.code,
        run.elapsed,
        run.stdout,
        run.stderr,
        &found[..found.len().min(5)]
    );
    let run002: Vec<_> = found.iter().filter(|(_, code, _)| code == "RUN002").collect();
    assert!(!run002.is_empty(), "{shown}");
    assert!(run002.iter().all(|(_, _, m)| m.contains("ran out of file descriptors (the limit here is 24)")), "{shown}");
    for code in ["REG003", "REG005", "REG006", "REG007"] {
        assert!(found.iter().all(|(_, c, _)| c != code), "no network finding ({code}) from a local limit: {shown}");
    }
}

#[test]
fn targets_queued_past_their_deadline_are_run001_not_a_slow_registry() {
    // Every answer takes 300 ms and one host takes 8 requests at a time: 60 targets of
    // several requests each cannot all be checked in a 2 s run.
    let mut config = Config::default().user(APP, SP_SECRET, &["pull", "push", "metadata_read"]).with_app(
        "shop/web",
        Attrs::open(),
        Attrs::open(),
    );
    config.latency = Duration::from_millis(300);
    let fake = FakeAcr::start(config);
    let s = fake.server();
    let dir = tempfile::tempdir().unwrap();
    let targets: Vec<String> = (0..60).map(|_| format!("{s}/shop/web:1.0 pull")).collect();
    let mut vars = pipeline_vars(dir.path(), &targets.join("\n"), Some(&s));
    vars.insert("INPUT_TIMEOUTSECONDS".into(), "2".into());
    let run = measure(binary(dir.path(), &vars), Duration::from_secs(30));
    let report = report(dir.path());
    let mut queued = Vec::new();
    for entry in report["checks"].as_array().into_iter().flatten() {
        for f in entry["findings"].as_array().into_iter().flatten() {
            if f["data"]["kind"] == "no-slot" {
                queued.push(f.clone());
            }
        }
    }
    let shown = format!("{:?} {:?}", run.elapsed, findings(&report).iter().take(6).collect::<Vec<_>>());
    assert!(!queued.is_empty(), "{shown}");
    for f in &queued {
        assert_eq!(f["code"], "RUN001", "{f}");
        let message = f["message"].as_str().unwrap_or_default();
        assert!(message.contains("was not checked within the 2 s deadline") && message.contains("never sent"), "{f}");
    }
    assert!(run.elapsed < Duration::from_secs(5), "{shown}");
}
