//! The services some tests need, on loopback: PostgreSQL, Redis, NATS.
//!
//! A test that needs one asks for it here. When the service is unreachable the test is
//! skipped (it says so on stderr) on a developer's machine, and fails under `CI=true`, where the
//! services must be running.

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// PostgreSQL with trust authentication, database `test`.
pub const POSTGRES: (&str, &str) = ("127.0.0.1:5432", "postgres://postgres@127.0.0.1:5432/test");
/// Redis.
pub const REDIS: (&str, &str) = ("127.0.0.1:6379", "redis://127.0.0.1:6379");
/// NATS.
pub const NATS: (&str, &str) = ("127.0.0.1:4222", "nats://127.0.0.1:4222");

/// The URL of PostgreSQL, or `None` (test skipped) when it is unreachable outside CI.
pub fn postgres() -> Option<String> {
    require("PostgreSQL", POSTGRES)
}

/// The URL of Redis, or `None` (test skipped) when it is unreachable outside CI.
pub fn redis() -> Option<String> {
    require("Redis", REDIS)
}

/// The URL of NATS, or `None` (test skipped) when it is unreachable outside CI.
pub fn nats() -> Option<String> {
    require("NATS", NATS)
}

fn require(name: &str, (addr, url): (&str, &str)) -> Option<String> {
    let socket: SocketAddr = addr.parse().expect("a socket address");
    if TcpStream::connect_timeout(&socket, Duration::from_secs(2)).is_ok() {
        return Some(url.to_string());
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{name} is not reachable at {addr}, and under CI=true it must be");
    }
    eprintln!("skipped: this test needs {name} at {addr}, which is not reachable");
    None
}

/// A name no other test (in this or another process) uses: for schemas, key prefixes, topics.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    format!("{prefix}_{}_{}_{nanos}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}
