//! Which pipeline files to scan: the `pipelineFiles` input / `--pipeline` (files or globs
//! relative to the sources folder); else, in a pipeline with a job token, the definition's
//! `process.yamlFilename`; else the conventional names.

use std::path::{Component, Path, PathBuf};

use glob::{MatchOptions, Pattern};
use walkdir::WalkDir;

use crate::net::{HttpClient, Request};
use crate::secret::Secret;
use crate::settings::InputError;

/// Folders never searched: build output, dependencies, VCS data.
const SKIPPED_DIRS: &[&str] = &["target", "node_modules", ".git"];
/// How deep globs and the conventional search descend.
const MAX_DEPTH: usize = 24;

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

const OPTIONS: MatchOptions =
    MatchOptions { case_sensitive: true, require_literal_separator: true, require_literal_leading_dot: false };

fn has_glob(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

/// Resolves the given patterns; a file that does not exist or a glob that matches nothing is
/// bad input naming the input and the value.
pub fn from_patterns(sources_dir: &Path, patterns: &[String], input: &str) -> Result<Vec<PipelineFile>, InputError> {
    let mut files: Vec<PipelineFile> = Vec::new();
    for raw in patterns {
        let pattern = raw.trim();
        if !has_glob(pattern) {
            let path = sources_dir.join(pattern);
            if !path.is_file() {
                return Err(InputError::new(
                    input,
                    pattern,
                    &format!("a pipeline YAML file or glob relative to {} (no such file)", sources_dir.display()),
                ));
            }
            push_unique(&mut files, PipelineFile { display: pattern.to_string(), path });
            continue;
        }
        let normalized = pattern.replace('\\', "/");
        let (base, rest) = split_literal_prefix(&normalized);
        let compiled = Pattern::new(&rest)
            .map_err(|e| InputError::new(input, pattern, &format!("a valid glob such as `ci/**/*.yml` ({})", e.msg)))?;
        let base_dir = sources_dir.join(&base);
        let before = files.len();
        for rel in walk(&base_dir) {
            if compiled.matches_with(&rel, OPTIONS) {
                let path = base_dir.join(&rel);
                let display = display_path(sources_dir, &path);
                push_unique(&mut files, PipelineFile { display, path });
            }
        }
        if files.len() == before {
            return Err(InputError::new(
                input,
                pattern,
                &format!("a glob that matches at least one file under {}", sources_dir.display()),
            ));
        }
    }
    Ok(files)
}

/// The conventional pipeline file names under the sources folder.
pub fn conventional(sources_dir: &Path) -> Vec<PipelineFile> {
    let patterns: Vec<Pattern> = CONVENTIONAL.iter().filter_map(|p| Pattern::new(p).ok()).collect();
    let mut files = Vec::new();
    for rel in walk(sources_dir) {
        if patterns.iter().any(|p| p.matches_with(&rel, OPTIONS)) {
            let path = sources_dir.join(&rel);
            files.push(PipelineFile { display: rel, path });
        }
    }
    files
}

fn push_unique(files: &mut Vec<PipelineFile>, file: PipelineFile) {
    if !files.iter().any(|f| f.path == file.path) {
        files.push(file);
    }
}

/// The leading path components without glob characters, and the rest.
fn split_literal_prefix(pattern: &str) -> (String, String) {
    let parts: Vec<&str> = pattern.split('/').collect();
    let literal = parts.iter().take_while(|p| !has_glob(p)).count().min(parts.len() - 1);
    (parts[..literal].join("/"), parts[literal..].join("/"))
}

/// Files under `dir`, as relative paths with `/`, sorted; skipped folders are not entered.
fn walk(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = WalkDir::new(dir)
        .max_depth(MAX_DEPTH)
        .into_iter()
        .filter_entry(|e| {
            e.depth() == 0 || !(e.file_type().is_dir() && SKIPPED_DIRS.iter().any(|s| e.file_name() == *s))
        })
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| {
            let rel = e.path().strip_prefix(dir).ok()?;
            let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
            Some(parts?.join("/"))
        })
        .collect();
    out.sort();
    out
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
    let path = sources_dir.join(rel);
    path.is_file().then(|| PipelineFile { display: rel.to_string(), path })
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

    #[test]
    fn display_and_normalize() {
        assert_eq!(normalize(Path::new("/s/a/../b/./c.yml")), PathBuf::from("/s/b/c.yml"));
        assert_eq!(display_path(Path::new("/s"), Path::new("/s/x/../t/y.yml")), "t/y.yml");
        assert_eq!(display_path(Path::new("/s"), Path::new("/o/y.yml")), "/o/y.yml");
        assert_eq!(split_literal_prefix("ci/**/*.yml"), ("ci".into(), "**/*.yml".into()));
        assert_eq!(split_literal_prefix("*.yml"), (String::new(), "*.yml".into()));
    }
}
