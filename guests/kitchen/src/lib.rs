//! The kitchen that `food-delivery` orders from: it takes a ticket and says how long the dish
//! will take.
//!
//! | request | answer |
//! |---|---|
//! | `POST /kitchen` `{"id": ..., "user": ..., "dish": ...}` | `201` and `{"mins": N}`, N from 30 to 60 |
//!
//! The body must be a JSON object with a string `dish` (`400` otherwise); `id` may be a string
//! or a number, and one is made up if it is missing. The kitchen thinks for 20 to 200 ms (a
//! host timer: only this guest waits), then stores the ticket, the order with `mins` added, in
//! key-value store `default` under `ticket:<id>`.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, UNIX_EPOCH};

use mixio::http::{Request, Response};
use mixio::kv::Store;
use serde_json::{Map, Value, json};

#[mixio::handler]
fn handle(req: Request) -> Result<Response, mixio::Error> {
    if req.method() != "POST" {
        return Ok(Response::error(405, "use POST").with_header("allow", "POST"));
    }
    let mut ticket: Map<String, Value> = match req.json() {
        Ok(ticket) => ticket,
        Err(e) => return Ok(Response::error(400, &format!("expected a JSON order: {e}"))),
    };
    let Some(dish) = ticket.get("dish").and_then(Value::as_str).map(str::to_string) else {
        return Ok(Response::error(400, "the order needs a string `dish`"));
    };
    let random = random_u64();
    let id = match ticket.get("id") {
        Some(Value::String(id)) => id.clone(),
        Some(Value::Number(id)) => id.to_string(),
        None | Some(Value::Null) => {
            let id = format!("k{random:016x}");
            ticket.insert("id".into(), id.clone().into());
            id
        }
        Some(_) => return Ok(Response::error(400, "the order's `id` must be a string or a number")),
    };

    let think_ms = 20 + random % 181;
    let mins = 30 + (random >> 32) % 31;
    mixio::time::sleep(Duration::from_millis(think_ms));

    ticket.insert("mins".into(), mins.into());
    match Store::open("default")?.set_json(&format!("ticket:{id}"), &ticket) {
        Ok(()) => {}
        // The key or the ticket is too large for the store: the caller's fault.
        Err(e @ mixio::Error::Invalid(_)) => return Ok(Response::error(400, &e)),
        Err(e) => return Err(e),
    }
    mixio::log::info!("ticket {id}: {dish} in {mins} min");
    Ok(Response::json(&json!({ "mins": mins })).with_status(201))
}

/// A random number: `RandomState` is seeded from `wasi:random`; the time is hashed in as well so
/// that it varies even if a host gave every instance the same seed.
fn random_u64() -> u64 {
    let nanos = mixio::time::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(nanos);
    hasher.finish()
}
