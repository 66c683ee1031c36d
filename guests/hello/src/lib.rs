//! The smallest handler: greets `?name=` (or the world).

use mixio::http::{Request, Response};

#[mixio::handler]
fn handle(req: Request) -> Response {
    let name = req.query_param("name").unwrap_or_else(|| "world".to_string());
    Response::text(format!("hello, {name}!\n"))
}
