//! Orchestration: parse the command line, validate settings, run the checks, render.

mod org;

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;

use crate::check::{runner, Context};
use crate::checks::ValidConfig;
use crate::cli::{Cli, Command, FailOn, FixArgs, Format, MergeArgs, ReportAction, RunArgs};
use crate::codes::Code;
use crate::env::AgentEnv;
pub use crate::exit::Exit;
use crate::input_error::InputError;
use crate::net::http::HttpSettings;
use crate::net::proxy::ProxyConfig;
use crate::net::{Endpoints, HttpClient};
use crate::output::{LogCommand, Output};
use crate::report::vso::{self, PipelineOutputs};
use crate::report::{self, Report};
use crate::secret::Redactor;
use crate::settings::Settings;

/// Where output goes; tests pass buffers.
pub struct Io<'a> {
    pub stdout: &'a mut dyn Write,
    pub stderr: &'a mut dyn Write,
    pub stdout_is_terminal: bool,
    pub cwd: PathBuf,
}

/// The run's two output streams, each an [`Output`] that cleans and redacts every line.
pub struct Streams<'a> {
    pub stdout: Output<'a>,
    pub stderr: Output<'a>,
    pub stdout_is_terminal: bool,
    pub cwd: PathBuf,
}

/// Runs the program with the given arguments and environment; returns the exit code.
pub fn run(args: Vec<OsString>, env: AgentEnv, io: &mut Io<'_>) -> Exit {
    // One redactor for the whole run, known to both streams before anything is printed.
    let redactor = Redactor::default();
    let mut streams = Streams {
        stdout: Output::for_env(&mut *io.stdout, &env, redactor.clone()),
        stderr: Output::for_env(&mut *io.stderr, &env, redactor.clone()),
        stdout_is_terminal: io.stdout_is_terminal,
        cwd: io.cwd.clone(),
    };
    let exit = run_with(args, env, redactor, &mut streams);
    let _ = streams.stdout.flush();
    let _ = streams.stderr.flush();
    exit
}

fn run_with(args: Vec<OsString>, env: AgentEnv, redactor: Redactor, io: &mut Streams<'_>) -> Exit {
    if let Err(e) = require_utf8(&args) {
        return bad_input(&env, io, &e.to_string());
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are "errors" to clap that exit 0.
            let text = e.render().to_string();
            if e.exit_code() == 0 {
                let _ = write!(io.stdout, "{text}");
                return Exit::Ok;
            }
            return bad_input(&env, io, text.trim_end());
        }
    };
    match cli.command {
        None => run_checks(&cli.run, env, redactor, io),
        Some(Command::Run(args)) => run_checks(&args, env, redactor, io),
        Some(Command::Explain { code }) => explain(&code, &env, io),
        Some(Command::Advisories { action }) => {
            crate::checks::tasks::advisories::command(&action, &mut io.stdout, &mut io.stderr)
        }
        Some(Command::Fix(args)) => fix(&args, env, redactor, io),
        Some(Command::Report { action: ReportAction::Merge(args) }) => merge_reports(&args, &env, io),
        Some(Command::Org(args)) => org::run(&args, env, redactor, io),
    }
}

/// Arguments must be UTF-8; one that is not is bad input naming its flag (clap's own error
/// names none).
fn require_utf8(args: &[OsString]) -> Result<(), InputError> {
    for (i, arg) in args.iter().enumerate().skip(1) {
        if arg.to_str().is_some() {
            continue;
        }
        let lossy = arg.to_string_lossy();
        let (flag, value) = match lossy.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_string(), value.to_string()),
            _ => match args[i - 1].to_str() {
                Some(prev) if prev.starts_with('-') && !prev.contains('=') && i > 1 => {
                    (prev.to_string(), lossy.to_string())
                }
                _ => ("argument".to_string(), lossy.to_string()),
            },
        };
        return Err(InputError::new(&flag, &value, "UTF-8 text (this argument has bytes that are not UTF-8)"));
    }
    Ok(())
}

/// `fix`: the tasks check's advice applied to the YAML (see `checks::tasks::fix`).
fn fix(args: &FixArgs, env: AgentEnv, redactor: Redactor, io: &mut Streams<'_>) -> Exit {
    let run = RunArgs {
        pipeline: args.pipeline.clone(),
        advisories: args.advisories.clone(),
        offline: args.offline,
        advisory_update: args.advisory_update.clone(),
        checks: Some("tasks".into()),
        ..RunArgs::default()
    };
    let Prepared { ctx, config, runtime } = match prepare(&run, env, redactor, io, Vec::new()) {
        Ok(prepared) => prepared,
        Err(exit) => return exit,
    };
    let tasks = config.tasks.unwrap_or_default();
    let exit =
        runtime.block_on(crate::checks::tasks::fix::run(&ctx, &tasks, args.dry_run, &mut io.stdout, &mut io.stderr));
    runtime.shutdown_background();
    exit
}

fn explain(code: &str, env: &AgentEnv, io: &mut Streams<'_>) -> Exit {
    if code.eq_ignore_ascii_case("all") || code.eq_ignore_ascii_case("list") {
        for c in Code::ALL {
            let _ = writeln!(io.stdout, "{c}  {:<8} {:<9} {}", c.family(), c.default_severity().as_str(), c.title());
        }
        return Exit::Ok;
    }
    match Code::parse(code) {
        Some(c) => {
            let _ = write!(io.stdout, "{}", c.doc());
            Exit::Ok
        }
        None => bad_input(
            env,
            io,
            &InputError::new(
                "explain",
                code,
                "a finding code such as REG009 (run `azp-preflight explain all` for the list)",
            )
            .to_string(),
        ),
    }
}

/// A run ready to start: its context, each family's validated configuration, its runtime.
struct Prepared {
    ctx: Arc<Context>,
    config: ValidConfig,
    runtime: tokio::runtime::Runtime,
}

/// Validates everything the run will use, once: settings, the families' configuration,
/// service endpoints and the HTTP client's set-up. `Err` is the exit code after every
/// problem found was written (exit 2), not just the first.
fn prepare(
    args: &RunArgs,
    env: AgentEnv,
    redactor: Redactor,
    io: &mut Streams<'_>,
    mut problems: Vec<String>,
) -> Result<Prepared, Exit> {
    let settings = Settings::parse(args, &env, &redactor, io.cwd.clone())
        .map_err(|all| problems.extend(all.0.iter().map(ToString::to_string)))
        .ok();
    let config = settings.as_ref().and_then(|s| {
        crate::checks::validate(s).map_err(|all| problems.extend(all.0.iter().map(ToString::to_string))).ok()
    });
    let endpoints = Endpoints::from_env(&env).map_err(|e| problems.push(e)).ok();
    let http = endpoints
        .as_ref()
        .and_then(|endpoints| http_client(&env, &redactor, endpoints).map_err(|e| problems.push(e)).ok());
    let (Some(settings), Some(config), Some(endpoints), Some(http)) = (settings, config, endpoints, http) else {
        return Err(bad_input_all(&env, io, &problems));
    };
    if !problems.is_empty() {
        return Err(bad_input_all(&env, io, &problems));
    }
    crate::logging::init(&env, redactor.clone());
    let ctx = Arc::new(Context::new(settings, env, endpoints, http, redactor));
    match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => Ok(Prepared { ctx, config, runtime }),
        Err(e) => Err(internal(&ctx.env, io, &format!("cannot start the async runtime: {e}"))),
    }
}

fn run_checks(args: &RunArgs, env: AgentEnv, redactor: Redactor, io: &mut Streams<'_>) -> Exit {
    let started = Instant::now();
    let Prepared { ctx, config, runtime } = match prepare(args, env, redactor, io, Vec::new()) {
        Ok(prepared) => prepared,
        Err(exit) => return exit,
    };
    let checks = crate::checks::enabled(&ctx.settings, &ctx.env, &config);
    // The deadline counts from the start: validating (expanding the given globs) is part of
    // the run's time.
    let results = match runtime.block_on(runner::run_checks_from(&ctx, &checks, started.into())) {
        Ok(r) => r,
        Err(e) => return internal(&ctx.env, io, &ctx.redactor.redact(&e.to_string())),
    };
    // Jobs cancelled at the deadline may still hold sockets; do not wait for them.
    runtime.shutdown_background();
    // The database the tasks check used; the embedded one when it did not need any.
    let advisory_db = config
        .tasks
        .as_ref()
        .and_then(|tasks| tasks.run_db.get())
        .map(|used| used.info.clone())
        .or_else(crate::checks::advisory_db_info);
    let report = Report::new(results, started.elapsed(), ctx.settings.fail_on, advisory_db, &ctx.redactor);
    finish(&ctx, &report, io)
}

fn finish(ctx: &Context, report: &Report, io: &mut Streams<'_>) -> Exit {
    let settings = &ctx.settings;
    let mut exit = if settings.no_exit_codes || !report.fails_threshold() { Exit::Ok } else { Exit::Findings };
    let mut report_written = None;
    let mut internal_error = None;
    if let Some(path) = &settings.report_path {
        match write_file(ctx, path, |w| report::json::render(report, w)) {
            Ok(()) => report_written = Some(path.clone()),
            Err(e) => {
                // The report is what a later step or a release gate reads: without it the
                // run did not complete, whatever the findings (exit 3).
                let problem = format!("cannot write the report to {}: {e}", path.display());
                if settings.format != Format::AzurePipelines {
                    let _ = writeln!(io.stderr, "azp-preflight: could not complete: {problem}");
                }
                internal_error = Some(problem);
                exit = Exit::Internal;
            }
        }
    }
    let out = &mut io.stdout;
    let rendered = match settings.format {
        Format::Json => report::json::render(report, out),
        Format::Sarif => report::sarif::render(report, out),
        Format::Github => report::github::render(report, out),
        Format::Markdown => report::markdown::render(report, out),
        Format::Html => report::html::render(report, out),
        Format::Human => {
            let style = report::human::Style { color: report::human::wants_color(&ctx.env, io.stdout_is_terminal) };
            report::human::render(report, style, exit.code(), out)
        }
        Format::AzurePipelines => {
            io.stdout.read_by_agent();
            io.stderr.read_by_agent();
            let summary = settings.temp_dir.join("azp-preflight-summary.md");
            let summary_path = match write_file(ctx, &summary, |w| report::markdown::render(report, w)) {
                Ok(()) => Some(summary),
                Err(e) => {
                    let _ =
                        writeln!(io.stderr, "azp-preflight: cannot write the summary to {}: {e}", summary.display());
                    None
                }
            };
            let outputs = PipelineOutputs {
                secrets: ctx.redactor.values(),
                summary_path,
                report_path: report_written,
                internal_error,
            };
            vso::render(report, &outputs, &mut io.stdout)
        }
    };
    if let Err(e) = rendered.and_then(|()| io.stdout.flush()) {
        let _ = writeln!(io.stderr, "azp-preflight: cannot write the output: {e}");
        return Exit::Internal;
    }
    exit
}

/// `report merge`: the shard reports read, checked and pooled (`report::merge`), then
/// written like a run's report. Exit 2 on any unreadable or inconsistent file (all named),
/// exit 1 when the merged findings reach `--fail-on`.
fn merge_reports(args: &MergeArgs, env: &AgentEnv, io: &mut Streams<'_>) -> Exit {
    let fail_on = args.fail_on.unwrap_or(FailOn::Error);
    let format = args.format.unwrap_or(Format::Human);
    if format == Format::AzurePipelines {
        let problem = InputError::new(
            "--format",
            "azure-pipelines",
            "human, json, markdown, html, sarif or github (publish the markdown with `##vso[task.uploadsummary]`)",
        );
        return bad_input(env, io, &problem.to_string());
    }
    let report = match report::merge::merge_files(&args.files, fail_on) {
        Ok(report) => report,
        Err(problems) => return bad_input_all(env, io, &problems.iter().map(ToString::to_string).collect::<Vec<_>>()),
    };
    let mut exit = if report.fails_threshold() { Exit::Findings } else { Exit::Ok };
    if let Some(path) = &args.report {
        let redactor = io.stdout.redactor().clone();
        if let Err(e) = write_file_for(env, &redactor, path, |w| report::json::render(&report, w)) {
            let _ = writeln!(
                io.stderr,
                "azp-preflight: could not complete: cannot write the report to {}: {e}",
                path.display()
            );
            exit = Exit::Internal;
        }
    }
    let out = &mut io.stdout;
    let rendered = match format {
        Format::Json => report::json::render(&report, out),
        Format::Sarif => report::sarif::render(&report, out),
        Format::Github => report::github::render(&report, out),
        Format::Markdown => report::markdown::render(&report, out),
        Format::Html => report::html::render(&report, out),
        Format::Human | Format::AzurePipelines => {
            let style = report::human::Style { color: report::human::wants_color(env, io.stdout_is_terminal) };
            report::human::render(&report, style, exit.code(), out)
        }
    };
    if let Err(e) = rendered.and_then(|()| io.stdout.flush()) {
        let _ = writeln!(io.stderr, "azp-preflight: cannot write the output: {e}");
        return Exit::Internal;
    }
    exit
}

/// Writes a file through the same cleaning and redaction as the terminal output.
fn write_file(
    ctx: &Context,
    path: &std::path::Path,
    render: impl FnOnce(&mut Output<'_>) -> io::Result<()>,
) -> io::Result<()> {
    write_file_for(&ctx.env, &ctx.redactor, path, render)
}

fn write_file_for(
    env: &AgentEnv,
    redactor: &Redactor,
    path: &std::path::Path,
    render: impl FnOnce(&mut Output<'_>) -> io::Result<()>,
) -> io::Result<()> {
    let mut buf = Vec::new();
    {
        let mut out = Output::for_env(&mut buf, env, redactor.clone());
        render(&mut out)?;
        out.flush()?;
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, buf)
}

fn http_client(env: &AgentEnv, redactor: &Redactor, endpoints: &Endpoints) -> Result<HttpClient, String> {
    let proxy = ProxyConfig::from_env(env, redactor)?;
    let extra_roots_pem = match env.get("SSL_CERT_FILE") {
        // Regular files only, capped: a device or FIFO here would grow memory or block
        // before the run's deadline starts.
        Some(path) => Some(crate::fsread::read(std::path::Path::new(path), crate::fsread::limits::CA_BUNDLE).map_err(
            |e| format!("SSL_CERT_FILE: `{path}` is not valid; expected the path of a readable PEM bundle of CA certificates ({e})"),
        )?),
        None => None,
    };
    let routes = crate::net::route::Routes::new(&endpoints.registries);
    HttpClient::new(HttpSettings {
        proxy,
        extra_roots_pem,
        redactor: redactor.clone(),
        routes,
        ..HttpSettings::default()
    })
    .map_err(|e| format!("SSL_CERT_FILE: {e}"))
}

/// Exit 2: the message names the input, the value and the expected form. In a pipeline the
/// step also gets one error issue and a failed completion.
fn bad_input(env: &AgentEnv, io: &mut Streams<'_>, message: &str) -> Exit {
    bad_input_all(env, io, &[message.to_string()])
}

/// Exit 2 for several problems at once: one line (or error issue) each, then one failed
/// completion.
fn bad_input_all(env: &AgentEnv, io: &mut Streams<'_>, messages: &[String]) -> Exit {
    fail_with_all(env, io, messages, "bad input");
    Exit::BadInput
}

/// Exit 3: the run could not complete.
fn internal(env: &AgentEnv, io: &mut Streams<'_>, message: &str) -> Exit {
    fail_with(env, io, message, "could not complete");
    Exit::Internal
}

fn fail_with(env: &AgentEnv, io: &mut Streams<'_>, message: &str, what: &str) {
    fail_with_all(env, io, &[message.to_string()], what)
}

fn fail_with_all(env: &AgentEnv, io: &mut Streams<'_>, messages: &[String], what: &str) {
    if env.in_pipeline() {
        for message in messages {
            let text = format!("azp-preflight: {what}: {message}");
            let _ = io.stdout.command(&LogCommand::new("task.logissue", &[("type", "error".into())], &text));
        }
        let done = LogCommand::new("task.complete", &[("result", "Failed".into())], &format!("azp-preflight: {what}"));
        let _ = io.stdout.command(&done);
    } else {
        for message in messages {
            let _ = writeln!(io.stderr, "azp-preflight: {what}: {message}");
        }
    }
}

/// After a crash: in a pipeline, one error issue and a failed completion on stdout.
pub fn report_crash(env: &AgentEnv, stdout: &mut dyn Write) {
    if env.in_pipeline() {
        let message = "azp-preflight: could not complete: internal error (see the log above)";
        let mut out = Output::for_env(stdout, env, Redactor::default());
        let _ = out.command(&LogCommand::new("task.logissue", &[("type", "error".into())], message));
        let _ = out.command(&LogCommand::new("task.complete", &[("result", "Failed".into())], message));
    }
}
