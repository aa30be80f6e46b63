//! Which pipeline files to scan: the `pipelineFiles` input / `--pipeline` (files or globs
//! relative to the sources folder, with `{a,b}` alternatives); else, in a pipeline with a job
//! token, the definition's `process.yamlFilename`; else discovery: the conventional names, and
//! any `.yml`/`.yaml` file whose top-level mapping holds `steps`, `jobs`, `stages` (lists of
//! Azure Pipelines steps, jobs, stages) or `extends` (real repositories keep pipelines in `.pipelines/`, `.ado/`,
//! `eng/pipelines/`, `build/`, `ci/` and the like).

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use glob::{MatchOptions, Pattern};
use walkdir::WalkDir;

use crate::net::{HttpClient, Request};
use crate::secret::Secret;
use crate::settings::InputError;

/// Folders never searched: build output, dependencies, VCS data.
const SKIPPED_DIRS: &[&str] = &["target", "node_modules", ".git"];
/// Folders discovery (no `--pipeline`) does not enter either: vendored trees and build output
/// hold other projects' YAML.
pub const DISCOVERY_SKIPPED_DIRS: &[&str] = &[
    "target",
    "node_modules",
    ".git",
    "vendor",
    "third_party",
    "third-party",
    "bin",
    "obj",
    "dist",
    "out",
    ".venv",
    "venv",
    "bower_components",
];
/// How much of a `.yml`/`.yaml` file discovery reads to tell a pipeline by its content: real
/// templates declare long `parameters` blocks before their `steps`/`jobs`/`stages`.
pub const PROBE_BYTES: u64 = 64 << 10;
/// Files discovery reads to look at their content, at most: one hostile tree of YAML cannot
/// make the search read without end.
pub const MAX_PROBES: usize = 2 * MAX_PIPELINE_FILES;
/// How deep globs and the conventional search descend.
const MAX_DEPTH: usize = 24;
/// The most pipeline files one run scans. A repository with more (a glob such as `**/*.yml`
/// over a monorepo, or generated YAML) gets one note saying the search stopped here, instead
/// of a run that cannot finish within its deadline.
pub const MAX_PIPELINE_FILES: usize = 10_000;

pub const CONVENTIONAL: &[&str] = &[
    "azure-pipelines.yml",
    "azure-pipelines.yaml",
    ".azure-pipelines.yml",
    ".azure-pipelines.yaml",
    ".azuredevops/**/*.yml",
    ".azuredevops/**/*.yaml",
    "**/*azure-pipelines*.yml",
    "**/*azure-pipelines*.yaml",
];

/// A file to scan and how reports name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineFile {
    /// The path as given, or relative to the sources folder (with `/`) when found.
    pub display: String,
    pub path: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// Named by the user; every file gets an entry.
    Given,
    /// The pipeline definition's YAML file.
    Definition,
    /// Conventional names: a found file that another found file includes is only a template.
    Conventional,
}

/// The sources folder as a boundary. Azure Pipelines reads templates from the repository
/// only, so a path that leads elsewhere (`../`, `//etc/...`, a symbolic link out of the
/// checkout) is never read, let alone rewritten by `fix`.
#[derive(Debug, Clone)]
pub struct SourcesRoot {
    /// Absolute, with `.` and `..` resolved as written.
    lexical: PathBuf,
    /// With every symbolic link followed.
    real: PathBuf,
}

/// Where a path leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// Inside the sources folder, at this real path (links followed).
    Inside(PathBuf),
    /// Outside: the path as written, or where its links lead.
    Outside(PathBuf),
    /// Inside as written, but nothing is there.
    Missing,
}

impl SourcesRoot {
    pub fn new(dir: &Path) -> SourcesRoot {
        let lexical = normalize(&std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf()));
        let real = std::fs::canonicalize(&lexical).unwrap_or_else(|_| lexical.clone());
        SourcesRoot { lexical, real }
    }

    /// The folder as written (absolute): the base for joins and displayed names.
    pub fn path(&self) -> &Path {
        &self.lexical
    }

    /// `path` made absolute and normalised: the key a file is known by.
    pub fn key(&self, path: &Path) -> PathBuf {
        normalize(&self.lexical.join(path))
    }

    /// Where `path` leads. A path outside as written is not looked at on disk at all; one
    /// inside is resolved (links followed) without being opened, so a FIFO cannot block.
    pub fn locate(&self, path: &Path) -> Place {
        let key = self.key(path);
        if !key.starts_with(&self.lexical) {
            return Place::Outside(key);
        }
        match std::fs::canonicalize(&key) {
            Ok(real) if real.starts_with(&self.real) => Place::Inside(real),
            Ok(real) => Place::Outside(real),
            Err(_) => Place::Missing,
        }
    }
}

/// What discovery found.
#[derive(Debug, Default)]
pub struct Discovered {
    pub files: Vec<PipelineFile>,
    /// Found files that are links leading outside the sources folder: not read.
    pub outside: Vec<(String, PathBuf)>,
    /// More files matched than `MAX_PIPELINE_FILES`; the search stopped there.
    pub capped: bool,
    /// Discovery: files found by their name, and by their content.
    pub by_name: usize,
    pub by_content: usize,
    /// Discovery read the start of `MAX_PROBES` files and looked at no more.
    pub probes_capped: bool,
    /// Given patterns that matched nothing (while another did).
    pub empty_patterns: Vec<String>,
}

/// Gathers found files once each (by real path), up to the cap.
struct Collector<'a> {
    root: &'a SourcesRoot,
    seen: HashSet<PathBuf>,
    out: Discovered,
}

impl<'a> Collector<'a> {
    fn new(root: &'a SourcesRoot) -> Self {
        Collector { root, seen: HashSet::new(), out: Discovered::default() }
    }

    /// Adds a file whose real path is known; false once the cap is reached.
    fn push(&mut self, file: PipelineFile, real: PathBuf) -> bool {
        if self.seen.contains(&real) {
            return true;
        }
        if self.out.files.len() >= MAX_PIPELINE_FILES {
            self.out.capped = true;
            return false;
        }
        self.seen.insert(real);
        self.out.files.push(file);
        true
    }

    /// Adds a file found by walking `base` (whose real path is `base_real`).
    fn push_walked(&mut self, base_real: &Path, walked: Walked, display: String) -> bool {
        if !walked.link {
            // The walk does not follow links below its base, so the real path is known.
            return self.push(PipelineFile { display, path: walked.path }, base_real.join(&walked.rel));
        }
        match self.root.locate(&walked.path) {
            Place::Inside(real) if real.is_file() => self.push(PipelineFile { display, path: walked.path }, real),
            Place::Outside(real) => {
                self.out.outside.push((display, real));
                true
            }
            // A link to a folder, a FIFO or nothing: not a pipeline file.
            _ => true,
        }
    }
}

const OPTIONS: MatchOptions =
    MatchOptions { case_sensitive: true, require_literal_separator: true, require_literal_leading_dot: false };

fn has_glob(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

/// A literal `pipelineFiles` entry: a regular file inside the sources folder; `None` when
/// nothing is there; anything else is bad input.
fn literal_file(root: &SourcesRoot, pattern: &str, input: &str) -> Result<Option<(PipelineFile, PathBuf)>, InputError> {
    let path = root.path().join(pattern);
    let bad = |why: String| {
        InputError::new(
            input,
            pattern,
            &format!("a pipeline YAML file or glob inside the sources folder {} ({why})", root.path().display()),
        )
    };
    match root.locate(&path) {
        Place::Missing => Ok(None),
        Place::Outside(_) => Err(bad("it is outside the sources folder".into())),
        Place::Inside(real) => match std::fs::metadata(&real) {
            Ok(meta) if meta.is_file() => Ok(Some((PipelineFile { display: pattern.to_string(), path }, real))),
            Ok(meta) => Err(bad(format!("it is a {}, not a regular file", kind_of(&meta)))),
            Err(e) => Err(bad(e.to_string())),
        },
    }
}

fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    if meta.is_dir() {
        return "directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let ft = meta.file_type();
        if ft.is_fifo() {
            return "FIFO";
        }
        if ft.is_char_device() || ft.is_block_device() {
            return "device";
        }
    }
    "special file"
}

/// A glob's folder to walk (inside the sources folder), its real path, and the compiled rest;
/// `None` when that folder is not there.
fn glob_parts(
    root: &SourcesRoot,
    pattern: &str,
    input: &str,
) -> Result<Option<(PathBuf, PathBuf, Pattern)>, InputError> {
    let normalized = pattern.replace('\\', "/");
    let (base, rest) = split_literal_prefix(&normalized);
    let compiled = Pattern::new(&rest)
        .map_err(|e| InputError::new(input, pattern, &format!("a valid glob such as `ci/**/*.yml` ({})", e.msg)))?;
    let base_dir = root.path().join(&base);
    match root.locate(&base_dir) {
        Place::Inside(real) => Ok(Some((base_dir, real, compiled))),
        Place::Missing => Ok(None),
        Place::Outside(_) => {
            Err(InputError::new(input, pattern, &format!("a glob inside the sources folder {}", root.path().display())))
        }
    }
}

/// Checks the given patterns without collecting every match (each glob stops at its first
/// match): a file outside the sources folder, a FIFO, an invalid glob, braces that expand too
/// far, or patterns of which none matches anything are bad input naming the input and the
/// value. One pattern matching nothing while another matches is not (`**/*.yml` and
/// `**/*.yaml` in a repository that uses one of them): the run notes it.
pub fn validate_patterns(sources_dir: &Path, patterns: &[String], input: &str) -> Result<(), InputError> {
    let root = SourcesRoot::new(sources_dir);
    let never = AtomicBool::new(false);
    let mut any = false;
    for raw in patterns {
        for piece in alternatives(raw.trim(), input)? {
            if any {
                // Still checked for bad input, but no need to walk again.
                if !has_glob(&piece) {
                    literal_file(&root, &piece, input)?;
                } else {
                    glob_parts(&root, &piece, input)?;
                }
                continue;
            }
            any = match_piece(&root, &piece, input, &never, &mut |_| true)?;
        }
    }
    if !any {
        return Err(none_matched(&root, patterns, input));
    }
    Ok(())
}

/// The brace alternatives of one given pattern; too many is bad input.
fn alternatives(pattern: &str, input: &str) -> Result<Vec<String>, InputError> {
    super::patterns::expand_braces(pattern)
        .map_err(|why| InputError::new(input, pattern, &format!("a glob with {why}, such as `**/*.{{yml,yaml}}`")))
}

/// Feeds every file one alternative matches to `found` (which returns true to stop); says
/// whether anything matched. A literal file that is not there, or a glob whose folder is not
/// there, matches nothing; anything else wrong with it is bad input.
fn match_piece(
    root: &SourcesRoot,
    piece: &str,
    input: &str,
    cancel: &AtomicBool,
    found: &mut dyn FnMut(Matched) -> bool,
) -> Result<bool, InputError> {
    if !has_glob(piece) {
        return Ok(match literal_file(root, piece, input)? {
            Some((file, real)) => {
                found(Matched::Literal(file, real));
                true
            }
            None => false,
        });
    }
    let Some((base_dir, base_real, compiled)) = glob_parts(root, piece, input)? else { return Ok(false) };
    let mut matched = false;
    for walked in walk(&base_dir, cancel, SKIPPED_DIRS) {
        if compiled.matches_with(&walked.rel, OPTIONS) {
            matched = true;
            if found(Matched::Walked(base_real.clone(), walked)) {
                break;
            }
        }
    }
    Ok(matched)
}

enum Matched {
    /// A literal file and its real path.
    Literal(PipelineFile, PathBuf),
    /// A file a glob found by walking a folder (whose real path comes first).
    Walked(PathBuf, Walked),
}

fn none_matched(root: &SourcesRoot, patterns: &[String], input: &str) -> InputError {
    let shown: Vec<&str> = patterns.iter().map(|p| p.trim()).collect();
    InputError::new(
        input,
        &shown.join(", "),
        &format!("a file or glob that matches at least one file under {} (none of these did)", root.path().display()),
    )
}

/// Resolves the given patterns; a file that does not exist or a glob that matches nothing is
/// bad input naming the input and the value when no pattern matches anything.
pub fn from_patterns(sources_dir: &Path, patterns: &[String], input: &str) -> Result<Vec<PipelineFile>, InputError> {
    Ok(from_patterns_within(&SourcesRoot::new(sources_dir), patterns, input, &AtomicBool::new(false))?.files)
}

/// As `from_patterns`, stopping at `MAX_PIPELINE_FILES` or when `cancel` is set.
pub fn from_patterns_within(
    root: &SourcesRoot,
    patterns: &[String],
    input: &str,
    cancel: &AtomicBool,
) -> Result<Discovered, InputError> {
    let mut found = Collector::new(root);
    for raw in patterns {
        let pattern = raw.trim();
        let mut matched = false;
        for piece in alternatives(pattern, input)? {
            let before = found.out.files.len();
            let mut add = |m: Matched| match m {
                Matched::Literal(file, real) => !found.push(file, real),
                Matched::Walked(base_real, walked) => {
                    let display = display_path(root.path(), &walked.path);
                    !found.push_walked(&base_real, walked, display)
                }
            };
            matched |= match_piece(root, &piece, input, cancel, &mut add)?;
            // The walk visits each folder in name order; a glob's matches are listed by name.
            if has_glob(&piece) {
                found.out.files[before..].sort_by(|a, b| a.display.cmp(&b.display));
            }
            if found.out.capped {
                break;
            }
        }
        if !matched && !cancel.load(Ordering::Relaxed) {
            found.out.empty_patterns.push(pattern.to_string());
        }
        if found.out.capped {
            break;
        }
    }
    if found.out.files.is_empty() && found.out.outside.is_empty() && !cancel.load(Ordering::Relaxed) {
        return Err(none_matched(root, patterns, input));
    }
    Ok(found.out)
}

/// The conventional pipeline file names under the sources folder.
pub fn conventional(sources_dir: &Path) -> Vec<PipelineFile> {
    conventional_within(&SourcesRoot::new(sources_dir), &AtomicBool::new(false)).files
}

/// As `conventional`, stopping at `MAX_PIPELINE_FILES` or when `cancel` is set. A file counts
/// when its name is conventional, or when it is a `.yml`/`.yaml` file whose first
/// `PROBE_BYTES` say it is a pipeline or template (`looks_like_pipeline`).
pub fn conventional_within(root: &SourcesRoot, cancel: &AtomicBool) -> Discovered {
    let patterns: Vec<Pattern> = CONVENTIONAL.iter().filter_map(|p| Pattern::new(p).ok()).collect();
    let mut found = Collector::new(root);
    let base = root.path().to_path_buf();
    let base_real = root.real.clone();
    let mut probes = 0usize;
    for walked in walk(&base, cancel, DISCOVERY_SKIPPED_DIRS) {
        let by_name = patterns.iter().any(|p| p.matches_with(&walked.rel, OPTIONS));
        if !by_name {
            let lower = walked.rel.to_ascii_lowercase();
            if !(lower.ends_with(".yml") || lower.ends_with(".yaml")) {
                continue;
            }
            if probes >= MAX_PROBES {
                found.out.probes_capped = true;
                continue;
            }
            probes += 1;
            // A link is looked at only where it leads inside the sources folder. One that leads
            // out is not known to be a pipeline, so it is not reported either (an include of
            // it is, as TSK010).
            let path = if walked.link {
                match root.locate(&walked.path) {
                    Place::Inside(real) => real,
                    _ => continue,
                }
            } else {
                walked.path.clone()
            };
            let Ok(head) = crate::fsread::read_prefix(&path, PROBE_BYTES) else { continue };
            if !looks_like_pipeline(&String::from_utf8_lossy(&head), head.len() as u64 >= PROBE_BYTES) {
                continue;
            }
        }
        let display = walked.rel.clone();
        let before = found.out.files.len();
        if !found.push_walked(&base_real, walked, display) {
            break;
        }
        if found.out.files.len() > before {
            if by_name {
                found.out.by_name += 1;
            } else {
                found.out.by_content += 1;
            }
        }
    }
    let mut out = found.out;
    // The walk visits each folder in name order; reports list files by their whole name.
    out.files.sort_by(|a, b| a.display.cmp(&b.display));
    out
}

/// The leading path components without glob characters, and the rest.
fn split_literal_prefix(pattern: &str) -> (String, String) {
    let parts: Vec<&str> = pattern.split('/').collect();
    let literal = parts.iter().take_while(|p| !has_glob(p)).count().min(parts.len() - 1);
    (parts[..literal].join("/"), parts[literal..].join("/"))
}

/// One file found by walking.
struct Walked {
    /// Relative to the walked folder, with `/`.
    rel: String,
    path: PathBuf,
    /// A symbolic link: where it leads is checked before it is used.
    link: bool,
}

/// Files (and links) under `dir`, each folder in name order, lazily, so a search can stop at
/// a cap or when cancelled; skipped folders are not entered and links are not followed.
fn walk<'a>(dir: &'a Path, cancel: &'a AtomicBool, skipped: &'a [&str]) -> impl Iterator<Item = Walked> + 'a {
    WalkDir::new(dir)
        .max_depth(MAX_DEPTH)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(move |e| {
            e.depth() == 0 || !(e.file_type().is_dir() && skipped.iter().any(|s| e.file_name() == *s))
        })
        .take_while(move |_| !cancel.load(Ordering::Relaxed))
        .filter_map(Result::ok)
        .filter(|e| e.depth() > 0 && (e.file_type().is_file() || e.file_type().is_symlink()))
        .filter_map(move |e| {
            let rel = e.path().strip_prefix(dir).ok()?;
            let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
            Some(Walked { rel: parts?.join("/"), link: e.path_is_symlink(), path: e.path().to_path_buf() })
        })
}

/// Whether the start of a YAML file is an Azure Pipelines pipeline or template: a top-level
/// `steps`, `jobs` or `stages` key whose list starts with a step, job or stage (`- task: …`,
/// `- job: …`, `- template: …`, `- ${{ if … }}:`), or a top-level `extends` with a `template`.
/// Other CI systems' files are not: GitHub Actions' `jobs` is a mapping, GitLab's `stages` a
/// list of names. `truncated`: the text is a prefix, so its last line may be cut.
pub fn looks_like_pipeline(text: &str, truncated: bool) -> bool {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    if truncated {
        lines.pop();
    }
    let content = |l: &&&str| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#')
    };
    for (i, line) in lines.iter().enumerate() {
        let Some((key, rest)) = line.split_once(':') else { continue };
        let key = key.trim_end().trim_matches(['"', '\'']);
        if line.starts_with([' ', '\t', '-', '#']) || !matches!(key, "steps" | "jobs" | "stages" | "extends") {
            continue;
        }
        let rest = rest.split(" #").next().unwrap_or("").trim();
        if !rest.is_empty() {
            // Flow style: `steps: [{task: …}]`; `extends: {template: …}`.
            if rest.starts_with("[{") || rest.starts_with("[ {") || (key == "extends" && rest.contains("template")) {
                return true;
            }
            continue;
        }
        let looks = if key == "extends" {
            lines[i + 1..].iter().find(content).is_some_and(|next| {
                let item = next.trim_start();
                next.len() > item.len() && (item.starts_with("template:") || item.starts_with("${{"))
            })
        } else {
            first_item_is_azure(key, &lines[i + 1..])
        };
        if looks {
            return true;
        }
    }
    false
}

/// Whether the first item of a block list under `list` (`steps`, `jobs`, `stages`) is an
/// Azure Pipelines step, job or stage: a `${{ }}` insertion, or a mapping with one of the
/// keys that make one (`task`, `script`, `job`, `stage`, `template`, …) at its own level.
/// Other CI systems' lists have other keys: Drone's and Cloud Build's `- name:`/`image:`,
/// Buildkite's `- label:`/`command:`.
fn first_item_is_azure(list: &str, rest: &[&str]) -> bool {
    let kinds: &[&str] = match list {
        "steps" => azp_preflight_scan::STEP_KINDS,
        "jobs" => &["job", "deployment", "template"],
        _ => &["stage", "template"],
    };
    let mut lines = rest.iter().filter(|l| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#')
    });
    let Some(first) = lines.next() else { return false };
    let dash = first.len() - first.trim_start().len();
    let Some(after) = first.trim_start().strip_prefix('-') else { return false };
    let body = after.trim_start();
    if body.starts_with("${{") {
        return true;
    }
    // Where the item's keys start: after `- ` on the first line.
    let level = first.len() - body.len();
    let mut keys = vec![mapping_key(body)];
    for line in lines {
        let indent = line.len() - line.trim_start().len();
        if indent <= dash {
            break;
        }
        if indent == level {
            keys.push(mapping_key(line.trim_start()));
        }
    }
    keys.into_iter().flatten().any(|k| kinds.contains(&k))
}

/// The key of a line that starts a mapping entry (`task: …`), not of a scalar that happens to
/// hold a colon (`"a: b"`, `http://x`).
fn mapping_key(line: &str) -> Option<&str> {
    let (key, value) = line.split_once(':')?;
    let plain = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    (plain && (value.is_empty() || value.starts_with([' ', '\t']))).then_some(key)
}

/// How a path is shown: relative to the sources folder with `/`, else as it is.
pub fn display_path(sources_dir: &Path, path: &Path) -> String {
    let normal = normalize(path);
    match normal.strip_prefix(normalize(sources_dir)) {
        Ok(rel) => {
            let parts: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            parts.join("/")
        }
        Err(_) => normal.display().to_string(),
    }
}

/// Removes `.` and resolves `..` lexically (templates climb with `../`).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// What the online definition lookup needs.
pub struct DefinitionLookup<'a> {
    pub http: &'a HttpClient,
    pub collection: &'a url::Url,
    pub project: &'a str,
    pub definition_id: &'a str,
    pub token: &'a Secret,
}

/// `GET {collection}{project}/_apis/build/definitions/{id}?api-version=7.1` → `process.yamlFilename`.
pub async fn definition_yaml(lookup: DefinitionLookup<'_>) -> Result<String, String> {
    let mut url = lookup.collection.clone();
    url.path_segments_mut().map_err(|_| "the collection URL cannot hold a path".to_string())?.pop_if_empty().extend([
        lookup.project,
        "_apis",
        "build",
        "definitions",
        lookup.definition_id,
    ]);
    url.set_query(Some("api-version=7.1"));
    let response = lookup
        .http
        .send(Request::get(url).header("accept", "application/json").bearer(lookup.token))
        .await
        .map_err(|e| e.to_string())?;
    if !response.is_success() {
        return Err(format!("HTTP {} from the build definitions API", response.status));
    }
    let body: serde_json::Value =
        response.json().map_err(|_| "the build definitions API did not answer with JSON".to_string())?;
    body.pointer("/process/yamlFilename")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| "the definition has no YAML file (a classic pipeline?)".to_string())
}

/// The definition's YAML file under the sources folder, if it is there.
pub fn definition_file(sources_dir: &Path, yaml_filename: &str) -> Option<PipelineFile> {
    let rel = yaml_filename.replace('\\', "/");
    let rel = rel.trim_start_matches('/');
    let root = SourcesRoot::new(sources_dir);
    let path = root.path().join(rel);
    match root.locate(&path) {
        Place::Inside(real) if real.is_file() => Some(PipelineFile { display: rel.to_string(), path }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "steps: []\n").unwrap();
        }
        dir
    }

    #[test]
    fn conventional_names_skip_build_and_dependency_folders() {
        let dir = tree(&[
            "azure-pipelines.yml",
            ".azuredevops/ci/build.yml",
            "deploy/release-azure-pipelines.yaml",
            "node_modules/pkg/azure-pipelines.yml",
            "target/debug/azure-pipelines.yml",
            ".git/azure-pipelines.yml",
            "docs/readme.md",
            "other.yml",
        ]);
        let found: Vec<String> = conventional(dir.path()).into_iter().map(|f| f.display).collect();
        assert_eq!(found, [".azuredevops/ci/build.yml", "azure-pipelines.yml", "deploy/release-azure-pipelines.yaml"]);
    }

    #[test]
    fn patterns_files_and_globs() {
        let dir = tree(&["ci/a.yml", "ci/sub/b.yml", "ci/c.txt", "x.yml"]);
        let got = |p: &[&str]| {
            from_patterns(dir.path(), &p.iter().map(|s| s.to_string()).collect::<Vec<_>>(), "pipelineFiles")
                .map(|v| v.into_iter().map(|f| f.display).collect::<Vec<_>>())
        };
        assert_eq!(got(&["ci/**/*.yml"]).unwrap(), ["ci/a.yml", "ci/sub/b.yml"]);
        assert_eq!(got(&["ci/*.yml", "x.yml", "ci/a.yml"]).unwrap(), ["ci/a.yml", "x.yml"]);
        assert_eq!(got(&["**/*.yml"]).unwrap().len(), 3);
        let err = got(&["missing.yml"]).unwrap_err();
        assert_eq!((err.input.as_str(), err.value.as_str()), ("pipelineFiles", "missing.yml"));
        assert!(got(&["ci/*.json"]).unwrap_err().expected.contains("matches at least one file"));
        assert!(got(&["ci/[.yml"]).is_err());
        // Braces, and patterns that match nothing beside one that does.
        assert_eq!(got(&["{ci,x}/**/*.{yml,txt}"]).unwrap(), ["ci/a.yml", "ci/sub/b.yml", "ci/c.txt"]);
        assert_eq!(got(&["x.yml", "missing.yml", "nope/**/*.yml"]).unwrap(), ["x.yml"]);
        let root = SourcesRoot::new(dir.path());
        let some = ["ci/*.yml".to_string(), "**/*.yaml".to_string(), "gone.yml".to_string()];
        let found = from_patterns_within(&root, &some, "--pipeline", &AtomicBool::new(false)).unwrap();
        assert_eq!(found.empty_patterns, ["**/*.yaml", "gone.yml"]);
        assert!(validate_patterns(dir.path(), &some, "--pipeline").is_ok());
        let none = ["**/*.yaml".to_string(), "gone.yml".to_string()];
        let err = validate_patterns(dir.path(), &none, "--pipeline").unwrap_err();
        assert_eq!(err.value, "**/*.yaml, gone.yml");
        // Bad input stays bad input even when another pattern matched.
        assert!(validate_patterns(dir.path(), &["ci/*.yml".into(), "ci".into()], "--pipeline").is_err());
        assert!(validate_patterns(dir.path(), &["ci/*.yml".into(), "../x/*.yml".into()], "--pipeline").is_err());
    }

    #[test]
    fn pipelines_and_templates_are_told_by_their_top_level_keys() {
        let yes = [
            "steps:\n- task: Docker@2\n",
            "trigger: none\njobs:\n  - job: A\n",
            "\u{feff}# c\r\nstages:\r\n\r\n# between\r\n- stage: S\r\n",
            "parameters:\n- name: x\nsteps:\n- ${{ each s in parameters.steps }}:\n  - ${{ s }}\n",
            "steps:\n- template: a.yml\n",
            "extends:\n  template: /main.yml@self\n",
            "extends:\n  ${{ if true }}:\n    template: a.yml\n",
            "steps: [{task: A@1}]\n",
            "'jobs':\n- job: A\n",
            "steps:\n- displayName: Build\n  condition: always()\n  task: A@1\n",
            "jobs:\n  # the build\n  - deployment: D\n",
            "stages:\n- stage: S\n",
        ];
        for text in yes {
            assert!(looks_like_pipeline(text, false), "{text:?}");
        }
        let no = [
            "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n",
            "stages:\n  - build\n  - test\n",
            "stages:\n- \"a: b\"\n- http://x\n",
            "apiVersion: v1\nkind: Pod\nspec:\n  steps:\n  - task: A@1\n",
            "variables:\n  a: 1\n",
            "steps: []\n",
            "# steps:\n# - task: A@1\n",
            "extends: base.yml\n",
            "",
            // Drone, Cloud Build and Buildkite lists of steps.
            "kind: pipeline\nsteps:\n- name: build\n  image: golang\n  commands:\n  - go test\n",
            "steps:\n- name: gcr.io/cloud-builders/docker\n  args: ['build', '.']\n",
            "steps:\n  - label: test\n    command: make test\n    plugins:\n      - docker#v5:\n          task: x\n",
            "jobs:\n- name: a\n  steps:\n  - task: A@1\n",
        ];
        for text in no {
            assert!(!looks_like_pipeline(text, false), "{text:?}");
        }
        // A prefix cut in the middle of the line that would decide is not trusted.
        assert!(!looks_like_pipeline("steps:\n- task: A", true));
        assert!(looks_like_pipeline("steps:\n- task: A@1\n- scr", true));
    }

    #[test]
    fn discovery_counts_by_name_and_by_content_and_skips_vendored_trees() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [
            ("azure-pipelines.yml", "steps:\n- task: A@1\n"),
            (".pipelines/ci.yml", "jobs:\n- job: A\n"),
            ("eng/pipelines/templates/steps.yaml", "steps:\n- script: x\n"),
            ("eng/notes.yml", "title: x\n"),
            ("vendor/x/ci.yml", "jobs:\n- job: A\n"),
            ("third_party/y/azure-pipelines.yml", "steps:\n- task: A@1\n"),
            ("bin/ci.yml", "jobs:\n- job: A\n"),
        ] {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let found = conventional_within(&SourcesRoot::new(dir.path()), &AtomicBool::new(false));
        let names: Vec<&str> = found.files.iter().map(|f| f.display.as_str()).collect();
        assert_eq!(names, [".pipelines/ci.yml", "azure-pipelines.yml", "eng/pipelines/templates/steps.yaml"]);
        assert_eq!((found.by_name, found.by_content, found.probes_capped), (1, 2, false));
    }

    #[cfg(unix)]
    #[test]
    fn content_probes_refuse_fifos_and_read_only_the_start_of_big_files() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = std::ffi::CString::new(dir.path().join("ci.yml").to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo has no other preconditions.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        // 20 MB: a pipeline by its first lines, far larger than a probe reads.
        let big = format!("steps:\n- task: A@1\n{}", "# padding line\n".repeat(1_400_000));
        std::fs::write(dir.path().join("big.yml"), big).unwrap();
        let started = std::time::Instant::now();
        let found = conventional_within(&SourcesRoot::new(dir.path()), &AtomicBool::new(false));
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "a FIFO must not block the walk");
        let names: Vec<&str> = found.files.iter().map(|f| f.display.as_str()).collect();
        assert_eq!(names, ["big.yml"]);
        assert_eq!(
            crate::fsread::read_prefix(&dir.path().join("big.yml"), PROBE_BYTES).unwrap().len() as u64,
            PROBE_BYTES
        );
    }

    #[cfg(unix)]
    #[test]
    fn locate_keeps_to_the_sources_folder_after_links() {
        let outer = tempfile::tempdir().unwrap();
        let repo = outer.path().join("repo");
        std::fs::create_dir_all(repo.join("ci")).unwrap();
        std::fs::write(outer.path().join("out.yml"), "x").unwrap();
        std::fs::write(repo.join("ci/in.yml"), "x").unwrap();
        std::os::unix::fs::symlink(outer.path().join("out.yml"), repo.join("out-link.yml")).unwrap();
        std::os::unix::fs::symlink(repo.join("ci/in.yml"), repo.join("in-link.yml")).unwrap();
        let root = SourcesRoot::new(&repo);
        let real = |p: &Path| std::fs::canonicalize(p).unwrap();
        assert_eq!(root.locate(&repo.join("ci/../ci/in.yml")), Place::Inside(real(&repo.join("ci/in.yml"))));
        assert_eq!(root.locate(&repo.join("in-link.yml")), Place::Inside(real(&repo.join("ci/in.yml"))));
        assert_eq!(root.locate(&repo.join("out-link.yml")), Place::Outside(real(&outer.path().join("out.yml"))));
        assert_eq!(root.locate(&repo.join("../out.yml")), Place::Outside(outer.path().join("out.yml")));
        assert_eq!(root.locate(Path::new("/etc/shadow")), Place::Outside(PathBuf::from("/etc/shadow")));
        assert_eq!(root.locate(&repo.join("nope.yml")), Place::Missing);
        // Found by a glob: the link out is listed apart and not returned as a file.
        let found = from_patterns_within(&root, &["*.yml".into()], "--pipeline", &AtomicBool::new(false)).unwrap();
        assert_eq!(found.files.iter().map(|f| f.display.as_str()).collect::<Vec<_>>(), ["in-link.yml"]);
        assert_eq!(found.outside.len(), 1);
        assert_eq!(found.outside[0].0, "out-link.yml");
    }

    #[test]
    fn display_and_normalize() {
        assert_eq!(normalize(Path::new("/s/a/../b/./c.yml")), PathBuf::from("/s/b/c.yml"));
        assert_eq!(display_path(Path::new("/s"), Path::new("/s/x/../t/y.yml")), "t/y.yml");
        assert_eq!(display_path(Path::new("/s"), Path::new("/o/y.yml")), "/o/y.yml");
        assert_eq!(split_literal_prefix("ci/**/*.yml"), ("ci".into(), "**/*.yml".into()));
        assert_eq!(split_literal_prefix("*.yml"), (String::new(), "*.yml".into()));
    }
}
