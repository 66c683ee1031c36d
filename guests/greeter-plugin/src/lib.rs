//! A guest of a custom world (`wit/plugin.wit`): mixio's handler plus `acme:plugin/greeter`,
//! which the embedding application provides as an async host function.
//!
//! mixio's `types` interface is mapped onto the SDK's bindings with `with`, so the SDK's
//! `Request` and `Response` convert into the world's types; `generate_all` generates the rest
//! (bindings of interfaces the guest does not call cost nothing: unused imports are dropped).

use mixio::http::{Request, Response};

mod bindings {
    wit_bindgen::generate!({
        path: ["../../wit", "wit"],
        world: "acme:plugin/plugin",
        with: {
            "mixio:io/types@0.1.0": ::mixio::bindings::mixio::io::types,
            "mixio:io/log@0.1.0": ::mixio::bindings::mixio::io::log,
        },
        generate_all,
    });
}

struct Plugin;

impl bindings::exports::mixio::io::incoming_handler::Guest for Plugin {
    fn handle(
        request: mixio::bindings::mixio::io::types::Request,
    ) -> mixio::bindings::mixio::io::types::Response {
        let req = Request::from(request);
        let name = req.query_param("name").unwrap_or_else(|| "stranger".into());
        let greeting = bindings::acme::plugin::greeter::greet(&name);
        mixio::log::info!("greeted {name}");
        Response::text(format!("{greeting}\n")).into()
    }
}

bindings::export!(Plugin with_types_in bindings);
