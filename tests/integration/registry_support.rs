//! Running registry scenarios through the binary, the way a pipeline or a laptop would, and
//! checking after every run that no password or token reached any output.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::common::preflight_shared_home;

pub struct Run {
    env: Vec<(String, String)>,
    args: Vec<String>,
    canaries: Vec<String>,
    dir: tempfile::TempDir,
    pipeline: bool,
    registry_ids: Vec<String>,
    azure_ids: Vec<String>,
    /// Token lists a fake fills while the run goes on; checked as canaries afterwards.
    watched: Vec<Arc<Mutex<Vec<String>>>>,
}

pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub report: Value,
    pub summary: String,
}

impl Run {
    /// A pipeline step (`TF_BUILD=True`) with the given `registries` input, registry check only.
    pub fn pipeline(registries: &str) -> Run {
        let dir = tempfile::tempdir().expect("temp dir");
        let temp = dir.path().to_string_lossy().to_string();
        let mut run = Run {
            env: Vec::new(),
            args: Vec::new(),
            canaries: Vec::new(),
            dir,
            pipeline: true,
            registry_ids: Vec::new(),
            azure_ids: Vec::new(),
            watched: Vec::new(),
        };
        run = run
            .env("TF_BUILD", "True")
            .env("AGENT_TEMPDIRECTORY", &temp)
            .env("BUILD_SOURCESDIRECTORY", &temp)
            .env("INPUT_CHECKS", "registry")
            .env("SYSTEM_COLLECTIONURI", "https://dev.azure.com/fabrikam/")
            .env("SYSTEM_TEAMPROJECT", "Shop");
        if !registries.is_empty() {
            run = run.env("INPUT_REGISTRIES", registries);
        }
        run
    }

    /// A laptop run with flags; JSON on stdout and a report file.
    pub fn local(args: &[&str]) -> Run {
        let dir = tempfile::tempdir().expect("temp dir");
        let report = dir.path().join("report.json").to_string_lossy().to_string();
        let mut all: Vec<String> =
            vec!["--checks".into(), "registry".into(), "--format".into(), "json".into(), "--report".into(), report];
        all.extend(args.iter().map(|s| s.to_string()));
        Run {
            env: Vec::new(),
            args: all,
            canaries: Vec::new(),
            dir,
            pipeline: false,
            registry_ids: Vec::new(),
            azure_ids: Vec::new(),
            watched: Vec::new(),
        }
    }

    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    pub fn env(mut self, key: &str, value: &str) -> Run {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn arg(mut self, a: &str) -> Run {
        self.args.push(a.to_string());
        self
    }

    /// A value that must appear in no output (outside `task.setsecret`).
    pub fn canary(mut self, value: &str) -> Run {
        self.canaries.push(value.to_string());
        self
    }

    /// Every token that appears in `tokens` by the end of the run is a canary too.
    pub fn watch(mut self, tokens: Arc<Mutex<Vec<String>>>) -> Run {
        self.watched.push(tokens);
        self
    }

    pub fn canaries(mut self, values: impl IntoIterator<Item = String>) -> Run {
        self.canaries.extend(values);
        self
    }

    fn endpoint(mut self, id: &str, scheme: &str, params: &[(&str, &str)], data: &[(&str, &str)]) -> Run {
        self = self.env(&format!("ENDPOINT_AUTH_SCHEME_{id}"), scheme);
        for (k, v) in params {
            // Empty parameters are exported as empty variables, as the agent does.
            self.env.push((format!("ENDPOINT_AUTH_PARAMETER_{id}_{k}"), v.to_string()));
        }
        for (k, v) in data {
            self.env.push((format!("ENDPOINT_DATA_{id}_{k}"), v.to_string()));
        }
        self
    }

    fn add_registry_id(mut self, id: &str) -> Run {
        self.registry_ids.push(id.to_string());
        let joined = self.registry_ids.join(",");
        self.env("INPUT_CONTAINERREGISTRY", &joined)
    }

    /// A generic `dockerregistry` connection (scheme UsernamePassword).
    pub fn generic_connection(self, id: &str, registry: &str, username: &str, password: &str) -> Run {
        self.endpoint(
            id,
            "UsernamePassword",
            &[("REGISTRY", registry), ("USERNAME", username), ("PASSWORD", password)],
            &[("REGISTRYTYPE", "Others")],
        )
        .canary(password)
        .add_registry_id(id)
    }

    /// An ACR connection with a service principal.
    pub fn acr_sp_connection(self, id: &str, login_server: &str, app: &str, secret: &str) -> Run {
        self.endpoint(
            id,
            "ServicePrincipal",
            &[
                ("LOGINSERVER", login_server),
                ("SERVICEPRINCIPALID", app),
                ("SERVICEPRINCIPALKEY", secret),
                ("TENANTID", "tenant-1"),
            ],
            &[("REGISTRYTYPE", "ACR")],
        )
        .canary(secret)
        .add_registry_id(id)
    }

    /// An `azureSubscription` connection (service principal with a secret).
    pub fn azure_sp(mut self, id: &str, app: &str, secret: &str) -> Run {
        self = self.endpoint(
            id,
            "ServicePrincipal",
            &[
                ("SERVICEPRINCIPALID", app),
                ("SERVICEPRINCIPALKEY", secret),
                ("TENANTID", "tenant-1"),
                ("AUTHENTICATIONTYPE", "spnKey"),
            ],
            &[("SUBSCRIPTIONNAME", "Contoso Prod"), ("CREATIONMODE", "Manual")],
        );
        self = self.env(&format!("ENDPOINT_URL_{id}"), "https://management.azure.com/");
        self.azure_ids.push(id.to_string());
        let joined = self.azure_ids.join(",");
        self.env("INPUT_AZURESUBSCRIPTION", &joined).canary(secret)
    }

    pub fn exec(self) -> Outcome {
        let mut cmd = preflight_shared_home();
        cmd.timeout(Duration::from_secs(90));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.args(&self.args);
        let output = cmd.output().expect("the binary runs");
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        let (report_path, summary_path) = if self.pipeline {
            (self.dir.path().join("azp-preflight-report.json"), Some(self.dir.path().join("azp-preflight-summary.md")))
        } else {
            (self.dir.path().join("report.json"), None)
        };
        let report_text = std::fs::read_to_string(&report_path).unwrap_or_default();
        let summary = summary_path.and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
        let report: Value = serde_json::from_str(&report_text).unwrap_or(Value::Null);
        let outcome = Outcome { code: output.status.code().unwrap_or(-1), stdout, stderr, report, summary };
        let mut canaries = self.canaries.clone();
        for list in &self.watched {
            canaries.extend(list.lock().map(|l| l.clone()).unwrap_or_default());
        }
        outcome.assert_no_canary(&canaries, &report_text);
        outcome
    }
}

impl Outcome {
    /// No canary in stdout (except `task.setsecret` lines), stderr, the report or the summary.
    fn assert_no_canary(&self, canaries: &[String], report_text: &str) {
        let stdout: String =
            self.stdout.lines().filter(|l| !l.starts_with("##vso[task.setsecret]")).collect::<Vec<_>>().join("\n");
        for canary in canaries.iter().filter(|c| c.len() >= 4) {
            for (name, text) in [
                ("stdout", stdout.as_str()),
                ("stderr", &self.stderr),
                ("report", report_text),
                ("summary", &self.summary),
            ] {
                assert!(!text.contains(canary.as_str()), "secret `{canary}` leaked into {name}:\n{text}");
            }
        }
    }

    pub fn registry_entries(&self) -> Vec<&Value> {
        self.report["checks"]
            .as_array()
            .map(|a| a.iter().filter(|c| c["check"] == "registry").collect())
            .unwrap_or_default()
    }

    /// The report entry whose target contains `needle`.
    pub fn target(&self, needle: &str) -> &Value {
        self.registry_entries()
            .into_iter()
            .find(|c| c["target"].as_str().is_some_and(|t| t.contains(needle)))
            .unwrap_or_else(|| {
                panic!("no registry target containing `{needle}`:\n{}\nstderr: {}", self.dump(), self.stderr)
            })
    }

    pub fn codes(&self, needle: &str) -> Vec<String> {
        self.target(needle)["findings"]
            .as_array()
            .map(|f| f.iter().filter_map(|x| x["code"].as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    }

    pub fn finding(&self, needle: &str, code: &str) -> &Value {
        self.target(needle)["findings"]
            .as_array()
            .and_then(|f| f.iter().find(|x| x["code"] == code))
            .unwrap_or_else(|| panic!("no {code} for `{needle}`:\n{}", self.dump()))
    }

    pub fn status(&self, needle: &str) -> String {
        self.target(needle)["status"].as_str().unwrap_or("").to_string()
    }

    pub fn proven(&self, needle: &str) -> Vec<String> {
        self.target(needle)["proven"]
            .as_array()
            .map(|p| p.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    }

    pub fn dump(&self) -> String {
        serde_json::to_string_pretty(&self.report).unwrap_or_default()
    }

    /// Asserts the target failed with exactly `code` as its error and returns the finding.
    pub fn expect_error(&self, needle: &str, code: &str) -> &Value {
        let f = self.finding(needle, code);
        assert_eq!(f["severity"], "error", "{}", self.dump());
        assert_eq!(self.status(needle), "fail", "{}", self.dump());
        for key in ["message", "remedy"] {
            assert!(f[key].as_str().is_some_and(|s| s.len() > 20), "{code} {key} is too thin: {f}");
        }
        f
    }
}

pub fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}
