//! What the database knows, for people: `advisories list` (one line each), `advisories show
//! ID` (one advisory in full), `advisories index` (the published JSON document) and
//! `advisories docs` (`docs/advisories.md`, the same facts as a page on the repository).

use std::io::Write;
use std::path::Path;

use super::{index, lint, Advisory, AdvisoryDb};
use crate::cli::{AdvisoryFiles, GeneratedOutput};
use crate::exit::Exit;
use crate::input_error::InputError;

/// Where `advisories docs` writes in the repository; the staleness test compares it.
pub const DOCS_PATH: &str = "docs/advisories.md";

fn sorted(db: &AdvisoryDb) -> Vec<&Advisory> {
    let mut list: Vec<&Advisory> = db.advisories.iter().collect();
    list.sort_by(|a, b| a.id.cmp(&b.id));
    list
}

fn affected(a: &Advisory) -> String {
    if !a.pinnable {
        "not pin-fixable".into()
    } else if a.builds.is_empty() {
        a.affected_text()
    } else {
        format!("{} ({} only)", a.affected_text(), a.builds.join(", "))
    }
}

fn versions(list: &[super::TaskVersion]) -> String {
    list.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
}

fn version_or(v: Option<super::TaskVersion>, none: &str) -> String {
    v.map_or_else(|| none.to_string(), |v| v.to_string())
}

/// `advisories list`: a count line, then a table with one advisory per line.
pub fn render_list(db: &AdvisoryDb, out: &mut dyn Write) -> std::io::Result<()> {
    let list = sorted(db);
    writeln!(out, "{} advisories (newest update {})", list.len(), db.updated().unwrap_or("-"))?;
    let rows: Vec<[String; 5]> = list
        .iter()
        .map(|a| {
            let mut id = a.id.clone();
            if a.origin != "embedded" {
                // From an organization's file: marked, and named under the table.
                id.push('*');
            }
            [id, format!("{}@{}", a.task, a.major), affected(a), version_or(a.fixed, "-"), a.confidence.as_str().into()]
        })
        .collect();
    let header = ["ID", "TASK", "AFFECTED", "FIXED", "CONFIDENCE"].map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        writeln!(out, "{}", cells.join("  ").trim_end())?;
    }
    for a in list.iter().filter(|a| a.origin != "embedded") {
        writeln!(out, "* {} from {}", a.id, a.origin)?;
    }
    Ok(())
}

/// `advisories show ID`: every field of one advisory.
pub fn render_show(a: &Advisory, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "{}: {}", a.id, a.title)?;
    writeln!(out)?;
    let field = |out: &mut dyn Write, label: &str, value: &str| writeln!(out, "{:<14}{value}", format!("{label}:"));
    field(out, "task", &format!("{}@{} ({})", a.task, a.major, a.task_id))?;
    if a.pinnable {
        field(out, "affected", &a.affected_text())?;
        if !a.builds.is_empty() {
            field(out, "builds", &format!("{} only", a.builds.join(", ")))?;
        }
        if !a.unaffected.is_empty() {
            field(out, "unaffected", &versions(&a.unaffected))?;
        }
        field(out, "last good", &version_or(a.last_good, "unknown"))?;
        field(out, "fixed", &version_or(a.fixed, "no fix known"))?;
    } else {
        field(out, "affected", "not pin-fixable: the task version did not change")?;
        field(out, "fixed", &version_or(a.fixed, "no fix known"))?;
    }
    if let Some(when) = applies_when(a) {
        field(out, "applies when", &when)?;
    }
    field(out, "confidence", a.confidence.as_str())?;
    field(out, "updated", &a.updated)?;
    if a.origin != "embedded" {
        field(out, "from", &a.origin)?;
    }
    let block = |out: &mut dyn Write, label: &str, text: &str| -> std::io::Result<()> {
        writeln!(out, "\n{label}:")?;
        for line in text.lines() {
            writeln!(out, "  {}", line.trim_end())?;
        }
        Ok(())
    };
    block(out, "symptom", &a.symptom)?;
    for (label, text) in [
        ("cause", &a.cause),
        ("workaround", &a.workaround),
        ("confidence note", &a.confidence_note),
        ("notes", &a.notes),
    ] {
        if let Some(text) = text {
            block(out, label, text)?;
        }
    }
    writeln!(out, "\nsources:")?;
    for (kind, url) in sources(a) {
        writeln!(out, "  {kind:<13} {url}")?;
    }
    Ok(())
}

fn applies_when(a: &Advisory) -> Option<String> {
    let when = a.applies_when.as_ref()?;
    let mut parts: Vec<String> = when.inputs.iter().map(|(k, v)| format!("input {k} = {v:?}")).collect();
    if let Some(d) = when.description.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        parts.push(d.to_string());
    }
    Some(parts.join("; "))
}

fn sources(a: &Advisory) -> Vec<(&'static str, &str)> {
    let s = &a.sources;
    let mut list: Vec<(&'static str, &str)> = s.issues.iter().map(|u| ("issue", u.as_str())).collect();
    list.extend(s.pull_requests.iter().map(|u| ("pull request", u.as_str())));
    list.extend(s.references.iter().map(|u| ("reference", u.as_str())));
    list
}

/// `docs/advisories.md`: an index table, then one section per advisory.
pub fn render_docs(db: &AdvisoryDb) -> String {
    let list = sorted(db);
    let mut md = String::new();
    md.push_str("# Task-regression advisories\n\n");
    md.push_str(
        "<!-- Generated from advisories/*.toml by `azp-preflight advisories docs --output docs/advisories.md`. \
         Do not edit: change the advisory files and regenerate. -->\n\n",
    );
    md.push_str(&format!(
        "{} advisories, newest update {}. The tasks check matches every task reference against these; \
         `azp-preflight advisories show <ID>` prints one of them, and `advisories/index.json` is the same \
         database as the JSON document that runs fetch (input `advisoryUpdate`).\n\n",
        list.len(),
        db.updated().unwrap_or("-")
    ));
    md.push_str("| id | task | affected | fixed | confidence |\n|---|---|---|---|---|\n");
    for a in &list {
        md.push_str(&format!(
            "| [{}](#{}) | {}@{} | {} | {} | {} |\n",
            a.id,
            a.id.to_ascii_lowercase(),
            cell(&a.task),
            a.major,
            cell(&affected(a)),
            version_or(a.fixed, "–"),
            a.confidence.as_str()
        ));
    }
    for a in &list {
        md.push_str(&format!("\n## {}\n\n**{}**\n\n", a.id, a.title.replace('\n', " ")));
        md.push_str(&format!("- Task: `{}@{}` (`{}`)\n", a.task, a.major, a.task_id));
        if a.pinnable {
            md.push_str(&format!("- Affected: `{}`\n", a.affected_text()));
            if !a.builds.is_empty() {
                md.push_str(&format!("- Builds: {} only\n", a.builds.join(", ")));
            }
            if !a.unaffected.is_empty() {
                md.push_str(&format!("- Checked and not affected: `{}`\n", versions(&a.unaffected)));
            }
            md.push_str(&format!("- Last good: {}\n", code_or(a.last_good, "unknown")));
        } else {
            md.push_str("- Affected: not pin-fixable (the task version did not change)\n");
        }
        md.push_str(&format!("- Fixed: {}\n", code_or(a.fixed, "no fix known")));
        if let Some(when) = applies_when(a) {
            md.push_str(&format!("- Applies when: {when}\n"));
        }
        md.push_str(&format!("- Confidence: {}\n", a.confidence.as_str()));
        md.push_str(&format!("- Updated: {}\n", a.updated));
        md.push_str(&format!("\n### Symptom\n\n{}\n", fenced(&a.symptom)));
        for (label, text) in [
            ("Cause", &a.cause),
            ("Workaround", &a.workaround),
            ("Confidence note", &a.confidence_note),
            ("Notes", &a.notes),
        ] {
            if let Some(text) = text {
                md.push_str(&format!("\n### {label}\n\n{}\n", text.trim()));
            }
        }
        md.push_str("\n### Sources\n\n");
        for (kind, url) in sources(a) {
            md.push_str(&format!("- {kind}: <{url}>\n"));
        }
    }
    md
}

fn code_or(v: Option<super::TaskVersion>, none: &str) -> String {
    v.map_or_else(|| none.to_string(), |v| format!("`{v}`"))
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// A code block whose fence is longer than any backtick run inside.
fn fenced(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}text\n{}\n{fence}", text.trim())
}

/// `advisories show ID`.
pub fn show(id: &str, files: &AdvisoryFiles, out: &mut dyn Write, err: &mut dyn Write) -> Exit {
    let db = match AdvisoryDb::load(&files.advisories) {
        Ok(db) => db,
        Err(e) => {
            let _ = writeln!(err, "azp-preflight: bad input: {e}");
            return Exit::BadInput;
        }
    };
    match db.advisories.iter().find(|a| a.id.eq_ignore_ascii_case(id.trim())) {
        Some(a) => match render_show(a, out) {
            Ok(()) => Exit::Ok,
            Err(_) => Exit::Internal,
        },
        None => {
            let e = InputError::new(
                "advisories show",
                id,
                "an advisory id such as AZP-ADV-0001 (run `azp-preflight advisories list` for the ids)",
            );
            let _ = writeln!(err, "azp-preflight: bad input: {e}");
            Exit::BadInput
        }
    }
}

/// `advisories index` / `advisories docs`: the embedded database, written to `--output` or
/// standard output. A database with lint problems is not published (exit 1, problems listed).
pub fn generate(docs: bool, output: &GeneratedOutput, out: &mut dyn Write, err: &mut dyn Write) -> Exit {
    let text = match index::generate(&lint::embedded_sources()) {
        Ok(json) if !docs => json,
        Ok(_) => render_docs(super::embedded()),
        Err(problems) => {
            for p in &problems {
                let _ = writeln!(out, "{p}");
            }
            let _ = writeln!(err, "azp-preflight: the advisory files have problems; nothing was written");
            return Exit::Findings;
        }
    };
    match &output.output {
        None => match out.write_all(text.as_bytes()) {
            Ok(()) => Exit::Ok,
            Err(_) => Exit::Internal,
        },
        Some(path) => match write_atomically(path, &text) {
            Ok(()) => Exit::Ok,
            Err(e) => {
                let _ = writeln!(err, "azp-preflight: could not complete: cannot write {}: {e}", path.display());
                Exit::Internal
            }
        },
    }
}

fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&temp, text)?;
    std::fs::rename(&temp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::tasks::advisories::{embedded, tests::SAMPLE};

    #[test]
    fn committed_docs_page_is_current() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(DOCS_PATH);
        let committed = std::fs::read_to_string(file).unwrap_or_default();
        assert!(
            committed == render_docs(embedded()),
            "docs/advisories.md is stale: regenerate it with \
             `cargo run -- advisories docs --output docs/advisories.md` and commit it"
        );
    }

    #[test]
    fn list_is_one_line_per_advisory() {
        let mut db = embedded().clone();
        db.merge(Advisory::parse(SAMPLE, "org.toml").unwrap());
        let mut out = Vec::new();
        render_list(&db, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + 1 + db.advisories.len() + 1, "{text}");
        assert!(lines[1].starts_with("ID ") && lines[1].ends_with("CONFIDENCE"), "{text}");
        let first = lines[2].split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(first, "AZP-ADV-0001 AzureIoTEdge@2 >= 2.241.0, < 2.243.2 2.243.2 high");
        assert!(text.contains("AZP-ADV-9001*") && text.ends_with("* AZP-ADV-9001 from org.toml\n"), "{text}");
    }

    #[test]
    fn show_prints_every_field_and_the_sources() {
        let a = embedded().advisories.iter().find(|a| a.id == "AZP-ADV-0001").unwrap();
        let mut out = Vec::new();
        render_show(a, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        for expected in [
            "AZP-ADV-0001: AzureIoTEdge@2: pushing module images",
            "task:         AzureIoTEdge@2 (80f3f6a0-82a6-4a22-ba7a-e5b8c541b9b8)",
            "affected:     >= 2.241.0, < 2.243.2",
            "last good:    2.238.1",
            "fixed:        2.243.2",
            "applies when: input action = \"Push module images\"",
            "confidence:   high",
            "\nsymptom:\n  Failed to fetch container registry authentication token",
            "\ncause:\n  The push step asked",
            "\nworkaround:\n",
            "\nconfidence note:\n",
            "  issue         https://github.com/microsoft/azure-pipelines-tasks/issues/20034",
            "  pull request  https://github.com/microsoft/azure-pipelines-tasks/pull/20183",
        ] {
            assert!(text.contains(expected), "{expected:?} in\n{text}");
        }
    }

    #[test]
    fn docs_have_a_section_per_advisory() {
        let md = render_docs(embedded());
        assert_eq!(md.matches("\n## AZP-ADV-").count(), embedded().advisories.len());
        assert!(
            md.contains("| [AZP-ADV-0001](#azp-adv-0001) | AzureIoTEdge@2 | >= 2.241.0, < 2.243.2 | 2.243.2 | high |")
        );
        assert!(md.contains("- issue: <https://github.com/microsoft/azure-pipelines-tasks/issues/20034>"));
        assert_eq!(fenced("a ``` b"), "````text\na ``` b\n````");
    }
}
