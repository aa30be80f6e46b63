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
    if report.org.is_some() {
        organisation(report, out)?;
    }
    // An organisation has thousands of entries: its table keeps those with something to say.
    let shown = report.checks.iter().filter(|r| report.org.is_none() || !r.findings.is_empty());
    // Names and messages of an organisation come from its many users; theirs keep HTML as text.
    let text_cell = |text: &str| if report.org.is_some() { org_cell(text) } else { cell(text) };
    writeln!(out, "| | check | target | what was proven / what is wrong |")?;
    writeln!(out, "|---|---|---|---|")?;
    for r in shown {
        let detail = if let Some(f) = r.findings.iter().max_by_key(|f| f.severity) {
            let more = if r.findings.len() > 1 { format!(" (+{} more)", r.findings.len() - 1) } else { String::new() };
            format!("**{}** {}{more}", f.code, text_cell(&f.message))
        } else if let Some(reason) = &r.reason {
            format!("skipped: {}", text_cell(reason))
        } else {
            text_cell(&r.proven.join("; "))
        };
        writeln!(out, "| {} | {} | {} | {} |", icon(r.status), r.check.as_str(), text_cell(&r.target), detail)?;
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
        let message = if report.org.is_some() { org_cell(&f.message) } else { cell(&f.message) };
        writeln!(out, "**{} ({sev}) — {}.** {place}: {message}\n", f.code, f.title)?;
        if !f.remedy.is_empty() {
            writeln!(out, "{}\n", quote_remedy(&f.remedy))?;
        }
    }
    writeln!(out, "\n_Run `azp-preflight explain <CODE>` for the full explanation of a code._")
}

/// A cell of the organisation tables, where names come from the organisation's users: HTML
/// in them stays text (the summary is rendered as markdown with some HTML allowed).
fn org_cell(text: &str) -> String {
    cell(text).replace('<', "&lt;").replace('>', "&gt;")
}

/// Most connections listed in the summary; the HTML report and the JSON list all.
const MAX_CONNECTION_ROWS: usize = 50;

/// The organisation part of the summary: coverage, the connections by urgency, and the task
/// versions that ran with an advisory against them.
fn organisation(report: &Report, out: &mut impl Write) -> io::Result<()> {
    let Some(org) = &report.org else { return Ok(()) };
    let c = &org.coverage;
    let shards = if org.scope.merged.is_empty() {
        format!("shard {}/{}", org.scope.shard.index, org.scope.shard.count)
    } else {
        let list: Vec<String> = org.scope.merged.iter().map(u32::to_string).collect();
        format!("merged shards {}", list.join(", "))
    };
    writeln!(out, "### Coverage\n")?;
    writeln!(
        out,
        "{} ({shards}): {} projects, {} connections, {} pipelines, {} runs; throttled {:.1} s ({} responses).\n",
        org_cell(&org.scope.organization),
        c.projects,
        c.connections,
        c.pipelines,
        c.runs,
        org.throttled.seconds,
        org.throttled.responses
    )?;
    for gap in &c.not_covered {
        writeln!(out, "- not covered: {}: {}", org_cell(&gap.scope), org_cell(&gap.reason))?;
    }
    if !c.not_covered.is_empty() {
        writeln!(out)?;
    }
    let connections = super::org_view::connections(report);
    writeln!(out, "### Connections by urgency\n")?;
    let counts = super::org_view::window_counts(&connections);
    let phrase: Vec<String> = counts.iter().map(|(w, n)| format!("{n} {}", w.label())).collect();
    writeln!(
        out,
        "{} connections: {}.\n",
        connections.len(),
        if phrase.is_empty() { "none".into() } else { phrase.join(", ") }
    )?;
    if !connections.is_empty() {
        writeln!(out, "| connection | window | expires | days left | credential | findings |")?;
        writeln!(out, "|---|---|---|---|---|---|")?;
        for row in connections.iter().take(MAX_CONNECTION_ROWS) {
            let codes: Vec<&str> = row.codes.iter().map(|c| c.as_str()).collect();
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                org_cell(&row.target),
                row.window.label(),
                org_cell(row.expires_on.as_deref().unwrap_or("—")),
                row.days_left.map(|d| d.to_string()).unwrap_or_else(|| "—".into()),
                org_cell(&row.kind),
                codes.join(", ")
            )?;
        }
        if connections.len() > MAX_CONNECTION_ROWS {
            writeln!(out, "\n_{} more in the HTML and JSON reports._", connections.len() - MAX_CONNECTION_ROWS)?;
        }
        writeln!(out)?;
    }
    let tasks = super::org_view::task_versions(report);
    let affected: Vec<_> = tasks.iter().filter(|t| !t.advisories.is_empty()).collect();
    writeln!(out, "### Task versions with advisories\n")?;
    let verb = if affected.len() == 1 { "has an advisory against it" } else { "have an advisory against them" };
    writeln!(out, "{} task versions ran; {} {verb}.\n", tasks.len(), affected.len())?;
    if !affected.is_empty() {
        writeln!(out, "| task | version | pipelines | affected by |")?;
        writeln!(out, "|---|---|---|---|")?;
        for row in affected {
            let pipelines: Vec<String> = row.pipelines.iter().map(|p| org_cell(p)).collect();
            let advisories: Vec<String> = row.advisories.iter().map(|a| org_cell(a)).collect();
            writeln!(
                out,
                "| {} | {} | {} ({}) | {} |",
                org_cell(&row.task),
                org_cell(&row.version),
                pipelines.join(", "),
                pipelines.len(),
                advisories.join(", ")
            )?;
        }
        writeln!(out)?;
    }
    Ok(())
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
    fn an_organisation_summary_shows_coverage_urgency_and_affected_task_versions() {
        let mut buf = Vec::new();
        render(&crate::report::org_view::fixtures::report(), &mut buf).unwrap();
        let md = String::from_utf8(buf).unwrap();
        assert!(md.contains("(merged shards 1, 2, 3, 4): 3 projects, 6 connections, 14 pipelines, 2 runs"), "{md}");
        let prod = md.find("| Shop/prod-arm | expired |").unwrap();
        let edge = md.find("| Edge/edge-acr | error window |").unwrap();
        assert!(prod < edge, "{md}");
        assert!(md.contains("| AzureIoTEdge | 2.241.1 | Edge/edge-build (1) | AZP-ADV-0002 |"), "{md}");
        assert!(!md.contains("| ✅ |"), "passing entries of an organisation are not listed: {md}");
    }

    #[test]
    fn yaml_in_a_remedy_stays_code() {
        assert_eq!(
            quote_remedy("Remove the pin:\n  - task: AzureIoTEdge@2\n`azp-preflight fix` does it."),
            "> Remove the pin:  \n> `- task: AzureIoTEdge@2`  \n> `azp-preflight fix` does it."
        );
    }
}
