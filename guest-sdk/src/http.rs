//! HTTP: the [`Request`] a handler receives and the [`Response`] it returns, and outbound
//! requests ([`get`], [`post`], [`request`]) to the hosts the component is allowed to reach.
//!
//! ```no_run
//! use mixio::http::{Request, Response};
//!
//! #[derive(serde::Deserialize)]
//! struct Order { user: String, dish: String }
//!
//! #[mixio::handler]
//! fn handle(req: Request) -> Result<Response, mixio::Error> {
//!     let order: Order = req.json()?;
//!     Ok(Response::json(&serde_json::json!({ "user": order.user, "dish": order.dish }))
//!         .with_status(201))
//! }
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;
use crate::bindings::mixio::io::types as wit;

#[path = "client.rs"]
mod client;
pub use client::{ClientResponse, RequestBuilder, delete, get, post, put, request};

/// Header fields: lower-case names with raw byte values, in order.
pub type Headers = Vec<(String, Vec<u8>)>;

/// An incoming request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    method: String,
    path_with_query: String,
    headers: Headers,
    body: Vec<u8>,
}

impl Request {
    /// A request with no headers and an empty body, e.g. for unit-testing a handler natively.
    pub fn new(method: impl Into<String>, path_with_query: impl Into<String>) -> Request {
        Request {
            method: method.into().to_ascii_uppercase(),
            path_with_query: path_with_query.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header (the name is lower-cased).
    pub fn with_header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Request {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// Replaces the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }

    /// The method, upper-case: `GET`, `POST`, ...
    pub fn method(&self) -> &str {
        &self.method
    }

    /// Path and query string as received, e.g. `/orders?id=7`.
    pub fn uri(&self) -> &str {
        &self.path_with_query
    }

    /// The path without the query string, e.g. `/orders`.
    pub fn path(&self) -> &str {
        self.path_with_query.split_once('?').map_or(&self.path_with_query, |(path, _)| path)
    }

    /// The raw query string after `?`, or `""`.
    pub fn query(&self) -> &str {
        self.path_with_query.split_once('?').map_or("", |(_, query)| query)
    }

    /// All `name=value` pairs of the query string, percent-decoded (`+` is a space).
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.query()
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (percent_decode(name), percent_decode(value))
            })
            .collect()
    }

    /// The first value of the query parameter `name`, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query_pairs().into_iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// All header fields.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The first value of header `name` (case-insensitive) if it is UTF-8 text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// The body bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<&str, Error> {
        std::str::from_utf8(&self.body).map_err(|_| Error::InvalidUtf8("request body"))
    }

    /// The body parsed as JSON into `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| Error::Json(e.to_string()))
    }
}

/// The answer to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    headers: Headers,
    body: Vec<u8>,
}

impl Response {
    /// An empty response with `status`.
    pub fn new(status: u16) -> Response {
        Response { status, headers: Vec::new(), body: Vec::new() }
    }

    /// `200` with a `text/plain` body.
    pub fn text(body: impl Into<String>) -> Response {
        Response::new(200).with_header("content-type", "text/plain; charset=utf-8").with_body(body.into())
    }

    /// `200` with `value` serialized as a JSON body; `500` if it cannot be serialized.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Response {
        match serde_json::to_vec(value) {
            Ok(body) => Response::new(200).with_header("content-type", "application/json").with_body(body),
            Err(e) => Response::error(500, &Error::Json(e.to_string())),
        }
    }

    /// `status` with `message` as a `text/plain` body, e.g. `Response::error(404, "no such order")`.
    pub fn error(status: u16, message: &(impl std::fmt::Display + ?Sized)) -> Response {
        Response::text(format!("{message}\n")).with_status(status)
    }

    /// Replaces the status.
    pub fn with_status(mut self, status: u16) -> Response {
        self.status = status;
        self
    }

    /// Sets header `name` (lower-cased), replacing any earlier value.
    pub fn with_header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Response {
        let name = name.to_ascii_lowercase();
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.into()));
        self
    }

    /// Replaces the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Response {
        self.body = body.into();
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// All header fields.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The body bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

impl From<wit::Request> for Request {
    fn from(r: wit::Request) -> Request {
        Request { method: r.method, path_with_query: r.path_with_query, headers: r.headers, body: r.body }
    }
}

impl From<Response> for wit::Response {
    fn from(r: Response) -> wit::Response {
        wit::Response { status: r.status, headers: r.headers, body: r.body }
    }
}

/// What a handler may return.
pub trait IntoResponse {
    /// Converts into the response sent to the client.
    fn into_response(self) -> Response;
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

/// `Ok` is the response; `Err` becomes `500` with the error's message, which is also logged.
impl<R: IntoResponse, E: std::fmt::Display> IntoResponse for Result<R, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(r) => r.into_response(),
            Err(e) => {
                crate::log::error!("handler failed: {e}");
                Response::error(500, &e)
            }
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi * 16 + lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_and_query_are_split() {
        let req = Request::new("get", "/orders?id=7&name=J%C3%BCrgen+K&flag");
        assert_eq!(req.method(), "GET");
        assert_eq!(req.path(), "/orders");
        assert_eq!(req.query(), "id=7&name=J%C3%BCrgen+K&flag");
        assert_eq!(req.query_param("name").as_deref(), Some("Jürgen K"));
        assert_eq!(req.query_param("flag").as_deref(), Some(""));
        assert_eq!(req.query_param("missing"), None);
        assert_eq!(Request::new("GET", "/plain").query(), "");
    }

    #[test]
    fn malformed_percent_escapes_are_kept_literally() {
        let req = Request::new("GET", "/?a=%zz&b=%4&c=100%");
        assert_eq!(req.query_param("a").as_deref(), Some("%zz"));
        assert_eq!(req.query_param("b").as_deref(), Some("%4"));
        assert_eq!(req.query_param("c").as_deref(), Some("100%"));
    }

    #[test]
    fn headers_are_case_insensitive() {
        let req = Request::new("GET", "/").with_header("Content-Type", "application/json");
        assert_eq!(req.header("content-type"), Some("application/json"));
        assert_eq!(req.header("CONTENT-TYPE"), Some("application/json"));
    }

    #[test]
    fn json_bodies_round_trip_and_errors_are_typed() {
        let req = Request::new("POST", "/").with_body(r#"{"user":"ada"}"#);
        let v: serde_json::Value = req.json().unwrap();
        assert_eq!(v["user"], "ada");
        let bad = Request::new("POST", "/").with_body("{nope");
        assert!(matches!(bad.json::<serde_json::Value>(), Err(Error::Json(_))));
        let binary = Request::new("POST", "/").with_body(vec![0xff, 0xfe]);
        assert_eq!(binary.text(), Err(Error::InvalidUtf8("request body")));
    }

    #[test]
    fn response_helpers_set_status_and_content_type() {
        let r = Response::json(&serde_json::json!({"mins": 30})).with_status(201);
        assert_eq!(r.status(), 201);
        assert_eq!(r.body(), br#"{"mins":30}"#);
        assert_eq!(r.headers(), &vec![("content-type".to_string(), b"application/json".to_vec())]);
        let r = Response::text("a").with_header("Content-Type", "text/html");
        assert_eq!(r.headers().len(), 1, "with_header replaces");
    }
}
