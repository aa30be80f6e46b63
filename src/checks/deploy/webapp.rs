//! An App Service web app (or slot) as a deployment target: it pulls with a managed identity
//! when `acrUseManagedIdentityCreds` is set (the user-assigned one `acrUserManagedIdentityID`
//! names, else the system-assigned one), otherwise with the credentials in its app settings
//! (`DOCKER_REGISTRY_SERVER_USERNAME` / `_PASSWORD`); the registry firewall sees its outbound
//! addresses unless it pulls over its integrated virtual network.

use serde_json::{json, Map, Value};

use crate::azure::arm::ArmClient;
use crate::check::{Context, TargetOutcome};
use crate::codes::Code;
use crate::connections::ServiceConnection;
use crate::deploy_target::DeployTarget;
use crate::finding::Finding;
use crate::sanitize::sanitize;

use super::network::{parse_address_list, vnet_of_subnet};
use super::reach::{self, Egress, Reach};
use super::registry::{self, Registry, REGISTRY_API};
use super::{
    clean_id, facts, image, merge, not_verified, permission_outcome, platform, registry_not_found, unreadable, Puller,
};

pub const WEB_API: &str = "2023-12-01";

/// The registry-related app settings; the password is registered as a secret on reading.
#[derive(Debug, Default)]
struct RegistrySettings {
    url: Option<String>,
    username: Option<String>,
    password: Option<crate::secret::Secret>,
    pull_over_vnet: bool,
}

fn read_settings(ctx: &Context, body: &Value) -> RegistrySettings {
    let props = body["properties"].as_object().cloned().unwrap_or_else(Map::new);
    let get = |k: &str| props.get(k).and_then(|v| v.as_str()).map(str::trim).filter(|v| !v.is_empty());
    RegistrySettings {
        url: get("DOCKER_REGISTRY_SERVER_URL").map(str::to_string),
        username: get("DOCKER_REGISTRY_SERVER_USERNAME").map(str::to_string),
        password: get("DOCKER_REGISTRY_SERVER_PASSWORD").map(|p| ctx.redactor.secret(p)),
        pull_over_vnet: get("WEBSITE_PULL_IMAGE_OVER_VNET").is_some_and(|v| v.eq_ignore_ascii_case("true")),
    }
}

/// `https://contoso.azurecr.io/` → `contoso.azurecr.io`.
fn server_host(url: &str) -> String {
    let host = url.split_once("://").map(|(_, h)| h).unwrap_or(url);
    host.split('/').next().unwrap_or(host).to_ascii_lowercase()
}

pub async fn check(
    ctx: &Context,
    arm: &ArmClient<'_>,
    conn: &ServiceConnection,
    target: &DeployTarget,
    acr: bool,
) -> TargetOutcome {
    let id = target.resource.to_path();
    let (config_path, settings_path) = (format!("{id}/config/web"), format!("{id}/config/appsettings/list"));
    let (site, config, app_settings, lookup) =
        tokio::join!(arm.get(&id, WEB_API), arm.get(&config_path, WEB_API), arm.post(&settings_path, WEB_API), async {
            if acr {
                Some(registry::find(arm, target, conn).await)
            } else {
                None
            }
        });
    let mut out = TargetOutcome::default();
    // Secrets first: nothing below may see the password unregistered.
    let settings = app_settings.as_ref().ok().map(|body| read_settings(ctx, body));
    let site = match site {
        Ok(s) => s,
        Err(e) => {
            out.findings.push(unreadable("web app", &id, conn, &e));
            return out;
        }
    };
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            out.findings.push(unreadable("web app configuration", &format!("{id}/config/web"), conn, &e));
            return out;
        }
    };
    let props = &site["properties"];
    let cfg = &config["properties"];
    let wanted = vec![platform::webapp_platform(site["kind"].as_str().unwrap_or("app"))];
    let registry = match lookup {
        Some(Ok(r)) => Some(r),
        Some(Err(missing)) => {
            out.findings.push(registry_not_found(&target.image.host(), missing));
            None
        }
        None => None,
    };

    let app = target.resource.segments[0].1.clone();
    let slot = target.resource.segments.get(1).map(|(_, s)| s.clone());
    let names = Names { rg: target.resource.resource_group.clone(), app, slot, id: id.clone() };

    let (puller, pulling_fact) = pulling_identity(&site, cfg, &names, &mut out);
    merge(
        &mut out,
        facts(vec![
            ("registry", registry.as_ref().map(|r| json!(r.id)).unwrap_or(Value::Null)),
            ("wantedPlatforms", serde_json::to_value(&wanted).unwrap_or_default()),
            ("pullingIdentity", pulling_fact),
        ]),
    );

    let app_vnet = props["virtualNetworkSubnetId"].as_str().map(clean_id).as_deref().and_then(vnet_of_subnet);
    let pulls_over_vnet = app_vnet.is_some()
        && (props["vnetImagePullEnabled"].as_bool() == Some(true)
            || props["outboundVnetRouting"]["imagePullTraffic"].as_bool() == Some(true)
            || settings.as_ref().is_some_and(|s| s.pull_over_vnet));
    let egress = match (&app_vnet, pulls_over_vnet) {
        (Some(vnet), true) => Egress::Unknown(format!(
            "the app pulls through virtual network {}, whose egress address (NAT gateway, firewall) the app does not name",
            sanitize(vnet)
        )),
        _ => {
            let mut ips = parse_address_list(props["possibleOutboundIpAddresses"].as_str().unwrap_or(""));
            for ip in parse_address_list(props["outboundIpAddresses"].as_str().unwrap_or("")) {
                if !ips.contains(&ip) {
                    ips.push(ip);
                }
            }
            Egress::Addresses(ips)
        }
    };
    let reach = Reach {
        vnets: if pulls_over_vnet { app_vnet.clone().into_iter().collect() } else { Vec::new() },
        private_capable: pulls_over_vnet,
        managed_vnet_group: None,
        egress,
        unused_vnet: if pulls_over_vnet { None } else { app_vnet.clone() },
        target_id: id.clone(),
        subscription: target.resource.subscription.clone(),
        is_webapp: true,
    };

    let image_part = image::resolve_image(ctx, &target.image, &wanted);
    let access_part = async {
        let Some(reg) = &registry else { return TargetOutcome::default() };
        match &puller {
            Some(who) => {
                let perm = registry::pull_permission(arm, reg, &who.object_id, &target.image.repository).await;
                permission_outcome(reg, who, &target.image.repository, perm)
            }
            None if cfg["acrUseManagedIdentityCreds"].as_bool() == Some(true) => TargetOutcome::default(),
            None => credentials(ctx, arm, reg, settings.as_ref(), app_settings.as_ref().err(), &names).await,
        }
    };
    let network_part = async {
        match &registry {
            Some(reg) => reach::check(arm, reg, &reach).await,
            None => TargetOutcome::default(),
        }
    };
    let (image_out, access_out, network_out) = tokio::join!(image_part, access_part, network_part);
    for part in [access_out, network_out, image_out] {
        merge(&mut out, part);
    }
    out
}

struct Names {
    rg: String,
    app: String,
    slot: Option<String>,
    id: String,
}

impl Names {
    /// `-g rg -n app [--slot s]` for `az webapp` commands.
    fn args(&self) -> String {
        let slot = self.slot.as_ref().map(|s| format!(" --slot {s}")).unwrap_or_default();
        format!("-g {} -n {}{slot}", self.rg, self.app)
    }
}

/// The managed identity the app pulls with (when `acrUseManagedIdentityCreds` is set);
/// DEP005 when that identity is not there.
fn pulling_identity(site: &Value, cfg: &Value, names: &Names, out: &mut TargetOutcome) -> (Option<Puller>, Value) {
    if cfg["acrUseManagedIdentityCreds"].as_bool() != Some(true) {
        return (None, json!({"type": "appSettingsCredentials"}));
    }
    let identity = &site["identity"];
    let enable = format!(
        "az webapp config set {} --generic-configurations '{{\"acrUseManagedIdentityCreds\": true}}'",
        names.args()
    );
    match cfg["acrUserManagedIdentityID"].as_str().map(str::trim).filter(|s| !s.is_empty()) {
        Some(client_id) => {
            let found = identity["userAssignedIdentities"].as_object().and_then(|ids| {
                ids.iter().find(|(_, v)| v["clientId"].as_str().is_some_and(|c| c.eq_ignore_ascii_case(client_id)))
            });
            match found.and_then(|(rid, v)| v["principalId"].as_str().map(|p| (clean_id(rid), sanitize(p)))) {
                Some((rid, principal)) => (
                    Some(Puller {
                        object_id: principal.clone(),
                        label: format!(
                            "the user-assigned identity {} of the app",
                            sanitize(rid.rsplit('/').next().unwrap_or(&rid))
                        ),
                        assignee: principal.clone(),
                        aks: None,
                    }),
                    json!({"type": "userAssigned", "clientId": client_id, "principalId": principal, "resourceId": rid}),
                ),
                None => {
                    out.findings.push(
                        Finding::new(
                            Code::DEP005,
                            format!(
                                "acrUserManagedIdentityID names the client id {}, but no user-assigned identity with that client id \
                                 is assigned to the app, so image pulls get no token",
                                sanitize(client_id)
                            ),
                        )
                        .remedy(format!(
                            "Assign the identity to the app: `az webapp identity assign {} --identities <identity resource id>`, or point \
                             acrUserManagedIdentityID at an assigned one: `az webapp config set {} --generic-configurations \
                             '{{\"acrUserManagedIdentityID\": \"<client id>\"}}'`",
                            names.args(),
                            names.args()
                        ))
                        .data("acrUserManagedIdentityID", sanitize(client_id)),
                    );
                    (None, json!({"type": "userAssigned", "clientId": client_id, "principalId": null}))
                }
            }
        }
        None => {
            let system = identity["type"].as_str().is_some_and(|t| t.to_ascii_lowercase().contains("systemassigned"));
            match identity["principalId"].as_str().filter(|_| system).map(sanitize) {
                Some(principal) => (
                    Some(Puller {
                        object_id: principal.to_string(),
                        label: format!("the system-assigned identity of web app {}", sanitize(&names.app)),
                        assignee: principal.to_string(),
                        aks: None,
                    }),
                    json!({"type": "systemAssigned", "principalId": principal}),
                ),
                None => {
                    out.findings.push(
                        Finding::new(
                            Code::DEP005,
                            "acrUseManagedIdentityCreds is true but the app has no system-assigned identity (and \
                             acrUserManagedIdentityID names no user-assigned one), so image pulls get no token",
                        )
                        .remedy(format!(
                            "Turn on the system-assigned identity and let it pull: `az webapp identity assign {}`, then \
                             `az role assignment create --assignee <principalId> --role AcrPull --scope <registry id>`; \
                             `{enable}` keeps managed-identity pulls on",
                            names.args()
                        ))
                        .data("resourceId", names.id.clone()),
                    );
                    (None, json!({"type": "systemAssigned", "principalId": null}))
                }
            }
        }
    }
}

/// The app pulls with credentials from its app settings: admin credentials must match the
/// registry's enabled admin user; others cannot be verified here.
async fn credentials(
    ctx: &Context,
    arm: &ArmClient<'_>,
    registry: &Registry,
    settings: Option<&RegistrySettings>,
    settings_error: Option<&crate::azure::arm::ArmError>,
    names: &Names,
) -> TargetOutcome {
    let mut out = TargetOutcome::default();
    let reg = sanitize(&registry.name);
    let use_identity = format!(
        "Pull with the app's managed identity instead of a password: `az webapp identity assign {args}`, \
         `az role assignment create --assignee <principalId> --role AcrPull --scope {id}`, then \
         `az webapp config set {args} --generic-configurations '{{\"acrUseManagedIdentityCreds\": true}}'`",
        args = names.args(),
        id = registry.id
    );
    let Some(settings) = settings else {
        let why = settings_error.map(|e| e.to_string()).unwrap_or_default();
        out.findings.push(not_verified(
"registryCredentials",
            format!(
                "the app does not pull with a managed identity, and its app settings (which hold the registry credentials) cannot \
                 be read: {why}"
            ),
            format!(
                "Reading app settings needs Microsoft.Web/sites/config/list/action (Website Contributor on {}); or: {use_identity}",
                names.id
            ),
            true,
        ));
        return out;
    };
    let for_other = settings.url.as_deref().map(server_host).filter(|h| *h != registry.login_server);
    match (&settings.username, &settings.password, for_other) {
        (_, _, Some(other)) if !registry.anonymous_pull_enabled => out.findings.push(
            Finding::new(
                Code::DEP005,
                format!(
                    "the app's registry credentials are for `{}` (DOCKER_REGISTRY_SERVER_URL), not for {}, and it does not pull \
                     with a managed identity: pulls from {reg} are anonymous and fail with `unauthorized`",
                    sanitize(&other),
                    sanitize(&registry.login_server)
                ),
            )
            .remedy(use_identity),
        ),
        (Some(user), Some(password), None) if user.eq_ignore_ascii_case(&registry.name) => {
            if !registry.admin_user_enabled {
                out.findings.push(
                    Finding::new(
                        Code::DEP006,
                        format!(
                            "the app pulls from {reg} with the admin user `{}`, but the registry's admin user is disabled \
                             (adminUserEnabled false): pulls fail with `unauthorized`",
                            sanitize(user)
                        ),
                    )
                    .remedy(format!(
                        "{use_identity}; or enable the admin user (`az acr update -n {reg} --admin-enabled true`) and store its password: \
                         `az webapp config appsettings set {} --settings DOCKER_REGISTRY_SERVER_PASSWORD=<password from az acr credential show -n {reg}>`",
                        names.args()
                    ))
                    .data("reason", "adminDisabled")
                    .data("registry", registry.id.clone()),
                );
                return out;
            }
            match arm.post(&format!("{}/listCredentials", registry.id), REGISTRY_API).await {
                Ok(body) => {
                    let current: Vec<_> = body["passwords"]
                        .as_array()
                        .map(|a| a.iter().filter_map(|p| p["value"].as_str()).map(|v| ctx.redactor.secret(v)).collect())
                        .unwrap_or_default();
                    if current.iter().any(|p| p.expose() == password.expose()) {
                        out.proven.push(format!("the app's admin credentials match a current admin password of {reg}"));
                    } else {
                        out.findings.push(
                            Finding::new(
                                Code::DEP006,
                                format!(
                                    "the admin password in the app's DOCKER_REGISTRY_SERVER_PASSWORD is neither of {reg}'s current \
                                     admin passwords (it was regenerated): pulls fail with `unauthorized`"
                                ),
                            )
                            .remedy(format!(
                                "{use_identity}; or store the current password: `az webapp config appsettings set {} --settings \
                                 DOCKER_REGISTRY_SERVER_PASSWORD=<password from az acr credential show -n {reg}>`",
                                names.args()
                            ))
                            .data("reason", "passwordStale")
                            .data("registry", registry.id.clone()),
                        );
                    }
                }
                Err(e) => out.findings.push(not_verified(
"registryCredentials",
                    format!("the app pulls with {reg}'s admin user, whose current passwords cannot be read to compare: {e}"),
                    format!(
                        "Comparing needs Microsoft.ContainerRegistry/registries/listCredentials/action (Contributor on {}); or: {use_identity}",
                        registry.id
                    ),
                    true,
                )),
            }
        }
        (Some(user), Some(_), None) => out.findings.push(not_verified(
"registryCredentials",
            format!(
                "the app pulls from {reg} with the credentials of `{}` (a service principal or token), which Azure Resource Manager \
                 cannot verify",
                sanitize(user)
            ),
            format!(
                "Prove them with a `registries` line for the image and those credentials, or: {use_identity}"
            ),
            true,
        )),
        (Some(_), None, None) | (None, Some(_), None) => out.findings.push(
            Finding::new(
                Code::DEP005,
                "the app has only one of DOCKER_REGISTRY_SERVER_USERNAME and DOCKER_REGISTRY_SERVER_PASSWORD and does not pull \
                 with a managed identity",
            )
            .remedy(use_identity),
        ),
        _ if registry.anonymous_pull_enabled => {
            out.proven.push(format!("{reg} allows anonymous pull"));
        }
        _ => out.findings.push(
            Finding::new(
                Code::DEP005,
                format!(
                    "the app neither pulls with a managed identity (acrUseManagedIdentityCreds is not true) nor has registry \
                     credentials in its app settings, and {reg} does not allow anonymous pull: pulls fail with `unauthorized`"
                ),
            )
            .remedy(use_identity),
        ),
    }
    out
}
