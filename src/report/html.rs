//! `--format html`: one self-contained page. Inline CSS, no script, and nothing that loads
//! from anywhere (no font, image, stylesheet or link with a URL): the page is opened from
//! build artifacts and mail attachments, where a request out would leak who reads it, and
//! must render the same offline. Every text from the report is escaped; hostile names
//! (`<script>`, quotes, `##vso[`) show as text.
//!
//! For an organisation report it leads with what owners ask first: which credentials end
//! soon (an SVG timeline of the next 90 days and the connections by urgency), and which task
//! versions ran where. Every report gets the findings table.

use std::io::{self, Write};

use super::org_view::{self, ConnectionRow, Window};
use super::{counts_phrase, Report, RunResult};

/// Days the timeline spans.
const TIMELINE_DAYS: i64 = 90;
/// Most markers drawn; the table below lists every connection.
const TIMELINE_MAX_MARKERS: usize = 300;

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#1f2328;background:#fff}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px}\
p.meta{color:#57606a;margin:2px 0}\
table{border-collapse:collapse;width:100%;font-size:13px}\
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}\
th{background:#f6f8fa}\
td.num{text-align:right}\
.expired{color:#b91c1c;font-weight:600}.error{color:#c2410c;font-weight:600}\
.warning{color:#a16207}.later{color:#15803d}.notproven{color:#57606a}.noexpiry{color:#57606a}\
.sev-error{color:#b91c1c;font-weight:600}.sev-warning{color:#a16207;font-weight:600}.sev-note{color:#57606a}\
.result-fail{color:#b91c1c}.result-warn{color:#a16207}.result-pass{color:#15803d}\
svg{display:block;max-width:100%;height:auto}";

/// Text for HTML: controls and logging commands made inert, then `&<>"'` escaped (so it is
/// safe both between tags and inside quoted attributes).
pub fn escape(text: &str) -> String {
    let clean = crate::sanitize::neutralize_commands(&crate::sanitize::strip_controls(text));
    let mut out = String::with_capacity(clean.len());
    for c in clean.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // One line per written line: Output cleans line by line.
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn window_class(window: Window) -> &'static str {
    match window {
        Window::Expired => "expired",
        Window::Error => "error",
        Window::Warning => "warning",
        Window::Later => "later",
        Window::NotProven => "notproven",
        Window::NoExpiry => "noexpiry",
    }
}

fn window_colour(window: Window) -> &'static str {
    match window {
        Window::Expired => "#b91c1c",
        Window::Error => "#ea580c",
        Window::Warning => "#ca8a04",
        Window::Later => "#15803d",
        Window::NotProven | Window::NoExpiry => "#8c959f",
    }
}

/// The organisation as a name (`dev.azure.com/contoso`), not a link: the page carries no URL.
fn display_organisation(url: &str) -> &str {
    let rest = url.trim();
    let rest = rest.strip_prefix("https://").or_else(|| rest.strip_prefix("http://")).unwrap_or(rest);
    rest.trim_end_matches('/')
}

pub fn render(report: &Report, out: &mut impl Write) -> io::Result<()> {
    let title = match &report.org {
        Some(org) => format!("azp-preflight organisation scan: {}", display_organisation(&org.scope.organization)),
        None => "azp-preflight report".to_string(),
    };
    writeln!(out, "<!DOCTYPE html>")?;
    writeln!(out, "<html lang=\"en\"><head><meta charset=\"utf-8\">")?;
    // No request of any kind, even if a later change added one by mistake.
    writeln!(
        out,
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
    )?;
    writeln!(out, "<title>{}</title>", escape(&title))?;
    writeln!(out, "<style>{STYLE}</style></head><body>")?;
    writeln!(out, "<h1>{}</h1>", escape(&title))?;
    let (class, word) = match report.result() {
        RunResult::Pass => ("result-pass", "passed"),
        RunResult::Warn => ("result-warn", "passed with warnings"),
        RunResult::Fail => ("result-fail", "failed"),
    };
    writeln!(
        out,
        "<p class=\"meta\"><strong class=\"{class}\" id=\"result\">Preflight {word}</strong> — {}; {} targets, {:.1} s.</p>",
        counts_phrase(report.counts()),
        report.checks.len(),
        report.duration.as_secs_f64()
    )?;
    if let Some(org) = &report.org {
        let c = &org.coverage;
        let shards = if org.scope.merged.is_empty() {
            format!("shard {}/{}", org.scope.shard.index, org.scope.shard.count)
        } else {
            let list: Vec<String> = org.scope.merged.iter().map(u32::to_string).collect();
            format!("merged shards {}", list.join(", "))
        };
        writeln!(
            out,
            "<p class=\"meta\" id=\"coverage\">{shards}: {} projects, {} connections, {} pipelines, {} runs; throttled {:.1} s ({} responses).</p>",
            c.projects, c.connections, c.pipelines, c.runs, org.throttled.seconds, org.throttled.responses
        )?;
        for gap in &c.not_covered {
            writeln!(
                out,
                "<p class=\"meta notcovered\">Not covered: {} — {}</p>",
                escape(&gap.scope),
                escape(&gap.reason)
            )?;
        }
        let connections = org_view::connections(report);
        timeline(&connections, out)?;
        connections_table(&connections, out)?;
        task_versions_table(report, out)?;
    }
    findings_table(report, out)?;
    writeln!(out, "<p class=\"meta\">Run <code>azp-preflight explain &lt;CODE&gt;</code> for what a code means and how to fix it.</p>")?;
    writeln!(out, "</body></html>")
}

/// The expiry timeline: a marker per credential ending within 90 days (expired ones at the
/// left edge), one lane each so labels never overlap, coloured by window.
fn timeline(rows: &[ConnectionRow], out: &mut impl Write) -> io::Result<()> {
    let on_timeline: Vec<&ConnectionRow> = rows
        .iter()
        .filter(|r| matches!(r.window, Window::Expired | Window::Error | Window::Warning | Window::Later))
        .filter(|r| r.days_left.is_some_and(|d| d <= TIMELINE_DAYS))
        .take(TIMELINE_MAX_MARKERS)
        .collect();
    writeln!(out, "<h2>Credential expiry, next {TIMELINE_DAYS} days</h2>")?;
    let (left, width, lane) = (40i64, 900i64, 22i64);
    let top = 30i64;
    let height = top + lane * on_timeline.len().max(1) as i64 + 10;
    writeln!(
        out,
        "<svg id=\"timeline\" width=\"{}\" height=\"{height}\" viewBox=\"0 0 {} {height}\" role=\"img\" aria-label=\"Credential expiry timeline\">",
        left + width + 40,
        left + width + 40
    )?;
    // The axis: today at the left, a tick every 15 days.
    writeln!(
        out,
        "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#8c959f\"/>",
        top - 8,
        left + width,
        top - 8
    )?;
    for day in (0..=TIMELINE_DAYS).step_by(15) {
        let x = left + day * width / TIMELINE_DAYS;
        let label = if day == 0 { "today".to_string() } else { format!("+{day} d") };
        writeln!(
            out,
            "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{height}\" stroke=\"#eaeef2\"/><text x=\"{x}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#57606a\">{label}</text>",
            top - 8,
            top - 14
        )?;
    }
    if on_timeline.is_empty() {
        writeln!(out, "<text x=\"{left}\" y=\"{}\" font-size=\"12\" fill=\"#57606a\">No credential ends within {TIMELINE_DAYS} days.</text>", top + 12)?;
    }
    for (i, row) in on_timeline.iter().enumerate() {
        let days = row.days_left.unwrap_or(0).clamp(0, TIMELINE_DAYS);
        let x = left + days * width / TIMELINE_DAYS;
        let y = top + lane * i as i64 + lane / 2;
        let when = match row.days_left {
            Some(d) if d < 0 => format!("expired {} d ago", -d),
            Some(d) => format!("{d} d left"),
            None => String::new(),
        };
        let label = escape(&format!("{} ({when})", row.target));
        // Labels right of the marker, or left of it near the right edge.
        let (tx, anchor) = if x > left + width * 2 / 3 { (x - 9, "end") } else { (x + 9, "start") };
        writeln!(
            out,
            "<g class=\"marker {}\"><circle cx=\"{x}\" cy=\"{y}\" r=\"6\" fill=\"{}\"><title>{label}, {}</title></circle><text x=\"{tx}\" y=\"{}\" font-size=\"12\" text-anchor=\"{anchor}\" fill=\"#1f2328\">{label}</text></g>",
            window_class(row.window),
            window_colour(row.window),
            row.window.label(),
            y + 4
        )?;
    }
    writeln!(out, "</svg>")?;
    let later =
        rows.iter().filter(|r| r.window == Window::Later && r.days_left.is_some_and(|d| d > TIMELINE_DAYS)).count();
    let unknown = rows.iter().filter(|r| r.window == Window::NotProven).count();
    let none = rows.iter().filter(|r| r.window == Window::NoExpiry).count();
    writeln!(
        out,
        "<p class=\"meta\">Not on the timeline: {later} ending after {TIMELINE_DAYS} days, {unknown} not proven (no end date read from Graph), {none} with nothing that expires.</p>"
    )
}

fn connections_table(rows: &[ConnectionRow], out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "<h2>Connections by urgency</h2>")?;
    writeln!(out, "<table id=\"connections\"><thead><tr><th>connection</th><th>window</th><th>expires</th><th>days left</th><th>credential</th><th>scheme</th><th>findings</th></tr></thead><tbody>")?;
    for row in rows {
        let codes: Vec<&str> = row.codes.iter().map(|c| c.as_str()).collect();
        writeln!(
            out,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            window_class(row.window),
            escape(&row.target),
            row.window.label(),
            escape(row.expires_on.as_deref().unwrap_or("—")),
            row.days_left.map(|d| d.to_string()).unwrap_or_else(|| "—".into()),
            escape(&row.kind),
            escape(&row.scheme),
            codes.join(", ")
        )?;
    }
    writeln!(out, "</tbody></table>")
}

fn task_versions_table(report: &Report, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "<h2>Task versions run across the organisation</h2>")?;
    writeln!(out, "<table id=\"task-versions\"><thead><tr><th>task</th><th>version</th><th>pipelines</th><th>affected by</th></tr></thead><tbody>")?;
    for row in org_view::task_versions(report) {
        let pipelines: Vec<String> = row.pipelines.iter().map(|p| escape(p)).collect();
        let advisories: Vec<String> = row.advisories.iter().map(|a| escape(a)).collect();
        let class = if advisories.is_empty() { "" } else { " class=\"expired\"" };
        writeln!(
            out,
            "<tr{class}><td>{}</td><td>{}</td><td>{} <span class=\"meta\">({})</span></td><td>{}</td></tr>",
            escape(&row.task),
            escape(&row.version),
            pipelines.join(", "),
            pipelines.len(),
            if advisories.is_empty() { "—".to_string() } else { advisories.join(", ") }
        )?;
    }
    writeln!(out, "</tbody></table>")
}

fn findings_table(report: &Report, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "<h2>Findings</h2>")?;
    let findings = report.findings_by_severity();
    if findings.is_empty() {
        return writeln!(out, "<p id=\"findings\">No findings.</p>");
    }
    writeln!(out, "<table id=\"findings\"><thead><tr><th>severity</th><th>code</th><th>where</th><th>what is wrong</th><th>how to fix</th></tr></thead><tbody>")?;
    for (result, finding) in findings {
        let severity = finding.severity.as_str();
        writeln!(
            out,
            "<tr><td class=\"sev-{severity}\">{severity}</td><td title=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&finding.title),
            finding.code,
            escape(&super::place(result, finding)),
            escape(&finding.message),
            escape(&finding.remedy)
        )?;
    }
    writeln!(out, "</tbody></table>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_is_inert() {
        assert_eq!(escape("<script>a'\"&</script>"), "&lt;script&gt;a&#39;&quot;&amp;&lt;/script&gt;");
        assert!(!escape("x ##vso[task.complete]").contains("##vso["));
        assert_eq!(escape("a\nb\u{1b}c"), "a bc");
    }

    #[test]
    fn the_page_loads_nothing_and_runs_nothing() {
        let mut buf = Vec::new();
        render(&org_view::fixtures::report(), &mut buf).unwrap();
        let page = String::from_utf8(buf).unwrap();
        let lower = page.to_ascii_lowercase();
        for banned in ["<script", "src=", "href=", "url(", "@import", "<link", "<img", "<iframe"] {
            assert!(!lower.contains(banned), "{banned} in the page");
        }
        // Not even the SVG namespace: inline SVG in HTML needs none.
        assert!(!lower.contains("http:") && !lower.contains("https:") && !lower.contains("//"), "a URL in the page");
        assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &quot;conn&quot;"));
    }
}
