//! TSK005: a task that is neither built in nor known to the organization.

use super::{Advice, RefContext, OWN_TASK};
use crate::checks::tasks::reference::NameKind;
use crate::codes::Code;
use crate::sanitize::sanitize;

impl RefContext<'_> {
    /// TSK005: not a built-in task, and the organization (when asked) does not know it either.
    pub(super) fn unknown(&self, out: &mut Vec<Advice>) {
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
}
