//! The Redis pub/sub backend: channels shared by every host using the same server.

use bytes::Bytes;
use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use tokio::sync::OnceCell;

use super::backend::{PubSubBackend, PubSubError, Subscription};

/// A Redis server used for pub/sub (`redis://host:port`).
pub struct RedisPubSub {
    client: redis::Client,
    publisher: OnceCell<ConnectionManager>,
}

impl RedisPubSub {
    /// A backend for `url`; connects on first use.
    pub fn new(url: &str) -> Result<RedisPubSub, String> {
        Ok(RedisPubSub {
            client: redis::Client::open(url).map_err(|e| e.to_string())?,
            publisher: OnceCell::new(),
        })
    }

    async fn publisher(&self) -> Result<ConnectionManager, PubSubError> {
        self.publisher
            .get_or_try_init(|| super::super::redis_connection(&self.client))
            .await
            .cloned()
            .map_err(|e| PubSubError(format!("redis: {e}")))
    }
}

#[async_trait::async_trait]
impl PubSubBackend for RedisPubSub {
    async fn publish(&self, subject: &str, payload: Bytes) -> Result<(), PubSubError> {
        let mut conn = self.publisher().await?;
        let _receivers: u64 = redis::cmd("PUBLISH")
            .arg(subject)
            .arg(payload.as_ref())
            .query_async(&mut conn)
            .await
            .map_err(|e| PubSubError(format!("redis: {e}")))?;
        Ok(())
    }

    async fn subscribe(&self, subject: &str) -> Result<Subscription, PubSubError> {
        let mut pubsub =
            self.client.get_async_pubsub().await.map_err(|e| PubSubError(format!("redis: {e}")))?;
        pubsub.subscribe(subject).await.map_err(|e| PubSubError(format!("redis: {e}")))?;
        Ok(Box::pin(pubsub.into_on_message().map(|m| Bytes::copy_from_slice(m.get_payload_bytes()))))
    }

    async fn ping(&self) -> Result<(), PubSubError> {
        let mut conn = self.publisher().await?;
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(|e| PubSubError(format!("redis: {e}")))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn conformance() {
        let Some(url) = mixio_tests::services::redis() else { return };
        let prefix = mixio_tests::services::unique_name("pubsubtest");
        let (a, b) = (super::RedisPubSub::new(&url).unwrap(), super::RedisPubSub::new(&url).unwrap());
        super::super::backend::conformance::run(&a, &b, &prefix).await;
    }
}
