//! What a `task:` value means: `Name@2`, `Name@2.238.1`, `publisher.extension.contribution.Name@1`
//! or `<GUID>@2`. Anything else (template expressions, variables, `Name@2.1`) is not analysable.

use std::fmt;

/// A full task version `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl TaskVersion {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        TaskVersion { major, minor, patch }
    }

    /// Parses exactly `N.N.N` (digits only, no leading `v`, no pre-release).
    pub fn parse(text: &str) -> Option<TaskVersion> {
        let mut parts = text.split('.');
        let major = number(parts.next()?)?;
        let minor = number(parts.next()?)?;
        let patch = number(parts.next()?)?;
        if parts.next().is_some() {
            return None;
        }
        Some(TaskVersion { major, minor, patch })
    }
}

/// Digits only, at most 9 of them (no sign, no overflow).
fn number(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 9 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

impl fmt::Display for TaskVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Compares dotted numeric versions of any length (`3.225.0` vs `2.115.0`, `3.232`), as
/// agent versions and `minimumAgentVersion` are written. `None` when either is not numeric.
pub fn compare_dotted(a: &str, b: &str) -> Option<std::cmp::Ordering> {
    let parse = |s: &str| -> Option<Vec<u64>> { s.trim().split('.').map(|p| p.parse::<u64>().ok()).collect() };
    let (mut x, mut y) = (parse(a)?, parse(b)?);
    let len = x.len().max(y.len());
    x.resize(len, 0);
    y.resize(len, 0);
    Some(x.cmp(&y))
}

/// How the task is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// `AzureIoTEdge`
    Plain,
    /// `publisher.extension.contribution.Task` or another dotted name (extension tasks).
    Qualified,
    /// The task's GUID.
    Guid,
}

/// What the version part asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSpec {
    /// `@2`: floats to the newest version of the major the organization has.
    Major(u32),
    /// `@2.238.1`: exactly this version.
    Full(TaskVersion),
}

impl VersionSpec {
    pub fn major(self) -> u32 {
        match self {
            VersionSpec::Major(m) => m,
            VersionSpec::Full(v) => v.major,
        }
    }
}

/// A task reference that can be analysed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRef {
    /// The name as written (a GUID for GUID references).
    pub name: String,
    pub kind: NameKind,
    /// The version as written after `@`.
    pub version_text: String,
    pub spec: VersionSpec,
}

impl TaskRef {
    pub fn is_pinned(&self) -> bool {
        matches!(self.spec, VersionSpec::Full(_))
    }
}

/// The outcome of reading a `task:` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Ok(TaskRef),
    /// Why it cannot be analysed, in words for a TSK007 message.
    NotAnalysable(String),
}

/// True when the text holds a template expression, macro or runtime expression.
pub fn has_expression(text: &str) -> bool {
    text.contains("${{") || text.contains("$(") || text.contains("$[")
}

pub fn is_guid(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/'))
        && !name.starts_with('.')
        && !name.ends_with('.')
}

pub fn parse(value: &str) -> Parsed {
    let text = value.trim();
    if text.is_empty() {
        return Parsed::NotAnalysable("the task value is empty; expected Name@Major, e.g. `Docker@2`".into());
    }
    if has_expression(text) {
        return Parsed::NotAnalysable(format!(
            "`{text}` is computed by an expression or variable, so the task and version are only known when the \
             pipeline is compiled"
        ));
    }
    let Some((name, version)) = text.rsplit_once('@') else {
        return Parsed::NotAnalysable(format!(
            "`{text}` has no version; Azure Pipelines requires Name@Major, e.g. `{text}@1`"
        ));
    };
    if !valid_name(name) {
        return Parsed::NotAnalysable(format!(
            "`{name}` is not a task name, GUID or fully qualified name (letters, digits, `_`, `-`, `.`)"
        ));
    }
    let spec = if let Some(major) = number(version) {
        VersionSpec::Major(major)
    } else if let Some(full) = TaskVersion::parse(version) {
        VersionSpec::Full(full)
    } else {
        return Parsed::NotAnalysable(format!(
            "`{text}`: the version `{version}` is neither a major (`@2`) nor a full version (`@2.238.1`); \
             Azure Pipelines rejects other forms"
        ));
    };
    let kind = if is_guid(name) {
        NameKind::Guid
    } else if name.contains('.') {
        NameKind::Qualified
    } else {
        NameKind::Plain
    };
    Parsed::Ok(TaskRef { name: name.to_string(), kind, version_text: version.to_string(), spec })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> TaskRef {
        match parse(text) {
            Parsed::Ok(r) => r,
            Parsed::NotAnalysable(why) => panic!("{text}: {why}"),
        }
    }

    #[test]
    fn reference_forms() {
        let r = ok("AzureIoTEdge@2");
        assert_eq!((r.name.as_str(), r.kind, r.spec), ("AzureIoTEdge", NameKind::Plain, VersionSpec::Major(2)));
        let r = ok("AzureIoTEdge@2.238.1");
        assert_eq!(r.spec, VersionSpec::Full(TaskVersion::new(2, 238, 1)));
        assert_eq!(r.version_text, "2.238.1");
        assert!(r.is_pinned());
        assert_eq!(ok("333b11bd-d341-40d9-afcf-b32d5ce6f23b@2").kind, NameKind::Guid);
        assert_eq!(ok("80F3F6A0-82A6-4A22-BA7A-E5B8C541B9B8@2").kind, NameKind::Guid);
        let q = ok("qetza.replacetokens.replacetokens-task.replacetokens@3");
        assert_eq!((q.kind, q.spec.major()), (NameKind::Qualified, 3));
        assert_eq!(ok("1ES.PublishBuildArtifacts@1").kind, NameKind::Qualified);
        assert_eq!(ok("gittools.gittools.setup-gitversion-task.gitversion-setup@4.7.0").spec.major(), 4);
        assert_eq!(ok("gitversion/setup@4.1.0").kind, NameKind::Plain);
        assert_eq!(ok("  Docker@2 ").name, "Docker");
    }

    #[test]
    fn not_analysable_forms() {
        for text in [
            "",
            "${{ parameters.task }}",
            "$(taskName)@2",
            "Docker@$(major)",
            "Docker",
            "Docker@2.1",
            "Docker@2.x",
            "Docker@v2",
            "Docker@2.1.0.4",
            "@2",
            "Bad Name@2",
            "Docker@99999999999",
        ] {
            assert!(matches!(parse(text), Parsed::NotAnalysable(_)), "{text:?} should not be analysable");
        }
    }

    #[test]
    fn versions_order_and_dotted_compare() {
        assert!(TaskVersion::new(2, 241, 1) < TaskVersion::new(2, 243, 0));
        assert_eq!(TaskVersion::parse("2.243.2"), Some(TaskVersion::new(2, 243, 2)));
        assert_eq!(TaskVersion::parse("2.243"), None);
        assert_eq!(TaskVersion::parse("2.243.+1"), None);
        assert_eq!(compare_dotted("3.225.0", "3.232.1"), Some(std::cmp::Ordering::Less));
        assert_eq!(compare_dotted("2.115", "2.115.0"), Some(std::cmp::Ordering::Equal));
        assert_eq!(compare_dotted("x", "1"), None);
    }
}
