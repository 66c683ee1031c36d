//! The body of the HTTP messages the host passes between an HTTP trigger, the outbound HTTP
//! client and in-process requests ([`LocalServer`](crate::capabilities::http_client::LocalServer)).

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};

use crate::error::BoxError;

/// The body of an HTTP response an HTTP trigger sends, or a [`LocalServer`](crate::capabilities::http_client::LocalServer) answers.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// A body of `bytes`, whole.
pub fn full(bytes: Bytes) -> Body {
    Full::new(bytes).map_err(|never| match never {}).boxed_unsync()
}
