//! The authenticate link: proves the registry accepts the credential, by basic auth, a token
//! exchange at the challenge's realm, or an ACR refresh-token exchange from an Entra token.
//! Emits REG010 (rejected), REG011 (exchange or Entra failure), REG009 (a credential that
//! cannot be used as given) and REG007 (an answer that is not a token endpoint's).

use serde_json::Value;
use url::Url;

use super::{Auth, Chain, Gate, Step, Stop, METADATA_READ, PULL, PUSH};
use crate::azure::entra::TokenError;
use crate::checks::registry::answer;
use crate::checks::registry::credentials::{self, Credential, Sourced};
use crate::codes::Code;
use crate::connections::{ConnectionKind, ServiceConnection};
use crate::finding::Finding;
use crate::net::{Request, Response};
use crate::registry_target::Intent;
use crate::sanitize::sanitize;
use crate::secret::Secret;

/// The token endpoint's GET form: `realm?service=..&scope=..[&account=..]`.
fn token_url(realm: &Url, service: Option<&str>, scopes: &[String], account: Option<&str>) -> Url {
    let mut url = realm.clone();
    {
        let mut q = url.query_pairs_mut();
        if let Some(s) = service {
            q.append_pair("service", s);
        }
        for s in scopes {
            q.append_pair("scope", s);
        }
        if let Some(a) = account {
            q.append_pair("account", a);
        }
    }
    url
}

impl Chain<'_> {
    pub(super) async fn authenticate(&mut self, gate: &Gate, sourced: Sourced) -> Step<Auth> {
        let source = sourced.source.clone();
        match gate {
            Gate::Open => {
                self.pass("authenticate");
                self.out.proven.push(if self.anonymous {
                    "anonymous access allowed".into()
                } else {
                    "registry needs no credential".into()
                });
                let auth = match sourced.credential {
                    Credential::Basic { username, password } => {
                        self.register_basic(&username, &password);
                        Auth::Basic { username, password }
                    }
                    _ => Auth::None,
                };
                Ok(auth)
            }
            Gate::Basic => {
                let Credential::Basic { username, password } = sourced.credential else {
                    let f = self
                        .finding(
                            Code::REG010,
                            "authenticate",
                            format!(
                                "`{}` only accepts a username and password (Basic), but {source} holds a token",
                                self.server().authority
                            ),
                        )
                        .remedy("Use a username/password credential for this registry.");
                    return Err(self.fail(f));
                };
                self.register_basic(&username, &password);
                let Some(url) = self.url("v2/") else { return Err(Stop) };
                let what = format!("GET {url} with Basic credentials");
                let resp = self.send("authenticate", &what, Request::get(url).basic(&username, &password)).await?;
                if let Some(f) = self.common("authenticate", &what, &resp) {
                    return Err(self.fail(f));
                }
                match resp.status {
                    200 => {
                        self.pass("authenticate");
                        self.out.proven.push(format!("credential accepted ({source})"));
                        Ok(Auth::Basic { username, password })
                    }
                    401 | 403 => {
                        let f = self.rejected(&what, &resp, &username);
                        Err(self.fail(f))
                    }
                    _ => {
                        let f = self.unexpected("authenticate", &what, &resp);
                        Err(self.fail(f))
                    }
                }
            }
            Gate::Bearer { realm, service } => {
                let scopes = self.scopes();
                let token = self.bearer_token(realm, service.as_deref(), &scopes, sourced).await?;
                if self.repo().is_none() {
                    self.verify_registry_token(&token).await?;
                }
                self.pass("authenticate");
                Ok(Auth::Bearer(token))
            }
        }
    }

    fn register_basic(&self, username: &str, password: &Secret) {
        // A server that echoes the Authorization header must not leak the password.
        self.ctx.redactor.register_basic(username, password.expose());
    }

    /// The scopes the intent needs, plus metadata read for ACR's lock attributes.
    fn scopes(&self) -> Vec<String> {
        let Some(repo) = self.repo() else { return Vec::new() };
        let actions = match self.spec.intent {
            Intent::Pull => PULL.to_string(),
            Intent::Push => format!("{PULL},{PUSH}"),
        };
        let mut scopes = vec![format!("repository:{repo}:{actions}")];
        if self.acr_like {
            scopes.push(format!("repository:{repo}:{METADATA_READ}"));
        }
        scopes
    }

    async fn bearer_token(
        &mut self,
        realm: &Url,
        service: Option<&str>,
        scopes: &[String],
        sourced: Sourced,
    ) -> Step<Secret> {
        let source = sourced.source.clone();
        let (request, how, username) = match sourced.credential {
            Credential::Basic { username, password } => {
                self.register_basic(&username, &password);
                let url = token_url(realm, service, scopes, Some(&username));
                (Request::get(url).basic(&username, &password), "basic", Some(username))
            }
            Credential::Anonymous => (Request::get(token_url(realm, service, scopes, None)), "anonymous", None),
            Credential::RefreshToken { token } => {
                (self.refresh_request(realm, service, scopes, &token), "refresh", None)
            }
            Credential::Entra { connection } => {
                let refresh = self.exchange(realm, service, &connection).await?;
                (self.refresh_request(realm, service, scopes, &refresh), "entra", None)
            }
            Credential::Empty { .. } | Credential::Unreadable { .. } => return Err(Stop),
        };
        let what = format!("the token endpoint {}{}", realm.origin().ascii_serialization(), realm.path());
        let resp = self.send("authenticate", &what, request).await?;
        if let Some(f) = self.common("authenticate", &what, &resp) {
            return Err(self.fail(f));
        }
        if resp.status == 200 {
            let body: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
            if let Some(rt) = body.get("refresh_token").and_then(|v| v.as_str()) {
                self.ctx.redactor.register(rt);
            }
            let token = body
                .get("access_token")
                .or_else(|| body.get("token"))
                .and_then(|v| v.as_str())
                .filter(|t| !t.is_empty());
            return match token {
                Some(t) => {
                    let token = self.ctx.redactor.secret(t);
                    self.out.proven.push(if how == "anonymous" {
                        "anonymous token issued".to_string()
                    } else {
                        format!("credential accepted ({source})")
                    });
                    Ok(token)
                }
                None => {
                    let f = self
                        .finding(Code::REG007, "authenticate", format!("{what} answered 200 without a token: {}{}", answer::quote(&resp), answer::correlation_suffix(&resp)))
                        .remedy("A proxy or a misbehaving token service answered; the token endpoint must return JSON with `token` or `access_token`.")
                        .data("kind", "no-token");
                    Err(self.fail(f))
                }
            };
        }
        if matches!(resp.status, 400 | 401 | 403) || (how == "refresh" && matches!(resp.status, 404 | 405)) {
            let f = match how {
                "anonymous" => self
                    .finding(
                        Code::REG009,
                        "credential",
                        format!(
                            "no credential for `{}` was found, and {what} refuses anonymous access: HTTP {} {}{}",
                            self.server().authority,
                            resp.status,
                            answer::quote(&resp),
                            answer::correlation_suffix(&resp)
                        ),
                    )
                    .remedy(self.missing_credential_remedy())
                    .data("status", resp.status),
                "entra" => self
                    .finding(
                        Code::REG011,
                        "authenticate",
                        format!(
                            "the ACR refresh token from the exchange was refused by {what}: HTTP {} {}{}",
                            resp.status,
                            answer::quote(&resp),
                            answer::correlation_suffix(&resp)
                        ),
                    )
                    .remedy(self.role_remedy(if self.spec.intent == Intent::Push { "AcrPush" } else { "AcrPull" }))
                    .data("status", resp.status),
                _ => self.rejected(&what, &resp, username.as_deref().unwrap_or("")),
            };
            let f = self.with_correlation(f, &resp);
            return Err(self.fail(f));
        }
        let f = self.unexpected("authenticate", &what, &resp);
        Err(self.fail(f))
    }

    fn refresh_request(&self, realm: &Url, service: Option<&str>, scopes: &[String], token: &Secret) -> Request {
        let mut fields: Vec<(&str, &str)> = vec![("grant_type", "refresh_token")];
        if let Some(s) = service {
            fields.push(("service", s));
        }
        for s in scopes {
            fields.push(("scope", s));
        }
        fields.push(("refresh_token", token.expose()));
        fields.push(("client_id", "azp-preflight"));
        Request::post(realm.clone()).form(&fields)
    }

    /// A credential the token service or registry refused (REG010), with the fix for the
    /// kind of credential it is.
    fn rejected(&self, what: &str, resp: &Response, username: &str) -> Finding {
        let server = self.server();
        let source = self.credential_source.clone().unwrap_or_default();
        let settings = self.identity.as_ref().and_then(|c| c.settings_page(&self.ctx.env));
        let update = settings.map(|s| format!(" Update the service connection: {s}")).unwrap_or_default();
        let remedy = if self.identity.as_ref().is_some_and(credentials::is_acr_connection) {
            format!(
                "The service principal's secret is wrong or expired. Create a new one with `az ad app credential reset --id {} --append` \
                 and put it in the service connection, or recreate the connection with workload identity federation.{update}",
                self.identity.as_ref().and_then(|c| c.param("SERVICEPRINCIPALID")).unwrap_or("<appId>")
            )
        } else if server.is_acr_host() && username == server.acr_name() {
            format!(
                "This is the registry's admin user: its password was regenerated, or the admin user is disabled. `az acr credential show --name {0}` \
                 prints the current passwords; `az acr update --name {0} --admin-enabled true` enables it.{update}",
                server.acr_name()
            )
        } else if server.is_acr_host() {
            format!(
                "Check the username and password: for a service principal, its application id and a current secret (`az ad app credential reset \
                 --id <appId> --append`); for a repository-scoped token, `az acr token credential generate --name <token> --registry {}`.{update}",
                server.acr_name()
            )
        } else if source.starts_with("Docker config") {
            format!("The stored login is stale: run `docker login {}` again.", server.authority)
        } else if source.starts_with("AZP_PREFLIGHT_REGISTRY") {
            "Set AZP_PREFLIGHT_REGISTRY_USERNAME and AZP_PREFLIGHT_REGISTRY_PASSWORD to a current login.".to_string()
        } else {
            format!("Check the username and password, or the access token that replaces the password, with the registry's owner.{update}")
        };
        let f = self
            .finding(
                Code::REG010,
                "authenticate",
                format!(
                    "{what} rejected the credential from {source}: HTTP {} {}{}",
                    resp.status,
                    answer::quote(resp),
                    answer::correlation_suffix(resp)
                ),
            )
            .remedy(remedy)
            .data("status", resp.status)
            .data("source", source);
        self.with_correlation(f, resp)
    }

    /// Entra ID token → `/oauth2/exchange` → ACR refresh token.
    async fn exchange(&mut self, realm: &Url, service: Option<&str>, conn: &ServiceConnection) -> Step<Secret> {
        // The Entra token goes only to the login server itself, never to a realm elsewhere.
        let same_host = self.server().base_url().is_some_and(|b| b.origin() == realm.origin());
        let Some(url) = self.url("oauth2/exchange").filter(|_| same_host) else {
            let f = self
                .finding(
                    Code::REG011,
                    "exchange",
                    format!(
                        "the registry's token endpoint `{}` is not on the login server `{}`; an Entra ID token is only exchanged at the login server",
                        sanitize(realm.as_str()),
                        self.server().authority
                    ),
                )
                .remedy("Check that the server is an Azure Container Registry login server; for other registries use a username/password connection.")
                .data("stage", "realm");
            return Err(self.fail(f));
        };
        let arm = match (&conn.kind, &conn.url) {
            (ConnectionKind::AzureRm, Some(u)) if !self.ctx.endpoints.arm_overridden => u.clone(),
            _ => self.ctx.endpoints.arm.to_string(),
        };
        let scope = format!("{}/.default", arm.trim_end_matches('/'));
        let token = match self.shared.entra_token(self.ctx, conn, &scope).await {
            Ok(t) => t,
            Err(TokenError::Config { parameter, problem }) => {
                let settings = conn.settings_page(&self.ctx.env).map(|s| format!(": {s}")).unwrap_or_default();
                let f = self
                    .finding(
                        Code::REG009,
                        "credential",
                        format!(
                            "the Azure identity {} cannot be used: parameter `{parameter}` {}",
                            conn.label(),
                            sanitize(&problem)
                        ),
                    )
                    .remedy(format!("Complete the service connection's settings{settings}."))
                    .data("parameter", parameter);
                return Err(self.fail(f));
            }
            Err(e) => {
                let f = self
                    .finding(Code::REG011, "exchange", format!("Entra ID gave no token for {} to exchange at the registry: {}", conn.label(), sanitize(&e.to_string())))
                    .remedy(
                        "The identity itself fails before the registry is involved: the identity check's findings (IDN codes) name the cause \
                         (expired or wrong secret, unknown application or tenant, federation subject). Fix the service connection, then run again.",
                    )
                    .data("stage", "entra");
                return Err(self.fail(f));
            }
        };
        let tenant = conn.param("TENANTID").map(str::to_string).or_else(|| {
            crate::azure::jwt::claims(token.token.expose()).and_then(|c| c.get("tid")?.as_str().map(str::to_string))
        });
        let mut fields: Vec<(&str, &str)> = vec![("grant_type", "access_token")];
        let service_value = service.map(str::to_string).unwrap_or_else(|| self.server().host.clone());
        fields.push(("service", &service_value));
        if let Some(t) = tenant.as_deref() {
            fields.push(("tenant", t));
        }
        fields.push(("access_token", token.token.expose()));
        let what = format!("POST {url}");
        let resp = self.send("exchange", &what, Request::post(url.clone()).form(&fields)).await?;
        if let Some(f) = self.common("exchange", &what, &resp) {
            return Err(self.fail(f));
        }
        if resp.status == 200 {
            let body: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
            if let Some(rt) = body.get("refresh_token").and_then(|v| v.as_str()).filter(|t| !t.is_empty()) {
                self.pass("exchange");
                return Ok(self.ctx.redactor.secret(rt));
            }
            let f = self
                .finding(Code::REG011, "exchange", format!("{what} answered 200 without a refresh token: {}{}", answer::quote(&resp), answer::correlation_suffix(&resp)))
                .remedy("A proxy or a non-ACR service answered the exchange; check that the login server is an Azure Container Registry.")
                .data("status", 200);
            return Err(self.fail(f));
        }
        if matches!(resp.status, 400 | 401 | 403 | 404) {
            let role = if self.spec.intent == Intent::Push { "AcrPush" } else { "AcrPull" };
            let mut remedy = self.role_remedy(role);
            if resp.status == 401 {
                remedy.push_str(&format!(
                    " If the registry refuses ARM-audience tokens (`az acr config authentication-as-arm show --registry {}` says disabled), \
                     enable it or use a connection type that requests the `https://containerregistry.azure.net/.default` audience.",
                    self.server().acr_name()
                ));
            }
            if resp.status == 404 {
                remedy = format!("`{}` has no token exchange endpoint: it is not an Azure Container Registry. Use a username/password connection.", self.server().authority);
            }
            let f = self
                .finding(
                    Code::REG011,
                    "exchange",
                    format!(
                        "the registry rejected the token exchange for {}: HTTP {} {}{}",
                        conn.label(),
                        resp.status,
                        answer::quote(&resp),
                        answer::correlation_suffix(&resp)
                    ),
                )
                .remedy(remedy)
                .data("status", resp.status);
            let f = self.with_correlation(f, &resp);
            return Err(self.fail(f));
        }
        let f = self.unexpected("exchange", &what, &resp);
        Err(self.fail(f))
    }

    /// The role assignment that grants `role` to the identity behind the credential.
    pub(super) fn role_remedy(&self, role: &str) -> String {
        let server = self.server();
        let assignee = match &self.identity {
            Some(c) => match c.param("SERVICEPRINCIPALID") {
                Some(id) => id.to_string(),
                None if c.scheme.eq_ignore_ascii_case("ManagedServiceIdentity") => {
                    "<managed-identity-principal-id>".into()
                }
                None => "<appId>".into(),
            },
            None => "<appId>".into(),
        };
        let abac_role = if role == "AcrPush" {
            "Container Registry Repository Writer"
        } else {
            "Container Registry Repository Reader"
        };
        format!(
            "Grant the identity {role} on the registry: `az role assignment create --assignee {assignee} --role {role} --scope $(az acr show \
             --name {} --query id --output tsv)`. If the registry uses repository permissions (ABAC), assign `{abac_role}` instead; AcrPull/AcrPush \
             are ignored there. Role assignments take a few minutes to apply.",
            server.acr_name()
        )
    }

    async fn verify_registry_token(&mut self, token: &Secret) -> Step<()> {
        let Some(url) = self.url("v2/") else { return Err(Stop) };
        let what = format!("GET {url} with the issued token");
        let resp = self.send("authenticate", &what, Request::get(url).bearer(token)).await?;
        if let Some(f) = self.common("authenticate", &what, &resp) {
            return Err(self.fail(f));
        }
        match resp.status {
            200 => Ok(()),
            401 | 403 => {
                let error = answer::challenge_error(&resp).map(|e| format!(" (error=\"{e}\")")).unwrap_or_default();
                let f = self
                    .finding(
                        Code::REG010,
                        "authenticate",
                        format!("the registry did not accept the token its own token endpoint issued: HTTP {}{error} {}{}", resp.status, answer::quote(&resp), answer::correlation_suffix(&resp)),
                    )
                    .remedy("The token service and the registry disagree (service name, issuer or signing certificate); check the registry's token configuration.")
                    .data("status", resp.status);
                Err(self.fail(f))
            }
            _ => {
                let f = self.unexpected("authenticate", &what, &resp);
                Err(self.fail(f))
            }
        }
    }
}
