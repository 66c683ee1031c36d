//! The NATS backend: subjects shared by every host connected to the same server.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::OnceCell;

use super::backend::{PubSubBackend, PubSubError, Subscription};

/// A NATS server (`nats://host:port`); connects on first use and reconnects by itself.
pub struct NatsPubSub {
    url: String,
    client: OnceCell<async_nats::Client>,
}

impl NatsPubSub {
    /// A backend for `url`.
    pub fn new(url: &str) -> NatsPubSub {
        NatsPubSub { url: url.to_string(), client: OnceCell::new() }
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
        // The server knows of the subscription once it has answered a ping sent after it.
        client.flush().await.map_err(|e| PubSubError(format!("nats: {e}")))?;
        Ok(Box::pin(subscriber.map(|m| m.payload)))
    }

    async fn ping(&self) -> Result<(), PubSubError> {
        let client = self.client().await?;
        tokio::time::timeout(Duration::from_secs(5), client.flush())
            .await
            .map_err(|_| PubSubError("nats: no answer within 5 s".into()))?
            .map_err(|e| PubSubError(format!("nats: {e}")))
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn conformance() {
        let Some(url) = mixio_tests::services::nats() else { return };
        let prefix = mixio_tests::services::unique_name("pubsubtest");
        super::super::backend::conformance::run(&super::NatsPubSub::new(&url), &prefix).await;
    }
}
