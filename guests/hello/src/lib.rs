//! The smallest handler: greets `?name=` (or the world), with the configured `greeting`
//! (default "hello").

use mixio::http::{Request, Response};

#[mixio::handler]
fn handle(req: Request) -> Response {
    let name = req.query_param("name").unwrap_or_else(|| "world".to_string());
    let greeting = mixio::config::get("greeting").unwrap_or_else(|| "hello".to_string());
    Response::text(format!("{greeting}, {name}!\n"))
}
