//! Native guests: handlers written with the `mixio` SDK, compiled into this test and served by
//! `mixio-host` on fibers. A panic or a deadline fails its own call only; many wait at once.

use std::future::IntoFuture;
use std::time::Duration;

use mixio::http::{Request as GuestRequest, Response as GuestResponse};
use mixio_host::{Error, Grants, Host, Request};

fn sleeper(req: GuestRequest) -> GuestResponse {
    let ms: u64 = req.query_param("ms").and_then(|v| v.parse().ok()).unwrap_or(10);
    mixio::time::sleep(Duration::from_millis(ms));
    let greeting = mixio::config::get("greeting").unwrap_or_default();
    GuestResponse::text(format!("{greeting} after {ms} ms"))
}

fn panicker(_: GuestRequest) -> GuestResponse {
    mixio::time::sleep(Duration::from_millis(1));
    panic!("native boom")
}

fn counter(_: GuestRequest) -> GuestResponse {
    let store = mixio::kv::Store::open("default").unwrap();
    let n = store.increment("hits", 1).unwrap();
    match mixio::kv::Store::open("secret") {
        Err(mixio::Error::AccessDenied(_)) => GuestResponse::text(format!("{n}")),
        other => GuestResponse::error(500, &format!("expected access denied, got {:?}", other.is_ok())),
    }
}

/// Holds an open store while it sleeps: a deadline drops it suspended, and the store's
/// destructor runs as its fiber unwinds.
fn holder(req: GuestRequest) -> GuestResponse {
    let store = mixio::kv::Store::open("default").unwrap();
    let ms: u64 = req.query_param("ms").and_then(|v| v.parse().ok()).unwrap_or(10);
    mixio::time::sleep(Duration::from_millis(ms));
    GuestResponse::text(format!("{}", store.increment("held", 1).unwrap()))
}

/// Many keys in one call each way: `set_many` then `get_many`, as a native guest.
fn labels(_: GuestRequest) -> GuestResponse {
    let store = mixio::kv::Store::open("default").unwrap();
    store.set_many(&[("a", "1"), ("b", "2"), ("a", "3")]).unwrap();
    let values = store.get_many(&["b", "missing", "a"]).unwrap();
    let too_many = store.get_many(&vec!["k"; 257]);
    match too_many {
        Err(mixio::Error::Invalid(message)) => GuestResponse::text(format!("{values:?} / {message}")),
        other => GuestResponse::error(500, &format!("expected invalid, got {:?}", other.is_ok())),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn native_handlers_get_their_grants_and_fail_alone() {
    let host = Host::builder().kv_store("default", "memory").kv_store("secret", "memory").build().unwrap();
    let sleepy = host.load_native("sleepy", sleeper, &Grants::new().config("greeting", "hi")).unwrap();
    let bad = host.load_native("bad", panicker, &Grants::new()).unwrap();
    let count = host.load_native("count", counter, &Grants::new().kv("default")).unwrap();
    runtime().block_on(async {
        let ok = sleepy.call(Request::get("/?ms=5")).await.unwrap();
        assert_eq!(ok.text(), "hi after 5 ms");
        let panic = bad.call(Request::get("/")).await.unwrap_err();
        assert!(matches!(&panic, Error::Panic { message, .. } if message.contains("native boom")), "{panic}");
        for expected in ["1", "2"] {
            assert_eq!(count.call(Request::get("/")).await.unwrap().text(), expected);
        }
        // Dropped while suspended holding a store, twice: each call fails alone, and the
        // host goes on serving.
        let hold = host.load_native("hold", holder, &Grants::new().kv("default")).unwrap();
        for _ in 0..2 {
            let late = hold.call(Request::get("/?ms=60000")).timeout(Some(Duration::from_millis(100))).await;
            assert!(matches!(late, Err(Error::Timeout { .. })), "{late:?}");
        }
        assert_eq!(hold.call(Request::get("/?ms=1")).await.unwrap().text(), "1");
        let labels = host.load_native("labels", labels, &Grants::new().kv("default")).unwrap();
        assert_eq!(
            labels.call(Request::get("/")).await.unwrap().text(),
            r#"[Some([50]), None, Some([51])] / 257 keys in one call exceed the limit of 256"#
        );
        let late = sleepy.call(Request::get("/?ms=60000")).timeout(Some(Duration::from_millis(100))).await;
        assert!(matches!(late, Err(Error::Timeout { .. })), "{late:?}");
        assert_eq!(sleepy.call(Request::get("/?ms=1")).await.unwrap().status, 200);
    });
    // The timed-out fiber was dropped: its instance state is gone.
    for _ in 0..3000 {
        if host.metrics().instances == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(host.metrics().instances, 0);
}

#[test]
fn a_thousand_native_guests_wait_at_once_and_unwind_when_dropped() {
    const N: usize = 1000;
    let host = Host::new().unwrap();
    let sleepy = host.load_native("sleepy", sleeper, &Grants::new()).unwrap();
    runtime().block_on(async {
        let calls: Vec<_> =
            (0..N).map(|_| tokio::spawn(sleepy.call(Request::get("/?ms=600000")).into_future())).collect();
        for _ in 0..2000 {
            if host.metrics().suspended == N {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(host.metrics().suspended, N, "every native guest is suspended in its sleep");
        for call in &calls {
            call.abort();
        }
        for _ in 0..500 {
            if host.metrics().instances == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!((host.metrics().instances, host.metrics().suspended), (0, 0), "dropped fibers unwound");
    });
}
