//! Instance reuse (`Component::with_reuse`), counted through the `reused` guest's own global
//! (`/count`: the requests its instance has served) and the host's metrics, never timed: an
//! instance serves N requests and is then retired; a trap, a deadline, a cancellation, memory
//! growth and idle time each retire it; a transaction left open is rolled back before the next
//! request; a full pool retires the least recently used idle instance; reuse is off by
//! default; `wasi:http` components reuse too.

use std::future::IntoFuture;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use mixio_host::{Component, Error, Grants, Host, IoMode, Request, Retirement, Reuse};
use mixio_tests::{guest, services, wait_until};

const MODES: [IoMode; 2] = [IoMode::Async, IoMode::Blocking { threads: 4 }];

/// A host in mode `io` with SQL database `default` on a new SQLite file, and the `reused`
/// guest loaded with `reuse` (none: a fresh instance per call).
fn reused(io: IoMode, reuse: Option<Reuse>) -> (Host, Component, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(services::unique_name("mixio-reuse"));
    let host = Host::builder()
        .io(io)
        .sql_database("default", format!("sqlite:{}", dir.join("app.db").display()))
        .build()
        .unwrap();
    let component = host.load_with(guest("reused"), &Grants::new().sql("default")).unwrap();
    let component = match reuse {
        Some(reuse) => component.with_reuse(reuse).unwrap(),
        None => component,
    };
    (host, component, dir)
}

async fn get(component: &Component, path: &str) -> String {
    let response = component.call(Request::get(path)).await.unwrap();
    assert_eq!(response.status, 200, "{path}: {}", response.text());
    response.text().into_owned()
}

/// `/count` `n` times: what each answered.
async fn counts(component: &Component, n: usize) -> Vec<String> {
    let mut seen = Vec::new();
    for _ in 0..n {
        seen.push(get(component, "/count").await);
    }
    seen
}

#[tokio::test]
async fn reuse_is_off_by_default() {
    let (host, component, _) = reused(IoMode::Async, None);
    assert_eq!(counts(&component, 3).await, ["1", "1", "1"], "a fresh instance per call");
    let metrics = host.metrics();
    assert_eq!((metrics.reused, metrics.idle_instances, metrics.instances), (0, 0, 0));
}

#[tokio::test]
async fn a_reused_instance_serves_n_requests_then_it_is_retired() {
    for io in MODES {
        let (host, component, _) = reused(io, Some(Reuse::new().requests(3)));
        assert_eq!(counts(&component, 7).await, ["1", "2", "3", "1", "2", "3", "1"], "{io}");
        let metrics = host.metrics();
        assert_eq!(metrics.retired(Retirement::Requests), 2, "{io}");
        assert_eq!(metrics.reused, 4, "{io}: the 2nd, 3rd, 5th and 6th calls");
        assert_eq!((metrics.idle_instances, metrics.instances), (1, 1), "{io}: one instance waits");
        drop(component);
        assert_eq!(host.metrics().instances, 0, "{io}: dropping the component drops its idle instances");
    }
}

#[tokio::test]
async fn a_trap_retires_the_instance() {
    for io in MODES {
        let (host, component, _) = reused(io, Some(Reuse::new()));
        assert_eq!(counts(&component, 2).await, ["1", "2"]);
        let error = component.call(Request::get("/panic")).await.unwrap_err();
        assert!(matches!(error, Error::Panic { .. }), "{io}: {error}");
        assert_eq!(counts(&component, 2).await, ["1", "2"], "{io}: a fresh instance after the trap");
        assert_eq!(host.metrics().retired(Retirement::Failed), 1, "{io}");
    }
}

#[tokio::test]
async fn a_deadline_retires_the_instance() {
    for io in MODES {
        let (host, component, _) = reused(io, Some(Reuse::new()));
        assert_eq!(counts(&component, 1).await, ["1"]);
        let call = component.call(Request::get("/sleep?ms=600000")).timeout(Some(Duration::from_millis(50)));
        let error = call.await.unwrap_err();
        assert!(matches!(error, Error::Timeout { .. }), "{io}: {error}");
        assert_eq!(counts(&component, 1).await, ["1"], "{io}: a fresh instance after the deadline");
        // In blocking mode the stopped instance is dropped, and its retirement counted, on its
        // thread, which may be after the caller has its error.
        wait_until("the stopped instance to be dropped", || host.metrics().instances == 1).await;
        assert_eq!(host.metrics().retired(Retirement::Timeout), 1, "{io}");
    }
}

#[tokio::test]
async fn a_cancellation_retires_the_instance() {
    for io in MODES {
        let (host, component, _) = reused(io, Some(Reuse::new()));
        assert_eq!(counts(&component, 1).await, ["1"]);
        let (cancel, cancelled) = tokio::sync::oneshot::channel::<()>();
        let call = component.call(Request::get("/sleep?ms=600000")).cancel_on(async {
            let _ = cancelled.await;
        });
        let call = tokio::spawn(call.into_future());
        // Cancelled while it is suspended in its sleep (in async mode; a blocking call's
        // thread waits, which the suspension count does not see).
        if io == IoMode::Async {
            wait_until("the guest to sleep", || host.metrics().suspended == 1).await;
        }
        cancel.send(()).unwrap();
        let error = call.await.unwrap().unwrap_err();
        assert!(matches!(error, Error::Cancelled { .. }), "{io}: {error}");
        assert_eq!(counts(&component, 1).await, ["1"], "{io}: a fresh instance after the cancellation");
        assert_eq!(host.metrics().retired(Retirement::Cancelled), 1, "{io}");
    }
}

#[tokio::test]
async fn memory_grown_past_the_bound_retires_the_instance() {
    // The bound set: 8 MiB, more than the guest's first call takes.
    let (host, component, _) = reused(IoMode::Async, Some(Reuse::new().max_memory(8 << 20)));
    assert_eq!(counts(&component, 2).await, ["1", "2"]);
    assert_eq!(get(&component, "/grow?mib=1").await, "grown");
    assert_eq!(counts(&component, 1).await, ["4"], "1 MiB more is within the bound");
    assert_eq!(get(&component, "/grow?mib=16").await, "grown");
    assert_eq!(host.metrics().retired(Retirement::Memory), 1);
    assert_eq!(counts(&component, 1).await, ["1"], "a fresh instance after the growth");

    // The default bound: twice the memory after the first call.
    let (host, component, _) = reused(IoMode::Async, Some(Reuse::new()));
    assert_eq!(counts(&component, 1).await, ["1"]);
    assert_eq!(get(&component, "/grow?mib=16").await, "grown");
    assert_eq!(host.metrics().retired(Retirement::Memory), 1);
    assert_eq!(counts(&component, 1).await, ["1"]);
}

#[tokio::test]
async fn an_idle_instance_is_retired_after_the_idle_time() {
    let (host, component, _) = reused(IoMode::Async, Some(Reuse::new().idle(Duration::from_millis(20))));
    assert_eq!(counts(&component, 2).await, ["1", "2"]);
    wait_until("the idle instance to be retired", || host.metrics().retired(Retirement::Idle) == 1).await;
    let metrics = host.metrics();
    assert_eq!((metrics.idle_instances, metrics.instances), (0, 0), "nothing is left of it");
    assert_eq!(counts(&component, 1).await, ["1"]);
}

#[tokio::test]
async fn a_transaction_left_open_is_rolled_back_before_the_next_request() {
    for io in MODES {
        let (host, component, dir) = reused(io, Some(Reuse::new()));
        // Request 1 sees its own row, and keeps its connection in a global, uncommitted.
        assert_eq!(get(&component, "/begin").await, "rows=1", "{io}");
        // Request 2, on the same instance: the kept handle is open but outside any
        // transaction; the row of request 1 is gone; nothing was committed.
        assert_eq!(
            get(&component, "/stale").await,
            "rows=0 commit=transaction: commit without begin",
            "{io}"
        );
        assert_eq!(get(&component, "/rows").await, "rows=0", "{io}");
        assert_eq!(counts(&component, 1).await, ["4"], "{io}: the same instance served all four");
        assert_eq!(host.metrics().retirements, [0; Retirement::ALL.len()], "{io}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[tokio::test]
async fn a_full_pool_retires_the_least_recently_used_idle_instance_to_make_room() {
    let host = Host::builder().max_instances(3).build().unwrap();
    let older = host.load(guest("reused")).unwrap().with_reuse(Reuse::new()).unwrap();
    let newer = host.load(guest("reused")).unwrap().with_reuse(Reuse::new()).unwrap();
    // A call of `older`, then two calls of `newer` at once (two instances): three idle
    // instances, every slot of the pool taken, `older`'s the least recently used.
    assert_eq!(counts(&older, 1).await, ["1"]);
    let (a, b) = tokio::join!(get(&newer, "/sleep?ms=50"), get(&newer, "/sleep?ms=50"));
    assert_eq!((a.as_str(), b.as_str()), ("slept", "slept"));
    assert_eq!(host.metrics().idle_instances, 3);
    // A third component's fresh instance finds no free slot: the least recently used idle
    // instance makes room, and only it. The instance that had to try twice serves its call and
    // is then retired (the failed try may have left parts of an instance in its store).
    let third = host.load(guest("reused")).unwrap().with_reuse(Reuse::new()).unwrap();
    assert_eq!(counts(&third, 1).await, ["1"]);
    let metrics = host.metrics();
    assert_eq!(
        (
            metrics.retired(Retirement::Evicted),
            metrics.retired(Retirement::Unfinished),
            metrics.idle_instances
        ),
        (1, 1, 2)
    );
    // `newer` kept both its instances; `older` starts afresh.
    assert_eq!(counts(&newer, 2).await, ["2", "3"]);
    assert_eq!(counts(&older, 1).await, ["1"]);
    assert_eq!(host.metrics().retired(Retirement::Evicted), 1);
}

#[tokio::test]
async fn reuse_refuses_commands_and_bad_policies() {
    let host = Host::new().unwrap();
    let command = host.load(guest("countdown")).unwrap();
    let error = command.with_reuse(Reuse::new()).unwrap_err().to_string();
    assert!(error.contains("command"), "{error}");
    let hello = host.load(guest("hello")).unwrap();
    let error = hello.with_reuse(Reuse::new().requests(0)).unwrap_err().to_string();
    assert!(error.contains("requests"), "{error}");
}

/// A `wasi:http` component served through `call_http`, the body read to its end.
async fn serve_http(component: &Component) -> String {
    let request = hyper::Request::get("http://localhost/").body(Full::new(bytes::Bytes::new())).unwrap();
    let response = component.call_http(request, Some(Duration::from_secs(30))).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

#[tokio::test]
async fn a_wasi_http_component_reuses_its_instance() {
    let host = Host::new().unwrap();
    let component = host.load(guest("wasi-hello")).unwrap().with_reuse(Reuse::new().requests(2)).unwrap();
    let idle = || {
        let metrics = host.metrics();
        metrics.instances == metrics.idle_instances
    };
    let first = serve_http(&component).await;
    for _ in 0..4 {
        // Its body read, the instance goes back idle (or is retired) once its handler returns.
        wait_until("the instance to be given back", idle).await;
        assert_eq!(serve_http(&component).await, first);
    }
    wait_until("the instance to be given back", idle).await;
    let metrics = host.metrics();
    assert_eq!(metrics.reused, 2, "the 2nd and 4th calls");
    assert_eq!(metrics.retired(Retirement::Requests), 2);
    assert_eq!((metrics.idle_instances, metrics.instances), (1, 1));
}

/// Blocking mode with reuse: an instance goes back idle before its thread takes the next call,
/// so 8 threads never have more than 8 instances, and all but the first 8 calls reuse one.
#[test]
fn in_blocking_mode_reuse_keeps_at_most_one_instance_per_thread() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let host = Host::builder().io(IoMode::Blocking { threads: 8 }).build().unwrap();
    let component = host.load(guest("reused")).unwrap().with_reuse(Reuse::new()).unwrap();
    runtime.block_on(async {
        let calls: Vec<_> = (0..40)
            .map(|_| tokio::spawn(component.call(Request::get("/sleep?ms=20")).into_future()))
            .collect();
        for call in calls {
            assert_eq!(call.await.unwrap().unwrap().status, 200);
        }
    });
    let metrics = host.metrics();
    assert_eq!(metrics.peak_instances, 8, "one instance per thread at most");
    assert_eq!((metrics.reused, metrics.idle_instances), (32, 8));
}
