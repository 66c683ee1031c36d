//! The state a host and its components share, and the mode they call guests in.

use std::sync::Arc;

use wasmtime::component::Linker;
use wasmtime::{Cache, Engine};

use crate::capabilities::Backends;
use crate::engine::{EpochTicker, Limits};
use crate::metrics::Counters;
use crate::reuse::Pools;
use crate::state::GuestState;

/// How a host calls its guests: the same component runs either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoMode {
    /// Each call runs on a Wasmtime fiber; an import that waits suspends the fiber and frees
    /// the thread for other calls. Thousands of calls wait at once on a few threads.
    Async,
    /// Each call runs to completion on one of `threads` OS threads; an import that waits
    /// blocks its thread. At most `threads` calls run at once; more wait.
    Blocking {
        /// The size of the thread pool.
        threads: usize,
    },
}

impl std::fmt::Display for IoMode {
    /// As [`IoMode::parse`] reads it: `async` or `blocking:THREADS`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IoMode::Async => f.write_str("async"),
            IoMode::Blocking { threads } => write!(f, "blocking:{threads}"),
        }
    }
}

/// The most threads blocking mode's pool may have.
pub const MAX_BLOCKING_THREADS: usize = 10_000;

impl IoMode {
    /// Blocking mode with its default pool of 64 threads.
    pub const BLOCKING: IoMode = IoMode::Blocking { threads: 64 };

    /// Parses `async`, `blocking` or `blocking:N` (N threads).
    pub fn parse(text: &str) -> Result<IoMode, String> {
        match text.split_once(':') {
            None if text == "async" => Ok(IoMode::Async),
            None if text == "blocking" => Ok(IoMode::BLOCKING),
            Some(("blocking", n)) => match n.parse::<usize>() {
                Ok(threads) if (1..=MAX_BLOCKING_THREADS).contains(&threads) => {
                    Ok(IoMode::Blocking { threads })
                }
                _ => Err(format!(
                    "`{text}`: the thread count must be a whole number from 1 to {MAX_BLOCKING_THREADS}"
                )),
            },
            _ => Err(format!("`{text}` is not an I/O mode; use `async`, `blocking` or `blocking:THREADS`")),
        }
    }
}

/// What a host's components share: the engine, the linker, the limits and counters, the
/// backends, the mode and its threads. [`Host`](crate::host::Host) owns it and each
/// [`Component`](crate::component::Component) holds it.
pub(crate) struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<GuestState>,
    pub(crate) limits: Limits,
    pub(crate) counters: Arc<Counters>,
    pub(crate) backends: Backends,
    pub(crate) cache: Option<Cache>,
    pub(crate) io: IoMode,
    /// Blocking mode's thread pool: a permit per thread.
    pub(crate) blocking_threads: Arc<tokio::sync::Semaphore>,
    /// The threads of native guests, started with the first one loaded.
    pub(crate) native_threads: std::sync::OnceLock<crate::native::NativeThreads>,
    /// The idle instances of every reusing component, retired when the pool of slots is full.
    pub(crate) reuse_pools: Pools,
    pub(crate) _ticker: EpochTicker,
}
