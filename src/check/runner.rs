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
    run_checks_from(ctx, checks, Instant::now()).await
}

/// As [`run_checks`], with the deadline counted from `started` (the start of the run, so the
/// time spent validating its input counts too).
pub async fn run_checks_from(
    ctx: &Arc<Context>,
    checks: &[Box<dyn Check>],
    started: Instant,
) -> Result<Vec<CheckResult>, JobPanicked> {
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
            (check, job.target, job.late_remedy, started, handle)
        })
        .collect();
    let mut results = Vec::with_capacity(handles.len());
    for (check, target, late_remedy, started, mut handle) in handles {
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
                let remedy = match &late_remedy {
                    Some(remedy) => remedy(secs),
                    None => format!(
                        "Find out why {target} is slow or unreachable from this agent (firewall, proxy, private endpoint). \
                         If it is just slow, raise `timeoutSeconds` (task) or `--timeout` (CLI) above {secs}."
                    ),
                };
                let outcome = TargetOutcome {
                    findings: vec![Finding::new(
                        Code::RUN001,
                        format!(
                            "the {} check for {target} did not finish within the {secs} s deadline",
                            check.as_str()
                        ),
                    )
                    .remedy(remedy)
                    .data("check", check.as_str())
                    .data("target", target.clone())
                    .data("timeoutSeconds", secs)],
                    ..Default::default()
                };
                (outcome, started.elapsed())
            }
        };
        let mut outcome = outcome;
        let entries = std::mem::take(&mut outcome.entries);
        if entries.is_empty() {
            results.push(CheckResult::from_outcome(check, target, duration, outcome));
        } else {
            // The job found its own targets; each is its own entry, timed as the whole job.
            results.extend(entries.into_iter().map(|(t, o)| CheckResult::from_outcome(check, t, duration, o)));
        }
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{test_context, Status, TargetJob};
    use std::time::Duration;

    /// Plans one quick job and one that never finishes.
    struct Sleepy;

    impl Check for Sleepy {
        fn id(&self) -> CheckId {
            CheckId::Registry
        }

        fn plan(&self, _ctx: &Arc<Context>) -> Vec<TargetJob> {
            vec![
                TargetJob::new("fast.example (pull)", async {
                    TargetOutcome { proven: vec!["ok".into()], ..Default::default() }
                }),
                TargetJob::new("hangs.example (push)", async {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    TargetOutcome::default()
                }),
            ]
        }
    }

    #[tokio::test]
    async fn a_job_past_the_deadline_becomes_run001_naming_check_and_target() {
        let ctx = test_context(&[("INPUT_TIMEOUTSECONDS", "1")]);
        let started = Instant::now();
        let results = run_checks(&ctx, &[Box::new(Sleepy)]).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(3), "the deadline is honoured");
        assert_eq!(results.len(), 2);
        assert_eq!(results[0].status, Status::Pass);
        let late = &results[1];
        assert_eq!((late.status, late.findings[0].code), (Status::Fail, Code::RUN001));
        assert!(late.findings[0]
            .message
            .contains("registry check for hangs.example (push) did not finish within the 1 s deadline"));
    }

    /// A job that finds its own targets, and a slow local job with its own late remedy.
    struct Finder;

    impl Check for Finder {
        fn id(&self) -> CheckId {
            CheckId::Tasks
        }

        fn plan(&self, _ctx: &Arc<Context>) -> Vec<TargetJob> {
            vec![
                TargetJob::new("pipeline files", async {
                    let one = TargetOutcome { proven: vec!["1".into()], ..Default::default() };
                    TargetOutcome {
                        entries: vec![("a.yml".into(), one), ("b.yml".into(), TargetOutcome::default())],
                        ..Default::default()
                    }
                }),
                TargetJob::new("local scan", async {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    TargetOutcome::default()
                })
                .late_remedy(|secs| format!("local work; raise the deadline above {secs}")),
            ]
        }
    }

    #[tokio::test]
    async fn found_targets_become_entries_and_a_late_remedy_replaces_the_default() {
        let ctx = test_context(&[("INPUT_TIMEOUTSECONDS", "1")]);
        let results = run_checks(&ctx, &[Box::new(Finder)]).await.unwrap();
        let targets: Vec<&str> = results.iter().map(|r| r.target.as_str()).collect();
        assert_eq!(targets, ["a.yml", "b.yml", "local scan"]);
        assert_eq!(results[0].proven, ["1"]);
        let late = &results[2].findings[0];
        assert_eq!(late.code, Code::RUN001);
        assert_eq!(late.remedy, "local work; raise the deadline above 1");
    }

    struct Panicky;

    impl Check for Panicky {
        fn id(&self) -> CheckId {
            CheckId::Tasks
        }

        fn plan(&self, _ctx: &Arc<Context>) -> Vec<TargetJob> {
            vec![TargetJob::new("x.yml", async { panic!("bug in a check") })]
        }
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_internal_error_not_a_pass() {
        let ctx = test_context(&[]);
        let err = run_checks(&ctx, &[Box::new(Panicky)]).await.unwrap_err();
        assert_eq!((err.check, err.target.as_str(), err.detail.as_str()), ("tasks", "x.yml", "bug in a check"));
    }
}
