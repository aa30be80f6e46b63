//! The pipeline definition's YAML file, asked from Azure DevOps when nothing is named.

use std::path::Path;

use super::{PipelineFile, Place, SourcesRoot};
use crate::net::{HttpClient, Request};
use crate::secret::Secret;

/// What the online definition lookup needs.
pub struct DefinitionLookup<'a> {
    pub http: &'a HttpClient,
    pub collection: &'a url::Url,
    pub project: &'a str,
    pub definition_id: &'a str,
    pub token: &'a Secret,
}

/// `GET {collection}{project}/_apis/build/definitions/{id}?api-version=7.1` → `process.yamlFilename`.
pub async fn definition_yaml(lookup: DefinitionLookup<'_>) -> Result<String, String> {
    let mut url = lookup.collection.clone();
    url.path_segments_mut().map_err(|_| "the collection URL cannot hold a path".to_string())?.pop_if_empty().extend([
        lookup.project,
        "_apis",
        "build",
        "definitions",
        lookup.definition_id,
    ]);
    url.set_query(Some("api-version=7.1"));
    let response = lookup
        .http
        .send(Request::get(url).header("accept", "application/json").bearer(lookup.token))
        .await
        .map_err(|e| e.to_string())?;
    if !response.is_success() {
        return Err(format!("HTTP {} from the build definitions API", response.status));
    }
    let body: serde_json::Value =
        response.json().map_err(|_| "the build definitions API did not answer with JSON".to_string())?;
    body.pointer("/process/yamlFilename")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| "the definition has no YAML file (a classic pipeline?)".to_string())
}

/// The definition's YAML file under the sources folder, if it is there.
pub fn definition_file(sources_dir: &Path, yaml_filename: &str) -> Option<PipelineFile> {
    let rel = yaml_filename.replace('\\', "/");
    let rel = rel.trim_start_matches('/');
    let root = SourcesRoot::new(sources_dir);
    let path = root.path().join(rel);
    match root.locate(&path) {
        Place::Inside(real) if real.is_file() => Some(PipelineFile { display: rel.to_string(), path }),
        _ => None,
    }
}
