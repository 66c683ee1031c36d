//! The classic "mixed I/O" view, written as plain synchronous code: an order goes into SQL, the
//! kitchen is asked over HTTP how long it will take, and the answer is pushed to the customer's
//! websocket. Every call suspends only this guest while the host does the I/O.
//!
//! | request | answer |
//! |---|---|
//! | `POST /order` with `user` and `dish` | `201` and `{"mins": N}`, the kitchen's estimate |
//!
//! `user` and `dish` come from a JSON body (`{"user": ..., "dish": ...}`), a form body
//! (`application/x-www-form-urlencoded`) or the query string (`?user=ada&dish=ramen`), the body
//! first. Each must have 1 to 100 characters and no control characters, else `400` says why.
//!
//! 1. The order is inserted into table `orders` of SQL database `default`, created if missing.
//!    The DDL and the `$N` placeholders run on SQLite and PostgreSQL alike; ids are made here
//!    (time-ordered hex, then a random suffix), so no auto-increment syntax is needed.
//! 2. `{"id", "user", "dish"}` is posted to config variable `kitchen_url` (`500` if unset). An
//!    answer other than `201` with `{"mins": N}` is `502` `kitchen answered <status>: <body>`; a
//!    request that fails (host not allowed, timeout, connection) is `502` with the error.
//! 3. `{"mins": N}` is sent to websocket channel `<user>`, and the answer is `201` with the same
//!    JSON. The order stands even if the notification cannot be sent: that is logged, not an
//!    error, so that clients do not retry and order twice.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, UNIX_EPOCH};

use mixio::http::{ClientResponse, Request, Response};
use mixio::sql::{Connection, params};
use serde_json::{Value, json};

/// The longest `user` or `dish`, in characters.
const MAX_CHARS: usize = 100;

const CREATE_ORDERS: &str = "CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, \
     user_name TEXT NOT NULL, dish TEXT NOT NULL, created_ms BIGINT NOT NULL)";

struct Order {
    user: String,
    dish: String,
}

#[mixio::handler]
fn handle(req: Request) -> Result<Response, mixio::Error> {
    if req.method() != "POST" {
        return Ok(Response::error(405, "use POST").with_header("allow", "POST"));
    }
    let order = match read_order(&req) {
        Ok(order) => order,
        Err(why) => return Ok(Response::error(400, &why)),
    };
    // Checked before anything is stored: without a kitchen there is no order to take.
    let kitchen_url = mixio::config::require("kitchen_url")?;

    let now = mixio::time::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let id = order_id(now);
    let created_ms = i64::try_from(now.as_millis()).unwrap_or(i64::MAX);
    let db = Connection::open("default")?;
    db.execute(CREATE_ORDERS, &[])?;
    db.execute(
        "INSERT INTO orders (id, user_name, dish, created_ms) VALUES ($1, $2, $3, $4)",
        params![id.as_str(), order.user.as_str(), order.dish.as_str(), created_ms],
    )?;
    mixio::log::info!("order {id}: {} for {}", order.dish, order.user);

    let answer = match mixio::http::post(&kitchen_url)
        .json(&json!({ "id": id, "user": order.user, "dish": order.dish }))
        .send()
    {
        Ok(answer) => answer,
        Err(e) => return Ok(Response::error(502, &e)),
    };
    let Some(mins) = estimate(&answer) else {
        let body = String::from_utf8_lossy(answer.body());
        return Ok(Response::error(
            502,
            &format!("kitchen answered {}: {}", answer.status(), body.trim_end()),
        ));
    };

    let eta = json!({ "mins": mins });
    if let Err(e) = mixio::ws::send_json(&order.user, &eta) {
        mixio::log::warn!("order {id}: could not notify {}: {e}", order.user);
    }
    Ok(Response::json(&eta).with_status(201))
}

/// `user` and `dish`, each from the body if it has it, else from the query string.
fn read_order(req: &Request) -> Result<Order, String> {
    let body = body_fields(req)?;
    let query = req.query_pairs();
    let field = |name: &str| -> Result<String, String> {
        let value = body
            .iter()
            .chain(&query)
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
            .find(|v| !v.is_empty())
            .ok_or_else(|| format!("`{name}` is required (JSON body, form body or query string)"))?;
        if value.chars().count() > MAX_CHARS {
            return Err(format!("`{name}` must be at most {MAX_CHARS} characters"));
        }
        if value.chars().any(char::is_control) {
            return Err(format!("`{name}` must not contain control characters"));
        }
        Ok(value.to_string())
    };
    Ok(Order { user: field("user")?, dish: field("dish")? })
}

/// The `user` and `dish` fields of a form or JSON body; none for an empty or other body.
fn body_fields(req: &Request) -> Result<Vec<(String, String)>, String> {
    let body = req.body().trim_ascii();
    if body.is_empty() {
        return Ok(Vec::new());
    }
    let media_type = req
        .header("content-type")
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if media_type == "application/x-www-form-urlencoded" {
        let form = req.text().map_err(|e| e.to_string())?;
        // A form body is encoded like a query string, which the SDK decodes.
        return Ok(Request::new("POST", format!("?{form}")).query_pairs());
    }
    if media_type == "application/json" || media_type.ends_with("+json") || body.starts_with(b"{") {
        let Value::Object(object) = req.json::<Value>().map_err(|e| format!("body: {e}"))? else {
            return Err("the JSON body must be an object".into());
        };
        let mut fields = Vec::new();
        for (name, value) in object.into_iter().filter(|(n, _)| n == "user" || n == "dish") {
            match value {
                Value::String(s) => fields.push((name, s)),
                Value::Null => {}
                _ => return Err(format!("`{name}` must be a string")),
            }
        }
        return Ok(fields);
    }
    Ok(Vec::new())
}

/// The minutes of a kitchen's `201` `{"mins": N}`.
fn estimate(answer: &ClientResponse) -> Option<u64> {
    if answer.status() != 201 {
        return None;
    }
    answer.json::<Value>().ok()?.get("mins")?.as_u64()
}

/// A new order id: the time in nanoseconds as 16 hex digits (ids sort by time), then 8 random
/// hex digits so that orders in the same nanosecond, on any host, do not collide.
fn order_id(now: Duration) -> String {
    let nanos = u64::try_from(now.as_nanos()).unwrap_or(u64::MAX);
    // `RandomState` is seeded from `wasi:random`; hashing the time on top keeps ids distinct
    // even if a host gave every instance the same seed.
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(nanos);
    format!("{nanos:016x}-{:08x}", hasher.finish() & 0xffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(req: &Request) -> Result<(String, String), String> {
        read_order(req).map(|o| (o.user, o.dish))
    }

    fn ok(user: &str, dish: &str) -> Result<(String, String), String> {
        Ok((user.to_string(), dish.to_string()))
    }

    #[test]
    fn fields_come_from_json_form_or_query() {
        let json = Request::new("POST", "/order")
            .with_header("content-type", "application/json")
            .with_body(r#"{"user": "ada", "dish": "ramen", "extra": 1}"#);
        assert_eq!(order(&json), ok("ada", "ramen"));
        let untyped_json = Request::new("POST", "/order").with_body(r#" {"user":"ada","dish":"pho"}"#);
        assert_eq!(order(&untyped_json), ok("ada", "pho"));
        let form = Request::new("POST", "/order")
            .with_header("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
            .with_body("user=J%C3%BCrgen+K&dish=pad%20thai");
        assert_eq!(order(&form), ok("Jürgen K", "pad thai"));
        assert_eq!(order(&Request::new("POST", "/order?user=ada&dish=ramen")), ok("ada", "ramen"));
    }

    #[test]
    fn the_body_wins_and_the_query_fills_gaps() {
        let req = Request::new("POST", "/order?user=bob&dish=soup")
            .with_header("content-type", "application/json")
            .with_body(r#"{"user": "ada", "dish": "  "}"#);
        assert_eq!(order(&req), ok("ada", "soup"));
    }

    #[test]
    fn bad_fields_are_refused_with_a_reason() {
        let missing = order(&Request::new("POST", "/order?user=ada")).unwrap_err();
        assert!(missing.contains("`dish` is required"), "{missing}");
        let long = format!("/order?user=ada&dish={}", "x".repeat(MAX_CHARS + 1));
        assert!(order(&Request::new("POST", long)).unwrap_err().contains("at most 100"));
        let exactly = format!("/order?user=ada&dish={}", "é".repeat(MAX_CHARS));
        assert!(order(&Request::new("POST", exactly)).is_ok(), "the limit counts characters");
        assert!(order(&Request::new("POST", "/order?user=a%0Ab&dish=x")).unwrap_err().contains("control"));
        let number = Request::new("POST", "/order").with_body(r#"{"user": 7, "dish": "x"}"#);
        assert_eq!(order(&number), Err("`user` must be a string".into()));
        let array =
            Request::new("POST", "/order").with_header("content-type", "application/json").with_body("[]");
        assert_eq!(order(&array), Err("the JSON body must be an object".into()));
        let broken =
            Request::new("POST", "/order").with_header("content-type", "application/json").with_body("{");
        assert!(order(&broken).unwrap_err().starts_with("body: invalid JSON"));
    }

    #[test]
    fn ids_sort_by_time_and_differ_within_a_nanosecond() {
        let a = order_id(Duration::from_nanos(1));
        let b = order_id(Duration::from_nanos(1));
        let c = order_id(Duration::from_secs(1_700_000_000));
        assert_eq!(a.len(), 25);
        assert!(a.starts_with("0000000000000001-"), "{a}");
        assert_ne!(a, b);
        assert!(a < c && b < c);
    }
}
