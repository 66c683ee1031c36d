//! The guest of benchmark B1 (`bench/`): `?n=N` calls the host's `bench:looper/ping` N times and
//! answers `N`. The same component runs on mixio and on a bare Wasmtime embedding.

use mixio::http::{Request, Response};

mod bindings {
    wit_bindgen::generate!({
        path: ["../../wit", "wit"],
        world: "bench:looper/looper",
        with: {
            "mixio:io/types@0.1.0": ::mixio::bindings::mixio::io::types,
        },
        generate_all,
    });
}

struct Looper;

impl bindings::exports::mixio::io::incoming_handler::Guest for Looper {
    fn handle(
        request: mixio::bindings::mixio::io::types::Request,
    ) -> mixio::bindings::mixio::io::types::Response {
        let req = Request::from(request);
        let n: u32 = req.query_param("n").and_then(|n| n.parse().ok()).unwrap_or(1);
        for _ in 0..n {
            bindings::bench::looper::ping::ping();
        }
        Response::text(n.to_string()).into()
    }
}

bindings::export!(Looper with_types_in bindings);
