//! The grammar of a deployment target (the `deployTargets` input and `--deploy-target`):
//!
//! ```text
//! aks:<managed cluster resource id> image=<registry>/<repository>[:<tag>|@<digest>] [registry=<registry resource id>]
//! webapp:<web app resource id> image=<registry>/<repository>[:<tag>|@<digest>] [registry=<registry resource id>]
//! ```
//!
//! Parsing checks the structure only: a line that does not fit is bad input (exit 2). Whether
//! the image's registry host is usable (case, scheme, a near-miss of a registry domain) is a
//! finding of the deploy check, as it is for registry targets.

use std::fmt;

use crate::azure::resource_id::ResourceId;
use crate::registry_target::{self, Reference};

pub const GRAMMAR: &str = "aks:<managed cluster resource id> image=<registry>/<repository>[:<tag>|@<digest>] \
     [registry=<registry resource id>], or webapp:<web app resource id> image=<registry>/<repository>[:<tag>|@<digest>] \
     [registry=<registry resource id>]";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// `Microsoft.ContainerService/managedClusters`.
    Aks,
    /// `Microsoft.Web/sites` (or one of its slots).
    WebApp,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Aks => "aks",
            TargetKind::WebApp => "webapp",
        }
    }
}

/// An image as the runtime will pull it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The registry host as written (a scheme, if one was written, is kept so the check can
    /// report it).
    pub server: String,
    pub repository: String,
    /// `None` means the runtime's default, `latest`.
    pub reference: Option<Reference>,
}

impl ImageRef {
    /// The host without any scheme, lower-cased: what the runtime resolves.
    pub fn host(&self) -> String {
        let host = self.server.split_once("://").map(|(_, h)| h).unwrap_or(&self.server);
        host.to_ascii_lowercase()
    }

    pub fn tag_or_digest(&self) -> String {
        match &self.reference {
            Some(Reference::Tag(t)) => format!(":{t}"),
            Some(Reference::Digest(d)) => format!("@{d}"),
            None => String::new(),
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let server = registry_target::mask_userinfo(&self.server);
        write!(f, "{server}/{}{}", self.repository, self.tag_or_digest())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployTarget {
    pub kind: TargetKind,
    pub resource: ResourceId,
    pub image: ImageRef,
    /// The registry named explicitly (`registry=`), for one the identity cannot list.
    pub registry: Option<ResourceId>,
}

impl DeployTarget {
    /// `aks:rg/cluster image=contoso.azurecr.io/web:1.4`: how reports name this target.
    pub fn display_name(&self) -> String {
        let mut path = format!("{}/{}", self.resource.resource_group, self.resource.segments[0].1);
        for (t, n) in self.resource.segments.iter().skip(1) {
            path.push_str(&format!("/{t}/{n}"));
        }
        format!("{}:{path} image={}", self.kind.as_str(), self.image)
    }
}

/// Parses one target. `Ok(None)` for blank lines and comments.
pub fn parse_line(line: &str) -> Result<Option<DeployTarget>, String> {
    let content = match line.find('#') {
        Some(i) => &line[..i],
        None => line,
    };
    let mut words = content.split_whitespace().peekable();
    let Some(first) = words.next() else { return Ok(None) };
    let (kind_text, rest) =
        first.split_once(':').ok_or_else(|| format!("`{first}` does not start with `aks:` or `webapp:`"))?;
    let kind = match kind_text.to_ascii_lowercase().as_str() {
        "aks" => TargetKind::Aks,
        "webapp" => TargetKind::WebApp,
        other => return Err(format!("`{other}:` is not a target kind: use `aks:` or `webapp:`")),
    };
    // `aks: /subscriptions/...` (a space after the colon) reads the same.
    let id_text = if rest.is_empty() {
        match words.next_if(|w| !w.contains('=')) {
            Some(w) => w,
            None => return Err(format!("`{kind_text}:` is not followed by a resource id")),
        }
    } else {
        rest
    };
    let resource = parse_resource(kind, id_text)?;
    let mut image = None;
    let mut registry = None;
    for word in words {
        match word.split_once('=') {
            Some(("image", value)) => {
                if image.is_some() {
                    return Err("`image=` is given twice".into());
                }
                image = Some(parse_image(value)?);
            }
            Some(("registry", value)) => {
                if registry.is_some() {
                    return Err("`registry=` is given twice".into());
                }
                let id = ResourceId::parse(value)
                    .filter(|id| id.is_type("Microsoft.ContainerRegistry", "registries") && id.segments.len() == 1)
                    .ok_or_else(|| {
                        format!(
                            "`registry={value}` is not a registry resource id \
                             (/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.ContainerRegistry/registries/<name>)"
                        )
                    })?;
                registry = Some(id);
            }
            _ => {
                return Err(format!(
                    "unexpected word `{word}`: after the resource id only `image=<ref>` and `registry=<registry resource id>` may follow"
                ))
            }
        }
    }
    let image = image.ok_or("`image=<registry>/<repository>[:<tag>|@<digest>]` is missing")?;
    Ok(Some(DeployTarget { kind, resource, image, registry }))
}

fn parse_resource(kind: TargetKind, text: &str) -> Result<ResourceId, String> {
    let id = ResourceId::parse(text).ok_or_else(|| {
        format!("`{text}` is not a resource id (/subscriptions/<sub>/resourceGroups/<rg>/providers/<namespace>/<type>/<name>)")
    })?;
    let fits = match kind {
        TargetKind::Aks => id.is_type("Microsoft.ContainerService", "managedClusters") && id.segments.len() == 1,
        TargetKind::WebApp => {
            id.is_type("Microsoft.Web", "sites")
                && (id.segments.len() == 1
                    || (id.segments.len() == 2 && id.segments[1].0.eq_ignore_ascii_case("slots")))
        }
    };
    if !fits {
        let wanted = match kind {
            TargetKind::Aks => "a Microsoft.ContainerService/managedClusters/<name> resource id",
            TargetKind::WebApp => "a Microsoft.Web/sites/<name> (or .../sites/<name>/slots/<slot>) resource id",
        };
        return Err(format!("`{text}` is not {wanted}"));
    }
    Ok(id)
}

fn parse_image(text: &str) -> Result<ImageRef, String> {
    let expected = "an image reference <registry>/<repository>[:<tag>|@<digest>]";
    if text.is_empty() {
        return Err(format!("`image=` is empty: expected {expected}"));
    }
    let target = registry_target::parse_line(text)
        .map_err(|e| format!("`image={text}`: {e}"))?
        .ok_or_else(|| format!("`image={text}` is not {expected}"))?;
    let Some(repository) = target.repository else {
        return Err(format!(
            "`image={text}` names no registry and repository: write the registry host in full, e.g. contoso.azurecr.io/{text}"
        ));
    };
    Ok(ImageRef { server: target.server, repository, reference: target.reference })
}

#[cfg(test)]
mod tests {
    use super::*;

    const AKS: &str =
        "/subscriptions/s1/resourceGroups/rg-prod/providers/Microsoft.ContainerService/managedClusters/aks1";
    const SITE: &str = "/subscriptions/s1/resourceGroups/rg-web/providers/Microsoft.Web/sites/shop";

    #[test]
    fn parses_both_kinds_with_options_and_comments() {
        let t = parse_line(&format!("aks:{AKS} image=contoso.azurecr.io/shop/web:1.4  # prod")).unwrap().unwrap();
        assert_eq!((t.kind, t.resource.name()), (TargetKind::Aks, "aks1"));
        assert_eq!(t.image.to_string(), "contoso.azurecr.io/shop/web:1.4");
        assert_eq!(t.display_name(), "aks:rg-prod/aks1 image=contoso.azurecr.io/shop/web:1.4");

        let reg = "/subscriptions/s2/resourceGroups/hub/providers/Microsoft.ContainerRegistry/registries/contoso";
        let t = parse_line(&format!("webapp: {SITE}/slots/staging image=contoso.azurecr.io/shop/web registry={reg}"))
            .unwrap()
            .unwrap();
        assert_eq!(t.kind, TargetKind::WebApp);
        assert_eq!(t.display_name(), "webapp:rg-web/shop/slots/staging image=contoso.azurecr.io/shop/web");
        assert_eq!(t.registry.unwrap().name(), "contoso");
        assert_eq!(t.image.reference, None);
        assert_eq!(parse_line("  # nothing").unwrap(), None);
        assert_eq!(parse_line("").unwrap(), None);
    }

    #[test]
    fn host_drops_scheme_and_case_but_display_keeps_them() {
        let t = parse_line(&format!("aks:{AKS} image=https://Contoso.azurecr.io/web:1")).unwrap().unwrap();
        assert_eq!(t.image.host(), "contoso.azurecr.io");
        assert_eq!(t.image.to_string(), "https://Contoso.azurecr.io/web:1");
    }

    #[test]
    fn rejects_what_does_not_fit_naming_the_reason() {
        let digest_bad = format!("aks:{AKS} image=contoso.azurecr.io/web@sha256:xyz");
        let cases: Vec<(String, &str)> = vec![
            (format!("aks:{AKS}"), "`image=<registry>/<repository>"),
            (format!("aks:{SITE} image=c.azurecr.io/a"), "is not a Microsoft.ContainerService/managedClusters"),
            (format!("webapp:{AKS} image=c.azurecr.io/a"), "is not a Microsoft.Web/sites"),
            ("aks:/subscriptions/s1/resourceGroups image=c.azurecr.io/a".into(), "is not a resource id"),
            (format!("vm:{AKS} image=c.azurecr.io/a"), "`vm:` is not a target kind"),
            (format!("{AKS} image=c.azurecr.io/a"), "does not start with `aks:` or `webapp:`"),
            (format!("aks:{AKS} image=c.azurecr.io/a image=c.azurecr.io/b"), "given twice"),
            (format!("aks:{AKS} image=c.azurecr.io/a push"), "unexpected word `push`"),
            (format!("aks:{AKS} image=nginx:1.25"), "names no registry and repository"),
            (format!("aks:{AKS} image="), "`image=` is empty"),
            (digest_bad, "is not a digest"),
            (format!("aks:{AKS} image=c.azurecr.io/a registry={SITE}"), "is not a registry resource id"),
            ("aks: image=c.azurecr.io/a".into(), "is not followed by a resource id"),
        ];
        for (line, needle) in cases {
            let err = parse_line(&line).unwrap_err();
            assert!(err.contains(needle), "{line}: {err}");
        }
    }
}
