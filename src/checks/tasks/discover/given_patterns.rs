//! The files and globs the user names (`pipelineFiles`, `--pipeline`): each a regular file
//! or a glob inside the sources folder, with `{a,b}` alternatives.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use glob::Pattern;

use super::{
    display_path, walk, Collector, Discovered, PipelineFile, Place, SourcesRoot, Walked, OPTIONS, SKIPPED_DIRS,
};
use crate::input_error::InputError;

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

/// The brace alternatives of one given pattern; too many is bad input.
fn alternatives(pattern: &str, input: &str) -> Result<Vec<String>, InputError> {
    crate::checks::tasks::patterns::expand_braces(pattern)
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

/// The leading path components without glob characters, and the rest.
pub(super) fn split_literal_prefix(pattern: &str) -> (String, String) {
    let parts: Vec<&str> = pattern.split('/').collect();
    let literal = parts.iter().take_while(|p| !has_glob(p)).count().min(parts.len() - 1);
    (parts[..literal].join("/"), parts[literal..].join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::tasks::discover::tests::tree;

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
        let never = AtomicBool::new(false);
        let none = ["**/*.yaml".to_string(), "gone.yml".to_string()];
        let err = from_patterns_within(&root, &none, "--pipeline", &never).unwrap_err();
        assert_eq!(err.value, "**/*.yaml, gone.yml");
        // Bad input stays bad input even when another pattern matched.
        assert!(from_patterns_within(&root, &["ci/*.yml".into(), "ci".into()], "--pipeline", &never).is_err());
        assert!(from_patterns_within(&root, &["ci/*.yml".into(), "../x/*.yml".into()], "--pipeline", &never).is_err());
    }
}
