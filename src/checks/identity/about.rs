//! What the identity check's messages and remedies say about a connection: its label,
//! app and tenant, where to edit it, and how to rotate or replace its credential. The
//! advice follows how the connection was made (`creationMode`: automatic or manual) and
//! whether it runs in a pipeline or locally.

use crate::check::Context;
use crate::connections::{Origin, ServiceConnection};
use crate::finding::Finding;
use crate::sanitize::sanitize;

/// How the connection was made (`creationMode`): decides how to rotate its secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Creation {
    Automatic,
    Manual,
    Unknown,
}

/// What messages and remedies say about a connection.
pub(super) struct About {
    pub(super) label: String,
    pub(super) input: &'static str,
    pub(super) origin: Origin,
    pub(super) app_id: Option<String>,
    pub(super) tenant: Option<String>,
    pub(super) creation: Creation,
    pub(super) settings_page: Option<String>,
}

impl About {
    pub(super) fn new(ctx: &Context, conn: &ServiceConnection) -> About {
        let creation = match conn.data("CREATIONMODE").map(str::to_ascii_lowercase).as_deref() {
            Some("automatic") => Creation::Automatic,
            Some("manual") => Creation::Manual,
            _ => Creation::Unknown,
        };
        About {
            label: conn.label(),
            input: conn.kind.input_name(),
            origin: conn.origin,
            app_id: conn.param("SERVICEPRINCIPALID").map(sanitize),
            tenant: conn.param("TENANTID").map(sanitize),
            creation,
            settings_page: conn.settings_page(&ctx.env),
        }
    }

    pub(super) fn app(&self) -> String {
        self.app_id.clone().unwrap_or_else(|| "<appId>".into())
    }

    /// Where to edit the connection: the portal path, and the link when the job knows it.
    pub(super) fn where_to_edit(&self) -> String {
        match (&self.settings_page, self.origin) {
            (_, Origin::Local) => "the AZURE_* variables of this shell".into(),
            (Some(url), _) => format!("Project settings > Service connections > {}, at {url}", self.label),
            (None, _) => format!("Project settings > Service connections > {}", self.label),
        }
    }

    pub(super) fn base_data(&self, finding: Finding) -> Finding {
        let mut f = finding.data("connection", self.label.clone()).data("input", self.input);
        if let Some(app) = &self.app_id {
            f = f.data("appId", app.clone());
        }
        if let Some(tenant) = &self.tenant {
            f = f.data("tenantId", tenant.clone());
        }
        if let Some(page) = &self.settings_page {
            f = f.data("settingsUrl", page.clone());
        }
        f
    }

    pub(super) fn rotate_secret(&self) -> String {
        let app = self.app();
        match (self.origin, self.creation) {
            (Origin::Local, _) => format!(
                "Create a new client secret with `az ad app credential reset --id {app} --append` and set AZURE_CLIENT_SECRET to the printed password."
            ),
            (_, Creation::Automatic) => format!(
                "Edit the service connection and save it without changes ({}): Azure DevOps then issues a new secret on its app registration. \
                 Better, convert it to workload identity federation (Edit > Convert), which leaves no secret to expire.",
                self.where_to_edit()
            ),
            _ => format!(
                "Create a new secret on the app registration, keeping the current one until the connection uses the new value: \
                 `az ad app credential reset --id {app} --append` (or portal: Microsoft Entra ID > App registrations > {app} > \
                 Certificates & secrets > New client secret; copy the Value, not the Secret ID). Paste it as the service principal key \
                 and Verify and save ({}). Or move the connection to workload identity federation, which leaves no secret to expire.",
                self.where_to_edit()
            ),
        }
    }

    pub(super) fn rotate_certificate(&self) -> String {
        let app = self.app();
        let target = match self.origin {
            Origin::Local => "point AZURE_CLIENT_CERTIFICATE_PATH at the new PEM".to_string(),
            Origin::Pipeline => {
                format!(
                    "put the PEM (certificate and private key) into the connection and Verify and save ({})",
                    self.where_to_edit()
                )
            }
        };
        format!(
            "Add a new certificate to the app registration, keeping the current one until the connection uses the new one: \
             `az ad app credential reset --id {app} --create-cert --append` prints a PEM with certificate and key \
             (or upload your own with `--cert @new-cert.pem --append`); then {target}."
        )
    }
}

/// Microsoft recommends federation over secrets and certificates; how to get there
/// depends on how the connection was made.
pub(super) fn federation_advice(about: &About) -> String {
    let open = match &about.settings_page {
        Some(url) => format!("open the connection ({url})"),
        None => format!("open Project settings > Service connections > {}", about.label),
    };
    match about.creation {
        Creation::Automatic => format!(
            "Convert the connection to workload identity federation: {open} and choose Edit > Convert. \
             It then has nothing that expires."
        ),
        _ => format!(
            "Move the connection to workload identity federation: add a federated credential to app {} with the issuer and \
             subject Azure DevOps shows for the connection, then {open} and switch it to workload identity federation. \
             It then has nothing that expires.",
            about.app()
        ),
    }
}
