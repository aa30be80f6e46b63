//! `azp-preflight org`: its flags and pipeline defaults checked (every problem at once), the
//! Azure DevOps credential chosen, the scan run, and the report rendered like any other run.

use std::time::Instant;

use url::Url;

use super::{bad_input_all, finish, internal, prepare, Prepared, Streams};
use crate::azure::{entra, graph};
use crate::cli::{OrgArgs, RunArgs};
use crate::devops::auth::{self, DevOpsAuth};
use crate::devops::{DevOpsClient, DEFAULT_CONCURRENCY};
use crate::env::AgentEnv;
use crate::exit::Exit;
use crate::expiry::Windows;
use crate::input_error::InputError;
use crate::org::{self, GraphAccess, OrgOptions};
use crate::report::org::{OrgRun, Shard};
use crate::report::Report;
use crate::secret::Redactor;

/// The scan's own flags, checked.
struct OrgFlags {
    organization: Url,
    projects: Vec<String>,
    shard: Shard,
    since_days: u32,
    concurrency: usize,
}

pub fn run(args: &OrgArgs, env: AgentEnv, redactor: Redactor, io: &mut Streams<'_>) -> Exit {
    let started = Instant::now();
    let mut problems: Vec<String> = Vec::new();
    let flags = parse_flags(args, &env).map_err(|all| problems.extend(all)).ok();
    let run_args = RunArgs {
        checks: Some("agent".into()),
        fail_on: args.fail_on,
        timeout: Some(args.timeout.clone().unwrap_or_else(|| "3600".into())),
        expiry_warning_days: args.expiry_warning_days.clone(),
        expiry_error_days: args.expiry_error_days.clone(),
        format: args.format,
        report: args.report.clone(),
        no_exit_codes: args.no_exit_codes,
        advisory_update: Some("off".into()),
        ..RunArgs::default()
    };
    let user_token = env.get(auth::TOKEN_VAR).map(str::to_string).filter(|t| !t.trim().is_empty());
    if let Some(token) = &user_token {
        redactor.register(token);
    }
    let Prepared { ctx, runtime, .. } = match prepare(&run_args, env, redactor, io, problems) {
        Ok(prepared) => prepared,
        Err(exit) => return exit,
    };
    let Some(flags) = flags else { return Exit::BadInput };
    let services = ctx.services();
    // In a pipeline the run's identity is the `azureSubscription` input; a scan started from
    // a script step (the example's AzureCLI step) names its identity with AZURE_* instead.
    let local = match ctx.settings.azure_connections.is_empty() && ctx.settings.in_pipeline {
        true => match crate::connections::local_azure(&ctx.env, &ctx.redactor) {
            Ok(found) => found,
            Err(problem) => return bad_input_all(&ctx.env, io, &[problem.to_string()]),
        },
        false => None,
    };
    let identity = ctx.settings.azure_connections.first().or(local.as_ref());
    // The job's token only when the pipeline maps SYSTEM_ACCESSTOKEN into the step: a task
    // always sees its own ENDPOINT_AUTH_* copy of it, and preferring that would shadow the
    // scanning identity of the `azureSubscription` input with a token of this project only.
    let mapped_job_token =
        ctx.env.get("SYSTEM_ACCESSTOKEN").filter(|t| !t.trim().is_empty()).map(|t| ctx.redactor.secret(t));
    let devops_auth = match (&user_token, &mapped_job_token, identity) {
        (Some(token), _, _) => DevOpsAuth::from_user_token(token, &ctx.redactor),
        (None, Some(job), _) => DevOpsAuth::job_token(job.clone(), &ctx.redactor),
        (None, None, Some(conn)) => match runtime.block_on(entra::acquire(&services, conn, auth::DEVOPS_SCOPE)) {
            Ok(token) => DevOpsAuth::entra(token.token, &ctx.redactor),
            Err(e) => {
                let message = format!("cannot get an Entra ID token for Azure DevOps from {}: {e}", conn.label());
                return internal(&ctx.env, io, &ctx.redactor.redact(&message));
            }
        },
        (None, None, None) => {
            let problem = InputError::new(
                auth::TOKEN_VAR,
                "(not set)",
                "a token for Azure DevOps: a personal access token or an Entra ID access token in AZP_PREFLIGHT_ADO_TOKEN, SYSTEM_ACCESSTOKEN in a pipeline, or an Azure identity (AZURE_* or azureSubscription)",
            );
            return bad_input_all(&ctx.env, io, &[problem.to_string()]);
        }
    };
    let graph_access = match identity {
        Some(conn) => {
            let base = graph::base(&services, conn);
            let token = runtime
                .block_on(entra::acquire(&services, conn, &graph::scope(&base)))
                .map(|t| t.token)
                .map_err(|e| format!("no Microsoft Graph token for {}: {e}", conn.label()));
            if let Ok(token) = &token {
                ctx.redactor.register(token.expose());
            }
            GraphAccess::new(base, token)
        }
        None => GraphAccess::new(
            ctx.endpoints.graph.clone(),
            Err("no Azure identity to read it with (AZURE_* variables or the azureSubscription input)".into()),
        ),
    };
    let http = ctx.http.clone().with_connection_limits(crate::net::limit::GLOBAL_CONNECTIONS, flags.concurrency);
    let client = DevOpsClient::new(http, flags.organization, devops_auth, flags.concurrency);
    let options = OrgOptions {
        projects: flags.projects,
        shard: flags.shard,
        since_days: flags.since_days,
        windows: Windows { error_days: ctx.settings.expiry_error_days, warning_days: ctx.settings.expiry_warning_days },
        deadline: tokio::time::Instant::from_std(started + ctx.settings.timeout),
    };
    let scan = org::Scan {
        client: &client,
        graph: &graph_access,
        services,
        options: &options,
        now: ctx.now,
        tasks: Default::default(),
    };
    let outcome = runtime.block_on(org::scan(&scan));
    runtime.shutdown_background();
    let result = match outcome {
        Ok(result) => result,
        Err(failed) => return internal(&ctx.env, io, &ctx.redactor.redact(&failed.0)),
    };
    // Exit 3 only when nothing was covered at all: every scope was refused or cut off. The
    // report is still written, naming each of them.
    let covered = &result.coverage;
    let nothing_useful = covered.connections + covered.pipelines + covered.runs == 0 && !covered.not_covered.is_empty();
    let advisory_db = crate::checks::advisory_db_info();
    let mut report = Report::new(result.checks, started.elapsed(), ctx.settings.fail_on, advisory_db, &ctx.redactor);
    report.org = Some(OrgRun { scope: result.scope, coverage: result.coverage, throttled: result.throttled });
    let exit = finish(&ctx, &report, io);
    if nothing_useful && exit != Exit::Internal {
        return Exit::Internal;
    }
    exit
}

fn parse_flags(args: &OrgArgs, env: &AgentEnv) -> Result<OrgFlags, Vec<String>> {
    let mut problems = Vec::new();
    let mut problem = |flag: &str, value: &str, expected: &str| {
        problems.push(InputError::new(flag, value, expected).to_string());
    };
    // Flags, else the task's inputs (organisation mode), else the pipeline's own variables.
    let given_organization = env.input("organization").filter(|v| !v.trim().is_empty());
    let (flag, value) = match (&args.organization, given_organization, env.get("SYSTEM_COLLECTIONURI")) {
        (Some(v), _, _) => ("--organization", Some(v.as_str())),
        (None, Some(v), _) => ("organization", Some(v)),
        (None, None, Some(v)) => ("SYSTEM_COLLECTIONURI", Some(v)),
        (None, None, None) => ("--organization", None),
    };
    let expected_url = "the organisation's URL, such as https://dev.azure.com/contoso/";
    let organization = match value.map(|v| v.trim()) {
        None | Some("") => {
            problem(flag, "(not set)", expected_url);
            None
        }
        Some(v) => {
            let with_slash = if v.ends_with('/') { v.to_string() } else { format!("{v}/") };
            match Url::parse(&with_slash) {
                Ok(url) if url.query().is_none() && crate::net::ensure_secure_url(&url).is_ok() => Some(url),
                _ => {
                    problem(flag, v, expected_url);
                    None
                }
            }
        }
    };
    let (projects_from, projects): (&str, Vec<String>) = if !args.project.is_empty() {
        ("--project", args.project.clone())
    } else {
        let lines = env.input("projects").unwrap_or_default().lines();
        (
            "projects",
            lines.map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_string).collect(),
        )
    };
    for name in &projects {
        if name.trim().is_empty() || name.chars().any(|c| c.is_control()) {
            problem(projects_from, name, "a project name");
        }
    }
    let shard = match (&args.shard, env.get("SYSTEM_JOBPOSITIONINPHASE"), env.get("SYSTEM_TOTALJOBSINPHASE")) {
        (Some(text), _, _) => Shard::parse(text).map_err(|e| problem("--shard", text, &e)).ok(),
        (None, Some(k), Some(n)) => {
            let text = format!("{}/{}", k.trim(), n.trim());
            Shard::parse(&text)
                .map_err(|e| problem("SYSTEM_JOBPOSITIONINPHASE/SYSTEM_TOTALJOBSINPHASE", &text, &e))
                .ok()
        }
        _ => Some(Shard::WHOLE),
    };
    let mut number = |flag: &str, value: Option<&String>, default: u32, min: u32, max: u32| -> Option<u32> {
        let Some(text) = value else { return Some(default) };
        match text.trim().parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                problem(flag, text, &format!("a whole number from {min} to {max}"));
                None
            }
        }
    };
    let since_input = env.input("sinceDays").map(str::to_string);
    let since_days = match (&args.since, &since_input) {
        (None, Some(text)) => number("sinceDays", Some(text), 30, 1, 365),
        _ => number("--since", args.since.as_ref(), 30, 1, 365),
    };
    let concurrency = number("--concurrency", args.concurrency.as_ref(), DEFAULT_CONCURRENCY as u32, 1, 64);
    match (organization, shard, since_days, concurrency) {
        (Some(organization), Some(shard), Some(since_days), Some(concurrency)) if problems.is_empty() => Ok(OrgFlags {
            organization,
            projects: projects.iter().map(|p| p.trim().to_string()).collect(),
            shard,
            since_days,
            concurrency: concurrency as usize,
        }),
        _ => Err(problems),
    }
}
