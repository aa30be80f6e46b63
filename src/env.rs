//! The process environment, read once at start-up into a value that is passed down.
//! Nothing else in the crate reads `std::env`: tests build an `AgentEnv` from pairs.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Default)]
pub struct AgentEnv {
    vars: BTreeMap<String, String>,
}

impl AgentEnv {
    /// Snapshot of the real environment; variables that are not valid UTF-8 are skipped.
    pub fn from_process() -> Self {
        AgentEnv::from_pairs(
            std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        AgentEnv { vars: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }

    /// The value of a variable; an empty value counts as unset.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str).filter(|v| !v.trim().is_empty())
    }

    /// Like `get`, but finds the name regardless of case. Endpoint ids keep the case the
    /// agent gave them, which users may not reproduce when they set variables by hand.
    pub fn get_any_case(&self, name: &str) -> Option<&str> {
        self.get(name).or_else(|| {
            self.vars
                .iter()
                .find(|(k, v)| k.eq_ignore_ascii_case(name) && !v.trim().is_empty())
                .map(|(_, v)| v.as_str())
        })
    }

    /// Every variable whose name starts with `prefix` (exact case).
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.vars
            .range(prefix.to_string()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Every variable, for checks that scan the whole environment (injected profilers).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// `TF_BUILD=True` is set by the agent for every process of a pipeline step.
    pub fn in_pipeline(&self) -> bool {
        self.get("TF_BUILD").is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// A task input as the agent passes it: `INPUT_<NAME>`, upper-cased.
    pub fn input(&self, name: &str) -> Option<&str> {
        self.get(&format!("INPUT_{}", name.to_ascii_uppercase())).map(str::trim)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_count_as_unset_and_inputs_are_upper_cased() {
        let env = AgentEnv::from_pairs([("INPUT_FAILON", " warning "), ("EMPTY", "  "), ("TF_BUILD", "True")]);
        assert_eq!(env.input("failOn"), Some("warning"));
        assert_eq!(env.get("EMPTY"), None);
        assert!(env.in_pipeline());
    }

    #[test]
    fn prefix_scan_and_case_insensitive_lookup() {
        let env = AgentEnv::from_pairs([("ENDPOINT_URL_abc", "u"), ("ENDPOINT_URL_abd", "v"), ("ENDPOINTX", "w")]);
        assert_eq!(env.with_prefix("ENDPOINT_URL_").count(), 2);
        assert_eq!(env.get_any_case("endpoint_url_ABC"), Some("u"));
    }
}
