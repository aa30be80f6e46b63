//! The check framework: a check plans one job per target; the runner runs every job
//! concurrently under one deadline. Checks return findings and never print.

pub mod family;
pub mod run;
pub mod runner;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::azure::Services;
use crate::codes::Severity;
use crate::env::AgentEnv;
use crate::finding::Finding;
use crate::net::{Endpoints, HttpClient};
use crate::secret::Redactor;
use crate::settings::{CheckId, Settings};
use run::RunRecord;

/// Everything a check may use. Built once per run and shared read-only.
#[derive(Debug)]
pub struct Context {
    pub settings: Settings,
    /// The environment snapshot, for checks that inspect the agent itself (AGT001).
    pub env: AgentEnv,
    pub endpoints: Endpoints,
    pub http: HttpClient,
    pub redactor: Redactor,
    /// The run's notion of "now" (fixed at start; tests may pin it).
    pub now: jiff::Timestamp,
}

impl Context {
    /// A run's context: "now" is fixed here.
    pub fn new(settings: Settings, env: AgentEnv, endpoints: Endpoints, http: HttpClient, redactor: Redactor) -> Self {
        Context { settings, env, endpoints, http, redactor, now: jiff::Timestamp::now() }
    }

    /// What the Azure clients need from this run.
    pub fn services(&self) -> Services<'_> {
        Services {
            http: &self.http,
            endpoints: &self.endpoints,
            redactor: &self.redactor,
            now: self.now,
            job_token: self.settings.job_token.as_ref(),
        }
    }
}

/// What one target's job found.
#[derive(Debug, Default)]
pub struct TargetOutcome {
    pub findings: Vec<Finding>,
    /// Short statements of what was proven, for the summary ("push allowed", "61 GiB free").
    pub proven: Vec<String>,
    /// Extra machine-readable fields for the report entry (e.g. `references`).
    pub extra: Map<String, Value>,
    /// The `runs` family's `run` field, typed (see `run`).
    pub run: Option<Box<RunRecord>>,
    /// Set when the target was not checked, with the reason.
    pub skipped: Option<String>,
    /// For a job that finds its own targets (the tasks check finds its pipeline files under
    /// the deadline): one report entry per target found, reported instead of this outcome.
    pub entries: Vec<(String, TargetOutcome)>,
    /// Set by a job that stopped where an offline run may not go on: the family's declared
    /// offline reason becomes the skip reason (see `family::Network`).
    pub stopped_offline: bool,
}

impl TargetOutcome {
    pub fn skip(reason: impl Into<String>) -> Self {
        TargetOutcome { skipped: Some(reason.into()), ..Default::default() }
    }

    /// The job stops here because the run is offline and the next step would send a request.
    pub fn stop_offline(mut self) -> Self {
        self.stopped_offline = true;
        self
    }
}

pub type JobFuture = Pin<Box<dyn Future<Output = TargetOutcome> + Send + 'static>>;

/// Says, when a job missed the deadline, what to do about it (asked at that moment, so it
/// can tell which part of the job was still running).
pub type LateRemedy = Box<dyn Fn(u64) -> String + Send + Sync>;

/// One unit of work: a check applied to one target.
pub struct TargetJob {
    pub target: String,
    pub work: JobFuture,
    /// The RUN001 remedy when the job misses the deadline, given the deadline in seconds;
    /// `None`: the default, which suspects a slow or unreachable service.
    pub late_remedy: Option<LateRemedy>,
}

impl TargetJob {
    pub fn new(target: impl Into<String>, work: impl Future<Output = TargetOutcome> + Send + 'static) -> Self {
        TargetJob { target: target.into(), work: Box::pin(work), late_remedy: None }
    }

    /// Sets the RUN001 remedy for a job whose slow part may be local work, not the network.
    pub fn late_remedy(mut self, remedy: impl Fn(u64) -> String + Send + Sync + 'static) -> Self {
        self.late_remedy = Some(Box::new(remedy));
        self
    }

    /// A job that is already done: a static result or a skip.
    pub fn ready(target: impl Into<String>, outcome: TargetOutcome) -> Self {
        TargetJob::new(target, async move { outcome })
    }
}

pub trait Check: Send + Sync {
    fn id(&self) -> CheckId;

    /// The jobs to run, one per target. Called once, before anything runs.
    fn plan(&self, ctx: &Arc<Context>) -> Vec<TargetJob>;

    /// Jobs that need what the first phase observed (clock skew from `Date` headers).
    fn after(&self, _ctx: &Arc<Context>) -> Vec<TargetJob> {
        Vec::new()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Skip,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }
}

/// The report entry for one target.
#[derive(Debug)]
pub struct CheckResult {
    pub check: CheckId,
    pub target: String,
    pub status: Status,
    pub reason: Option<String>,
    pub duration: Duration,
    pub findings: Vec<Finding>,
    pub proven: Vec<String>,
    pub extra: Map<String, Value>,
    /// Written as the entry's `run` field; kept apart from `extra` because an organisation
    /// report holds one per pipeline (`run`).
    pub run: Option<Box<RunRecord>>,
}

impl CheckResult {
    pub fn from_outcome(check: CheckId, target: String, duration: Duration, outcome: TargetOutcome) -> Self {
        let worst = outcome.findings.iter().map(|f| f.severity).max();
        let status = match (&outcome.skipped, worst) {
            (_, Some(Severity::Error)) => Status::Fail,
            (_, Some(Severity::Warning)) => Status::Warn,
            (Some(_), _) => Status::Skip,
            _ => Status::Pass,
        };
        // Held until the report is written, tens of thousands of them in an organisation scan:
        // no spare capacity (a vector's first push makes room for four findings).
        let (mut findings, mut proven) = (outcome.findings, outcome.proven);
        findings.shrink_to_fit();
        proven.shrink_to_fit();
        CheckResult {
            check,
            target,
            status,
            reason: outcome.skipped,
            duration,
            findings,
            proven,
            extra: outcome.extra,
            run: outcome.run,
        }
    }
}

/// A context for unit tests: settings from the given variables (as if they were the
/// process environment) and the real HTTP client. The advisory update is `off` unless the
/// pairs ask for it: no unit test reaches the published document.
#[cfg(test)]
pub(crate) fn test_context(pairs: &[(&str, &str)]) -> Arc<Context> {
    let off = [(crate::advisory_update::DEFAULT_VAR, "off")];
    let env = AgentEnv::from_pairs(off.iter().chain(pairs).copied());
    let redactor = Redactor::default();
    let settings = Settings::from_args(&crate::cli::RunArgs::default(), &env, &redactor, std::path::PathBuf::from("."))
        .expect("test settings are valid");
    let endpoints = Endpoints::from_env(&env).expect("test endpoints are valid");
    let routes = crate::net::route::Routes::new(&endpoints.registries);
    let http =
        HttpClient::new(crate::net::http::HttpSettings { redactor: redactor.clone(), routes, ..Default::default() })
            .expect("client builds");
    Arc::new(Context::new(settings, env, endpoints, http, redactor))
}
