//! Sleeps for `?ms=N` milliseconds (default 100) and reports how long it slept.
//!
//! The sleep is a host future: while it is pending this guest is suspended and the host runs
//! others on the same thread. With `?on=postgres` it sleeps in the database instead
//! (`SELECT pg_sleep(..)` on SQL database `default`), after waiting for the shared advisory
//! lock `?gate=K` if given, which lets a test hold every sleeper until it releases them.

use std::time::Duration;

use mixio::http::{Request, Response};
use mixio::sql::{Connection, params};
use mixio::time::{self, Instant};

#[mixio::handler]
fn handle(req: Request) -> Result<Response, String> {
    let ms: u64 = match req.query_param("ms") {
        Some(v) => v.parse().map_err(|_| format!("?ms must be a whole number, got {v:?}"))?,
        None => 100,
    };
    let start = Instant::now();
    match req.query_param("on").as_deref() {
        None | Some("timer") => time::sleep(Duration::from_millis(ms)),
        Some("postgres") => {
            let db = Connection::open("default").map_err(|e| e.to_string())?;
            if let Some(gate) = req.query_param("gate").and_then(|g| g.parse::<i64>().ok()) {
                db.query("SELECT pg_advisory_xact_lock_shared($1)", params![gate])
                    .map_err(|e| e.to_string())?;
            }
            db.query("SELECT pg_sleep($1)", params![ms as f64 / 1000.0]).map_err(|e| e.to_string())?;
        }
        Some(other) => return Err(format!("?on must be timer or postgres, got {other:?}")),
    }
    let slept = start.elapsed();
    Ok(Response::json(&serde_json::json!({
        "requested_ms": ms,
        "slept_ms": slept.as_millis() as u64,
    })))
}
