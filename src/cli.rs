//! The command line (README, "On a laptop"). Flags win over task inputs (`INPUT_*`), which win over
//! defaults; `settings` merges them and validates everything before any check runs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "azp-preflight",
    version,
    about = "Prove that a pipeline's registry credentials, service principals and pinned task versions work, before the pipeline needs them.",
    long_about = "Prove that a pipeline's registry credentials, service principals and pinned task versions work, before the pipeline needs them.\n\n\
In an Azure Pipelines step (TF_BUILD=True) the task inputs arrive as INPUT_* variables and service connections as ENDPOINT_* \
variables; on a laptop the same checks use flags, AZURE_* variables and the Docker config.",
    after_help = "Exit codes: 0 no finding at or above --fail-on; 1 findings at or above --fail-on; 2 bad input; 3 could not complete.\n\
Run `azp-preflight explain <CODE>` for what a finding means and how to fix it.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the checks (the default when no subcommand is given).
    Run(RunArgs),
    /// Explain a finding code: what it means, why it happens, how to fix it.
    Explain {
        /// A finding code such as REG009 or TSK001; `all` lists every code.
        code: String,
    },
    /// List, show, lint or publish the task-regression advisory database.
    Advisories {
        #[command(subcommand)]
        action: AdvisoriesAction,
    },
    /// Apply the pin/unpin advice of the tasks check to pipeline YAML in place.
    Fix(FixArgs),
    /// Work with JSON reports: merge the shard reports of an organisation scan.
    Report {
        #[command(subcommand)]
        action: ReportAction,
    },
    /// Scan an Azure DevOps organisation: every service connection and every task version
    /// its pipelines ran, one shard of it with --shard.
    Org(OrgArgs),
}

#[derive(Debug, Subcommand)]
pub enum ReportAction {
    /// Merge the JSON reports of the shards of one organisation scan into one report, as if one
    /// unsharded scan had run. Refuses (exit 2) other organisations and overlapping shards;
    /// names missing shards (ORG005). Exit 1 when the merged findings reach --fail-on.
    Merge(MergeArgs),
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shard reports (`azp-preflight org --report <PATH>` of each shard).
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Output format: human, json, markdown, html, sarif or github [default: human].
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<Format>,
    /// Also write the merged JSON report to this path.
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,
    /// Lowest severity that fails the merge (exit 1) [default: error].
    #[arg(long = "fail-on", value_enum, value_name = "LEVEL")]
    pub fail_on: Option<FailOn>,
}

#[derive(Debug, Default, Args)]
pub struct OrgArgs {
    /// The organisation's URL (default in a pipeline: SYSTEM_COLLECTIONURI).
    #[arg(long, value_name = "URL")]
    pub organization: Option<String>,
    /// A project to scan, by name (repeatable; default: every project the token can see).
    #[arg(long = "project", value_name = "NAME")]
    pub project: Vec<String>,
    /// This job's slice of the work, K/N (default in a pipeline: SYSTEM_JOBPOSITIONINPHASE/SYSTEM_TOTALJOBSINPHASE).
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// The window, in days, for "latest run" and "unused connection" (1-365, default 30).
    #[arg(long, value_name = "DAYS", allow_hyphen_values = true)]
    pub since: Option<String>,
    /// Requests to Azure DevOps in flight at once (1-64, default 16).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub concurrency: Option<String>,
    /// Lowest severity that fails the run.
    #[arg(long = "fail-on", value_enum, value_name = "LEVEL")]
    pub fail_on: Option<FailOn>,
    /// Deadline for the scan, in seconds (default 3600); what it did not cover is listed.
    #[arg(long, value_name = "SECONDS", allow_hyphen_values = true)]
    pub timeout: Option<String>,
    /// Warn when a connection's credential expires within N days (default 30).
    #[arg(long = "expiry-warning-days", value_name = "N", allow_hyphen_values = true)]
    pub expiry_warning_days: Option<String>,
    /// Error when a connection's credential expires within N days (default 7).
    #[arg(long = "expiry-error-days", value_name = "N", allow_hyphen_values = true)]
    pub expiry_error_days: Option<String>,
    /// Output format [default: azure-pipelines when TF_BUILD=True, else human].
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<Format>,
    /// Also write the JSON report to this path.
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,
    /// Always exit 0 (report only).
    #[arg(long = "no-exit-codes")]
    pub no_exit_codes: bool,
}

#[derive(Debug, Subcommand)]
pub enum AdvisoriesAction {
    /// One line per advisory: id, task@major, affected, fixed, confidence (embedded, plus any
    /// given files).
    List(AdvisoryFiles),
    /// Print one advisory in full: versions, symptom, cause, workaround, sources.
    Show {
        /// The advisory id, e.g. AZP-ADV-0001.
        id: String,
        #[command(flatten)]
        files: AdvisoryFiles,
    },
    /// Validate advisories: format, ranges, sources; exit 1 on problems.
    Lint(AdvisoryFiles),
    /// Write the embedded database as the published JSON document (advisories/index.json).
    Index(GeneratedOutput),
    /// Write the embedded database as a markdown page (docs/advisories.md).
    Docs(GeneratedOutput),
}

#[derive(Debug, Args)]
pub struct GeneratedOutput {
    /// Write to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AdvisoryFiles {
    /// Extra advisory file(s) merged over the embedded database.
    #[arg(long = "advisories", value_name = "FILE")]
    pub advisories: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct FixArgs {
    /// Pipeline files or globs (default: auto-discover).
    #[arg(long = "pipeline", value_name = "FILE|GLOB")]
    pub pipeline: Vec<String>,
    /// Print a unified diff instead of editing the files.
    #[arg(long)]
    pub dry_run: bool,
    /// No network: advise from the embedded data only.
    #[arg(long)]
    pub offline: bool,
    /// Extra advisory file(s) merged over the embedded database.
    #[arg(long = "advisories", value_name = "FILE")]
    pub advisories: Vec<PathBuf>,
    /// Refresh the advisory database first: auto (default), off, or a mirror's https URL.
    #[arg(long = "advisory-update", value_name = "auto|off|URL")]
    pub advisory_update: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
    AzurePipelines,
    Github,
    Sarif,
    /// The markdown summary (what the run's Extensions tab shows).
    Markdown,
    /// One self-contained HTML page: no script, no external request.
    Html,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum FailOn {
    /// Fail on errors (the default).
    Error,
    /// Fail on warnings and errors.
    Warning,
    /// Never fail; report only.
    Never,
}

#[derive(Debug, Default, Args)]
pub struct RunArgs {
    /// Pipeline YAML files or globs to scan, with `{a,b}` alternatives (default: discover by name and content).
    #[arg(long = "pipeline", value_name = "FILE|GLOB")]
    pub pipeline: Vec<String>,
    /// A registry target: <server>[/<repository>[:<tag>|@<digest>]] [pull|push] [platform=<os>/<arch>[/<variant>]].
    /// Quote it when it has several words.
    #[arg(long = "registry", value_name = "SPEC")]
    pub registry: Vec<String>,
    /// A deployment target whose pull of the image is proven through Azure Resource Manager:
    /// aks:<cluster resource id> image=<ref> or webapp:<site resource id> image=<ref>
    /// [registry=<registry resource id>]. Quote it.
    #[arg(long = "deploy-target", value_name = "SPEC")]
    pub deploy_target: Vec<String>,
    /// Comma list of checks to run: registry,identity,tasks,agent,deploy (default: the first
    /// four, plus deploy when deploy targets are given).
    #[arg(long, value_name = "LIST")]
    pub checks: Option<String>,
    /// Lowest severity that fails the run.
    #[arg(long = "fail-on", value_enum, value_name = "LEVEL")]
    pub fail_on: Option<FailOn>,
    /// No network at all: static checks only.
    #[arg(long)]
    pub offline: bool,
    /// Deadline for the whole run, in seconds (default 60).
    #[arg(long, value_name = "SECONDS", allow_hyphen_values = true)]
    pub timeout: Option<String>,
    /// Warn when a credential in use expires within N days (default 30).
    #[arg(long = "expiry-warning-days", value_name = "N", allow_hyphen_values = true)]
    pub expiry_warning_days: Option<String>,
    /// Error when a credential in use expires within N days (default 7).
    #[arg(long = "expiry-error-days", value_name = "N", allow_hyphen_values = true)]
    pub expiry_error_days: Option<String>,
    /// Extra advisory file(s) merged over the embedded database.
    #[arg(long = "advisories", value_name = "FILE")]
    pub advisories: Vec<PathBuf>,
    /// Refresh the advisory database at run time: auto (the published document, default),
    /// off (the embedded database only), or the https URL of a mirror.
    #[arg(long = "advisory-update", value_name = "auto|off|URL")]
    pub advisory_update: Option<String>,
    /// Output format [default: azure-pipelines when TF_BUILD=True, else human].
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<Format>,
    /// Also write the JSON report to this path.
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,
    /// Always exit 0 (report only).
    #[arg(long = "no-exit-codes")]
    pub no_exit_codes: bool,
}
