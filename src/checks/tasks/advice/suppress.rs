//! `# azp-preflight: ignore[CODE, ...]` on the task line or the step's first line.

use super::Advice;
use crate::checks::tasks::templates::FoundRef;
use crate::codes::Code;

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
pub(super) fn suppress(advice: Vec<Advice>, found: &FoundRef) -> Vec<Advice> {
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
    use super::*;
    use crate::checks::tasks::advice::test_support::{codes, run};
    use crate::codes::Severity;

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
