//! Terminal output: one line per target, one `file:line:col: severity[CODE] message` line per
//! finding with its remedy below. Colour only when asked for (`Style`).

use std::io::{self, Write};

use super::{counts_phrase, place, Report};
use crate::check::Status;
use crate::codes::Severity;

#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// Colour when writing to a terminal, unless `NO_COLOR` is set; `CLICOLOR_FORCE` forces it.
pub fn wants_color(env: &crate::env::AgentEnv, is_terminal: bool) -> bool {
    if env.get("NO_COLOR").is_some() {
        return false;
    }
    env.get("CLICOLOR_FORCE").is_some_and(|v| v != "0") || is_terminal
}

pub fn render(report: &Report, style: Style, exit_code: u8, out: &mut impl Write) -> io::Result<()> {
    let clean = |s: &str| crate::sanitize::strip_controls(s);
    writeln!(
        out,
        "azp-preflight {} — {} targets in {:.1} s",
        report.version,
        report.checks.len(),
        report.duration.as_secs_f64()
    )?;
    if let Some(db) = report.advisory_db_used() {
        writeln!(out, "advisory database: {}", clean(&db.describe()))?;
    }
    writeln!(out)?;
    let width = report.checks.iter().map(|r| r.target.chars().count()).max().unwrap_or(0).min(60);
    for r in &report.checks {
        let mark = match r.status {
            Status::Pass => style.paint("32", "✔"),
            Status::Warn => style.paint("33", "⚠"),
            Status::Fail => style.paint("31", "✖"),
            Status::Skip => style.paint("2", "-"),
        };
        let detail = match &r.reason {
            Some(reason) => format!("skipped: {reason}"),
            None => r.proven.join(", "),
        };
        writeln!(out, "{mark} {:<8}  {:<width$}   {}", r.check.as_str(), clean(&r.target), clean(&detail))?;
        for f in &r.findings {
            let sev = match f.severity {
                Severity::Error => style.paint("1;31", "error"),
                Severity::Warning => style.paint("1;33", "warning"),
                Severity::Note => style.paint("1;36", "note"),
            };
            let located = f.location.is_some();
            let prefix = if located { place(r, f) } else { clean(&r.target) };
            writeln!(out, "  {prefix}: {sev}[{}] {}", f.code, clean(&f.message))?;
            if !f.remedy.is_empty() {
                // Continuation lines of a multi-line remedy (YAML to paste) stay under the `= fix:`.
                writeln!(out, "    = fix: {}", clean(&f.remedy).replace('\n', "\n           "))?;
            }
        }
    }
    writeln!(out, "\n{} — exit {exit_code}", counts_phrase(report.counts()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::FailOn;
    use crate::env::AgentEnv;
    use crate::report::fixtures;

    #[test]
    fn plain_rendering() {
        let mut buf = Vec::new();
        render(&fixtures::report(FailOn::Error), Style { color: false }, 1, &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(text.contains("  pipes/a;b]c%.yml:13:11: error[TSK001] AzureIoTEdge@2 resolves to 2.241.1"));
        assert!(text.contains("    = fix: Pin `- task: AzureIoTEdge@2.238.1`"));
        assert!(text.contains("✔ agent     local"));
        assert!(text.contains(" s\nadvisory database: embedded, 2026-11-21, 16 advisories\n\n"), "{text}");
        assert!(text.ends_with("2 errors, 1 warning, 1 note — exit 1\n"));
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn colour_honours_no_color() {
        assert!(!wants_color(&AgentEnv::from_pairs([("NO_COLOR", "1")]), true));
        assert!(wants_color(&AgentEnv::default(), true));
        assert!(!wants_color(&AgentEnv::default(), false));
        assert!(wants_color(&AgentEnv::from_pairs([("CLICOLOR_FORCE", "1")]), false));
        let mut buf = Vec::new();
        render(&fixtures::report(FailOn::Error), Style { color: true }, 1, &mut buf).unwrap();
        assert!(String::from_utf8(buf).unwrap().contains("\x1b[1;31merror\x1b[0m"));
    }
}
