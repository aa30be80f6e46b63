//! The `azure-pipelines` format: logging commands the agent executes (README, "In a pipeline").
//!
//! Order: `task.setsecret` for every secret first (so the agent masks anything later),
//! a headline, issues (errors, then warnings: the agent keeps 10 of each), notes as plain
//! lines, the per-target table in a collapsed group, the summary upload, output variables,
//! and exactly one `task.complete` last.

use std::io::{self, Write};
use std::path::PathBuf;

use super::{counts_phrase, place, Report};
use crate::codes::Severity;
pub use crate::output::{escape_message, escape_property};
use crate::output::{LogCommand, Output};

/// What the pipeline renderer needs beyond the report.
#[derive(Debug, Default)]
pub struct PipelineOutputs {
    /// Every secret value to register with the agent's masker.
    pub secrets: Vec<String>,
    /// The markdown summary file, when it could be written.
    pub summary_path: Option<PathBuf>,
    /// The JSON report file (`PreflightReportPath`).
    pub report_path: Option<PathBuf>,
    /// Set when the run could not complete (the report file could not be written): one
    /// more error issue, and the step fails whatever the findings.
    pub internal_error: Option<String>,
}

/// Formats one command. Properties with empty values are left out (the agent drops them).
pub fn command(name: &str, properties: &[(&str, String)], message: &str) -> LogCommand {
    LogCommand::new(name, properties, message)
}

pub fn render(report: &Report, outputs: &PipelineOutputs, out: &mut Output<'_>) -> io::Result<()> {
    for secret in &outputs.secrets {
        out.command(&LogCommand::set_secret(secret))?;
    }
    let counts = report.counts();
    writeln!(
        out,
        "Preflight: {} targets, {} checks, {:.1} s: {}",
        report.checks.len(),
        report.check_count(),
        report.duration.as_secs_f64(),
        counts_phrase(counts)
    )?;
    for (result, f) in report.findings_by_severity() {
        let kind = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => {
                // A plain line: the output neutralises the place (a file path) like the rest.
                writeln!(out, "note {}: {} {}", place(result, f), f.code, f.message.replace(['\r', '\n'], " "))?;
                continue;
            }
        };
        // Located findings are prefixed by the agent with `file(line,col): type CODE:`;
        // the others carry their check and target themselves.
        let message = match &f.location {
            Some(_) => f.message.clone(),
            None => format!("{} {}: {}", result.check.as_str(), result.target, f.message),
        };
        let message = super::with_remedy(&message, &f.remedy);
        let mut props = vec![("type", kind.to_string())];
        if let Some(loc) = &f.location {
            props.push(("sourcepath", loc.file.clone()));
            props.push(("linenumber", loc.line.to_string()));
            props.push(("columnnumber", loc.column.to_string()));
        }
        props.push(("code", f.code.to_string()));
        out.command(&command("task.logissue", &props, &message))?;
    }
    out.command(&LogCommand::group("Preflight targets"))?;
    for r in &report.checks {
        let detail = match (&r.reason, r.proven.is_empty()) {
            (Some(reason), _) => reason.clone(),
            (None, false) => r.proven.join("; "),
            (None, true) => String::new(),
        };
        writeln!(
            out,
            "{:<4} {:<8} {} {}",
            r.status.as_str(),
            r.check.as_str(),
            r.target,
            detail.replace(['\r', '\n'], " ")
        )?;
    }
    out.command(&LogCommand::end_group())?;
    if let Some(path) = &outputs.summary_path {
        out.command(&command("task.uploadsummary", &[], &path.display().to_string()))?;
    }
    let variables = [
        ("PreflightResult", report.result().as_str().to_string()),
        ("PreflightErrorCount", counts.error.to_string()),
        ("PreflightWarningCount", counts.warning.to_string()),
        ("PreflightReportPath", outputs.report_path.as_ref().map(|p| p.display().to_string()).unwrap_or_default()),
    ];
    for (name, value) in variables {
        out.command(&command(
            "task.setvariable",
            &[("variable", name.to_string()), ("isOutput", "true".to_string())],
            &value,
        ))?;
    }
    if let Some(problem) = &outputs.internal_error {
        out.command(&command(
            "task.logissue",
            &[("type", "error".to_string())],
            &format!("azp-preflight: could not complete: {problem}"),
        ))?;
        return out.command(&command(
            "task.complete",
            &[("result", "Failed".to_string())],
            &format!("Preflight could not complete: {problem}"),
        ));
    }
    let completion = report.completion();
    out.command(&command(
        "task.complete",
        &[("result", completion.as_str().to_string())],
        &format!("Preflight {}: {}", report.result().as_str(), counts_phrase(counts)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::FailOn;
    use crate::report::fixtures;

    fn rendered(fail_on: FailOn) -> String {
        let outputs = PipelineOutputs {
            secrets: vec!["pa;ss]%word".into()],
            summary_path: Some("/agent/_temp/azp-preflight-summary.md".into()),
            report_path: Some("/agent/_temp/azp-preflight-report.json".into()),
            internal_error: None,
        };
        let mut buf = Vec::new();
        {
            let mut out = Output::new(&mut buf, true, crate::secret::Redactor::default());
            render(&fixtures::report(fail_on), &outputs, &mut out).unwrap();
        }
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn escaping_rules() {
        assert_eq!(escape_property("a%b;c]d\r\ne"), "a%AZP25b%3Bc%5Dd%0D%0Ae");
        assert_eq!(escape_message("50% ; ] \n"), "50%AZP25 ; ] %0A");
        assert_eq!(
            command("task.setvariable", &[("variable", "X".into()), ("isOutput", String::new())], "v").as_str(),
            "##vso[task.setvariable variable=X]v"
        );
    }

    #[test]
    fn full_stream_has_the_documented_shape() {
        let text = rendered(FailOn::Error);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "##vso[task.setsecret]pa;ss]%AZP25word");
        assert!(lines[1].starts_with("Preflight: 4 targets, 4 checks"));
        assert_eq!(
            lines[2],
            "##vso[task.logissue type=error;code=REG009]registry contosoedge.azurecr.io/modules/filter (push): service connection `edge-acr` has an empty username. Fix: Edit the connection; set the username."
        );
        assert_eq!(
            lines[3],
            "##vso[task.logissue type=error;sourcepath=pipes/a%3Bb%5Dc%AZP25.yml;linenumber=13;columnnumber=11;code=TSK001]AzureIoTEdge@2 resolves to 2.241.1; 50%AZP25 of pushes fail; see # #vso[task.complete result=Succeeded]. Fix: Pin `- task: AzureIoTEdge@2.238.1`"
        );
        assert!(lines[4].starts_with("##vso[task.logissue type=warning;code=IDN006]identity arm-conn: secret expires 2026-12-09, in 17 days%0Asecond line"));
        assert_eq!(lines[5], "note azure-pipelines.yml:4:9: TSK007 `${{ parameters.task }}` is a template expression");
        assert_eq!(text.matches("##vso[task.complete").count(), 1);
        assert!(text.ends_with("##vso[task.complete result=Failed]Preflight fail: 2 errors, 1 warning, 1 note\n"));
        assert!(text.contains("##vso[task.setvariable variable=PreflightResult;isOutput=true]fail\n"));
        assert!(text.contains("##vso[task.setvariable variable=PreflightErrorCount;isOutput=true]2\n"));
        assert!(text.contains("##vso[task.uploadsummary]/agent/_temp/azp-preflight-summary.md\n"));
        assert_eq!(
            text.matches("##vso[task.complete").count() + text.matches("# #vso[task.complete").count(),
            2,
            "the injected command is neutralised"
        );
    }

    #[test]
    fn warnings_below_threshold_succeed_with_issues() {
        assert!(rendered(FailOn::Never).contains("##vso[task.complete result=SucceededWithIssues]"));
    }
}
