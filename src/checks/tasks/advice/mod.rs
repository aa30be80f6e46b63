//! Turns each task reference into findings: known regressions (TSK001), stale pins (TSK002),
//! deprecated majors (TSK003), pins the organization lacks (TSK004), unknown tasks (TSK005),
//! end-of-life Node handlers (TSK006), unanalysable values (TSK007) and agents older than a
//! task's minimum (AGT004). Pin and unpin advice carries the exact edit `fix` applies.
//!
//! One file per rule: `regressions` (TSK001, and TSK004 for versions the organization lacks),
//! `stale_pin` (TSK002), `repair` (the pin or unpin edit), `deprecation` (TSK003, TSK012),
//! `unknown_task` (TSK005), `node_handlers` (TSK006), `agent_version` (AGT004: the agent is
//! older than the task's minimum; it needs the task's data, so the tasks check emits it) and
//! `suppress` (`# azp-preflight: ignore[...]`). This file identifies the reference and runs them.

mod agent_version;
mod deprecation;
mod node_handlers;
mod regressions;
mod repair;
mod stale_pin;
mod suppress;
#[cfg(test)]
mod test_support;
mod unknown_task;

pub use stale_pin::pin_marker_ids;
pub use suppress::ignored_codes;

use std::ops::Range;
use std::path::PathBuf;

use super::advisories::{Advisory, AdvisoryDb};
use super::index::{Found, Index};
use super::reference::{self, NameKind, Parsed, TaskRef, VersionSpec};
use super::resolve::{Lookup, OrgTask};
use super::templates::FoundRef;
use crate::codes::Code;
use crate::finding::{Finding, Location};
use crate::sanitize::sanitize;
use suppress::suppress;

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
    advise_identified(found, facts, identify(found.value(), facts.index), lookup)
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
                .data("value", sanitize(found.value().trim()));
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
        sanitize(self.found.value().trim())
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
            .filter(|a| a.pinnable && applies(a, self.found))
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

    /// TSK006 and AGT004, from what runs: the organization's version when known, else the
    /// newest built-in version of the major.
    fn handlers_and_agent(&self, out: &mut Vec<Advice>) {
        let Some(runs) = self.what_runs() else { return };
        self.end_of_life_node(&runs, out);
        self.agent_older_than_minimum(&runs, out);
    }

    /// The handlers, minimum agent version and version of what the reference runs; `None`
    /// when nothing is known to run.
    fn what_runs(&self) -> Option<Runs<'_>> {
        let major = self.major();
        let org_version = self.org().and_then(|o| match self.r().spec {
            VersionSpec::Full(v) => o.get(v),
            VersionSpec::Major(m) => o.resolve_major(m),
        });
        if self.org().is_some() && org_version.is_none() {
            // The organization lacks it (TSK004): nothing runs, so nothing to say about it.
            return None;
        }
        let (handlers, minimum): (Option<&[String]>, Option<&str>) = match (org_version, self.identity.builtin) {
            (Some(v), _) => (Some(&v.handlers), v.minimum_agent_version.as_deref()),
            (None, Some(b)) => (b.info.handlers.as_deref(), b.info.minimum_agent_version.as_deref()),
            (None, None) => return None,
        };
        let version = match (org_version, self.identity.builtin) {
            (Some(v), _) => v.version.to_string(),
            (None, Some(b)) => b.info.latest.clone().unwrap_or_else(|| major.to_string()),
            (None, None) => major.to_string(),
        };
        Some(Runs { version, handlers, minimum })
    }
}

/// What a reference runs, for the rules about where it runs (TSK006, AGT004).
struct Runs<'a> {
    /// The version, for messages.
    version: String,
    handlers: Option<&'a [String]>,
    minimum: Option<&'a str>,
}

/// Whether an advisory narrowed to some inputs can apply to a step: only a literal value
/// that differs rules it out.
fn applies(advisory: &Advisory, found: &FoundRef) -> bool {
    let Some(when) = &advisory.applies_when else { return true };
    when.inputs.iter().all(|(name, expected)| match found.inputs().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
        Some((_, value)) if !reference::has_expression(value) => value.trim().eq_ignore_ascii_case(expected.trim()),
        _ => true,
    })
}

fn ids(advisories: &[&Advisory]) -> String {
    advisories.iter().map(|a| a.id.as_str()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::tasks::advice::test_support::{codes, run};
    use crate::codes::Severity;

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
}
