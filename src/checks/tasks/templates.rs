//! Reads the pipeline files and the local templates they include (`template:` at any level,
//! `extends: template:`), each file once, in parallel, then gathers for every pipeline file
//! the references in it and in everything it includes.
//!
//! Paths resolve relative to the including file, or to the repository root when they start
//! with `/`; `path@self` is local, `path@alias` is in another repository and is not fetched.
//! As in Azure Pipelines, a template must lie inside the sources folder once symbolic links
//! are followed: one outside (`../../x.yml`, `//etc/x`, a link out of the checkout) is a
//! TSK010 finding and is never read.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use super::discover::{display_path, normalize, PipelineFile, Place, SourcesRoot};
use super::reference::has_expression;
use super::scan::{self, IncludeKind, Lines, RawReference, Scanned};
use crate::codes::Code;
use crate::finding::{Finding, Location};
use crate::fsread;
use crate::sanitize::sanitize;

/// What our pin markers and suppressions both contain.
const OWN_COMMENT: &str = "azp-preflight";

/// Azure Pipelines stops at 100 nested template files; so do we.
const MAX_DEPTH: usize = 100;

/// One YAML file, read and scanned.
#[derive(Debug)]
pub struct ScannedFile {
    pub path: PathBuf,
    /// How reports name it.
    pub display: String,
    /// The text (without a byte order mark), for suppressions and `fix`.
    pub text: String,
    pub bom: bool,
    /// Set when the file could not be read.
    pub read_error: Option<String>,
    pub scanned: Scanned,
    line_starts: Vec<usize>,
    /// `text.is_ascii()`, found once: columns are then bytes.
    ascii: bool,
    /// The lines (1-based, in order) that carry one of our own comments: a pin marker or a
    /// suppression. Found with one search of the text, not one per reference.
    own_comment_lines: Vec<u32>,
}

impl ScannedFile {
    /// Reads `path` (a regular file of at most `fsread::limits::PIPELINE` bytes; a FIFO or a
    /// device is refused at once).
    pub fn read(path: &Path, display: String) -> ScannedFile {
        ScannedFile::read_from(path.to_path_buf(), path, display)
    }

    /// Reads the file known as `path` from `real`, where its links lead.
    pub fn read_from(path: PathBuf, real: &Path, display: String) -> ScannedFile {
        let (text, bom, read_error) = match fsread::read(real, fsread::limits::PIPELINE) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(mut text) => {
                    let bom = text.starts_with('\u{feff}');
                    if bom {
                        text.drain(..3);
                    }
                    (text, bom, None)
                }
                Err(_) => (String::new(), false, Some("it is not UTF-8 text".to_string())),
            },
            Err(e) => (String::new(), false, Some(e.to_string())),
        };
        ScannedFile::from_text(path, display, text, bom, read_error)
    }

    pub fn from_text(
        path: PathBuf,
        display: String,
        text: String,
        bom: bool,
        read_error: Option<String>,
    ) -> ScannedFile {
        let line_starts = scan::line_starts(&text);
        let ascii = text.is_ascii();
        let scanned = match read_error {
            None => scan::scan_with(&text, &Lines::known(&text, &line_starts, ascii)),
            Some(_) => Scanned::default(),
        };
        let mut own_comment_lines: Vec<u32> = memchr::memmem::find_iter(text.as_bytes(), OWN_COMMENT)
            .map(|at| line_starts.partition_point(|&start| start <= at) as u32)
            .collect();
        own_comment_lines.dedup();
        ScannedFile { path, display, text, bom, read_error, scanned, line_starts, ascii, own_comment_lines }
    }

    /// Whether 1-based `line` carries one of our own comments (`OWN_COMMENT`).
    pub fn has_own_comment(&self, line: u32) -> bool {
        self.own_comment_lines.binary_search(&line).is_ok()
    }

    pub fn lines(&self) -> Lines<'_> {
        Lines::known(&self.text, &self.line_starts, self.ascii)
    }
}

/// A reference and the file it is in.
#[derive(Debug, Clone)]
pub struct FoundRef {
    pub file: Arc<ScannedFile>,
    index: usize,
}

impl FoundRef {
    /// The file's `index`-th reference; `None` past the end.
    pub fn new(file: Arc<ScannedFile>, index: usize) -> Option<FoundRef> {
        (index < file.scanned.references.len()).then_some(FoundRef { file, index })
    }

    pub fn raw(&self) -> &RawReference {
        &self.file.scanned.references[self.index]
    }

    /// The reference's value, as YAML reads it.
    pub fn value(&self) -> &str {
        self.file.scanned.value(self.raw())
    }

    /// The step's literal inputs (name, value), in the order written.
    pub fn inputs(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.file.scanned.inputs_of(self.raw())
    }
}

/// Everything one pipeline file leads to.
#[derive(Debug, Default)]
pub struct PipelineScan {
    pub display: String,
    pub references: Vec<FoundRef>,
    /// TSK007 (unresolvable or remote template), TSK008, TSK009.
    pub findings: Vec<Finding>,
    /// Files read for this pipeline, the pipeline first.
    pub files: Vec<Arc<ScannedFile>>,
}

/// Where an include points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Local(PathBuf),
    Remote { path: String, alias: String },
    Expression,
}

/// Resolves `value` as written in `including`, asking `exists` whether a file is there (for
/// the root-relative fallback). `repo_root` is absolute, so a result outside it is visible
/// by its spelling.
pub(crate) fn resolve_include_with(
    value: &str,
    including: &Path,
    repo_root: &Path,
    exists: &dyn Fn(&Path) -> bool,
) -> Target {
    let value = value.trim();
    if has_expression(value) {
        return Target::Expression;
    }
    let path = match value.rsplit_once('@') {
        Some((p, alias)) if !alias.eq_ignore_ascii_case("self") => {
            return Target::Remote { path: p.to_string(), alias: alias.to_string() }
        }
        Some((p, _)) => p,
        None => value,
    };
    let path = path.replace('\\', "/");
    let joined = match path.strip_prefix('/') {
        Some(rooted) => repo_root.join(rooted),
        None => including.parent().unwrap_or(repo_root).join(&path),
    };
    let local = normalize(&joined);
    // Some repositories write root-relative paths without the leading `/`.
    if !exists(&local) {
        let from_root = normalize(&repo_root.join(path.trim_start_matches('/')));
        if exists(&from_root) {
            return Target::Local(from_root);
        }
    }
    Target::Local(local)
}

/// Pipelines and templates read in one run, at most: twice the pipeline-file cap leaves room
/// for their templates, and keeps a hostile include graph from reading without end.
pub const MAX_FILES: usize = 2 * super::discover::MAX_PIPELINE_FILES;

/// Reads all pipeline files and every local template reachable from them.
pub struct Collection {
    files: HashMap<PathBuf, Arc<ScannedFile>>,
    /// Included paths that lead outside the sources folder, and where they lead; never read.
    outside: HashMap<PathBuf, PathBuf>,
    root: SourcesRoot,
    /// Set when `MAX_FILES` stopped the reading: some templates were not read.
    pub capped: bool,
}

impl Collection {
    pub fn read(roots: &[PipelineFile], repo_root: &Path) -> Collection {
        Collection::read_within(roots, &SourcesRoot::new(repo_root), &AtomicBool::new(false))
    }

    /// As `read`, stopping (with what was read so far) when `cancel` is set.
    pub fn read_within(roots: &[PipelineFile], root: &SourcesRoot, cancel: &AtomicBool) -> Collection {
        let mut c = Collection { files: HashMap::new(), outside: HashMap::new(), root: root.clone(), capped: false };
        let mut todo: Vec<(PathBuf, String)> = roots.iter().map(|r| (root.key(&r.path), r.display.clone())).collect();
        while !todo.is_empty() && !cancel.load(Ordering::Relaxed) {
            todo.retain(|(p, _)| !c.files.contains_key(p) && !c.outside.contains_key(p));
            todo.sort();
            todo.dedup_by(|a, b| a.0 == b.0);
            let room = MAX_FILES.saturating_sub(c.files.len());
            if todo.len() > room {
                todo.truncate(room);
                c.capped = true;
            }
            let mut to_read = Vec::with_capacity(todo.len());
            for (key, display) in todo {
                match root.locate(&key) {
                    Place::Inside(real) => to_read.push((key, real, display)),
                    Place::Outside(real) => {
                        c.outside.insert(key, real);
                    }
                    Place::Missing => {
                        let missing =
                            ScannedFile::from_text(key, display, String::new(), false, Some("no such file".into()));
                        c.files.insert(missing.path.clone(), Arc::new(missing));
                    }
                }
            }
            let mut next = Vec::new();
            let read = in_parallel(&to_read, cancel, |(path, real, display)| {
                ScannedFile::read_from(path.clone(), real, display.clone())
            });
            for file in read {
                let mut asked: HashSet<&str> = HashSet::new();
                for inc in &file.scanned.includes {
                    if !asked.insert(inc.value.as_str()) {
                        continue;
                    }
                    let exists = |p: &Path| p.starts_with(root.path()) && p.exists();
                    if let Target::Local(path) = resolve_include_with(&inc.value, &file.path, root.path(), &exists) {
                        let known = c.files.contains_key(&path) || c.outside.contains_key(&path);
                        // Outside by its spelling: recorded (never looked at) in the next round.
                        if !known && (exists(&path) || !path.starts_with(root.path())) {
                            let display = display_path(root.path(), &path);
                            next.push((path, display));
                        }
                    }
                }
                c.files.insert(file.path.clone(), Arc::new(file));
            }
            todo = next;
        }
        c
    }

    /// The key a file is known by: absolute and normalised.
    pub fn key(&self, path: &Path) -> PathBuf {
        self.root.key(path)
    }

    pub fn get(&self, path: &Path) -> Option<&Arc<ScannedFile>> {
        self.files.get(&self.root.key(path))
    }

    /// The references and include findings for one pipeline file (display as given for it).
    pub fn pipeline(&self, root: &PipelineFile) -> PipelineScan {
        let mut out = PipelineScan { display: root.display.clone(), ..Default::default() };
        let key = self.root.key(&root.path);
        if let Some(real) = self.outside.get(&key) {
            out.findings.push(outside_finding("pipeline file", &root.display, &root.display, 1, 1, real));
            return out;
        }
        let Some(file) = self.files.get(&key).cloned() else { return out };
        let mut seen = HashSet::new();
        self.visit(&file, 0, &mut seen, &mut out);
        out
    }

    /// Paths of local templates included (directly or not) by this file.
    pub fn included_by(&self, root: &PipelineFile) -> HashSet<PathBuf> {
        let scan = self.pipeline(root);
        scan.files.iter().skip(1).map(|f| f.path.clone()).collect()
    }

    fn visit(&self, file: &Arc<ScannedFile>, depth: usize, seen: &mut HashSet<PathBuf>, out: &mut PipelineScan) {
        if depth > MAX_DEPTH {
            // A stop says where it happened, like every other.
            out.findings.push(
                Finding::new(
                    Code::TSK007,
                    format!(
                        "{} is reached through more than {MAX_DEPTH} nested templates; it and what it includes were not checked",
                        file.display
                    ),
                )
                .remedy("Flatten the template chain: Azure Pipelines itself refuses nesting this deep.")
                .at(Location::new(file.display.clone(), 1, 1))
                .data("limit", MAX_DEPTH),
            );
            return;
        }
        if !seen.insert(file.path.clone()) {
            return;
        }
        let shown = file.display.clone();
        out.files.push(file.clone());
        if let Some(err) = &file.read_error {
            out.findings.push(
                Finding::new(Code::TSK008, format!("cannot read {shown}: {}", sanitize(err)))
                    .remedy("Make the file readable UTF-8 text, or remove it from pipelineFiles / --pipeline.")
                    .at(Location::new(shown.clone(), 1, 1))
                    .data("file", shown.clone()),
            );
            return;
        }
        out.findings.extend(file.scanned.problems.iter().map(|problem| problem_finding(&shown, problem)));
        out.references.extend((0..file.scanned.references.len()).map(|index| FoundRef { file: file.clone(), index }));
        // A file includes the same template many times (once per stage, say): each value is
        // resolved once. Only local templates that were read are remembered; every other
        // include is reported where it is written.
        let mut read_children: HashMap<&str, &Arc<ScannedFile>> = HashMap::new();
        for inc in &file.scanned.includes {
            if let Some(&child) = read_children.get(inc.value.as_str()) {
                self.visit(child, depth + 1, seen, out);
                continue;
            }
            let known = |p: &Path| self.files.contains_key(p) || self.outside.contains_key(p);
            let target = resolve_include_with(&inc.value, &file.path, self.root.path(), &known);
            if let Some(child) = match &target {
                Target::Local(path) => self.files.get(path),
                _ => None,
            } {
                read_children.insert(&inc.value, child);
                self.visit(child, depth + 1, seen, out);
                continue;
            }
            let at = Location::new(shown.clone(), inc.line, inc.column);
            let what = if inc.kind == IncludeKind::Extends { "extends template" } else { "template" };
            let value = sanitize(&inc.value);
            match target {
                Target::Expression => out.findings.push(
                    Finding::new(
                        Code::TSK007,
                        format!("{what} `{value}` is chosen by an expression; task references inside it are not checked"),
                    )
                    .remedy("List the possible template files in pipelineFiles / --pipeline so their task references are checked too.")
                    .at(at)
                    .data("template", value),
                ),
                Target::Remote { path, alias } => out.findings.push(
                    Finding::new(
                        Code::TSK007,
                        format!(
                            "{what} `{value}` is in the repository resource `{}`, which is not fetched; task references inside it are not checked",
                            sanitize(&alias)
                        ),
                    )
                    .remedy(format!(
                        "Check out that repository in the job (`- checkout: {}`) and add its templates to pipelineFiles, or run azp-preflight in that repository.",
                        sanitize(&alias)
                    ))
                    .at(at)
                    .data("template", sanitize(&path))
                    .data("repository", sanitize(&alias)),
                ),
                Target::Local(path) if self.outside.contains_key(&path) => {
                    let real = &self.outside[&path];
                    out.findings.push(outside_finding(what, &value, &shown, inc.line, inc.column, real));
                }
                Target::Local(path) => {
                    let expected = display_path(self.root.path(), &path);
                    out.findings.push(
                        Finding::new(
                            Code::TSK009,
                            format!("{what} `{value}` included from {shown} was not found (looked for {expected})"),
                        )
                        .remedy(
                            "Fix the path: it is relative to the including file, or to the repository root when it \
                             starts with `/`. Add `@self` only for the pipeline's own repository.",
                        )
                        .at(at)
                        .data("template", value)
                        .data("expected", expected),
                    )
                }
            }
        }
    }
}

/// TSK010: an include (or a found pipeline file) that leads outside the sources folder.
fn outside_finding(what: &str, value: &str, shown: &str, line: u32, column: u32, real: &Path) -> Finding {
    let lands = sanitize(&real.display().to_string());
    let message = if what == "pipeline file" {
        format!("pipeline file {shown} leads outside the sources folder (to {lands}); it was not read")
    } else {
        format!("{what} `{value}` included from {shown} leads outside the sources folder (to {lands}); it was not read")
    };
    Finding::new(Code::TSK010, message)
        .remedy(
            "Azure Pipelines reads templates from the repository only: move the file into the repository, or take \
             it from another repository with `path@alias` and `resources.repositories`. Replace a symbolic link \
             that points out of the checkout with the file itself.",
        )
        .at(Location::new(shown, line, column))
        .data("template", value.to_string())
        .data("resolved", lands)
}

fn problem_finding(shown: &str, problem: &scan::Problem) -> Finding {
    match problem {
        scan::Problem::Syntax { line, column, message } => Finding::new(
            Code::TSK008,
            format!(
                "{shown} is not valid YAML: {} at line {line}, column {column}; scanning stopped there, so task \
                 references and templates after it were not checked",
                sanitize(message)
            ),
        )
        .remedy("Fix the YAML at that place (indentation, an unclosed quote or bracket, a tab); references before it were still checked.")
        .at(Location::new(shown, *line, *column))
        .data("kind", "syntax")
        .data("stoppedAtLine", *line),
        scan::Problem::Handlebars { line, column, snippet } => Finding::new(
            Code::TSK008,
            format!(
                "{shown} holds Handlebars placeholders (`{}`), so it is a starter template, not pipeline YAML",
                sanitize(snippet)
            ),
        )
        .remedy("Replace the `{{ ... }}` placeholders with values or `${{ }}` template expressions, or leave this file out of pipelineFiles / --pipeline.")
        .at(Location::new(shown, *line, *column))
        .data("kind", "handlebars"),
    }
}

/// Reads and scans the files (known path, real path, display) on all cores; stops early
/// when `cancel` is set.
/// `work` on every item, in order, on up to one thread per core (at most 8); items not yet
/// started when `cancel` is set are left out.
pub(crate) fn in_parallel<T: Sync, R: Send>(items: &[T], cancel: &AtomicBool, work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).clamp(1, 8).min(items.len());
    if workers <= 1 {
        return items.iter().take_while(|_| !cancel.load(Ordering::Relaxed)).map(work).collect();
    }
    let next = AtomicUsize::new(0);
    let mut results: Vec<(usize, R)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i).filter(|_| !cancel.load(Ordering::Relaxed)) else { break };
                        mine.push((i, work(item)));
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (name, text) in files {
            let p = dir.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
    }

    fn root(dir: &Path, name: &str) -> PipelineFile {
        PipelineFile { display: name.into(), path: dir.join(name) }
    }

    #[test]
    fn follows_local_templates_once_with_a_recursion_guard() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                ("azure-pipelines.yml", "extends:\n  template: ci/stages.yml\n"),
                ("ci/stages.yml", "stages:\n- stage: A\n  jobs:\n  - template: jobs.yml\n  - template: jobs.yml\n"),
                (
                    "ci/jobs.yml",
                    "jobs:\n- job: J\n  steps:\n  - task: Docker@2\n  - template: /steps/common.yml@self\n",
                ),
                ("steps/common.yml", "steps:\n- task: NuGetCommand@2.244.1\n- template: ../ci/jobs.yml\n"),
            ],
        );
        let roots = [root(dir.path(), "azure-pipelines.yml")];
        let c = Collection::read(&roots, dir.path());
        let scan = c.pipeline(&roots[0]);
        let refs: Vec<(String, String, u32)> =
            scan.references.iter().map(|r| (r.file.display.clone(), r.value().to_string(), r.raw().line)).collect();
        assert_eq!(
            refs,
            [
                ("ci/jobs.yml".into(), "Docker@2".into(), 4),
                ("steps/common.yml".into(), "NuGetCommand@2.244.1".into(), 2)
            ]
        );
        assert!(scan.findings.is_empty(), "{:?}", scan.findings);
        assert_eq!(c.included_by(&roots[0]).len(), 3);
    }

    #[test]
    fn missing_remote_and_computed_templates() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[(
                "p.yml",
                "steps:\n- template: nope.yml\n- template: t.yml@templates\n- template: ${{ parameters.t }}\n- task: A@1\n",
            )],
        );
        let roots = [root(dir.path(), "p.yml")];
        let scan = Collection::read(&roots, dir.path()).pipeline(&roots[0]);
        let codes: Vec<(Code, u32)> =
            scan.findings.iter().map(|f| (f.code, f.location.as_ref().unwrap().line)).collect();
        assert_eq!(codes, [(Code::TSK009, 2), (Code::TSK007, 3), (Code::TSK007, 4)]);
        assert!(scan.findings[0].message.contains("nope.yml"));
        assert_eq!(scan.references.len(), 1);
    }

    #[test]
    fn root_relative_fallback_and_windows_separators() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                ("presets/p.yml", "steps:\n- template: steps/build.yml\n- template: .\\local.yml\n"),
                ("presets/local.yml", "steps:\n- task: B@1\n"),
                ("steps/build.yml", "steps:\n- task: A@1\n"),
            ],
        );
        let roots = [root(dir.path(), "presets/p.yml")];
        let scan = Collection::read(&roots, dir.path()).pipeline(&roots[0]);
        assert!(scan.findings.is_empty(), "{:?}", scan.findings);
        assert_eq!(scan.references.len(), 2);
    }

    #[test]
    fn a_chain_deeper_than_azure_pipelines_allows_says_where_it_was_cut() {
        let dir = tempfile::tempdir().unwrap();
        let mut files: Vec<(String, String)> = (0..=MAX_DEPTH + 2)
            .map(|i| (format!("t{i}.yml"), format!("steps:\n- task: A@1\n- template: t{}.yml\n", i + 1)))
            .collect();
        files.push((format!("t{}.yml", MAX_DEPTH + 3), "steps: []\n".into()));
        let borrowed: Vec<(&str, &str)> = files.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
        write(dir.path(), &borrowed);
        let roots = [root(dir.path(), "t0.yml")];
        let scan = Collection::read(&roots, dir.path()).pipeline(&roots[0]);
        assert_eq!(scan.references.len(), MAX_DEPTH + 1);
        let cut: Vec<&Finding> = scan.findings.iter().filter(|f| f.code == Code::TSK007).collect();
        assert_eq!(cut.len(), 1, "{:?}", scan.findings);
        assert_eq!(cut[0].location.as_ref().unwrap().file, format!("t{}.yml", MAX_DEPTH + 1));
    }

    #[test]
    fn unreadable_and_invalid_files() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &[("bad.yml", "steps:\n- task: A@1\n  x: [\n"), ("p.yml", "steps:\n- template: bad.yml\n")]);
        std::fs::write(dir.path().join("bin.yml"), [0xff, 0xfe, 0x00]).unwrap();
        let roots = [root(dir.path(), "p.yml"), root(dir.path(), "bin.yml")];
        let c = Collection::read(&roots, dir.path());
        let scan = c.pipeline(&roots[0]);
        assert_eq!(scan.findings.len(), 1);
        assert_eq!(scan.findings[0].code, Code::TSK008);
        assert_eq!(scan.findings[0].location.as_ref().unwrap().file, "bad.yml");
        assert_eq!(scan.references.len(), 1);
        let bin = c.pipeline(&roots[1]);
        assert!(bin.findings[0].message.contains("not UTF-8"), "{:?}", bin.findings);
    }
}
