//! `mixio:io/log`: guest messages become `tracing` events tagged with the component.

use crate::capabilities::View;
use crate::capabilities::bindings::mixio::io::log::{Host, Level};

/// The log capability: every component has it (nothing to grant).
pub(crate) struct Log;

/// Longer messages are cut (on a character boundary) so a guest cannot flood the log.
const MAX_MESSAGE: usize = 16 * 1024;

impl Host for View<'_, Log> {
    fn log(&mut self, level: Level, message: String) {
        let message = truncate(&message, MAX_MESSAGE);
        let component = &*self.caller.component;
        match level {
            Level::Trace => tracing::trace!(target: "mixio::guest", component, "{message}"),
            Level::Debug => tracing::debug!(target: "mixio::guest", component, "{message}"),
            Level::Info => tracing::info!(target: "mixio::guest", component, "{message}"),
            Level::Warn => tracing::warn!(target: "mixio::guest", component, "{message}"),
            Level::Error => tracing::error!(target: "mixio::guest", component, "{message}"),
        }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(super::truncate("héllo", 2), "h");
        assert_eq!(super::truncate("héllo", 3), "hé");
        assert_eq!(super::truncate("short", 100), "short");
    }
}
