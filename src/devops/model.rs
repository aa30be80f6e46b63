//! The Azure DevOps REST 7.1 shapes the organisation scan reads. Every field is optional
//! (`#[serde(default)]`): a missing or new field never fails a page. Ids are GUIDs in mixed
//! case on the wire; [`lower`] is applied wherever they are compared or used as keys.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// GUIDs compare case-insensitively; keys use the lower-case form.
pub fn lower(id: &str) -> String {
    id.trim().to_ascii_lowercase()
}

/// `{"count": n, "value": [...], "continuationToken": "..."}`.
#[derive(Debug, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ListBody<T> {
    pub value: Vec<T>,
    pub continuation_token: Option<String>,
}

impl<T> Default for ListBody<T> {
    fn default() -> Self {
        ListBody { value: Vec::new(), continuation_token: None }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Project {
    pub id: String,
    pub name: String,
    pub state: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EndpointAuthorization {
    pub scheme: Option<String>,
    /// Non-secret parameters (`serviceprincipalid`, `tenantid`, `authenticationType`, the
    /// federation issuer and subject); secret ones come back null or absent.
    pub parameters: BTreeMap<String, Value>,
}

impl EndpointAuthorization {
    /// A parameter's text, its name compared case-insensitively.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_str())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OperationStatus {
    pub state: Option<String>,
    pub status_message: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ServiceEndpoint {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub url: Option<String>,
    pub authorization: Option<EndpointAuthorization>,
    pub data: BTreeMap<String, Value>,
    pub is_ready: Option<bool>,
    pub operation_status: Option<OperationStatus>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ExecutionRecord {
    pub data: ExecutionData,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ExecutionData {
    pub finish_time: Option<String>,
    pub start_time: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Definition {
    pub id: i64,
    pub name: String,
    pub path: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DefinitionRef {
    pub id: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Link {
    pub href: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BuildLinks {
    pub web: Link,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Build {
    pub id: i64,
    pub build_number: Option<String>,
    pub finish_time: Option<String>,
    pub result: Option<String>,
    pub definition: DefinitionRef,
    #[serde(rename = "_links")]
    pub links: BuildLinks,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(default)]
pub struct TaskRef {
    pub id: String,
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TimelineRecord {
    pub task: Option<TaskRef>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Timeline {
    pub records: Vec<TimelineRecord>,
}

/// Azure DevOps' error body (`{"message", "typeKey", "errorCode", "eventId", ...}`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ErrorBody {
    pub message: Option<String>,
    pub type_key: Option<String>,
}
