//! Text that comes from outside (server bodies, YAML content, environment values) is made
//! safe before it reaches a log: logging-command prefixes are broken up so the agent cannot
//! execute them and control characters are dropped.
//!
//! Nothing here cuts text: a cut can slice a secret so that what is left is no longer a
//! registered value. Long untrusted text is quoted with `Redactor::excerpt`, which redacts
//! before it cuts.

/// Sanitizes one untrusted value for inclusion in a message (single line). It does not
/// shorten: quote free text from a server with `Redactor::excerpt` / `Response::excerpt`.
pub fn sanitize(text: &str) -> String {
    let single_line: String = text.chars().map(|c| if c == '\n' || c == '\r' || c == '\t' { ' ' } else { c }).collect();
    neutralize_commands(&strip_controls(&single_line))
}

// One definition of "inert" for the whole tool: the output writer's.
pub use crate::output::{neutralize_commands, strip_controls};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutralizes_commands_and_controls_without_cutting() {
        assert_eq!(
            sanitize("a\x1b[31mred\x07 ##vso[task.complete result=Succeeded]x ##[error]y"),
            "a[31mred # #vso[task.complete result=Succeeded]x # #[error]y"
        );
        assert_eq!(sanitize("two\nlines"), "two lines");
        let long = "é".repeat(400);
        assert_eq!(sanitize(&long), long, "cutting is the redacting excerpt's job");
        assert!(!neutralize_commands("####vso[x").contains("##vso["));
        assert_eq!(sanitize("#\u{00AD}#vso[task.complete]"), "# #vso[task.complete]");
        assert_eq!(sanitize("##\u{200B}vso[x"), "# #vso[x");
    }
}
