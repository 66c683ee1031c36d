//! `mixio:io/websocket`: guests push text to the websocket clients of a channel.
//!
//! Clients connect to `GET /ws/{channel}` on `mixio serve` (the `mixio-serve` crate). A guest's
//! `send` publishes the text on the host's pub/sub backend under a subject of the channel's
//! own (`_ws.<channel, escaped>`, out of reach of guest topics); every server with clients on
//! that channel subscribes to it, so a message reaches the clients of every host sharing the
//! backend.

use std::sync::Arc;

use crate::capabilities::bindings::mixio::io::websocket::{Error, Host};
use crate::capabilities::pubsub::PubSubBackend;
use crate::capabilities::{Backends, Capability, Grants, Resolved, View, allows};
use crate::metrics::{Backend, backend_call};

/// The websocket capability.
pub(crate) struct Websocket;

/// What a component is granted of websockets: its channels, on the host's pub/sub backend.
pub(crate) struct WebsocketGrants {
    /// Channels the component may send to; `*` for any.
    channels: Vec<String>,
    backend: Arc<dyn PubSubBackend>,
}

impl Capability for Websocket {
    type Grants = WebsocketGrants;
    type State = ();

    fn resolve(_: &str, grants: &Grants, backends: &Backends) -> Resolved<WebsocketGrants> {
        Ok(WebsocketGrants { channels: grants.channels.clone(), backend: backends.pubsub.clone() })
    }
}

/// Longest channel name, in bytes.
pub const MAX_CHANNEL: usize = 128;
/// Largest message, in bytes.
pub const MAX_MESSAGE: usize = 1 << 20;

/// Checks a channel name: 1 to [`MAX_CHANNEL`] bytes, no control characters.
pub fn check_channel(channel: &str) -> Result<(), String> {
    if channel.is_empty() || channel.len() > MAX_CHANNEL {
        return Err(format!("a channel name must have 1 to {MAX_CHANNEL} bytes"));
    }
    if channel.chars().any(char::is_control) {
        return Err("a channel name must not contain control characters".into());
    }
    Ok(())
}

/// The pub/sub subject of websocket channel `channel`: `_ws.` and the channel as a
/// [`name_token`](super::name_token), one subject token on every backend that no other channel
/// shares. Guest topics are `<namespace token>.<topic>` and a namespace token never starts with
/// `_`, so no guest can publish to these subjects.
pub(crate) fn subject(channel: &str) -> String {
    format!("_ws.{}", super::name_token(channel))
}

impl Host for View<'_, Websocket> {
    async fn send(&mut self, channel: String, text: String) -> wasmtime::Result<Result<(), Error>> {
        if let Err(e) = check_channel(&channel) {
            return Ok(Err(Error::Invalid(e)));
        }
        if text.len() > MAX_MESSAGE {
            return Ok(Err(Error::Invalid(format!(
                "a message of {} bytes exceeds {MAX_MESSAGE}",
                text.len()
            ))));
        }
        if !allows(&self.grants.channels, &channel) {
            return Ok(Err(Error::AccessDenied(format!(
                "websocket channel `{channel}` is not granted to component `{}`",
                self.caller.component
            ))));
        }
        let subject = subject(&channel);
        let publish = self.grants.backend.publish(&subject, text.into());
        Ok(backend_call(&self.caller.counters, Backend::Pubsub, publish)
            .await
            .map_err(|e| Error::Backend(e.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::{check_channel, subject};

    #[test]
    fn channels_escape_to_one_subject_token() {
        assert_eq!(subject("ada"), "_ws.ada");
        assert_eq!(subject("a.b c"), "_ws.a%2Eb%20c");
        assert_eq!(subject("José"), "_ws.Jos%C3%A9");
        assert_eq!(subject("_"), "_ws.%5F");
        assert_ne!(subject("a_b"), subject("a.b"));
        assert!(check_channel("").is_err());
        assert!(check_channel(&"x".repeat(129)).is_err());
        assert!(check_channel("a\nb").is_err());
        assert!(check_channel("any name, ünïcode").is_ok());
    }
}
