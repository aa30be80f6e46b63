//! TSK002: a pin that worked around an advisory whose fix is now out holds the task back.

use super::{ids, Advice, RefContext, PIN_MARKER};
use crate::checks::tasks::advisories::Advisory;
use crate::checks::tasks::reference::TaskVersion;
use crate::checks::tasks::resolve::Lookup;
use crate::checks::tasks::templates::FoundRef;
use crate::codes::Code;
use crate::sanitize::sanitize;

impl RefContext<'_> {
    /// TSK002: the pin is the workaround for advisories whose fix is out.
    pub(super) fn stale_pin(&self, pinned: TaskVersion, advisories: &[&Advisory], out: &mut Vec<Advice>) {
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
}

/// The advisory ids named by a `# pinned by azp-preflight: ...` comment on the task line.
pub fn pin_marker_ids(found: &FoundRef) -> Vec<String> {
    let lines = found.file.lines();
    let line = lines.line(found.raw().line);
    let Some(at) = line.find(PIN_MARKER) else { return Vec::new() };
    line[at + PIN_MARKER.len()..]
        .split([',', ' '])
        .map(str::trim)
        .filter(|w| crate::checks::tasks::advisories::valid_id(w))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::tasks::advice::test_support::{codes, org, run};
    use crate::codes::Severity;

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
}
