//! `mixio:io/pubsub`: guests publish; the host (and other hosts on the same backend) subscribe
//! with [`Host::subscribe`](crate::Host::subscribe).
//!
//! A guest's topic `orders` is the backend subject `<namespace>.orders`, where the namespace is
//! the component's (its name unless configured to share one), escaped so that no two
//! namespaces share a subject ([`Host::subject`](crate::Host::subject)). Delivery is at most once, to
//! the subscribers present when the message is published.

mod backend;
mod nats;
mod redis;

pub use backend::{MemoryPubSub, PubSubBackend, PubSubError, Subscription};
pub use nats::NatsPubSub;
pub use redis::RedisPubSub;

use crate::capabilities::CapabilitiesView;
use crate::capabilities::bindings::mixio::io::pubsub::{Error, Host};
use crate::metrics::{Backend, backend_call};

/// Largest payload a guest may publish, in bytes.
pub const MAX_PAYLOAD: usize = 1 << 20;
/// Longest topic name, in bytes.
pub const MAX_TOPIC: usize = 256;

/// Checks a topic: dot-separated tokens of letters, digits, `-` and `_`.
pub(crate) fn check_topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() || topic.len() > MAX_TOPIC {
        return Err(format!("a topic must have 1 to {MAX_TOPIC} bytes"));
    }
    let valid = topic.split('.').all(|token| {
        !token.is_empty() && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    if !valid {
        return Err(format!(
            "invalid topic `{topic}`: use dot-separated words of letters, digits, `-` and `_`"
        ));
    }
    Ok(())
}

impl Host for CapabilitiesView<'_> {
    async fn publish(&mut self, topic: String, payload: Vec<u8>) -> wasmtime::Result<Result<(), Error>> {
        if let Err(e) = check_topic(&topic) {
            return Ok(Err(Error::Invalid(e)));
        }
        if payload.len() > MAX_PAYLOAD {
            return Ok(Err(Error::Invalid(format!(
                "a payload of {} bytes exceeds {MAX_PAYLOAD}",
                payload.len()
            ))));
        }
        if !self.caps.topic_granted(&topic) {
            return Ok(Err(Error::AccessDenied(format!(
                "topic `{topic}` is not granted to component `{}`",
                self.component
            ))));
        }
        let caps = self.caps.clone();
        let subject = format!("{}.{topic}", caps.namespace);
        Ok(backend_call(&self.counters, Backend::Pubsub, caps.pubsub.publish(&subject, payload.into()))
            .await
            .map_err(|e| Error::Backend(e.0)))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn topics_are_dot_separated_words() {
        assert!(super::check_topic("orders").is_ok());
        assert!(super::check_topic("orders.eu-west_1").is_ok());
        for bad in ["", "a..b", ".a", "a.", "a b", "a.*", "a.>", "ä"] {
            assert!(super::check_topic(bad).is_err(), "{bad:?}");
        }
    }
}
