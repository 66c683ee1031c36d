//! The Redis pub/sub backend: channels shared by every host using the same server.
//!
//! Publishing uses the connection manager every Redis backend uses. Subscribing uses ONE further
//! connection per [`RedisPubSub`], however many subjects and subscriptions there are: a task
//! owns it, `SUBSCRIBE`s a subject when its first local subscription arrives and
//! `UNSUBSCRIBE`s it when the last leaves, and hands each message to the subject's local
//! subscriptions through the [`Registry`] that [`MemoryPubSub`](super::MemoryPubSub) uses too.
//! When the connection is lost the task connects again (backing off up to [`MAX_DELAY`]) and
//! subscribes again to every subject that has subscriptions; messages published meanwhile are
//! lost (delivery is at most once).
//!
//! Why a connection and reconnect loop of our own (an `aio::PubSub`, split) rather than
//! redis-rs' `ConnectionManager` with `set_push_sender` and `set_automatic_resubscription`
//! (redis-rs 1.8): the manager's resubscription is not sound enough for this.
//! - It reconnects on a disconnection, but only `number_of_retries` times; once they are spent
//!   it connects again only when a command is sent, and a subscriber connection with no new
//!   subject sends none, so after a longer outage it would stay deaf for good.
//! - It sends the resubscription with `let _ = pipeline.exec_async(..)` (its source says
//!   "TODO - should we ignore these failures?"): a failed resubscription is silent, and we
//!   could not tell which subjects are delivered.
//! - Its tracker follows the server's confirmations, so an `UNSUBSCRIBE` lost in an outage is
//!   subscribed again on reconnect, with no local subscriber, for good.
//! - It needs RESP3 (Redis 6 or later).
//!
//! Here one task does every `SUBSCRIBE` and `UNSUBSCRIBE` and keeps the set of subjects the
//! server confirmed; it reconciles that set with the registry's subjects after every change, so
//! a subject that is left and joined again at once ends subscribed, and a reconnect starts from
//! the empty set. That works with RESP2 and any Redis version.
//!
//! The reconciliation is incremental: the registry records, each once, the subjects that gained
//! their first subscription or lost their last since the task last looked, and the task compares
//! only those with its confirmed set, so a join or leave costs work for its subject only, however
//! many subjects there are (a hostile client churning channels among tens of thousands costs
//! O(1) per change, not O(subjects) under the registry's lock). Every subject is compared only
//! on a new connection (its confirmed set starts empty), or when more subjects changed meanwhile
//! than the larger of 4096 and the number of subjects with subscriptions (the registry then
//! drops its record, which keeps it bounded, and a full comparison costs no more than the
//! changes would).

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, PubSub, PubSubSink, PubSubStream};
use tokio::sync::{OnceCell, watch};

use super::backend::{PubSubBackend, PubSubError, Registry, Subscription};

/// Longest wait for the subscriber connection to be made.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for the server to answer a command on the subscriber connection.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait in [`RedisPubSub::subscribe`] for the server to confirm.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(15);
/// How often an idle subscriber connection is checked with a `PING`.
const PING_EVERY: Duration = Duration::from_secs(10);
/// The first wait before connecting again; it doubles up to [`MAX_DELAY`].
const MIN_DELAY: Duration = Duration::from_millis(100);
/// The longest wait before connecting again.
const MAX_DELAY: Duration = Duration::from_secs(2);
/// A connection that lasted this long was healthy: the next wait is [`MIN_DELAY`] again.
const HEALTHY: Duration = Duration::from_secs(10);
/// Most subjects in one `SUBSCRIBE` or `UNSUBSCRIBE`.
const BATCH: usize = 500;

/// A Redis server used for pub/sub (`redis://host:port`).
pub struct RedisPubSub {
    client: redis::Client,
    publisher: OnceCell<ConnectionManager>,
    shared: Arc<Shared>,
    /// The task owning the subscriber connection, started by the first subscription.
    subscriber: OnceLock<tokio::task::AbortHandle>,
}

/// What [`RedisPubSub`] and its subscriber task share.
struct Shared {
    registry: Arc<Registry>,
    /// Sent (modified) whenever entries become ready or an attempt fails, for the subscriptions
    /// waiting in [`RedisPubSub::subscribe`].
    status: watch::Sender<Status>,
}

/// The subscriber task's failures so far.
#[derive(Default)]
struct Status {
    /// Failed connections or commands.
    failures: u64,
    /// The last failure's message, `redis: ...`.
    error: String,
}

impl Shared {
    fn fail(&self, error: String) {
        tracing::warn!("{error}");
        self.status.send_modify(|status| {
            status.failures += 1;
            status.error = error;
        });
    }

    /// Wakes the subscriptions waiting to be ready.
    fn readied(&self) {
        self.status.send_modify(|_| {});
    }
}

impl RedisPubSub {
    /// A backend for `url`; connects on first use.
    pub fn new(url: &str) -> Result<RedisPubSub, String> {
        Ok(RedisPubSub {
            client: redis::Client::open(url).map_err(|e| e.to_string())?,
            publisher: OnceCell::new(),
            shared: Arc::new(Shared {
                registry: Arc::new(Registry::with_upstream()),
                status: watch::Sender::new(Status::default()),
            }),
            subscriber: OnceLock::new(),
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

impl Drop for RedisPubSub {
    fn drop(&mut self) {
        if let Some(task) = self.subscriber.get() {
            task.abort();
        }
        // Nothing delivers any more: end the subscriptions.
        self.shared.registry.close();
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
        self.subscriber.get_or_init(|| {
            tokio::spawn(run_subscriber(self.client.clone(), self.shared.clone())).abort_handle()
        });
        // Watching from before joining, not to miss the task's answer.
        let mut status = self.shared.status.subscribe();
        let failures = status.borrow_and_update().failures;
        let subscription = self.shared.registry.join(subject);
        let confirmed = async {
            loop {
                if self.shared.registry.is_ready(subject) {
                    return Ok(());
                }
                {
                    let status = status.borrow_and_update();
                    if status.failures != failures {
                        return Err(PubSubError(status.error.clone()));
                    }
                }
                // `Shared` holds the sender: `changed` cannot fail while we borrow `self`.
                let _ = status.changed().await;
            }
        };
        match tokio::time::timeout(SUBSCRIBE_TIMEOUT, confirmed).await {
            Ok(Ok(())) => Ok(subscription),
            // Dropping `subscription` leaves the subject again.
            Ok(Err(e)) => Err(e),
            Err(_) => Err(PubSubError(format!(
                "redis: subscribing to `{subject}` was not confirmed within {} s",
                SUBSCRIBE_TIMEOUT.as_secs()
            ))),
        }
    }

    async fn ping(&self) -> Result<(), PubSubError> {
        let mut conn = self.publisher().await?;
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(|e| PubSubError(format!("redis: {e}")))?;
        Ok(())
    }

    fn subjects(&self) -> usize {
        self.shared.registry.len()
    }
}

/// The subscriber task: connects, serves the connection until it is lost, and again.
async fn run_subscriber(client: redis::Client, shared: Arc<Shared>) {
    let mut delay = MIN_DELAY;
    loop {
        let connected = match tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub()).await {
            Ok(Ok(pubsub)) => Ok(pubsub),
            Ok(Err(e)) => Err(format!("redis: the subscriber connection failed: {e}")),
            Err(_) => Err(format!("redis: no subscriber connection within {} s", CONNECT_TIMEOUT.as_secs())),
        };
        match connected {
            Ok(pubsub) => {
                let since = tokio::time::Instant::now();
                let error = serve(pubsub, &shared).await;
                // The server delivers nothing now; subjects are subscribed again on the next
                // connection, whose first reconciliation compares every subject.
                shared.registry.upstream_lost();
                shared.fail(error);
                if since.elapsed() >= HEALTHY {
                    delay = MIN_DELAY;
                }
            }
            Err(error) => shared.fail(error),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_DELAY);
    }
}

/// Serves one subscriber connection: hands its messages to the registry while keeping its
/// subscriptions in line with the registry's subjects. Returns why it stopped.
///
/// Messages wait in redis-rs' (unbounded) channel only until the reader below takes them; it
/// never waits for a subscriber (a lagging one loses messages in its broadcast buffer), and it
/// runs in the same `select!` as the subscribing, so it keeps reading while a command waits.
async fn serve(pubsub: PubSub, shared: &Shared) -> String {
    let (mut sink, mut stream) = pubsub.split();
    let reader = read(&mut stream, shared);
    let writer = async {
        // The subjects the server confirmed on this connection. It starts empty, as the
        // registry's next diff (the first since `with_upstream` or `upstream_lost`) compares
        // every subject.
        let mut subscribed = HashSet::new();
        loop {
            if let Err(e) = reconcile(&mut sink, &mut subscribed, shared).await {
                return e;
            }
            tokio::select! {
                () = shared.registry.changed.notified() => {}
                () = tokio::time::sleep(PING_EVERY) => {
                    if let Err(e) = answered("PING", sink.ping::<redis::Value>()).await {
                        return e;
                    }
                }
            }
        }
    };
    tokio::select! {
        e = reader => e,
        e = writer => e,
    }
}

/// Hands every message of `stream` to the registry; returns when the connection is closed.
async fn read(stream: &mut PubSubStream, shared: &Shared) -> String {
    while let Some(message) = stream.next().await {
        shared
            .registry
            .deliver(message.get_channel_name(), Bytes::copy_from_slice(message.get_payload_bytes()));
    }
    "redis: the subscriber connection was closed".to_string()
}

/// Unsubscribes the subjects nobody subscribes to any more and subscribes those not subscribed
/// yet, updating `subscribed` with the server's confirmations. Only the subjects that changed
/// since the last call are examined (see [`Registry::diff`]); one changed meanwhile is recorded
/// again and examined by the next call, which the registry's `changed` notification triggers.
/// On an error, the connection is given up and the next one compares every subject.
async fn reconcile(
    sink: &mut PubSubSink,
    subscribed: &mut HashSet<String>,
    shared: &Shared,
) -> Result<(), String> {
    let diff = shared.registry.diff(subscribed);
    tracing::trace!(
        examined = diff.examined,
        missing = diff.missing.len(),
        unused = diff.unused.len(),
        "redis: reconciling the subscriptions"
    );
    if diff.readied {
        shared.readied();
    }
    for batch in diff.unused.chunks(BATCH) {
        answered("UNSUBSCRIBE", sink.unsubscribe(batch)).await?;
        // A subject joined again meanwhile is not ready (its entry is new): the next round
        // subscribes it again.
        for subject in batch {
            subscribed.remove(subject);
        }
    }
    for batch in diff.missing.chunks(BATCH) {
        answered("SUBSCRIBE", sink.subscribe(batch)).await?;
        subscribed.extend(batch.iter().cloned());
        shared.registry.mark_ready(batch);
        shared.readied();
    }
    Ok(())
}

/// `command`'s answer within [`RESPONSE_TIMEOUT`], or what went wrong.
async fn answered<T>(
    command: &str,
    answer: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, String> {
    match tokio::time::timeout(RESPONSE_TIMEOUT, answer).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(format!("redis: {command} on the subscriber connection failed: {e}")),
        Err(_) => Err(format!("redis: no answer to {command} within {} s", RESPONSE_TIMEOUT.as_secs())),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use futures_util::{FutureExt, StreamExt};
    use mixio_tests::proxy::TcpProxy;
    use mixio_tests::services;

    use super::super::backend::{PubSubBackend, conformance};
    use super::RedisPubSub;

    #[tokio::test]
    async fn conformance() {
        let Some(url) = services::redis() else { return };
        let prefix = services::unique_name("pubsubtest");
        let (a, b) = (RedisPubSub::new(&url).unwrap(), RedisPubSub::new(&url).unwrap());
        conformance::run(&a, &b, &prefix).await;
    }

    /// A plain connection, to look at the server.
    async fn inspector(url: &str) -> redis::aio::MultiplexedConnection {
        redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap()
    }

    /// How many connections subscribe to each of `subjects`.
    async fn numsub(conn: &mut redis::aio::MultiplexedConnection, subjects: &[String]) -> Vec<u64> {
        let answer: Vec<(String, u64)> =
            redis::cmd("PUBSUB").arg("NUMSUB").arg(subjects).query_async(conn).await.unwrap();
        answer.into_iter().map(|(_, n)| n).collect()
    }

    /// Polls `done` every 100 ms until it holds, at most 300 times (30 s): a bound against a
    /// hang, not a speed requirement.
    async fn eventually<F: Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
        for _ in 0..300 {
            if done().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("still waiting for {what} after 300 polls");
    }

    #[tokio::test]
    async fn every_subject_shares_one_connection_and_leaves_the_server_with_its_last_subscriber() {
        let Some(url) = services::redis() else { return };
        let prefix = services::unique_name("pubsubtest");
        let ps = RedisPubSub::new(&url).unwrap();
        let mut conn = inspector(&url).await;
        // Connections made from now on have larger ids.
        let first_id: u64 = redis::cmd("CLIENT").arg("ID").query_async(&mut conn).await.unwrap();

        let subscriptions = conformance::subscribe_many(&ps, &prefix).await;
        let subjects: Vec<String> = (0..conformance::MANY).map(|i| format!("{prefix}.many.{i}")).collect();
        assert_eq!(ps.subjects(), conformance::MANY);
        assert!(numsub(&mut conn, &subjects).await.iter().all(|&n| n == 1), "each subject subscribed once");
        let clients: String =
            redis::cmd("CLIENT").arg("LIST").arg("TYPE").arg("pubsub").query_async(&mut conn).await.unwrap();
        let field = |line: &str, name: &str| -> u64 {
            line.split(' ')
                .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let ours: Vec<&str> = clients
            .lines()
            .filter(|l| field(l, "id") > first_id && field(l, "sub") >= conformance::MANY as u64)
            .collect();
        assert_eq!(ours.len(), 1, "one subscriber connection for every subject: {clients}");
        let newer = clients.lines().filter(|l| field(l, "id") > first_id).count();
        assert!(newer < 100, "not a connection per subject: {newer} new subscriber connections");

        drop(subscriptions);
        assert_eq!(ps.subjects(), 0);
        eventually("the server to forget the subjects", || {
            let (mut conn, subjects) = (conn.clone(), &subjects);
            async move { numsub(&mut conn, subjects).await.iter().all(|&n| n == 0) }
        })
        .await;
    }

    #[tokio::test]
    async fn churning_subjects_among_many_leaves_the_server_with_those_subscribed() {
        let Some(url) = services::redis() else { return };
        let prefix = services::unique_name("pubsubtest");
        let (ps, elsewhere) = (RedisPubSub::new(&url).unwrap(), RedisPubSub::new(&url).unwrap());
        let mut conn = inspector(&url).await;
        let kept = conformance::subscribe_many(&ps, &prefix).await;
        let churn = |i: usize| format!("{prefix}.churn.{i}");
        for round in 0..300 {
            // Confirmed, then left.
            drop(ps.subscribe(&churn(round % 30)).await.unwrap());
            // Joined and left before the subscriber task looks.
            drop(ps.subscribe(&churn(30 + round % 30)).now_or_never());
        }
        // Left and joined again at once: ends subscribed.
        let again = churn(0);
        drop(ps.subscribe(&again).await.unwrap());
        let mut sub = ps.subscribe(&again).await.unwrap();
        elsewhere.publish(&again, Bytes::from_static(b"again")).await.unwrap();
        let m = tokio::time::timeout(Duration::from_secs(5), sub.next()).await;
        assert_eq!(m, Ok(Some(Bytes::from_static(b"again"))));
        assert_eq!(ps.subjects(), conformance::MANY + 1);

        let churned: Vec<String> = (1..60).map(churn).collect();
        eventually("the server to forget the churned subjects", || {
            let (mut conn, churned) = (conn.clone(), &churned);
            async move { numsub(&mut conn, churned).await.iter().all(|&n| n == 0) }
        })
        .await;
        assert_eq!(numsub(&mut conn, std::slice::from_ref(&again)).await, [1]);
        let subjects: Vec<String> = (0..conformance::MANY).map(|i| format!("{prefix}.many.{i}")).collect();
        assert!(numsub(&mut conn, &subjects).await.iter().all(|&n| n == 1), "the others stay subscribed");
        drop((kept, sub));
    }

    #[tokio::test]
    async fn subscriptions_come_back_after_the_connection_is_lost() {
        let Some(url) = services::redis() else { return };
        let proxy = TcpProxy::start(url.trim_start_matches("redis://")).await;
        let ps = RedisPubSub::new(&format!("redis://{}", proxy.addr())).unwrap();
        let publisher = RedisPubSub::new(&url).unwrap();
        let conn = inspector(&url).await;
        let subject = format!("{}.reconnect", services::unique_name("pubsubtest"));
        let subjects = [subject.clone()];

        let mut sub = ps.subscribe(&subject).await.unwrap();
        publisher.publish(&subject, Bytes::from_static(b"before")).await.unwrap();
        let m = tokio::time::timeout(Duration::from_secs(5), sub.next()).await;
        assert_eq!(m, Ok(Some(Bytes::from_static(b"before"))));

        proxy.down();
        eventually("the server to see the subscriber go", || {
            let (mut conn, subjects) = (conn.clone(), &subjects);
            async move { numsub(&mut conn, subjects).await == [0] }
        })
        .await;
        let error =
            ps.subscribe(&format!("{subject}.during")).await.err().expect("subscribing fails in an outage");
        assert!(error.0.starts_with("redis: "), "{error}");
        assert_eq!(ps.subjects(), 1, "the failed subscription left");

        proxy.up();
        eventually("the subscription to be back", || {
            let (mut conn, subjects) = (conn.clone(), &subjects);
            async move { numsub(&mut conn, subjects).await == [1] }
        })
        .await;
        // Delivery is at most once: publish until a message arrives (one does, now that the
        // server has the subscription again).
        let mut arrived = None;
        for _ in 0..300 {
            publisher.publish(&subject, Bytes::from_static(b"after")).await.unwrap();
            if let Ok(m) = tokio::time::timeout(Duration::from_millis(100), sub.next()).await {
                arrived = Some(m);
                break;
            }
        }
        assert_eq!(arrived, Some(Some(Bytes::from_static(b"after"))), "a message after the outage arrives");
        assert_eq!(ps.subjects(), 1);
    }
}
