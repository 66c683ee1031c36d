//! Configuration variables given to this component by the host (the manifest or the embedding
//! application, overridable with `MIXIO_CONFIG_<NAME>` environment variables on the host).
//!
//! ```no_run
//! let kitchen = mixio::config::require("kitchen_url")?;
//! let greeting = mixio::config::get("greeting").unwrap_or_else(|| "hello".into());
//! # Ok::<(), mixio::Error>(())
//! ```

use crate::Error;

/// The value of variable `name`, if this component has it.
pub fn get(name: &str) -> Option<String> {
    crate::sys::config_get(name)
}

/// The value of variable `name`, or [`Error::MissingConfig`].
pub fn require(name: &str) -> Result<String, Error> {
    get(name).ok_or_else(|| Error::MissingConfig(name.to_string()))
}
