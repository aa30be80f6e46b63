//! The markdown summary uploaded with `task.uploadsummary` (the run's Extensions tab):
//! a banner, every target with its status, and each finding with its remedy.

use std::io::{self, Write};

use super::{counts_phrase, Report, RunResult};
use crate::check::Status;
use crate::codes::Severity;

/// Keeps table cells intact: pipes and newlines would break the row.
fn cell(text: &str) -> String {
    crate::sanitize::neutralize_commands(&crate::sanitize::strip_controls(text))
        .replace('|', "\\|")
        .replace(['\r', '\n'], " ")
}

/// A remedy as a block quote; its indented lines (YAML to paste) become inline code so their
/// leading spaces and dashes survive the markdown rendering.
fn quote_remedy(remedy: &str) -> String {
    let clean = crate::sanitize::neutralize_commands(&crate::sanitize::strip_controls(remedy));
    clean
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            if l.starts_with(' ') || l.starts_with("- ") {
                format!("> `{}`", l.trim().replace('`', "'"))
            } else {
                format!("> {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("  \n")
}

fn icon(status: Status) -> &'static str {
    match status {
        Status::Pass => "✅",
        Status::Warn => "⚠️",
        Status::Fail => "❌",
        Status::Skip => "⏭️",
    }
}

pub fn render(report: &Report, out: &mut impl Write) -> io::Result<()> {
    let counts = report.counts();
    let banner = match report.result() {
        RunResult::Pass => "✅ Preflight passed",
        RunResult::Warn => "⚠️ Preflight passed with warnings",
        RunResult::Fail => "❌ Preflight failed",
    };
    writeln!(out, "## {banner} — {}\n", counts_phrase(counts))?;
    writeln!(
        out,
        "{} targets, {} checks, {:.1} s.\n",
        report.checks.len(),
        report.check_count(),
        report.duration.as_secs_f64()
    )?;
    if let Some(db) = report.advisory_db_used() {
        writeln!(out, "Advisory database: {}.\n", cell(&db.describe()))?;
    }
    writeln!(out, "| | check | target | what was proven / what is wrong |")?;
    writeln!(out, "|---|---|---|---|")?;
    for r in &report.checks {
        let detail = if let Some(f) = r.findings.iter().max_by_key(|f| f.severity) {
            let more = if r.findings.len() > 1 { format!(" (+{} more)", r.findings.len() - 1) } else { String::new() };
            format!("**{}** {}{more}", f.code, cell(&f.message))
        } else if let Some(reason) = &r.reason {
            format!("skipped: {}", cell(reason))
        } else {
            cell(&r.proven.join("; "))
        };
        writeln!(out, "| {} | {} | {} | {} |", icon(r.status), r.check.as_str(), cell(&r.target), detail)?;
    }
    let findings = report.findings_by_severity();
    if !findings.is_empty() {
        writeln!(out, "\n### How to fix\n")?;
    }
    for (r, f) in findings {
        let sev = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        };
        let place = match &f.location {
            Some(l) => format!("`{}` line {}", cell(&l.file), l.line),
            None => format!("{} `{}`", r.check.as_str(), cell(&r.target)),
        };
        writeln!(out, "**{} ({sev}) — {}.** {place}: {}\n", f.code, f.title, cell(&f.message))?;
        if !f.remedy.is_empty() {
            writeln!(out, "{}\n", quote_remedy(&f.remedy))?;
        }
    }
    writeln!(out, "\n_Run `azp-preflight explain <CODE>` for the full explanation of a code._")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::FailOn;
    use crate::report::fixtures;

    #[test]
    fn summary_lists_every_target_and_every_remedy() {
        let mut buf = Vec::new();
        render(&fixtures::report(FailOn::Error), &mut buf).unwrap();
        let md = String::from_utf8(buf).unwrap();
        assert!(md.starts_with("## ❌ Preflight failed — 2 errors, 1 warning, 1 note\n"));
        assert!(md.contains("| ✅ | agent | local | no injected profilers |"));
        assert!(md.contains("| ❌ | registry | contosoedge.azurecr.io/modules/filter (push) | **REG009** service connection `edge-acr` has an empty username |"));
        assert!(md.contains("| ❌ | tasks | azure-pipelines.yml | **TSK001** AzureIoTEdge@2 resolves to 2.241.1; 50% of pushes fail; see # #vso[task.complete result=Succeeded] (+1 more) |"));
        assert!(md.contains("> Pin `- task: AzureIoTEdge@2.238.1`"));
        assert!(md.contains("\nAdvisory database: embedded, 2026-11-21, 16 advisories.\n"), "{md}");
        assert!(!md.contains("##vso["));
    }

    #[test]
    fn yaml_in_a_remedy_stays_code() {
        assert_eq!(
            quote_remedy("Remove the pin:\n  - task: AzureIoTEdge@2\n`azp-preflight fix` does it."),
            "> Remove the pin:  \n> `- task: AzureIoTEdge@2`  \n> `azp-preflight fix` does it."
        );
    }
}
