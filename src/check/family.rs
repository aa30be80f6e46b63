//! One shape for every check family. A family says what its targets are (from its validated
//! configuration, without I/O), checks one target in a job, and declares whether it reads the
//! network. [`FamilyCheck`] turns a family into the runner's jobs and applies, in this one
//! place, what every family used to write for itself: the entry for "nothing to check", the
//! entries of a family that `checks` left out, and the skip of an offline run.

use std::future::Future;
use std::sync::Arc;

use super::{Check, Context, LateRemedy, TargetJob, TargetOutcome};
use crate::settings::CheckId;

/// Whether a family reads remote services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// Works on this agent alone, or adapts to an offline run itself (the tasks check just
    /// leaves out the organization's task versions and the advisory refresh).
    Local,
    /// Reads remote services. A job runs its local steps first (syntax, certificates, image
    /// names); when an offline run reaches the first request it stops there with
    /// [`TargetOutcome::stop_offline`], and the entry is skipped with this reason.
    Remote { offline: &'static str },
}

/// When a family's jobs run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// With every other network check, under the run's deadline.
    First,
    /// After the first phase, reading what it observed (the agent check's clock skew from the
    /// servers' `Date` headers).
    AfterFirst,
}

pub trait Family: Send + Sync + 'static {
    /// One thing to check: a registry line, a connection, a deploy target.
    type Target: Send + 'static;

    const ID: CheckId;
    const NETWORK: Network;
    const PHASE: Phase = Phase::First;
    /// The entry reported when there are no targets, and why (`None`: report nothing).
    const NOTHING_TO_CHECK: Option<(&'static str, &'static str)>;

    /// The targets, in report order. Pure: the family's configuration was validated (files
    /// found, advisories read) before the run.
    fn targets(&self) -> Vec<Self::Target>;

    /// The report entry's name for a target.
    fn name(&self, target: &Self::Target) -> String;

    /// Checks one target. Runs as a job under the run's deadline; never prints.
    fn check_one(
        self: Arc<Self>,
        ctx: Arc<Context>,
        target: Self::Target,
    ) -> impl Future<Output = TargetOutcome> + Send + 'static;

    /// The RUN001 remedy for a job that misses the deadline, when the default (a slow or
    /// unreachable service) would mislead.
    fn late_remedy(&self, _ctx: &Context, _target: &Self::Target) -> Option<LateRemedy> {
        None
    }
}

/// A family as the runner sees it.
pub struct FamilyCheck<F> {
    family: Arc<F>,
    /// Set when `checks` left the family out but it still reports its targets, as skipped
    /// with this reason (deploy targets given on a run whose `checks` omits deploy).
    left_out: Option<String>,
}

impl<F: Family> FamilyCheck<F> {
    pub fn new(family: F) -> Self {
        FamilyCheck { family: Arc::new(family), left_out: None }
    }

    /// The family's targets are reported, each skipped with `reason`, and nothing is checked.
    pub fn left_out(family: F, reason: String) -> Self {
        FamilyCheck { family: Arc::new(family), left_out: Some(reason) }
    }

    pub fn family(&self) -> &F {
        &self.family
    }

    fn jobs(&self, ctx: &Arc<Context>) -> Vec<TargetJob> {
        let targets = self.family.targets();
        if targets.is_empty() {
            return F::NOTHING_TO_CHECK
                .map(|(entry, why)| TargetJob::ready(entry, TargetOutcome::skip(why)))
                .into_iter()
                .collect();
        }
        let offline_reason = match F::NETWORK {
            Network::Remote { offline } if ctx.settings.offline => Some(offline),
            _ => None,
        };
        targets
            .into_iter()
            .map(|target| {
                let name = self.family.name(&target);
                if let Some(reason) = &self.left_out {
                    return TargetJob::ready(name, TargetOutcome::skip(reason.clone()));
                }
                let late_remedy = self.family.late_remedy(ctx, &target);
                let work = self.family.clone().check_one(ctx.clone(), target);
                let job = TargetJob::new(name, async move {
                    let mut outcome = work.await;
                    if std::mem::take(&mut outcome.stopped_offline) {
                        if let Some(reason) = offline_reason {
                            outcome.skipped.get_or_insert_with(|| reason.to_string());
                        }
                    }
                    outcome
                });
                TargetJob { late_remedy, ..job }
            })
            .collect()
    }
}

impl<F: Family> Check for FamilyCheck<F> {
    fn id(&self) -> CheckId {
        F::ID
    }

    fn plan(&self, ctx: &Arc<Context>) -> Vec<TargetJob> {
        match F::PHASE {
            Phase::First => self.jobs(ctx),
            Phase::AfterFirst => Vec::new(),
        }
    }

    fn after(&self, ctx: &Arc<Context>) -> Vec<TargetJob> {
        match F::PHASE {
            Phase::First => Vec::new(),
            Phase::AfterFirst => self.jobs(ctx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{runner, test_context, Status};
    use crate::codes::Code;
    use crate::codes::Severity;
    use crate::finding::Finding;

    /// Targets are words; "bad" fails locally, the rest reach the network boundary.
    struct Words(Vec<&'static str>);

    impl Family for Words {
        type Target = &'static str;
        const ID: CheckId = CheckId::Registry;
        const NETWORK: Network = Network::Remote { offline: "offline: not asked" };
        const NOTHING_TO_CHECK: Option<(&'static str, &'static str)> = Some(("(none)", "no words"));

        fn targets(&self) -> Vec<&'static str> {
            self.0.clone()
        }

        fn name(&self, target: &&'static str) -> String {
            target.to_string()
        }

        async fn check_one(self: Arc<Self>, ctx: Arc<Context>, target: &'static str) -> TargetOutcome {
            let mut out = TargetOutcome::default();
            if target == "bad" {
                out.findings.push(Finding::new(Code::REG001, "bad word").severity(Severity::Error));
                return out;
            }
            if ctx.settings.offline {
                return out.stop_offline();
            }
            out.proven.push("asked".into());
            out
        }
    }

    async fn run(family: FamilyCheck<Words>, pairs: &[(&str, &str)]) -> Vec<(String, Status, Option<String>)> {
        let ctx = test_context(pairs);
        let checks: Vec<Box<dyn Check>> = vec![Box::new(family)];
        let results = runner::run_checks(&ctx, &checks).await.expect("no job panics");
        results.into_iter().map(|r| (r.target, r.status, r.reason)).collect()
    }

    #[tokio::test]
    async fn no_targets_is_one_skipped_entry_saying_why() {
        let got = run(FamilyCheck::new(Words(vec![])), &[]).await;
        assert_eq!(got, [("(none)".to_string(), Status::Skip, Some("no words".to_string()))]);
    }

    #[tokio::test]
    async fn offline_stops_at_the_network_boundary_with_the_declared_reason() {
        let got = run(FamilyCheck::new(Words(vec!["bad", "good"])), &[("INPUT_OFFLINE", "true")]).await;
        assert_eq!(
            got,
            [
                ("bad".to_string(), Status::Fail, None),
                ("good".to_string(), Status::Skip, Some("offline: not asked".to_string())),
            ]
        );
        let online = run(FamilyCheck::new(Words(vec!["good"])), &[]).await;
        assert_eq!(online, [("good".to_string(), Status::Pass, None)]);
    }

    #[tokio::test]
    async fn a_left_out_family_reports_each_target_skipped_and_checks_nothing() {
        let family = FamilyCheck::left_out(Words(vec!["bad", "good"]), "left out".into());
        let got = run(family, &[]).await;
        assert!(got.iter().all(|(_, status, reason)| *status == Status::Skip && reason.as_deref() == Some("left out")));
        assert_eq!(got.len(), 2);
    }
}
