//! The agent environment: injected profilers (AGT001), free disk in the work folder
//! (AGT002) and clock skew against the servers already contacted (AGT003).
//!
//! It runs after the network checks so the clock comparison uses their `Date` headers.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::check::family::{Family, Network, Phase};
use crate::check::{Context, TargetOutcome};
use crate::codes::Code;
use crate::codes::Severity;
use crate::env::AgentEnv;
use crate::finding::Finding;
use crate::net::http::DateObservation;
use crate::sanitize::sanitize;
use crate::settings::CheckId;

/// Below this much free space in the work folder, builds start failing on hosted images.
pub const MIN_FREE_BYTES: u64 = 5 * 1024 * 1024 * 1024;
const SKEW_WARNING: Duration = Duration::from_secs(120);
const SKEW_ERROR: Duration = Duration::from_secs(300);

/// The agent itself is the one target, named as the agent names itself.
pub struct AgentCheck {
    pub name: String,
}

impl AgentCheck {
    pub fn new(env: &AgentEnv) -> Self {
        AgentCheck { name: env.get("AGENT_NAME").or(env.get("AGENT_MACHINENAME")).unwrap_or("local").to_string() }
    }
}

impl Family for AgentCheck {
    type Target = ();
    const ID: CheckId = CheckId::Agent;
    const NETWORK: Network = Network::Local;
    // It compares the clock with the `Date` headers the network checks saw.
    const PHASE: Phase = Phase::AfterFirst;
    const NOTHING_TO_CHECK: Option<(&'static str, &'static str)> = None;

    fn targets(&self) -> Vec<()> {
        vec![()]
    }

    fn name(&self, _: &()) -> String {
        self.name.clone()
    }

    async fn check_one(self: Arc<Self>, ctx: Arc<Context>, _: ()) -> TargetOutcome {
        let mut outcome = TargetOutcome::default();
        // Bounded like every outside file: a hostile or odd system cannot make it grow or block.
        let preload_file =
            crate::fsread::read_to_string(Path::new("/etc/ld.so.preload"), crate::fsread::limits::SYSTEM_FILE).ok();
        let injected = injected_profilers(&ctx.env, preload_file.as_deref());
        if injected.is_empty() {
            outcome.proven.push("no injected profilers".into());
        }
        outcome.findings.extend(injected);
        match free_disk(&ctx.settings.work_dir) {
            Some(free) => {
                outcome.proven.push(format!("{} free", human_bytes(free.available)));
                outcome.findings.extend(disk_finding(&ctx.settings.work_dir, free));
            }
            None => outcome.proven.push("free disk not measured".into()),
        }
        match clock_skew(&ctx.http.date_observations()) {
            Some(skew) => {
                let finding = skew_finding(&skew);
                if finding.is_none() {
                    outcome.proven.push("clock in sync".into());
                }
                outcome.findings.extend(finding);
            }
            None => outcome.proven.push("clock not compared (no server answered)".into()),
        }
        outcome
    }
}

/// Everything in the environment that injects a profiler or monitor into child processes.
pub fn injected_profilers(env: &AgentEnv, ld_so_preload: Option<&str>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let remedy_dynatrace = "Exclude the agent's processes (Agent.Listener, Agent.Worker and their children) from deep monitoring \
        in the monitoring tool, or switch the injection off for this pipeline: set `CORECLR_ENABLE_PROFILING: 0` and clear \
        `LD_PRELOAD` in the job's `variables:` or the step's `env:`. For Dynatrace OneAgent: Settings > Processes and containers > \
        Process group monitoring, add a rule that does not monitor the agent's process group.";
    let mut preloads: Vec<(String, &str)> = Vec::new();
    if let Some(v) = env.get("LD_PRELOAD") {
        preloads.extend(v.split([':', ' ']).filter(|s| !s.is_empty()).map(|lib| (lib.to_string(), "LD_PRELOAD")));
    }
    if let Some(text) = ld_so_preload {
        preloads.extend(
            text.lines()
                .map(|l| l.split('#').next().unwrap_or("").trim())
                .flat_map(|l| l.split_whitespace())
                .map(|lib| (lib.to_string(), "/etc/ld.so.preload")),
        );
    }
    for (lib, source) in preloads {
        let product = known_monitor(&lib);
        let what = product.map(|p| format!("{p} library")).unwrap_or_else(|| "library".into());
        findings.push(
            Finding::new(Code::AGT001, format!("{source} injects the {what} `{}` into every process this agent starts, including the task runtimes", sanitize(&lib)))
                .remedy(remedy_dynatrace)
                .data("source", source)
                .data("library", sanitize(&lib))
                .data("product", product.unwrap_or("unknown")),
        );
    }
    for (flag, path_vars, runtime) in [
        ("CORECLR_ENABLE_PROFILING", ["CORECLR_PROFILER_PATH_64", "CORECLR_PROFILER_PATH"], ".NET (Core) runtime"),
        ("COR_ENABLE_PROFILING", ["COR_PROFILER_PATH_64", "COR_PROFILER_PATH"], ".NET Framework runtime"),
    ] {
        if env.get(flag).map(str::trim) == Some("1") {
            let path = path_vars.iter().find_map(|v| env.get(v)).unwrap_or("(no profiler path set)");
            let product = known_monitor(path);
            findings.push(
                Finding::new(
                    Code::AGT001,
                    format!(
                        "{flag}=1 loads the profiler `{}`{} into every {runtime} this agent starts; a profiler that rewrites IL \
                         has made the agent's own .NET code fail with InvalidProgramException",
                        sanitize(path),
                        product.map(|p| format!(" ({p})")).unwrap_or_default()
                    ),
                )
                .remedy(remedy_dynatrace)
                .data("source", flag)
                .data("library", sanitize(path))
                .data("product", product.unwrap_or("unknown")),
            );
        }
    }
    if let Some(hooks) = env.get("DOTNET_STARTUP_HOOKS") {
        findings.push(
            Finding::new(Code::AGT001, format!("DOTNET_STARTUP_HOOKS loads `{}` into every .NET process this agent starts", sanitize(hooks)))
                .remedy("Clear `DOTNET_STARTUP_HOOKS` for the agent service, or in the job's `variables:`, unless the build needs it.")
                .data("source", "DOTNET_STARTUP_HOOKS"),
        );
    }
    if let Some(opts) = env.get("JAVA_TOOL_OPTIONS").filter(|o| o.contains("-javaagent") || o.contains("-agentpath")) {
        findings.push(
            Finding::new(Code::AGT001, format!("JAVA_TOOL_OPTIONS attaches an agent to every JVM this agent starts: `{}`", sanitize(opts)))
                .remedy("Remove the -javaagent/-agentpath option from JAVA_TOOL_OPTIONS for the agent service, or override it in the job.")
                .data("source", "JAVA_TOOL_OPTIONS"),
        );
    }
    // Monitoring agents' own variables; only names are shown, values may hold tokens.
    let mut monitor_vars: Vec<&str> = env
        .iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("DT_") || k.starts_with("DYNATRACE_") || k.starts_with("ONEAGENT_"))
        .collect();
    monitor_vars.sort_unstable();
    if !monitor_vars.is_empty() {
        let shown: Vec<&str> = monitor_vars.iter().copied().take(8).collect();
        findings.push(
            Finding::new(
                Code::AGT001,
                format!(
                    "Dynatrace OneAgent variables are set for this agent ({}{}): its process injection is active here",
                    shown.join(", "),
                    if monitor_vars.len() > 8 { ", ..." } else { "" }
                ),
            )
            .remedy(remedy_dynatrace)
            .data("source", "environment")
            .data("variables", monitor_vars.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .data("product", "Dynatrace OneAgent"),
        );
    }
    findings
}

fn known_monitor(path: &str) -> Option<&'static str> {
    let lower = path.to_ascii_lowercase();
    [
        ("oneagent", "Dynatrace OneAgent"),
        ("dynatrace", "Dynatrace OneAgent"),
        ("newrelic", "New Relic"),
        ("datadog", "Datadog"),
        ("ddtrace", "Datadog"),
        ("appdynamics", "AppDynamics"),
        ("elastic", "Elastic APM"),
        ("instana", "Instana"),
        ("contrast", "Contrast Security"),
    ]
    .into_iter()
    .find(|(needle, _)| lower.contains(needle))
    .map(|(_, name)| name)
}

#[derive(Debug, Clone, Copy)]
pub struct FreeDisk {
    pub available: u64,
    pub total: u64,
}

#[cfg(unix)]
pub fn free_disk(path: &Path) -> Option<FreeDisk> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    // Measure the nearest existing ancestor: the work folder may not exist yet locally.
    let existing = path.ancestors().find(|p| p.exists())?;
    let c_path = CString::new(existing.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is a valid NUL-terminated string and stat a writable statvfs.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    let unit = stat.f_frsize as u64;
    Some(FreeDisk { available: stat.f_bavail as u64 * unit, total: stat.f_blocks as u64 * unit })
}

#[cfg(not(unix))]
pub fn free_disk(_path: &Path) -> Option<FreeDisk> {
    None
}

pub fn disk_finding(path: &Path, free: FreeDisk) -> Option<Finding> {
    (free.available < MIN_FREE_BYTES).then(|| {
        Finding::new(
            Code::AGT002,
            format!(
                "only {} of {} free in the agent work folder {}; builds, image layers and caches need at least {}",
                human_bytes(free.available),
                human_bytes(free.total),
                path.display(),
                human_bytes(MIN_FREE_BYTES)
            ),
        )
        .remedy(
            "Free space on the agent: remove old work folders (`_work/<n>`) and docker data (`docker system prune -af`), \
             or add `workspace: clean: all` to the job. On a self-hosted pool, enlarge the disk or schedule Agent maintenance \
             (Organization settings > Agent pools > pool > Settings > maintenance job).",
        )
        .data("availableBytes", free.available)
        .data("totalBytes", free.total)
        .data("path", path.display().to_string())
    })
}

pub fn human_bytes(bytes: u64) -> String {
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    let b = bytes as f64;
    if b >= GIB {
        format!("{:.1} GiB", b / GIB)
    } else {
        format!("{:.0} MiB", b / (1024.0 * 1024.0))
    }
}

/// The median offset of server clocks against ours (positive: our clock is behind).
#[derive(Debug, Clone)]
pub struct Skew {
    pub seconds: i64,
    pub hosts: Vec<String>,
}

pub fn clock_skew(observations: &[DateObservation]) -> Option<Skew> {
    if observations.is_empty() {
        return None;
    }
    let offset = |o: &DateObservation| -> i64 {
        match o.server.duration_since(o.local) {
            Ok(ahead) => ahead.as_secs() as i64,
            Err(behind) => -(behind.duration().as_secs() as i64),
        }
    };
    let mut offsets: Vec<i64> = observations.iter().map(offset).collect();
    offsets.sort_unstable();
    let seconds = offsets[offsets.len() / 2];
    let mut hosts: Vec<String> = observations.iter().map(|o| o.host.clone()).collect();
    hosts.sort();
    hosts.dedup();
    Some(Skew { seconds, hosts })
}

pub fn skew_finding(skew: &Skew) -> Option<Finding> {
    let abs = Duration::from_secs(skew.seconds.unsigned_abs());
    if abs <= SKEW_WARNING {
        return None;
    }
    let severity = if abs > SKEW_ERROR { Severity::Error } else { Severity::Warning };
    let direction = if skew.seconds > 0 { "behind" } else { "ahead of" };
    Some(
        Finding::new(
            Code::AGT003,
            format!(
                "the agent's clock is {} s {direction} the servers' (Date headers from {}); tokens are rejected as not yet valid or expired beyond about 5 minutes",
                skew.seconds.abs(),
                skew.hosts.join(", ")
            ),
        )
        .severity(severity)
        .remedy("Synchronise the agent's clock: enable NTP (`timedatectl set-ntp true` on Linux, `w32tm /resync` on Windows), then restart the agent.")
        .data("skewSeconds", skew.seconds)
        .data("hosts", skew.hosts.clone()),
    )
}

/// For tests that build observations.
pub fn observation(host: &str, server_offset_secs: i64) -> DateObservation {
    let local = SystemTime::now();
    let server = if server_offset_secs >= 0 {
        local + Duration::from_secs(server_offset_secs as u64)
    } else {
        local - Duration::from_secs(server_offset_secs.unsigned_abs())
    };
    DateObservation { host: host.into(), server, local }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oneagent_preload_and_coreclr_profiler_are_found() {
        let env = AgentEnv::from_pairs([
            ("LD_PRELOAD", "/opt/dynatrace/oneagent/agent/lib64/liboneagentproc.so"),
            ("CORECLR_ENABLE_PROFILING", "1"),
            ("CORECLR_PROFILER_PATH_64", "/opt/dynatrace/oneagent/agent/lib64/liboneagentloader.so"),
            ("DT_TENANT", "abc"),
            ("DT_API_TOKEN", "dt-canary-token"),
        ]);
        let f = injected_profilers(&env, None);
        assert_eq!(f.len(), 3, "{f:#?}");
        assert!(f.iter().all(|f| f.code == Code::AGT001 && f.severity == Severity::Warning));
        assert!(f[0].message.contains("Dynatrace OneAgent library"));
        assert!(f[1].message.contains("CORECLR_ENABLE_PROFILING=1"));
        assert!(f[2].message.contains("DT_API_TOKEN, DT_TENANT"));
        assert!(!format!("{f:?}").contains("dt-canary-token"), "variable values must not be shown");
    }

    #[test]
    fn system_wide_preload_file_and_clean_environment() {
        let f = injected_profilers(&AgentEnv::default(), Some("# comment\n/usr/lib/libnewrelic.so\n"));
        assert_eq!(f.len(), 1);
        assert!(f[0].message.contains("/etc/ld.so.preload") && f[0].message.contains("New Relic"));
        assert!(injected_profilers(&AgentEnv::from_pairs([("CORECLR_ENABLE_PROFILING", "0")]), Some("")).is_empty());
    }

    #[test]
    fn low_disk_warns_and_enough_disk_passes() {
        let low = FreeDisk { available: 1024 * 1024 * 1024, total: 80 * 1024 * 1024 * 1024 };
        let f = disk_finding(Path::new("/agent/_work"), low).unwrap();
        assert!(f.message.contains("1.0 GiB of 80.0 GiB"), "{}", f.message);
        assert!(disk_finding(Path::new("/"), FreeDisk { available: MIN_FREE_BYTES, total: MIN_FREE_BYTES }).is_none());
        assert!(free_disk(Path::new("/definitely/not/here")).is_some(), "measures the nearest existing ancestor");
    }

    #[test]
    fn skew_thresholds() {
        let skew =
            |secs: i64| clock_skew(&[observation("a", secs), observation("b", secs), observation("c", 0)]).unwrap();
        assert!(skew_finding(&skew(100)).is_none());
        assert_eq!(skew_finding(&skew(200)).unwrap().severity, Severity::Warning);
        let f = skew_finding(&skew(-400)).unwrap();
        assert_eq!(f.severity, Severity::Error);
        assert!(f.message.contains("400 s ahead of"));
        assert!(clock_skew(&[]).is_none());
    }
}
