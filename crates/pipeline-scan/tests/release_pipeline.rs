//! The repository's own azure-pipelines.yml read as an Azure Pipelines YAML: one document, no
//! anchors, aliases or tags (the service rejects them), unique keys, stages → jobs → steps with
//! exactly one step kind each, and what the release needs (tag trigger, dogfood inputs,
//! publisher and token from variables, SBOM, GitHub release). Task references themselves are
//! checked by the tool (tests/task/release-pipeline.test.js).
//!
//! Lives with the scanner because it reads YAML with the same parser, saphyr-parser, into a
//! small tree; the scanner itself never builds one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use saphyr_parser::{Event, Parser};

#[derive(Debug)]
enum Node {
    Scalar(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl Node {
    fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(pairs) => pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    fn str(&self) -> Option<&str> {
        match self {
            Node::Scalar(s) => Some(s),
            _ => None,
        }
    }
    fn keys(&self) -> Vec<&str> {
        match self {
            Node::Map(pairs) => pairs.iter().map(|(k, _)| k.as_str()).collect(),
            _ => Vec::new(),
        }
    }
    fn items(&self) -> &[Node] {
        match self {
            Node::Seq(items) => items,
            _ => &[],
        }
    }
    /// The scalar at `key`, or "" when absent or not a scalar.
    fn s(&self, key: &str) -> &str {
        self.get(key).and_then(Node::str).unwrap_or("")
    }
}

enum Partial {
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>, Option<String>),
}

/// One YAML document as a tree; an error for what Azure Pipelines does not accept.
fn parse(text: &str) -> Result<Node, String> {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Partial> = Vec::new();
    let mut root: Option<Node> = None;
    let mut documents = 0;
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| format!("line {}: {}", e.marker().line(), e.info()))?;
        let at = span.start.line();
        let node = match event {
            Event::StreamStart | Event::StreamEnd | Event::Nothing | Event::DocumentEnd => continue,
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(format!("line {at}: a second YAML document"));
                }
                continue;
            }
            Event::Alias(_) => return Err(format!("line {at}: an alias (Azure Pipelines has no anchors)")),
            Event::Scalar(value, _, anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    return Err(format!("line {at}: an anchor or tag on '{value}'"));
                }
                Node::Scalar(value.into_owned())
            }
            Event::SequenceStart(anchor, ref tag) | Event::MappingStart(anchor, ref tag) => {
                if anchor != 0 || tag.is_some() {
                    return Err(format!("line {at}: an anchor or tag on a collection"));
                }
                stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Partial::Seq(Vec::new())
                } else {
                    Partial::Map(Vec::new(), None)
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Partial::Seq(items)) => Node::Seq(items),
                Some(Partial::Map(pairs, _)) => Node::Map(pairs),
                None => return Err(format!("line {at}: unbalanced collection end")),
            },
        };
        match stack.last_mut() {
            None => root = Some(node),
            Some(Partial::Seq(items)) => items.push(node),
            Some(Partial::Map(pairs, key)) => match key.take() {
                Some(k) => pairs.push((k, node)),
                None => {
                    let Node::Scalar(k) = node else {
                        return Err(format!("line {at}: a mapping key that is not a plain string"));
                    };
                    if pairs.iter().any(|(seen, _)| *seen == k) {
                        return Err(format!("line {at}: duplicate key '{k}'"));
                    }
                    *key = Some(k);
                }
            },
        }
    }
    root.ok_or_else(|| "empty document".to_string())
}

const PIPELINE_KEYS: &[&str] =
    &["name", "trigger", "pr", "schedules", "parameters", "variables", "resources", "stages"];
const STAGE_KEYS: &[&str] = &["stage", "displayName", "dependsOn", "condition", "variables", "jobs", "pool"];
const JOB_KEYS: &[&str] = &[
    "job",
    "displayName",
    "dependsOn",
    "condition",
    "pool",
    "timeoutInMinutes",
    "variables",
    "steps",
    "strategy",
    "workspace",
    "continueOnError",
];
const STEP_KEYS: &[&str] = &[
    "name",
    "displayName",
    "inputs",
    "env",
    "condition",
    "continueOnError",
    "enabled",
    "timeoutInMinutes",
    "workingDirectory",
    "fetchDepth",
    "clean",
    "persistCredentials",
    "retryCountOnTaskFailure",
    "target",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn pipeline() -> Node {
    let text = std::fs::read_to_string(repo().join("azure-pipelines.yml")).expect("azure-pipelines.yml at the root");
    parse(&text).unwrap_or_else(|e| panic!("azure-pipelines.yml: {e}"))
}

fn unknown<'a>(keys: Vec<&'a str>, allowed: &[&str]) -> Vec<&'a str> {
    keys.into_iter().filter(|k| !allowed.contains(k)).collect()
}

/// Every step of every job, with its stage and job ids.
fn steps(p: &Node) -> Vec<(&str, &str, &Node)> {
    let mut out = Vec::new();
    for stage in p.get("stages").map(Node::items).unwrap_or_default() {
        for job in stage.get("jobs").map(Node::items).unwrap_or_default() {
            for step in job.get("steps").map(Node::items).unwrap_or_default() {
                out.push((stage.s("stage"), job.s("job"), step));
            }
        }
    }
    out
}

fn is_identifier(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[test]
fn stages_jobs_and_steps_have_the_azure_pipelines_shape() {
    let p = pipeline();
    assert_eq!(unknown(p.keys(), PIPELINE_KEYS), Vec::<&str>::new(), "top-level keys");
    let stages = p.get("stages").map(Node::items).unwrap_or_default();
    assert!(stages.len() >= 2, "a build and a release stage");
    let mut stage_ids = BTreeSet::new();
    for stage in stages {
        let id = stage.s("stage");
        assert!(is_identifier(id), "stage id '{id}'");
        assert!(stage_ids.insert(id), "stage '{id}' is unique");
        assert_eq!(unknown(stage.keys(), STAGE_KEYS), Vec::<&str>::new(), "keys of stage {id}");
        if let Some(dep) = stage.get("dependsOn") {
            let deps: Vec<&str> = match dep {
                Node::Scalar(s) => vec![s.as_str()],
                other => other.items().iter().filter_map(Node::str).collect(),
            };
            for d in deps {
                assert!(stage_ids.contains(d), "stage {id} depends on earlier stage '{d}'");
            }
        }
        let jobs = stage.get("jobs").map(Node::items).unwrap_or_default();
        assert!(!jobs.is_empty(), "stage {id} has jobs");
        for job in jobs {
            let jid = job.s("job");
            assert!(is_identifier(jid), "job id '{jid}' in stage {id}");
            assert_eq!(unknown(job.keys(), JOB_KEYS), Vec::<&str>::new(), "keys of job {id}.{jid}");
            assert!(!job.get("steps").map(Node::items).unwrap_or_default().is_empty(), "job {id}.{jid} has steps");
        }
    }

    for (stage, job, step) in steps(&p) {
        let keys = step.keys();
        let kinds: Vec<&str> = keys.iter().copied().filter(|k| azp_preflight_scan::STEP_KINDS.contains(k)).collect();
        assert_eq!(kinds.len(), 1, "{stage}.{job}: a step has exactly one kind, got {kinds:?} in {keys:?}");
        let others: Vec<&str> = keys.iter().copied().filter(|k| !azp_preflight_scan::STEP_KINDS.contains(k)).collect();
        assert_eq!(unknown(others, STEP_KEYS), Vec::<&str>::new(), "{stage}.{job}: step keys {keys:?}");
        if let Some(task) = step.get("task") {
            let task = task.str().unwrap_or_default();
            let (name, major) = task.split_once('@').unwrap_or((task, ""));
            assert!(
                is_identifier(name) && !major.is_empty() && major.bytes().all(|b| b.is_ascii_digit()),
                "{stage}.{job}: task reference '{task}' is Name@Major"
            );
        }
        for map in ["inputs", "env"] {
            if let Some(m) = step.get(map) {
                let Node::Map(pairs) = m else { panic!("{stage}.{job}: {map} is a mapping") };
                for (k, v) in pairs {
                    assert!(v.str().is_some(), "{stage}.{job}: {map}.{k} is a string");
                }
            }
        }
    }
}

#[test]
fn step_names_and_their_output_references_resolve_within_the_job() {
    let p = pipeline();
    let mut named: Vec<(String, String)> = Vec::new(); // (stage.job, step name) seen so far
    for (stage, job, step) in steps(&p) {
        let scope = format!("{stage}.{job}");
        for (_, value) in match step.get("env") {
            Some(Node::Map(pairs)) => pairs.as_slice(),
            _ => &[],
        } {
            let v = value.str().unwrap_or_default();
            // $(step.Variable): an output variable of an earlier named step of this job.
            if let Some(inner) = v.strip_prefix("$(").and_then(|r| r.strip_suffix(')')) {
                if let Some((owner, _)) = inner.split_once('.') {
                    if owner.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
                        assert!(
                            named.iter().any(|(s, n)| *s == scope && n == owner),
                            "{scope}: '{v}' names an earlier step of the job"
                        );
                    }
                }
            }
        }
        if let Some(name) = step.get("name").and_then(Node::str) {
            assert!(is_identifier(name), "step name '{name}'");
            assert!(!named.iter().any(|(s, n)| *s == scope && n == name), "step name '{name}' is unique");
            named.push((scope, name.to_string()));
        }
    }
    assert!(!named.is_empty(), "the dogfood step is named, so its output variables can be read");
}

#[test]
fn script_files_and_parameters_it_names_exist() {
    let p = pipeline();
    let declared: Vec<&str> =
        p.get("parameters").map(Node::items).unwrap_or_default().iter().map(|x| x.s("name")).collect();
    for (stage, job, step) in steps(&p) {
        if let Some(inputs) = step.get("inputs") {
            let file = inputs.s("filePath");
            if !file.is_empty() {
                assert!(repo().join(file).is_file(), "{stage}.{job}: {file} exists");
            }
            for (_, v) in match inputs {
                Node::Map(pairs) => pairs.as_slice(),
                _ => &[],
            } {
                let v = v.str().unwrap_or_default();
                if let Some(rest) = v.split("${{ parameters.").nth(1) {
                    let name = rest.split_whitespace().next().unwrap_or_default();
                    assert!(declared.contains(&name), "{stage}.{job}: parameter '{name}' is declared");
                }
            }
        }
    }
}

/// All the text a step runs or passes: script bodies, input and env values.
fn step_text(step: &Node) -> String {
    let mut text = String::new();
    for key in ["script", "bash", "pwsh"] {
        text.push_str(step.s(key));
    }
    for map in ["inputs", "env"] {
        if let Some(Node::Map(pairs)) = step.get(map) {
            for (k, v) in pairs {
                text.push_str(&format!("\n{k}: {}", v.str().unwrap_or_default()));
            }
        }
    }
    text
}

#[test]
fn it_releases_on_tags_after_dogfooding_the_built_task() {
    let p = pipeline();
    let tags = p.get("trigger").and_then(|t| t.get("tags")).and_then(|t| t.get("include")).map(Node::items);
    assert!(tags.unwrap_or_default().iter().any(|t| t.str() == Some("v*")), "tags v* trigger a run");

    let all = steps(&p);
    let dogfood: Vec<_> = all.iter().filter(|(_, _, s)| step_text(s).contains("PipelinePreflight/index.js")).collect();
    assert_eq!(dogfood.len(), 1, "one dogfood step runs the packed shim");
    let env = dogfood[0].2.get("env").expect("the dogfood step passes inputs as INPUT_*");
    assert_eq!(env.s("INPUT_PIPELINEFILES"), "azure-pipelines.yml");
    assert_eq!(env.s("INPUT_CHECKS"), "tasks,agent");
    assert_eq!(env.s("INPUT_FAILON"), "warning");

    let stages = p.get("stages").map(Node::items).unwrap_or_default();
    let release = stages.iter().find(|s| s.s("stage") == "Release").expect("a Release stage");
    assert!(release.s("condition").contains("startsWith(variables['Build.SourceBranch'], 'refs/tags/v')"));
    assert!(
        stages.iter().position(|s| s.s("stage") == "Build") < stages.iter().position(|s| s.s("stage") == "Release")
    );

    let release_steps: Vec<&Node> = all.iter().filter(|(s, _, _)| *s == "Release").map(|(_, _, n)| *n).collect();
    let text: String = release_steps.iter().map(|s| step_text(s)).collect::<Vec<_>>().join("\n");
    assert!(release_steps.iter().any(|s| s.s("task") == "GitHubRelease@1"), "a GitHub release");
    assert!(text.contains("tfx extension publish"), "the .vsix is published with tfx");
    assert!(text.contains("cargo install cargo-cyclonedx") && text.contains("--locked"), "the SBOM tool, locked");
    assert!(text.contains("SHA256SUMS") || text.contains("release-assets.sh"), "checksums");
    // Publisher, extension id and token come from variables, never from the file.
    assert!(text.contains("EXTENSION_PUBLISHER: $(ExtensionPublisher)"), "publisher from a variable");
    assert!(text.contains("EXTENSION_ID: $(ExtensionId)"), "extension id from a variable");
    assert!(text.contains("MARKETPLACE_TOKEN: $(MarketplaceToken)"), "token mapped from a secret variable");
    for (_, _, step) in &all {
        for key in ["script", "bash", "pwsh"] {
            assert!(!step.s(key).contains("$(MarketplaceToken)"), "a secret reaches a script only through env");
        }
        if let Some(inputs) = step.get("inputs") {
            assert!(!inputs.s("script").contains("$(MarketplaceToken)"), "a secret reaches a script only through env");
        }
    }
}

#[test]
fn the_reader_rejects_what_azure_pipelines_rejects() {
    assert!(parse("a: 1\na: 2\n").unwrap_err().contains("duplicate key 'a'"));
    assert!(parse("a: &x 1\nb: *x\n").unwrap_err().contains("anchor"));
    assert!(parse("a: 1\n---\nb: 2\n").unwrap_err().contains("second YAML document"));
    assert!(parse("a: [1\n").is_err());
    let Node::Map(pairs) = parse("steps:\n- bash: echo\n  env: {A: b}\n").unwrap() else { panic!("a map") };
    assert_eq!(pairs[0].0, "steps");
}
