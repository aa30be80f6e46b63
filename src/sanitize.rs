//! Text that comes from outside (server bodies, YAML content, environment values) is made
//! safe before it reaches a log: logging-command prefixes are broken up so the agent cannot
//! execute them and control characters are dropped.
//!
//! Nothing here cuts text: a cut can slice a secret so that what is left is no longer a
//! registered value. Long untrusted text is quoted with `Redactor::excerpt`, which redacts
//! before it cuts.
//!
//! It is also where "inert" is defined for the whole tool: the output writer (`output`) makes
//! every line it prints safe with the same functions. A small module of its own that depends
//! on nothing, so that secrets, the HTTP client, the Azure clients, the checks and the
//! renderers can all use it without depending on one another.

/// Sanitizes one untrusted value for inclusion in a message (single line). It does not
/// shorten: quote free text from a server with `Redactor::excerpt` / `Response::excerpt`.
pub fn sanitize(text: &str) -> String {
    let single_line: String = text.chars().map(|c| if c == '\n' || c == '\r' || c == '\t' { ' ' } else { c }).collect();
    neutralize_commands(&strip_controls(&single_line))
}

/// Makes `##vso[` and `##[` inert wherever they appear, keeping the text readable.
pub fn neutralize_commands(text: &str) -> String {
    if !text.contains("##") {
        return text.to_string();
    }
    // Replacing can create a new `##` only at a seam of `#` runs; repeat until stable
    // (`###vso[` → `## #vso[` would otherwise keep a prefix).
    let mut out = text.to_string();
    while out.contains("##vso[") || out.contains("##[") {
        out = out.replace("##vso[", "# #vso[").replace("##[", "# #[");
    }
    out
}

/// Whether a character is invisible and could hide a command prefix from a reader while
/// another reader skips it (soft hyphen, zero-width marks, direction marks, BOM).
pub(crate) fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}')
}

/// Drops control characters except newline and tab, and invisible format characters.
pub fn strip_controls(text: &str) -> String {
    text.chars().filter(|c| (!c.is_control() || *c == '\n' || *c == '\t') && !is_invisible_format(*c)).collect()
}

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
