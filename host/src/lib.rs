#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

/// Converts between the two bindings' copies of a variant whose cases carry the same
/// payloads.
macro_rules! same_variant {
    ($from:ty => $to:ty { $($unit:ident),* $(,)? ; $($case:ident),* $(,)? }) => {
        impl From<$from> for $to {
            fn from(value: $from) -> $to {
                type Source = $from;
                match value {
                    $(Source::$unit => Self::$unit,)*
                    $(Source::$case(x) => Self::$case(x),)*
                }
            }
        }
    };
}

mod blocking;
pub mod body;
pub mod capabilities;
mod component;
mod deadline;
mod engine;
mod error;
mod host;
mod metrics;
mod native;
mod progress;
mod reuse;
mod runtime;
mod sqlite;
mod state;
mod stdio;
mod task;

pub use capabilities::Grants;
pub use capabilities::bindings::{Request, Response};
pub use component::{Call, Component, ComponentKind, HttpBody, Run};
pub use engine::Limits;
pub use error::Error;
pub use host::{Host, HostBuilder, regular_file};
pub use metrics::{Backend, BackendCalls, Metrics, Retirement};
pub use native::NativeHandler;
pub use reuse::Reuse;
pub use runtime::{IoMode, MAX_BLOCKING_THREADS};

/// Native fibers (the `mixio-fiber` crate): synchronous code that awaits futures, as native
/// guests and blocking mode use them.
pub use mixio_fiber as fiber;

/// The Wasmtime version mixio is built on, re-exported for custom host function types
/// ([`HostBuilder::func_async`]).
pub use wasmtime;
