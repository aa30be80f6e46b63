//! The published advisory document, `advisories/index.json`: every advisory file's table as
//! JSON (keys as in the TOML, so a field added to the format flows through unchanged), sorted
//! by id, under a schema number and a `generated` date (the newest `updated` of the entries,
//! so the same files always give the same bytes).
//!
//! ```json
//! {"schema": 1, "generated": "2026-11-22", "advisories": [{"id": "AZP-ADV-0001", ...}]}
//! ```
//!
//! A document read back (fetched, or from the cache) is held to the same rules as the files:
//! each entry through `Advisory::from_json`, the set through `lint::lint_set`. Only the
//! build-coverage rule is left to publication time (`generate` runs the whole lint): it checks
//! against the version data built into this binary, and a later document names versions
//! published since.

use serde::Serialize;
use serde_json::Value;

use super::lint::{self, Problem, Source};
use super::{Advisory, AdvisoryDb};

/// The document schema this version writes and reads. A change that older versions cannot
/// safely read (a new field that narrows or widens what an advisory matches) takes a new
/// number: older versions then keep their embedded copy instead of misreading it.
pub const SCHEMA: u64 = 1;

/// The largest document accepted (fetched or cached); the real one is a few tens of KiB.
pub const MAX_BYTES: usize = 2 * 1024 * 1024;

/// How many entry problems a rejection names before "and N more".
const SHOWN_PROBLEMS: usize = 3;

#[derive(Serialize)]
struct Document<'a> {
    schema: u64,
    generated: &'a str,
    advisories: Vec<Value>,
}

/// The document for these advisory files: pretty JSON with a trailing newline. The files
/// must lint clean; otherwise the problems are returned and nothing is written.
pub fn generate(sources: &[Source<'_>]) -> Result<String, Vec<Problem>> {
    let (advisories, problems) = lint::lint(sources);
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut entries = Vec::with_capacity(sources.len());
    for src in sources {
        let value = toml::from_str::<toml::Table>(src.text)
            .map_err(|e| e.to_string())
            .and_then(|table| serde_json::to_value(table).map_err(|e| e.to_string()))
            .map_err(|message| vec![Problem { file: src.file.clone(), message }])?;
        let id = value.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
        entries.push((id, value));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let generated = advisories.iter().map(|a| a.updated.as_str()).max().unwrap_or_default();
    let doc = Document { schema: SCHEMA, generated, advisories: entries.into_iter().map(|(_, v)| v).collect() };
    let mut text = serde_json::to_string_pretty(&doc).map_err(|e| {
        vec![Problem { file: "advisories/index.json".into(), message: format!("cannot serialize: {e}") }]
    })?;
    text.push('\n');
    Ok(text)
}

/// A document that was read back and passed every rule.
#[derive(Debug, Clone)]
pub struct Published {
    pub generated: String,
    pub db: AdvisoryDb,
}

/// Why a document was not used: one sentence, safe to show (no document text is quoted
/// beyond ids and short problem texts, which are sanitized when rendered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected(pub String);

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads a document from bytes.
pub fn parse(bytes: &[u8], origin: &str) -> Result<Published, Rejected> {
    if bytes.len() > MAX_BYTES {
        return Err(Rejected(format!("the document is larger than {} bytes", MAX_BYTES)));
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| Rejected(format!("the document is not valid JSON ({})", one_line(&e.to_string()))))?;
    parse_value(value, origin)
}

/// Reads a document already parsed as JSON: schema first (a newer schema is reported as
/// such, not as the first field this version does not know), then the entries and the set.
pub fn parse_value(value: Value, origin: &str) -> Result<Published, Rejected> {
    let Value::Object(mut root) = value else {
        return Err(Rejected("the document is not a JSON object".into()));
    };
    match root.get("schema").and_then(Value::as_u64) {
        Some(n) if (1..=SCHEMA).contains(&n) => {}
        Some(n) => {
            return Err(Rejected(format!(
                "the document has schema {n}; this version of azp-preflight reads schema {SCHEMA}"
            )))
        }
        None => return Err(Rejected("the document has no numeric `schema`".into())),
    }
    let generated = match root.get("generated").and_then(Value::as_str) {
        Some(d) if d.len() == 10 && d.parse::<jiff::civil::Date>().is_ok() => d.to_string(),
        _ => return Err(Rejected("the document's `generated` is not a date YYYY-MM-DD".into())),
    };
    let entries = match root.remove("advisories") {
        Some(Value::Array(list)) => list,
        _ => return Err(Rejected("the document has no `advisories` list".into())),
    };
    if entries.is_empty() {
        return Err(Rejected("the document lists no advisories".into()));
    }
    let mut problems = Vec::new();
    let mut parsed = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
        let shown = entry.get("id").and_then(Value::as_str).map_or_else(|| format!("entry {}", i + 1), str::to_string);
        match Advisory::from_json(entry, origin) {
            Ok(a) => parsed.push((shown, false, a)),
            Err(list) => problems.extend(list.into_iter().map(|message| Problem { file: shown.clone(), message })),
        }
    }
    let (advisories, problems) = lint::lint_set(parsed, problems);
    if !problems.is_empty() {
        let mut text: Vec<String> = problems.iter().take(SHOWN_PROBLEMS).map(|p| p.to_string()).collect();
        if problems.len() > SHOWN_PROBLEMS {
            text.push(format!("and {} more", problems.len() - SHOWN_PROBLEMS));
        }
        return Err(Rejected(format!("the document does not lint clean: {}", text.join("; "))));
    }
    if let Some(newest) = advisories.iter().map(|a| a.updated.as_str()).max().filter(|u| *u > generated.as_str()) {
        return Err(Rejected(format!(
            "the document says it was generated {generated}, before its newest entry ({newest})"
        )));
    }
    Ok(Published { generated, db: AdvisoryDb { advisories } })
}

/// The embedded database as a published document would describe it: its `generated` date.
pub fn embedded_generated() -> String {
    super::embedded().updated().unwrap_or_default().to_string()
}

fn one_line(text: &str) -> String {
    let line = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
    line.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::tasks::advisories::{embedded, tests::SAMPLE};

    fn committed(path: &str) -> String {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        std::fs::read_to_string(&file).unwrap_or_default()
    }

    #[test]
    fn committed_index_json_is_current() {
        let generated = generate(&lint::embedded_sources()).expect("the embedded database lints clean");
        assert!(
            committed("advisories/index.json") == generated,
            "advisories/index.json is stale: regenerate it with \
             `cargo run -- advisories index --output advisories/index.json` and commit it"
        );
    }

    #[test]
    fn the_document_reads_back_as_the_embedded_database() {
        let text = generate(&lint::embedded_sources()).unwrap();
        let published = parse(text.as_bytes(), "test").unwrap();
        assert_eq!(published.generated, embedded_generated());
        let mut ids: Vec<&str> = published.db.advisories.iter().map(|a| a.id.as_str()).collect();
        let mut expected: Vec<&str> = embedded().advisories.iter().map(|a| a.id.as_str()).collect();
        expected.sort();
        assert_eq!(ids, expected, "sorted by id");
        ids.dedup();
        assert_eq!(ids.len(), embedded().advisories.len());
        for (a, b) in published.db.advisories.iter().zip({
            let mut e = embedded().advisories.clone();
            e.sort_by(|x, y| x.id.cmp(&y.id));
            e
        }) {
            assert_eq!(
                (&a.title, &a.symptom, a.affected_text(), a.fixed, a.last_good, a.confidence),
                (&b.title, &b.symptom, b.affected_text(), b.fixed, b.last_good, b.confidence)
            );
            assert_eq!(a.sources.all().collect::<Vec<_>>(), b.sources.all().collect::<Vec<_>>());
        }
        // Byte-stable: the same files give the same bytes.
        assert_eq!(text, generate(&lint::embedded_sources()).unwrap());
        assert!(text.ends_with("}\n") && text.starts_with("{\n  \"schema\": 1,\n  \"generated\": "));
    }

    #[test]
    fn generation_refuses_files_with_lint_problems() {
        let bad = SAMPLE.replace("confidence = \"high\"", "confidence = \"sure\"");
        let sources = [Source { file: "advisories/AZP-ADV-9001.toml".into(), text: &bad, embedded: true }];
        let problems = generate(&sources).unwrap_err();
        assert!(problems.iter().any(|p| p.message.contains("confidence `sure`")), "{problems:?}");
    }

    fn sample_doc(entries: &[Value], generated: &str, schema: u64) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"schema": schema, "generated": generated, "advisories": entries}))
            .unwrap()
    }

    fn sample_entry() -> Value {
        serde_json::to_value(toml::from_str::<toml::Table>(SAMPLE).unwrap()).unwrap()
    }

    #[test]
    fn rejections_say_why() {
        let good = sample_entry();
        assert!(parse(&sample_doc(std::slice::from_ref(&good), "2026-01-02", 1), "t").is_ok());
        let mut unknown_field = good.clone();
        unknown_field["severity"] = 3.into();
        let mut bad_confidence = good.clone();
        bad_confidence["confidence"] = "sure".into();
        let mut second = good.clone();
        second["id"] = "AZP-ADV-9002".into();
        second["versions"]["affected"] = serde_json::json!(["2.9.1"]);
        second["versions"]["last-good"] = "2.9.0".into();
        second["versions"]["fixed"] = "2.9.2".into();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"{\"schema\": 1, \"generated\"".to_vec(), "not valid JSON"),
            (b"[1, 2]".to_vec(), "not a JSON object"),
            (
                sample_doc(std::slice::from_ref(&good), "2026-01-02", 2),
                "schema 2; this version of azp-preflight reads schema 1",
            ),
            (sample_doc(std::slice::from_ref(&good), "January", 1), "`generated` is not a date"),
            (sample_doc(&[], "2026-01-02", 1), "lists no advisories"),
            (sample_doc(&[unknown_field], "2026-01-02", 1), "AZP-ADV-9001: unknown field `severity`"),
            (sample_doc(&[bad_confidence], "2026-01-02", 1), "confidence `sure`"),
            (sample_doc(&[good.clone(), good.clone()], "2026-01-02", 1), "duplicate id AZP-ADV-9001"),
            (sample_doc(&[good.clone(), second], "2026-01-02", 1), "last-good 2.9.1 is affected by AZP-ADV-9002"),
            (sample_doc(std::slice::from_ref(&good), "2026-01-01", 1), "before its newest entry (2026-01-02)"),
            (vec![b' '; MAX_BYTES + 1], "larger than"),
        ];
        for (bytes, expected) in cases {
            let err = parse(&bytes, "t").expect_err(expected);
            assert!(err.0.contains(expected), "{expected}: {err}");
        }
    }
}
