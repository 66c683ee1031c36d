//! The pub/sub backend trait and the in-process backend.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Mutex;

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::broadcast;

/// Messages arriving on a subscription, in order; at most once each.
pub type Subscription = Pin<Box<dyn Stream<Item = Bytes> + Send>>;

/// What a pub/sub operation can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PubSubError(pub String);

impl crate::metrics::BackendFailure for PubSubError {
    fn is_backend_failure(&self) -> bool {
        true
    }
}

/// A pub/sub backend: in-process, NATS or Redis.
#[async_trait::async_trait]
pub trait PubSubBackend: Send + Sync + 'static {
    /// Delivers `payload` to the current subscribers of `subject` (none is fine).
    async fn publish(&self, subject: &str, payload: Bytes) -> Result<(), PubSubError>;
    /// Subscribes to `subject`; the subscription is active when this returns.
    async fn subscribe(&self, subject: &str) -> Result<Subscription, PubSubError>;
    /// Checks the backend is reachable.
    async fn ping(&self) -> Result<(), PubSubError>;
}

/// Messages kept for a subscriber that is not reading; older ones are dropped beyond this.
const BUFFER: usize = 1024;

/// Topics within this process only.
#[derive(Default)]
pub struct MemoryPubSub {
    topics: Mutex<HashMap<String, broadcast::Sender<Bytes>>>,
}

#[async_trait::async_trait]
impl PubSubBackend for MemoryPubSub {
    async fn publish(&self, subject: &str, payload: Bytes) -> Result<(), PubSubError> {
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = topics.get(subject)
            && sender.send(payload).is_err()
        {
            // Nobody listens any more.
            topics.remove(subject);
        }
        Ok(())
    }

    async fn subscribe(&self, subject: &str) -> Result<Subscription, PubSubError> {
        let receiver = {
            let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
            topics.entry(subject.to_string()).or_insert_with(|| broadcast::channel(BUFFER).0).subscribe()
        };
        Ok(Box::pin(futures_util::stream::unfold(receiver, |mut receiver| async move {
            loop {
                match receiver.recv().await {
                    Ok(message) => return Some((message, receiver)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })))
    }

    async fn ping(&self) -> Result<(), PubSubError> {
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod conformance {
    //! One suite every backend must pass.
    use std::time::Duration;

    use futures_util::StreamExt;

    use super::*;

    /// Runs the suite on `ps`; `elsewhere` is a second client of the same backend (another
    /// host's connection), or `ps` again for a backend within one process.
    pub(crate) async fn run(ps: &dyn PubSubBackend, elsewhere: &dyn PubSubBackend, prefix: &str) {
        ps.ping().await.unwrap();
        let subject = format!("{prefix}.orders");
        // Publishing with no subscriber is fine.
        ps.publish(&subject, Bytes::from_static(b"lost")).await.unwrap();

        let mut a = ps.subscribe(&subject).await.unwrap();
        let mut b = ps.subscribe(&subject).await.unwrap();
        let mut other = ps.subscribe(&format!("{prefix}.other")).await.unwrap();
        for i in 0..3 {
            ps.publish(&subject, Bytes::from(format!("m{i}"))).await.unwrap();
        }
        for sub in [&mut a, &mut b] {
            for i in 0..3 {
                let m = tokio::time::timeout(Duration::from_secs(5), sub.next()).await.unwrap().unwrap();
                assert_eq!(m, Bytes::from(format!("m{i}")), "in order, to every subscriber");
            }
        }
        let nothing = tokio::time::timeout(Duration::from_millis(100), other.next()).await;
        assert!(nothing.is_err(), "other topics receive nothing");

        // A subscription is in place when `subscribe` returns: a message another client
        // publishes right after reaches it.
        for i in 0..100 {
            let subject = format!("{prefix}.at-once.{i}");
            let mut sub = ps.subscribe(&subject).await.unwrap();
            elsewhere.publish(&subject, Bytes::from_static(b"right after")).await.unwrap();
            let m = tokio::time::timeout(Duration::from_secs(5), sub.next()).await;
            assert_eq!(m, Ok(Some(Bytes::from_static(b"right after"))), "round {i}");
        }
    }

    #[tokio::test]
    async fn memory() {
        let ps = MemoryPubSub::default();
        run(&ps, &ps, "mem").await;
    }
}
