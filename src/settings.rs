//! Validated settings for one run: flags merged over task inputs over defaults. Every
//! problem is an `InputError` that names the input, the value and the expected form (exit 2).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::advisory_update::{self, AdvisoryUpdate};
use crate::cli::{FailOn, Format, RunArgs};
use crate::connections::{self, ConnectionKind, ServiceConnection};
use crate::deploy_target::{self, DeployTarget};
use crate::env::AgentEnv;
use crate::input_error::{InputError, InputErrors};
use crate::registry_target::{self, RegistryTarget};
use crate::secret::{Redactor, Secret};
use crate::userinfo;

/// The check families, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CheckId {
    Registry,
    Identity,
    Deploy,
    Tasks,
    Agent,
    /// Organisation mode (`azp-preflight org`): every service connection of the organisation.
    Connections,
    /// Organisation mode: the task versions the latest runs of each pipeline executed.
    Runs,
}

impl CheckId {
    pub const ALL: [CheckId; 5] =
        [CheckId::Registry, CheckId::Identity, CheckId::Deploy, CheckId::Tasks, CheckId::Agent];

    /// The `checks` default (README, "Inputs"). `deploy` joins it whenever deploy targets are given.
    pub const DEFAULT: [CheckId; 4] = [CheckId::Registry, CheckId::Identity, CheckId::Tasks, CheckId::Agent];

    /// The families of an organisation scan (not selectable with `checks`).
    pub const ORG: [CheckId; 2] = [CheckId::Connections, CheckId::Runs];

    /// Any family by its report name, organisation families included (reading a report back).
    pub fn from_report_name(name: &str) -> Option<CheckId> {
        CheckId::ALL.into_iter().chain(CheckId::ORG).find(|c| c.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CheckId::Registry => "registry",
            CheckId::Identity => "identity",
            CheckId::Deploy => "deploy",
            CheckId::Tasks => "tasks",
            CheckId::Agent => "agent",
            CheckId::Connections => "connections",
            CheckId::Runs => "runs",
        }
    }
}

/// A registry target and where it was written, for error messages.
#[derive(Debug, Clone)]
pub struct SourcedTarget {
    pub target: RegistryTarget,
    /// `registries line 2` or `--registry`.
    pub source: String,
}

/// A deployment target and where it was written, for messages.
#[derive(Debug, Clone)]
pub struct SourcedDeployTarget {
    pub target: DeployTarget,
    /// `deployTargets line 2` or `--deploy-target`.
    pub source: String,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub checks: BTreeSet<CheckId>,
    pub fail_on: FailOn,
    pub offline: bool,
    pub timeout: Duration,
    pub expiry_warning_days: u32,
    pub expiry_error_days: u32,
    pub advisory_files: Vec<PathBuf>,
    /// `advisoryUpdate` / `--advisory-update`: whether and where the tasks check refreshes
    /// the advisory database.
    pub advisory_update: AdvisoryUpdate,
    /// Where a fetched advisory document is kept between runs.
    pub advisory_cache_dir: Option<PathBuf>,
    pub pipeline_patterns: Vec<String>,
    pub registries: Vec<SourcedTarget>,
    pub deploy_targets: Vec<SourcedDeployTarget>,
    pub azure_connections: Vec<ServiceConnection>,
    pub registry_connections: Vec<ServiceConnection>,
    pub format: Format,
    pub report_path: Option<PathBuf>,
    pub no_exit_codes: bool,
    pub in_pipeline: bool,
    /// Where relative pipeline paths start: `BUILD_SOURCESDIRECTORY`, else the current folder.
    pub sources_dir: PathBuf,
    /// Where the summary file goes: `AGENT_TEMPDIRECTORY`, else the system temp folder.
    pub temp_dir: PathBuf,
    /// The agent's work folder, whose free disk AGT002 measures.
    pub work_dir: PathBuf,
    pub agent_version: Option<String>,
    /// The job access token (`ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN`, else
    /// `SYSTEM_ACCESSTOKEN`), for the Azure DevOps REST API.
    pub job_token: Option<Secret>,
    pub project: Option<String>,
    pub definition_id: Option<String>,
}

impl Settings {
    /// As [`Settings::parse`], keeping the first problem only.
    pub fn from_args(
        args: &RunArgs,
        env: &AgentEnv,
        redactor: &Redactor,
        cwd: PathBuf,
    ) -> Result<Settings, InputError> {
        Settings::parse(args, env, redactor, cwd).map_err(|mut all| all.0.remove(0))
    }

    /// Flags over task inputs over defaults. Every input is read even after a problem, so
    /// the error lists all of them.
    pub fn parse(args: &RunArgs, env: &AgentEnv, redactor: &Redactor, cwd: PathBuf) -> Result<Settings, InputErrors> {
        let mut problems = InputErrors::default();
        let in_pipeline = env.in_pipeline();
        let default_set: BTreeSet<CheckId> = CheckId::DEFAULT.into_iter().collect();
        let mut checks = match args
            .checks
            .as_deref()
            .map(|v| ("--checks", v))
            .or_else(|| env.input("checks").map(|v| ("checks", v)))
        {
            Some((name, value)) => problems.take(parse_checks(name, value), default_set.clone()),
            None => default_set.clone(),
        };
        let fail_on = match (args.fail_on, env.input("failOn")) {
            (Some(f), _) => f,
            (None, Some(v)) => match v.to_ascii_lowercase().as_str() {
                "error" => FailOn::Error,
                "warning" => FailOn::Warning,
                "never" => FailOn::Never,
                _ => problems.take(Err(InputError::new("failOn", v, "one of error, warning, never")), FailOn::Error),
            },
            (None, None) => FailOn::Error,
        };
        let offline = args.offline || problems.take(parse_bool("offline", env.input("offline")), false);
        let timeout_secs = problems.take(
            number("--timeout", args.timeout.as_deref(), "timeoutSeconds", env.input("timeoutSeconds"), 60, 1, 3600),
            60,
        );
        let expiry_warning_days = problems.take(
            number(
                "--expiry-warning-days",
                args.expiry_warning_days.as_deref(),
                "expiryWarningDays",
                env.input("expiryWarningDays"),
                30,
                0,
                3650,
            ),
            30,
        );
        let expiry_error_days = problems.take(
            number(
                "--expiry-error-days",
                args.expiry_error_days.as_deref(),
                "expiryErrorDays",
                env.input("expiryErrorDays"),
                7,
                0,
                3650,
            ),
            7,
        );
        if expiry_error_days > expiry_warning_days {
            problems.0.push(InputError::new(
                "expiryErrorDays",
                &expiry_error_days.to_string(),
                &format!("a number of days no larger than expiryWarningDays ({expiry_warning_days})"),
            ));
        }

        let mut advisory_files = args.advisories.clone();
        if advisory_files.is_empty() {
            advisory_files = env
                .input("advisoryFile")
                .map(|v| v.split(['\n', ',']).map(str::trim).filter(|s| !s.is_empty()).map(PathBuf::from).collect())
                .unwrap_or_default();
        }
        // The agent fills an empty filePath input with the sources folder itself.
        let sources_dir = env.get("BUILD_SOURCESDIRECTORY").map(PathBuf::from).unwrap_or(cwd);
        // That default is the only folder that means "none"; any other folder, a FIFO or a
        // device given as an advisory file is bad input.
        let (name, from_task) =
            if args.advisories.is_empty() { ("advisoryFile", true) } else { ("--advisories", false) };
        if from_task {
            advisory_files.retain(|p| !same_folder(p, &sources_dir));
        }
        for file in &advisory_files {
            let problem = match std::fs::metadata(file) {
                Ok(meta) if meta.is_file() => continue,
                Ok(meta) if meta.is_dir() => "a directory".to_string(),
                Ok(_) => "a FIFO, socket or device".to_string(),
                Err(e) => e.to_string(),
            };
            let expected = if problem.starts_with("a ") {
                format!("a readable advisory file (a TOML file, not {problem})")
            } else {
                format!("a readable advisory file ({problem})")
            };
            problems.0.push(InputError::new(name, &file.display().to_string(), &expected));
        }

        let advisory_update = problems
            .take(AdvisoryUpdate::from_sources(args.advisory_update.as_deref(), env, redactor), AdvisoryUpdate::Off);

        let pipeline_patterns = if !args.pipeline.is_empty() {
            args.pipeline.clone()
        } else {
            env.input("pipelineFiles")
                .map(|v| {
                    v.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty() && !l.starts_with('#'))
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };

        let registries = target_lines(
            &mut problems,
            TargetInputs {
                flag: "--registry",
                flag_values: &args.registry,
                input: "registries",
                noun: "a registry target",
            },
            env,
            redactor,
            registry_target::GRAMMAR,
            registry_target::parse_line,
        )
        .into_iter()
        .map(|(target, source)| SourcedTarget { target, source })
        .collect();
        let deploy_targets: Vec<SourcedDeployTarget> = target_lines(
            &mut problems,
            TargetInputs {
                flag: "--deploy-target",
                flag_values: &args.deploy_target,
                input: "deployTargets",
                noun: "a deploy target",
            },
            env,
            redactor,
            deploy_target::GRAMMAR,
            deploy_target::parse_line,
        )
        .into_iter()
        .map(|(target, source)| SourcedDeployTarget { target, source })
        .collect();
        // The task always passes the default `checks` value, so "the default list" (in any
        // order) also means "everything that applies": given deploy targets, deploy runs.
        if !deploy_targets.is_empty() && checks == default_set {
            checks.insert(CheckId::Deploy);
        }

        let mut azure_connections = match env.input("azureSubscription") {
            Some(v) => problems.take(connections::from_input(env, ConnectionKind::AzureRm, v, redactor), Vec::new()),
            None => Vec::new(),
        };
        if azure_connections.is_empty() && !in_pipeline {
            azure_connections.extend(problems.take(connections::local_azure(env, redactor), None));
        }
        if checks.contains(&CheckId::Deploy) && !offline && azure_connections.is_empty() {
            if let Some(first) = deploy_targets.first() {
                let (input, expected) = if in_pipeline {
                    ("azureSubscription", "an Azure Resource Manager connection to read the deploy targets with")
                } else {
                    (
                        "AZURE_CLIENT_ID",
                        "AZURE_CLIENT_ID and AZURE_TENANT_ID (with AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH or \
                         AZURE_FEDERATED_TOKEN_FILE) to read the deploy targets with",
                    )
                };
                problems.0.push(InputError::new(
                    input,
                    "",
                    &format!("{expected} ({} needs one: {})", first.source, first.target.display_name()),
                ));
            }
        }
        let registry_connections = match env.input("containerRegistry") {
            Some(v) => {
                problems.take(connections::from_input(env, ConnectionKind::DockerRegistry, v, redactor), Vec::new())
            }
            None => Vec::new(),
        };

        let format = args.format.unwrap_or(if in_pipeline { Format::AzurePipelines } else { Format::Human });
        let temp_dir = env.get("AGENT_TEMPDIRECTORY").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
        // In a pipeline the report always exists, so PreflightReportPath can point at it.
        let report_path =
            args.report.clone().or_else(|| in_pipeline.then(|| temp_dir.join("azp-preflight-report.json")));
        let work_dir = env
            .get("AGENT_WORKFOLDER")
            .or(env.get("PIPELINE_WORKSPACE"))
            .map(PathBuf::from)
            .unwrap_or_else(|| sources_dir.clone());
        let job_token = env
            .get("ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN")
            .or_else(|| env.get("SYSTEM_ACCESSTOKEN"))
            .map(|t| redactor.secret(t));

        problems.into_result(Settings {
            checks,
            fail_on,
            offline,
            timeout: Duration::from_secs(u64::from(timeout_secs)),
            expiry_warning_days,
            expiry_error_days,
            advisory_files,
            advisory_update,
            advisory_cache_dir: advisory_update::cache_dir(env),
            pipeline_patterns,
            registries,
            deploy_targets,
            azure_connections,
            registry_connections,
            format,
            report_path,
            no_exit_codes: args.no_exit_codes,
            in_pipeline,
            sources_dir,
            temp_dir,
            work_dir,
            agent_version: env.get("AGENT_VERSION").map(str::to_string),
            job_token,
            project: env.get("SYSTEM_TEAMPROJECT").map(str::to_string),
            definition_id: env.get("SYSTEM_DEFINITIONID").map(str::to_string),
        })
    }

    /// The expiry windows (`expiryErrorDays`, `expiryWarningDays`) as one rule.
    pub fn expiry_windows(&self) -> crate::expiry::Windows {
        crate::expiry::Windows { error_days: self.expiry_error_days, warning_days: self.expiry_warning_days }
    }

    pub fn runs(&self, check: CheckId) -> bool {
        self.checks.contains(&check)
    }
}

/// Where a kind of target line comes from: repeated flags, and a multi-line task input.
struct TargetInputs<'a> {
    flag: &'static str,
    flag_values: &'a [String],
    input: &'static str,
    /// "a registry target": what an empty flag should have been.
    noun: &'static str,
}

/// The target lines of one kind, flags first, each with where it was written. Credentials
/// written into a line (`user:pw@host`) are taken out before anything can quote it: errors,
/// display names and findings see `***@host`. An empty flag is a mistake (an unset variable),
/// not "no target"; an empty input line is nothing.
fn target_lines<T>(
    problems: &mut InputErrors,
    from: TargetInputs<'_>,
    env: &AgentEnv,
    redactor: &Redactor,
    grammar: &str,
    parse: fn(&str) -> Result<Option<T>, String>,
) -> Vec<(T, String)> {
    let mut lines: Vec<(String, String, bool)> =
        from.flag_values.iter().map(|spec| (from.flag.to_string(), spec.clone(), true)).collect();
    if let Some(input) = env.input(from.input) {
        lines.extend(
            input
                .lines()
                .enumerate()
                .map(|(i, line)| (format!("{} line {}", from.input, i + 1), line.to_string(), false)),
        );
    }
    let mut out = Vec::new();
    for (source, raw, is_flag) in lines {
        let line = userinfo::strip_words(&raw, redactor);
        let shown = if is_flag { line.as_str() } else { line.trim() };
        match parse(&line) {
            Ok(Some(target)) => out.push((target, source)),
            Ok(None) if is_flag => {
                problems.0.push(InputError::new(&source, shown, &format!("{}: {grammar}", from.noun)));
            }
            Ok(None) => {}
            Err(e) => problems.0.push(InputError::new(&source, shown, &format!("{grammar} ({e})"))),
        }
    }
    out
}

fn parse_checks(name: &str, value: &str) -> Result<BTreeSet<CheckId>, InputError> {
    let mut set = BTreeSet::new();
    for word in value.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let id = CheckId::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(word))
            .ok_or_else(|| InputError::new(name, word, "a comma list of registry, identity, tasks, agent, deploy"))?;
        set.insert(id);
    }
    if set.is_empty() {
        return Err(InputError::new(name, value, "at least one of registry, identity, tasks, agent, deploy"));
    }
    Ok(set)
}

fn parse_bool(name: &str, value: Option<&str>) -> Result<bool, InputError> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None => Ok(false),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(InputError::new(name, other, "true or false")),
    }
}

fn number(
    flag: &str,
    flag_value: Option<&str>,
    input: &str,
    input_value: Option<&str>,
    default: u32,
    min: u32,
    max: u32,
) -> Result<u32, InputError> {
    let (name, raw) = match (flag_value, input_value) {
        (Some(v), _) => (flag, v),
        (None, Some(v)) => (input, v),
        (None, None) => return Ok(default),
    };
    let expected = format!("a whole number from {min} to {max}");
    let n: u32 = raw.trim().parse().map_err(|_| InputError::new(name, raw, &expected))?;
    if !(min..=max).contains(&n) {
        return Err(InputError::new(name, raw, &expected));
    }
    Ok(n)
}

/// Whether two paths name the same folder (as written, or once links are followed).
fn same_folder(a: &Path, b: &Path) -> bool {
    if a.components().eq(b.components()) {
        return true;
    }
    matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(x), Ok(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, InputError> {
        Settings::from_args(
            &RunArgs::default(),
            &AgentEnv::from_pairs(pairs.iter().copied()),
            &Redactor::default(),
            PathBuf::from("."),
        )
    }

    #[test]
    fn defaults_outside_a_pipeline() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.checks.len(), 4);
        assert_eq!(
            (s.fail_on, s.format, s.timeout.as_secs(), s.expiry_warning_days, s.expiry_error_days),
            (FailOn::Error, Format::Human, 60, 30, 7)
        );
        assert!(s.report_path.is_none());
    }

    #[test]
    fn inputs_in_a_pipeline() {
        let s = settings(&[
            ("TF_BUILD", "True"),
            ("AGENT_TEMPDIRECTORY", "/agent/_temp"),
            ("INPUT_CHECKS", "tasks, Agent"),
            ("INPUT_FAILON", "warning"),
            ("INPUT_TIMEOUTSECONDS", "15"),
            ("INPUT_REGISTRIES", "# targets\ncontoso.azurecr.io/app push\n\nlocalhost:5000/x platform=linux/amd64"),
        ])
        .unwrap();
        assert_eq!(s.checks.iter().map(|c| c.as_str()).collect::<Vec<_>>(), ["tasks", "agent"]);
        assert_eq!((s.fail_on, s.format, s.timeout.as_secs()), (FailOn::Warning, Format::AzurePipelines, 15));
        assert_eq!(s.registries.len(), 2);
        assert_eq!(s.registries[1].source, "registries line 4");
        assert_eq!(s.report_path.unwrap(), PathBuf::from("/agent/_temp/azp-preflight-report.json"));
    }

    const AKS_ID: &str =
        "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1";
    const AKS_LINE_NO_IMAGE: &str =
        "aks:/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1";

    fn local_identity() -> Vec<(&'static str, &'static str)> {
        vec![("AZURE_CLIENT_ID", "app"), ("AZURE_TENANT_ID", "t"), ("AZURE_CLIENT_SECRET", "s3cret-value")]
    }

    #[test]
    fn deploy_joins_the_default_checks_only_when_targets_are_given() {
        let line = format!("aks:{AKS_ID} image=contoso.azurecr.io/web:1");
        let mut pairs = local_identity();
        assert!(!settings(&pairs).unwrap().runs(CheckId::Deploy));
        pairs.push(("INPUT_DEPLOYTARGETS", &line));
        let s = settings(&pairs).unwrap();
        assert!(s.runs(CheckId::Deploy));
        assert_eq!(s.deploy_targets[0].source, "deployTargets line 1");
        // The task's default value, in another order, still means "everything that applies".
        pairs.push(("INPUT_CHECKS", "agent,tasks,identity,registry"));
        assert!(settings(&pairs).unwrap().runs(CheckId::Deploy));
        pairs.pop();
        pairs.push(("INPUT_CHECKS", "registry,identity"));
        let s = settings(&pairs).unwrap();
        assert!(!s.runs(CheckId::Deploy) && s.deploy_targets.len() == 1);
        pairs.pop();
        pairs.push(("INPUT_CHECKS", "deploy"));
        assert_eq!(settings(&pairs).unwrap().checks.into_iter().collect::<Vec<_>>(), [CheckId::Deploy]);
    }

    #[test]
    fn deploy_targets_need_an_azure_identity() {
        let line = format!("aks:{AKS_ID} image=contoso.azurecr.io/web:1");
        let err = settings(&[("INPUT_DEPLOYTARGETS", &line)]).unwrap_err();
        assert_eq!(err.input, "AZURE_CLIENT_ID");
        assert!(err.expected.contains("deployTargets line 1 needs one"), "{err}");
        let err = settings(&[("TF_BUILD", "True"), ("INPUT_DEPLOYTARGETS", &line)]).unwrap_err();
        assert_eq!(err.input, "azureSubscription");
        // Offline nothing is read, so nothing is needed.
        assert!(settings(&[("INPUT_DEPLOYTARGETS", &line), ("INPUT_OFFLINE", "true")]).is_ok());
    }

    #[test]
    fn bad_inputs_name_the_input_the_value_and_the_form() {
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
        let cases: &[Case] = &[
            (&[("INPUT_CHECKS", "registry,secrets")], "checks", "secrets"),
            (&[("INPUT_EXPIRYWARNINGDAYS", "thirty")], "expiryWarningDays", "thirty"),
            (&[("INPUT_FAILON", "sometimes")], "failOn", "sometimes"),
            (&[("INPUT_OFFLINE", "yes")], "offline", "yes"),
            (
                &[("INPUT_ADVISORYUPDATE", "http://mirror.contoso.com/i.json")],
                "advisoryUpdate",
                "http://mirror.contoso.com/i.json",
            ),
            (&[("INPUT_TIMEOUTSECONDS", "0")], "timeoutSeconds", "0"),
            (
                &[("INPUT_REGISTRIES", "ok.azurecr.io/a\ncontoso.azurecr.io/app pul")],
                "registries line 2",
                "contoso.azurecr.io/app pul",
            ),
            (&[("INPUT_AZURESUBSCRIPTION", "0000-missing")], "azureSubscription", "0000-missing"),
            (&[("INPUT_EXPIRYERRORDAYS", "40")], "expiryErrorDays", "40"),
            (
                &[("INPUT_DEPLOYTARGETS", "# prod\naks:/subscriptions/s1/resourceGroups/rg image=c.azurecr.io/a")],
                "deployTargets line 2",
                "aks:/subscriptions/s1/resourceGroups/rg image=c.azurecr.io/a",
            ),
            (&[("INPUT_DEPLOYTARGETS", AKS_LINE_NO_IMAGE)], "deployTargets line 1", AKS_LINE_NO_IMAGE),
        ];
        for (pairs, input, value) in cases {
            let err = settings(pairs).unwrap_err();
            assert_eq!((err.input.as_str(), err.value.as_str()), (*input, *value), "{err}");
            assert!(!err.expected.is_empty());
        }
    }
}
