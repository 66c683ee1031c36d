//! `mixio:io/config`: variables given to a component. Values are never logged.

use std::collections::BTreeMap;

use crate::bindings::mixio::io::config::Host;
use crate::state::GuestState;

/// The environment variable that overrides configuration variable `name`.
pub fn env_override_name(name: &str) -> String {
    let key: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    format!("MIXIO_CONFIG_{key}")
}

/// Applies environment overrides to the granted variables.
pub(crate) fn resolve(vars: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    vars.iter()
        .map(|(name, value)| {
            let value = std::env::var(env_override_name(name)).unwrap_or_else(|_| value.clone());
            (name.clone(), value)
        })
        .collect()
}

impl Host for GuestState {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        let found = self.caps.config.get(&key).cloned();
        tracing::trace!(component = %self.component, key, found = found.is_some(), "config.get");
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn override_names_are_upper_case_identifiers() {
        assert_eq!(super::env_override_name("kitchen-url"), "MIXIO_CONFIG_KITCHEN_URL");
        assert_eq!(super::env_override_name("a.b"), "MIXIO_CONFIG_A_B");
    }
}
