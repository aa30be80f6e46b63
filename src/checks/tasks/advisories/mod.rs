//! The task-regression advisory database: one reviewed TOML file per advisory under
//! `advisories/` (embedded at build time), plus any files an organization adds with
//! `advisoryFile` / `--advisories`, which replace embedded advisories with the same id.
//!
//! A file is parsed and validated in one step, so a loaded `Advisory` is always well formed;
//! `lint` adds the checks that need the whole set.

pub mod builds;
pub mod index;
pub mod lint;
pub mod range;
pub mod refresh;
pub mod show;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Deserialize;

use self::range::VersionRange;
use super::reference::{is_guid, TaskVersion};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/advisories.rs"));
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawAdvisory {
    id: String,
    title: String,
    task: String,
    task_id: String,
    major: u32,
    updated: String,
    symptom: String,
    #[serde(default)]
    cause: Option<String>,
    #[serde(default)]
    workaround: Option<String>,
    confidence: String,
    #[serde(default)]
    confidence_note: Option<String>,
    #[serde(default = "default_pinnable")]
    pinnable: bool,
    #[serde(default)]
    notes: Option<String>,
    versions: RawVersions,
    sources: Sources,
    #[serde(default)]
    applies_when: Option<AppliesWhen>,
}

fn default_pinnable() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawVersions {
    #[serde(default)]
    affected: Vec<String>,
    #[serde(default)]
    last_good: Option<String>,
    #[serde(default)]
    fixed: Option<String>,
    /// The builds (Default, Node20, ...) the advisory concerns; empty: every build.
    #[serde(default)]
    builds: Vec<String>,
    /// Versions of an affected release that were checked and are not affected.
    #[serde(default)]
    unaffected: Vec<String>,
}

/// Where the advisory's facts come from. At least one link is required.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Sources {
    #[serde(default)]
    pub issues: Vec<String>,
    #[serde(default)]
    pub pull_requests: Vec<String>,
    #[serde(default)]
    pub references: Vec<String>,
}

impl Sources {
    pub fn all(&self) -> impl Iterator<Item = &String> {
        self.issues.iter().chain(&self.pull_requests).chain(&self.references)
    }
}

/// Narrows an advisory to steps with these inputs; a step whose literal input value differs
/// is not affected.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AppliesWhen {
    #[serde(default)]
    pub inputs: BTreeMap<String, String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confidence {
    High,
    Medium,
    Low,
}

impl Confidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::High => "high",
            Confidence::Medium => "medium",
            Confidence::Low => "low",
        }
    }
}

/// A validated advisory.
#[derive(Debug, Clone)]
pub struct Advisory {
    pub id: String,
    pub title: String,
    pub task: String,
    /// Lower case.
    pub task_id: String,
    pub major: u32,
    pub updated: String,
    pub symptom: String,
    pub cause: Option<String>,
    pub workaround: Option<String>,
    pub confidence: Confidence,
    pub confidence_note: Option<String>,
    /// False when a pin cannot help (server-side feature flags): informational only.
    pub pinnable: bool,
    pub notes: Option<String>,
    pub affected: Vec<VersionRange>,
    pub last_good: Option<TaskVersion>,
    pub fixed: Option<TaskVersion>,
    /// The builds the advisory concerns (`Node20`); empty: every build of the affected versions.
    pub builds: Vec<String>,
    /// Versions of affected releases that were checked and are not affected.
    pub unaffected: Vec<TaskVersion>,
    pub sources: Sources,
    pub applies_when: Option<AppliesWhen>,
    /// `embedded` or the file it came from.
    pub origin: String,
}

impl Advisory {
    /// Parses and validates one advisory file; every problem is listed.
    pub fn parse(text: &str, origin: &str) -> Result<Advisory, Vec<String>> {
        let raw: RawAdvisory = toml::from_str(text).map_err(|e| bounded(vec![one_line(&e.to_string())]))?;
        Advisory::validate(raw, origin)
    }

    /// One entry of the published JSON document (a TOML file's table as JSON), held to the
    /// same rules as a file.
    pub fn from_json(value: serde_json::Value, origin: &str) -> Result<Advisory, Vec<String>> {
        let raw: RawAdvisory = serde_json::from_value(value).map_err(|e| bounded(vec![one_line(&e.to_string())]))?;
        Advisory::validate(raw, origin)
    }

    fn validate(raw: RawAdvisory, origin: &str) -> Result<Advisory, Vec<String>> {
        let mut problems = Vec::new();
        if !valid_id(&raw.id) {
            problems.push(format!(
                "id `{}` is not valid; expected AZP-ADV-NNNN (or an organization prefix such as CONTOSO-ADV-0001)",
                raw.id
            ));
        }
        for (field, value) in [("title", &raw.title), ("task", &raw.task), ("symptom", &raw.symptom)] {
            if value.trim().is_empty() {
                problems.push(format!("`{field}` is empty"));
            }
        }
        if !is_guid(&raw.task_id) {
            problems.push(format!("task-id `{}` is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", raw.task_id));
        }
        if raw.updated.parse::<jiff::civil::Date>().is_err() || raw.updated.len() != 10 {
            problems.push(format!("updated `{}` is not a date YYYY-MM-DD", raw.updated));
        }
        let confidence = match raw.confidence.as_str() {
            "high" => Confidence::High,
            "medium" => Confidence::Medium,
            "low" => Confidence::Low,
            other => {
                problems.push(format!("confidence `{other}` is not one of high, medium, low"));
                Confidence::Low
            }
        };
        let sources: Vec<&String> = raw.sources.all().collect();
        if sources.is_empty() {
            problems.push("no sources: list at least one issue, pull request or reference link under [sources]".into());
        }
        for url in sources {
            if !url.starts_with("https://") || url.contains(char::is_whitespace) {
                problems.push(format!("source `{url}` is not an https link"));
            }
        }

        let mut version = |field: &str, text: &Option<String>| -> Option<TaskVersion> {
            let text = text.as_deref()?;
            match TaskVersion::parse(text) {
                Some(v) if v.major == raw.major => Some(v),
                Some(v) => {
                    problems.push(format!("{field} {v} is not in major {}", raw.major));
                    None
                }
                None => {
                    problems.push(format!("{field} `{text}` is not a full version N.N.N"));
                    None
                }
            }
        };
        let last_good = version("last-good", &raw.versions.last_good);
        let fixed = version("fixed", &raw.versions.fixed);
        let unaffected: Vec<TaskVersion> =
            raw.versions.unaffected.iter().filter_map(|t| version("unaffected", &Some(t.clone()))).collect();
        let mut affected = Vec::new();
        for text in &raw.versions.affected {
            match VersionRange::parse(text) {
                Ok(r) => {
                    // `< 3.0.0` still stays inside major 2.
                    let next_major = TaskVersion::new(raw.major.saturating_add(1), 0, 0);
                    let upper_inside = r
                        .upper
                        .is_none_or(|u| u.version.major == raw.major || (u.version == next_major && !u.inclusive));
                    if r.lower.version.major != raw.major || !upper_inside {
                        problems.push(format!("affected `{text}` reaches outside major {}", raw.major));
                    }
                    affected.push(r);
                }
                Err(e) => problems.push(format!("affected: {e}")),
            }
        }
        for (i, j) in range::overlapping(&affected) {
            problems.push(format!("affected ranges `{}` and `{}` overlap", affected[i], affected[j]));
        }
        for v in &unaffected {
            if let Some(r) = affected.iter().find(|r| r.contains(*v)) {
                problems.push(format!("unaffected {v} is inside the affected versions (`{r}`)"));
            }
        }
        for (i, build) in raw.versions.builds.iter().enumerate() {
            if !valid_build(build) {
                problems.push(format!(
                    "build `{build}` is not a build name; expected a name such as Default, Node16, Node20, Node24 or Wif"
                ));
            } else if raw.versions.builds[..i].iter().any(|b| b.eq_ignore_ascii_case(build)) {
                problems.push(format!("build `{build}` is listed twice"));
            }
        }
        if raw.pinnable && affected.is_empty() {
            problems.push("versions.affected is empty; list the affected versions, or set pinnable = false".into());
        }
        if !raw.pinnable && (!affected.is_empty() || last_good.is_some()) {
            problems.push("pinnable = false, but affected versions or a last-good version are listed".into());
        }
        if let Some(good) = last_good {
            if affected.iter().any(|r| r.contains(good)) {
                problems.push(format!("last-good {good} is inside the affected versions"));
            }
        }
        if let Some(fix) = fixed {
            for r in &affected {
                if r.contains(fix) {
                    problems.push(format!("fixed {fix} is inside the affected versions (`{r}`)"));
                } else if !r.entirely_below(fix) {
                    problems.push(format!("fixed {fix} is below affected versions `{r}`"));
                }
            }
            if let Some(good) = last_good {
                if good >= fix {
                    problems.push(format!("last-good {good} is not below fixed {fix}"));
                }
            }
        }
        if let Some(when) = &raw.applies_when {
            if when.inputs.is_empty() && when.description.as_deref().is_none_or(|d| d.trim().is_empty()) {
                problems.push("[applies-when] is empty".into());
            }
        }
        if !problems.is_empty() {
            return Err(bounded(problems));
        }
        Ok(Advisory {
            id: raw.id,
            title: raw.title.trim().to_string(),
            task: raw.task,
            task_id: raw.task_id.to_ascii_lowercase(),
            major: raw.major,
            updated: raw.updated,
            symptom: raw.symptom.trim().to_string(),
            cause: raw.cause.map(|s| s.trim().to_string()),
            workaround: raw.workaround.map(|s| s.trim().to_string()),
            confidence,
            confidence_note: raw.confidence_note.map(|s| s.trim().to_string()),
            pinnable: raw.pinnable,
            notes: raw.notes.map(|s| s.trim().to_string()),
            affected,
            last_good,
            fixed,
            builds: raw.versions.builds,
            unaffected,
            sources: raw.sources,
            applies_when: raw.applies_when,
            origin: origin.to_string(),
        })
    }

    /// Whether version `v` is affected, as far as the version data can tell.
    pub fn affects(&self, v: TaskVersion) -> bool {
        self.assess(v) == Hit::Affected
    }

    /// Whether `v` is affected, using the built-in data on which build published which version.
    pub fn assess(&self, v: TaskVersion) -> Hit {
        self.assess_with(v, builds::builtin())
    }

    /// As `assess`, with the given version data.
    pub fn assess_with(&self, v: TaskVersion, data: &builds::BuildData) -> Hit {
        if !self.in_range(v) {
            return Hit::NotAffected;
        }
        if self.builds.is_empty() {
            return Hit::Affected;
        }
        let published: Vec<String> = data
            .get(&self.task_id, self.major)
            .map(|b| b.published_by(v).into_iter().map(str::to_string).collect())
            .unwrap_or_default();
        let concerned = |b: &String| self.builds.iter().any(|x| x.eq_ignore_ascii_case(b));
        if !published.is_empty() && published.iter().all(concerned) {
            Hit::Affected
        } else if !published.is_empty() && !published.iter().any(concerned) {
            Hit::NotAffected
        } else {
            // Two builds published this version string, or the data does not know it.
            Hit::Unsure { published_by: published }
        }
    }

    /// Whether `v` is inside an affected range, whatever the build.
    pub fn in_range(&self, v: TaskVersion) -> bool {
        v.major == self.major && self.affected.iter().any(|r| r.contains(v))
    }

    /// Whether the advisory is about this task (by GUID, or by name for org advisories about
    /// tasks outside the built-in index).
    pub fn is_for(&self, task_id: Option<&str>, name: &str) -> bool {
        match task_id {
            Some(id) => same_ignoring_case(id, &self.task_id),
            None => same_ignoring_case(name, &self.task) || same_ignoring_case(name, &self.task_id),
        }
    }

    pub fn affected_text(&self) -> String {
        self.affected.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("; ")
    }

    /// The link a message shows first.
    pub fn primary_source(&self) -> Option<&str> {
        self.sources.all().next().map(String::as_str)
    }
}

/// `eq_ignore_ascii_case`, stopping at the first byte that differs. Every reference is held
/// against every advisory, and GUIDs of other tasks differ early; the standard comparison
/// compares them in whole 16-byte chunks, which made this the advice stage's hottest loop.
fn same_ignoring_case(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x.eq_ignore_ascii_case(&y))
}

/// At most this many problems are listed for one advisory, then one line counts the rest: a
/// file with thousands of bad or overlapping ranges gets a readable answer, not megabytes.
pub const MAX_PROBLEMS: usize = 20;
/// A problem quotes values from the file; each is cut to this many characters.
const MAX_PROBLEM_CHARS: usize = 300;

fn bounded(mut problems: Vec<String>) -> Vec<String> {
    let more = problems.len().saturating_sub(MAX_PROBLEMS);
    problems.truncate(MAX_PROBLEMS);
    for p in &mut problems {
        if let Some((cut, _)) = p.char_indices().nth(MAX_PROBLEM_CHARS) {
            p.truncate(cut);
            p.push('…');
        }
    }
    if more > 0 {
        problems.push(format!("…and {more} more problem{}", if more == 1 { "" } else { "s" }));
    }
    problems
}

/// Whether version `v` is affected by an advisory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hit {
    Affected,
    NotAffected,
    /// The advisory concerns some builds only and the version cannot be tied to one build:
    /// `published_by` lists the builds that published this version string (empty: unknown).
    Unsure {
        published_by: Vec<String>,
    },
}

/// `Default`, `Node20`, `Wif`: letters first, then letters and digits.
fn valid_build(name: &str) -> bool {
    name.len() <= 40
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && name.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn one_line(text: &str) -> String {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

/// `AZP-ADV-0001`, or an organization's own `PREFIX-...-NNNN`.
pub fn valid_id(id: &str) -> bool {
    let Some((prefix, number)) = id.rsplit_once('-') else { return false };
    number.len() >= 4
        && number.bytes().all(|b| b.is_ascii_digit())
        && !prefix.is_empty()
        && prefix.split('-').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()))
        && prefix.as_bytes()[0].is_ascii_uppercase()
}

/// The advisories in force for a run.
#[derive(Debug, Clone, Default)]
pub struct AdvisoryDb {
    pub advisories: Vec<Advisory>,
}

/// The embedded files, parsed once. A file that does not parse is skipped here; the unit
/// tests and `advisories lint` make sure none is shipped.
pub fn embedded() -> &'static AdvisoryDb {
    static DB: OnceLock<AdvisoryDb> = OnceLock::new();
    DB.get_or_init(|| AdvisoryDb {
        advisories: embedded::EMBEDDED_ADVISORIES
            .iter()
            .filter_map(|(_, text)| Advisory::parse(text, "embedded").ok())
            .collect(),
    })
}

/// The raw embedded files, for lint.
pub fn embedded_files() -> &'static [(&'static str, &'static str)] {
    embedded::EMBEDDED_ADVISORIES
}

/// A problem with an extra advisory file: exit 2, naming the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub file: PathBuf,
    pub problems: Vec<String>,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "advisory file `{}` is not valid: {}", self.file.display(), self.problems.join("; "))?;
        write!(f, " (expected a TOML advisory as described by `azp-preflight advisories lint`)")
    }
}

/// Reads an advisory file: a regular file of at most `fsread::limits::ADVISORY` bytes (a FIFO
/// or a device is refused at once).
pub fn read_text(path: &Path) -> Result<String, FileError> {
    crate::fsread::read_to_string(path, crate::fsread::limits::ADVISORY)
        .map_err(|e| FileError { file: path.to_path_buf(), problems: vec![format!("cannot read it: {e}")] })
}

pub fn read_file(path: &Path) -> Result<Advisory, FileError> {
    let text = read_text(path)?;
    Advisory::parse(&text, &path.display().to_string())
        .map_err(|problems| FileError { file: path.to_path_buf(), problems })
}

impl AdvisoryDb {
    /// The embedded advisories with the extra files merged over them (same id: replaced).
    pub fn load(extra: &[PathBuf]) -> Result<AdvisoryDb, FileError> {
        let mut db = embedded().clone();
        let mut index: std::collections::HashMap<String, usize> =
            db.advisories.iter().enumerate().map(|(i, a)| (a.id.clone(), i)).collect();
        for path in extra {
            let advisory = read_file(path)?;
            match index.get(&advisory.id) {
                Some(&i) => db.advisories[i] = advisory,
                None => {
                    index.insert(advisory.id.clone(), db.advisories.len());
                    db.advisories.push(advisory);
                }
            }
        }
        Ok(db)
    }

    pub fn merge(&mut self, advisory: Advisory) {
        match self.advisories.iter_mut().find(|a| a.id == advisory.id) {
            Some(existing) => *existing = advisory,
            None => self.advisories.push(advisory),
        }
    }

    /// Advisories about this task and major.
    pub fn for_task<'a>(
        &'a self,
        task_id: Option<&'a str>,
        name: &'a str,
        major: u32,
    ) -> impl Iterator<Item = &'a Advisory> {
        self.advisories.iter().filter(move |a| a.major == major && a.is_for(task_id, name))
    }

    /// The newest `updated` date.
    pub fn updated(&self) -> Option<&str> {
        self.advisories.iter().map(|a| a.updated.as_str()).max()
    }
}

pub use show::render_list;

/// `advisories list|show|lint|index|docs`.
pub fn command(
    action: &crate::cli::AdvisoriesAction,
    out: &mut dyn std::io::Write,
    err: &mut dyn std::io::Write,
) -> crate::exit::Exit {
    use crate::cli::AdvisoriesAction;
    use crate::exit::Exit;
    match action {
        AdvisoriesAction::List(files) => match AdvisoryDb::load(&files.advisories) {
            Ok(db) => match render_list(&db, out) {
                Ok(()) => Exit::Ok,
                Err(_) => Exit::Internal,
            },
            Err(e) => {
                let _ = writeln!(err, "azp-preflight: bad input: {e}");
                Exit::BadInput
            }
        },
        AdvisoriesAction::Show { id, files } => show::show(id, files, out, err),
        AdvisoriesAction::Index(output) => show::generate(false, output, out, err),
        AdvisoriesAction::Docs(output) => show::generate(true, output, out, err),
        AdvisoriesAction::Lint(files) => {
            let mut texts = Vec::new();
            for path in &files.advisories {
                match crate::fsread::read_to_string(path, crate::fsread::limits::ADVISORY) {
                    Ok(t) => texts.push((path.display().to_string(), t)),
                    Err(e) => {
                        let _ = writeln!(err, "azp-preflight: bad input: --advisories: `{}` is not valid; expected a readable advisory file ({e})", path.display());
                        return Exit::BadInput;
                    }
                }
            }
            let mut sources = lint::embedded_sources();
            sources.extend(texts.iter().map(|(file, text)| lint::Source { file: file.clone(), text, embedded: false }));
            let (advisories, problems) = lint::lint(&sources);
            for p in problems.iter().take(lint::MAX_LISTED) {
                let _ = writeln!(out, "{p}");
            }
            if problems.len() > lint::MAX_LISTED {
                let _ = writeln!(out, "…and {} more problems", problems.len() - lint::MAX_LISTED);
            }
            if problems.is_empty() {
                let _ = writeln!(out, "{} advisories checked: no problems", advisories.len());
                Exit::Ok
            } else {
                let _ = writeln!(
                    out,
                    "{} problem{} in {} file{}",
                    problems.len(),
                    if problems.len() == 1 { "" } else { "s" },
                    sources.len(),
                    if sources.len() == 1 { "" } else { "s" }
                );
                Exit::Findings
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const SAMPLE: &str = r#"
id = "AZP-ADV-9001"
title = "Sample"
task = "Sample"
task-id = "11111111-2222-3333-4444-555555555555"
major = 2
updated = "2026-01-02"
symptom = "it breaks"
confidence = "high"

[versions]
affected = [">= 2.10.0, < 2.12.0"]
last-good = "2.9.1"
fixed = "2.12.0"

[sources]
issues = ["https://example.com/issues/1"]
"#;

    #[test]
    fn every_embedded_advisory_parses() {
        assert!(!embedded_files().is_empty());
        for (name, text) in embedded_files() {
            if let Err(problems) = Advisory::parse(text, name) {
                panic!("{name}: {problems:?}");
            }
        }
        assert_eq!(embedded().advisories.len(), embedded_files().len());
    }

    #[test]
    fn sample_parses_and_matches() {
        let a = Advisory::parse(SAMPLE, "test").unwrap();
        assert!(a.affects(TaskVersion::new(2, 11, 1)));
        assert!(!a.affects(TaskVersion::new(2, 12, 0)));
        assert!(a.is_for(Some("11111111-2222-3333-4444-555555555555"), "whatever"));
        assert!(a.is_for(None, "sample"));
    }

    #[test]
    fn malformed_advisories_are_rejected_with_reasons() {
        let cases: &[(&str, &str, &str)] = &[
            ("[sources]\nissues = [\"https://example.com/issues/1\"]", "[sources]\n", "no sources"),
            ("affected = [\">= 2.10.0, < 2.12.0\"]", "affected = [\">= 2.10.0, < 2.12.0\", \"2.11.5\"]", "overlap"),
            ("affected = [\">= 2.10.0, < 2.12.0\"]", "affected = [\"< 2.12.0\"]", "no lower bound"),
            ("affected = [\">= 2.10.0, < 2.12.0\"]", "affected = [\">= 2.12.0, < 2.10.0\"]", "matches no version"),
            ("fixed = \"2.12.0\"", "fixed = \"2.11.0\"", "inside the affected"),
            ("last-good = \"2.9.1\"", "last-good = \"2.10.4\"", "last-good 2.10.4 is inside"),
            ("id = \"AZP-ADV-9001\"", "id = \"ADV1\"", "id `ADV1`"),
            ("task-id = \"11111111-2222-3333-4444-555555555555\"", "task-id = \"nope\"", "not a GUID"),
            ("updated = \"2026-01-02\"", "updated = \"yesterday\"", "not a date"),
            ("issues = [\"https://example.com/issues/1\"]", "issues = [\"http://example.com/1\"]", "https"),
            ("confidence = \"high\"", "confidence = \"sure\"", "confidence"),
            ("confidence = \"high\"", "confidence = \"high\"\nseverity = 3", "unknown field"),
            ("fixed = \"2.12.0\"", "fixed = \"3.0.1\"", "not in major"),
        ];
        for (from, to, expected) in cases {
            let text = SAMPLE.replace(from, to);
            let problems = Advisory::parse(&text, "test").expect_err(to);
            assert!(problems.iter().any(|p| p.contains(expected)), "{to}: {problems:?}");
        }
    }

    #[test]
    fn thousands_of_overlapping_ranges_are_fast_and_bounded() {
        let ranges: Vec<String> = (0..5_000).map(|i| format!("\">= 2.{i}.0, < 2.9999.0\"")).collect();
        let text = SAMPLE
            .replace("affected = [\">= 2.10.0, < 2.12.0\"]", &format!("affected = [{}]", ranges.join(", ")))
            .replace("fixed = \"2.12.0\"\n", "")
            .replace("last-good = \"2.9.1\"\n", "");
        let started = std::time::Instant::now();
        let problems = Advisory::parse(&text, "test").unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
        assert_eq!(problems.len(), MAX_PROBLEMS + 1);
        assert!(problems[0].contains("overlap"), "{problems:?}");
        assert_eq!(problems[MAX_PROBLEMS], "…and 4979 more problems");
        let long = SAMPLE.replace("title = \"Sample\"", &format!("title = \"\"\nsymptom2 = \"{}\"", "x".repeat(5000)));
        let problems = Advisory::parse(&long, "test").unwrap_err();
        assert!(problems.iter().all(|p| p.chars().count() <= MAX_PROBLEM_CHARS + 1), "{problems:?}");
    }

    #[test]
    fn builds_and_unaffected_parse_and_decide_by_build() {
        let text = SAMPLE.replace(
            "affected = [\">= 2.10.0, < 2.12.0\"]",
            "affected = [\">= 2.10.0, < 2.12.0\"]\nbuilds = [\"Node20\"]\nunaffected = [\"2.9.0\"]",
        );
        let a = Advisory::parse(&text, "test").unwrap();
        assert_eq!(a.builds, ["Node20"]);
        assert_eq!(a.unaffected, [TaskVersion::new(2, 9, 0)]);
        let mut data = builds::BuildData::default();
        let v = |p| TaskVersion::new(2, 11, p);
        let mut task = builds::TaskBuilds::default();
        task.builds.insert("Default".into(), vec![v(0), v(1)]);
        task.builds.insert("Node20".into(), vec![v(1), v(2)]);
        data.insert("11111111-2222-3333-4444-555555555555", 2, task);
        assert_eq!(a.assess_with(v(2), &data), Hit::Affected);
        assert_eq!(a.assess_with(v(0), &data), Hit::NotAffected);
        assert_eq!(a.assess_with(v(1), &data), Hit::Unsure { published_by: vec!["Default".into(), "Node20".into()] });
        assert_eq!(a.assess_with(v(7), &data), Hit::Unsure { published_by: vec![] });
        assert_eq!(a.assess_with(TaskVersion::new(2, 12, 0), &data), Hit::NotAffected);
        // Without `builds` every build of an affected version is affected.
        let all = Advisory::parse(SAMPLE, "test").unwrap();
        assert_eq!(all.assess_with(v(1), &data), Hit::Affected);
    }

    #[test]
    fn malformed_builds_and_unaffected_are_rejected() {
        let from = "fixed = \"2.12.0\"";
        for (to, expected) in [
            ("builds = [\"Node 20\"]", "build `Node 20` is not a build name"),
            ("builds = [\"Node20\", \"node20\"]", "listed twice"),
            ("unaffected = [\"2.11.0\"]", "unaffected 2.11.0 is inside the affected versions"),
            ("unaffected = [\"2.11\"]", "unaffected `2.11` is not a full version"),
        ] {
            let text = SAMPLE.replace(from, &format!("{from}\n{to}"));
            let problems = Advisory::parse(&text, "test").expect_err(to);
            assert!(problems.iter().any(|p| p.contains(expected)), "{to}: {problems:?}");
        }
    }

    #[test]
    fn extra_files_merge_over_embedded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("org.toml");
        std::fs::write(&path, SAMPLE).unwrap();
        let db = AdvisoryDb::load(std::slice::from_ref(&path)).unwrap();
        assert_eq!(db.advisories.len(), embedded().advisories.len() + 1);
        let replaced = SAMPLE.replace("AZP-ADV-9001", "AZP-ADV-0001");
        std::fs::write(&path, replaced).unwrap();
        let db = AdvisoryDb::load(std::slice::from_ref(&path)).unwrap();
        assert_eq!(db.advisories.len(), embedded().advisories.len());
        assert!(db.advisories.iter().any(|a| a.id == "AZP-ADV-0001" && a.task == "Sample"));
        std::fs::write(&path, "id = 1").unwrap();
        let err = AdvisoryDb::load(&[path]).unwrap_err();
        assert!(err.to_string().contains("org.toml"), "{err}");
    }

    #[test]
    fn ids() {
        assert!(valid_id("AZP-ADV-0001") && valid_id("CONTOSO-ADV-0012") && valid_id("X-12345"));
        assert!(!valid_id("azp-adv-0001") && !valid_id("AZP-ADV-01") && !valid_id("-0001") && !valid_id("AZP--0001"));
    }
}
