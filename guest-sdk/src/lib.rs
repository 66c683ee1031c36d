#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod config;
pub mod http;
pub mod kv;
pub mod log;
pub mod pubsub;
pub mod sql;
pub mod time;
pub mod ws;

mod error;
mod imports;
#[cfg(all(feature = "native", not(target_arch = "wasm32")))]
pub mod native;
mod sys;
pub use error::Error;

/// Declares the function that handles requests.
///
/// The function takes a [`http::Request`] and returns anything that implements
/// [`http::IntoResponse`]: a [`http::Response`], or a `Result<Response, E>` whose error is
/// turned into a `500` response carrying the error's message.
///
/// ```no_run
/// use mixio::http::{Request, Response};
///
/// #[mixio::handler]
/// fn handle(req: Request) -> Result<Response, mixio::Error> {
///     let name = req.query_param("name").unwrap_or_else(|| "world".into());
///     Ok(Response::text(format!("hello, {name}!")))
/// }
/// ```
///
/// A handler is a plain synchronous function; `async fn` is refused at compile time. Each
/// request runs in a fresh instance of the guest, so statics do not carry over between
/// requests.
pub use mixio_macros::handler;

/// The bindings generated from mixio's WIT (`wit/` at the repository root).
///
/// The modules above wrap them in plain Rust types. Reach for these to write a guest of a
/// world of your own that includes mixio's: map mixio's interfaces onto these modules with
/// `wit_bindgen::generate!`'s `with` option, and convert requests and responses with `From`:
///
/// ```ignore
/// mod bindings {
///     wit_bindgen::generate!({
///         path: ["../../wit", "wit"],               // mixio's WIT, then yours
///         world: "acme:plugin/plugin",              // includes mixio:io/handler
///         with: {
///             "mixio:io/types@0.1.0": ::mixio::bindings::mixio::io::types,
///             "mixio:io/log@0.1.0": ::mixio::bindings::mixio::io::log,
///         },
///         generate_all,                             // the interfaces not mapped above
///     });
/// }
/// ```
///
/// `guests/greeter-plugin` in the repository is a complete example.
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "mixio:io/handler",
        pub_export_macro: true,
        export_macro_name: "export_handler",
        default_bindings_module: "mixio::bindings",
        additional_derives: [PartialEq],
    });
}

/// What `#[mixio::handler]` expands to refers to these; they are not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::bindings::export_handler;
    pub use crate::bindings::exports::mixio::io::incoming_handler::Guest;
    pub use crate::bindings::mixio::io::types::{Request as WitRequest, Response as WitResponse};

    /// Runs the user's handler on one request and converts its answer.
    pub fn serve<R: crate::http::IntoResponse>(
        request: WitRequest,
        handler: impl FnOnce(crate::http::Request) -> R,
    ) -> WitResponse {
        handler(request.into()).into_response().into()
    }
}
