//! `advisories lint`: every file parses and validates, and the set is consistent (unique ids,
//! file names that match ids, last-good versions that no other advisory marks as affected),
//! and every build of every affected release is accounted for (`build_coverage`).

use std::collections::{BTreeMap, BTreeSet};

use super::builds::{self, BuildData};
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
    lint_with(sources, builds::builtin())
}

/// As `lint`, with the given version data.
pub fn lint_with(sources: &[Source<'_>], data: &BuildData) -> (Vec<Advisory>, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut parsed: Vec<(String, bool, Advisory)> = Vec::new();
    for src in sources {
        match Advisory::parse(src.text, &src.file) {
            Ok(a) => parsed.push((src.file.clone(), src.embedded, a)),
            Err(list) => problems.extend(list.into_iter().map(|message| Problem { file: src.file.clone(), message })),
        }
    }
    for (file, embedded, a) in &parsed {
        // The embedded database only covers built-in tasks, so their version data must be known.
        if *embedded && data.get(&a.task_id, a.major).is_none() {
            problems.push(Problem {
                file: file.clone(),
                message: format!("no built-in task {}@{} has the GUID {}", a.task, a.major, a.task_id),
            });
        }
        problems.extend(build_coverage(a, data).into_iter().map(|message| Problem { file: file.clone(), message }));
    }
    lint_set(parsed, problems)
}

/// The checks that need the whole set, over advisories already parsed (from files, or from
/// the entries of a published document): `(shown as, embedded, advisory)`. The build-coverage
/// rule is not among them: it needs this binary's version data, which a document published
/// later may rightly go beyond.
pub fn lint_set(parsed: Vec<(String, bool, Advisory)>, mut problems: Vec<Problem>) -> (Vec<Advisory>, Vec<Problem>) {
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

/// Checks an advisory against the version data of its task: the builds it names exist, its
/// ranges and versions were published, and in every release (`major.minor`) with an affected
/// version each build's version of that release is inside an affected range, the last good
/// version, at or above `fixed`, listed in `unaffected`, or of a build the advisory does not
/// concern. A task the
/// data does not know (an organization's own task) is not checked.
pub fn build_coverage(a: &Advisory, data: &BuildData) -> Vec<String> {
    let Some(task) = data.get(&a.task_id, a.major) else { return Vec::new() };
    let mut problems = Vec::new();
    let known: Vec<&str> = task.builds.keys().map(String::as_str).collect();
    for b in &a.builds {
        if !known.iter().any(|k| k.eq_ignore_ascii_case(b)) {
            problems.push(format!(
                "build `{b}` never published {}@{} (its builds: {})",
                a.task,
                a.major,
                known.join(", ")
            ));
        }
    }
    let all = task.all_versions();
    for r in &a.affected {
        if !all.iter().any(|v| r.contains(*v)) {
            problems.push(format!("affected `{r}` contains no version any build of {}@{} published", a.task, a.major));
        }
    }
    let named = [("last-good", a.last_good), ("fixed", a.fixed)];
    let listed = a.unaffected.iter().map(|v| ("unaffected", Some(*v)));
    for (field, v) in named.into_iter().chain(listed) {
        if let Some(v) = v.filter(|v| !all.contains(v)) {
            problems.push(format!("{field} {v} was never published by a build of {}@{}", a.task, a.major));
        }
    }
    let concerned = |b: &str| a.builds.is_empty() || a.builds.iter().any(|x| x.eq_ignore_ascii_case(b));
    let releases: BTreeSet<u32> = all.iter().filter(|v| a.in_range(**v)).map(|v| v.minor).collect();
    for minor in releases {
        for (build, v) in task.release(a.major, minor) {
            let accounted =
                a.in_range(v) || a.unaffected.contains(&v) || a.last_good == Some(v) || a.fixed.is_some_and(|f| v >= f);
            if accounted || !concerned(build) {
                continue;
            }
            problems.push(format!(
                "release {}.{minor} is affected, but its {build} build {v} is not covered: put it in an affected \
                 range, or list it in `unaffected` once checked",
                a.major
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::tasks::advisories::tests::SAMPLE;

    #[test]
    fn the_embedded_database_is_clean() {
        let (advisories, problems) = lint(&embedded_sources());
        assert!(problems.is_empty(), "{}", problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"));
        assert!(advisories.len() >= 32, "{}", advisories.len());
    }

    fn sample_data() -> BuildData {
        use crate::checks::tasks::advisories::builds::TaskBuilds;
        use crate::checks::tasks::reference::TaskVersion;
        let v = |m, p| TaskVersion::new(2, m, p);
        let mut task = TaskBuilds::default();
        task.builds.insert("Default".into(), vec![v(9, 1), v(10, 0), v(11, 0), v(12, 0)]);
        task.builds.insert("Node20".into(), vec![v(9, 2), v(10, 1), v(11, 1), v(11, 3), v(12, 1)]);
        let mut data = BuildData::default();
        data.insert("11111111-2222-3333-4444-555555555555", 2, task);
        data
    }

    fn coverage(text: &str) -> Vec<String> {
        let a = Advisory::parse(text, "test").unwrap();
        build_coverage(&a, &sample_data())
    }

    #[test]
    fn every_build_of_an_affected_release_must_be_covered() {
        assert!(coverage(SAMPLE).is_empty(), "{:?}", coverage(SAMPLE));
        // The Node 20 build 2.11.1 of release 2.11 is left out of a too narrow list.
        let narrow = SAMPLE.replace(">= 2.10.0, < 2.12.0\"]", "2.10.0\", \"2.10.1\", \"2.11.0\", \"2.11.3\"]");
        let problems = coverage(&narrow);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("release 2.11 is affected, but its Node20 build 2.11.1 is not covered"),
            "{problems:?}"
        );
        // Listing it as checked and unaffected, or scoping the advisory to the Default build, settles it.
        assert!(
            coverage(&narrow.replace("fixed = \"2.12.0\"", "fixed = \"2.12.0\"\nunaffected = [\"2.11.1\"]")).is_empty()
        );
        let default_only = SAMPLE.replace(">= 2.10.0, < 2.12.0\"]", "2.10.0\", \"2.11.0\"]\nbuilds = [\"Default\"]");
        assert!(coverage(&default_only).is_empty(), "{:?}", coverage(&default_only));
        // Versions at or above `fixed` and the last good version count as covered.
        let late_start = SAMPLE.replace(">= 2.10.0, < 2.12.0\"]", ">= 2.10.1, < 2.12.0\"]").replace("2.9.1", "2.10.0");
        assert!(coverage(&late_start).is_empty(), "{:?}", coverage(&late_start));
    }

    #[test]
    fn build_names_and_versions_must_exist_in_the_version_data() {
        let text = SAMPLE
            .replace(">= 2.10.0, < 2.12.0\"]", ">= 2.10.0, < 2.12.0\", \"2.14.0\"]\nbuilds = [\"Wif\"]")
            .replace("fixed = \"2.12.0\"", "fixed = \"2.15.0\"");
        let problems = coverage(&text);
        let text = problems.join("\n");
        assert!(text.contains("build `Wif` never published Sample@2 (its builds: Default, Node20)"), "{text}");
        assert!(text.contains("affected `2.14.0` contains no version any build of Sample@2 published"), "{text}");
        assert!(text.contains("fixed 2.15.0 was never published"), "{text}");
        // A task the data does not know (an organization's own) is not checked.
        assert!(build_coverage(&Advisory::parse(SAMPLE, "test").unwrap(), &BuildData::default()).is_empty());
        // But an embedded advisory must name a built-in task.
        let (_, problems) = lint_with(
            &[Source { file: "advisories/AZP-ADV-9001.toml".into(), text: SAMPLE, embedded: true }],
            &BuildData::default(),
        );
        assert!(problems.iter().any(|p| p.message.contains("no built-in task Sample@2")), "{problems:?}");
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
