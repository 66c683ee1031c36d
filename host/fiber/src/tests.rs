//! Tests of fibers. Each `unsafe` block of the module has one that would catch its violation:
//! the context pointer (a stale waker would be woken), the yielder pointer (nested fibers
//! would suspend the wrong stack), unwinding (destructors counted, suspended count restored).

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use super::{Builder, block_on, in_fiber, spawn, stack, suspended};

fn local<F: Future>(future: F) -> F::Output {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
    tokio::task::LocalSet::new().block_on(&runtime, future)
}

/// Counts its wakes.
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

fn counting_waker() -> (Arc<CountingWaker>, Waker) {
    let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
    (counter.clone(), Waker::from(counter))
}

#[test]
fn a_ready_future_returns_without_suspending() {
    let value = local(spawn(|| {
        assert!(in_fiber());
        let v = block_on(async { 20 }) + block_on(std::future::ready(22));
        assert_eq!(suspended(), 0);
        v
    }));
    assert_eq!(value, 42);
    assert!(!in_fiber());
}

#[test]
fn a_pending_future_suspends_the_fiber_until_it_is_ready() {
    let value = local(async {
        let fiber = tokio::task::spawn_local(spawn(|| {
            block_on(tokio::time::sleep(Duration::from_millis(5)));
            block_on(tokio::task::yield_now());
            "done"
        }));
        tokio::task::yield_now().await;
        assert_eq!(suspended(), 1);
        fiber.await.unwrap()
    });
    assert_eq!(value, "done");
    assert_eq!(suspended(), 0);
}

#[test]
fn ten_thousand_fibers_are_suspended_at_once_on_one_thread() {
    const N: usize = 10_000;
    local(async {
        let started = tokio::time::Instant::now();
        let fibers: Vec<_> = (0..N)
            .map(|i| {
                tokio::task::spawn_local(spawn(move || {
                    block_on(tokio::time::sleep(Duration::from_millis(200)));
                    i
                }))
            })
            .collect();
        // The clock is paused and does not advance while this task keeps yielding.
        for _ in 0..N {
            if suspended() == N {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(suspended(), N, "every fiber is suspended in its sleep at once");
        let mut sum = 0;
        for fiber in fibers {
            sum += fiber.await.unwrap();
        }
        assert_eq!(sum, N * (N - 1) / 2);
        assert_eq!(started.elapsed(), Duration::from_millis(200), "they slept together, once");
        assert_eq!(suspended(), 0);
    });
    assert!(stack::pooled() > 0, "finished fibers' stacks are kept for reuse");
}

#[test]
fn the_latest_waker_is_the_one_woken() {
    let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
    let mut fiber = spawn(move || block_on(rx).unwrap());
    let (first, first_waker) = counting_waker();
    let (second, second_waker) = counting_waker();
    assert!(Pin::new(&mut fiber).poll(&mut Context::from_waker(&first_waker)).is_pending());
    // Re-polled with another waker (the task moved to another executor slot, say): the
    // inner future must now wake the second one.
    assert!(Pin::new(&mut fiber).poll(&mut Context::from_waker(&second_waker)).is_pending());
    tx.send(7).unwrap();
    assert_eq!((first.0.load(SeqCst), second.0.load(SeqCst)), (0, 1));
    assert_eq!(Pin::new(&mut fiber).poll(&mut Context::from_waker(&second_waker)), Poll::Ready(7));
}

#[test]
fn nested_fibers_each_suspend_their_own_stack() {
    let (outer_steps, inner_steps) = local(async {
        spawn(|| {
            let inner = spawn(|| {
                let mut steps = 0;
                for _ in 0..3 {
                    block_on(tokio::task::yield_now());
                    assert!(in_fiber());
                    steps += 1;
                }
                steps
            });
            let mut outer = 0;
            block_on(tokio::task::yield_now());
            outer += 1;
            let inner_steps = block_on(inner);
            block_on(tokio::time::sleep(Duration::from_millis(1)));
            outer += 1;
            (outer, inner_steps)
        })
        .await
    });
    assert_eq!((outer_steps, inner_steps), (2, 3));
    assert!(!in_fiber());
}

#[test]
fn a_panic_in_a_fiber_reaches_the_awaiting_task() {
    local(async {
        let before = tokio::task::spawn_local(spawn(|| -> u32 { panic!("boom before suspending") }));
        let after = tokio::task::spawn_local(spawn(|| -> u32 {
            block_on(tokio::task::yield_now());
            panic!("boom after resuming")
        }));
        for (task, message) in [(before, "boom before suspending"), (after, "boom after resuming")] {
            let error = task.await.unwrap_err();
            assert!(error.is_panic());
            let payload = error.into_panic();
            assert_eq!(payload.downcast_ref::<&str>(), Some(&message));
        }
        assert_eq!(suspended(), 0);
        assert!(!in_fiber());
        // The thread still runs fibers.
        assert_eq!(spawn(|| block_on(async { 1 })).await, 1);
    });
}

/// Adds one to its counter when dropped.
struct Counted(Rc<Cell<usize>>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn dropping_a_suspended_fiber_unwinds_its_stack() {
    let dropped = Rc::new(Cell::new(0));
    let pooled_before = stack::pooled();
    local({
        let dropped = dropped.clone();
        async move {
            let mut fiber = Box::pin(spawn(move || {
                let _a = Counted(dropped.clone());
                let _b = Box::new([Counted(dropped.clone()), Counted(dropped)]);
                block_on(std::future::pending::<()>());
                unreachable!("a pending future never completes")
            }));
            std::future::poll_fn(|cx| {
                assert!(fiber.as_mut().poll(cx).is_pending());
                Poll::Ready(())
            })
            .await;
            assert_eq!(suspended(), 1);
            drop(fiber);
            assert_eq!(suspended(), 0);
        }
    });
    assert_eq!(dropped.get(), 3, "every value on the fiber's stack was dropped");
    assert_eq!(stack::pooled(), pooled_before + 1, "its stack went back to the pool");
    // A fiber never started is dropped without running.
    drop(spawn(|| panic!("never runs")));
}

#[test]
fn block_on_outside_a_fiber_blocks_the_thread() {
    // No runtime: a minimal executor parks the thread until woken.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(10));
        tx.send(5).unwrap();
    });
    assert_eq!(block_on(rx).unwrap(), 5);

    // On a multi-threaded runtime's worker, through block_in_place.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let slept = runtime.block_on(async {
        tokio::spawn(async {
            block_on(tokio::time::sleep(Duration::from_millis(5)));
            "slept"
        })
        .await
        .unwrap()
    });
    assert_eq!(slept, "slept");

    // On a thread outside a current-thread runtime that another thread drives.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let handle = runtime.handle().clone();
    let value = std::thread::spawn(move || {
        let _guard = handle.enter();
        block_on(async { 9 })
    })
    .join()
    .unwrap();
    assert_eq!(value, 9);
}

#[test]
fn stacks_are_sized_and_reused() {
    local(async {
        let deep = Builder::new()
            .stack_size(2 << 20)
            .spawn(|| {
                // Several hundred KiB of stack: more than the default, within 2 MiB.
                fn recurse(n: usize) -> usize {
                    std::hint::black_box(&[n as u8; 1024]);
                    if n == 0 { 0 } else { recurse(n - 1) + 1 }
                }
                recurse(300)
            })
            .await;
        assert_eq!(deep, 300);
        let pooled = stack::pooled();
        for _ in 0..10 {
            spawn(|| block_on(tokio::task::yield_now())).await;
        }
        assert!(stack::pooled() <= pooled + 1, "sequential fibers reuse one stack");
    });
}

/// The child half of [`a_stack_overflow_hits_the_guard_page`]: run only in a subprocess.
#[test]
#[ignore = "overflows a fiber's stack on purpose; run by a_stack_overflow_hits_the_guard_page"]
fn overflow_child() {
    if std::env::var_os("MIXIO_FIBER_OVERFLOW").is_none() {
        return;
    }
    #[allow(unconditional_recursion)]
    fn recurse(n: u64) -> u64 {
        let buffer = std::hint::black_box([n as u8; 4096]);
        recurse(n + 1) + u64::from(buffer[7])
    }
    local(Builder::new().stack_size(64 << 10).spawn(|| recurse(0)));
    unreachable!("the recursion cannot return");
}

#[test]
fn a_stack_overflow_hits_the_guard_page() {
    use std::os::unix::process::ExitStatusExt;
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "tests::overflow_child", "--nocapture", "--test-threads=1"])
        .env("MIXIO_FIBER_OVERFLOW", "1")
        .output()
        .unwrap();
    let signal = output.status.signal();
    assert!(
        signal == Some(11) || signal == Some(7),
        "the process dies of SIGSEGV (or SIGBUS) at the guard page, not silently: {:?}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}
