//! Blocking mode: the same components and the same async capability implementations, each
//! call driven to completion on a thread of a bounded pool of OS threads, which blocks while
//! the guest waits on an import. One generic adapter for every import: the whole call is the
//! future the thread waits for ([`wait`]), bounded by the call's deadline and its caller.

use std::future::Future;
use std::time::Instant;

use mixio_fiber as fiber;

/// The call's deadline passed while the guest waited on an import.
#[derive(Debug, thiserror::Error)]
#[error("the call's deadline passed")]
pub(crate) struct DeadlineExceeded;

/// The caller dropped the call (it was cancelled, or timed out on the caller's side).
#[derive(Debug, thiserror::Error)]
#[error("the call was cancelled")]
pub(crate) struct CallCancelled;

/// When a blocking call must stop: its deadline, or its caller going away (the sender of
/// `cancel`, held by the awaiting future, is dropped).
#[derive(Clone)]
pub(crate) struct Stop {
    pub(crate) deadline: Option<Instant>,
    pub(crate) cancel: Option<tokio::sync::watch::Receiver<()>>,
}

impl Stop {
    /// Why the call must stop now, if it must.
    pub(crate) fn check(&self) -> wasmtime::Result<()> {
        if self.cancel.as_ref().is_some_and(|c| c.has_changed().is_err()) {
            return Err(wasmtime::Error::new(CallCancelled));
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(wasmtime::Error::new(DeadlineExceeded));
        }
        Ok(())
    }
}

/// Blocks the thread on `future`, giving up when `stop` says so.
pub(crate) fn wait<F: Future>(stop: Stop, future: F) -> wasmtime::Result<F::Output> {
    stop.check()?;
    fiber::block_on(async move {
        let deadline = async {
            match stop.deadline {
                Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
                None => std::future::pending().await,
            }
        };
        let cancelled = async {
            match stop.cancel {
                // Completes with an error when the sender is dropped.
                Some(mut cancel) => while cancel.changed().await.is_ok() {},
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            // A call that completes as its deadline passes has completed.
            biased;
            output = future => Ok(output),
            () = deadline => Err(wasmtime::Error::new(DeadlineExceeded)),
            () = cancelled => Err(wasmtime::Error::new(CallCancelled)),
        }
    })
}
