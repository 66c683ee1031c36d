//! The pub/sub backend trait, the local fan-out shared by the backends, and the in-process
//! backend.

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::{Notify, broadcast};

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
///
/// Dropping a [`Subscription`] ends it; the backend frees what it kept for the subject (and
/// unsubscribes at the server) when the subject's last subscription is dropped.
#[async_trait::async_trait]
pub trait PubSubBackend: Send + Sync + 'static {
    /// Delivers `payload` to the current subscribers of `subject` (none is fine).
    async fn publish(&self, subject: &str, payload: Bytes) -> Result<(), PubSubError>;
    /// Subscribes to `subject`; the subscription is active when this returns.
    async fn subscribe(&self, subject: &str) -> Result<Subscription, PubSubError>;
    /// Checks the backend is reachable.
    async fn ping(&self) -> Result<(), PubSubError>;
    /// The subjects this client is subscribed to now, each counted once however many local
    /// subscriptions it has.
    fn subjects(&self) -> usize;
}

/// Messages kept for a subscriber that is not reading; older ones are dropped beyond this. A
/// subject's buffer is allocated whole while it has subscriptions (16 KiB at 256), and a server
/// may have one per websocket connection; the websocket hub takes each message at once.
const BUFFER: usize = 256;

/// The local subscriptions of each subject: a backend receives a subject's messages once (from
/// [`PubSubBackend::publish`] in this process, or from its one server subscription) and hands
/// them to every local subscription through a broadcast buffer of [`BUFFER`] messages, where a
/// subscriber that lags loses the oldest.
///
/// A subject's entry, with its buffer, exists exactly while the subject has subscriptions: the
/// last one dropped removes it, under the same lock as [`Registry::join`] takes, so a concurrent
/// subscription to the same subject either keeps the entry or makes a new one.
#[derive(Default)]
pub(crate) struct Registry {
    topics: Mutex<Topics>,
    /// Notified when a subject gains its first subscription or loses its last.
    pub(crate) changed: Notify,
}

#[derive(Default)]
struct Topics {
    by_subject: HashMap<String, Topic>,
    /// The id of the next entry made.
    next_id: u64,
}

/// One subject with subscriptions.
struct Topic {
    /// Tells this entry from a later one for the same subject.
    id: u64,
    sender: broadcast::Sender<Bytes>,
    /// Live subscriptions: the entry goes when this reaches 0.
    subscriptions: usize,
    /// Whether the backend's upstream delivers the subject yet (the server confirmed the
    /// subscription); kept by a backend with an upstream, unused by [`MemoryPubSub`].
    ready: bool,
}

/// What [`Registry::diff`] found against the subjects an upstream delivers.
pub(crate) struct Diff {
    /// Subjects with subscriptions that the upstream does not deliver.
    pub(crate) missing: Vec<String>,
    /// Subjects the upstream delivers that have no subscription left.
    pub(crate) unused: Vec<String>,
    /// Whether some entry became ready.
    pub(crate) readied: bool,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Topics> {
        self.topics.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new subscription to `subject`, making its entry (not ready) if it has none.
    pub(crate) fn join(self: &Arc<Self>, subject: &str) -> Subscription {
        let (receiver, id, new) = {
            let mut topics = self.lock();
            let Topics { by_subject, next_id } = &mut *topics;
            let new = !by_subject.contains_key(subject);
            let topic = by_subject.entry(subject.to_string()).or_insert_with(|| {
                *next_id += 1;
                Topic { id: *next_id, sender: broadcast::channel(BUFFER).0, subscriptions: 0, ready: false }
            });
            topic.subscriptions += 1;
            (topic.sender.subscribe(), topic.id, new)
        };
        if new {
            self.changed.notify_one();
        }
        let membership = Membership { registry: self.clone(), subject: subject.to_string(), id };
        Box::pin(futures_util::stream::unfold(
            (receiver, membership),
            |(mut receiver, membership)| async move {
                loop {
                    match receiver.recv().await {
                        Ok(message) => return Some((message, (receiver, membership))),
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        // The registry was closed.
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            },
        ))
    }

    /// Ends one subscription of entry `id` of `subject`, removing the entry with its last.
    fn leave(&self, subject: &str, id: u64) {
        let removed = {
            let mut topics = self.lock();
            match topics.by_subject.get_mut(subject) {
                Some(topic) if topic.id == id => {
                    topic.subscriptions -= 1;
                    topic.subscriptions == 0 && topics.by_subject.remove(subject).is_some()
                }
                // Closed, or the entry of an earlier subscription: nothing of ours is left.
                _ => false,
            }
        };
        if removed {
            self.changed.notify_one();
        }
    }

    /// Hands `payload` to the subscriptions of `subject`, if any.
    pub(crate) fn deliver(&self, subject: &str, payload: Bytes) {
        if let Some(topic) = self.lock().by_subject.get(subject) {
            // An error means no receiver, which only happens while the last one leaves.
            let _ = topic.sender.send(payload);
        }
    }

    /// The subjects with subscriptions.
    pub(crate) fn len(&self) -> usize {
        self.lock().by_subject.len()
    }

    /// Whether `subject` has subscriptions and its entry is ready.
    pub(crate) fn is_ready(&self, subject: &str) -> bool {
        self.lock().by_subject.get(subject).is_some_and(|topic| topic.ready)
    }

    /// Marks the entries of `subjects` (those that have one) ready.
    pub(crate) fn mark_ready(&self, subjects: &[String]) {
        let mut topics = self.lock();
        for subject in subjects {
            if let Some(topic) = topics.by_subject.get_mut(subject) {
                topic.ready = true;
            }
        }
    }

    /// Marks every entry not ready: the upstream delivers nothing any more.
    pub(crate) fn unready_all(&self) {
        for topic in self.lock().by_subject.values_mut() {
            topic.ready = false;
        }
    }

    /// Compares the subjects with subscriptions to those the upstream `delivers`, and marks
    /// ready the entries of subjects it delivers (an entry made again while the upstream still
    /// had its subject).
    pub(crate) fn diff(&self, delivers: &HashSet<String>) -> Diff {
        let mut topics = self.lock();
        let mut readied = false;
        let mut missing = Vec::new();
        for (subject, topic) in &mut topics.by_subject {
            if delivers.contains(subject) {
                readied |= !topic.ready;
                topic.ready = true;
            } else {
                missing.push(subject.clone());
            }
        }
        let unused = delivers.iter().filter(|s| !topics.by_subject.contains_key(*s)).cloned().collect();
        Diff { missing, unused, readied }
    }

    /// Drops every entry: the subscriptions end.
    pub(crate) fn close(&self) {
        self.lock().by_subject.clear();
    }
}

/// A subscription's share of its subject's entry, given back when the subscription is dropped.
struct Membership {
    registry: Arc<Registry>,
    subject: String,
    id: u64,
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.registry.leave(&self.subject, self.id);
    }
}

/// Topics within this process only.
#[derive(Default)]
pub struct MemoryPubSub {
    registry: Arc<Registry>,
}

#[async_trait::async_trait]
impl PubSubBackend for MemoryPubSub {
    async fn publish(&self, subject: &str, payload: Bytes) -> Result<(), PubSubError> {
        self.registry.deliver(subject, payload);
        Ok(())
    }

    async fn subscribe(&self, subject: &str) -> Result<Subscription, PubSubError> {
        Ok(self.registry.join(subject))
    }

    async fn ping(&self) -> Result<(), PubSubError> {
        Ok(())
    }

    fn subjects(&self) -> usize {
        self.registry.len()
    }
}

#[cfg(test)]
pub(crate) mod conformance {
    //! One suite every backend must pass.
    use std::time::Duration;

    use futures_util::StreamExt;

    use super::*;

    /// Distinct subjects the suite subscribes to at once.
    pub(crate) const MANY: usize = 1000;

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
        assert_eq!(ps.subjects(), 2, "each subject counted once");
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
        drop((a, b, other));
        assert_eq!(ps.subjects(), 0, "dropped subscriptions leave their subjects");

        // A subscription is in place when `subscribe` returns: a message another client
        // publishes right after reaches it.
        for i in 0..100 {
            let subject = format!("{prefix}.at-once.{i}");
            let mut sub = ps.subscribe(&subject).await.unwrap();
            elsewhere.publish(&subject, Bytes::from_static(b"right after")).await.unwrap();
            let m = tokio::time::timeout(Duration::from_secs(5), sub.next()).await;
            assert_eq!(m, Ok(Some(Bytes::from_static(b"right after"))), "round {i}");
        }
        assert_eq!(ps.subjects(), 0);

        many_subjects(ps, elsewhere, prefix).await;
    }

    /// Subscribes to [`MANY`] subjects `<prefix>.many.<i>`, a hundred at a time.
    pub(crate) async fn subscribe_many(ps: &dyn PubSubBackend, prefix: &str) -> Vec<Subscription> {
        let subjects: Vec<String> = (0..MANY).map(|i| format!("{prefix}.many.{i}")).collect();
        let mut subscriptions = Vec::with_capacity(MANY);
        for chunk in subjects.chunks(100) {
            for sub in futures_util::future::join_all(chunk.iter().map(|s| ps.subscribe(s))).await {
                subscriptions.push(sub.unwrap());
            }
        }
        subscriptions
    }

    /// What a backend keeps per subject goes with the subject's last subscription, however
    /// many subjects came and went.
    async fn many_subjects(ps: &dyn PubSubBackend, elsewhere: &dyn PubSubBackend, prefix: &str) {
        let subject = |i: usize| format!("{prefix}.many.{i}");
        let mut once = subscribe_many(ps, prefix).await;
        // Every tenth subject twice.
        let mut twice = Vec::new();
        for i in (0..MANY).step_by(10) {
            twice.push(ps.subscribe(&subject(i)).await.unwrap());
        }
        assert_eq!(ps.subjects(), MANY, "each subject counted once");

        // A subject stays while it has a subscription.
        drop(once.remove(0));
        assert_eq!(ps.subjects(), MANY);
        elsewhere.publish(&subject(0), Bytes::from_static(b"still here")).await.unwrap();
        let m = tokio::time::timeout(Duration::from_secs(5), twice[0].next()).await;
        assert_eq!(m, Ok(Some(Bytes::from_static(b"still here"))));

        drop((once, twice));
        assert_eq!(ps.subjects(), 0, "no subject left once every subscription is dropped");

        // A subject left can be subscribed to again.
        let mut again = ps.subscribe(&subject(7)).await.unwrap();
        assert_eq!(ps.subjects(), 1);
        elsewhere.publish(&subject(7), Bytes::from_static(b"again")).await.unwrap();
        let m = tokio::time::timeout(Duration::from_secs(5), again.next()).await;
        assert_eq!(m, Ok(Some(Bytes::from_static(b"again"))));
        drop(again);
        assert_eq!(ps.subjects(), 0);
    }

    #[tokio::test]
    async fn memory() {
        let ps = MemoryPubSub::default();
        run(&ps, &ps, "mem").await;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;

    use super::Registry;

    #[test]
    fn diff_compares_the_subjects_with_those_an_upstream_delivers() {
        let registry = Arc::new(Registry::default());
        let (_a, _b) = (registry.join("a"), registry.join("b"));
        assert!(!registry.is_ready("a") && !registry.is_ready("b"), "a new entry is not ready");
        let delivers: HashSet<String> = ["b", "c"].map(String::from).into();
        let diff = registry.diff(&delivers);
        assert_eq!(
            (diff.missing, diff.unused, diff.readied),
            (vec!["a".to_string()], vec!["c".to_string()], true)
        );
        assert!(registry.is_ready("b"), "delivered already");
        registry.mark_ready(&["a".to_string(), "gone".to_string()]);
        assert!(registry.is_ready("a") && !registry.is_ready("gone"));
        registry.unready_all();
        assert!(!registry.is_ready("a") && !registry.is_ready("b"));
    }

    #[test]
    fn a_subject_made_again_is_not_removed_by_an_earlier_entry() {
        let registry = Arc::new(Registry::default());
        let first = registry.join("s");
        registry.close();
        let second = registry.join("s");
        drop(first); // its entry is gone: it must not count against the new one
        assert_eq!(registry.len(), 1);
        drop(second);
        assert_eq!(registry.len(), 0);
    }
}
