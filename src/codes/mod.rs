//! The stable catalogue of finding codes (README, "Checks and codes"). Each code has a default severity, a
//! short title, and a documentation page in `docs/codes/<CODE>.md` that `explain` prints.

use serde::{Serialize, Serializer};

// Severity lives with the codes (each code has a default one), and findings import it from
// here: the catalogue does not depend on the finding model.
/// How bad a finding is. Ordered: `Note < Warning < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Note,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

macro_rules! catalogue {
    ($( $code:ident: $severity:ident, $title:literal; )*) => {
        /// A stable finding code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code { $($code,)* }

        impl Code {
            /// Every code, in catalogue order.
            pub const ALL: &'static [Code] = &[$(Code::$code,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(Code::$code => stringify!($code),)* }
            }

            /// The severity a finding of this code has unless the check says otherwise
            /// (REG004 and AGT003 escalate with the evidence).
            pub fn default_severity(self) -> Severity {
                match self { $(Code::$code => Severity::$severity,)* }
            }

            pub fn title(self) -> &'static str {
                match self { $(Code::$code => $title,)* }
            }

            /// The full documentation page: what it means, why it happens, how to fix it.
            /// The code's page as written in `docs/codes/`.
            pub fn page(self) -> &'static str {
                match self {
                    $(Code::$code => include_str!(concat!("../../docs/codes/", stringify!($code), ".md")),)*
                }
            }

            /// The page as users read it (`explain`, SARIF rule help): without the line that
            /// names the source files emitting the code, which is for the project's developers.
            pub fn doc(self) -> String {
                let page = self.page();
                let mut out = String::with_capacity(page.len());
                for line in page.split_inclusive('\n') {
                    if !line.starts_with("Emitted by:") {
                        out.push_str(line);
                    }
                }
                out
            }
        }
    };
}

catalogue! {
    REG001: Error, "Login server is malformed";
    REG002: Error, "Login server looks like a typo of a registry domain";
    REG003: Error, "Registry name does not resolve";
    REG004: Note, "Registry resolves to a private address";
    REG005: Error, "Cannot connect to the registry";
    REG006: Error, "TLS handshake or certificate failure";
    REG007: Error, "No valid registry challenge at /v2/";
    REG008: Error, "Registry firewall denied this client";
    REG009: Error, "Registry credential missing or empty";
    REG010: Error, "Registry credential rejected";
    REG011: Error, "Entra ID to ACR token exchange rejected";
    REG012: Error, "Token grants fewer actions than needed";
    REG013: Error, "Repository or tag is locked";
    REG014: Error, "Tag or digest not found";
    REG015: Error, "Image has no manifest for the platform";
    REG016: Warning, "Registry throttled the requests";
    IDN001: Error, "Client secret expired";
    IDN002: Error, "Client secret invalid";
    IDN003: Error, "Application not found in tenant";
    IDN004: Error, "Tenant not found";
    IDN005: Error, "Credential expires within the error window";
    IDN006: Warning, "Credential expires within the warning window";
    IDN007: Error, "Certificate unusable";
    IDN008: Note, "Credential expiry unknown: Graph read denied";
    IDN009: Error, "Workload identity federation failed";
    IDN010: Error, "Managed identity unavailable";
    IDN011: Error, "Token request failed";
    TSK001: Error, "Task version has a known regression";
    TSK002: Warning, "Stale pin: the fix is available";
    TSK003: Warning, "Task major version is deprecated";
    TSK004: Error, "Pinned task version not installed in the organization";
    TSK005: Note, "Unknown task";
    TSK006: Warning, "Task runs only on end-of-life Node handlers";
    TSK007: Note, "Task reference not analysable";
    TSK008: Error, "Pipeline file unreadable or invalid YAML";
    TSK009: Warning, "Local template not found";
    TSK010: Error, "Template or pipeline file outside the sources folder";
    TSK011: Note, "Advisory database update not used";
    TSK012: Note, "Newer task major available";
    AGT001: Warning, "Profiler or monitor injected into the agent";
    AGT002: Warning, "Low free disk in the agent work folder";
    AGT003: Warning, "Agent clock is skewed";
    AGT004: Warning, "Agent older than a task's minimum version";
    DEP001: Error, "Deployment target cannot be read";
    DEP002: Warning, "Image registry not found among the registries the identity can read";
    DEP003: Error, "Pulling identity has no pull permission on the registry";
    DEP004: Error, "Registry uses ABAC repository permissions and the pulling identity has no repository role";
    DEP005: Error, "Target has no identity or credential to pull with";
    DEP006: Error, "Web app's registry credentials do not match the registry";
    DEP007: Error, "Kubelet identity is not assigned to a node pool's scale set";
    DEP008: Error, "Registry public access is disabled and the target has no private path to it";
    DEP009: Error, "Registry firewall does not allow the target's outbound addresses";
    DEP010: Error, "Private DNS zone privatelink.azurecr.io is not linked to the target's virtual network";
    DEP011: Note, "Part of the deployment check could not be verified";
    ORG001: Error, "Service connection not ready or failed";
    ORG002: Note, "Secret-based service connection could use workload identity federation";
    ORG003: Warning, "Service connection unused";
    ORG004: Warning, "Scope the scanning token could not read";
    RUN001: Error, "Check did not finish within the deadline";
    RUN002: Error, "Agent ran out of file descriptors";
    ORG005: Warning, "Shard report missing";
}

impl Code {
    /// Parses `REG001`, case-insensitively.
    pub fn parse(text: &str) -> Option<Code> {
        let wanted = text.trim();
        Code::ALL.iter().copied().find(|code| code.as_str().eq_ignore_ascii_case(wanted))
    }

    /// The pointer placed in every finding's `help` field.
    pub fn help(self) -> String {
        format!("azp-preflight explain {}", self.as_str())
    }

    /// The check family a code belongs to, from its prefix.
    pub fn family(self) -> &'static str {
        match &self.as_str()[..3] {
            "REG" => "registry",
            "IDN" => "identity",
            "TSK" => "tasks",
            "AGT" => "agent",
            "DEP" => "deploy",
            "ORG" => "org",
            _ => "runner",
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod emitters;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn codes_are_unique_and_well_formed() {
        let mut seen = BTreeSet::new();
        for code in Code::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "duplicate code {text}");
            assert_eq!(text.len(), 6, "{text}");
            assert!(text[3..].chars().all(|c| c.is_ascii_digit()), "{text}");
            assert_eq!(Code::parse(&text.to_lowercase()), Some(*code));
        }
    }

    #[test]
    fn every_code_is_documented() {
        for code in Code::ALL {
            assert!(code.page().contains("\nEmitted by: `src/"), "{code}: page names no emitting file");
            assert!(!code.doc().contains("Emitted by:"), "{code}: the developers' line reaches users");
            let doc = code.doc();
            let first = doc.lines().next().unwrap_or_default();
            assert!(first.starts_with(&format!("# {code}")), "{code}: page must start with '# {code}', got {first:?}");
            for section in ["## What it means", "## Why it happens", "## How to fix"] {
                assert!(doc.contains(section), "{code}: page lacks '{section}'");
            }
            assert!(doc.len() > 400, "{code}: page is too thin to help anyone");
        }
    }

    #[test]
    fn docs_folder_holds_no_page_for_an_unknown_code() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/codes");
        for entry in std::fs::read_dir(dir).expect("docs/codes exists") {
            let name = entry.expect("readable entry").file_name().to_string_lossy().to_string();
            let stem = name.trim_end_matches(".md");
            assert!(Code::parse(stem).is_some(), "docs/codes/{name} documents no known code");
        }
    }
}
