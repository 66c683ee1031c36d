//! Logging into the host's log, tagged by the host with the component that wrote it.
//!
//! ```no_run
//! mixio::log::info!("order {} placed by {}", 42, "ada");
//! mixio::log::warn!("kitchen answered {}", 503);
//! ```
//!
//! A guest's stdout and stderr (`println!`, panic messages) reach the host log too; these
//! macros add a level.

use crate::bindings::mixio::io::log as wit;

/// Severity of a log message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the guest handled.
    Warn,
    /// Something failed.
    Error,
}

/// Writes `message` to the host log at `level`.
pub fn log(level: Level, message: &str) {
    let level = match level {
        Level::Trace => wit::Level::Trace,
        Level::Debug => wit::Level::Debug,
        Level::Info => wit::Level::Info,
        Level::Warn => wit::Level::Warn,
        Level::Error => wit::Level::Error,
    };
    crate::sys::log(level, message);
}

#[doc(hidden)]
#[macro_export]
macro_rules! __mixio_log {
    ($level:ident, $($arg:tt)+) => {
        $crate::log::log($crate::log::Level::$level, &::std::format!($($arg)+))
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __mixio_trace { ($($arg:tt)+) => { $crate::__mixio_log!(Trace, $($arg)+) }; }
#[doc(hidden)]
#[macro_export]
macro_rules! __mixio_debug { ($($arg:tt)+) => { $crate::__mixio_log!(Debug, $($arg)+) }; }
#[doc(hidden)]
#[macro_export]
macro_rules! __mixio_info { ($($arg:tt)+) => { $crate::__mixio_log!(Info, $($arg)+) }; }
#[doc(hidden)]
#[macro_export]
macro_rules! __mixio_warn { ($($arg:tt)+) => { $crate::__mixio_log!(Warn, $($arg)+) }; }
#[doc(hidden)]
#[macro_export]
macro_rules! __mixio_error { ($($arg:tt)+) => { $crate::__mixio_log!(Error, $($arg)+) }; }

/// Logs at [`Level::Debug`], with `format!` syntax.
#[doc(inline)]
pub use crate::__mixio_debug as debug;
/// Logs at [`Level::Error`], with `format!` syntax.
#[doc(inline)]
pub use crate::__mixio_error as error;
/// Logs at [`Level::Info`], with `format!` syntax.
#[doc(inline)]
pub use crate::__mixio_info as info;
/// Logs at [`Level::Trace`], with `format!` syntax.
#[doc(inline)]
pub use crate::__mixio_trace as trace;
/// Logs at [`Level::Warn`], with `format!` syntax.
#[doc(inline)]
pub use crate::__mixio_warn as warn;
