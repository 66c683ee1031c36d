//! The NATS backend: subjects shared by every host connected to the same server.
//!
//! Each [`PubSubBackend::subscribe`] is one NATS subscription on the client's one connection;
//! dropping the returned stream drops its `async_nats::Subscriber`, whose `Drop` sends `UNSUB`
//! (async-nats 0.51: `try_send` of the unsubscribe command, or a spawned `send` when the
//! command channel is full; and a message that still arrives for a dropped subscriber makes
//! the client unsubscribe it too). So nothing is kept for a subject without subscriptions.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::OnceCell;

use super::backend::{PubSubBackend, PubSubError, Subscription};

/// A NATS server (`nats://host:port`); connects on first use and reconnects by itself.
pub struct NatsPubSub {
    url: String,
    client: OnceCell<async_nats::Client>,
    /// Live subscriptions per subject.
    subjects: Arc<Mutex<HashMap<String, usize>>>,
}

impl NatsPubSub {
    /// A backend for `url`.
    pub fn new(url: &str) -> NatsPubSub {
        NatsPubSub { url: url.to_string(), client: OnceCell::new(), subjects: Arc::default() }
    }

    async fn client(&self) -> Result<&async_nats::Client, PubSubError> {
        self.client
            .get_or_try_init(|| async {
                async_nats::ConnectOptions::new()
                    .connection_timeout(Duration::from_secs(5))
                    .retry_on_initial_connect()
                    .connect(&self.url)
                    .await
            })
            .await
            .map_err(|e| PubSubError(format!("nats: {e}")))
    }
}

#[async_trait::async_trait]
impl PubSubBackend for NatsPubSub {
    async fn publish(&self, subject: &str, payload: Bytes) -> Result<(), PubSubError> {
        let client = self.client().await?;
        client.publish(subject.to_string(), payload).await.map_err(|e| PubSubError(format!("nats: {e}")))
    }

    async fn subscribe(&self, subject: &str) -> Result<Subscription, PubSubError> {
        let client = self.client().await?;
        let subscriber =
            client.subscribe(subject.to_string()).await.map_err(|e| PubSubError(format!("nats: {e}")))?;
        round_trip(client).await?;
        Ok(Box::pin(Counted { subscriber, _counted: SubjectCount::enter(&self.subjects, subject) }))
    }

    async fn ping(&self) -> Result<(), PubSubError> {
        round_trip(self.client().await?).await
    }

    fn subjects(&self) -> usize {
        self.subjects.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// A subscription's messages, counted in [`NatsPubSub::subjects`] while it lives.
struct Counted {
    subscriber: async_nats::Subscriber,
    _counted: SubjectCount,
}

impl Stream for Counted {
    type Item = Bytes;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        self.subscriber.poll_next_unpin(cx).map(|m| m.map(|m| m.payload))
    }
}

/// One live subscription to `subject` in a count of subscriptions per subject.
struct SubjectCount {
    subjects: Arc<Mutex<HashMap<String, usize>>>,
    subject: String,
}

impl SubjectCount {
    fn enter(subjects: &Arc<Mutex<HashMap<String, usize>>>, subject: &str) -> SubjectCount {
        *subjects.lock().unwrap_or_else(|e| e.into_inner()).entry(subject.to_string()).or_default() += 1;
        SubjectCount { subjects: subjects.clone(), subject: subject.to_string() }
    }
}

impl Drop for SubjectCount {
    fn drop(&mut self) {
        let mut subjects = self.subjects.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = subjects.get_mut(&self.subject) {
            *count -= 1;
            if *count == 0 {
                subjects.remove(&self.subject);
            }
        }
    }
}

/// Returns once the server has processed everything `client` sent before: it delivers a message
/// to a fresh inbox this connection subscribed to, and a server handles one connection's
/// commands in order. (`Client::flush` only writes them to the socket, so a subscription
/// "flushed" can still miss a message another connection publishes right after.)
async fn round_trip(client: &async_nats::Client) -> Result<(), PubSubError> {
    let error = |e: &dyn std::fmt::Display| PubSubError(format!("nats: {e}"));
    let probe = async {
        let inbox = client.new_inbox();
        let mut probe = client.subscribe(inbox.clone()).await.map_err(|e| error(&e))?;
        client.publish(inbox, Bytes::new()).await.map_err(|e| error(&e))?;
        probe.next().await.map(drop).ok_or_else(|| error(&"the connection closed"))
    };
    tokio::time::timeout(Duration::from_secs(5), probe)
        .await
        .map_err(|_| PubSubError("nats: no answer within 5 s".into()))?
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn conformance() {
        let Some(url) = mixio_tests::services::nats() else { return };
        let prefix = mixio_tests::services::unique_name("pubsubtest");
        let (a, b) = (super::NatsPubSub::new(&url), super::NatsPubSub::new(&url));
        super::super::backend::conformance::run(&a, &b, &prefix).await;
    }
}
