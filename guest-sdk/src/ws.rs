//! Push messages to websocket clients (`mixio:io/websocket`).
//!
//! Browsers and other clients connect to the host at `GET /ws/{channel}`; [`send`] delivers a
//! text message to every client connected to `channel`, on this host and on every host sharing
//! its pub/sub backend. A channel nobody listens to is not an error.
//!
//! ```no_run
//! mixio::ws::send("ada", "your order is on its way")?;
//! mixio::ws::send_json("ada", &serde_json::json!({ "mins": 42 }))?;
//! # Ok::<(), mixio::Error>(())
//! ```
//!
//! The component must be granted the channel (`websocket = ["*"]` in `mixio.toml` grants them
//! all). Delivery is at most once; a client too slow to keep up is disconnected.

use serde::Serialize;

use crate::Error;

/// Sends `text` to every client of `channel`.
pub fn send(channel: &str, text: &str) -> Result<(), Error> {
    Ok(crate::sys::ws_send(channel, text)?)
}

/// Sends `value` serialized as JSON to every client of `channel`.
pub fn send_json<T: Serialize + ?Sized>(channel: &str, value: &T) -> Result<(), Error> {
    let text = serde_json::to_string(value).map_err(|e| Error::Json(e.to_string()))?;
    send(channel, &text)
}
