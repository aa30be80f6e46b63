//! TSK001: the reference pins, or resolves to, a version with a known regression (or one an
//! advisory about some builds only cannot rule in or out); TSK004: the organization does not
//! have the version the reference needs.

use super::{Advice, RefContext};
use crate::checks::tasks::advisories::{Advisory, Hit};
use crate::checks::tasks::reference::{NameKind, TaskVersion};
use crate::checks::tasks::resolve::Lookup;
use crate::codes::Code;
use crate::codes::Severity;
use crate::finding::Finding;
use crate::sanitize::sanitize;

impl RefContext<'_> {
    pub(super) fn pinned(&self, pinned: TaskVersion, advisories: &[&Advisory], out: &mut Vec<Advice>) {
        let affected: Vec<&Advisory> = advisories.iter().copied().filter(|a| a.affects(pinned)).collect();
        if !affected.is_empty() {
            let (remedy, edit) = self.repair(&affected, advisories, true);
            let mut f = self
                .finding(
                    Code::TSK001,
                    format!("{} pins a version with a known regression: {}", self.shown(), describe(&affected)),
                )
                .remedy(remedy);
            f = advisory_data(f, &affected);
            out.push(Advice { finding: f, edit });
        } else {
            self.stale_pin(pinned, advisories, out);
        }
        out.extend(self.unsure_build(pinned, advisories, &|| format!("{} pins {pinned}", self.shown())));
        match self.lookup {
            Some(Lookup::Found(org)) if !org.has(pinned) => {
                let mut have: Vec<TaskVersion> =
                    org.versions.iter().map(|v| v.version).filter(|v| v.major == pinned.major).collect();
                have.sort_unstable();
                let listed = if have.is_empty() {
                    format!("no version of major {}", pinned.major)
                } else {
                    let tail: Vec<String> = have.iter().rev().take(5).rev().map(|v| v.to_string()).collect();
                    format!("{} version(s) of major {}, the newest {}", have.len(), pinned.major, tail.join(", "))
                };
                let suggestion = format!("- task: {}@{}", self.yaml_name(), pinned.major);
                out.push(Advice {
                    finding: self
                        .finding(
                            Code::TSK004,
                            format!(
                                "{}: the organization does not have {} {pinned} (it has {listed}); the run would \
                                 fail with \"A task is missing\"",
                                self.shown(),
                                self.name()
                            ),
                        )
                        .remedy(format!(
                            "Pin a version the organization has, or float the major:\n  {suggestion}\n\
                             Versions differ between organizations (tasks roll out in rings), so a pin copied from \
                             elsewhere may not exist here."
                        ))
                        .data("available", have.iter().map(|v| v.to_string()).collect::<Vec<_>>()),
                    edit: None,
                });
            }
            Some(Lookup::NotInstalled) if self.identity.builtin.is_some() || self.r().kind == NameKind::Guid => {
                out.push(Advice { finding: self.not_installed(), edit: None })
            }
            _ => {}
        }
    }

    fn not_installed(&self) -> Finding {
        self.finding(
            Code::TSK004,
            format!(
                "{}: the organization has no version of {}; the run would fail with \"A task is missing\"",
                self.shown(),
                self.name()
            ),
        )
        .remedy(
            "Install the extension that provides the task (Organization settings > Extensions), or check that \
             built-in tasks are not disabled (Organization settings > Pipelines > Settings).",
        )
    }

    pub(super) fn floating(&self, major: u32, advisories: &[&Advisory], out: &mut Vec<Advice>) {
        match self.lookup {
            Some(Lookup::Found(org)) => {
                let Some(current) = org.resolve_major(major) else {
                    let majors: Vec<String> = org.majors().iter().map(|m| m.to_string()).collect();
                    out.push(Advice {
                        finding: self
                            .finding(
                                Code::TSK004,
                                format!(
                                    "{}: the organization has no version of {}@{major} (it has major(s) {}); the run \
                                     would fail with \"A task is missing\"",
                                    self.shown(),
                                    self.name(),
                                    majors.join(", ")
                                ),
                            )
                            .remedy(format!("Use a major the organization has: {}.", majors.join(", "))),
                        edit: None,
                    });
                    return;
                };
                let affected: Vec<&Advisory> =
                    advisories.iter().copied().filter(|a| a.affects(current.version)).collect();
                let context = || format!("{} resolves to {} in this organization", self.shown(), current.version);
                out.extend(self.unsure_build(current.version, advisories, &context));
                if affected.is_empty() {
                    return;
                }
                let (remedy, edit) = self.repair(&affected, advisories, false);
                let f = self
                    .finding(
                        Code::TSK001,
                        format!(
                            "{} resolves to {} in this organization, which has a known regression: {}",
                            self.shown(),
                            current.version,
                            describe(&affected)
                        ),
                    )
                    .remedy(remedy)
                    .data("resolved", current.version.to_string());
                out.push(Advice { finding: advisory_data(f, &affected), edit });
            }
            Some(Lookup::NotInstalled) if self.identity.builtin.is_some() || self.r().kind == NameKind::Guid => {
                out.push(Advice { finding: self.not_installed(), edit: None })
            }
            _ => {
                let Some(latest) = self.identity.builtin.and_then(|b| b.info.latest_version()) else { return };
                let affected: Vec<&Advisory> = advisories.iter().copied().filter(|a| a.affects(latest)).collect();
                let context = || format!("{} floats to the newest version azp-preflight knows, {latest}", self.shown());
                out.extend(self.unsure_build(latest, advisories, &context));
                if affected.is_empty() {
                    return;
                }
                let (remedy, edit) = self.repair(&affected, advisories, false);
                let unconfirmed = match self.online_failure() {
                    Some(why) => format!("Online resolution failed ({}), so this is unconfirmed", sanitize(why)),
                    None => "An online run (with the job's access token) shows what your organization resolves it to"
                        .to_string(),
                };
                let f = self
                    .finding(
                        Code::TSK001,
                        format!(
                            "{} floats to the newest {}@{major}; the newest version azp-preflight knows, {latest}, has \
                             a known regression: {}. {unconfirmed}",
                            self.shown(),
                            self.name(),
                            describe(&affected)
                        ),
                    )
                    .severity(Severity::Warning)
                    .remedy(remedy)
                    .data("newestKnown", latest.to_string());
                out.push(Advice { finding: advisory_data(f, &affected), edit });
            }
        }
    }

    /// TSK001 warnings for advisories about some builds only, when the version string cannot be
    /// tied to one build: two builds published it, or the version data does not know it. The
    /// tool says so instead of guessing affected or unaffected.
    /// `context` is built only when there is something to say: most references have none.
    fn unsure_build(
        &self,
        version: TaskVersion,
        advisories: &[&Advisory],
        context: &dyn Fn() -> String,
    ) -> Vec<Advice> {
        let mut out = Vec::new();
        for a in advisories {
            let Hit::Unsure { published_by } = a.assess(version) else { continue };
            let concerns = a.builds.join(", ");
            let published = match published_by.len() {
                0 => format!("{version} is not in the version data azp-preflight carries"),
                1 => format!("{version} was published by the {} build", published_by[0]),
                n => format!(
                    "{version} was published by {} builds ({})",
                    if n == 2 { "two".to_string() } else { n.to_string() },
                    published_by.join(", ")
                ),
            };
            let message = format!(
                "{}. {published}; {} ({}) concerns the {concerns} build; azp-preflight cannot tell which \
                 build this organization runs, so it does not say whether the step is affected",
                context(),
                a.id,
                a.title
            );
            let pin = a
                .last_good
                .filter(|v| !advisories.iter().any(|x| x.affects(*v)))
                .map(|v| format!(" If it is, pin `{}@{v}`.", self.yaml_name()))
                .unwrap_or_default();
            let remedy = format!(
                "Check which build the step runs: the task's log shows the version, and each build runs on its own \
                 Node handler (the {concerns} build on its Node version).{pin}{}",
                a.primary_source().map(|s| format!(" See {s}")).unwrap_or_default()
            );
            let f = self
                .finding(Code::TSK001, message)
                .severity(Severity::Warning)
                .remedy(remedy)
                .data("advisory", a.id.clone())
                .data("builds", a.builds.clone())
                .data("publishedBy", published_by.clone());
            out.push(Advice { finding: f, edit: None });
        }
        out
    }
}

fn describe(advisories: &[&Advisory]) -> String {
    advisories
        .iter()
        .map(|a| {
            let symptom = a.symptom.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
            let when = a
                .applies_when
                .as_ref()
                .and_then(|w| w.description.as_deref())
                .map(|d| format!(" It applies when {d}."))
                .unwrap_or_default();
            format!(
                "{} ({}; symptom: `{}`). Last good: {}; fixed in: {}.{when}{}",
                a.id,
                a.title,
                symptom,
                a.last_good.map(|v| v.to_string()).unwrap_or_else(|| "unknown".into()),
                a.fixed.map(|v| v.to_string()).unwrap_or_else(|| "no fix known".into()),
                a.primary_source().map(|s| format!(" See {s}")).unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join(" Also ")
}

fn advisory_data(mut f: Finding, affected: &[&Advisory]) -> Finding {
    if let Some(first) = affected.first() {
        f = f
            .data("advisory", first.id.clone())
            .data("lastGood", first.last_good.map(|v| v.to_string()))
            .data("fixed", first.fixed.map(|v| v.to_string()))
            .data("confidence", first.confidence.as_str());
    }
    f.data("advisories", affected.iter().map(|a| a.id.clone()).collect::<Vec<_>>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::tasks::advice::test_support::{codes, file, org, run};
    use crate::checks::tasks::advice::{advise, Facts};
    use crate::checks::tasks::advisories;
    use crate::checks::tasks::index;
    use crate::checks::tasks::templates::FoundRef;
    use crate::finding::Location;

    #[test]
    fn offline_pin_in_an_affected_range_is_an_error_that_unpins_when_the_fix_is_out() {
        let a = run("steps:\n- task: AzureIoTEdge@2.241.1\n", None, None);
        assert_eq!(codes(&a), [(Code::TSK001, Severity::Error)]);
        let f = &a[0].finding;
        assert!(
            f.message.contains("AZP-ADV-0001") && f.message.contains("Last good: 2.238.1; fixed in: 2.243.2"),
            "{}",
            f.message
        );
        assert_eq!(f.location, Some(Location::new("azure-pipelines.yml", 2, 9)));
        let edit = a[0].edit.as_ref().unwrap();
        assert_eq!((edit.new_value.as_str(), edit.comment.as_deref()), ("AzureIoTEdge@2", None));
    }

    #[test]
    fn offline_pin_without_a_fix_pins_the_last_good_version() {
        let a = run("steps:\n- task: AzurePowerShell@5.242.1\n", None, None);
        assert_eq!(codes(&a), [(Code::TSK001, Severity::Error)]);
        let edit = a[0].edit.as_ref().unwrap();
        assert_eq!(edit.new_value, "AzurePowerShell@5.241.5");
        assert_eq!(edit.comment.as_deref(), Some("# pinned by azp-preflight: AZP-ADV-0009, no fix known yet"));
    }

    #[test]
    fn floating_major_online_resolving_to_a_bad_version_is_the_iot_edge_case() {
        let a = run(
            "steps:\n- task: AzureIoTEdge@2\n  inputs:\n    action: Push module images\n",
            Some(&org(&["2.238.1", "2.241.1"])),
            None,
        );
        assert_eq!(codes(&a), [(Code::TSK001, Severity::Error)]);
        assert!(a[0].finding.message.contains("resolves to 2.241.1 in this organization"));
        assert!(a[0]
            .finding
            .remedy
            .contains("- task: AzureIoTEdge@2.238.1  # pinned by azp-preflight: AZP-ADV-0001, unpin at >= 2.243.2"));
        let edit = a[0].edit.as_ref().unwrap();
        assert_eq!(edit.new_value, "AzureIoTEdge@2.238.1");
        // A generic registry is not affected.
        let generic =
            "steps:\n- task: AzureIoTEdge@2\n  inputs:\n    containerregistrytype: Generic Container Registry\n";
        assert!(run(generic, Some(&org(&["2.238.1", "2.241.1"])), None).is_empty());
        // Offline the newest known version is fine: nothing to say.
        assert!(run("steps:\n- task: AzureIoTEdge@2\n", None, None).is_empty());
    }

    #[test]
    fn missing_pins_and_majors_online() {
        let a = run("steps:\n- task: AzureIoTEdge@2.999.0\n- task: AzureIoTEdge@3\n", Some(&org(&["2.238.1"])), None);
        assert_eq!(codes(&a), [(Code::TSK004, Severity::Error), (Code::TSK004, Severity::Error)]);
        let not_there = run("steps:\n- task: AzureIoTEdge@2.238.1\n", Some(&Lookup::NotInstalled), None);
        assert_eq!(codes(&not_there)[0].0, Code::TSK004);
    }

    #[test]
    fn floating_major_offline_warns_when_the_newest_known_version_is_affected() {
        let latest = index::builtin().unwrap().find("AzureIoTEdge", 2).unwrap().info.latest_version().unwrap();
        let text = advisories::tests::SAMPLE
            .replace("task = \"Sample\"", "task = \"AzureIoTEdge\"")
            .replace("11111111-2222-3333-4444-555555555555", "80f3f6a0-82a6-4a22-ba7a-e5b8c541b9b8")
            .replace(">= 2.10.0, < 2.12.0", &format!(">= {latest}"))
            .replace("fixed = \"2.12.0\"\n", "");
        let mut db = advisories::embedded().clone();
        db.merge(advisories::Advisory::parse(&text, "test").unwrap());
        let f = file("steps:\n- task: AzureIoTEdge@2\n");
        let facts = Facts { db: &db, index: index::builtin(), agent_version: None };
        let a = advise(&FoundRef::new(f, 0).unwrap(), &facts, None);
        assert_eq!(codes(&a), [(Code::TSK001, Severity::Warning)]);
        assert!(a[0].finding.message.contains("An online run"), "{}", a[0].finding.message);
        let edit = a[0].edit.as_ref().unwrap();
        assert_eq!(edit.new_value, "AzureIoTEdge@2.9.1");
        assert_eq!(edit.comment.as_deref(), Some("# pinned by azp-preflight: AZP-ADV-9001, no fix known yet"));
    }

    /// An organization advisory about the Node 20 build of NuGetCommand 2.238.x only. 2.238.1 was
    /// the Node 20 build of one commit and the Default build of the next (built-in version data).
    fn node20_only_advice(pin: &str) -> Vec<Advice> {
        let text = advisories::tests::SAMPLE
            .replace("task = \"Sample\"", "task = \"NuGetCommand\"")
            .replace("11111111-2222-3333-4444-555555555555", "333b11bd-d341-40d9-afcf-b32d5ce6f23b")
            .replace(">= 2.10.0, < 2.12.0\"]", ">= 2.238.1, < 2.238.9\"]\nbuilds = [\"Node20\"]")
            .replace("last-good = \"2.9.1\"", "last-good = \"2.238.0\"")
            .replace("fixed = \"2.12.0\"\n", "");
        let mut db = advisories::AdvisoryDb::default();
        db.merge(advisories::Advisory::parse(&text, "test").unwrap());
        let f = file(&format!("steps:\n- task: NuGetCommand@{pin}\n"));
        let facts = Facts { db: &db, index: index::builtin(), agent_version: None };
        advise(&FoundRef::new(f, 0).unwrap(), &facts, None)
    }

    #[test]
    fn a_version_two_builds_published_is_reported_as_unknown_not_guessed() {
        let a = node20_only_advice("2.238.1");
        assert_eq!(codes(&a), [(Code::TSK001, Severity::Warning)]);
        let m = &a[0].finding.message;
        assert!(
            m.contains("2.238.1 was published by two builds (Default, Node20); AZP-ADV-9001 (Sample) concerns the Node20 build; azp-preflight cannot tell which build this organization runs"),
            "{m}"
        );
        assert!(a[0].finding.remedy.contains("pin `NuGetCommand@2.238.0`"), "{}", a[0].finding.remedy);
        assert!(a[0].edit.is_none());
        // Only the Node 20 build published 2.238.2: affected. Only the Default build published 2.238.3: not.
        assert_eq!(codes(&node20_only_advice("2.238.2")), [(Code::TSK001, Severity::Error)]);
        assert!(node20_only_advice("2.238.3").is_empty());
        assert_eq!(codes(&node20_only_advice("2.238.4")), [(Code::TSK001, Severity::Error)]);
        // A version the data does not know (a hotfix, say) cannot be tied to a build either.
        let unknown = node20_only_advice("2.238.7");
        assert_eq!(codes(&unknown), [(Code::TSK001, Severity::Warning)]);
        assert!(
            unknown[0].finding.message.contains("2.238.7 is not in the version data"),
            "{}",
            unknown[0].finding.message
        );
        assert!(node20_only_advice("2.238.9").is_empty());
    }
}
