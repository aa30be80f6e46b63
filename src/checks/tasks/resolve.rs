//! Online: which versions of a task the organization has, from
//! `GET {collection}_apis/distributedtask/tasks/{taskId}?allversions=true` with the job token.
//! `Name@2` runs the newest version of major 2 in that list. Each task is asked for once per
//! run, whatever the number of references.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use tokio::sync::OnceCell;
use url::Url;

use super::reference::{is_guid, TaskVersion};
use crate::net::http::HttpSettings;
use crate::net::{HttpClient, Request};
use crate::secret::Secret;

/// Task definitions with every version and their inputs are large: allow more than the
/// default body cap for this one API.
const MAX_TASK_LIST_BYTES: usize = 32 * 1024 * 1024;

#[derive(Debug, Deserialize)]
struct TaskList {
    #[serde(default)]
    value: Vec<TaskDefinition>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaskDefinition {
    #[serde(default)]
    name: Option<String>,
    version: RawVersion,
    #[serde(default)]
    deprecated: Option<bool>,
    #[serde(default)]
    minimum_agent_version: Option<String>,
    #[serde(default)]
    execution: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(rename = "_buildConfigMapping", default)]
    build_config_mapping: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawVersion {
    major: u32,
    minor: u32,
    patch: u32,
    #[serde(default)]
    is_test: bool,
}

/// One version the organization has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgVersion {
    pub version: TaskVersion,
    pub is_test: bool,
    pub deprecated: bool,
    pub minimum_agent_version: Option<String>,
    pub handlers: Vec<String>,
    /// The other builds of the same release (`_buildConfigMapping`): a pin to either works.
    pub builds: Vec<TaskVersion>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrgTask {
    pub name: Option<String>,
    pub versions: Vec<OrgVersion>,
}

impl OrgTask {
    /// What `Name@major` runs: the newest non-test version of that major.
    pub fn resolve_major(&self, major: u32) -> Option<&OrgVersion> {
        self.versions.iter().filter(|v| v.version.major == major && !v.is_test).max_by_key(|v| v.version)
    }

    /// The version itself, else the release it is another build of.
    pub fn get(&self, version: TaskVersion) -> Option<&OrgVersion> {
        self.versions
            .iter()
            .find(|v| v.version == version)
            .or_else(|| self.versions.iter().find(|v| v.builds.contains(&version)))
    }

    /// Whether a pin to this version can run: listed itself or as another build of a release.
    pub fn has(&self, version: TaskVersion) -> bool {
        self.versions.iter().any(|v| v.version == version || v.builds.contains(&version))
    }

    pub fn majors(&self) -> Vec<u32> {
        let mut m: Vec<u32> = self.versions.iter().map(|v| v.version.major).collect();
        m.sort_unstable();
        m.dedup();
        m
    }
}

/// What the organization said about one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Found(OrgTask),
    /// 404 or an empty list: the organization has no version of this task.
    NotInstalled,
    /// Could not tell (auth, network, unexpected body): offline advice applies.
    Failed(String),
}

pub fn parse_task_list(body: &[u8]) -> Result<OrgTask, String> {
    let list: TaskList =
        serde_json::from_slice(body).map_err(|e| format!("the task list is not the expected JSON ({e})"))?;
    let mut task = OrgTask::default();
    for def in list.value {
        task.name = task.name.or(def.name);
        let version = TaskVersion::new(def.version.major, def.version.minor, def.version.patch);
        let builds = def
            .build_config_mapping
            .unwrap_or_default()
            .values()
            .filter_map(|v| TaskVersion::parse(v))
            .filter(|v| *v != version)
            .collect();
        task.versions.push(OrgVersion {
            version,
            is_test: def.version.is_test,
            deprecated: def.deprecated.unwrap_or(false),
            minimum_agent_version: def.minimum_agent_version.filter(|m| !m.trim().is_empty()),
            handlers: def.execution.unwrap_or_default().into_keys().collect(),
            builds,
        });
    }
    Ok(task)
}

pub struct Resolver {
    http: HttpClient,
    collection: Url,
    token: Secret,
    cache: Mutex<HashMap<String, Arc<OnceCell<Lookup>>>>,
}

impl Resolver {
    pub fn new(http: &HttpClient, collection: Url, token: Secret) -> Resolver {
        let settings = HttpSettings { max_body_bytes: MAX_TASK_LIST_BYTES, ..http.settings().clone() };
        let http = HttpClient::new(settings).unwrap_or_else(|_| http.clone());
        Resolver { http, collection, token, cache: Mutex::new(HashMap::new()) }
    }

    pub async fn lookup(&self, task_id: &str) -> Lookup {
        let id = task_id.to_ascii_lowercase();
        if !is_guid(&id) {
            return Lookup::Failed(format!("`{task_id}` is not a task GUID"));
        }
        let cell = {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache.entry(id.clone()).or_default().clone()
        };
        cell.get_or_init(|| self.fetch(id)).await.clone()
    }

    async fn fetch(&self, id: String) -> Lookup {
        let mut url = match self.collection.join(&format!("_apis/distributedtask/tasks/{id}")) {
            Ok(u) => u,
            Err(e) => return Lookup::Failed(format!("cannot build the task list URL ({e})")),
        };
        url.set_query(Some("allversions=true"));
        let request = Request::get(url).header("accept", "application/json").bearer(&self.token);
        let response = match self.http.send(request).await {
            Ok(r) => r,
            Err(e) => return Lookup::Failed(format!("the tasks API could not be reached: {e}")),
        };
        match response.status {
            200..=299 => match parse_task_list(&response.body) {
                Ok(task) if task.versions.is_empty() => Lookup::NotInstalled,
                Ok(task) => Lookup::Found(task),
                Err(e) => Lookup::Failed(e),
            },
            404 => Lookup::NotInstalled,
            401 | 403 => Lookup::Failed(format!(
                "HTTP {} from the tasks API: the job's access token may not read the organization's tasks",
                response.status
            )),
            other => Lookup::Failed(format!("HTTP {other} from the tasks API")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_list_shape() {
        let body = br#"{"count":3,"value":[
          {"id":"80f3f6a0-82a6-4a22-ba7a-e5b8c541b9b8","name":"AzureIoTEdge","version":{"major":2,"minor":241,"patch":1,"isTest":false},
           "minimumAgentVersion":"2.115.0","execution":{"Node16":{},"Node20_1":{}},"_buildConfigMapping":{"Default":"2.241.0","Node20_229_11":"2.241.1"}},
          {"id":"80f3f6a0-82a6-4a22-ba7a-e5b8c541b9b8","name":"AzureIoTEdge","version":{"major":2,"minor":238,"patch":1},"deprecated":false},
          {"id":"80f3f6a0-82a6-4a22-ba7a-e5b8c541b9b8","name":"AzureIoTEdge","version":{"major":2,"minor":250,"patch":0,"isTest":true}}
        ]}"#;
        let task = parse_task_list(body).unwrap();
        assert_eq!(task.name.as_deref(), Some("AzureIoTEdge"));
        let current = task.resolve_major(2).unwrap();
        assert_eq!(current.version, TaskVersion::new(2, 241, 1));
        assert_eq!(current.handlers, ["Node16", "Node20_1"]);
        assert!(task.has(TaskVersion::new(2, 241, 0)), "the other build of a release counts");
        assert!(task.has(TaskVersion::new(2, 238, 1)));
        assert!(!task.has(TaskVersion::new(2, 238, 0)));
        assert!(task.resolve_major(1).is_none());
        assert!(parse_task_list(b"<html>").is_err());
        assert!(parse_task_list(br#"{"value":[{"version":{"major":"x"}}]}"#).is_err());
    }
}
