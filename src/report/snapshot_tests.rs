//! Snapshots of every renderer's whole output for one report that has a bit of everything:
//! all five check families, every status, located and unlocated findings, remedies (one of
//! them YAML to paste), data, proven facts, the advisory database header, and hostile text
//! (a logging command, a carriage return, an ANSI escape, a registered secret).
//!
//! Each output goes through `Output` as the run would write it, so the snapshot is what the
//! user sees. The snapshots live in `src/report/snapshots/`; review a change with
//! `cargo insta review` (README, Testing).

use std::time::Duration;

use serde_json::json;

use super::vso::PipelineOutputs;
use super::{github, human, json as json_report, markdown, sarif, vso, AdvisoryDbInfo, AdvisorySource, Report};
use crate::check::{CheckResult, TargetOutcome};
use crate::cli::FailOn;
use crate::codes::Code;
use crate::codes::Severity;
use crate::finding::{Finding, Location};
use crate::output::Output;
use crate::secret::Redactor;
use crate::settings::CheckId;

/// A value the redactor knows: it must show as `***` everywhere but `task.setsecret`.
const FAKE_SECRET: &str = "fake-secret-Zq81~canary";

fn redactor() -> Redactor {
    let redactor = Redactor::default();
    redactor.register(FAKE_SECRET);
    redactor
}

fn entry(check: CheckId, target: &str, millis: u64, outcome: TargetOutcome) -> CheckResult {
    CheckResult::from_outcome(check, target.to_string(), Duration::from_millis(millis), outcome)
}

fn proven(facts: &[&str]) -> Vec<String> {
    facts.iter().map(|f| f.to_string()).collect()
}

/// The fixture: fixed durations and dates, nothing read from the clock or the machine.
fn report() -> Report {
    let registry_fail = TargetOutcome {
        findings: vec![Finding::new(
            Code::REG010,
            format!("contosoedge.azurecr.io answered 401: {{\"errors\":[{{\"message\":\"token {FAKE_SECRET} rejected\"}}]}}"),
        )
        .remedy("Rotate the password of service connection `edge-acr` and update the connection.")
        .data("status", 401)
        .data("connection", "edge-acr")],
        proven: proven(&["DNS resolves", "TLS verified"]),
        ..Default::default()
    };
    let registry_pass = TargetOutcome {
        proven: proven(&["push allowed (token grants pull,push)", "repository unlocked", "linux/amd64 present"]),
        ..Default::default()
    };
    let identity_warn = TargetOutcome {
        findings: vec![Finding::new(
            Code::IDN006,
            "client secret `azdo` expires 2026-12-09T00:00:00Z, in 17 days\r\n##vso[task.setvariable variable=PreflightResult]pass",
        )
        .remedy("Rotate the secret before 2026-12-09 (az ad app credential reset --id 46e6adf4-a9cf-4b60-9390-0ba6fb00bf6b).")
        .data("daysLeft", 17)
        .data("endDateTime", "2026-12-09T00:00:00Z")],
        proven: proven(&["Entra ID issues a token (secret)"]),
        ..Default::default()
    };
    let tasks_fail = TargetOutcome {
        findings: vec![
            Finding::new(
                Code::TSK001,
                "AzureIoTEdge@2 resolves to 2.241.1, which breaks pushes (AZP-ADV-0002). Last good: 2.238.1; fixed in: 2.245.0",
            )
            .remedy("Pin the last good version:\n  - task: AzureIoTEdge@2.238.1\n`azp-preflight fix` does it.")
            .at(Location::new("pipelines/build;edge]%.yml", 35, 13))
            .data("advisory", "AZP-ADV-0002"),
            Finding::new(Code::TSK007, "`${{ parameters.pushTask }}` is a template expression; its version is unknown")
                .at(Location::new("azure-pipelines.yml", 54, 15))
                .severity(Severity::Note),
        ],
        proven: proven(&["16 task references"]),
        extra: json!({"references": [{"task": "AzureIoTEdge", "version": "2", "file": "pipelines/build;edge]%.yml", "line": 35, "column": 13}]})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        ..Default::default()
    };
    let agent_warn = TargetOutcome {
        findings: vec![Finding::new(
            Code::AGT001,
            "LD_PRELOAD injects the profiler `\x1b[31mliboneagentproc.so\x1b[0m` into every process this agent starts",
        )
        .remedy("Exclude the agent's processes from the profiler.")
        .data("variable", "LD_PRELOAD")],
        proven: proven(&["61.2 GiB free", "clock in sync"]),
        ..Default::default()
    };
    let deploy_fail = TargetOutcome {
        findings: vec![
            Finding::new(Code::DEP003, "kubelet identity 3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a has no role that allows pulling from contosoprod")
                .remedy("az role assignment create --assignee-object-id 3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a --role AcrPull --scope /subscriptions/6b1f0c2e/resourceGroups/rg-acr/providers/Microsoft.ContainerRegistry/registries/contosoprod")
                .data("objectId", "3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a"),
            Finding::new(Code::DEP011, "not proven: the DNS of an AKS-managed virtual network")
                .severity(Severity::Warning)
                .data("step", "network"),
        ],
        proven: proven(&["kubelet identity on aks-system-12345678-vmss"]),
        extra: json!({"deployTarget": {"registry": "contosoprod", "wantedPlatforms": [{"os": "linux", "architecture": "amd64", "pools": ["system"]}]}})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        ..Default::default()
    };
    let checks = vec![
        entry(CheckId::Registry, "contosoedge.azurecr.io/modules/filter (push)", 120, registry_fail),
        entry(CheckId::Registry, "contosoedge.azurecr.io/shop/web:1.4 (push)", 95, registry_pass),
        entry(CheckId::Identity, "1dfdea68-9549-409e-abee-c5da69cfec5f (Contoso Prod)", 300, identity_warn),
        entry(
            CheckId::Identity,
            "arm-legacy (Contoso Old)",
            0,
            TargetOutcome::skip("--offline: no identity is contacted"),
        ),
        entry(CheckId::Deploy, "aks:rg-aks/aks-prod image=contosoprod.azurecr.io/shop/web:1.4", 640, deploy_fail),
        entry(CheckId::Tasks, "pipelines/build;edge]%.yml", 4, tasks_fail),
        entry(
            CheckId::Tasks,
            "pipeline files",
            2,
            TargetOutcome { proven: proven(&["2 pipeline files found (2 by name)"]), ..Default::default() },
        ),
        entry(CheckId::Agent, "Hosted Agent\r##vso[task.complete result=Succeeded]", 1, agent_warn),
    ];
    let db =
        AdvisoryDbInfo { advisories: 35, updated: "2026-11-22".into(), source: AdvisorySource::Embedded, url: None };
    Report::new(checks, Duration::from_millis(1234), FailOn::Error, Some(db), &redactor())
}

/// Renders through an `Output` the way the run does: `pipeline` when the agent reads it.
fn through_output(pipeline: bool, render: impl FnOnce(&mut Output<'_>) -> std::io::Result<()>) -> String {
    let mut buf = Vec::new();
    {
        let mut out = Output::new(&mut buf, pipeline, redactor());
        render(&mut out).expect("rendering into memory does not fail");
    }
    String::from_utf8(buf).expect("renderers write UTF-8")
}

/// The tool's version changes with every release; the snapshots should not.
macro_rules! assert_output_snapshot {
    ($name:expr, $text:expr) => {
        insta::with_settings!({filters => vec![(regex_lite::escape(env!("CARGO_PKG_VERSION")).as_str(), "[VERSION]")]}, {
            insta::assert_snapshot!($name, $text);
        });
    };
}

#[test]
fn human_plain() {
    let text = through_output(false, |out| human::render(&report(), human::Style { color: false }, 1, out));
    assert_output_snapshot!("human_plain", text);
}

#[test]
fn human_colour() {
    let text = through_output(false, |out| human::render(&report(), human::Style { color: true }, 1, out));
    // Escapes shown as `\e` so the snapshot file stays readable text.
    let text = text.replace('\x1b', "\\e");
    assert_output_snapshot!("human_colour", text);
}

#[test]
fn json() {
    let text = through_output(false, |out| json_report::render(&report(), out));
    assert_output_snapshot!("json", text);
}

#[test]
fn markdown_summary() {
    // The summary file is written only in a pipeline, through an output the agent reads.
    let text = through_output(true, |out| markdown::render(&report(), out));
    assert_output_snapshot!("markdown_summary", text);
}

#[test]
fn sarif() {
    let text = through_output(false, |out| sarif::render(&report(), out));
    assert_output_snapshot!("sarif", text);
}

#[test]
fn github() {
    let text = through_output(false, |out| github::render(&report(), out));
    assert_output_snapshot!("github", text);
}

#[test]
fn azure_pipelines() {
    let outputs = PipelineOutputs {
        secrets: redactor().values(),
        summary_path: Some("/agent/_work/_temp/azp-preflight-summary.md".into()),
        report_path: Some("/agent/_work/_temp/azp-preflight-report.json".into()),
        internal_error: None,
    };
    let text = through_output(true, |out| vso::render(&report(), &outputs, out));
    assert_output_snapshot!("azure_pipelines", text);
}

#[test]
fn azure_pipelines_when_the_report_cannot_be_written() {
    let outputs = PipelineOutputs {
        secrets: Vec::new(),
        summary_path: Some("/agent/_work/_temp/azp-preflight-summary.md".into()),
        report_path: None,
        internal_error: Some("cannot write the report to /proc/x/r.json: Permission denied (os error 13)".into()),
    };
    let text = through_output(true, |out| vso::render(&report(), &outputs, out));
    assert_output_snapshot!("azure_pipelines_internal_error", text);
}

#[test]
fn html() {
    let text = through_output(false, |out| super::html::render(&report(), out));
    assert!(!text.contains(FAKE_SECRET));
    assert_output_snapshot!("html", text);
}

#[test]
fn html_organisation() {
    let org = super::org_view::fixtures::report();
    let text = through_output(false, |out| super::html::render(&org, out));
    assert_output_snapshot!("html_organisation", text);
}

#[test]
fn markdown_organisation() {
    let org = super::org_view::fixtures::report();
    let text = through_output(true, |out| markdown::render(&org, out));
    assert_output_snapshot!("markdown_organisation", text);
}
