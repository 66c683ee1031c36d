//! A guest of a custom world (`wit/plugin.wit`): mixio's handler plus `acme:plugin/greeter`,
//! which the embedding application provides as an async host function.
//!
//! mixio's own interfaces are mapped onto the SDK's bindings with `with`, so the SDK's types
//! and functions work unchanged.

use mixio::http::{Request, Response};

wit_bindgen::generate!({
    path: ["../../wit", "wit"],
    world: "acme:plugin/plugin",
    with: {
        "mixio:io/types@0.1.0": mixio::bindings::mixio::io::types,
        "mixio:io/time@0.1.0": mixio::bindings::mixio::io::time,
        "mixio:io/log@0.1.0": mixio::bindings::mixio::io::log,
    },
});

struct Plugin;

impl exports::mixio::io::incoming_handler::Guest for Plugin {
    fn handle(
        request: mixio::bindings::mixio::io::types::Request,
    ) -> mixio::bindings::mixio::io::types::Response {
        let req = Request::from(request);
        let name = req.query_param("name").unwrap_or_else(|| "stranger".into());
        let greeting = acme::plugin::greeter::greet(&name);
        mixio::log::info!("greeted {name}");
        Response::text(format!("{greeting}\n")).into()
    }
}

export!(Plugin);
