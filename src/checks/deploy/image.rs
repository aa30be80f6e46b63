//! The image a deployment target will pull: the static guard on its registry host (run
//! before any request), and the resolution of the image against the target's platforms.

use crate::check::{Context, TargetOutcome};
use crate::checks::registry::chain::{self, Shared, TargetSpec};
use crate::checks::registry::server::ServerOrigin;
use crate::codes::Code;
use crate::codes::Severity;
use crate::deploy_target::ImageRef;
use crate::finding::Finding;
use crate::registry_target::{Intent, Platform, Reference};
use crate::sanitize::sanitize;

use super::not_verified;
use super::platform::WantedPlatform;

/// Azure Container Registry login-server suffixes (public, China, US Government clouds).
pub const ACR_SUFFIXES: [&str; 3] = ["azurecr.io", "azurecr.cn", "azurecr.us"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryHost {
    /// `<name>.azurecr.io` and the sovereign-cloud equivalents.
    Acr,
    /// Looks like a mistyped ACR domain (`azureacr.io`, `azurecr.com`, `azurcr.io`).
    NearMiss { suggestion: String },
    /// One bare word (`contoso/web`): the runtime reads it as a Docker Hub namespace.
    MissingSuffix { suggestion: String },
    /// Some other registry.
    Other,
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb { prev } else { 1 + prev.min(cur).min(row[j]) };
            prev = cur;
        }
    }
    row[b.len()]
}

/// Classifies a lower-case host (port allowed) without any network access.
pub fn classify_host(host: &str) -> RegistryHost {
    let name = host.split(':').next().unwrap_or(host).trim_end_matches('.');
    if ACR_SUFFIXES.iter().any(|s| name.ends_with(&format!(".{s}"))) {
        return RegistryHost::Acr;
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() == 1 {
        if host.contains(':') || name == "localhost" || name.is_empty() {
            return RegistryHost::Other;
        }
        return RegistryHost::MissingSuffix { suggestion: format!("{name}.azurecr.io") };
    }
    let registry = labels[0];
    let suggestion = format!("{registry}.azurecr.io");
    if labels.contains(&"azurecr") {
        // `contoso.azurecr.com`, `contoso.azurecr.io.evil.com`: ACR's label, a foreign domain.
        return RegistryHost::NearMiss { suggestion };
    }
    let suffix = labels[labels.len().saturating_sub(2)..].join(".");
    let second_level = labels[labels.len() - 2];
    let close_suffix = ACR_SUFFIXES.iter().any(|s| (1..=2).contains(&edit_distance(&suffix, s)));
    let close_label = (1..=2).contains(&edit_distance(second_level, "azurecr"));
    if close_suffix || close_label {
        return RegistryHost::NearMiss { suggestion };
    }
    RegistryHost::Other
}

/// The static problems of an image reference, reported before any request is made. The
/// flag says whether the registry is an ACR the deploy check can look up.
pub fn validate(image: &ImageRef) -> (Vec<Finding>, bool) {
    let written = sanitize(&image.to_string());
    let mut findings = Vec::new();
    if image.server.contains("://") {
        findings.push(
            Finding::new(
                Code::REG001,
                format!(
                    "the image `{written}` has a URL scheme; a runtime pulls `<registry>/<repository>`, never a URL"
                ),
            )
            .remedy(format!(
                "Write the image without the scheme: `image={}/{}{}`",
                image.host(),
                image.repository,
                image.tag_or_digest()
            ))
            .data("image", written.clone()),
        );
    }
    if image.server.chars().any(|c| c.is_ascii_uppercase()) || image.repository.chars().any(|c| c.is_ascii_uppercase())
    {
        findings.push(
            Finding::new(
                Code::REG001,
                format!("the image `{written}` has uppercase letters; registries and repositories are lower-case, and runtimes refuse it with `invalid reference format: repository name must be lowercase`"),
            )
            .remedy(format!(
                "Write the image in lower case: `image={}/{}{}`",
                image.host(),
                image.repository.to_ascii_lowercase(),
                image.tag_or_digest()
            ))
            .data("image", written.clone()),
        );
    }
    let host = image.host();
    let safe_host = sanitize(&host);
    match classify_host(&host) {
        RegistryHost::Acr => (findings, true),
        RegistryHost::NearMiss { suggestion } => {
            let message = format!("the image registry `{safe_host}` is not an Azure Container Registry domain but looks like a typo of one; the target would pull from (and send credentials to) whoever owns `{safe_host}`");
            let fix = "Use the registry's login server, e.g.";
            let tail = "; `az acr show --name <registry> --query loginServer -o tsv` prints it";
            findings.push(host_typo(image, &safe_host, &suggestion, message, fix, tail));
            (findings, false)
        }
        RegistryHost::MissingSuffix { suggestion } => {
            let message = format!("`{safe_host}` in the image `{written}` has no domain, so a runtime reads it as the Docker Hub repository `docker.io/{safe_host}/{}`", image.repository);
            let fix = "Write the registry's full login server, e.g.";
            findings.push(host_typo(image, &safe_host, &suggestion, message, fix, ""));
            (findings, false)
        }
        RegistryHost::Other => {
            findings.push(not_verified(
"registry",
                format!(
                    "the image registry `{safe_host}` is not an Azure Container Registry, so its pull permission and network rules \
                     are not checked; the target pulls it with its own pull secret or anonymously"
                ),
                "Prove the pull with a `registries` line for the image and the credential the target uses.".into(),
                false,
            ));
            (findings, false)
        }
    }
}

/// REG002 for an image host that is not the registry the author meant.
fn host_typo(image: &ImageRef, safe_host: &str, suggestion: &str, message: String, fix: &str, tail: &str) -> Finding {
    Finding::new(Code::REG002, message)
        .remedy(format!("{fix} `image={}/{}{}`{tail}", sanitize(suggestion), image.repository, image.tag_or_digest()))
        .data("server", safe_host.to_string())
        .data("suggestion", sanitize(suggestion))
}

/// Proves that `image` resolves (tag or digest exists) and offers the platforms the target
/// runs, by running the registry check's chain for it with the pipeline's own credential for
/// that registry (typo guard, DNS, TLS, authentication, manifest, platform).
///
/// Each wanted platform is checked; a platform the image lacks is an error when the image
/// offers none of the wanted ones, and a warning naming the node pools otherwise (pods must
/// be kept off those pools). A Windows host's build must be the image's `os.version` build;
/// when the host's build is unknown, or the chain could not tell, the platform is not proven.
pub async fn resolve_image(ctx: &Context, image: &ImageRef, wanted: &[WantedPlatform]) -> TargetOutcome {
    // Other registries were reported by `validate`: the target pulls them with credentials
    // the deploy check cannot see.
    if classify_host(&image.host()) != RegistryHost::Acr {
        return TargetOutcome::default();
    }
    let shared = Shared::new(ctx);
    let spec = |platform: Option<Platform>| TargetSpec {
        name: image.to_string(),
        source: "deployTargets".into(),
        server_raw: image.server.clone(),
        origin: ServerOrigin::Line,
        repository: Some(image.repository.clone()),
        reference: Some(image.reference.clone().unwrap_or_else(|| Reference::Tag("latest".into()))),
        intent: Intent::Pull,
        platform,
        credential: None,
        acr_connection: false,
    };
    if wanted.is_empty() {
        return label(chain::run(ctx, &shared, spec(None)).await, image);
    }
    let runs = wanted.iter().map(|w| {
        let platform = Platform {
            os: w.os.clone(),
            architecture: w.architecture.clone(),
            variant: None,
            os_version: w.os_version.clone(),
        };
        chain::run(ctx, &shared, spec(Some(platform)))
    });
    let outcomes = futures_util::future::join_all(runs).await;
    let lacks = |o: &TargetOutcome| o.findings.iter().any(|f| f.code == Code::REG015);
    let any_platform_present =
        outcomes.iter().any(|o| !lacks(o) && !o.findings.iter().any(|f| f.severity == Severity::Error));
    let mut merged = TargetOutcome::default();
    for (outcome, want) in outcomes.into_iter().zip(wanted) {
        let clean = !outcome.findings.iter().any(|f| f.severity == Severity::Error);
        // A platform the chain could not establish is not a pass here.
        let unverified: Vec<String> = outcome
            .extra
            .get("unverified")
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|s| s.as_str().filter(|s| s.starts_with("platform:")).map(sanitize)).collect())
            .unwrap_or_default();
        for what in unverified {
            merged.findings.push(
                not_verified(
                    "image",
                    format!("whether the image runs on {want} is not proven: {what}"),
                    "Inspect the image's platforms: `docker manifest inspect -v <image>`; a Windows node runs only images whose \
                     os.version has its build (process isolation)."
                        .into(),
                    true,
                )
                .data("platform", want.to_string()),
            );
        }
        if clean && want.os == "windows" && want.os_version.is_none() {
            merged.findings.push(
                not_verified(
                    "image",
                    format!(
                        "the Windows build the target runs is not known, so whether the image's os.version fits {want} is not proven \
                         (process-isolated Windows containers need an image of the host's build)"
                    ),
                    "Check the host's build (AKS: the node pool's osSKU or nodeImageVersion; App Service: the Windows container \
                     base images it documents) against `docker manifest inspect -v <image>`."
                        .into(),
                    true,
                )
                .data("platform", want.to_string()),
            );
        }
        for mut f in outcome.findings {
            if f.code == Code::REG015 && any_platform_present && !want.pools.is_empty() {
                // Other pools can run the image: only these pools must not get its pods.
                f.severity = Severity::Warning;
                f.remedy = format!(
                    "Keep the workload off node pool(s) {} with a nodeSelector (`kubernetes.io/arch`/`kubernetes.io/os`), or publish the image for {}/{}. {}",
                    want.pools.join(", "),
                    want.os,
                    want.architecture,
                    f.remedy
                );
            }
            // The links before the platform run once per platform; report each fact once.
            if !merged.findings.iter().any(|m| m.code == f.code && m.message == f.message) {
                merged.findings.push(f);
            }
        }
        for p in outcome.proven {
            if !merged.proven.contains(&p) {
                merged.proven.push(p);
            }
        }
    }
    label(merged, image)
}

/// Says which image the findings are about: the deploy target's report row is the target.
fn label(mut outcome: TargetOutcome, image: &ImageRef) -> TargetOutcome {
    let shown = sanitize(&image.to_string());
    for f in &mut outcome.findings {
        f.message = format!("image {shown}: {}", f.message);
        f.data.insert("image".into(), serde_json::Value::from(shown.clone()));
    }
    outcome.proven = outcome.proven.into_iter().map(|p| format!("image {p}")).collect();
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::Severity;

    #[test]
    fn hosts_are_classified_without_network() {
        assert_eq!(classify_host("contoso.azurecr.io"), RegistryHost::Acr);
        assert_eq!(classify_host("contoso.azurecr.cn"), RegistryHost::Acr);
        for typo in [
            "contoso.azureacr.io",
            "contoso.azurecr.com",
            "contoso.azurcr.io",
            "contoso.azure.io",
            "contoso.azurecr.io.example.com",
            "contoso.azurecr.net",
        ] {
            assert_eq!(
                classify_host(typo),
                RegistryHost::NearMiss { suggestion: "contoso.azurecr.io".into() },
                "{typo}"
            );
        }
        assert_eq!(classify_host("contoso"), RegistryHost::MissingSuffix { suggestion: "contoso.azurecr.io".into() });
        for other in
            ["mcr.microsoft.com", "ghcr.io", "docker.io", "gcr.io", "localhost:5000", "127.0.0.1:5000", "quay.io"]
        {
            assert_eq!(classify_host(other), RegistryHost::Other, "{other}");
        }
    }

    fn image(server: &str, repo: &str) -> ImageRef {
        ImageRef { server: server.into(), repository: repo.into(), reference: None }
    }

    #[test]
    fn validation_findings() {
        let (f, acr) = validate(&image("contoso.azurecr.io", "shop/web"));
        assert!(f.is_empty() && acr);
        let (f, acr) = validate(&image("contoso.azureacr.io", "shop/web"));
        assert_eq!((f.len(), f[0].code, acr), (1, Code::REG002, false));
        assert!(f[0].remedy.contains("image=contoso.azurecr.io/shop/web"), "{}", f[0].remedy);
        let (f, _) = validate(&image("https://Contoso.azurecr.io", "Shop"));
        assert_eq!(f.iter().map(|f| f.code).collect::<Vec<_>>(), [Code::REG001, Code::REG001]);
        let (f, acr) = validate(&image("mcr.microsoft.com", "dotnet/aspnet"));
        assert_eq!((f[0].code, f[0].severity, acr), (Code::DEP011, Severity::Note, false));
    }
}
