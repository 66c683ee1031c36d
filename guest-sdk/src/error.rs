use std::fmt;

/// Errors of the SDK's own helpers (reading a request body, encoding JSON).
///
/// Every variant has a readable message; returning one from a handler through `?` answers the
/// request with `500` and that message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A body or header that had to be UTF-8 text was not.
    InvalidUtf8(&'static str),
    /// A body could not be parsed as, or serialized to, JSON.
    Json(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidUtf8(what) => write!(f, "{what} is not valid UTF-8"),
            Error::Json(msg) => write!(f, "invalid JSON: {msg}"),
        }
    }
}

impl std::error::Error for Error {}
