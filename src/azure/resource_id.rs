//! Azure resource ids: `/subscriptions/<sub>/resourceGroups/<rg>/providers/<ns>/<type>/<name>`.
//!
//! Plain parsing that depends on nothing else in the crate, so the deploy target grammar can
//! use it without depending on the Resource Manager client.

/// The parts of `/subscriptions/<sub>/resourceGroups/<rg>/providers/<ns>/<type>/<name>[/...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceId {
    pub subscription: String,
    pub resource_group: String,
    pub provider: String,
    /// `type/name` pairs after the provider, e.g. `[("managedClusters", "aks1")]`.
    pub segments: Vec<(String, String)>,
}

impl ResourceId {
    pub fn parse(id: &str) -> Option<ResourceId> {
        let parts: Vec<&str> = id.trim().trim_matches('/').split('/').collect();
        if parts.len() < 8
            || !parts[0].eq_ignore_ascii_case("subscriptions")
            || !parts[2].eq_ignore_ascii_case("resourcegroups")
            || !parts[4].eq_ignore_ascii_case("providers")
        {
            return None;
        }
        if parts.iter().any(|p| p.is_empty() || p.chars().any(char::is_whitespace)) || (parts.len() - 6) % 2 != 0 {
            return None;
        }
        let segments = parts[6..].chunks(2).map(|c| (c[0].to_string(), c[1].to_string())).collect();
        Some(ResourceId {
            subscription: parts[1].into(),
            resource_group: parts[3].into(),
            provider: parts[5].into(),
            segments,
        })
    }

    /// The canonical string form.
    pub fn to_path(&self) -> String {
        let mut s = format!(
            "/subscriptions/{}/resourceGroups/{}/providers/{}",
            self.subscription, self.resource_group, self.provider
        );
        for (t, n) in &self.segments {
            s.push_str(&format!("/{t}/{n}"));
        }
        s
    }

    pub fn name(&self) -> &str {
        self.segments.last().map(|(_, n)| n.as_str()).unwrap_or("")
    }

    pub fn is_type(&self, provider: &str, resource_type: &str) -> bool {
        self.provider.eq_ignore_ascii_case(provider)
            && self.segments.first().is_some_and(|(t, _)| t.eq_ignore_ascii_case(resource_type))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_ids() {
        let id = ResourceId::parse(
            "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1",
        )
        .unwrap();
        assert!(id.is_type("microsoft.containerservice", "managedclusters"));
        assert_eq!((id.name(), id.subscription.as_str()), ("aks1", "s1"));
        assert_eq!(
            id.to_path(),
            "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1"
        );
        for bad in [
            "",
            "/subscriptions/s1",
            "/subscriptions/s1/resourceGroups/rg/providers/X/y",
            "/subs/s1/resourceGroups/rg/providers/X/y/z",
            "/subscriptions/s 1/resourceGroups/rg/providers/X/y/z",
        ] {
            assert!(ResourceId::parse(bad).is_none(), "{bad}");
        }
    }
}
