//! Keeps the advisory database fresh between releases, the way `cargo audit` fetches its
//! database: the tasks check asks for the published document (`advisoryUpdate`: `auto`, `off`
//! or a mirror's URL), keeps it with its ETag in a cache folder (the agent's tool cache, or
//! the user's cache folder on a laptop), and uses it only when it parses, lints clean, has a
//! schema this version reads and is not older than the embedded copy. Anything else (offline,
//! slow, broken, older, too large) leaves the run on the embedded copy (or a valid cached
//! copy) with one note saying why; the update never fails a run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use url::Url;

use super::index::{self, Published, Rejected};
use super::AdvisoryDb;
use crate::advisory_update::shown_url;
use crate::codes::Code;
use crate::finding::Finding;
use crate::net::{HttpClient, HttpErrorKind, Request};
use crate::report::{AdvisoryDbInfo, AdvisorySource};

/// The longest a run waits for the document; less when the run's deadline is short.
pub const MAX_WAIT: Duration = Duration::from_secs(3);

/// Largest ETag kept; real ones are a quoted hash.
const MAX_ETAG: usize = 256;

/// The database a run uses, how it was chosen, and the note when the update was not used.
#[derive(Debug, Clone)]
pub struct RunDb {
    pub db: AdvisoryDb,
    pub info: AdvisoryDbInfo,
    /// What the report entry states was proven.
    pub proven: String,
    pub note: Option<Finding>,
}

impl RunDb {
    /// The embedded database, no update asked for.
    pub fn embedded() -> RunDb {
        let db = super::embedded().clone();
        let info = describe(&db, &index::embedded_generated(), AdvisorySource::Embedded, None);
        RunDb { proven: format!("using the embedded advisory database ({})", summary(&info)), db, info, note: None }
    }
}

/// The fetch's inputs.
pub struct Refresh<'a> {
    pub http: &'a HttpClient,
    pub url: &'a Url,
    pub cache_dir: Option<&'a Path>,
    pub wait: Duration,
}

/// What is kept in the cache: the document, where it came from and its ETag. The address is
/// kept as shown (no user info, no query), so a signed mirror URL leaves no credential on disk.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Cached {
    url: String,
    #[serde(default)]
    etag: Option<String>,
    fetched: String,
    document: Value,
}

impl Refresh<'_> {
    /// Asks for the document and decides which database the run uses. Never fails.
    pub async fn run(&self) -> RunDb {
        let embedded_generated = index::embedded_generated();
        let shown = shown_url(self.url);
        let cached = self.read_cache(&embedded_generated);
        let mut request = Request::get(self.url.clone())
            .header("accept", "application/json")
            .max_body(index::MAX_BYTES)
            .slot_deadline(tokio::time::Instant::now() + self.wait);
        if let Some((_, Some(etag), _)) = &cached {
            request = request.header("if-none-match", etag);
        }
        let answer = tokio::time::timeout(self.wait, self.http.send(request)).await;
        let unreachable = |why: String| Failure { unreachable: true, why };
        let failure = match answer {
            Err(_) => unreachable(format!("it did not answer within {} ms", self.wait.as_millis())),
            Ok(Err(e)) => match e.kind {
                HttpErrorKind::BodyTooLarge => {
                    Failure::rejected(Rejected(format!("the document is larger than {} bytes", index::MAX_BYTES)))
                }
                HttpErrorKind::Timeout | HttpErrorKind::ConnectTimeout => {
                    unreachable(format!("it did not answer in time ({})", e.detail))
                }
                _ => unreachable(format!("it could not be reached ({})", e.detail)),
            },
            Ok(Ok(resp)) if resp.status == 304 => match cached {
                Some((published, _, fetched)) => {
                    let info = describe(&published.db, &published.generated, AdvisorySource::Cache, Some(&shown));
                    return RunDb {
                        proven: format!(
                            "using the cached advisory database ({}; unchanged at {shown} since {fetched})",
                            summary(&info)
                        ),
                        db: published.db,
                        info,
                        note: None,
                    };
                }
                None => Failure::rejected(Rejected(
                    "it answered 304 Not Modified to a request for the whole document".into(),
                )),
            },
            Ok(Ok(resp)) if resp.is_success() => {
                match index::parse(&resp.body, &shown).and_then(|p| newer_than_embedded(p, &embedded_generated)) {
                    Ok(published) => {
                        self.write_cache(&resp.body, resp.header("etag"));
                        let info = describe(&published.db, &published.generated, AdvisorySource::Fetched, Some(&shown));
                        return RunDb {
                            proven: format!("using the advisory database fetched from {shown} ({})", summary(&info)),
                            db: published.db,
                            info,
                            note: None,
                        };
                    }
                    Err(why) => Failure::rejected(why),
                }
            }
            Ok(Ok(resp)) => unreachable(format!("it answered HTTP {}", resp.status)),
        };
        self.fall_back(failure, cached, &shown)
    }

    /// The cached copy when it is valid, else the embedded database; with the note.
    fn fall_back(&self, failure: Failure, cached: Option<(Published, Option<String>, String)>, shown: &str) -> RunDb {
        let (db, info, used) = match cached {
            Some((published, _, fetched)) => {
                let info = describe(&published.db, &published.generated, AdvisorySource::Cache, Some(shown));
                let used = format!("the copy cached on {fetched} ({})", summary(&info));
                (published.db, info, used)
            }
            None => {
                let base = RunDb::embedded();
                let used = format!("the embedded database ({})", summary(&base.info));
                (base.db, base.info, used)
            }
        };
        // The reason may quote the document (ids, field values): untrusted text.
        let why = crate::sanitize::sanitize(&failure.why);
        let remedy = if failure.unreachable {
            format!(
                "Nothing to fix for this run. To get advisories published since this version was built, let the \
                 agent reach {shown} over HTTPS, or point `advisoryUpdate` (task) / `--advisory-update` (CLI) at a \
                 mirror it can reach; set it to `off` to use the embedded database without trying."
            )
        } else {
            "Nothing to fix for this run. The published document is damaged, older than this version's own copy, \
             or written for a newer version: update the PipelinePreflight task (or azp-preflight), or check the \
             mirror that `advisoryUpdate` names."
                .to_string()
        };
        let note = Finding::new(
            Code::TSK011,
            format!("the advisory database at {shown} was not used: {why}; this run used {used}"),
        )
        .remedy(remedy)
        .data("url", shown)
        .data("reason", why.clone())
        .data("used", info.source.as_str());
        RunDb { proven: format!("using {used}"), db, info, note: Some(note) }
    }

    fn cache_file(&self) -> Option<PathBuf> {
        self.cache_dir.map(|d| d.join("index.json"))
    }

    /// The cached document for this URL, when it is still acceptable: (document, ETag, when).
    fn read_cache(&self, embedded_generated: &str) -> Option<(Published, Option<String>, String)> {
        let path = self.cache_file()?;
        let bytes = crate::fsread::read(&path, index::MAX_BYTES as u64 + 64 * 1024).ok()?;
        let cached: Cached = serde_json::from_slice(&bytes).ok()?;
        if cached.url != shown_url(self.url) {
            return None;
        }
        let published = index::parse_value(cached.document, &shown_url(self.url))
            .and_then(|p| newer_than_embedded(p, embedded_generated))
            .map_err(|why| tracing::debug!("the cached advisory document is not used: {why}"))
            .ok()?;
        // Shown in messages: a date, or nothing from the file.
        let fetched = Some(cached.fetched)
            .filter(|d| d.len() == 10 && d.parse::<jiff::civil::Date>().is_ok())
            .unwrap_or_else(|| "an unknown date".into());
        Some((published, cached.etag.filter(|e| e.len() <= MAX_ETAG), fetched))
    }

    /// Keeps an accepted document; a cache that cannot be written only costs the next run a
    /// full download.
    fn write_cache(&self, body: &[u8], etag: Option<&str>) {
        let Some(path) = self.cache_file() else { return };
        let Ok(document) = serde_json::from_slice::<Value>(body) else { return };
        let cached = Cached {
            url: shown_url(self.url),
            etag: etag.filter(|e| e.len() <= MAX_ETAG).map(str::to_string),
            fetched: jiff::Timestamp::now().strftime("%Y-%m-%d").to_string(),
            document,
        };
        let result = (|| -> std::io::Result<()> {
            let dir = path.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir)?;
            // Written aside and renamed, so a concurrent run never reads half a file.
            let temp = dir.join(format!("index.json.{}.tmp", std::process::id()));
            std::fs::write(&temp, serde_json::to_vec(&cached).map_err(std::io::Error::other)?)?;
            std::fs::rename(&temp, &path)
        })();
        if let Err(e) = result {
            tracing::debug!("cannot cache the advisory document at {}: {e}", path.display());
        }
    }
}

/// Why the document was not used; `unreachable` when the server did not hand over a
/// document at all (network, timeout, HTTP error), as opposed to handing over a bad one.
struct Failure {
    unreachable: bool,
    why: String,
}

impl Failure {
    fn rejected(why: Rejected) -> Failure {
        Failure { unreachable: false, why: why.0 }
    }
}

/// A document older than the embedded copy would take back what this version knows.
fn newer_than_embedded(published: Published, embedded_generated: &str) -> Result<Published, Rejected> {
    if published.generated.as_str() < embedded_generated {
        return Err(Rejected(format!(
            "the document was generated {}, before this version's embedded database ({embedded_generated})",
            published.generated
        )));
    }
    Ok(published)
}

fn describe(db: &AdvisoryDb, generated: &str, source: AdvisorySource, url: Option<&str>) -> AdvisoryDbInfo {
    AdvisoryDbInfo {
        advisories: db.advisories.len(),
        updated: generated.to_string(),
        source,
        url: url.map(str::to_string),
    }
}

/// `2026-11-22, 16 advisories`.
fn summary(info: &AdvisoryDbInfo) -> String {
    format!("{}, {} advisories", info.updated, info.advisories)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_serves_only_its_own_url_and_only_a_valid_document() {
        let dir = tempfile::tempdir().unwrap();
        let http = HttpClient::new(crate::net::http::HttpSettings::default()).unwrap();
        let url = Url::parse("https://mirror.contoso.com/index.json?sig=abc").unwrap();
        let other = Url::parse("https://mirror.contoso.com/other.json").unwrap();
        let refresh = |url| Refresh { http: &http, url, cache_dir: Some(dir.path()), wait: MAX_WAIT };
        let embedded_generated = index::embedded_generated();
        let doc = index::generate(&super::super::lint::embedded_sources()).unwrap();
        refresh(&url).write_cache(doc.as_bytes(), Some("\"e1\""));
        let (published, etag, _) = refresh(&url).read_cache(&embedded_generated).expect("cached");
        assert_eq!(
            (published.db.advisories.len(), etag.as_deref()),
            (super::super::embedded().advisories.len(), Some("\"e1\""))
        );
        // The query is not part of the key (nor stored): a new signature still finds the copy.
        let resigned = Url::parse("https://mirror.contoso.com/index.json?sig=def").unwrap();
        assert!(refresh(&resigned).read_cache(&embedded_generated).is_some());
        assert!(refresh(&other).read_cache(&embedded_generated).is_none(), "another document's cache");
        assert!(refresh(&url).read_cache("2999-01-01").is_none(), "older than the embedded database");
        let file = dir.path().join("index.json");
        assert!(!std::fs::read_to_string(&file).unwrap().contains("sig=abc"));
        std::fs::write(&file, b"{\"url\": 1").unwrap();
        assert!(refresh(&url).read_cache(&embedded_generated).is_none(), "a damaged cache is ignored");
    }
}
