//! Platform matching the way container runtimes do it: names normalized (`x86_64` → `amd64`,
//! `aarch64` → `arm64`, arm variants), attestation entries of an index ignored.

use crate::registry_target::Platform;

pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// All four manifest types in one header: leaving one out makes registries answer
/// `MANIFEST_UNKNOWN` for a tag that exists.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

pub fn is_index(media_type: &str) -> bool {
    let base = media_type.split(';').next().unwrap_or("").trim();
    base == MEDIA_OCI_INDEX || base == MEDIA_DOCKER_LIST
}

/// `(os, architecture, variant)` normalized; the variant is empty when it is the default.
pub fn normalize(os: &str, arch: &str, variant: Option<&str>) -> (String, String, String) {
    let mut os = os.trim().to_ascii_lowercase();
    if os == "macos" {
        os = "darwin".into();
    }
    let variant = variant.unwrap_or("").trim().to_ascii_lowercase();
    let (arch, variant) = match arch.trim().to_ascii_lowercase().as_str() {
        "x86_64" | "x86-64" | "amd64" => ("amd64".to_string(), variant),
        "i386" | "386" => ("386".to_string(), variant),
        "aarch64" | "arm64" => {
            let v = if matches!(variant.as_str(), "8" | "v8") { String::new() } else { variant };
            ("arm64".to_string(), v)
        }
        "armhf" => ("arm".to_string(), "v7".to_string()),
        "armel" => ("arm".to_string(), "v6".to_string()),
        "arm" => {
            let v = match variant.as_str() {
                "" | "7" | "v7" => "v7".to_string(),
                "5" | "6" | "8" => format!("v{variant}"),
                other => other.to_string(),
            };
            ("arm".to_string(), v)
        }
        other => (other.to_string(), variant),
    };
    (os, arch, variant)
}

/// `linux/arm/v7` style, from a manifest's platform object.
pub fn describe(os: &str, arch: &str, variant: Option<&str>) -> String {
    match variant.filter(|v| !v.is_empty()) {
        Some(v) => format!("{os}/{arch}/{v}"),
        None => format!("{os}/{arch}"),
    }
}

/// Whether an image for `(os, arch, variant)` satisfies the wanted platform. A wanted
/// platform without a variant accepts any variant of that architecture.
pub fn satisfies(wanted: &Platform, os: &str, arch: &str, variant: Option<&str>) -> bool {
    let (wo, wa, wv) = normalize(&wanted.os, &wanted.architecture, wanted.variant.as_deref());
    let (o, a, v) = normalize(os, arch, variant);
    wo == o && wa == a && (wanted.variant.is_none() || wv == v)
}

/// A platform an image offers: an index entry's `platform`, or a single image's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offered {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    /// `os.version`, which Windows images carry (`10.0.20348.2527`).
    pub os_version: Option<String>,
}

impl Offered {
    pub fn from_json(p: &serde_json::Value) -> Offered {
        let text = |k: &str| p.get(k).and_then(|v| v.as_str()).map(str::to_string);
        Offered {
            os: text("os").unwrap_or_default(),
            architecture: text("architecture").unwrap_or_default(),
            variant: text("variant"),
            os_version: text("os.version"),
        }
    }

    /// `linux/arm/v7`, `windows/amd64 (os.version 10.0.17763.5936)`.
    pub fn describe(&self) -> String {
        let base = describe(&self.os, &self.architecture, self.variant.as_deref());
        match &self.os_version {
            Some(v) => format!("{base} (os.version {v})"),
            None => base,
        }
    }
}

/// The `--platform` value of a `docker buildx build` that keeps what an image offers and adds
/// `wanted`: `os/arch[/variant]` only (buildx takes no `os.version`, and two Windows builds of
/// one architecture are one platform to it), each once, and only entries made of the
/// characters a platform has, so a registry's text never becomes part of the command.
pub fn buildx_platforms(offered: &[Offered], wanted: &Platform) -> String {
    let plain = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    let mut out: Vec<String> = Vec::new();
    let entries = offered
        .iter()
        .map(|o| (o.os.as_str(), o.architecture.as_str(), o.variant.as_deref()))
        .chain(std::iter::once((wanted.os.as_str(), wanted.architecture.as_str(), wanted.variant.as_deref())));
    for (os, arch, variant) in entries {
        let variant = variant.filter(|v| !v.is_empty());
        if !(plain(os) && plain(arch) && variant.is_none_or(plain)) {
            continue;
        }
        let value = describe(os, arch, variant);
        if !out.contains(&value) {
            out.push(value);
        }
    }
    out.join(",")
}

/// Whether an image fits a wanted platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fit {
    Yes,
    /// Same os and architecture, but whether the Windows build fits cannot be told; why.
    Unsure(String),
    No,
}

/// `10.0.20348.2527` → (10, 0, 20348): the revision does not matter for compatibility.
fn windows_build(version: &str) -> Option<(u32, u32, u32)> {
    let mut parts = version.trim().split('.').map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}

/// Windows Server 2022's build: the first whose hosts may run older-build containers with
/// process isolation (from the previous long-term release's build up to their own).
const LTSC2022_BUILD: u32 = 20348;

/// Matches like a Windows container runtime when the wanted platform names a host build:
/// the image's `os.version` must be that build. An entry without `os.version`, or an older
/// build a 2022-or-later host may accept, is not proven either way.
pub fn fit(wanted: &Platform, offered: &[Offered]) -> Fit {
    let same: Vec<&Offered> =
        offered.iter().filter(|o| satisfies(wanted, &o.os, &o.architecture, o.variant.as_deref())).collect();
    if same.is_empty() {
        return Fit::No;
    }
    let Some(host) = wanted.os_version.as_deref().and_then(windows_build) else { return Fit::Yes };
    let builds: Vec<Option<(u32, u32, u32)>> =
        same.iter().map(|o| o.os_version.as_deref().and_then(windows_build)).collect();
    if builds.contains(&Some(host)) {
        return Fit::Yes;
    }
    let mut unsure = Vec::new();
    for (o, build) in same.iter().zip(builds) {
        match build {
            None => unsure.push(format!("{} names no Windows build", o.describe())),
            Some(c)
                if c.0 == host.0
                    && c.1 == host.1
                    && host.2 > LTSC2022_BUILD
                    && (LTSC2022_BUILD..host.2).contains(&c.2) =>
            {
                unsure.push(format!(
                    "{} is an older build that a {}.{}.{} host may run only under its compatibility rules",
                    o.describe(),
                    host.0,
                    host.1,
                    host.2
                ))
            }
            Some(_) => {}
        }
    }
    if unsure.is_empty() {
        Fit::No
    } else {
        Fit::Unsure(unsure.join("; "))
    }
}

/// The platforms an index offers, attestation entries left out, in index order.
pub fn index_platforms(index: &serde_json::Value) -> Vec<Offered> {
    let Some(entries) = index.get("manifests").and_then(|m| m.as_array()) else { return Vec::new() };
    let mut out = Vec::new();
    for entry in entries {
        let annotation = entry
            .get("annotations")
            .and_then(|a| a.get("vnd.docker.reference.type"))
            .and_then(|t| t.as_str())
            .unwrap_or("");
        if annotation == "attestation-manifest" {
            continue;
        }
        let Some(p) = entry.get("platform") else { continue };
        let item = Offered::from_json(p);
        if item.os.is_empty()
            || item.architecture.is_empty()
            || (item.os == "unknown" && item.architecture == "unknown")
        {
            continue;
        }
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(os: &str, arch: &str, variant: Option<&str>) -> Platform {
        Platform { os: os.into(), architecture: arch.into(), variant: variant.map(str::to_string), os_version: None }
    }

    #[test]
    fn normalization_follows_the_runtimes() {
        assert!(satisfies(&p("linux", "amd64", None), "linux", "x86_64", None));
        assert!(satisfies(&p("linux", "arm64", Some("v8")), "linux", "arm64", None));
        assert!(satisfies(&p("linux", "arm64", None), "linux", "aarch64", Some("v8")));
        assert!(satisfies(&p("linux", "arm", Some("v7")), "linux", "arm", None));
        assert!(satisfies(&p("linux", "arm", None), "linux", "arm", Some("v6")));
        assert!(!satisfies(&p("linux", "arm", Some("v6")), "linux", "arm", Some("v7")));
        assert!(!satisfies(&p("windows", "amd64", None), "linux", "amd64", None));
        assert!(satisfies(&p("darwin", "arm64", None), "macOS", "arm64", None));
    }

    #[test]
    fn attestations_are_not_platforms() {
        let index = serde_json::json!({"manifests": [
            {"platform": {"os": "linux", "architecture": "amd64"}},
            {"platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
            {"platform": {"os": "unknown", "architecture": "unknown"},
             "annotations": {"vnd.docker.reference.type": "attestation-manifest"}},
        ]});
        let found = index_platforms(&index);
        assert_eq!(found.len(), 2);
        assert_eq!(found[1].describe(), "linux/arm/v7");
        assert!(is_index("application/vnd.oci.image.index.v1+json; charset=utf-8"));
        assert!(!is_index(MEDIA_DOCKER_MANIFEST));
    }

    #[test]
    fn the_buildx_platform_list_holds_platforms_only() {
        let index = serde_json::json!({"manifests": [
            {"platform": {"os": "windows", "architecture": "amd64", "os.version": "10.0.17763.5936"}},
            {"platform": {"os": "windows", "architecture": "amd64", "os.version": "10.0.20348.2527"}},
            {"platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
            {"platform": {"os": "linux", "architecture": "amd64 --push; curl x"}},
        ]});
        let offered = index_platforms(&index);
        let wanted = Platform { os_version: Some("10.0.26100".into()), ..p("windows", "arm64", None) };
        let value = buildx_platforms(&offered, &wanted);
        assert_eq!(value, "windows/amd64,linux/arm/v7,windows/arm64");
        assert!(!value.contains("os.version") && !value.contains(' '), "{value}");
        assert_eq!(buildx_platforms(&[], &p("linux", "amd64", None)), "linux/amd64");
    }

    #[test]
    fn windows_hosts_need_their_build() {
        let index = serde_json::json!({"manifests": [
            {"platform": {"os": "windows", "architecture": "amd64", "os.version": "10.0.17763.5936"}},
            {"platform": {"os": "linux", "architecture": "amd64"}},
        ]});
        let offered = index_platforms(&index);
        assert_eq!(offered[0].describe(), "windows/amd64 (os.version 10.0.17763.5936)");
        let host = |v: &str| Platform { os_version: Some(v.into()), ..p("windows", "amd64", None) };
        assert_eq!(fit(&host("10.0.17763"), &offered), Fit::Yes);
        assert_eq!(fit(&host("10.0.20348"), &offered), Fit::No);
        assert_eq!(fit(&p("windows", "amd64", None), &offered), Fit::Yes, "no build wanted: os/arch decide");
        // A 2022 image on a 2025 host: containerd may accept it; not proven either way.
        let ltsc2022 = vec![Offered::from_json(
            &serde_json::json!({"os": "windows", "architecture": "amd64", "os.version": "10.0.20348.2527"}),
        )];
        assert!(matches!(fit(&host("10.0.26100"), &ltsc2022), Fit::Unsure(_)));
        assert_eq!(fit(&host("10.0.17763"), &ltsc2022), Fit::No, "a newer image never runs on an older host");
        let unversioned = vec![Offered::from_json(&serde_json::json!({"os": "windows", "architecture": "amd64"}))];
        assert!(matches!(fit(&host("10.0.20348"), &unversioned), Fit::Unsure(_)));
    }
}
