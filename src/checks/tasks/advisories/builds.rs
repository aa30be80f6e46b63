//! Which build of a task published which version (`data/task-builds.json`).
//!
//! One release of a built-in task is published as several builds generated from one source
//! folder (Default, Node16, Node20, Node24, Wif, ...), each with its own patch number. The same
//! version string was sometimes given to two builds at different commits (NuGetCommand 2.238.1
//! was the Node 20 build of one commit and the Default build of the next), so a version maps to
//! a set of builds. Advisory lint uses this to demand that every build of an affected release
//! is accounted for; advice uses it to say when it cannot tell which build an organization runs.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;

use serde::Deserialize;

use crate::checks::tasks::reference::TaskVersion;

const DATA: &str = include_str!("../../../../data/task-builds.json");

#[derive(Deserialize)]
struct RawData {
    builds: HashMap<String, BTreeMap<String, String>>,
}

/// The builds of one task major: build name -> the versions it published, ascending.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskBuilds {
    pub builds: BTreeMap<String, Vec<TaskVersion>>,
}

impl TaskBuilds {
    /// The builds that published this exact version string (empty: not in the data).
    pub fn published_by(&self, v: TaskVersion) -> Vec<&str> {
        self.builds.iter().filter(|(_, vs)| vs.binary_search(&v).is_ok()).map(|(b, _)| b.as_str()).collect()
    }

    /// Every (build, version) of one release (`major.minor`).
    pub fn release(&self, major: u32, minor: u32) -> Vec<(&str, TaskVersion)> {
        let mut out = Vec::new();
        for (build, versions) in &self.builds {
            for v in versions.iter().filter(|v| v.major == major && v.minor == minor) {
                out.push((build.as_str(), *v));
            }
        }
        out
    }

    /// Every version any build published.
    pub fn all_versions(&self) -> BTreeSet<TaskVersion> {
        self.builds.values().flatten().copied().collect()
    }
}

/// The version data for every task major: `<guid>@<major>` -> builds.
#[derive(Debug, Clone, Default)]
pub struct BuildData {
    tasks: HashMap<String, TaskBuilds>,
}

impl BuildData {
    /// Parses the generated file; versions are stored as `minor.patch`, space separated.
    pub fn parse(text: &str) -> Result<BuildData, String> {
        let raw: RawData = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut tasks = HashMap::new();
        for (key, builds) in raw.builds {
            let Some((id, major)) = key.rsplit_once('@') else { return Err(format!("key `{key}` is not GUID@major")) };
            let major: u32 = major.parse().map_err(|_| format!("key `{key}` has no numeric major"))?;
            let mut parsed = BTreeMap::new();
            for (build, list) in builds {
                let mut versions = Vec::new();
                for minor_patch in list.split_whitespace() {
                    let v = TaskVersion::parse(&format!("{major}.{minor_patch}"))
                        .ok_or_else(|| format!("`{minor_patch}` under `{key}` is not minor.patch"))?;
                    versions.push(v);
                }
                versions.sort_unstable();
                versions.dedup();
                parsed.insert(build, versions);
            }
            tasks.insert(format!("{}@{major}", id.to_ascii_lowercase()), TaskBuilds { builds: parsed });
        }
        Ok(BuildData { tasks })
    }

    pub fn get(&self, task_id: &str, major: u32) -> Option<&TaskBuilds> {
        self.tasks.get(&format!("{}@{major}", task_id.to_ascii_lowercase()))
    }

    #[cfg(test)]
    pub fn insert(&mut self, task_id: &str, major: u32, builds: TaskBuilds) {
        self.tasks.insert(format!("{}@{major}", task_id.to_ascii_lowercase()), builds);
    }
}

/// The embedded data, parsed once (a broken file is caught by the unit tests).
pub fn builtin() -> &'static BuildData {
    static DATA_ONCE: OnceLock<BuildData> = OnceLock::new();
    DATA_ONCE.get_or_init(|| BuildData::parse(DATA).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> TaskVersion {
        TaskVersion::parse(s).unwrap()
    }

    #[test]
    fn the_embedded_data_parses_and_knows_the_two_builds_of_2_238_1() {
        BuildData::parse(DATA).unwrap();
        // NuGetCommand@2: 2.238.1 was the Node 20 build of 1f1166c8ee and the Default build of 8aaa591e67.
        let nuget = builtin().get("333B11BD-D341-40D9-AFCF-B32D5CE6F23B", 2).unwrap();
        assert_eq!(nuget.published_by(v("2.238.1")), vec!["Default", "Node20"]);
        assert_eq!(nuget.published_by(v("2.238.2")), vec!["Node20"]);
        assert!(nuget.published_by(v("2.238.9")).is_empty());
        let release = nuget.release(2, 238);
        assert!(release.contains(&("Default", v("2.238.3"))) && release.contains(&("Node20", v("2.238.4"))));
        assert!(!release.iter().any(|(_, x)| x.minor != 238));
    }

    #[test]
    fn malformed_data_is_an_error() {
        assert!(BuildData::parse(r#"{"builds":{"abc":{"Default":"1.0"}}}"#).is_err());
        assert!(BuildData::parse(r#"{"builds":{"abc@2":{"Default":"1.x"}}}"#).is_err());
        let ok = BuildData::parse(r#"{"builds":{"ABC@2":{"Default":"1.0 1.2","Node20":"1.1"}}}"#).unwrap();
        assert_eq!(ok.get("abc", 2).unwrap().all_versions().len(), 3);
    }
}
