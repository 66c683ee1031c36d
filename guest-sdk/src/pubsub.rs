//! Publish messages to topics the host (and other hosts sharing its backend) subscribes to.
//!
//! ```no_run
//! mixio::pubsub::publish_json("orders", &serde_json::json!({ "id": 7 }))?;
//! # Ok::<(), mixio::Error>(())
//! ```
//!
//! A topic is dot-separated words (`orders.eu`); the host delivers it as
//! `<namespace>.<topic>`. Delivery is at most once, to the subscribers present.

use serde::Serialize;

use crate::Error;

/// Publishes `payload` to `topic`.
pub fn publish(topic: &str, payload: impl AsRef<[u8]>) -> Result<(), Error> {
    Ok(crate::sys::publish(topic, payload.as_ref())?)
}

/// Publishes `value` serialized as JSON to `topic`.
pub fn publish_json<T: Serialize + ?Sized>(topic: &str, value: &T) -> Result<(), Error> {
    let bytes = serde_json::to_vec(value).map_err(|e| Error::Json(e.to_string()))?;
    publish(topic, bytes)
}
