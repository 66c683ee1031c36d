//! The core claim: guests written as blocking code are suspended on host futures, so a single
//! thread keeps a thousand of them waiting at once. Proven by counting in the host.

use std::future::IntoFuture;
use std::time::Duration;

use mixio_host::{Error, Host, Request};
use mixio_tests::guest;

const GUESTS: usize = 1_000;

#[test]
fn a_thousand_sleeping_guests_are_suspended_at_once_on_one_thread() {
    // A current-thread runtime: every guest runs on this one thread. Its clock is paused, so
    // time moves only when every task is waiting: no guest can wake before the last one is
    // suspended, however slowly this machine instantiates a thousand guests. The count below
    // is then exact, not a race against the clock.
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    let host = Host::builder().max_instances(GUESTS as u32).build().unwrap();
    let sleepy = host.load(guest("sleepy")).unwrap();

    let statuses = runtime.block_on(async {
        let calls: Vec<_> =
            (0..GUESTS).map(|_| tokio::spawn(sleepy.call(Request::get("/?ms=200")).into_future())).collect();
        let mut statuses = Vec::with_capacity(GUESTS);
        for call in calls {
            let response = call.await.unwrap().unwrap();
            assert!(response.text().contains(r#""requested_ms":200"#), "{}", response.text());
            statuses.push(response.status);
        }
        statuses
    });

    assert!(statuses.iter().all(|&s| s == 200));
    let m = host.metrics();
    assert_eq!(m.peak_suspended, GUESTS, "every guest was suspended in its sleep at the same moment");
    assert_eq!(m.peak_instances, GUESTS);
    assert_eq!((m.suspended, m.instances), (0, 0), "all instances were dropped afterwards");
    assert_eq!(m.calls, GUESTS as u64);
}

#[tokio::test(flavor = "current_thread")]
async fn a_cancelled_call_stops_the_guest_and_frees_its_instance() {
    let host = Host::new().unwrap();
    let sleepy = host.load(guest("sleepy")).unwrap();

    let (cancel, cancelled) = tokio::sync::oneshot::channel::<()>();
    let call = tokio::spawn(
        sleepy
            .call(Request::get("/?ms=60000"))
            .cancel_on(async move {
                let _ = cancelled.await;
            })
            .into_future(),
    );
    wait_until(|| host.metrics().suspended == 1).await;
    assert_eq!(host.metrics().instances, 1);
    cancel.send(()).unwrap();

    let error = call.await.unwrap().unwrap_err();
    assert!(matches!(error, Error::Cancelled { ref component } if component == "sleepy"), "{error}");
    let m = host.metrics();
    assert_eq!((m.suspended, m.instances), (0, 0), "the sleep future and the store were dropped");

    // The host carries on.
    let response = sleepy.call(Request::get("/?ms=1")).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(host.metrics().instances, 0);
}

#[tokio::test(flavor = "current_thread")]
async fn dropping_a_call_mid_suspension_frees_its_instance() {
    let host = Host::new().unwrap();
    let sleepy = host.load(guest("sleepy")).unwrap();

    let call = tokio::spawn(sleepy.call(Request::get("/?ms=60000")).into_future());
    wait_until(|| host.metrics().suspended == 1).await;
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    let m = host.metrics();
    assert_eq!((m.suspended, m.instances), (0, 0));
    assert_eq!(sleepy.call(Request::get("/?ms=1")).await.unwrap().status, 200);
}

#[tokio::test(flavor = "current_thread")]
async fn a_call_past_its_deadline_times_out() {
    let host = Host::new().unwrap();
    let sleepy = host.load(guest("sleepy")).unwrap();

    let error =
        sleepy.call(Request::get("/?ms=60000")).timeout(Some(Duration::from_millis(50))).await.unwrap_err();
    assert!(
        matches!(error, Error::Timeout { timeout, .. } if timeout == Duration::from_millis(50)),
        "{error}"
    );
    assert_eq!(host.metrics().instances, 0);
}

/// Yields to the runtime until `cond` holds (the guests being waited for run on this thread).
async fn wait_until(cond: impl Fn() -> bool) {
    for _ in 0..10_000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("condition not reached");
}

/// Blocking mode, the same `.wasm`: each call holds a thread of the pool while it sleeps, so
/// with 8 threads at most 8 guests exist at once and the others wait for a thread.
#[test]
fn in_blocking_mode_a_pool_of_8_threads_runs_at_most_8_guests_at_once() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let host = Host::builder().io(mixio_host::IoMode::Blocking { threads: 8 }).build().unwrap();
    let sleepy = host.load(guest("sleepy")).unwrap();
    let statuses = runtime.block_on(async {
        let calls: Vec<_> =
            (0..40).map(|_| tokio::spawn(sleepy.call(Request::get("/?ms=100")).into_future())).collect();
        let mut statuses = Vec::new();
        for call in calls {
            statuses.push(call.await.unwrap().unwrap().status);
        }
        statuses
    });
    assert!(statuses.iter().all(|&s| s == 200));
    let m = host.metrics();
    assert_eq!(m.peak_instances, 8, "the pool's 8 threads were all used, and never more");
    assert_eq!((m.instances, m.calls), (0, 40));
}

#[test]
fn in_blocking_mode_the_deadline_stops_a_spinning_or_waiting_guest() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let host = Host::builder().io(mixio_host::IoMode::Blocking { threads: 2 }).build().unwrap();
    let hostile = host.load(guest("hostile")).unwrap();
    let sleepy = host.load(guest("sleepy")).unwrap();
    runtime.block_on(async {
        let deadline = Some(Duration::from_millis(300));
        let spin = hostile.call(Request::get("/?do=loop")).timeout(deadline).await.unwrap_err();
        assert!(matches!(spin, Error::Timeout { .. }), "{spin}");
        let wait = sleepy.call(Request::get("/?ms=60000")).timeout(deadline).await.unwrap_err();
        assert!(matches!(wait, Error::Timeout { .. }), "{wait}");
        // Both threads are free again.
        let ok = sleepy.call(Request::get("/?ms=1")).await.unwrap();
        assert_eq!(ok.status, 200);
    });
    // The guests were stopped, not abandoned on their threads.
    for _ in 0..1500 {
        if host.metrics().instances == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(host.metrics().instances, 0);
}

/// A pool of 4 instances holds 4 suspended Python guests at once: a componentize-py component
/// has 14 core instances (CPython's libraries are modules of their own), and the pool's share
/// of core instances per component covers it (with 8, only 2 fitted and the others were refused
/// as busy).
#[tokio::test]
async fn a_pool_of_four_instances_holds_four_suspended_python_guests() {
    let host = Host::builder().max_instances(4).build().unwrap();
    let hello = host.load(guest("hello-py")).unwrap();
    let calls: Vec<_> =
        (0..4).map(|_| tokio::spawn(hello.call(Request::get("/?ms=600000")).into_future())).collect();
    wait_until(|| host.metrics().suspended == 4 || calls.iter().any(|c| c.is_finished())).await;
    assert!(calls.iter().all(|c| !c.is_finished()), "a call ended instead of waiting");
    assert_eq!(host.metrics().instances, 4);
    for call in calls {
        call.abort();
    }
}
