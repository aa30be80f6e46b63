//! Which pipeline files to scan: the `pipelineFiles` input / `--pipeline` (files or globs
//! relative to the sources folder); else, in a pipeline with a job token, the definition's
//! `process.yamlFilename`; else the conventional names.

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

/// A literal `pipelineFiles` entry: a regular file inside the sources folder, else bad input.
fn literal_file(root: &SourcesRoot, pattern: &str, input: &str) -> Result<(PipelineFile, PathBuf), InputError> {
    let path = root.path().join(pattern);
    let bad = |why: String| {
        InputError::new(
            input,
            pattern,
            &format!("a pipeline YAML file or glob inside the sources folder {} ({why})", root.path().display()),
        )
    };
    match root.locate(&path) {
        Place::Missing => Err(bad("no such file".into())),
        Place::Outside(_) => Err(bad("it is outside the sources folder".into())),
        Place::Inside(real) => match std::fs::metadata(&real) {
            Ok(meta) if meta.is_file() => Ok((PipelineFile { display: pattern.to_string(), path }, real)),
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

/// A glob's folder to walk (inside the sources folder), its real path, and the compiled rest.
fn glob_parts(root: &SourcesRoot, pattern: &str, input: &str) -> Result<(PathBuf, PathBuf, Pattern), InputError> {
    let normalized = pattern.replace('\\', "/");
    let (base, rest) = split_literal_prefix(&normalized);
    let compiled = Pattern::new(&rest)
        .map_err(|e| InputError::new(input, pattern, &format!("a valid glob such as `ci/**/*.yml` ({})", e.msg)))?;
    let base_dir = root.path().join(&base);
    match root.locate(&base_dir) {
        Place::Inside(real) => Ok((base_dir, real, compiled)),
        Place::Missing => Err(no_match(root, pattern, input)),
        Place::Outside(_) => {
            Err(InputError::new(input, pattern, &format!("a glob inside the sources folder {}", root.path().display())))
        }
    }
}

/// Checks the given patterns without collecting every match (each glob stops at its first
/// match): a missing file, a file outside the sources folder, a FIFO, an invalid glob or one
/// that matches nothing is bad input naming the input and the value.
pub fn validate_patterns(sources_dir: &Path, patterns: &[String], input: &str) -> Result<(), InputError> {
    let root = SourcesRoot::new(sources_dir);
    let never = AtomicBool::new(false);
    for raw in patterns {
        let pattern = raw.trim();
        if !has_glob(pattern) {
            literal_file(&root, pattern, input)?;
            continue;
        }
        let (base_dir, _, compiled) = glob_parts(&root, pattern, input)?;
        if !walk(&base_dir, &never).any(|w| compiled.matches_with(&w.rel, OPTIONS)) {
            return Err(no_match(&root, pattern, input));
        }
    }
    Ok(())
}

fn no_match(root: &SourcesRoot, pattern: &str, input: &str) -> InputError {
    InputError::new(input, pattern, &format!("a glob that matches at least one file under {}", root.path().display()))
}

/// Resolves the given patterns; a file that does not exist or a glob that matches nothing is
/// bad input naming the input and the value.
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
        if !has_glob(pattern) {
            let (file, real) = literal_file(root, pattern, input)?;
            if !found.push(file, real) {
                break;
            }
            continue;
        }
        let (base_dir, base_real, compiled) = glob_parts(root, pattern, input)?;
        let before = found.out.files.len();
        let mut matched = false;
        for walked in walk(&base_dir, cancel) {
            if compiled.matches_with(&walked.rel, OPTIONS) {
                matched = true;
                let display = display_path(root.path(), &walked.path);
                if !found.push_walked(&base_real, walked, display) {
                    break;
                }
            }
        }
        if !matched && !cancel.load(Ordering::Relaxed) {
            return Err(no_match(root, pattern, input));
        }
        // The walk visits each folder in name order; a glob's matches are listed by name.
        found.out.files[before..].sort_by(|a, b| a.display.cmp(&b.display));
        if found.out.capped {
            break;
        }
    }
    Ok(found.out)
}

/// The conventional pipeline file names under the sources folder.
pub fn conventional(sources_dir: &Path) -> Vec<PipelineFile> {
    conventional_within(&SourcesRoot::new(sources_dir), &AtomicBool::new(false)).files
}

/// As `conventional`, stopping at `MAX_PIPELINE_FILES` or when `cancel` is set.
pub fn conventional_within(root: &SourcesRoot, cancel: &AtomicBool) -> Discovered {
    let patterns: Vec<Pattern> = CONVENTIONAL.iter().filter_map(|p| Pattern::new(p).ok()).collect();
    let mut found = Collector::new(root);
    let base = root.path().to_path_buf();
    let base_real = root.real.clone();
    for walked in walk(&base, cancel) {
        if patterns.iter().any(|p| p.matches_with(&walked.rel, OPTIONS)) {
            let display = walked.rel.clone();
            if !found.push_walked(&base_real, walked, display) {
                break;
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
fn walk<'a>(dir: &'a Path, cancel: &'a AtomicBool) -> impl Iterator<Item = Walked> + 'a {
    WalkDir::new(dir)
        .max_depth(MAX_DEPTH)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            e.depth() == 0 || !(e.file_type().is_dir() && SKIPPED_DIRS.iter().any(|s| e.file_name() == *s))
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
