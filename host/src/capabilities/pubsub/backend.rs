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

/// Changes recorded for an upstream beyond this many, or beyond the number of subjects with
/// subscriptions if that is larger, are dropped for a full comparison (see [`Registry`]).
const MAX_CHANGES: usize = 4096;

/// The local subscriptions of each subject: a backend receives a subject's messages once (from
/// [`PubSubBackend::publish`] in this process, or from its one server subscription) and hands
/// them to every local subscription through a broadcast buffer of [`BUFFER`] messages, where a
/// subscriber that lags loses the oldest.
///
/// A subject's entry, with its buffer, exists exactly while the subject has subscriptions: the
/// last one dropped removes it, under the same lock as [`Registry::join`] takes, so a concurrent
/// subscription to the same subject either keeps the entry or makes a new one.
///
/// A registry made [`with_upstream`](Registry::with_upstream) (a server subscribes for it)
/// also records, under the same lock, which subjects changed (gained their first subscription
/// or lost their last) since the upstream last looked with [`Registry::diff`], each once, so
/// that a change costs the upstream work for that subject only, however many subjects there
/// are. Every subject is compared instead when the upstream starts afresh (a first connection,
/// or a new one after [`Registry::upstream_lost`]), or once more subjects changed than
/// [`MAX_CHANGES`] or the number of subjects with subscriptions, whichever is larger: then the
/// record is dropped, which keeps it bounded while the upstream is busy, and the comparison costs
/// no more than examining the changes would. [`Registry::deliver`] does not look at the record.
///
/// [`Registry::default`] is a registry without an upstream ([`MemoryPubSub`]): it records no
/// change.
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
    /// What changed since the upstream last looked; `None` without an upstream.
    changes: Option<Changes>,
}

/// The subjects that changed since [`Registry::diff`] last looked.
#[derive(Default)]
struct Changes {
    /// Subjects that gained their first subscription or lost their last, each once.
    subjects: HashSet<String>,
    /// Every subject is to be compared; `subjects` is empty then, and not added to.
    all: bool,
}

impl Changes {
    /// Every subject is to be compared.
    fn all() -> Changes {
        Changes { subjects: HashSet::new(), all: true }
    }

    /// Records that `subject` changed; `live` is the number of subjects with subscriptions.
    fn record(&mut self, subject: &str, live: usize) {
        if self.all || self.subjects.contains(subject) {
            return;
        }
        if self.subjects.len() >= live.max(MAX_CHANGES) {
            *self = Changes::all();
        } else {
            self.subjects.insert(subject.to_string());
        }
    }
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
#[derive(Default)]
pub(crate) struct Diff {
    /// Subjects with subscriptions that the upstream does not deliver.
    pub(crate) missing: Vec<String>,
    /// Subjects the upstream delivers that have no subscription left.
    pub(crate) unused: Vec<String>,
    /// Whether some entry became ready.
    pub(crate) readied: bool,
    /// The subjects compared (with repeats in a full comparison): the work done under the lock.
    pub(crate) examined: usize,
}

impl Registry {
    /// A registry whose subjects an upstream subscribes to: it records the subjects that
    /// change for [`Registry::diff`], which compares every subject the first time.
    pub(crate) fn with_upstream() -> Registry {
        let topics = Topics { changes: Some(Changes::all()), ..Topics::default() };
        Registry { topics: Mutex::new(topics), changed: Notify::new() }
    }

    fn lock(&self) -> MutexGuard<'_, Topics> {
        self.topics.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new subscription to `subject`, making its entry (not ready) if it has none.
    pub(crate) fn join(self: &Arc<Self>, subject: &str) -> Subscription {
        let (receiver, id, new) = {
            let mut topics = self.lock();
            let Topics { by_subject, next_id, changes } = &mut *topics;
            let new = !by_subject.contains_key(subject);
            let topic = by_subject.entry(subject.to_string()).or_insert_with(|| {
                *next_id += 1;
                Topic { id: *next_id, sender: broadcast::channel(BUFFER).0, subscriptions: 0, ready: false }
            });
            topic.subscriptions += 1;
            let joined = (topic.sender.subscribe(), topic.id, new);
            if let (true, Some(changes)) = (new, changes) {
                changes.record(subject, by_subject.len());
            }
            joined
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
            let Topics { by_subject, changes, .. } = &mut *topics;
            match by_subject.get_mut(subject) {
                Some(topic) if topic.id == id => {
                    topic.subscriptions -= 1;
                    let last = topic.subscriptions == 0;
                    if last {
                        by_subject.remove(subject);
                        if let Some(changes) = changes {
                            changes.record(subject, by_subject.len());
                        }
                    }
                    last
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

    /// The upstream delivers nothing any more: marks every entry not ready, and makes the next
    /// [`Registry::diff`] compare every subject (with the empty set of a new connection).
    pub(crate) fn upstream_lost(&self) {
        let mut topics = self.lock();
        for topic in topics.by_subject.values_mut() {
            topic.ready = false;
        }
        if let Some(changes) = &mut topics.changes {
            *changes = Changes::all();
        }
    }

    /// Compares the subjects with subscriptions to those the upstream `delivers`, and marks
    /// ready the entries of subjects it delivers (an entry made again while the upstream still
    /// had its subject).
    ///
    /// With an upstream, only the subjects that changed since the last call are compared, and
    /// the record of them is emptied: `delivers` must be what the upstream made of the previous
    /// calls' answers. Every subject is compared (both ways) the first time, after
    /// [`Registry::upstream_lost`] or [`Registry::close`], once too many changed, and always
    /// without an upstream.
    pub(crate) fn diff(&self, delivers: &HashSet<String>) -> Diff {
        let mut topics = self.lock();
        let Topics { by_subject, changes, .. } = &mut *topics;
        let changed = match changes {
            Some(changes) if !changes.all => Some(std::mem::take(&mut changes.subjects)),
            Some(changes) => {
                changes.all = false;
                None
            }
            None => None,
        };
        let mut diff = Diff::default();
        let Some(changed) = changed else {
            for (subject, topic) in by_subject.iter_mut() {
                if delivers.contains(subject) {
                    diff.readied |= !topic.ready;
                    topic.ready = true;
                } else {
                    diff.missing.push(subject.clone());
                }
            }
            diff.unused = delivers.iter().filter(|s| !by_subject.contains_key(*s)).cloned().collect();
            diff.examined = by_subject.len() + delivers.len();
            return diff;
        };
        // A fresh set (taken above) has the capacity of these changes only: iterating it is
        // O(changes) too.
        diff.examined = changed.len();
        for subject in changed {
            match (by_subject.get_mut(&subject), delivers.contains(&subject)) {
                (Some(topic), true) => {
                    diff.readied |= !topic.ready;
                    topic.ready = true;
                }
                (Some(_), false) => diff.missing.push(subject),
                (None, true) => diff.unused.push(subject),
                (None, false) => {}
            }
        }
        diff
    }

    /// Drops every entry: the subscriptions end (and an upstream's next [`Registry::diff`]
    /// finds every subject it delivers unused).
    pub(crate) fn close(&self) {
        let mut topics = self.lock();
        topics.by_subject.clear();
        if let Some(changes) = &mut topics.changes {
            *changes = Changes::all();
        }
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

    use super::{Diff, MAX_CHANGES, Registry};

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
        registry.upstream_lost();
        assert!(!registry.is_ready("a") && !registry.is_ready("b"));
        assert!(registry.lock().changes.is_none(), "no record without an upstream");
    }

    /// The record of changes, sorted, and whether every subject is to be compared.
    fn recorded(registry: &Registry) -> (Vec<String>, bool) {
        let topics = registry.lock();
        let changes = topics.changes.as_ref().expect("a registry with an upstream");
        let mut subjects: Vec<String> = changes.subjects.iter().cloned().collect();
        subjects.sort();
        (subjects, changes.all)
    }

    fn strings<const N: usize>(subjects: [&str; N]) -> Vec<String> {
        subjects.map(String::from).into()
    }

    /// What `diff` found, with its lists sorted.
    fn found(diff: Diff) -> (Vec<String>, Vec<String>, bool, usize) {
        let (mut missing, mut unused) = (diff.missing, diff.unused);
        missing.sort();
        unused.sort();
        (missing, unused, diff.readied, diff.examined)
    }

    #[test]
    fn the_subjects_that_change_are_recorded_once_each_and_drained() {
        let registry = Arc::new(Registry::with_upstream());
        let mut delivers = HashSet::new();
        // The first diff compares everything: nothing is recorded until then.
        let a = registry.join("a");
        assert_eq!(recorded(&registry), (vec![], true));
        let diff = registry.diff(&delivers);
        assert_eq!(found(diff), (strings(["a"]), vec![], false, 1));
        assert_eq!(recorded(&registry), (vec![], false));
        // The upstream subscribes `a`.
        delivers.insert("a".to_string());
        registry.mark_ready(&strings(["a"]));

        // A further subscription to a subject is no change; a first one is, recorded once.
        let a2 = registry.join("a");
        let (b, b2) = (registry.join("b"), registry.join("b"));
        drop(b2);
        // A subject joined and left before the upstream looks is recorded too.
        drop(registry.join("c"));
        assert_eq!(recorded(&registry), (strings(["b", "c"]), false));
        let diff = registry.diff(&delivers);
        assert_eq!(found(diff), (strings(["b"]), vec![], false, 2), "`c` compared, and nothing to do");
        assert_eq!(recorded(&registry), (vec![], false), "drained");
        assert_eq!(found(registry.diff(&delivers)), (vec![], vec![], false, 0), "nothing changed");

        // Left and joined again before the upstream looks, while it still delivers the
        // subject: reported, and the new entry is ready at once.
        drop((a, a2));
        let a = registry.join("a");
        assert!(!registry.is_ready("a"));
        assert_eq!(recorded(&registry), (strings(["a"]), false));
        assert_eq!(found(registry.diff(&delivers)), (vec![], vec![], true, 1));
        assert!(registry.is_ready("a"));

        // Joined and left before the upstream looks, while it delivers the subject (subscribed
        // in a round that raced with the leave): unused.
        delivers.insert("c".to_string());
        drop(registry.join("c"));
        assert_eq!(found(registry.diff(&delivers)), (vec![], strings(["c"]), false, 1));
        delivers.remove("c");

        // The last subscription leaving is a change.
        drop(a);
        assert_eq!(recorded(&registry), (strings(["a"]), false));
        assert_eq!(found(registry.diff(&delivers)), (vec![], strings(["a"]), false, 1));
        delivers.remove("a");
        drop(b);
        assert_eq!(found(registry.diff(&delivers)), (vec![], vec![], false, 1));
        assert_eq!(registry.len(), 0);
    }

    #[test]
    fn with_many_subjects_a_change_costs_the_change_only() {
        const SUBJECTS: usize = 10_000;
        let registry = Arc::new(Registry::with_upstream());
        let subject = |i: usize| format!("s.{i}");
        let mut subscriptions: Vec<_> = (0..SUBJECTS).map(|i| registry.join(&subject(i))).collect();
        // A new connection compares every subject.
        let diff = registry.diff(&HashSet::new());
        assert_eq!((diff.missing.len(), diff.examined), (SUBJECTS, SUBJECTS));
        let mut delivers: HashSet<String> = diff.missing.into_iter().collect();
        registry.mark_ready(&delivers.iter().cloned().collect::<Vec<_>>());

        // One more subject: one examined, not 10,001.
        let one_more = registry.join(&subject(SUBJECTS));
        assert_eq!(recorded(&registry), (vec![subject(SUBJECTS)], false));
        assert_eq!(found(registry.diff(&delivers)), (vec![subject(SUBJECTS)], vec![], false, 1));
        delivers.insert(subject(SUBJECTS));
        // One subject left: one examined.
        drop(subscriptions.swap_remove(0));
        assert_eq!(found(registry.diff(&delivers)), (vec![], vec![subject(0)], false, 1));
        delivers.remove(&subject(0));
        // Churn: each join and leave costs one examined subject.
        for round in 0..100 {
            let churned = registry.join(&format!("churn.{round}"));
            assert_eq!(registry.diff(&delivers).examined, 1);
            drop(churned);
            assert_eq!(registry.diff(&delivers).examined, 1);
        }
        // A new connection compares everything again.
        registry.upstream_lost();
        assert!(!registry.is_ready(&subject(1)));
        let diff = registry.diff(&HashSet::new());
        assert_eq!((diff.missing.len(), diff.examined), (SUBJECTS, SUBJECTS));
        drop(one_more);
    }

    #[test]
    fn too_many_changes_make_a_full_comparison_instead() {
        let registry = Arc::new(Registry::with_upstream());
        let kept = registry.join("kept");
        let diff = registry.diff(&HashSet::new());
        assert_eq!(diff.missing, strings(["kept"]));
        // The upstream delivers `kept` and a subject whose leave raced with its subscribing.
        let delivers: HashSet<String> = ["kept", "gone"].map(String::from).into();
        for i in 0..2 * MAX_CHANGES {
            drop(registry.join(&format!("churn.{i}")));
            assert!(registry.lock().changes.as_ref().unwrap().subjects.len() <= MAX_CHANGES, "bounded");
        }
        assert_eq!(recorded(&registry), (vec![], true), "the record was dropped");
        // A full comparison, both ways: it finds what the dropped record would have.
        assert_eq!(found(registry.diff(&delivers)), (vec![], strings(["gone"]), true, 3));
        assert_eq!(recorded(&registry), (vec![], false), "recording again");

        // Closing drops every entry: the upstream finds every subject unused.
        registry.close();
        assert_eq!(found(registry.diff(&delivers)), (vec![], strings(["gone", "kept"]), false, 2));
        drop(kept);
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
