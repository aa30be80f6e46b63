//! The platforms a target runs images on: AKS node pools (`osType`, `osSKU`, VM size) and App
//! Service (Linux or Windows containers).

use serde::Serialize;
use serde_json::Value;

/// A platform the image must provide, and the node pools that need it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WantedPlatform {
    pub os: String,
    pub architecture: String,
    /// Windows hosts run only images built for their build (`os.version` in an index).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    /// Node pool names (empty for a web app).
    pub pools: Vec<String>,
}

impl std::fmt::Display for WantedPlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.os_version {
            write!(f, " (os.version {v})")?;
        }
        if !self.pools.is_empty() {
            write!(f, " for node pool{} {}", if self.pools.len() > 1 { "s" } else { "" }, self.pools.join(", "))?;
        }
        Ok(())
    }
}

/// The CPU architecture of an Azure VM size. Azure names sizes
/// `<family><vCPUs>[-<constrained vCPUs>]<additive features>[_<accelerator>][_v<n>]`, and the
/// additive feature `p` marks an Arm64 processor (`Standard_D4ps_v5`, `Standard_E8pds_v5`,
/// `Standard_D2plds_v6`); every other size is x64.
pub fn vm_size_architecture(size: &str) -> &'static str {
    let name = size.trim();
    let name = match name.find('_') {
        Some(i) if name[..i].eq_ignore_ascii_case("standard") || name[..i].eq_ignore_ascii_case("basic") => {
            &name[i + 1..]
        }
        _ => name,
    };
    let body = name.split('_').next().unwrap_or("");
    let rest = body.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    let rest = rest.strip_prefix('-').map(|r| r.trim_start_matches(|c: char| c.is_ascii_digit())).unwrap_or(rest);
    let additive: String = rest.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
    if !body.is_empty() && additive.to_ascii_lowercase().contains('p') {
        "arm64"
    } else {
        "amd64"
    }
}

/// The Windows build an AKS `osSKU` runs, which a process-isolated Windows image must match.
/// `WindowsAnnual` follows the Annual Channel release of the day (23H2 was 25398, 24H2 is
/// 26100), so it names no build by itself.
pub fn windows_build(os_sku: &str) -> Option<&'static str> {
    match os_sku.to_ascii_lowercase().as_str() {
        "windows2019" => Some("10.0.17763"),
        "windows2022" => Some("10.0.20348"),
        "windows2025" => Some("10.0.26100"),
        _ => None,
    }
}

/// The build in a Windows node image version: `AKSWindows-2022-containerd-20348.2527.240612`
/// → `10.0.20348` (the first number of five digits after the image's name).
fn build_of_node_image(version: &str) -> Option<String> {
    let lower = version.to_ascii_lowercase();
    if !lower.starts_with("akswindows") {
        return None;
    }
    lower
        .split(['-', '.'])
        .skip(1)
        .find(|part| part.len() == 5 && part.chars().all(|c| c.is_ascii_digit()))
        .map(|build| format!("10.0.{build}"))
}

/// One wanted platform per distinct (os, architecture, build), from agent pool objects
/// (the `agentPools` list items, or the cluster's `agentPoolProfiles`).
pub fn aks_platforms(pools: &[Value]) -> Vec<WantedPlatform> {
    let mut out: Vec<WantedPlatform> = Vec::new();
    for pool in pools {
        let props = if pool["properties"].is_object() { &pool["properties"] } else { pool };
        let name = crate::sanitize::sanitize(pool["name"].as_str().unwrap_or("(unnamed)"));
        let os = props["osType"].as_str().unwrap_or("Linux").to_ascii_lowercase();
        let architecture = vm_size_architecture(props["vmSize"].as_str().unwrap_or("")).to_string();
        let os_version = if os == "windows" {
            props["osSKU"]
                .as_str()
                .and_then(windows_build)
                .map(str::to_string)
                .or_else(|| props["nodeImageVersion"].as_str().and_then(build_of_node_image))
        } else {
            None
        };
        match out.iter_mut().find(|w| w.os == os && w.architecture == architecture && w.os_version == os_version) {
            Some(w) => w.pools.push(name),
            None => out.push(WantedPlatform { os, architecture, os_version, pools: vec![name] }),
        }
    }
    out
}

/// App Service runs Linux containers on x64 (`kind` contains `linux`) and Windows containers
/// on x64 otherwise.
pub fn webapp_platform(kind: &str) -> WantedPlatform {
    let linux = kind.split(',').any(|k| k.trim().eq_ignore_ascii_case("linux"));
    WantedPlatform {
        os: if linux { "linux" } else { "windows" }.into(),
        architecture: "amd64".into(),
        os_version: None,
        pools: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arm64_sizes_carry_the_p_feature() {
        for arm in
            ["Standard_D4ps_v5", "Standard_E8pds_v5", "Standard_D2plds_v6", "standard_b2pts_v2", "Standard_E4-2ps_v5"]
        {
            assert_eq!(vm_size_architecture(arm), "arm64", "{arm}");
        }
        for x64 in [
            "Standard_DS2_v2",
            "Standard_D4s_v5",
            "Standard_NC24ads_A100_v4",
            "Standard_PB6s",
            "Standard_HB120rs_v3",
            "Standard_D2as_v5",
            "",
            "Standard_",
        ] {
            assert_eq!(vm_size_architecture(x64), "amd64", "{x64}");
        }
    }

    #[test]
    fn pools_group_by_platform() {
        let pools = vec![
            json!({"name": "system", "properties": {"osType": "Linux", "vmSize": "Standard_D4s_v5"}}),
            json!({"name": "arm", "properties": {"osType": "Linux", "vmSize": "Standard_D4ps_v5"}}),
            json!({"name": "user", "properties": {"osType": "Linux", "vmSize": "Standard_D8s_v5"}}),
            json!({"name": "win", "osType": "Windows", "osSKU": "Windows2022", "vmSize": "Standard_D4s_v5"}),
        ];
        let wanted = aks_platforms(&pools);
        let text: Vec<String> = wanted.iter().map(|w| w.to_string()).collect();
        assert_eq!(
            text,
            [
                "linux/amd64 for node pools system, user",
                "linux/arm64 for node pool arm",
                "windows/amd64 (os.version 10.0.20348) for node pool win"
            ]
        );
    }

    #[test]
    fn windows_builds_from_sku_or_node_image() {
        let pools = vec![
            json!({"name": "w19", "properties": {"osType": "Windows", "osSKU": "Windows2019", "vmSize": "Standard_D4s_v5"}}),
            json!({"name": "wac", "properties": {"osType": "Windows", "osSKU": "WindowsAnnual", "vmSize": "Standard_D4s_v5",
                "nodeImageVersion": "AKSWindows-23H2-gen2-25398.1189.241015"}}),
            json!({"name": "wno", "properties": {"osType": "Windows", "vmSize": "Standard_D4s_v5"}}),
        ];
        let builds: Vec<Option<String>> = aks_platforms(&pools).into_iter().map(|w| w.os_version).collect();
        assert_eq!(builds, [Some("10.0.17763".to_string()), Some("10.0.25398".to_string()), None]);
        assert_eq!(build_of_node_image("AKSUbuntu-2204gen2containerd-202405.03.0"), None);
    }

    #[test]
    fn web_app_kind() {
        assert_eq!(webapp_platform("app,linux,container").to_string(), "linux/amd64");
        assert_eq!(webapp_platform("functionapp,linux").os, "linux");
        assert_eq!(webapp_platform("app,container,windows").to_string(), "windows/amd64");
        assert_eq!(webapp_platform("app").os, "windows");
    }
}
