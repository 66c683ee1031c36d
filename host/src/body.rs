//! The body of the HTTP messages the host passes between the server, the outbound HTTP client
//! and in-process requests.

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};

use crate::error::BoxError;

/// The body of the HTTP responses the server sends.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// A body of `bytes`, whole.
pub(crate) fn full(bytes: Bytes) -> Body {
    Full::new(bytes).map_err(|never| match never {}).boxed_unsync()
}
