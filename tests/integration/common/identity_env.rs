//! The world the identity tests run in: the environment the agent sets for a task step,
//! pointed at the fake identity service, and a run of the binary.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::preflight;
use crate::fake_entra::{FakeEntra, JOB_TOKEN, TENANT};

pub const CONN: &str = "1dfdea68-9549-409e-abee-c5da69cfec5f";
pub const CONN2: &str = "6a2c55b0-3d7e-4c55-9a1e-0f3b8f7c2d11";
pub const APP: &str = "46e6adf4-a9cf-4b60-9390-0ba6fb00bf6b";
pub const APP2: &str = "3f1c9b0e-7d51-4f3e-8c2a-5b6d7e8f9a01";
pub const SECRET: &str = "Abc8Q~canary-client-secret-7c1e4b";

/// The environment of one run: what the agent sets for a task step, pointed at the fake.
pub struct Env {
    pub vars: BTreeMap<String, String>,
    pub dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    pub dir: std::path::PathBuf,
}

impl Run {
    pub fn report(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }

    /// The identity entries of the report.
    pub fn entries(&self) -> Vec<Value> {
        self.report()["checks"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c["check"] == "identity")
            .collect()
    }

    pub fn findings(&self) -> Vec<Value> {
        self.entries().iter().flat_map(|e| e["findings"].as_array().cloned().unwrap_or_default()).collect()
    }

    pub fn finding(&self, code: &str) -> Value {
        self.findings()
            .into_iter()
            .find(|f| f["code"] == code)
            .unwrap_or_else(|| panic!("no {code} finding in:\n{}", self.stdout))
    }

    pub fn codes(&self) -> Vec<String> {
        self.findings().iter().map(|f| f["code"].as_str().unwrap_or_default().to_string()).collect()
    }
}

impl Env {
    pub fn pipeline(fake: &FakeEntra) -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut vars = BTreeMap::new();
        let path = dir.path().display().to_string();
        for (k, v) in [
            ("TF_BUILD", "True"),
            ("INPUT_CHECKS", "identity"),
            ("AGENT_TEMPDIRECTORY", path.as_str()),
            ("BUILD_SOURCESDIRECTORY", path.as_str()),
            ("SYSTEM_COLLECTIONURI", "https://dev.azure.com/fabrikam/"),
            ("SYSTEM_TEAMPROJECT", "Shop"),
            ("ENDPOINT_URL_SYSTEMVSSCONNECTION", "https://dev.azure.com/fabrikam/"),
            ("ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN", JOB_TOKEN),
            ("AZURE_AUTHORITY_HOST", fake.base.as_str()),
        ] {
            vars.insert(k.to_string(), v.to_string());
        }
        vars.insert("AZP_PREFLIGHT_GRAPH_URL".into(), fake.graph_url());
        vars.insert("AZP_PREFLIGHT_IMDS_URL".into(), fake.imds_url());
        vars.insert("SYSTEM_OIDCREQUESTURI".into(), fake.oidc_url());
        Env { vars, dir }
    }

    pub fn set(&mut self, key: &str, value: &str) -> &mut Env {
        self.vars.insert(key.to_string(), value.to_string());
        self
    }

    pub fn unset(&mut self, key: &str) -> &mut Env {
        self.vars.remove(key);
        self
    }

    /// Adds `id` to the `azureSubscription` input with the given scheme and parameters.
    pub fn azure_connection(
        &mut self,
        id: &str,
        scheme: &str,
        params: &[(&str, &str)],
        data: &[(&str, &str)],
    ) -> &mut Env {
        let input = match self.vars.get("INPUT_AZURESUBSCRIPTION") {
            Some(v) => format!("{v},{id}"),
            None => id.to_string(),
        };
        self.set("INPUT_AZURESUBSCRIPTION", &input);
        self.connection(id, "https://management.azure.com/", scheme, params, data)
    }

    pub fn connection(
        &mut self,
        id: &str,
        url: &str,
        scheme: &str,
        params: &[(&str, &str)],
        data: &[(&str, &str)],
    ) -> &mut Env {
        self.set(&format!("ENDPOINT_URL_{id}"), url);
        self.set(&format!("ENDPOINT_AUTH_SCHEME_{id}"), scheme);
        for (k, v) in params {
            self.set(&format!("ENDPOINT_AUTH_PARAMETER_{id}_{}", k.to_ascii_uppercase()), v);
        }
        for (k, v) in data {
            self.set(&format!("ENDPOINT_DATA_{id}_{}", k.to_ascii_uppercase()), v);
        }
        self
    }

    /// A secret-based connection as Azure DevOps makes them.
    pub fn spn_key(&mut self, id: &str, app: &str, secret: &str, mode: &str) -> &mut Env {
        self.azure_connection(
            id,
            "ServicePrincipal",
            &[
                ("serviceprincipalid", app),
                ("tenantid", TENANT),
                ("authenticationType", "spnKey"),
                ("serviceprincipalkey", secret),
            ],
            &[("subscriptionName", "Contoso Prod"), ("creationMode", mode), ("environment", "AzureCloud")],
        )
    }

    pub fn spn_cert(&mut self, id: &str, app: &str, pem: &str) -> &mut Env {
        self.azure_connection(
            id,
            "ServicePrincipal",
            &[
                ("serviceprincipalid", app),
                ("tenantid", TENANT),
                ("authenticationType", "spnCertificate"),
                ("servicePrincipalCertificate", pem),
            ],
            &[("subscriptionName", "Contoso Cert"), ("creationMode", "Manual")],
        )
    }

    pub fn wif(&mut self, id: &str, app: &str) -> &mut Env {
        self.azure_connection(
            id,
            "WorkloadIdentityFederation",
            &[("serviceprincipalid", app), ("tenantid", TENANT)],
            &[("subscriptionName", "Contoso WIF"), ("creationMode", "Automatic")],
        )
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let started = Instant::now();
        let out = preflight(self.dir.path())
            .envs(&self.vars)
            .args(args)
            .current_dir(self.dir.path())
            .timeout(Duration::from_secs(60))
            .output()
            .expect("the binary runs");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: started.elapsed(),
            dir: self.dir.path().to_path_buf(),
        }
    }

    pub fn json(&self) -> Run {
        self.run(&["--format", "json"])
    }
}

/// A JSON string value as text (empty when it is not a string).
pub fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}
