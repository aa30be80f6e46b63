//! Runs every planned job concurrently under the run's deadline. A job still running at
//! the deadline is cancelled and reported as RUN001 naming its check and target.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{Check, CheckResult, Context, TargetJob, TargetOutcome};
use crate::codes::Code;
use crate::finding::Finding;
use crate::settings::CheckId;

/// A job panicked: a bug, reported as "could not complete" (exit 3).
#[derive(Debug, thiserror::Error)]
#[error("internal error in the {check} check for {target}: {detail}")]
pub struct JobPanicked {
    pub check: &'static str,
    pub target: String,
    pub detail: String,
}

pub async fn run_checks(ctx: &Arc<Context>, checks: &[Box<dyn Check>]) -> Result<Vec<CheckResult>, JobPanicked> {
    let started = Instant::now();
    let deadline = started + ctx.settings.timeout;
    let first: Vec<(CheckId, TargetJob)> =
        checks.iter().flat_map(|c| c.plan(ctx).into_iter().map(move |j| (c.id(), j))).collect();
    let mut results = run_phase(first, deadline, ctx.settings.timeout).await?;
    // Jobs that read what the first phase observed get a little time even when the first
    // phase used the whole deadline: they do no network work.
    let late_deadline = deadline.max(Instant::now() + Duration::from_millis(500));
    let second: Vec<(CheckId, TargetJob)> =
        checks.iter().flat_map(|c| c.after(ctx).into_iter().map(move |j| (c.id(), j))).collect();
    results.extend(run_phase(second, late_deadline, ctx.settings.timeout).await?);
    results.sort_by_key(|r| r.check);
    Ok(results)
}

async fn run_phase(
    jobs: Vec<(CheckId, TargetJob)>,
    deadline: Instant,
    timeout: Duration,
) -> Result<Vec<CheckResult>, JobPanicked> {
    let handles: Vec<_> = jobs
        .into_iter()
        .map(|(check, job)| {
            let started = Instant::now();
            let work = job.work;
            // The job times itself: results are collected in order, not as they finish.
            let handle = tokio::spawn(async move {
                let outcome = work.await;
                (outcome, started.elapsed())
            });
            (check, job.target, started, handle)
        })
        .collect();
    let mut results = Vec::with_capacity(handles.len());
    for (check, target, started, mut handle) in handles {
        let (outcome, duration) = match tokio::time::timeout_at(deadline, &mut handle).await {
            Ok(Ok(done)) => done,
            Ok(Err(join)) => {
                let detail = join
                    .try_into_panic()
                    .ok()
                    .and_then(|p| {
                        p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    })
                    .unwrap_or_else(|| "the job was cancelled".into());
                return Err(JobPanicked { check: check.as_str(), target, detail });
            }
            Err(_) => {
                handle.abort();
                let secs = timeout.as_secs();
                let outcome = TargetOutcome {
                    findings: vec![Finding::new(
                        Code::RUN001,
                        format!("the {} check for {target} did not finish within the {secs} s deadline", check.as_str()),
                    )
                    .remedy(format!(
                        "Find out why {target} is slow or unreachable from this agent (firewall, proxy, private endpoint). \
                         If it is just slow, raise `timeoutSeconds` (task) or `--timeout` (CLI) above {secs}."
                    ))
                    .data("check", check.as_str())
                    .data("target", target.clone())
                    .data("timeoutSeconds", secs)],
                    ..Default::default()
                };
                (outcome, started.elapsed())
            }
        };
        results.push(CheckResult::from_outcome(check, target, duration, outcome));
    }
    Ok(results)
}
