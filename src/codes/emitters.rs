//! Keeps each code's page honest about where the code comes from: every `docs/codes/<CODE>.md`
//! carries one line `Emitted by: `src/...`, `src/...`` (after its `Check:` line), naming
//! exactly the source files whose non-test code mentions `Code::<CODE>`. Moving an emitter
//! without updating its page fails the test below.
//!
//! To rewrite the lines after a move: `scripts/code-emitters.sh` (which runs this test with
//! `AZP_PREFLIGHT_BLESS_EMITTERS=1`), then review the diff.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::Code;

/// The prefix of the line a page names its emitters on.
const EMITTED_BY: &str = "Emitted by: ";
/// Set to rewrite the pages' lines instead of failing.
const BLESS: &str = "AZP_PREFLIGHT_BLESS_EMITTERS";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn page_path(code: Code) -> PathBuf {
    repo_root().join("docs/codes").join(format!("{code}.md"))
}

/// A source file's text without its `#[cfg(test)]` items: a code a test only mentions is not
/// emitted there. An item is skipped up to the `}` at its own indentation, or is one line.
fn without_tests(text: &str) -> String {
    let mut kept = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "#[cfg(test)]" {
            kept.push_str(line);
            kept.push('\n');
            continue;
        }
        let indent = &line[..line.len() - line.trim_start().len()];
        let closing = format!("{indent}}}");
        let Some(item) = lines.next() else { break };
        if item.trim_end().ends_with('{') {
            for body in lines.by_ref() {
                if body.trim_end() == closing {
                    break;
                }
            }
        }
    }
    kept
}

/// Files declared as `#[cfg(test)] mod name;`: test helpers, not emitters.
fn test_only_files(path: &Path, text: &str) -> Vec<PathBuf> {
    let dir = path.parent().unwrap_or(Path::new(""));
    // A `mod.rs`, `lib.rs` or `main.rs` owns its folder; `x.rs` owns `x/`.
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    let base = if matches!(stem, "mod" | "lib" | "main") { dir.to_path_buf() } else { dir.join(stem) };
    let lines: Vec<&str> = text.lines().collect();
    lines
        .windows(2)
        .filter(|w| w[0].trim() == "#[cfg(test)]")
        .filter_map(|w| w[1].trim().strip_prefix("mod ")?.strip_suffix(';').map(str::to_string))
        .flat_map(|name| [base.join(format!("{name}.rs")), base.join(&name).join("mod.rs")])
        .collect()
}

/// Whether `text` mentions `Code::<code>` (and not a longer name that starts with it).
fn mentions(text: &str, code: Code) -> bool {
    let needle = format!("Code::{code}");
    text.match_indices(&needle)
        .any(|(at, _)| !text[at + needle.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
}

/// For each code, the files under `src/` whose non-test code mentions it, as `src/a/b.rs`.
fn emitters() -> BTreeMap<Code, BTreeSet<String>> {
    let root = repo_root();
    let mut sources = BTreeMap::new();
    let mut test_only = BTreeSet::new();
    for entry in walkdir::WalkDir::new(root.join("src")).sort_by_file_name() {
        let entry = entry.expect("src/ is readable");
        if !entry.file_type().is_file() || entry.path().extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).expect("a source file is UTF-8");
        test_only.extend(test_only_files(entry.path(), &text));
        sources.insert(entry.path().to_path_buf(), without_tests(&text));
    }
    let mut found: BTreeMap<Code, BTreeSet<String>> = Code::ALL.iter().map(|c| (*c, BTreeSet::new())).collect();
    for (path, text) in sources.iter().filter(|(path, _)| !test_only.contains(*path)) {
        let shown = path.strip_prefix(&root).expect("under the repository").to_string_lossy().replace('\\', "/");
        for code in Code::ALL.iter().filter(|c| mentions(text, **c)) {
            found.entry(*code).or_default().insert(shown.clone());
        }
    }
    found
}

/// The files a page names on its `Emitted by:` line; `None` without one.
fn named(page: &str) -> Option<BTreeSet<String>> {
    let line = page.lines().find_map(|l| l.strip_prefix(EMITTED_BY))?;
    Some(line.split('`').skip(1).step_by(2).map(str::to_string).collect())
}

fn emitted_by_line(files: &BTreeSet<String>) -> String {
    let listed: Vec<String> = files.iter().map(|f| format!("`{f}`")).collect();
    format!("{EMITTED_BY}{}", listed.join(", "))
}

/// The page with its `Emitted by:` line set to `files`: replaced where it is, else placed
/// after the `Check:` line.
fn blessed(page: &str, files: &BTreeSet<String>) -> String {
    let line = emitted_by_line(files);
    let mut out: Vec<String> = Vec::new();
    let mut placed = false;
    for l in page.lines() {
        if l.starts_with(EMITTED_BY) {
            if !placed {
                out.push(line.clone());
                placed = true;
            }
            continue;
        }
        out.push(l.to_string());
        if !placed && l.starts_with("Check:") {
            out.push(line.clone());
            placed = true;
        }
    }
    let mut text = out.join("\n");
    if page.ends_with('\n') {
        text.push('\n');
    }
    text
}

#[test]
fn every_page_names_the_files_that_emit_its_code() {
    let bless = std::env::var_os(BLESS).is_some();
    let mut problems = Vec::new();
    for (code, files) in emitters() {
        let path = page_path(code);
        let page = std::fs::read_to_string(&path).expect("every code has a page");
        if files.is_empty() {
            problems.push(format!("{code}: no file under src/ mentions Code::{code} outside tests"));
            continue;
        }
        let Some(listed) = named(&page) else {
            problems
                .push(format!("{code}: the page has no `{EMITTED_BY}` line; expected `{}`", emitted_by_line(&files)));
            if bless {
                std::fs::write(&path, blessed(&page, &files)).expect("the page is writable");
            }
            continue;
        };
        if listed.is_empty() {
            problems.push(format!("{code}: the page's `{EMITTED_BY}` line names no file"));
        }
        for file in &listed {
            match std::fs::read_to_string(repo_root().join(file)) {
                Err(_) => problems.push(format!("{code}: the page names {file}, which does not exist")),
                Ok(text) if !mentions(&without_tests(&text), code) => {
                    problems.push(format!("{code}: the page names {file}, which does not emit Code::{code}"))
                }
                Ok(_) => {}
            }
        }
        if listed != files {
            problems.push(format!("{code}: the page names {listed:?}, but Code::{code} is emitted from {files:?}"));
            if bless {
                std::fs::write(&path, blessed(&page, &files)).expect("the page is writable");
            }
        }
    }
    if bless {
        return;
    }
    assert!(
        problems.is_empty(),
        "docs/codes pages are out of step with the source (run scripts/code-emitters.sh to rewrite the \
         `{EMITTED_BY}` lines):\n{}",
        problems.join("\n")
    );
}

#[test]
fn test_items_and_test_only_files_are_not_emitters() {
    let text = "fn a() { Code::REG001 }\n#[cfg(test)]\nmod tests {\n    fn b() { Code::REG002 }\n}\n\
                #[cfg(test)]\nmod support;\n";
    let kept = without_tests(text);
    assert!(mentions(&kept, Code::REG001));
    assert!(!mentions(&kept, Code::REG002));
    assert!(!mentions("Code::REG0010", Code::REG001), "a longer name is not the code");
    assert_eq!(
        test_only_files(Path::new("src/x/mod.rs"), text),
        [PathBuf::from("src/x/support.rs"), PathBuf::from("src/x/support/mod.rs")]
    );
    assert_eq!(test_only_files(Path::new("src/x.rs"), text)[0], PathBuf::from("src/x/support.rs"));
}

#[test]
fn blessing_places_the_line_after_the_check_line_and_replaces_it_later() {
    let files: BTreeSet<String> = ["src/b.rs".to_string(), "src/a.rs".to_string()].into();
    let page = "# REG001: T\n\nSeverity: error\nCheck: registry\n\n## What it means\n";
    let once = blessed(page, &files);
    assert_eq!(
        once,
        "# REG001: T\n\nSeverity: error\nCheck: registry\nEmitted by: `src/a.rs`, `src/b.rs`\n\n## What it means\n"
    );
    assert_eq!(named(&once), Some(files.clone()));
    let fewer: BTreeSet<String> = ["src/c.rs".to_string()].into();
    assert_eq!(blessed(&once, &fewer), page.replace("registry\n", "registry\nEmitted by: `src/c.rs`\n"));
}
