//! What the Azure clients (Entra ID, Resource Manager, Microsoft Graph) need from a run: the
//! HTTP client, the service endpoints, the redactor, the run's "now" and the job's access
//! token (for the pipeline's OIDC endpoint).
//!
//! The clients take these pieces rather than the check framework's `Context`, so they depend
//! on neither the framework nor the settings, and their tests build exactly what they use.
//! `Context::services` hands them out for a run.

use crate::net::{Endpoints, HttpClient};
use crate::secret::{Redactor, Secret};

#[derive(Debug, Clone, Copy)]
pub struct Services<'a> {
    pub http: &'a HttpClient,
    pub endpoints: &'a Endpoints,
    /// Every token, assertion and secret the clients obtain is registered here.
    pub redactor: &'a Redactor,
    /// The run's notion of "now" (token expiry is computed from it).
    pub now: jiff::Timestamp,
    /// The job's access token (`SYSTEM_ACCESSTOKEN`), to ask the pipeline for an ID token.
    pub job_token: Option<&'a Secret>,
}

/// Owned pieces for unit tests: build them from variables, then borrow a `Services`.
#[cfg(test)]
pub(crate) struct TestServices {
    pub env: crate::env::AgentEnv,
    pub http: HttpClient,
    pub endpoints: Endpoints,
    pub redactor: Redactor,
}

#[cfg(test)]
impl TestServices {
    /// Endpoints from the given variables (as if they were the process environment) and the
    /// real HTTP client.
    pub fn new(pairs: &[(&str, &str)]) -> TestServices {
        let env = crate::env::AgentEnv::from_pairs(pairs.iter().copied());
        let redactor = Redactor::default();
        let endpoints = Endpoints::from_env(&env).expect("test endpoints are valid");
        let routes = crate::net::route::Routes::new(&endpoints.registries);
        let http = HttpClient::new(crate::net::http::HttpSettings {
            redactor: redactor.clone(),
            routes,
            ..Default::default()
        })
        .expect("client builds");
        TestServices { env, http, endpoints, redactor }
    }

    pub fn services(&self) -> Services<'_> {
        Services {
            http: &self.http,
            endpoints: &self.endpoints,
            redactor: &self.redactor,
            now: jiff::Timestamp::now(),
            job_token: None,
        }
    }

    /// The `AZURE_*` connection the variables describe.
    pub fn local_connection(&self) -> crate::connections::ServiceConnection {
        crate::connections::local_azure(&self.env, &self.redactor)
            .expect("test connection is valid")
            .expect("the variables describe a connection")
    }
}
