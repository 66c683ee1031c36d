//! The errors of the embedding API. Each names the component (or file) it is about and reads
//! well as a one-line message.

use std::time::Duration;

/// What can go wrong loading or calling a guest. Every variant concerns one component or one
/// call only; the host keeps serving after any of them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The host's own configuration is invalid.
    #[error("invalid host configuration: {0}")]
    Config(String),

    /// A backend (database, store, broker) did not answer; the message names its key.
    #[error("backend {0}")]
    Backend(String),

    /// A file or byte buffer could not be loaded as a mixio component.
    #[error("cannot load `{name}`: {reason}")]
    Load {
        /// The path or name the component was loaded from.
        name: String,
        /// Why, in words.
        reason: String,
    },

    /// The component was asked to do something it does not export (e.g. `call` on a command).
    #[error("`{component}` {reason}")]
    Unsupported {
        /// The component's name.
        component: String,
        /// What it is and what it lacks.
        reason: String,
    },

    /// The guest panicked; `message` is the panic message it printed.
    #[error("guest `{component}` panicked: {message}")]
    Panic {
        /// The component's name.
        component: String,
        /// The panic message, with its source location.
        message: String,
    },

    /// The guest trapped: an `unreachable` instruction, an out-of-bounds access, a stack
    /// overflow, ...
    #[error("guest `{component}` trapped: {message}")]
    Trap {
        /// The component's name.
        component: String,
        /// The trap, and the guest's last line on stderr if it wrote one.
        message: String,
        /// The guest's wasm backtrace, when one was captured.
        backtrace: Option<String>,
    },

    /// The call did not finish within its deadline and was stopped.
    #[error("call to `{component}` timed out after {timeout:?}")]
    Timeout {
        /// The component's name.
        component: String,
        /// The deadline that passed.
        timeout: Duration,
    },

    /// The call was cancelled by its caller before it finished.
    #[error("call to `{component}` was cancelled")]
    Cancelled {
        /// The component's name.
        component: String,
    },

    /// Every instance slot is in use.
    #[error(
        "no free instance slot for `{component}`: the host's limit of {limit} concurrent instances is reached"
    )]
    Busy {
        /// The component's name.
        component: String,
        /// The limit (see [`HostBuilder::max_instances`](crate::HostBuilder::max_instances)).
        limit: u32,
    },

    /// A `wasi:http` guest ended its call without a response, or answered with an error code.
    #[error("guest `{component}` failed the request: {message}")]
    Failed {
        /// The component's name.
        component: String,
        /// What the guest did instead of answering.
        message: String,
    },

    /// A host function failed in a way the guest could not be told about.
    #[error("host failure in `{component}`: {message}")]
    Host {
        /// The component's name.
        component: String,
        /// What failed.
        message: String,
    },
}

impl Error {
    /// Turns a failure of instantiation or of a guest call into a typed error, using what the
    /// guest printed to stderr to recognise panics.
    pub(crate) fn from_guest(
        component: &str,
        error: wasmtime::Error,
        stderr_tail: &str,
        limit: u32,
    ) -> Error {
        let component = component.to_string();
        if error.downcast_ref::<wasmtime::PoolConcurrencyLimitError>().is_some() {
            return Error::Busy { component, limit };
        }
        let Some(trap) = error.downcast_ref::<wasmtime::Trap>().copied() else {
            return Error::Host { component, message: format!("{error:#}") };
        };
        let backtrace = error.downcast_ref::<wasmtime::WasmBacktrace>().map(|bt| bt.to_string());
        if trap == wasmtime::Trap::UnreachableCodeReached
            && let Some(message) = panic_message(stderr_tail)
        {
            return Error::Panic { component, message };
        }
        let trap = trap.to_string();
        let trap = trap.strip_prefix("wasm trap: ").unwrap_or(&trap);
        let message = match stderr_tail.lines().rev().find(|l| !l.trim().is_empty()) {
            Some(last) => format!("{trap}; the guest's last stderr line: {}", last.trim()),
            None => trap.to_string(),
        };
        Error::Trap { component, message, backtrace }
    }
}

/// Extracts `<location>: <message>` from Rust's panic output, e.g.
/// `thread '<unnamed>' panicked at src/lib.rs:5:5:\nboom\nnote: run with ...`.
fn panic_message(stderr: &str) -> Option<String> {
    let start = stderr.rfind("panicked at ")? + "panicked at ".len();
    let text: Vec<&str> = stderr[start..].lines().take_while(|l| !l.starts_with("note: ")).collect();
    let (location, message) = text.split_first()?;
    let location = location.trim_end_matches(':');
    Some(format!("{} (at {location})", message.join("\n").trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_are_extracted_from_rust_panic_output() {
        let out = "starting\nthread '<unnamed>' panicked at src/lib.rs:5:5:\nboom: \"x\"\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(panic_message(out).unwrap(), "boom: \"x\" (at src/lib.rs:5:5)");
        assert_eq!(panic_message("no panic here"), None);
    }
}
