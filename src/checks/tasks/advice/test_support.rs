//! Helpers the advice tests share: a scanned file, advice for every reference in it, and an
//! organization's task versions.

use std::path::PathBuf;
use std::sync::Arc;

use super::{advise, Advice, Facts};
use crate::checks::tasks::advisories;
use crate::checks::tasks::index;
use crate::checks::tasks::resolve::{parse_task_list, Lookup};
use crate::checks::tasks::templates::{FoundRef, ScannedFile};
use crate::codes::Code;
use crate::codes::Severity;

pub(super) fn file(text: &str) -> Arc<ScannedFile> {
    Arc::new(ScannedFile::from_text(
        PathBuf::from("/src/azure-pipelines.yml"),
        "azure-pipelines.yml".into(),
        text.into(),
        false,
        None,
    ))
}

pub(super) fn run(text: &str, lookup: Option<&Lookup>, agent: Option<&str>) -> Vec<Advice> {
    let f = file(text);
    let facts = Facts { db: advisories::embedded(), index: index::builtin(), agent_version: agent };
    f.scanned
        .references
        .iter()
        .enumerate()
        .flat_map(|(i, _)| advise(&FoundRef::new(f.clone(), i).unwrap(), &facts, lookup))
        .collect()
}

pub(super) fn codes(advice: &[Advice]) -> Vec<(Code, Severity)> {
    advice.iter().map(|a| (a.finding.code, a.finding.severity)).collect()
}

pub(super) fn org(versions: &[&str]) -> Lookup {
    let defs: Vec<String> = versions
        .iter()
        .map(|v| {
            let p: Vec<&str> = v.split('.').collect();
            format!(
                r#"{{"name":"AzureIoTEdge","version":{{"major":{},"minor":{},"patch":{}}},"execution":{{"Node20_1":{{}}}},"minimumAgentVersion":"2.144.0"}}"#,
                p[0], p[1], p[2]
            )
        })
        .collect();
    Lookup::Found(parse_task_list(format!(r#"{{"value":[{}]}}"#, defs.join(",")).as_bytes()).unwrap())
}
