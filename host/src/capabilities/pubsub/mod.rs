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

pub use backend::Subscription;
pub(crate) use backend::{MemoryPubSub, PubSubBackend};
pub(crate) use nats::NatsPubSub;
pub(crate) use redis::RedisPubSub;

use std::sync::Arc;

use crate::capabilities::bindings::mixio::io::pubsub::{Error, Host};
use crate::capabilities::{Backends, Capability, Grants, Resolved, View, allows, grant_error, namespace};
use crate::metrics::{Backend, backend_call};

/// Largest payload a guest may publish, in bytes.
pub const MAX_PAYLOAD: usize = 1 << 20;
/// Longest topic name, in bytes.
pub const MAX_TOPIC: usize = 256;

/// The pub/sub capability.
pub(crate) struct PubSub;

/// What a component is granted of pub/sub: its topics, on the host's backend, in its namespace.
pub(crate) struct PubSubGrants {
    /// Topics the component may publish to; `*` for any.
    topics: Vec<String>,
    backend: Arc<dyn PubSubBackend>,
    /// The component's namespace, the first token of its subjects.
    namespace: String,
}

impl Capability for PubSub {
    type Grants = PubSubGrants;
    type State = ();

    fn resolve(component: &str, grants: &Grants, backends: &Backends) -> Resolved<PubSubGrants> {
        for topic in grants.topics.iter().filter(|t| *t != "*") {
            check_topic(topic).map_err(|e| grant_error(component, e))?;
        }
        Ok(PubSubGrants {
            topics: grants.topics.clone(),
            backend: backends.pubsub.clone(),
            namespace: namespace(component, grants),
        })
    }
}

/// The backend a URL names: `memory`, `nats://HOST:PORT` or `redis://HOST:PORT`.
pub(crate) fn open(url: &str) -> Result<Arc<dyn PubSubBackend>, String> {
    Ok(if url == "memory" {
        Arc::new(MemoryPubSub::default())
    } else if url.starts_with("nats://") {
        Arc::new(NatsPubSub::new(url))
    } else if url.starts_with("redis://") || url.starts_with("rediss://") {
        Arc::new(RedisPubSub::new(url)?)
    } else {
        return Err("unknown backend; use `memory`, `nats://HOST:PORT` or `redis://HOST:PORT`".into());
    })
}

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

impl Host for View<'_, PubSub> {
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
        if !allows(&self.grants.topics, &topic) {
            return Ok(Err(Error::AccessDenied(format!(
                "topic `{topic}` is not granted to component `{}`",
                self.caller.component
            ))));
        }
        let subject = format!("{}.{topic}", self.grants.namespace);
        let publish = self.grants.backend.publish(&subject, payload.into());
        Ok(backend_call(&self.caller.counters, Backend::Pubsub, publish)
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
