//! Host bindings generated from mixio's WIT (`wit/` at the repository root).
//!
//! Imports that can wait are `async`: the guest's fiber is suspended while their future is
//! pending. Clock reads and logging never wait and are plain functions. Every import gets a
//! `tracing` span.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "mixio:io/handler",
    imports: {
        "mixio:io/time.now": tracing,
        "mixio:io/time.monotonic-now": tracing,
        "mixio:io/log.log": tracing,
        // Not traced by bindgen: its results are configuration values, which may be secrets.
        "mixio:io/config.get": trappable,
        default: async | trappable | tracing,
    },
    with: {
        "mixio:io/kv.store": crate::capabilities::kv::OpenStore,
        "mixio:io/sql.connection": crate::capabilities::sql::OpenConnection,
    },
    exports: { default: async },
    additional_derives: [PartialEq],
});

pub use self::mixio::io::types::{Request, Response};

/// The name under which handler guests export their entry point.
pub const HANDLER_EXPORT: &str = "mixio:io/incoming-handler@0.1.0";

impl Request {
    /// A request with no headers and an empty body.
    pub fn new(method: impl Into<String>, path_with_query: impl Into<String>) -> Request {
        Request {
            method: method.into().to_ascii_uppercase(),
            path_with_query: path_with_query.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A `GET` request for `path_with_query`.
    pub fn get(path_with_query: impl Into<String>) -> Request {
        Request::new("GET", path_with_query)
    }

    /// Adds a header field (the name is lower-cased).
    pub fn with_header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Request {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// Replaces the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }

    /// The body as text, with invalid UTF-8 replaced.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
}
