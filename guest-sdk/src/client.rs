//! Outbound HTTP: `mixio::http::get(url)`, `mixio::http::post(url).json(&v).send()`.
//! Included in [`crate::http`].

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Headers;
use crate::Error;
use crate::bindings::mixio::io::http_client as wit;

/// Sends a `GET` request to `url` and waits for the whole response.
///
/// ```no_run
/// let resp = mixio::http::get("https://api.example.com/status")?;
/// if resp.status() == 200 {
///     let status: serde_json::Value = resp.json()?;
/// }
/// # Ok::<(), mixio::Error>(())
/// ```
pub fn get(url: &str) -> Result<ClientResponse, Error> {
    request("GET", url).send()
}

/// Starts a `POST` request to `url`.
///
/// ```no_run
/// let resp = mixio::http::post("http://127.0.0.1:3000/kitchen")
///     .header("x-request-id", "42")
///     .json(&serde_json::json!({ "dish": "soup" }))
///     .send()?;
/// # Ok::<(), mixio::Error>(())
/// ```
pub fn post(url: &str) -> RequestBuilder {
    request("POST", url)
}

/// Starts a `PUT` request to `url`.
pub fn put(url: &str) -> RequestBuilder {
    request("PUT", url)
}

/// Starts a `DELETE` request to `url`.
pub fn delete(url: &str) -> RequestBuilder {
    request("DELETE", url)
}

/// Starts a request with any method.
pub fn request(method: &str, url: &str) -> RequestBuilder {
    RequestBuilder {
        request: wit::OutgoingRequest {
            method: method.to_ascii_uppercase(),
            url: url.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout_ms: None,
        },
        error: None,
    }
}

/// An outbound request being built; [`RequestBuilder::send`] sends it.
#[must_use = "a request is sent by `.send()`"]
pub struct RequestBuilder {
    request: wit::OutgoingRequest,
    error: Option<Error>,
}

impl RequestBuilder {
    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<Vec<u8>>) -> RequestBuilder {
        self.request.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> RequestBuilder {
        self.request.body = body.into();
        self
    }

    /// Sets the body to `value` as JSON, with `content-type: application/json`.
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> RequestBuilder {
        match serde_json::to_vec(value) {
            Ok(body) => {
                self.request.body = body;
                self.header("content-type", "application/json")
            }
            Err(e) => {
                self.error = Some(Error::Json(e.to_string()));
                self
            }
        }
    }

    /// Gives up after `timeout` (the host may cap it).
    pub fn timeout(mut self, timeout: Duration) -> RequestBuilder {
        self.request.timeout_ms = Some(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// Sends the request and waits for the whole response. The guest is suspended meanwhile.
    pub fn send(self) -> Result<ClientResponse, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let r = crate::sys::http_send(&self.request)?;
        Ok(ClientResponse { status: r.status, headers: r.headers, body: r.body })
    }
}

/// The response to an outbound request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientResponse {
    status: u16,
    headers: Headers,
    body: Vec<u8>,
}

impl ClientResponse {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The first value of header `name` (case-insensitive) if it is UTF-8 text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// All header fields.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The body bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<&str, Error> {
        std::str::from_utf8(&self.body).map_err(|_| Error::InvalidUtf8("response body"))
    }

    /// The body parsed as JSON into `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| Error::Json(e.to_string()))
    }
}
