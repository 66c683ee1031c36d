//! `mixio:io/config`: variables given to a component. Values are never logged.

use std::collections::BTreeMap;

use crate::capabilities::bindings::mixio::io::config::Host;
use crate::capabilities::{Backends, Capability, Grants, Resolved, View};

/// The configuration capability: a component's variables, with their environment overrides
/// applied at load.
pub(crate) struct Config;

impl Capability for Config {
    type Grants = BTreeMap<String, String>;
    type State = ();

    fn resolve(_: &str, grants: &Grants, _: &Backends) -> Resolved<Self::Grants> {
        Ok(resolve(&grants.config))
    }
}

/// The environment variable that overrides configuration variable `name`.
pub(crate) fn env_override_name(name: &str) -> String {
    let key: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    format!("MIXIO_CONFIG_{key}")
}

/// Applies environment overrides to the granted variables.
fn resolve(vars: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    resolve_with(vars, |key| std::env::var(key).ok())
}

fn resolve_with(
    vars: &BTreeMap<String, String>,
    env: impl Fn(&str) -> Option<String>,
) -> BTreeMap<String, String> {
    vars.iter()
        .map(|(name, value)| (name.clone(), env(&env_override_name(name)).unwrap_or_else(|| value.clone())))
        .collect()
}

impl Host for View<'_, Config> {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        let found = self.grants.get(&key).cloned();
        tracing::trace!(component = %self.caller.component, key, found = found.is_some(), "config.get");
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_environment_overrides_granted_variables_only() {
        let vars =
            [("kitchen-url".to_string(), "http://a".to_string()), ("mode".to_string(), "x".to_string())]
                .into();
        let env = |k: &str| match k {
            "MIXIO_CONFIG_KITCHEN_URL" => Some("http://b".to_string()),
            "MIXIO_CONFIG_OTHER" => Some("never granted".to_string()),
            _ => None,
        };
        let resolved = super::resolve_with(&vars, env);
        assert_eq!(resolved.get("kitchen-url").map(String::as_str), Some("http://b"));
        assert_eq!(resolved.get("mode").map(String::as_str), Some("x"));
        assert_eq!(resolved.len(), 2);
    }

    #[test]
    fn override_names_are_upper_case_identifiers() {
        assert_eq!(super::env_override_name("kitchen-url"), "MIXIO_CONFIG_KITCHEN_URL");
        assert_eq!(super::env_override_name("a.b"), "MIXIO_CONFIG_A_B");
    }
}
