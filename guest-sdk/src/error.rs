use std::fmt;

/// The error of every fallible call in the SDK: a capability's typed error, or a failure of
/// the SDK's own helpers (reading a request body, encoding JSON).
///
/// Every variant has a readable message; returning one from a handler through `?` answers the
/// request with `500` and that message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A body or value that had to be UTF-8 text was not.
    InvalidUtf8(&'static str),
    /// A body or value could not be parsed as, or serialized to, JSON.
    Json(String),
    /// The store, database or topic is not granted to this component.
    AccessDenied(String),
    /// An argument was refused: a key or value too long, a TTL of zero, a counter that is not
    /// an integer.
    Invalid(String),
    /// A SQL statement is invalid (syntax, unknown table or column, parameters).
    InvalidQuery(String),
    /// A SQL constraint (unique, foreign key, not null, check) was violated.
    ConstraintViolation(String),
    /// `commit` or `rollback` without `begin`, or `begin` twice.
    TransactionState(String),
    /// A column could not be read as the type asked for.
    Column(String),
    /// A configuration variable the component needs is not set.
    MissingConfig(String),
    /// The URL (or a redirect target) is not on the component's allowed hosts.
    NotAllowed(String),
    /// An outbound request is malformed (URL, method, header).
    InvalidRequest(String),
    /// An outbound request got no complete answer within its deadline.
    Timeout,
    /// An outbound response exceeded the host's size limit (in bytes).
    TooLarge(u64),
    /// Name resolution, connection, TLS or protocol failure of an outbound request.
    Connection(String),
    /// The backend failed (unreachable, ...); the call may succeed later.
    Backend(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidUtf8(what) => write!(f, "{what} is not valid UTF-8"),
            Error::Json(msg) => write!(f, "invalid JSON: {msg}"),
            Error::AccessDenied(msg) => write!(f, "access denied: {msg}"),
            Error::Invalid(msg) => write!(f, "invalid argument: {msg}"),
            Error::InvalidQuery(msg) => write!(f, "invalid query: {msg}"),
            Error::ConstraintViolation(msg) => write!(f, "constraint violation: {msg}"),
            Error::TransactionState(msg) => write!(f, "transaction: {msg}"),
            Error::Column(msg) => write!(f, "column: {msg}"),
            Error::MissingConfig(name) => write!(f, "configuration variable `{name}` is not set"),
            Error::NotAllowed(url) => write!(f, "not allowed: {url}"),
            Error::InvalidRequest(msg) => write!(f, "invalid request: {msg}"),
            Error::Timeout => write!(f, "timed out"),
            Error::TooLarge(limit) => write!(f, "response larger than {limit} bytes"),
            Error::Connection(msg) => write!(f, "connection failed: {msg}"),
            Error::Backend(msg) => write!(f, "backend error: {msg}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<crate::bindings::mixio::io::kv::Error> for Error {
    fn from(e: crate::bindings::mixio::io::kv::Error) -> Error {
        use crate::bindings::mixio::io::kv::Error as E;
        match e {
            E::AccessDenied(m) => Error::AccessDenied(m),
            E::Invalid(m) => Error::Invalid(m),
            E::Backend(m) => Error::Backend(m),
        }
    }
}

impl From<crate::bindings::mixio::io::sql::Error> for Error {
    fn from(e: crate::bindings::mixio::io::sql::Error) -> Error {
        use crate::bindings::mixio::io::sql::Error as E;
        match e {
            E::AccessDenied(m) => Error::AccessDenied(m),
            E::InvalidQuery(m) => Error::InvalidQuery(m),
            E::ConstraintViolation(m) => Error::ConstraintViolation(m),
            E::TransactionState(m) => Error::TransactionState(m),
            E::Backend(m) => Error::Backend(m),
        }
    }
}

impl From<crate::bindings::mixio::io::http_client::Error> for Error {
    fn from(e: crate::bindings::mixio::io::http_client::Error) -> Error {
        use crate::bindings::mixio::io::http_client::Error as E;
        match e {
            E::NotAllowed(m) => Error::NotAllowed(m),
            E::InvalidRequest(m) => Error::InvalidRequest(m),
            E::Timeout => Error::Timeout,
            E::TooLarge(n) => Error::TooLarge(n),
            E::Connection(m) => Error::Connection(m),
        }
    }
}

impl From<crate::bindings::mixio::io::pubsub::Error> for Error {
    fn from(e: crate::bindings::mixio::io::pubsub::Error) -> Error {
        use crate::bindings::mixio::io::pubsub::Error as E;
        match e {
            E::AccessDenied(m) => Error::AccessDenied(m),
            E::Invalid(m) => Error::Invalid(m),
            E::Backend(m) => Error::Backend(m),
        }
    }
}

impl From<crate::bindings::mixio::io::websocket::Error> for Error {
    fn from(e: crate::bindings::mixio::io::websocket::Error) -> Error {
        use crate::bindings::mixio::io::websocket::Error as E;
        match e {
            E::AccessDenied(m) => Error::AccessDenied(m),
            E::Invalid(m) => Error::Invalid(m),
            E::Backend(m) => Error::Backend(m),
        }
    }
}
