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

/// The platforms an index offers, attestation entries left out, in index order.
pub fn index_platforms(index: &serde_json::Value) -> Vec<(String, String, Option<String>)> {
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
        let os = p.get("os").and_then(|v| v.as_str()).unwrap_or("");
        let arch = p.get("architecture").and_then(|v| v.as_str()).unwrap_or("");
        if os.is_empty() || arch.is_empty() || (os == "unknown" && arch == "unknown") {
            continue;
        }
        let variant = p.get("variant").and_then(|v| v.as_str()).map(str::to_string);
        let item = (os.to_string(), arch.to_string(), variant);
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
        Platform { os: os.into(), architecture: arch.into(), variant: variant.map(str::to_string) }
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
        assert_eq!(describe(&found[1].0, &found[1].1, found[1].2.as_deref()), "linux/arm/v7");
        assert!(is_index("application/vnd.oci.image.index.v1+json; charset=utf-8"));
        assert!(!is_index(MEDIA_DOCKER_MANIFEST));
    }
}
