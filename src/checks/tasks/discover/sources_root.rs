//! The sources folder as a boundary, and how paths inside it are shown.

use std::path::{Component, Path, PathBuf};

/// The sources folder as a boundary. Azure Pipelines reads templates from the repository
/// only, so a path that leads elsewhere (`../`, `//etc/...`, a symbolic link out of the
/// checkout) is never read, let alone rewritten by `fix`.
#[derive(Debug, Clone)]
pub struct SourcesRoot {
    /// Absolute, with `.` and `..` resolved as written.
    lexical: PathBuf,
    /// With every symbolic link followed.
    pub(super) real: PathBuf,
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;
    use crate::checks::tasks::discover::from_patterns_within;
    use crate::checks::tasks::discover::given_patterns::split_literal_prefix;

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
