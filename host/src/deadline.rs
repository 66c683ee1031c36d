//! A deadline around a guest call that costs next to nothing on the many polls a call gets.
//!
//! A call in async mode is polled again every time one of its host calls makes progress.
//! `tokio::time::timeout` polls its timer on each of those polls (a cooperative-budget check
//! and a waker registration). [`Deadline`] polls its timer only when the timer has fired or the
//! task's waker changed: otherwise the waker the timer holds already wakes this task.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::Sleep;

/// The deadline passed before the future finished.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Elapsed;

pin_project_lite::pin_project! {
    /// A future that gives up with [`Elapsed`] when its deadline passes (see [`deadline`]).
    pub(crate) struct Deadline<F> {
        #[pin]
        future: F,
        #[pin]
        timer: Option<Sleep>,
        // The waker the timer was last polled with.
        registered: Option<Waker>,
    }
}

/// Runs `future` until it finishes or `timeout` (if any) passes, whichever comes first.
pub(crate) fn deadline<F: Future>(future: F, timeout: Option<Duration>) -> Deadline<F> {
    Deadline { future, timer: timeout.map(tokio::time::sleep), registered: None }
}

impl<F: Future> Future for Deadline<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(out) = this.future.poll(cx) {
            return Poll::Ready(Ok(out));
        }
        let Some(timer) = this.timer.as_pin_mut() else { return Poll::Pending };
        let same_task = this.registered.as_ref().is_some_and(|w| same_waker(w, cx.waker()));
        if !same_task || timer.is_elapsed() {
            if timer.poll(cx).is_ready() {
                return Poll::Ready(Err(Elapsed));
            }
            *this.registered = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// Whether `a` and `b` wake the same task. `Waker::will_wake` compares vtable addresses, and
/// a runtime's waker and its clones can carry equal vtables at different addresses (tokio's
/// do, a copy per codegen unit), so equal data and equal functions count as the same waker.
fn same_waker(a: &Waker, b: &Waker) -> bool {
    a.will_wake(b) || (a.data() == b.data() && a.vtable() == b.vtable())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_future_that_finishes_in_time_gives_its_output() {
        let fast = async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            7
        };
        assert_eq!(deadline(fast, Some(Duration::from_secs(1))).await, Ok(7));
        assert_eq!(deadline(std::future::pending::<()>(), None).now_or_never(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_future_pending_past_its_deadline_is_stopped() {
        assert_eq!(
            deadline(std::future::pending::<()>(), Some(Duration::from_millis(50))).await,
            Err(Elapsed)
        );
    }

    /// A future that keeps waking itself is polled again and again without its timer being
    /// polled each time; the timer still stops it.
    #[tokio::test]
    async fn a_busy_future_is_stopped_at_its_deadline() {
        let mut polls = 0_u64;
        let busy = std::future::poll_fn(|cx| {
            polls += 1;
            cx.waker().wake_by_ref();
            Poll::<()>::Pending
        });
        assert_eq!(deadline(busy, Some(Duration::from_millis(20))).await, Err(Elapsed));
        assert!(polls > 1);
    }

    /// Moved to another task (a new waker), the future registers that task's waker.
    #[tokio::test(start_paused = true)]
    async fn the_timer_follows_the_future_to_another_task() {
        let mut call = Box::pin(deadline(std::future::pending::<()>(), Some(Duration::from_millis(30))));
        assert!((&mut call).now_or_never().is_none());
        let result = tokio::spawn(call).await.unwrap();
        assert_eq!(result, Err(Elapsed));
    }

    #[tokio::test]
    async fn a_clone_of_the_task_waker_is_the_same_waker() {
        let waker = std::future::poll_fn(|cx| Poll::Ready(cx.waker().clone())).await;
        std::future::poll_fn(|cx| {
            assert!(same_waker(&waker, cx.waker()));
            assert!(!same_waker(&waker, Waker::noop()));
            Poll::Ready(())
        })
        .await;
    }

    use futures_util::FutureExt;
}
