//! TSK003: the task says its major is deprecated; TSK012: a newer major is maintained while
//! this one's source left the tasks repository.

use super::{Advice, RefContext};
use crate::checks::tasks::reference::NameKind;
use crate::codes::Code;
use crate::sanitize::sanitize;

impl RefContext<'_> {
    /// TSK003: the task itself says the major is deprecated (its `task.json`, or the
    /// organization's copy of it). A major whose source merely left the tasks repository is
    /// not deprecated: Microsoft still documents some (`PowerShell@1`, `ArchiveFiles@1`); it
    /// gets a TSK012 note naming the newer major instead.
    pub(super) fn deprecated(&self, out: &mut Vec<Advice>) {
        let major = self.major();
        // The name is looked up only for a reference that gets a finding.
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::tasks::advice::test_support::{codes, run};
    use crate::codes::Severity;

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
}
