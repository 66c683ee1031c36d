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
        let backtrace = error.downcast_ref::<wasmtime::WasmBacktrace>().map(|bt| bt.to_string());
        let Some(trap) = error.downcast_ref::<wasmtime::Trap>().copied() else {
            // Raised while the guest ran, by an import refusing its arguments (a pointer or
            // length outside its memory, bytes that are not UTF-8, a handle it does not own)
            // or by a host function failing: a trap of the guest's call, as in the component
            // model, reported with its cause and not the backtrace.
            return match backtrace {
                Some(backtrace) => Error::Trap {
                    component,
                    message: error.root_cause().to_string(),
                    backtrace: Some(backtrace),
                },
                None => Error::Host { component, message: format!("{error:#}") },
            };
        };
        if trap == wasmtime::Trap::UnreachableCodeReached
            && let Some(message) = panic_message(stderr_tail)
        {
            return Error::Panic { component, message };
        }
        let trap = trap.to_string();
        let trap = trap.strip_prefix("wasm trap: ").unwrap_or(&trap);
        // Rust's hint `note: run with RUST_BACKTRACE=1 ...` follows the line that says what
        // went wrong (e.g. `memory allocation of 1048576 bytes failed`): skip it.
        let last = stderr_tail.lines().rev().find(|l| !l.trim().is_empty() && !l.starts_with("note: "));
        let message = match last {
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

/// A boxed error of any kind, as hyper and tokio-postgres take them.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_are_extracted_from_rust_panic_output() {
        let out = "starting\nthread '<unnamed>' panicked at src/lib.rs:5:5:\nboom: \"x\"\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(panic_message(out).unwrap(), "boom: \"x\" (at src/lib.rs:5:5)");
        assert_eq!(panic_message("no panic here"), None);
    }

    #[test]
    fn an_import_refusing_its_arguments_is_a_trap_with_its_cause() {
        let refused = wasmtime::Error::msg("string pointer/length out of bounds of memory")
            .context(wasmtime::WasmBacktrace::force_capture(wasmtime::Store::<()>::default()));
        let error = Error::from_guest("g", refused, "", 1).to_string();
        assert_eq!(error, "guest `g` trapped: string pointer/length out of bounds of memory");
    }

    #[test]
    fn a_trap_reports_the_line_before_rusts_backtrace_note() {
        let stderr = "memory allocation of 1048576 bytes failed\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        let trap = wasmtime::Error::new(wasmtime::Trap::UnreachableCodeReached);
        let error = Error::from_guest("g", trap, stderr, 1).to_string();
        assert!(
            error.ends_with("the guest's last stderr line: memory allocation of 1048576 bytes failed"),
            "{error}"
        );
    }
}
