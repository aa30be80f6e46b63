//! `azp-preflight fix`: applies the pin and unpin advice to the YAML in place. Only the task
//! value and the `# pinned by azp-preflight: ...` comment after it change; every other byte
//! (comments, quoting, indentation, CRLF, a byte order mark) stays as it was. `--dry-run`
//! prints a unified diff instead.

//!
//! Only regular files inside the sources folder are rewritten: a template reached through a
//! symbolic link or `../` that leads outside is never read (TSK010), and before each write the
//! file's real path is checked again and opened without following a link.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::advice::{Edit, PIN_MARKER};
use super::config::TasksConfig;
use super::discover::{Place, SourcesRoot};
use super::{advise_pipeline, definition_name, find_and_scan, resolver, run_db, with_files};
use crate::check::Context;
use crate::exit::Exit;
use crate::fsread;

/// The edits the advice asks for, one per task value. Bad patterns and advisory files were
/// reported when the input was validated, so nothing here is bad input.
pub async fn planned_edits(ctx: &Arc<Context>, config: &TasksConfig) -> Vec<Edit> {
    let definition = definition_name(ctx).await;
    let planned = find_and_scan(&ctx.settings, config, definition.as_deref(), &AtomicBool::new(false));
    // The organization's files were read when the input was validated; they go over the
    // run's (possibly refreshed) database.
    let db = with_files(run_db(ctx, config).await, config);
    let resolver = resolver(ctx);
    let mut edits: Vec<Edit> = Vec::new();
    let mut seen: HashSet<(PathBuf, usize)> = HashSet::new();
    for scan in &planned.scans {
        let (advice, _) = advise_pipeline(scan, &db, None, resolver.as_ref()).await;
        for edit in advice.into_iter().filter_map(|a| a.edit) {
            if seen.insert((edit.path.clone(), edit.span.start)) {
                edits.push(edit);
            }
        }
    }
    edits
}

/// The real path `fix` may rewrite for `path`: a regular file inside the sources folder with
/// no other hard link (another name for it could be anywhere on the same disk).
fn writable(root: &SourcesRoot, path: &Path) -> Result<PathBuf, String> {
    match root.locate(path) {
        Place::Inside(real) => {
            let meta = std::fs::symlink_metadata(&real).map_err(|e| e.to_string())?;
            if !meta.is_file() {
                return Err("it is not a regular file".into());
            }
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                if meta.nlink() > 1 {
                    return Err("it has other hard links, which may lead outside the sources folder".into());
                }
            }
            Ok(real)
        }
        Place::Outside(real) => Err(format!("it leads outside the sources folder (to {})", real.display())),
        Place::Missing => Err("no such file".into()),
    }
}

/// Rewrites a regular file in place (keeping its permissions), refusing a link or anything
/// else that appeared at its path since it was checked.
fn write_in_place(real: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // No link at the last step; a FIFO fails at once instead of waiting for a reader.
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let mut file = options.open(real)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("it is not a regular file"));
    }
    file.set_len(0)?;
    file.write_all(bytes)
}

/// Applies edits to one file's text (without its byte order mark). Edits whose span no
/// longer holds the value they were planned for are skipped.
pub fn apply(text: &str, edits: &[&Edit]) -> (String, usize) {
    let mut sorted: Vec<&&Edit> = edits.iter().collect();
    sorted.sort_by_key(|e| std::cmp::Reverse(e.span.start));
    let mut out = text.to_string();
    let mut applied = 0;
    for edit in sorted {
        if out.get(edit.span.clone()) != Some(edit.old_value.as_str()) {
            continue;
        }
        // The rest of the line after the value, without its line break (`\n`, `\r\n` or a lone
        // `\r`: YAML, and so the scanner, break lines at each).
        let after = edit.span.end;
        let content_end = out[after..].find(['\n', '\r']).map_or(out.len(), |i| after + i);
        let mut tail = out[after..content_end].to_string();
        if let Some(at) = tail.find(PIN_MARKER) {
            tail.truncate(tail[..at].trim_end().len());
        }
        if let Some(comment) = &edit.comment {
            tail.push_str("  ");
            tail.push_str(comment);
        }
        out.replace_range(edit.span.start..content_end, &format!("{}{tail}", edit.new_value));
        applied += 1;
    }
    (out, applied)
}

/// A unified diff of two texts with the same number of lines (edits never add or remove
/// lines), three lines of context.
pub fn unified_diff(name: &str, old: &str, new: &str) -> String {
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    let changed: Vec<usize> = (0..a.len().max(b.len())).filter(|&i| a.get(i) != b.get(i)).collect();
    if changed.is_empty() {
        return String::new();
    }
    let mut out = format!("--- a/{name}\n+++ b/{name}\n");
    let mut groups: Vec<(usize, usize)> = Vec::new();
    for &i in &changed {
        let (start, end) = (i.saturating_sub(3), (i + 4).min(a.len()));
        match groups.last_mut() {
            Some(g) if start <= g.1 => g.1 = end,
            _ => groups.push((start, end)),
        }
    }
    let line = |prefix: char, text: &str, out: &mut String| {
        out.push(prefix);
        out.push_str(text);
        if !text.ends_with('\n') {
            out.push_str("\n\\ No newline at end of file\n");
        }
    };
    for (start, end) in groups {
        out.push_str(&format!("@@ -{},{} +{},{} @@\n", start + 1, end - start, start + 1, end - start));
        let mut i = start;
        while i < end {
            if a.get(i) == b.get(i) {
                line(' ', a[i], &mut out);
                i += 1;
                continue;
            }
            let run_end = (i..end).find(|&j| a.get(j) == b.get(j)).unwrap_or(end);
            for old_line in &a[i..run_end] {
                line('-', old_line, &mut out);
            }
            for new_line in b.get(i..run_end).unwrap_or_default() {
                line('+', new_line, &mut out);
            }
            i = run_end;
        }
    }
    out
}

/// Runs `fix`: edits the files (or prints the diff); returns the exit code.
pub async fn run(
    ctx: &Arc<Context>,
    config: &TasksConfig,
    dry_run: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Exit {
    let edits = planned_edits(ctx, config).await;
    if let Some(note) = config.run_db.get().and_then(|used| used.note.as_ref()) {
        let _ = writeln!(err, "azp-preflight: note[{}]: {}", note.code, note.message);
    }
    if edits.is_empty() {
        let _ = writeln!(err, "azp-preflight: nothing to fix: no pin or unpin advice for the pipeline files");
        return Exit::Ok;
    }
    // Grouped by real path: two names (links) for one file get its edits once.
    let root = SourcesRoot::new(&ctx.settings.sources_dir);
    let mut by_file: BTreeMap<PathBuf, Vec<&Edit>> = BTreeMap::new();
    let mut refused = false;
    for e in &edits {
        match writable(&root, &e.path) {
            Ok(real) => by_file.entry(real).or_default().push(e),
            Err(why) => {
                let _ = writeln!(err, "azp-preflight: {} is not changed: {why}", e.display);
                refused = true;
            }
        }
    }
    for (path, mut file_edits) in by_file {
        let mut spans = HashSet::new();
        file_edits.retain(|e| spans.insert(e.span.start));
        let display = file_edits[0].display.clone();
        let bytes = match fsread::read(&path, fsread::limits::PIPELINE) {
            Ok(b) => b,
            Err(e) => {
                let _ = writeln!(err, "azp-preflight: bad input: cannot read {display}: {e}");
                return Exit::BadInput;
            }
        };
        let Ok(full) = String::from_utf8(bytes) else {
            let _ = writeln!(err, "azp-preflight: bad input: {display} is not UTF-8 text");
            return Exit::BadInput;
        };
        let (bom, text) = match full.strip_prefix('\u{feff}') {
            Some(rest) => ("\u{feff}", rest),
            None => ("", full.as_str()),
        };
        let (changed, applied) = apply(text, &file_edits);
        if applied < file_edits.len() {
            let _ = writeln!(err, "azp-preflight: {display} changed while it was read; some edits were skipped");
        }
        for e in &file_edits {
            let what = match &e.comment {
                Some(c) => format!("pin {} ({})", e.new_value, c.trim_start_matches(PIN_MARKER).trim()),
                None => format!("unpin to {}", e.new_value),
            };
            let _ = writeln!(err, "{display}:{}: {} -> {what}", e.line, e.old_value);
        }
        if dry_run {
            let _ = write!(out, "{}", unified_diff(&display, text, &changed));
        } else if let Err(e) = write_in_place(&path, format!("{bom}{changed}").as_bytes()) {
            let _ = writeln!(err, "azp-preflight: cannot write {display}: {e}");
            return Exit::Internal;
        }
    }
    if dry_run {
        let _ = writeln!(err, "azp-preflight: dry run: no file was changed");
    }
    if refused {
        return Exit::BadInput;
    }
    Exit::Ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(text: &str, old: &str, new: &str, comment: Option<&str>) -> Edit {
        let start = text.find(old).unwrap();
        Edit {
            path: PathBuf::from("p.yml"),
            display: "p.yml".into(),
            line: 1,
            span: start..start + old.len(),
            old_value: old.into(),
            new_value: new.into(),
            comment: comment.map(str::to_string),
        }
    }

    #[test]
    fn pin_keeps_every_other_byte() {
        let text = "steps:\r\n  # keep\r\n  - task: 'AzureIoTEdge@2'   # build\r\n    inputs: {a: b}\r\n";
        let e = edit(
            text,
            "AzureIoTEdge@2",
            "AzureIoTEdge@2.238.1",
            Some("# pinned by azp-preflight: AZP-ADV-0001, unpin at >= 2.243.2"),
        );
        let (out, n) = apply(text, &[&e]);
        assert_eq!(n, 1);
        assert_eq!(
            out,
            "steps:\r\n  # keep\r\n  - task: 'AzureIoTEdge@2.238.1'   # build  # pinned by azp-preflight: AZP-ADV-0001, unpin at >= 2.243.2\r\n    inputs: {a: b}\r\n"
        );
        // Unpinning removes only the marker; a second pin replaces it instead of adding one.
        let back = edit(&out, "AzureIoTEdge@2.238.1", "AzureIoTEdge@2", None);
        let (unpinned, _) = apply(&out, &[&back]);
        assert_eq!(unpinned, text);
        let again = edit(
            &out,
            "AzureIoTEdge@2.238.1",
            "AzureIoTEdge@2.238.0",
            Some("# pinned by azp-preflight: X-0001, no fix known yet"),
        );
        let (repinned, _) = apply(&out, &[&again]);
        assert_eq!(repinned.matches(PIN_MARKER).count(), 1);
        assert!(repinned
            .contains("'AzureIoTEdge@2.238.0'   # build  # pinned by azp-preflight: X-0001, no fix known yet\r\n"));
    }

    #[test]
    fn stale_spans_are_skipped_and_last_lines_work() {
        let text = "- task: A@1";
        let mut e = edit(text, "A@1", "A@1.2.3", Some("# pinned by azp-preflight: X-0001, no fix known yet"));
        let (out, _) = apply(text, &[&e]);
        assert_eq!(out, "- task: A@1.2.3  # pinned by azp-preflight: X-0001, no fix known yet");
        e.old_value = "B@1".into();
        assert_eq!(apply(text, &[&e]).1, 0);
    }

    #[test]
    fn diff_format() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\n";
        let new = old.replace("b\n", "B\n").replace("j\n", "J\n");
        let d = unified_diff("p.yml", old, &new);
        assert_eq!(
            d,
            "--- a/p.yml\n+++ b/p.yml\n@@ -1,5 +1,5 @@\n a\n-b\n+B\n c\n d\n e\n@@ -7,5 +7,5 @@\n g\n h\n i\n-j\n+J\n k\n"
        );
        assert_eq!(
            unified_diff("p", "x", "y"),
            "--- a/p\n+++ b/p\n@@ -1,1 +1,1 @@\n-x\n\\ No newline at end of file\n+y\n\\ No newline at end of file\n"
        );
        assert_eq!(unified_diff("p", "same\n", "same\n"), "");
    }
}
