//! Relays outbound HTTP and pub/sub for the caller: a small proxy that shows both SDK APIs.
//!
//! | request | what the guest does |
//! |---|---|
//! | `GET /fetch?url=U[&method=M][&timeout_ms=N]` (body forwarded) | fetches `U`; answers `200` with `{"status", "content_type", "body"}`, or `502` with the error |
//! | `POST /publish?topic=T` | publishes the request body to `T`; `204`, or `500` with the error |

use std::time::Duration;

use mixio::http::{Request, Response};

#[mixio::handler]
fn handle(req: Request) -> Response {
    match req.path() {
        "/fetch" => fetch(&req),
        "/publish" => {
            let topic = req.query_param("topic").unwrap_or_default();
            match mixio::pubsub::publish(&topic, req.body()) {
                Ok(()) => Response::new(204),
                Err(e) => Response::error(500, &e),
            }
        }
        _ => Response::error(404, "not found"),
    }
}

fn fetch(req: &Request) -> Response {
    let Some(url) = req.query_param("url") else { return Response::error(400, "?url= is required") };
    let method = req.query_param("method").unwrap_or_else(|| "GET".into());
    let mut outbound = mixio::http::request(&method, &url).body(req.body().to_vec());
    if let Some(ms) = req.query_param("timeout_ms").and_then(|v| v.parse().ok()) {
        outbound = outbound.timeout(Duration::from_millis(ms));
    }
    match outbound.send() {
        Ok(resp) => Response::json(&serde_json::json!({
            "status": resp.status(),
            "content_type": resp.header("content-type"),
            "body": String::from_utf8_lossy(resp.body()),
        })),
        Err(e) => Response::error(502, &e),
    }
}
