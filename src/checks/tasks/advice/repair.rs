//! The fix for a reference that runs an affected version, as advice and as the edit `fix`
//! applies: unpin once the fix is out, else pin the last good version with a marker comment.

use super::{ids, Edit, RefContext, PIN_MARKER};
use crate::checks::tasks::advisories::Advisory;
use crate::checks::tasks::reference::TaskVersion;

impl RefContext<'_> {
    /// The remedy text and edit for a reference that runs an affected version: unpin when
    /// the fix is out (pinned references only), else pin the last good version.
    pub(super) fn repair(&self, affected: &[&Advisory], all: &[&Advisory], pinned: bool) -> (String, Option<Edit>) {
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

    pub(super) fn float_value(&self) -> String {
        format!("{}@{}", self.yaml_name(), self.major())
    }

    pub(super) fn edit(&self, new_value: &str, comment: Option<String>) -> Option<Edit> {
        let raw = self.found.raw();
        let span = raw.edit_span.clone()?;
        Some(Edit {
            path: self.found.file.path.clone(),
            display: self.found.file.display.clone(),
            line: raw.line,
            span,
            old_value: self.found.value().to_string(),
            new_value: new_value.to_string(),
            comment,
        })
    }
}

fn workaround_hint(advisories: &[&Advisory]) -> String {
    match advisories.iter().find_map(|a| a.workaround.as_deref()) {
        Some(w) => format!("\nWorkaround notes: {}", w.split_whitespace().collect::<Vec<_>>().join(" ")),
        None => String::new(),
    }
}
