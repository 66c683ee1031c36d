//! The server's bounds on what clients can make it hold: [`ServerLimits`].

use std::ops::RangeInclusive;
use std::time::Duration;

use crate::units;

/// The server-wide bounds of a [`Server`](super::Server).
///
/// What clients can make the server hold: a bound on the time of every phase of a connection,
/// on the connections open at once, and on the request bodies held in memory. Set in the
/// manifest's `[server]` table or with `mixio serve`'s flags of the same names (`--header-timeout
/// 5s`); the flag wins.
///
/// | phase | setting | default | past it |
/// |---|---|---|---|
/// | waiting for a request's headers (a new connection, or a kept-alive one after its last response) | `header_timeout` | 10 s | the connection is closed |
/// | reading a request body: no byte arrives | `body_idle_timeout` | 10 s | `408`, the connection is closed |
/// | reading a request body (read whole before the component runs) and waiting for an instance | the component's `limits.timeout`, from the request's head (the call then has its own) | 30 s | `408` and the connection is closed; `503` if the wait for an instance used it up |
/// | writing a response: once a write waits for the client, it takes less than 16 KiB | `write_idle_timeout` | 10 s | the connection is cut (counted in `/metrics`) |
/// | a websocket client sends nothing, not even a pong to the server's ping (sent at half the bound) | `websocket_idle_timeout` | 60 s | the websocket is closed |
/// | connections open at once | `max_connections` | half the file-descriptor limit, at most 65,536 | new connections wait in the kernel's backlog (4,096) |
/// | static files being sent at once | — | a quarter of the file-descriptor limit | `503` with `Retry-After` |
/// | request bodies held in memory, all requests together | `max_body_memory` | 256 MiB | `503` with `Retry-After` |
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerLimits {
    /// Connections open at once (websockets included); `None`: half the process's
    /// file-descriptor limit, at most 65,536.
    pub max_connections: Option<usize>,
    /// Longest a connection may wait for a request's headers to be complete, counted from when
    /// it opened or answered its previous request.
    pub header_timeout: Duration,
    /// Longest a request body may go without a byte arriving.
    pub body_idle_timeout: Duration,
    /// Once a write of a response waits for the client, how long the client has to take 16 KiB
    /// (time counted while writes wait).
    pub write_idle_timeout: Duration,
    /// Longest a websocket client may send nothing (the server pings it at half of this).
    pub websocket_idle_timeout: Duration,
    /// Bytes of request bodies held in memory at once, all requests together.
    pub max_body_memory: u64,
}

impl Default for ServerLimits {
    fn default() -> ServerLimits {
        ServerLimits {
            max_connections: None,
            header_timeout: Duration::from_secs(10),
            body_idle_timeout: Duration::from_secs(10),
            write_idle_timeout: Duration::from_secs(10),
            websocket_idle_timeout: Duration::from_secs(60),
            max_body_memory: 256 << 20,
        }
    }
}

/// The most connections the default allows, whatever the descriptor limit.
const DEFAULT_MAX_CONNECTIONS: usize = 65_536;

const TIMEOUTS: RangeInclusive<Duration> = Duration::from_millis(100)..=Duration::from_secs(3600);
const WEBSOCKET_IDLE: RangeInclusive<Duration> = Duration::from_secs(1)..=Duration::from_secs(24 * 3600);
const CONNECTIONS: RangeInclusive<u64> = 1..=1_000_000;
const BODY_MEMORY: RangeInclusive<u64> = (64 << 10)..=(1 << 40);

impl ServerLimits {
    /// The names of the settings, as the manifest's `[server]` table spells them (the flags
    /// use `-` for `_`).
    pub const KEYS: [&'static str; 6] = [
        "max_connections",
        "header_timeout",
        "body_idle_timeout",
        "write_idle_timeout",
        "websocket_idle_timeout",
        "max_body_memory",
    ];

    /// Sets the setting `key` (one of [`KEYS`](Self::KEYS)) from its text, e.g. `"5s"`,
    /// `"64MiB"`, `"1000"`; the error says what is wrong with the value (the caller names
    /// where it came from).
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "max_connections" => self.max_connections = Some(units::count(value, &CONNECTIONS)? as usize),
            "header_timeout" => self.header_timeout = units::duration(value, &TIMEOUTS)?,
            "body_idle_timeout" => self.body_idle_timeout = units::duration(value, &TIMEOUTS)?,
            "write_idle_timeout" => self.write_idle_timeout = units::duration(value, &TIMEOUTS)?,
            "websocket_idle_timeout" => {
                self.websocket_idle_timeout = units::duration(value, &WEBSOCKET_IDLE)?
            }
            "max_body_memory" => self.max_body_memory = units::size(value, &BODY_MEMORY)?,
            other => {
                return Err(format!("unknown setting `{other}`; the settings are {}", Self::KEYS.join(", ")));
            }
        }
        Ok(())
    }

    /// Checks every setting against the range [`set`](Self::set) accepts (the fields are
    /// public: an embedder may have set any value); the error names the setting.
    pub fn check(&self) -> Result<(), String> {
        let show = |d: &Duration| humantime::format_duration(*d).to_string();
        let durations = [
            ("header_timeout", self.header_timeout, &TIMEOUTS),
            ("body_idle_timeout", self.body_idle_timeout, &TIMEOUTS),
            ("write_idle_timeout", self.write_idle_timeout, &TIMEOUTS),
            ("websocket_idle_timeout", self.websocket_idle_timeout, &WEBSOCKET_IDLE),
        ];
        for (key, value, range) in durations {
            units::in_range(value, range, show).map_err(|e| format!("`{key}` is {e}"))?;
        }
        if let Some(n) = self.max_connections {
            units::in_range(n as u64, &CONNECTIONS, u64::to_string)
                .map_err(|e| format!("`max_connections` is {e}"))?;
        }
        units::in_range(self.max_body_memory, &BODY_MEMORY, u64::to_string)
            .map_err(|e| format!("`max_body_memory` is {e}"))?;
        Ok(())
    }

    /// The connection cap: [`max_connections`](Self::max_connections), or the default from the
    /// file-descriptor limit `fd_limit` (the rest of the descriptors are left for backends'
    /// connections, files and the admin listener).
    pub(crate) fn connections(&self, fd_limit: u64) -> usize {
        self.max_connections.unwrap_or_else(|| {
            let half = usize::try_from(fd_limit / 2).unwrap_or(usize::MAX);
            half.clamp(1, DEFAULT_MAX_CONNECTIONS)
        })
    }
}

/// The process's limit of open file descriptors (the soft one), if it can be read.
pub(crate) fn fd_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// Raises the process's soft limit of open file descriptors to its hard limit (as servers do at
/// start), and returns the limit in force afterwards.
pub fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if let (Some(current), Some(maximum)) = (limit.current, limit.maximum)
        && current < maximum
    {
        // Refused (e.g. a hard limit above the kernel's `nr_open`): keep the current one.
        let _ = setrlimit(Resource::Nofile, Rlimit { current: Some(maximum), maximum: Some(maximum) });
    }
    fd_limit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_parsed_by_name_and_checked() {
        let mut limits = ServerLimits::default();
        limits.set("header_timeout", "5s").unwrap();
        limits.set("max_body_memory", "1GiB").unwrap();
        limits.set("max_connections", "500").unwrap();
        assert_eq!(limits.header_timeout, Duration::from_secs(5));
        assert_eq!(limits.max_body_memory, 1 << 30);
        assert_eq!(limits.connections(512), 500);
        for (key, bad) in [
            ("header_timeout", "1e30"),
            ("header_timeout", "0"),
            ("body_idle_timeout", "18446744073709551616"),
            ("write_idle_timeout", "2h"),
            ("websocket_idle_timeout", "-1"),
            ("max_body_memory", "1024TiB"),
            ("max_connections", "0"),
            ("max_connections", "1e3"),
        ] {
            let error = limits.set(key, bad).expect_err(bad);
            assert!(error.contains(&format!("\"{bad}\"")), "{key} = {bad}: {error}");
        }
        assert!(limits.set("nagle", "1").unwrap_err().contains("header_timeout"));
    }

    #[test]
    fn values_set_directly_are_checked_too() {
        assert_eq!(ServerLimits::default().check(), Ok(()));
        let bad = [
            ServerLimits { header_timeout: Duration::MAX, ..ServerLimits::default() },
            ServerLimits { websocket_idle_timeout: Duration::ZERO, ..ServerLimits::default() },
            ServerLimits { max_connections: Some(usize::MAX), ..ServerLimits::default() },
            ServerLimits { max_body_memory: u64::MAX, ..ServerLimits::default() },
        ];
        for limits in bad {
            assert!(limits.check().is_err(), "{limits:?}");
        }
    }

    #[test]
    fn the_default_connection_cap_follows_the_descriptor_limit() {
        let limits = ServerLimits::default();
        assert_eq!(limits.connections(512), 256);
        assert_eq!(limits.connections(1 << 20), DEFAULT_MAX_CONNECTIONS);
        assert_eq!(limits.connections(0), 1);
        assert_eq!(limits.connections(u64::MAX), DEFAULT_MAX_CONNECTIONS);
    }
}
