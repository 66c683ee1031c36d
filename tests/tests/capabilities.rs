//! Outbound HTTP (allow-list, redirects, limits, connection reuse), pub/sub (in-process, NATS,
//! Redis, across hosts) and key-value namespacing, end to end through guests.

use std::time::Duration;

use futures_util::StreamExt;
use mixio_host::capabilities::http_client::HttpConfig;
use mixio_host::{Grants, Host, Request, Response};
use mixio_tests::http_server::TestServer;
use mixio_tests::{guest, services};
use serde_json::Value;

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn fetch(host: &Host, grants: &Grants, url: &str, extra: &str) -> Response {
    let relay = host.load_with(guest("relay"), grants).unwrap();
    relay.call(Request::get(format!("/fetch?url={}{extra}", encode(url)))).await.unwrap()
}

fn json(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

#[tokio::test]
async fn a_granted_host_is_reached_and_connections_are_reused() {
    let server = TestServer::start().await;
    let host = Host::new().unwrap();
    let grants = Grants::new().allow_host(format!("http://127.0.0.1:{}", server.port()));
    for i in 0..5 {
        let r = fetch(&host, &grants, &server.url(&format!("/echo?i={i}")), "&method=POST").await;
        assert_eq!(r.status, 200, "{}", r.text());
        let outer = json(&r);
        assert_eq!(outer["status"], 200);
        assert_eq!(outer["content_type"], "application/json");
        let echoed: Value = serde_json::from_str(outer["body"].as_str().unwrap()).unwrap();
        assert_eq!(echoed["method"], "POST");
        assert_eq!(echoed["path"], format!("/echo?i={i}"));
    }
    assert_eq!(server.connections(), 1, "one pooled connection served five guest calls");
}

#[tokio::test]
async fn hosts_outside_the_allow_list_are_refused_before_connecting() {
    let server = TestServer::start().await;
    let other = TestServer::start().await;
    let host = Host::new().unwrap();
    let grants = Grants::new().allow_host(format!("http://localhost:{}", server.port()));

    // Not on the list at all.
    let r = fetch(&host, &grants, &other.url("/echo"), "").await;
    assert_eq!((r.status, r.text().trim()), (502, format!("not allowed: {}", other.url("/echo")).as_str()));
    // An IP literal for a host allowed by name is still not on the list.
    let r = fetch(&host, &grants, &server.url("/echo"), "").await;
    assert!(r.text().starts_with("not allowed: http://127.0.0.1:"), "{}", r.text());
    // Credentials in the URL.
    let with_credentials = format!("http://user:secret@localhost:{}/echo", server.port());
    let r = fetch(&host, &grants, &with_credentials, "").await;
    assert!(r.text().contains("credentials in URLs are not allowed"), "{}", r.text());
    assert!(!r.text().contains("secret"));
    assert_eq!(server.connections() + other.connections(), 0, "nothing connected");

    // No grant at all: nothing is allowed.
    let r = fetch(&host, &Grants::new(), &server.url("/echo"), "").await;
    assert!(r.text().starts_with("not allowed"), "{}", r.text());
}

#[tokio::test]
async fn redirects_are_followed_and_each_hop_is_checked() {
    let server = TestServer::start().await;
    let denied = TestServer::start().await;
    let host = Host::new().unwrap();
    let grants = Grants::new().allow_host(format!("http://127.0.0.1:{}", server.port()));

    let to_allowed = server.url(&format!("/redirect?to={}", encode(&server.url("/echo"))));
    let r = fetch(&host, &grants, &to_allowed, "").await;
    assert_eq!(json(&r)["status"], 200, "{}", r.text());

    let to_denied = server.url(&format!("/redirect?to={}", encode(&denied.url("/echo"))));
    let r = fetch(&host, &grants, &to_denied, "").await;
    assert_eq!(r.status, 502);
    assert_eq!(r.text().trim(), format!("not allowed: {}", denied.url("/echo")));
    assert_eq!(denied.connections(), 0);
}

#[tokio::test]
async fn slow_and_huge_responses_are_cut_off() {
    let server = TestServer::start().await;
    let mut config = HttpConfig::default();
    config.max_response_bytes = 1000;
    let host = Host::builder().http(config).build().unwrap();
    let grants = Grants::new().allow_host("http://127.0.0.1:*");

    let r = fetch(&host, &grants, &server.url("/slow?ms=10000"), "&timeout_ms=100").await;
    assert_eq!((r.status, r.text().trim()), (502, "timed out"));
    let r = fetch(&host, &grants, &server.url("/big?bytes=5000"), "").await;
    assert_eq!((r.status, r.text().trim()), (502, "response larger than 1000 bytes"));
    let r = fetch(&host, &grants, &server.url("/big?bytes=1000"), "").await;
    assert_eq!(json(&r)["body"].as_str().unwrap().len(), 1000);

    let r = fetch(&host, &grants, "http://127.0.0.1:1/", "").await;
    assert!(r.text().starts_with("connection failed:"), "{}", r.text());
    let r = fetch(&host, &grants, "not a url", "").await;
    assert!(r.text().starts_with("invalid request:"), "{}", r.text());
}

async fn publish(host: &Host, grants: &Grants, topic: &str, payload: &str) -> Response {
    let relay = host.load_with(guest("relay"), grants).unwrap();
    relay.call(Request::new("POST", format!("/publish?topic={topic}")).with_body(payload)).await.unwrap()
}

async fn next(sub: &mut mixio_host::capabilities::pubsub::Subscription) -> String {
    let m = tokio::time::timeout(Duration::from_secs(5), sub.next()).await.expect("a message").expect("open");
    String::from_utf8(m.to_vec()).unwrap()
}

#[tokio::test]
async fn guests_publish_to_granted_topics_only() {
    let host = Host::new().unwrap();
    let mut orders = host.subscribe("relay.orders").await.unwrap();
    let grants = Grants::new().topic("orders");
    assert_eq!(publish(&host, &grants, "orders", "order 1").await.status, 204);
    assert_eq!(next(&mut orders).await, "order 1");

    let r = publish(&host, &grants, "payments", "x").await;
    assert_eq!(r.status, 500);
    assert!(r.text().contains("access denied: topic `payments` is not granted"), "{}", r.text());
    let r = publish(&host, &grants, "orders.*", "x").await;
    assert!(r.text().contains("invalid topic"), "{}", r.text());

    // A shared namespace puts the topic under that name.
    let mut shared = host.subscribe("shop.orders").await.unwrap();
    assert_eq!(publish(&host, &grants.clone().namespace("shop"), "orders", "order 2").await.status, 204);
    assert_eq!(next(&mut shared).await, "order 2");
}

/// Two hosts on one backend: a guest on the first publishes, the second receives.
async fn across_hosts(url: &str) {
    let a = Host::builder().pubsub(url).build().unwrap();
    let b = Host::builder().pubsub(url).build().unwrap();
    a.connect().await.unwrap();
    let namespace = services::unique_name("ns");
    let mut sub = b.subscribe(&format!("{namespace}.orders")).await.unwrap();
    let grants = Grants::new().topic("orders").namespace(namespace.clone());
    for i in 0..3 {
        assert_eq!(publish(&a, &grants, "orders", &format!("order {i}")).await.status, 204);
    }
    for i in 0..3 {
        assert_eq!(next(&mut sub).await, format!("order {i}"));
    }
}

#[tokio::test]
async fn pubsub_across_hosts_on_nats() {
    let Some(url) = services::nats() else { return };
    across_hosts(&url).await;
}

#[tokio::test]
async fn pubsub_across_hosts_on_redis() {
    let Some(url) = services::redis() else { return };
    across_hosts(&url).await;
}

#[tokio::test]
async fn components_do_not_see_each_others_keys_unless_they_share_a_namespace() {
    let host = Host::builder()
        .kv_store("default", "memory")
        .sql_database(
            "default",
            format!(
                "sqlite:{}",
                std::env::temp_dir().join(services::unique_name("mixio-ns")).join("app.db").display()
            ),
        )
        .build()
        .unwrap();
    let wasm = std::fs::read(guest("todo")).unwrap();
    let grants = Grants::new().kv("default").sql("default");
    let a = host.load_bytes("todo-a", &wasm, &grants).unwrap();
    let b = host.load_bytes("todo-b", &wasm, &grants).unwrap();
    let hits = |r: Response| json(&r)["hits"].as_i64().unwrap();
    assert_eq!(hits(a.call(Request::get("/hits")).await.unwrap()), 1);
    assert_eq!(hits(a.call(Request::get("/hits")).await.unwrap()), 2);
    assert_eq!(hits(b.call(Request::get("/hits")).await.unwrap()), 1, "b has its own counter");

    let shared = grants.namespace("shared");
    let c = host.load_bytes("todo-c", &wasm, &shared).unwrap();
    let d = host.load_bytes("todo-d", &wasm, &shared).unwrap();
    assert_eq!(hits(c.call(Request::get("/hits")).await.unwrap()), 1);
    assert_eq!(hits(d.call(Request::get("/hits")).await.unwrap()), 2, "c and d share the namespace");
}
