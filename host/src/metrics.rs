//! Counters that prove what the host is doing, read with [`Host::metrics`](crate::Host::metrics).
//!
//! Concurrency is shown by counting, not by timing: a guest counts as *suspended* while one of
//! its host calls is pending (its fiber is parked and the thread runs something else).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::task::{Context, Poll};

/// Live counters shared by a host and everything it runs.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    suspended: AtomicUsize,
    peak_suspended: AtomicUsize,
    instances: AtomicUsize,
    peak_instances: AtomicUsize,
    calls: AtomicU64,
    host_calls: AtomicU64,
    backends: [BackendCounter; Backend::ALL.len()],
    /// Instances of reusing components waiting for their next call.
    pub(crate) idle_instances: AtomicUsize,
    /// Calls served by an instance that had served one before.
    pub(crate) reused: AtomicU64,
    retirements: [AtomicU64; Retirement::ALL.len()],
}

#[derive(Debug, Default)]
struct BackendCounter {
    calls: AtomicU64,
    errors: AtomicU64,
}

/// The kinds of backend whose calls are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// SQL databases (statements, transactions).
    Sql,
    /// Key-value stores.
    Kv,
    /// Outbound HTTP (`mixio:io/http-client` and `wasi:http`).
    Http,
    /// The pub/sub backend (`pubsub` and `websocket` sends).
    Pubsub,
}

impl Backend {
    /// Every kind, in the order of [`Metrics::backends`].
    pub const ALL: [Backend; 4] = [Backend::Sql, Backend::Kv, Backend::Http, Backend::Pubsub];

    /// `sql`, `kv`, `http` or `pubsub`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sql => "sql",
            Backend::Kv => "kv",
            Backend::Http => "http",
            Backend::Pubsub => "pubsub",
        }
    }
}

/// Why a reusable instance was retired, in the order of
/// [`Metrics::retirements`](crate::Metrics::retirements).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Retirement {
    /// It served [`Reuse::requests`](crate::Reuse::requests) calls.
    Requests,
    /// It waited [`Reuse::idle`](crate::Reuse::idle) without a call.
    Idle,
    /// Its memory grew past [`Reuse::max_memory`](crate::Reuse::max_memory).
    Memory,
    /// Its call failed: a trap, a panic, an error of the host's.
    Failed,
    /// Its call's deadline passed.
    Timeout,
    /// Its call was cancelled (the client went away, say).
    Cancelled,
    /// Its call ended with what the host could not give back: an outbound request in flight, a
    /// response body not finished, half its limit of open handles, a transaction that could not
    /// be rolled back, leftovers of an instantiation retried in a full pool.
    Unfinished,
    /// The pool had no free slot for a fresh instance, and this idle instance made room (the
    /// least recently used first); or its component was dropped while it was idle.
    Evicted,
}

impl Retirement {
    /// Every reason, in the order of [`Metrics::retirements`](crate::Metrics::retirements).
    pub const ALL: [Retirement; 8] = [
        Retirement::Requests,
        Retirement::Idle,
        Retirement::Memory,
        Retirement::Failed,
        Retirement::Timeout,
        Retirement::Cancelled,
        Retirement::Unfinished,
        Retirement::Evicted,
    ];

    /// The reason's name in metrics: `requests`, `idle`, `memory`, `failed`, `timeout`,
    /// `cancelled`, `unfinished` or `evicted`.
    pub fn name(self) -> &'static str {
        match self {
            Retirement::Requests => "requests",
            Retirement::Idle => "idle",
            Retirement::Memory => "memory",
            Retirement::Failed => "failed",
            Retirement::Timeout => "timeout",
            Retirement::Cancelled => "cancelled",
            Retirement::Unfinished => "unfinished",
            Retirement::Evicted => "evicted",
        }
    }
}

/// Calls guests made to one kind of backend, and how many of them failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BackendCalls {
    /// Calls completed (a call cancelled before it completed is not counted).
    pub calls: u64,
    /// Of those, the calls the backend failed (unreachable, broken, too slow); errors of the
    /// guest's own, such as a constraint violation or a URL not allowed, are not counted.
    pub errors: u64,
}

/// A snapshot of a host's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Metrics {
    /// Guests suspended right now in a pending host call.
    pub suspended: usize,
    /// The most guests suspended at the same moment since start (or the last reset).
    pub peak_suspended: usize,
    /// Guest instances (stores) alive right now.
    pub instances: usize,
    /// The most instances alive at the same moment since start (or the last reset).
    pub peak_instances: usize,
    /// Guest calls started (handler calls and command runs).
    pub calls: u64,
    /// Calls from guests into host functions that can wait.
    pub host_calls: u64,
    /// Calls to each kind of backend, in the order of [`Backend::ALL`].
    pub backends: [BackendCalls; Backend::ALL.len()],
    /// Instances of reusing components ([`Component::with_reuse`](crate::Component::with_reuse))
    /// waiting idle for their next call right now (counted in `instances` too).
    pub idle_instances: usize,
    /// Calls served by a reused instance (one that had served a call before).
    pub reused: u64,
    /// Reusable instances retired, by reason, in the order of [`Retirement::ALL`].
    pub retirements: [u64; Retirement::ALL.len()],
}

impl Metrics {
    /// The calls to backends of kind `backend`.
    pub fn backend(&self, backend: Backend) -> BackendCalls {
        self.backends[backend as usize]
    }

    /// The reusable instances retired for `reason`.
    pub fn retired(&self, reason: Retirement) -> u64 {
        self.retirements[reason as usize]
    }
}

impl Counters {
    pub(crate) fn snapshot(&self) -> Metrics {
        Metrics {
            suspended: self.suspended.load(Relaxed),
            peak_suspended: self.peak_suspended.load(Relaxed),
            instances: self.instances.load(Relaxed),
            peak_instances: self.peak_instances.load(Relaxed),
            calls: self.calls.load(Relaxed),
            host_calls: self.host_calls.load(Relaxed),
            backends: std::array::from_fn(|i| BackendCalls {
                calls: self.backends[i].calls.load(Relaxed),
                errors: self.backends[i].errors.load(Relaxed),
            }),
            idle_instances: self.idle_instances.load(Relaxed),
            reused: self.reused.load(Relaxed),
            retirements: std::array::from_fn(|i| self.retirements[i].load(Relaxed)),
        }
    }

    /// Counts a reusable instance retired for `reason`.
    pub(crate) fn retired(&self, reason: Retirement) {
        self.retirements[reason as usize].fetch_add(1, Relaxed);
    }

    fn backend_done(&self, backend: Backend, ok: bool) {
        let counter = &self.backends[backend as usize];
        counter.calls.fetch_add(1, Relaxed);
        if !ok {
            counter.errors.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn reset_peaks(&self) {
        self.peak_suspended.store(self.suspended.load(Relaxed), Relaxed);
        self.peak_instances.store(self.instances.load(Relaxed), Relaxed);
    }

    pub(crate) fn call_started(&self) {
        self.calls.fetch_add(1, Relaxed);
    }

    pub(crate) fn instance_created(&self) {
        let now = self.instances.fetch_add(1, Relaxed) + 1;
        raise(&self.peak_instances, now);
    }

    pub(crate) fn instance_dropped(&self) {
        self.instances.fetch_sub(1, Relaxed);
    }

    fn suspend(&self) {
        let now = self.suspended.fetch_add(1, Relaxed) + 1;
        raise(&self.peak_suspended, now);
    }

    fn resume(&self) {
        self.suspended.fetch_sub(1, Relaxed);
    }
}

/// Raises `peak` to `now` if it is lower; a plain load in the common case where it is not.
fn raise(peak: &AtomicUsize, now: usize) {
    if now > peak.load(Relaxed) {
        peak.fetch_max(now, Relaxed);
    }
}

/// The counters of one store (one guest instance). Its host calls are counted here without
/// an atomic read-modify-write, since a store is used by one thread at a time, and added to
/// the host's counters when the last reference goes, or when a reused instance's call ends.
#[derive(Debug)]
pub(crate) struct StoreCounters {
    pub(crate) host: std::sync::Arc<Counters>,
    host_calls: AtomicU64,
}

impl StoreCounters {
    pub(crate) fn new(host: std::sync::Arc<Counters>) -> StoreCounters {
        StoreCounters { host, host_calls: AtomicU64::new(0) }
    }

    /// Adds the host calls counted here to the host's counters.
    pub(crate) fn flush(&self) {
        self.host.host_calls.fetch_add(self.host_calls.swap(0, Relaxed), Relaxed);
    }
}

impl Drop for StoreCounters {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Wraps the future of a host call so the guest counts as suspended while it is pending.
/// A ready call costs a plain increment and two branches; the host's counters are touched
/// only on suspension.
pub(crate) fn host_call<'a, F: Future>(counters: &'a StoreCounters, future: F) -> HostCall<'a, F> {
    counters.host_calls.store(counters.host_calls.load(Relaxed) + 1, Relaxed);
    HostCall { counters: &counters.host, future, suspended: false }
}

/// A host call that goes to a backend: counted as a [`host_call`], and by its kind and
/// whether the backend failed it (an error of the caller's, such as a constraint violation or
/// a refused URL, is not the backend's failure).
pub(crate) async fn backend_call<T, E: BackendFailure>(
    counters: &StoreCounters,
    backend: Backend,
    future: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let result = host_call(counters, future).await;
    counters.host.backend_done(backend, !result.as_ref().is_err_and(BackendFailure::is_backend_failure));
    result
}

/// Tells the backend's failures (unreachable, broken, too slow) from the caller's errors.
pub(crate) trait BackendFailure {
    fn is_backend_failure(&self) -> bool;
}

pin_project_lite::pin_project! {
    pub(crate) struct HostCall<'a, F> {
        counters: &'a Counters,
        #[pin]
        future: F,
        suspended: bool,
    }

    impl<F> PinnedDrop for HostCall<'_, F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if *this.suspended {
                this.counters.resume();
            }
        }
    }
}

impl<F: Future> Future for HostCall<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        match this.future.poll(cx) {
            Poll::Ready(out) => {
                if std::mem::take(this.suspended) {
                    this.counters.resume();
                }
                Poll::Ready(out)
            }
            Poll::Pending => {
                if !*this.suspended {
                    *this.suspended = true;
                    this.counters.suspend();
                }
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_pending_call_counts_until_it_completes_or_is_dropped() {
        let host = std::sync::Arc::new(Counters::default());
        let c = StoreCounters::new(host.clone());
        let ready = host_call(&c, async { 7 });
        assert_eq!(ready.await, 7);
        assert_eq!(host.snapshot().peak_suspended, 0, "a ready future never suspends");

        let mut slow = Box::pin(host_call(&c, tokio::time::sleep(std::time::Duration::from_millis(5))));
        assert!(futures_poll_once(slow.as_mut()).await.is_pending());
        assert_eq!(host.snapshot().suspended, 1);
        slow.await;
        assert_eq!(host.snapshot().suspended, 0);

        let mut dropped = Box::pin(host_call(&c, std::future::pending::<()>()));
        assert!(futures_poll_once(dropped.as_mut()).await.is_pending());
        assert_eq!(host.snapshot().suspended, 1);
        drop(dropped);
        drop(c); // the store's host calls reach the host's counters when it goes
        let m = host.snapshot();
        assert_eq!((m.suspended, m.peak_suspended, m.host_calls), (0, 1, 3));
    }

    async fn futures_poll_once<F: Future + Unpin>(mut f: F) -> Poll<F::Output> {
        std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut f).poll(cx))).await
    }
}
