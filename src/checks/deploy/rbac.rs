//! Whether role assignments let a principal pull from a registry: ARM's action patterns
//! (`*` wildcards, `notActions`), inherited scopes, the registry's role assignment mode, and
//! the repository conditions of ABAC mode.

use serde_json::Value;

/// What AcrPull, AcrPush, Reader, Contributor and Owner grant in the legacy (RBAC) mode.
pub const PULL_ACTION: &str = "Microsoft.ContainerRegistry/registries/pull/read";
/// What the repository roles grant in ABAC mode; `pull/read` is not honoured there.
pub const ABAC_CONTENT_READ: &str = "Microsoft.ContainerRegistry/registries/repositories/content/read";
/// Granted with content/read by the repository roles (tags and manifests listed).
pub const ABAC_METADATA_READ: &str = "Microsoft.ContainerRegistry/registries/repositories/metadata/read";

/// ARM's action pattern: case-insensitive, `*` matches any run of characters, `/` included.
pub fn action_matches(pattern: &str, action: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    let action = action.to_ascii_lowercase();
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == action;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !action.starts_with(first) || action.len() < first.len() + last.len() || !action.ends_with(last) {
        return false;
    }
    let mut rest = &action[first.len()..action.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permission {
    pub actions: Vec<String>,
    pub not_actions: Vec<String>,
    pub data_actions: Vec<String>,
    pub not_data_actions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleDefinition {
    pub id: String,
    pub name: String,
    pub permissions: Vec<Permission>,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

impl RoleDefinition {
    /// From ARM's role definition (`properties.roleName`, `properties.permissions[]`).
    pub fn from_arm(v: &Value) -> Option<RoleDefinition> {
        let props = &v["properties"];
        let permissions = props["permissions"]
            .as_array()?
            .iter()
            .map(|p| Permission {
                actions: strings(&p["actions"]),
                not_actions: strings(&p["notActions"]),
                data_actions: strings(&p["dataActions"]),
                not_data_actions: strings(&p["notDataActions"]),
            })
            .collect();
        Some(RoleDefinition {
            id: v["id"].as_str().unwrap_or_default().to_string(),
            name: props["roleName"].as_str().unwrap_or("(unnamed role)").to_string(),
            permissions,
        })
    }

    /// Effective actions are the union over blocks of (actions − notActions).
    pub fn grants_action(&self, action: &str) -> bool {
        self.permissions.iter().any(|p| {
            p.actions.iter().any(|a| action_matches(a, action))
                && !p.not_actions.iter().any(|n| action_matches(n, action))
        })
    }

    pub fn grants_data_action(&self, action: &str) -> bool {
        self.permissions.iter().any(|p| {
            p.data_actions.iter().any(|a| action_matches(a, action))
                && !p.not_data_actions.iter().any(|n| action_matches(n, action))
        })
    }

    /// Pull in the legacy mode: `pull/read` as an action or a data action.
    pub fn grants_legacy_pull(&self) -> bool {
        self.grants_action(PULL_ACTION) || self.grants_data_action(PULL_ACTION)
    }

    pub fn grants_abac_pull(&self) -> bool {
        self.grants_data_action(ABAC_CONTENT_READ)
    }
}

/// The built-in roles that grant pull in the legacy mode, by definition GUID: used when the
/// definition itself cannot be read.
pub fn builtin_legacy_puller(definition_id: &str) -> Option<&'static str> {
    let guid = definition_id.rsplit('/').next().unwrap_or("").to_ascii_lowercase();
    match guid.as_str() {
        "7f951dda-4ed3-4680-a7ca-43fe172d538d" => Some("AcrPull"),
        "8311e382-0749-4cb8-b61a-304f252e45ec" => Some("AcrPush"),
        "acdd72a7-3385-48ef-bd42-f606fba81ae7" => Some("Reader"),
        "b24988ac-6180-42a0-ab88-20f7382dd24c" => Some("Contributor"),
        "8e3af657-a8ff-443c-a75c-2fe8c4bcb635" => Some("Owner"),
        _ => None,
    }
}

/// Whether an assignment at `scope` reaches `resource_id`: the resource itself or an ancestor
/// (resource group, subscription, management group, root). ARM lists a principal's
/// assignments "at, above or below" a scope; those below (a child resource) do not count.
pub fn scope_applies(scope: &str, resource_id: &str) -> bool {
    let scope = scope.trim().trim_end_matches('/').to_ascii_lowercase();
    if scope.is_empty() || scope.starts_with("/providers/microsoft.management/managementgroups/") {
        return true;
    }
    let resource = resource_id.trim_end_matches('/').to_ascii_lowercase();
    resource == scope || resource.starts_with(&format!("{scope}/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn role(actions: &[&str], not_actions: &[&str], data: &[&str]) -> RoleDefinition {
        RoleDefinition::from_arm(&json!({
            "id": "/providers/Microsoft.Authorization/roleDefinitions/x",
            "properties": {"roleName": "r", "permissions": [
                {"actions": actions, "notActions": not_actions, "dataActions": data, "notDataActions": []}
            ]}
        }))
        .unwrap()
    }

    #[test]
    fn wildcards_follow_arm() {
        assert!(action_matches("*", PULL_ACTION));
        assert!(action_matches("*/read", PULL_ACTION));
        assert!(action_matches("microsoft.containerregistry/*", PULL_ACTION));
        assert!(action_matches("Microsoft.ContainerRegistry/registries/*/read", PULL_ACTION));
        assert!(!action_matches("*/write", PULL_ACTION));
        assert!(!action_matches("Microsoft.ContainerRegistry/registries/push/write", PULL_ACTION));
        assert!(!action_matches("Microsoft.ContainerRegistry/registries/pull", PULL_ACTION));
        assert!(action_matches("a*b*c", "axxbyyc") && !action_matches("a*b*c", "acb"));
    }

    #[test]
    fn builtin_shapes_and_not_actions() {
        // Owner, Contributor (notActions on Authorization only), Reader, AcrPull.
        assert!(role(&["*"], &[], &[]).grants_legacy_pull());
        assert!(role(&["*"], &["Microsoft.Authorization/*/Write", "Microsoft.Authorization/*/Delete"], &[])
            .grants_legacy_pull());
        assert!(role(&["*/read"], &[], &[]).grants_legacy_pull());
        assert!(role(&[PULL_ACTION], &[], &[]).grants_legacy_pull());
        // A custom role that takes pull away again, and one with it as a data action.
        assert!(!role(&["Microsoft.ContainerRegistry/*"], &["*/pull/read"], &[]).grants_legacy_pull());
        assert!(role(&[], &[], &[PULL_ACTION]).grants_legacy_pull());
        // ABAC honours only the repository data actions.
        assert!(!role(&["*"], &[], &[]).grants_abac_pull());
        assert!(role(
            &[],
            &[],
            &[ABAC_CONTENT_READ, "Microsoft.ContainerRegistry/registries/repositories/metadata/read"]
        )
        .grants_abac_pull());
        assert!(role(&[], &[], &["Microsoft.ContainerRegistry/registries/repositories/*"]).grants_abac_pull());
        assert_eq!(builtin_legacy_puller("/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/7F951DDA-4ED3-4680-A7CA-43FE172D538D"), Some("AcrPull"));
    }

    #[test]
    fn inherited_scopes_apply_and_child_scopes_do_not() {
        let reg = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/contoso";
        for ok in [
            reg,
            "/subscriptions/S1/resourcegroups/RG",
            "/subscriptions/s1",
            "/providers/Microsoft.Management/managementGroups/root-mg",
            "/",
        ] {
            assert!(scope_applies(ok, reg), "{ok}");
        }
        for no in [
            "/subscriptions/s1/resourceGroups/rg2",
            "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/contoso2",
            &format!("{reg}/scopeMaps/pull"),
        ] {
            assert!(!scope_applies(no, reg), "{no}");
        }
    }
}
