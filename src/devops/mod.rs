//! An Azure DevOps REST 7.1 client for the organisation scan. It knows nothing of checks: it
//! takes the HTTP client, the organisation URL and a credential, and returns typed pages.
//!
//! Manners: at most `concurrency` requests in flight; every answer's throttling headers
//! (`Retry-After`, `X-RateLimit-Delay`, a low `X-RateLimit-Remaining`) pause all requests,
//! since the limit is per identity; 429 and 5xx are retried a bounded number of times; lists
//! follow continuation tokens (header or body) up to a bounded number of pages and items.

pub mod auth;
pub mod model;
pub mod throttle;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use url::Url;

pub use auth::DevOpsAuth;
use model::{Build, Definition, ErrorBody, ExecutionRecord, ListBody, Project, ServiceEndpoint, TaskRef, Timeline};
use throttle::Throttle;

use crate::net::http::{HttpError, Request, Response};
use crate::net::HttpClient;

pub const DEFAULT_CONCURRENCY: usize = 16;
/// Retries of one request answered 429 or 5xx.
const MAX_RETRIES: u32 = 5;
/// Bounds on one list: pages followed and items kept.
const MAX_PAGES: usize = 2_000;
const MAX_ITEMS: usize = 200_000;
/// Definition ids per builds query (the URL stays well under any server's limit).
pub const BUILD_BATCH: usize = 100;

#[derive(Debug, Clone)]
pub enum DevOpsError {
    /// 401/403 (and 404 for a project hidden from the caller): the token may not read it.
    Denied { status: u16, message: String },
    /// 429 or 5xx after every retry.
    Unavailable { status: u16, message: String },
    /// Another status, or a body that is not the documented shape.
    Unusable { status: u16, message: String },
    /// No answer at all.
    Transport(HttpError),
}

impl std::fmt::Display for DevOpsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DevOpsError::Denied { status, message } => write!(f, "HTTP {status}: {message}"),
            DevOpsError::Unavailable { status, message } => {
                write!(f, "HTTP {status} after {MAX_RETRIES} retries: {message}")
            }
            DevOpsError::Unusable { status, message } => write!(f, "HTTP {status}: {message}"),
            DevOpsError::Transport(e) => write!(f, "no answer ({e})"),
        }
    }
}

/// The client: one per scan, shared by its tasks.
pub struct DevOpsClient {
    http: HttpClient,
    /// The collection URL with its trailing slash (`https://dev.azure.com/contoso/`).
    organization: Url,
    auth: DevOpsAuth,
    slots: Arc<Semaphore>,
    throttle: Throttle,
    requests: std::sync::atomic::AtomicU64,
}

impl DevOpsClient {
    pub fn new(http: HttpClient, organization: Url, auth: DevOpsAuth, concurrency: usize) -> DevOpsClient {
        DevOpsClient {
            http,
            organization,
            auth,
            slots: Arc::new(Semaphore::new(concurrency.clamp(1, 64))),
            throttle: Throttle::default(),
            requests: Default::default(),
        }
    }

    pub fn organization(&self) -> &Url {
        &self.organization
    }

    pub fn auth(&self) -> &DevOpsAuth {
        &self.auth
    }

    /// Seconds throttled and the responses that asked to wait.
    pub fn throttled(&self) -> (f64, u64) {
        self.throttle.totals()
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `{org}/{path}` with the query pairs appended (percent-encoded).
    fn url(&self, path: &str, query: &[(&str, &str)]) -> Result<Url, DevOpsError> {
        let mut url = self.organization.join(path).map_err(|e| DevOpsError::Unusable {
            status: 0,
            message: format!("cannot form the URL for {path} ({e})"),
        })?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// One GET: waits out any pause in force, takes a slot, honours throttling headers,
    /// retries 429/5xx with backoff. `Ok` is a 2xx response.
    async fn get(&self, url: &Url) -> Result<Response, DevOpsError> {
        let mut attempt = 0;
        loop {
            while let Some(until) = self.throttle.paused_until() {
                tokio::time::sleep_until(until).await;
            }
            let response = {
                let _slot = self.slots.acquire().await.map_err(|_| DevOpsError::Unusable {
                    status: 0,
                    message: "the request slots were closed".into(),
                })?;
                self.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let request = Request::get(url.clone()).header("accept", "application/json").no_retry();
                self.http.send(self.auth.apply(request)).await.map_err(DevOpsError::Transport)?
            };
            let wait = throttle::requested_wait(&response, SystemTime::now());
            if let Some(wait) = wait {
                self.throttle.asked(wait);
            }
            let status = response.status;
            if response.is_success() {
                return Ok(response);
            }
            let message = error_message(&response);
            match status {
                401 | 403 | 404 => return Err(DevOpsError::Denied { status, message }),
                429 | 500..=599 if attempt < MAX_RETRIES => {
                    attempt += 1;
                    if wait.is_none() {
                        // No header said how long: back off, doubling, and tell the others.
                        let backoff = Duration::from_millis(250 * 2u64.pow(attempt.min(6)));
                        self.throttle.asked(backoff);
                    }
                }
                429 | 500..=599 => return Err(DevOpsError::Unavailable { status, message }),
                _ => return Err(DevOpsError::Unusable { status, message }),
            }
        }
    }

    async fn get_json<T: DeserializeOwned>(&self, url: &Url) -> Result<T, DevOpsError> {
        let response = self.get(url).await?;
        response.json::<T>().map_err(|e| DevOpsError::Unusable {
            status: response.status,
            message: format!("the answer is not the documented JSON ({e}): {}", response.body_excerpt(200)),
        })
    }

    /// Every item of a list, following `x-ms-continuationtoken` or `continuationToken`.
    async fn list<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> Result<Vec<T>, DevOpsError> {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut pairs: Vec<(&str, &str)> = query.to_vec();
            if let Some(t) = token.as_deref() {
                pairs.push(("continuationToken", t));
            }
            let url = self.url(path, &pairs)?;
            let response = self.get(&url).await?;
            let page: ListBody<T> = response.json().map_err(|e| DevOpsError::Unusable {
                status: response.status,
                message: format!("the list is not the documented JSON ({e}): {}", response.body_excerpt(200)),
            })?;
            items.extend(page.value);
            if items.len() > MAX_ITEMS {
                return Err(DevOpsError::Unusable {
                    status: response.status,
                    message: format!("more than {MAX_ITEMS} items in one list; narrow the scan with --project"),
                });
            }
            let next = response
                .header("x-ms-continuationtoken")
                .map(str::to_string)
                .or(page.continuation_token)
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty());
            match next {
                Some(t) if Some(&t) != token.as_ref() => token = Some(t),
                _ => return Ok(items),
            }
        }
        Err(DevOpsError::Unusable { status: 200, message: format!("more than {MAX_PAGES} pages in one list") })
    }

    /// `_apis/projects`: every project the credential can see.
    pub async fn projects(&self) -> Result<Vec<Project>, DevOpsError> {
        self.list("_apis/projects", &[("api-version", "7.1"), ("$top", "100")]).await
    }

    /// `{project}/_apis/serviceendpoint/endpoints?includeFailed=true`.
    pub async fn endpoints(&self, project_id: &str) -> Result<Vec<ServiceEndpoint>, DevOpsError> {
        let path = format!("{}/_apis/serviceendpoint/endpoints", segment(project_id));
        self.list(&path, &[("includeFailed", "true"), ("api-version", "7.1")]).await
    }

    /// When the connection was last used by a pipeline (the newest execution's finish time).
    pub async fn last_used(&self, project_id: &str, endpoint_id: &str) -> Result<Option<String>, DevOpsError> {
        let path = format!("{}/_apis/serviceendpoint/{}/executionhistory", segment(project_id), segment(endpoint_id));
        let url = self.url(&path, &[("top", "1"), ("api-version", "7.1-preview.1")])?;
        let body: ListBody<ExecutionRecord> = self.get_json(&url).await?;
        Ok(body.value.into_iter().find_map(|r| r.data.finish_time.or(r.data.start_time)))
    }

    /// `{project}/_apis/build/definitions`, paged.
    pub async fn definitions(&self, project_id: &str) -> Result<Vec<Definition>, DevOpsError> {
        let path = format!("{}/_apis/build/definitions", segment(project_id));
        self.list(&path, &[("api-version", "7.1")]).await
    }

    /// The latest completed build of each given definition since `min_time` (RFC 3339).
    pub async fn latest_builds(
        &self,
        project_id: &str,
        definition_ids: &[i64],
        min_time: &str,
    ) -> Result<Vec<Build>, DevOpsError> {
        let path = format!("{}/_apis/build/builds", segment(project_id));
        let ids = definition_ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        let query = [
            ("definitions", ids.as_str()),
            ("maxBuildsPerDefinition", "1"),
            ("queryOrder", "finishTimeDescending"),
            ("statusFilter", "completed"),
            ("minTime", min_time),
            ("api-version", "7.1"),
        ];
        self.list(&path, &query).await
    }

    /// The distinct task versions a build's timeline records ran (the timeline itself is
    /// dropped here: only its tasks are kept).
    pub async fn build_tasks(&self, project_id: &str, build_id: i64) -> Result<Vec<TaskRef>, DevOpsError> {
        let path = format!("{}/_apis/build/builds/{build_id}/timeline", segment(project_id));
        let url = self.url(&path, &[("api-version", "7.1")])?;
        let timeline: Timeline = self.get_json(&url).await?;
        let mut tasks: Vec<TaskRef> = timeline
            .records
            .into_iter()
            .filter_map(|r| r.task)
            .filter(|t| !t.name.trim().is_empty() || !t.id.trim().is_empty())
            .map(|t| TaskRef {
                id: model::lower(&t.id),
                name: t.name.trim().to_string(),
                version: t.version.trim().to_string(),
            })
            .collect();
        tasks.sort();
        tasks.dedup();
        Ok(tasks)
    }
}

/// A path segment, percent-encoded (project names may have spaces; ids are GUIDs).
fn segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>().replace('+', "%20")
}

/// The service's own message from its error body, else an excerpt.
fn error_message(response: &Response) -> String {
    match response.json::<ErrorBody>() {
        Ok(ErrorBody { message: Some(m), type_key }) => {
            let text = response.excerpt(&m, 300);
            match type_key {
                Some(k) if !k.is_empty() => format!("{text} ({})", response.excerpt(&k, 80)),
                _ => text,
            }
        }
        _ => response.body_excerpt(200),
    }
}
