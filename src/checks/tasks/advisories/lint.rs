//! `advisories lint`: every file parses and validates, and the set is consistent (unique ids,
//! file names that match ids, last-good versions that no other advisory marks as affected).

use std::collections::BTreeMap;

use super::{embedded_files, Advisory};

/// `advisories lint` prints at most this many problems, then one line counting the rest.
pub const MAX_LISTED: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `advisories/AZP-ADV-0001.toml` (embedded) or the path given.
    pub file: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file, self.message)
    }
}

/// A file to lint: where it is shown from, its text, and whether it is part of the
/// embedded database (stricter: `AZP-ADV-` ids, file named after the id).
pub struct Source<'a> {
    pub file: String,
    pub text: &'a str,
    pub embedded: bool,
}

pub fn embedded_sources() -> Vec<Source<'static>> {
    embedded_files()
        .iter()
        .map(|(name, text)| Source { file: format!("advisories/{name}"), text, embedded: true })
        .collect()
}

/// Lints the sources; returns the advisories that parsed and every problem found.
pub fn lint(sources: &[Source<'_>]) -> (Vec<Advisory>, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut parsed: Vec<(String, bool, Advisory)> = Vec::new();
    for src in sources {
        match Advisory::parse(src.text, &src.file) {
            Ok(a) => parsed.push((src.file.clone(), src.embedded, a)),
            Err(list) => problems.extend(list.into_iter().map(|message| Problem { file: src.file.clone(), message })),
        }
    }
    let mut seen: BTreeMap<(&str, bool), &str> = BTreeMap::new();
    for (file, embedded, a) in &parsed {
        if *embedded {
            if !a.id.starts_with("AZP-ADV-") {
                problems.push(Problem {
                    file: file.clone(),
                    message: format!("embedded id `{}` must start with AZP-ADV-", a.id),
                });
            }
            let expected = format!("{}.toml", a.id);
            if !file.ends_with(&format!("/{expected}")) {
                problems.push(Problem { file: file.clone(), message: format!("file name should be {expected}") });
            }
        }
        // Extra files may replace an embedded id on purpose, but not repeat one another.
        if let Some(first) = seen.insert((a.id.as_str(), *embedded), file.as_str()) {
            problems.push(Problem { file: file.clone(), message: format!("duplicate id {} (also in {first})", a.id) });
        }
    }
    // Only advisories about the same task and major can disagree about a last-good version.
    let mut by_task: BTreeMap<(&str, u32), Vec<&Advisory>> = BTreeMap::new();
    for (_, _, a) in &parsed {
        by_task.entry((a.task_id.as_str(), a.major)).or_default().push(a);
    }
    for (file, _, a) in &parsed {
        for other in by_task.get(&(a.task_id.as_str(), a.major)).into_iter().flatten() {
            if other.id == a.id {
                continue;
            }
            if let Some(good) = a.last_good.filter(|v| other.affects(*v)) {
                problems.push(Problem {
                    file: file.clone(),
                    message: format!("last-good {good} is affected by {} ({})", other.id, other.affected_text()),
                });
            }
        }
    }
    (parsed.into_iter().map(|(_, _, a)| a).collect(), problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::tasks::advisories::tests::SAMPLE;

    #[test]
    fn the_embedded_database_is_clean() {
        let (advisories, problems) = lint(&embedded_sources());
        assert!(problems.is_empty(), "{}", problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"));
        assert_eq!(advisories.len(), 16);
    }

    #[test]
    fn set_level_problems() {
        let second = SAMPLE;
        let third = SAMPLE
            .replace("AZP-ADV-9001", "AZP-ADV-9002")
            .replace("last-good = \"2.9.1\"", "last-good = \"2.11.0\"")
            .replace("affected = [\">= 2.10.0, < 2.12.0\"]", "affected = [\"2.9.0\"]");
        let sources = [
            Source { file: "advisories/AZP-ADV-9001.toml".into(), text: SAMPLE, embedded: true },
            Source { file: "advisories/other.toml".into(), text: second, embedded: true },
            Source { file: "advisories/AZP-ADV-9002.toml".into(), text: &third, embedded: true },
        ];
        let (_, problems) = lint(&sources);
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert!(text.iter().any(|p| p.contains("other.toml: file name should be AZP-ADV-9001.toml")), "{text:?}");
        assert!(text.iter().any(|p| p.contains("duplicate id AZP-ADV-9001")), "{text:?}");
        assert!(
            text.iter().any(|p| p.contains("AZP-ADV-9002.toml: last-good 2.11.0 is affected by AZP-ADV-9001")),
            "{text:?}"
        );
    }
}
