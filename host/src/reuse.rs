//! Instance reuse, which a component opts in to ([`Component::with_reuse`]): an instance that
//! finished a call cleanly waits, idle, for the next call of the same component instead of
//! being dropped, and serves it without instantiating again. One call at a time: a synchronous
//! guest has one stack.
//!
//! Between two calls the host keeps nothing of the first: a transaction left open is rolled
//! back, an unterminated last line of output is logged, the guest's stderr tail (for error
//! reports) is cleared. What the guest keeps in its
//! own memory (module globals, caches) persists; that is the point of reuse, and why a
//! component serving mutually distrustful users must not opt in.
//!
//! An instance is retired (dropped, its slot back in the pool) when its call fails (a trap, a
//! host error), at its deadline, on a cancellation, after [`Reuse::requests`] calls, once its linear memory has
//! grown past [`Reuse::max_memory`], after [`Reuse::idle`] without a call, when the call left
//! work of its own unfinished (an outbound request in flight, a response body not finished),
//! and when the host's pool has no free slot for a fresh instance of any component (the least
//! recently used idle instance of the host first; if that is not enough, every idle instance).
//! [`Metrics`](crate::Metrics) counts reuses and retirements by reason.
//!
//! [`Component::with_reuse`]: crate::Component::with_reuse

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use wasmtime::Store;

use crate::metrics::{Counters, Retirement};
use crate::state::GuestState;

/// The longest [`Reuse::idle`].
const MAX_IDLE: Duration = Duration::from_secs(24 * 3600);

/// When a component's instances are reused, and when they are retired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reuse {
    /// Calls one instance serves before it is retired. Default 1000.
    pub requests: u32,
    /// How long an instance may wait idle for its next call before it is retired. Default 10 s,
    /// at most 24 h.
    pub idle: Duration,
    /// An instance whose linear memories have grown past this many bytes (all of them added
    /// up) after a call is retired. Default `None`: twice what it had after its first call.
    pub max_memory: Option<usize>,
}

impl Default for Reuse {
    fn default() -> Reuse {
        Reuse { requests: 1000, idle: Duration::from_secs(10), max_memory: None }
    }
}

impl Reuse {
    /// The default policy: 1000 calls per instance, 10 s idle, memory bound at twice the first
    /// call's.
    pub fn new() -> Reuse {
        Reuse::default()
    }

    /// Sets [`Reuse::requests`].
    pub fn requests(mut self, requests: u32) -> Reuse {
        self.requests = requests;
        self
    }

    /// Sets [`Reuse::idle`].
    pub fn idle(mut self, idle: Duration) -> Reuse {
        self.idle = idle;
        self
    }

    /// Sets [`Reuse::max_memory`].
    pub fn max_memory(mut self, bytes: usize) -> Reuse {
        self.max_memory = Some(bytes);
        self
    }

    /// Checks the policy's values, naming the one out of range.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.requests == 0 {
            return Err("reuse: requests must be at least 1".into());
        }
        if self.idle.is_zero() || self.idle > MAX_IDLE {
            return Err("reuse: idle must be longer than 0 s and at most 24 h".into());
        }
        if self.max_memory == Some(0) {
            return Err("reuse: max_memory must be more than 0 bytes".into());
        }
        Ok(())
    }
}

/// An instance that may serve more than one call: its store, its instantiated export (a
/// handler, a `wasi:http` proxy), and what decides its retirement. An instance of a reusing
/// component is counted as retired when it is dropped, for the reason it carries: set where the
/// reason is known (a failed call, the pool's rules), else the call's deadline if it has passed
/// (a call dropped at its deadline), else a cancellation (a call dropped before it).
pub(crate) struct Instance<E> {
    pub(crate) store: Store<GuestState>,
    /// `None` until the first call instantiates it.
    pub(crate) export: Option<E>,
    /// Calls it has served.
    served: u32,
    /// Its memory bound, fixed after its first call unless the policy sets one.
    max_memory: Option<usize>,
    /// What its last call left that the host could not give back (work of the guest's own
    /// unfinished, a transaction that did not roll back): then it is retired.
    pub(crate) unfinished: Option<String>,
    /// The host's counters, for an instance of a reusing component; `None` once it is idle in
    /// its pool or not reusable at all.
    counters: Option<Arc<Counters>>,
    /// Why it is retired if dropped now; `None`: by its call's deadline.
    pub(crate) retire_as: Option<Retirement>,
    /// The deadline of its call in progress.
    deadline: Option<Instant>,
}

impl<E> Instance<E> {
    /// A fresh instance in `store`, to be instantiated by its first call; `counters` for an
    /// instance of a reusing component, whose retirement is counted.
    pub(crate) fn fresh(store: Store<GuestState>, counters: Option<Arc<Counters>>) -> Instance<E> {
        Instance {
            store,
            export: None,
            served: 0,
            max_memory: None,
            unfinished: None,
            counters,
            retire_as: None,
            deadline: None,
        }
    }

    /// Starts a call whose deadline is `deadline` (taken before the timer that enforces it):
    /// dropped before the call ends, the instance is retired as timed out if the deadline has
    /// passed, else as cancelled.
    pub(crate) fn start_call(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
        self.retire_as = None;
    }

    /// Ends a call that succeeded: an instance of a reusing component is made ready for its
    /// next call; what the host could not give back goes into `unfinished`, which retires it.
    pub(crate) async fn end_call(&mut self) {
        if self.counters.is_some()
            && let Err(what) = self.store.data_mut().end_call().await
        {
            self.unfinished.get_or_insert(what);
        }
    }
}

impl<E> Drop for Instance<E> {
    fn drop(&mut self) {
        if let Some(counters) = &self.counters {
            let reason = self.retire_as.unwrap_or(match self.deadline {
                Some(deadline) if Instant::now() >= deadline => Retirement::Timeout,
                _ => Retirement::Cancelled,
            });
            counters.retired(reason);
        }
    }
}

/// The idle instances of one component, most recently used last.
pub(crate) struct Pool<E> {
    policy: Reuse,
    counters: Arc<Counters>,
    idle: Mutex<Idle<E>>,
}

struct Idle<E> {
    /// Each with when it went idle, the least recently used first.
    instances: VecDeque<(Instance<E>, Instant)>,
    /// Whether a task is retiring instances idle for too long.
    sweeping: bool,
}

/// What the host can ask of every component's pool, whatever its export.
pub(crate) trait Evict: Send + Sync {
    /// When its least recently used idle instance went idle; `None` if none is idle.
    fn oldest_idle(&self) -> Option<Instant>;
    /// Retires its least recently used idle instance; `false` if none is idle.
    fn evict_oldest(&self) -> bool;
    /// Retires every idle instance; `false` if none is idle.
    fn evict_all(&self) -> bool;
}

impl<E> Pool<E> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Idle<E>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the instances idle for longer than the policy allows out of `idle`.
    fn expired(&self, idle: &mut Idle<E>) -> Vec<Instance<E>> {
        let now = Instant::now();
        let fresh_from =
            idle.instances.partition_point(|(_, since)| now.duration_since(*since) >= self.policy.idle);
        idle.instances.drain(..fresh_from).map(|(i, _)| i).collect()
    }

    /// Retires every idle instance as evicted; `false` if none was idle.
    fn retire_all_idle(&self) -> bool {
        let all: Vec<_> = self.lock().instances.drain(..).map(|(i, _)| i).collect();
        let any = !all.is_empty();
        self.retire(all, Retirement::Evicted);
        any
    }

    /// Retires `instances`, taken out of the idle list, for `reason`: they drop outside the
    /// lock (dropping a store gives its memory back to the pool, which takes system calls).
    fn retire(&self, instances: Vec<Instance<E>>, reason: Retirement) {
        self.counters.idle_instances.fetch_sub(instances.len(), Relaxed);
        for mut instance in instances {
            instance.counters = Some(self.counters.clone());
            instance.retire_as = Some(reason);
            drop(instance);
        }
    }
}

impl<E: Send + 'static> Pool<E> {
    pub(crate) fn new(policy: Reuse, counters: Arc<Counters>) -> Pool<E> {
        Pool { policy, counters, idle: Mutex::new(Idle { instances: VecDeque::new(), sweeping: false }) }
    }

    /// The policy its instances follow.
    pub(crate) fn policy(&self) -> Reuse {
        self.policy
    }

    /// The most recently used idle instance, if any; those idle for too long are retired.
    pub(crate) fn take(&self) -> Option<Instance<E>> {
        let (taken, expired) = {
            let mut idle = self.lock();
            let expired = self.expired(&mut idle);
            (idle.instances.pop_back(), expired)
        };
        self.retire(expired, Retirement::Idle);
        let (mut instance, _) = taken?;
        self.counters.idle_instances.fetch_sub(1, Relaxed);
        self.counters.reused.fetch_add(1, Relaxed);
        instance.counters = Some(self.counters.clone());
        Some(instance)
    }

    /// Ends a call of `instance` that did not fail: back idle, unless the call left something
    /// unfinished or the instance has served its calls or outgrown its memory bound.
    pub(crate) fn give_back(self: &Arc<Self>, mut instance: Instance<E>) {
        instance.served += 1;
        let memory = instance.store.data().limits.memory();
        let bound =
            *instance.max_memory.get_or_insert(self.policy.max_memory.unwrap_or(memory.saturating_mul(2)));
        let reason = match &instance.unfinished {
            Some(what) => {
                tracing::debug!("an instance is retired: {what}");
                Some(Retirement::Unfinished)
            }
            None if instance.served >= self.policy.requests => Some(Retirement::Requests),
            None if memory > bound => Some(Retirement::Memory),
            None => None,
        };
        if let Some(reason) = reason {
            instance.retire_as = Some(reason);
            return;
        }
        instance.counters = None;
        let start_sweeper = {
            let mut idle = self.lock();
            idle.instances.push_back((instance, Instant::now()));
            self.counters.idle_instances.fetch_add(1, Relaxed);
            !std::mem::replace(&mut idle.sweeping, true)
        };
        if start_sweeper {
            self.sweep_later();
        }
    }

    /// Retires idle instances as their idle time passes, until none is left (then the next
    /// instance given back starts it again). Without a tokio runtime, instances idle for too
    /// long are retired by the next `take` instead.
    fn sweep_later(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.lock().sweeping = false;
            return;
        };
        let pool: Weak<Pool<E>> = Arc::downgrade(self);
        let idle = self.policy.idle;
        runtime.spawn(async move {
            let mut wait = idle;
            loop {
                tokio::time::sleep(wait).await;
                let Some(pool) = pool.upgrade() else { return };
                let (expired, oldest) = {
                    let mut state = pool.lock();
                    let expired = pool.expired(&mut state);
                    let oldest = state.instances.front().map(|(_, since)| *since);
                    if oldest.is_none() {
                        state.sweeping = false;
                    }
                    (expired, oldest)
                };
                pool.retire(expired, Retirement::Idle);
                match oldest {
                    Some(since) => wait = (since + idle).saturating_duration_since(Instant::now()),
                    None => return,
                }
            }
        });
    }
}

impl<E: Send + 'static> Evict for Pool<E> {
    fn oldest_idle(&self) -> Option<Instant> {
        self.lock().instances.front().map(|(_, since)| *since)
    }

    fn evict_oldest(&self) -> bool {
        let oldest = self.lock().instances.pop_front();
        let Some((instance, _)) = oldest else { return false };
        self.retire(vec![instance], Retirement::Evicted);
        true
    }

    fn evict_all(&self) -> bool {
        self.retire_all_idle()
    }
}

impl<E> Drop for Pool<E> {
    /// The component is gone: its idle instances are retired as evicted.
    fn drop(&mut self) {
        self.retire_all_idle();
    }
}

/// Every reusing component's pool of a host, so that a fresh instance finding the pool of
/// slots full can make room.
#[derive(Default)]
pub(crate) struct Pools(Mutex<Vec<Weak<dyn Evict>>>);

impl Pools {
    pub(crate) fn register(&self, pool: Weak<dyn Evict>) {
        let mut pools = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        pools.retain(|p| p.strong_count() > 0);
        pools.push(pool);
    }

    fn pools(&self) -> Vec<Arc<dyn Evict>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).iter().filter_map(Weak::upgrade).collect()
    }

    /// Retires the least recently used idle instance of any component; `false` if none is
    /// idle.
    pub(crate) fn evict_oldest(&self) -> bool {
        let pools = self.pools();
        let mut by_age: Vec<_> = pools.iter().filter_map(|p| Some((p.oldest_idle()?, p))).collect();
        by_age.sort_by_key(|(since, _)| *since);
        // A pool whose oldest instance a call took in the meantime retires its next one (or, if
        // it has none left, the next pool its own).
        by_age.iter().any(|(_, pool)| pool.evict_oldest())
    }

    /// Retires every idle instance of every component; `false` if none was idle.
    pub(crate) fn evict_all(&self) -> bool {
        self.pools().iter().fold(false, |any, pool| pool.evict_all() | any)
    }
}
