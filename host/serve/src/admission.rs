//! Admission control of one component: at most `max_concurrent` instances run; further
//! requests wait, first come first served, in a queue of at most `queue`; past that they are
//! turned away (the server answers `503` with `Retry-After`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Counters of one component's admission, for tests and monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdmissionStats {
    /// Requests running now.
    pub running: usize,
    /// The most that ran at once.
    pub peak_running: usize,
    /// Requests waiting now.
    pub queued: usize,
    /// The most that waited at once.
    pub peak_queued: usize,
    /// Requests turned away because the queue was full.
    pub rejected: u64,
}

pub(crate) struct Admission {
    slots: Arc<Semaphore>,
    queue: usize,
    running: AtomicUsize,
    peak_running: AtomicUsize,
    queued: AtomicUsize,
    peak_queued: AtomicUsize,
    rejected: AtomicU64,
}

/// The right to run one instance; gives the slot back when dropped.
pub(crate) struct Permit {
    _slot: OwnedSemaphorePermit,
    admission: Arc<Admission>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.admission.running.fetch_sub(1, Relaxed);
    }
}

/// Counts a waiting request until dropped (the wait may be cancelled by a disconnect).
struct Waiting<'a>(&'a Admission);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.queued.fetch_sub(1, Relaxed);
    }
}

impl Admission {
    pub(crate) fn new(max_concurrent: usize, queue: usize) -> Arc<Admission> {
        Arc::new(Admission {
            slots: Arc::new(Semaphore::new(max_concurrent)),
            queue,
            running: AtomicUsize::new(0),
            peak_running: AtomicUsize::new(0),
            queued: AtomicUsize::new(0),
            peak_queued: AtomicUsize::new(0),
            rejected: AtomicU64::new(0),
        })
    }

    /// A permit to run now, or after waiting in the queue; `None` when the queue is full.
    pub(crate) async fn admit(self: &Arc<Self>) -> Option<Permit> {
        let slot = match self.slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                let queued = self.queued.fetch_add(1, Relaxed) + 1;
                let waiting = Waiting(self);
                if queued > self.queue {
                    self.rejected.fetch_add(1, Relaxed);
                    return None;
                }
                self.peak_queued.fetch_max(queued, Relaxed);
                let slot = self.slots.clone().acquire_owned().await.ok()?;
                drop(waiting);
                slot
            }
        };
        let running = self.running.fetch_add(1, Relaxed) + 1;
        self.peak_running.fetch_max(running, Relaxed);
        Some(Permit { _slot: slot, admission: self.clone() })
    }

    pub(crate) fn stats(&self) -> AdmissionStats {
        AdmissionStats {
            running: self.running.load(Relaxed),
            peak_running: self.peak_running.load(Relaxed),
            queued: self.queued.load(Relaxed),
            peak_queued: self.peak_queued.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_wait_in_a_bounded_queue() {
        let admission = Admission::new(2, 1);
        let a = admission.admit().await.unwrap();
        let _b = admission.admit().await.unwrap();
        // The third waits; the fourth finds the queue full.
        let waiter = tokio::spawn({
            let admission = admission.clone();
            async move { admission.admit().await.is_some() }
        });
        while admission.stats().queued == 0 {
            tokio::task::yield_now().await;
        }
        assert!(admission.admit().await.is_none());
        drop(a);
        assert!(waiter.await.unwrap());
        let stats = admission.stats();
        assert_eq!((stats.peak_running, stats.peak_queued, stats.rejected), (2, 1, 1));
        assert_eq!(stats.queued, 0);
    }

    #[tokio::test]
    async fn a_cancelled_wait_leaves_the_queue() {
        let admission = Admission::new(1, 5);
        let _a = admission.admit().await.unwrap();
        let wait = tokio::time::timeout(std::time::Duration::from_millis(5), admission.admit()).await;
        assert!(wait.is_err());
        assert_eq!(admission.stats().queued, 0);
    }
}
