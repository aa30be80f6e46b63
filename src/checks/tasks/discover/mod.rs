//! Which pipeline files to scan: the `pipelineFiles` input / `--pipeline` (files or globs
//! relative to the sources folder, with `{a,b}` alternatives); else, in a pipeline with a job
//! token, the definition's `process.yamlFilename`; else discovery: the conventional names, and
//! any `.yml`/`.yaml` file whose top-level mapping holds `steps`, `jobs`, `stages` (lists of
//! Azure Pipelines steps, jobs, stages) or `extends` (real repositories keep pipelines in `.pipelines/`, `.ado/`,
//! `eng/pipelines/`, `build/`, `ci/` and the like).
//!
//! One file per way of finding them: `given_patterns` (the files and globs the user names),
//! `definition` (the pipeline definition's YAML file), `by_content` (telling a pipeline by its
//! first lines), and here the conventional search; `sources_root` keeps every path inside the
//! sources folder.

mod by_content;
mod definition;
mod given_patterns;
mod sources_root;

pub use by_content::looks_like_pipeline;
pub use definition::{definition_file, definition_yaml, DefinitionLookup};
pub use given_patterns::{from_patterns, from_patterns_within};
pub use sources_root::{display_path, normalize, Place, SourcesRoot};

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use glob::{MatchOptions, Pattern};
use walkdir::WalkDir;

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

/// What discovery found.
#[derive(Debug, Default, Clone)]
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder holding `files`, each a minimal pipeline.
    pub(super) fn tree(files: &[&str]) -> tempfile::TempDir {
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
}
