//! Turns each task reference into findings: known regressions (TSK001), stale pins (TSK002),
//! deprecated majors (TSK003), pins the organization lacks (TSK004), unknown tasks (TSK005),
//! end-of-life Node handlers (TSK006), unanalysable values (TSK007) and agents older than a
//! task's minimum (AGT004). Pin and unpin advice carries the exact edit `fix` applies.

use std::ops::Range;
use std::path::PathBuf;

use super::advisories::{Advisory, AdvisoryDb, Hit};
use super::index::{only_eol_node, Found, Index};
use super::reference::{self, compare_dotted, NameKind, Parsed, TaskRef, TaskVersion, VersionSpec};
use super::resolve::{Lookup, OrgTask};
use super::templates::FoundRef;
use crate::codes::Code;
use crate::finding::{Finding, Location, Severity};
use crate::report::sanitize::sanitize;

/// This tool's own task, which is not built in.
const OWN_TASK: &str = "PipelinePreflight";

/// The marker `fix` writes after a pin, and recognises when unpinning.
pub const PIN_MARKER: &str = "# pinned by azp-preflight:";

/// What to change in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub path: PathBuf,
    pub display: String,
    pub line: u32,
    /// Byte range of the task value in the file text (without a byte order mark).
    pub span: Range<usize>,
    pub old_value: String,
    pub new_value: String,
    /// The marker comment to set after the value, or `None` to remove an existing one.
    pub comment: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Advice {
    pub finding: Finding,
    pub edit: Option<Edit>,
}

/// Read-only facts for advising.
pub struct Facts<'a> {
    pub db: &'a AdvisoryDb,
    pub index: Option<&'a Index>,
    pub agent_version: Option<&'a str>,
}

/// How a reference names a task, resolved against the index.
pub struct Identity<'a> {
    pub task_ref: TaskRef,
    pub builtin: Option<Found<'a>>,
    pub task_id: Option<String>,
}

/// Parses the value and finds the task; `Err` carries the TSK007 reason.
pub fn identify<'a>(value: &str, index: Option<&'a Index>) -> Result<Identity<'a>, String> {
    let task_ref = match reference::parse(value) {
        Parsed::Ok(r) => r,
        Parsed::NotAnalysable(why) => return Err(why),
    };
    let major = task_ref.spec.major();
    let builtin = match task_ref.kind {
        NameKind::Qualified => None,
        _ => index.and_then(|i| i.find(&task_ref.name, major)),
    };
    let task_id = match task_ref.kind {
        NameKind::Guid => Some(task_ref.name.to_ascii_lowercase()),
        NameKind::Qualified => None,
        NameKind::Plain => builtin
            .map(|b| b.task.id.clone())
            .or_else(|| index.and_then(|i| i.id_for(&task_ref.name, major)).map(str::to_string)),
    };
    Ok(Identity { task_ref, builtin, task_id })
}

/// Advice for one reference. `lookup` is the organization's answer when online.
pub fn advise(found: &FoundRef, facts: &Facts<'_>, lookup: Option<&Lookup>) -> Vec<Advice> {
    advise_identified(found, facts, identify(&found.raw().value, facts.index), lookup)
}

/// As `advise`, with the reference already identified.
pub fn advise_identified(
    found: &FoundRef,
    facts: &Facts<'_>,
    identity: Result<Identity<'_>, String>,
    lookup: Option<&Lookup>,
) -> Vec<Advice> {
    let identity = match identity {
        Ok(i) => i,
        Err(why) => {
            let raw = found.raw();
            let f = Finding::new(Code::TSK007, sanitize(&why))
                .remedy(
                    "Write the task as Name@Major (`Docker@2`) or a full version (`Docker@2.240.2`). When a template \
                     parameter supplies the task, the callers' values are checked where they are written.",
                )
                .at(Location::new(found.file.display.clone(), raw.line, raw.column))
                .data("value", sanitize(raw.value.trim()));
            return suppress(vec![Advice { finding: f, edit: None }], found);
        }
    };
    let ctx = RefContext { found, facts, identity: &identity, lookup };
    suppress(ctx.advise(), found)
}

struct RefContext<'a> {
    found: &'a FoundRef,
    facts: &'a Facts<'a>,
    identity: &'a Identity<'a>,
    lookup: Option<&'a Lookup>,
}

impl RefContext<'_> {
    /// The value as written, safe for messages (only built when there is something to say).
    fn shown(&self) -> String {
        sanitize(self.found.raw().value.trim())
    }

    fn r(&self) -> &TaskRef {
        &self.identity.task_ref
    }

    fn major(&self) -> u32 {
        self.r().spec.major()
    }

    /// The task's name for messages (the built-in name for GUID references).
    fn name(&self) -> String {
        match (&self.identity.builtin, self.r().kind, self.org()) {
            (Some(b), _, _) => b.name().to_string(),
            (None, NameKind::Guid, Some(org)) => org.name.clone().unwrap_or_else(|| self.r().name.clone()),
            _ => self.r().name.clone(),
        }
    }

    /// The name to write back in YAML: as written.
    fn yaml_name(&self) -> &str {
        &self.r().name
    }

    fn org(&self) -> Option<&OrgTask> {
        match self.lookup {
            Some(Lookup::Found(t)) => Some(t),
            _ => None,
        }
    }

    fn online_failure(&self) -> Option<&str> {
        match self.lookup {
            Some(Lookup::Failed(why)) => Some(why),
            _ => None,
        }
    }

    fn finding(&self, code: Code, message: String) -> Finding {
        Finding::new(code, message)
            .at(Location::new(self.found.file.display.clone(), self.found.raw().line, self.found.raw().column))
            .data("task", sanitize(&self.r().name))
            .data("version", sanitize(&self.r().version_text))
    }

    fn advise(&self) -> Vec<Advice> {
        let mut out = Vec::new();
        let advisories: Vec<&Advisory> = self
            .facts
            .db
            .for_task(self.identity.task_id.as_deref(), &self.r().name, self.major())
            .filter(|a| a.pinnable && applies(a, &self.found.raw().inputs))
            .collect();
        self.unknown(&mut out);
        match self.r().spec {
            VersionSpec::Full(pinned) => self.pinned(pinned, &advisories, &mut out),
            VersionSpec::Major(major) => self.floating(major, &advisories, &mut out),
        }
        self.deprecated(&mut out);
        self.handlers_and_agent(&mut out);
        out
    }

    /// TSK005: not a built-in task, and the organization (when asked) does not know it either.
    fn unknown(&self, out: &mut Vec<Advice>) {
        if self.identity.builtin.is_some()
            || self.r().kind == NameKind::Qualified
            || self.org().is_some()
            || self.r().name.eq_ignore_ascii_case(OWN_TASK)
        {
            return;
        }
        let Some(index) = self.facts.index else { return };
        let name = &self.r().name;
        let message = if self.r().kind == NameKind::Guid {
            format!("{}: no built-in task has the GUID {}", self.shown(), sanitize(name))
        } else if let Some(task) = index.find_any_major(name) {
            let majors: Vec<&str> = task.majors.keys().map(String::as_str).collect();
            format!(
                "{}: the built-in task {} has no major {} (known majors: {})",
                self.shown(),
                sanitize(name),
                self.major(),
                majors.join(", ")
            )
        } else {
            let hint = index.suggest(name).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
            format!("{}: `{}` is not a built-in task{hint}", self.shown(), sanitize(name))
        };
        out.push(Advice {
            finding: self.finding(Code::TSK005, message).remedy(
                "Check the name and major (names are not case-sensitive). A Marketplace or organization task is \
                 better written fully qualified (`publisher.extension.contribution.Task@1`), so a built-in task with \
                 the same name cannot take its place.",
            ),
            edit: None,
        });
    }

    fn pinned(&self, pinned: TaskVersion, advisories: &[&Advisory], out: &mut Vec<Advice>) {
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

    /// TSK002: the pin is the workaround for advisories whose fix is out.
    fn stale_pin(&self, pinned: TaskVersion, advisories: &[&Advisory], out: &mut Vec<Advice>) {
        let marked = pin_marker_ids(self.found);
        let worked_around: Vec<&Advisory> = advisories
            .iter()
            .copied()
            .filter(|a| a.last_good == Some(pinned) || marked.iter().any(|id| id == &a.id))
            .collect();
        if worked_around.is_empty() || worked_around.iter().any(|a| a.fixed.is_none_or(|f| f <= pinned)) {
            return;
        }
        let Some(needed) = worked_around.iter().filter_map(|a| a.fixed).max() else { return };
        let ids = ids(&worked_around);
        let evidence = match (self.org(), self.online_failure()) {
            // The organization has no version at all: TSK004 says so.
            _ if self.lookup == Some(&Lookup::NotInstalled) => return,
            (Some(org), _) => match org.resolve_major(pinned.major) {
                Some(current)
                    if current.version >= needed && !advisories.iter().any(|a| a.affects(current.version)) =>
                {
                    format!("your organization now serves {} for {}@{}", current.version, self.name(), pinned.major)
                }
                // The organization still serves an affected or older version: the pin is needed.
                _ => return,
            },
            (None, Some(why)) => format!(
                "whether your organization serves it yet could not be checked ({}); confirm before removing the pin",
                sanitize(why)
            ),
            (None, None) => {
                "an online run (with the job's access token) confirms that your organization serves it".to_string()
            }
        };
        let suggestion = format!("- task: {}@{}", self.yaml_name(), pinned.major);
        let finding = self
            .finding(
                Code::TSK002,
                format!(
                    "{} pins the last good version for {ids}, and the fix ({needed}) has been released; {evidence}. \
                     The pin now holds the task back from later fixes",
                    self.shown()
                ),
            )
            .remedy(format!("Remove the pin:\n  {suggestion}\n`azp-preflight fix` makes this change."))
            .data("advisories", worked_around.iter().map(|a| a.id.clone()).collect::<Vec<_>>())
            .data("fixed", needed.to_string())
            .data("suggestion", suggestion.clone());
        out.push(Advice { finding, edit: self.edit(&self.float_value(), None) });
    }

    fn floating(&self, major: u32, advisories: &[&Advisory], out: &mut Vec<Advice>) {
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

    /// The remedy text and edit for a reference that runs an affected version: unpin when
    /// the fix is out (pinned references only), else pin the last good version.
    fn repair(&self, affected: &[&Advisory], all: &[&Advisory], pinned: bool) -> (String, Option<Edit>) {
        let fixed: Option<TaskVersion> = if affected.iter().all(|a| a.fixed.is_some()) {
            affected.iter().filter_map(|a| a.fixed).max()
        } else {
            None
        };
        let unaffected = |v: TaskVersion| !all.iter().any(|a| a.affects(v));
        if pinned {
            if let Some(fix) = fixed {
                let current = match self.org() {
                    Some(org) => org.resolve_major(self.major()).map(|v| v.version),
                    None => self.identity.builtin.and_then(|b| b.info.latest_version()),
                };
                if current.is_some_and(|c| c >= fix && unaffected(c)) {
                    let float = self.float_value();
                    let remedy = format!(
                        "The fix ({fix}) is released{}: remove the pin:\n  - task: {float}\n`azp-preflight fix` makes this change.",
                        if self.org().is_some() { " and your organization serves it" } else { "" }
                    );
                    return (remedy, self.edit(&float, None));
                }
            }
        }
        let target = self.pin_target(affected, all);
        let ids = ids(affected);
        match target {
            Some(good) => {
                let until = match fixed {
                    Some(fix) => format!("unpin at >= {fix}"),
                    None => "no fix known yet".to_string(),
                };
                let comment = format!("{PIN_MARKER} {ids}, {until}");
                let value = format!("{}@{good}", self.yaml_name());
                let remedy = format!(
                    "Pin the last good version until the fix reaches your organization:\n  - task: {value}  {comment}\n\
                     `azp-preflight fix` makes this change.{}",
                    workaround_hint(affected)
                );
                (remedy, self.edit(&value, Some(comment)))
            }
            None => {
                let text = affected
                    .iter()
                    .filter_map(|a| a.workaround.as_deref())
                    .map(|w| w.split_whitespace().collect::<Vec<_>>().join(" "))
                    .collect::<Vec<_>>()
                    .join(" ");
                let remedy = match fixed {
                    Some(fix) => format!(
                        "Use {fix} or later: float the major (`- task: {}`) once your organization serves it. {text}",
                        self.float_value()
                    ),
                    None => format!("No last good version is known. {text}"),
                };
                (remedy.trim().to_string(), None)
            }
        }
    }

    /// The version to pin: a last good version no advisory affects, preferring one the
    /// organization has; else the newest unaffected version the organization has below the
    /// current one.
    fn pin_target(&self, affected: &[&Advisory], all: &[&Advisory]) -> Option<TaskVersion> {
        let unaffected = |v: &TaskVersion| !all.iter().any(|a| a.affects(*v));
        let mut goods: Vec<TaskVersion> = affected.iter().filter_map(|a| a.last_good).filter(unaffected).collect();
        goods.sort_unstable();
        match self.org() {
            Some(org) => {
                let current = org.resolve_major(self.major()).map(|v| v.version);
                goods.iter().rev().copied().find(|v| org.has(*v)).or_else(|| {
                    org.versions
                        .iter()
                        .map(|v| v.version)
                        .filter(|v| v.major == self.major() && !org.get(*v).is_some_and(|o| o.is_test))
                        .filter(|v| current.is_none_or(|c| *v < c) && unaffected(v))
                        .max()
                })
            }
            None => goods.last().copied(),
        }
    }

    fn float_value(&self) -> String {
        format!("{}@{}", self.yaml_name(), self.major())
    }

    fn edit(&self, new_value: &str, comment: Option<String>) -> Option<Edit> {
        let raw = self.found.raw();
        let span = raw.edit_span.clone()?;
        Some(Edit {
            path: self.found.file.path.clone(),
            display: self.found.file.display.clone(),
            line: raw.line,
            span,
            old_value: raw.value.clone(),
            new_value: new_value.to_string(),
            comment,
        })
    }

    /// TSK003: the task itself says the major is deprecated (its `task.json`, or the
    /// organization's copy of it). A major whose source merely left the tasks repository is
    /// not deprecated: Microsoft still documents some (`PowerShell@1`, `ArchiveFiles@1`); it
    /// gets a TSK012 note naming the newer major instead.
    fn deprecated(&self, out: &mut Vec<Advice>) {
        let major = self.major();
        let (mut message, removal) = match self.identity.builtin {
            Some(b) if b.info.deprecated => {
                let why = b.info.message.as_deref().map(|m| format!(": {}", sanitize(m.trim()))).unwrap_or_default();
                (format!("{}@{major} is deprecated{why}", self.name()), b.info.removal_date.clone())
            }
            Some(b)
                if !b.info.in_repo
                    && !self.org().and_then(|o| o.resolve_major(major)).is_some_and(|v| v.deprecated) =>
            {
                self.newer_major(out);
                return;
            }
            _ => match self.org().and_then(|o| o.resolve_major(major)) {
                Some(v) if v.deprecated => {
                    (format!("{}@{major} is marked deprecated in this organization", self.name()), None)
                }
                _ => return,
            },
        };
        let name = self.name();
        if let Some(date) = &removal {
            message.push_str(&format!(" (removal date {date}; from then on it may no longer be available)"));
        }
        // The successor major may carry another name (NodeTool@0 became UseNode@1).
        let successor = self.identity.builtin.and_then(|b| {
            let next = self.facts.index.and_then(|i| i.successor(b.task, major))?;
            let name = b.task.majors.get(&next.to_string()).and_then(|m| m.name.clone());
            let name = match (self.r().kind, name) {
                (NameKind::Guid, _) => self.yaml_name().to_string(),
                (_, Some(n)) => n,
                (_, None) => self.yaml_name().to_string(),
            };
            Some(format!("{name}@{next}"))
        });
        let remedy = match &successor {
            Some(next) => format!(
                "Move to `{next}` and check its inputs in the task's documentation; a new major can change inputs \
                 and behaviour."
            ),
            None => "Replace the task with its documented successor, or a script step doing the same work.".to_string(),
        };
        if !self.shown().eq_ignore_ascii_case(&format!("{name}@{major}")) {
            message.push_str(&format!(" (referenced as `{}`)", self.shown()));
        }
        let mut f = self.finding(Code::TSK003, message).remedy(remedy);
        if let Some(date) = removal {
            f = f.data("removalDate", date);
        }
        if let Some(next) = successor {
            f = f.data("replacement", next);
        }
        out.push(Advice { finding: f, edit: None });
    }

    /// TSK012: a newer major of the same task is maintained; this one's source is no longer
    /// in the tasks repository. A note, never a warning: the major is not deprecated.
    fn newer_major(&self, out: &mut Vec<Advice>) {
        let Some(b) = self.identity.builtin else { return };
        let major = self.major();
        let Some(next) = self.facts.index.and_then(|i| i.successor(b.task, major)) else { return };
        let next_name = match (self.r().kind, b.task.majors.get(&next.to_string()).and_then(|m| m.name.clone())) {
            (NameKind::Guid, _) | (_, None) => self.yaml_name().to_string(),
            (_, Some(n)) => n,
        };
        let name = self.name();
        let f = self
            .finding(
                Code::TSK012,
                format!(
                    "{name}@{major} is not the newest major: `{next_name}@{next}` is newer. {name}@{major} is not \
                     marked deprecated; its source is no longer in the built-in tasks repository, so it gets no new \
                     fixes there"
                ),
            )
            .remedy(format!(
                "Nothing is required. When you next touch this step, consider `{next_name}@{next}` and check its \
                 inputs in the task's documentation; a new major can change inputs and behaviour."
            ))
            .data("newer", format!("{next_name}@{next}"));
        out.push(Advice { finding: f, edit: None });
    }

    /// TSK006 and AGT004, from what runs: the organization's version when known, else the
    /// newest built-in version of the major.
    fn handlers_and_agent(&self, out: &mut Vec<Advice>) {
        let major = self.major();
        let org_version = self.org().and_then(|o| match self.r().spec {
            VersionSpec::Full(v) => o.get(v),
            VersionSpec::Major(m) => o.resolve_major(m),
        });
        if self.org().is_some() && org_version.is_none() {
            // The organization lacks it (TSK004): nothing runs, so nothing to say about it.
            return;
        }
        let (handlers, minimum): (Option<&[String]>, Option<&str>) = match (org_version, self.identity.builtin) {
            (Some(v), _) => (Some(&v.handlers), v.minimum_agent_version.as_deref()),
            (None, Some(b)) => (b.info.handlers.as_deref(), b.info.minimum_agent_version.as_deref()),
            (None, None) => return,
        };
        let eol = handlers.filter(|h| only_eol_node(h));
        let old_agent = match (self.facts.agent_version, minimum) {
            (Some(agent), Some(min)) => compare_dotted(agent, min) == Some(std::cmp::Ordering::Less),
            _ => false,
        };
        if eol.is_none() && !old_agent {
            return;
        }
        let version = match (org_version, self.identity.builtin) {
            (Some(v), _) => v.version.to_string(),
            (None, Some(b)) => b.info.latest.clone().unwrap_or_else(|| major.to_string()),
            (None, None) => major.to_string(),
        };
        let name = self.name();
        if let Some(h) = eol {
            out.push(Advice {
                finding: self
                    .finding(
                        Code::TSK006,
                        format!(
                            "{}: {name} {version} runs only on end-of-life Node handlers ({}); agents warn about it \
                             and will refuse it once end-of-life Node versions are blocked",
                            self.shown(),
                            h.join(", ")
                        ),
                    )
                    .remedy(
                        "Move to a major of the task with a Node 20 or Node 24 handler. For a Marketplace task, ask \
                         the publisher for an update or replace the task.",
                    )
                    .data("handlers", h.to_vec()),
                edit: None,
            });
        }
        if let (Some(agent), Some(min), true) = (self.facts.agent_version, minimum, old_agent) {
            {
                out.push(Advice {
                    finding: self
                        .finding(
                            Code::AGT004,
                            format!(
                                "agent {} is older than {name} {version}'s minimumAgentVersion {} ({})",
                                sanitize(agent),
                                sanitize(min),
                                self.shown()
                            ),
                        )
                        .remedy(
                            "Update the agents (Organization settings > Agent pools > pool > Agents > Update all \
                             agents), or rebuild agent images with a current agent.",
                        )
                        .data("agentVersion", sanitize(agent))
                        .data("minimumAgentVersion", sanitize(min)),
                    edit: None,
                });
            }
        }
    }
}

/// Whether an advisory narrowed to some inputs can apply to a step: only a literal value
/// that differs rules it out.
fn applies(advisory: &Advisory, inputs: &[(String, String)]) -> bool {
    let Some(when) = &advisory.applies_when else { return true };
    when.inputs.iter().all(|(name, expected)| match inputs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
        Some((_, value)) if !reference::has_expression(value) => value.trim().eq_ignore_ascii_case(expected.trim()),
        _ => true,
    })
}

fn ids(advisories: &[&Advisory]) -> String {
    advisories.iter().map(|a| a.id.as_str()).collect::<Vec<_>>().join(", ")
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

fn workaround_hint(advisories: &[&Advisory]) -> String {
    match advisories.iter().find_map(|a| a.workaround.as_deref()) {
        Some(w) => format!("\nWorkaround notes: {}", w.split_whitespace().collect::<Vec<_>>().join(" ")),
        None => String::new(),
    }
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

/// The advisory ids named by a `# pinned by azp-preflight: ...` comment on the task line.
pub fn pin_marker_ids(found: &FoundRef) -> Vec<String> {
    let lines = found.file.lines();
    let line = lines.line(found.raw().line);
    let Some(at) = line.find(PIN_MARKER) else { return Vec::new() };
    line[at + PIN_MARKER.len()..]
        .split([',', ' '])
        .map(str::trim)
        .filter(|w| super::advisories::valid_id(w))
        .map(str::to_string)
        .collect()
}

/// Codes listed in `# azp-preflight: ignore[CODE, ...]` on a line.
pub fn ignored_codes(line: &str) -> Vec<Code> {
    let mut codes = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("azp-preflight: ignore[") {
        let after = &rest[at + "azp-preflight: ignore[".len()..];
        let Some(end) = after.find(']') else { break };
        codes.extend(after[..end].split(',').filter_map(Code::parse));
        rest = &after[end..];
    }
    codes
}

/// Drops findings suppressed on the task line or the step's first line.
fn suppress(advice: Vec<Advice>, found: &FoundRef) -> Vec<Advice> {
    if advice.is_empty() {
        return advice;
    }
    let lines = found.file.lines();
    let raw = found.raw();
    let mut ignored = ignored_codes(lines.line(raw.line));
    if raw.step_line != raw.line {
        ignored.extend(ignored_codes(lines.line(raw.step_line)));
    }
    if ignored.is_empty() {
        return advice;
    }
    advice.into_iter().filter(|a| !ignored.contains(&a.finding.code)).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::checks::tasks::advisories;
    use crate::checks::tasks::index;
    use crate::checks::tasks::resolve::parse_task_list;
    use crate::checks::tasks::templates::ScannedFile;

    fn file(text: &str) -> Arc<ScannedFile> {
        Arc::new(ScannedFile::from_text(
            PathBuf::from("/src/azure-pipelines.yml"),
            "azure-pipelines.yml".into(),
            text.into(),
            false,
            None,
        ))
    }

    fn run(text: &str, lookup: Option<&Lookup>, agent: Option<&str>) -> Vec<Advice> {
        let f = file(text);
        let facts = Facts { db: advisories::embedded(), index: index::builtin(), agent_version: agent };
        f.scanned
            .references
            .iter()
            .enumerate()
            .flat_map(|(i, _)| advise(&FoundRef::new(f.clone(), i).unwrap(), &facts, lookup))
            .collect()
    }

    fn codes(advice: &[Advice]) -> Vec<(Code, Severity)> {
        advice.iter().map(|a| (a.finding.code, a.finding.severity)).collect()
    }

    fn org(versions: &[&str]) -> Lookup {
        let defs: Vec<String> = versions
            .iter()
            .map(|v| {
                let p: Vec<&str> = v.split('.').collect();
                format!(
                    r#"{{"name":"AzureIoTEdge","version":{{"major":{},"minor":{},"patch":{}}},"execution":{{"Node20_1":{{}}}},"minimumAgentVersion":"2.144.0"}}"#,
                    p[0], p[1], p[2]
                )
            })
            .collect();
        Lookup::Found(parse_task_list(format!(r#"{{"value":[{}]}}"#, defs.join(",")).as_bytes()).unwrap())
    }

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
    fn stale_pin_offline_and_online() {
        let text =
            "steps:\n- task: AzureIoTEdge@2.238.1  # pinned by azp-preflight: AZP-ADV-0001, unpin at >= 2.243.2\n";
        let a = run(text, None, None);
        assert_eq!(codes(&a), [(Code::TSK002, Severity::Warning)]);
        assert!(a[0].finding.message.contains("online run"), "{}", a[0].finding.message);
        assert_eq!(a[0].edit.as_ref().unwrap().new_value, "AzureIoTEdge@2");
        // Online: still needed while the organization serves an affected version.
        assert!(run(text, Some(&org(&["2.238.1", "2.241.1"])), None).is_empty());
        let fixed = run(text, Some(&org(&["2.238.1", "2.241.1", "2.243.3"])), None);
        assert_eq!(codes(&fixed), [(Code::TSK002, Severity::Warning)]);
        assert!(fixed[0].finding.message.contains("now serves 2.243.3"));
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
    fn unknown_deprecated_eol_and_agent() {
        let a = run(
            "steps:\n- task: AzureIotEgde@2\n- task: NuGetAuthenticate@0\n- task: PowerShell@2\n- task: ${{ parameters.t }}\n- task: publisher.ext.contrib.Task@1\n",
            None,
            Some("2.100.0"),
        );
        let got = codes(&a);
        assert_eq!(
            got,
            [
                (Code::TSK005, Severity::Note),
                (Code::TSK003, Severity::Warning),
                (Code::TSK006, Severity::Warning),
                (Code::AGT004, Severity::Warning),
                (Code::AGT004, Severity::Warning),
                (Code::TSK007, Severity::Note)
            ]
        );
        assert!(a[0].finding.message.contains("did you mean `AzureIoTEdge`"), "{}", a[0].finding.message);
        assert!(a[1].finding.message.contains("removal date 2024-01-31"), "{}", a[1].finding.message);
        assert!(a[1].finding.remedy.contains("NuGetAuthenticate@1"));
    }

    #[test]
    fn a_major_whose_source_left_the_repository_is_not_called_deprecated() {
        // Neither carries `deprecated` in its task.json; both are still documented.
        let a = run("steps:\n- task: PowerShell@1\n- task: ArchiveFiles@1\n- task: PowerShell@2\n", None, None);
        assert_eq!(codes(&a), [(Code::TSK012, Severity::Note), (Code::TSK012, Severity::Note)]);
        assert!(a[0].finding.message.contains("`PowerShell@2` is newer"), "{}", a[0].finding.message);
        assert!(!a[0].finding.message.contains("is deprecated"), "{}", a[0].finding.message);
        assert_eq!(a[1].finding.data["newer"], "ArchiveFiles@2");
        // A major the task itself deprecates is still TSK003.
        let d = run("steps:\n- task: AzureCLI@1\n- task: Docker@0\n", None, None);
        assert!(d.iter().filter(|a| a.finding.code == Code::TSK003).count() == 2, "{:?}", codes(&d));
        let ignored = run("steps:\n- task: PowerShell@1  # azp-preflight: ignore[TSK012]\n", None, None);
        assert!(ignored.is_empty());
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

    #[test]
    fn guid_references_and_suppressions() {
        let a = run("steps:\n- task: 333b11bd-d341-40d9-afcf-b32d5ce6f23b@2.244.0\n", None, None);
        assert_eq!(codes(&a), [(Code::TSK001, Severity::Error)]);
        assert!(a[0].finding.message.contains("AZP-ADV-0002"));
        assert_eq!(a[0].edit.as_ref().unwrap().new_value, "333b11bd-d341-40d9-afcf-b32d5ce6f23b@2");
        let ignored = run("steps:\n- task: NuGetCommand@2.244.0  # azp-preflight: ignore[TSK001]\n", None, None);
        assert!(ignored.is_empty());
        let on_step = run(
            "steps:\n- ${{ if true }}:  # azp-preflight: ignore[TSK003, TSK006]\n    task: NuGetAuthenticate@0\n",
            None,
            None,
        );
        assert!(on_step.is_empty(), "{:?}", codes(&on_step));
        assert_eq!(ignored_codes("x # azp-preflight: ignore[TSK001,tsk002] y"), [Code::TSK001, Code::TSK002]);
    }
}
