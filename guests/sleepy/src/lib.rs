//! Sleeps for `?ms=N` milliseconds (default 100) and reports how long it slept.
//!
//! The sleep is a host future: while it is pending this guest is suspended and the host runs
//! others on the same thread.

use std::time::Duration;

use mixio::http::{Request, Response};
use mixio::time::{self, Instant};

#[mixio::handler]
fn handle(req: Request) -> Result<Response, String> {
    let ms: u64 = match req.query_param("ms") {
        Some(v) => v.parse().map_err(|_| format!("?ms must be a whole number, got {v:?}"))?,
        None => 100,
    };
    let start = Instant::now();
    time::sleep(Duration::from_millis(ms));
    let slept = start.elapsed();
    Ok(Response::json(&serde_json::json!({
        "requested_ms": ms,
        "slept_ms": slept.as_millis() as u64,
    })))
}
