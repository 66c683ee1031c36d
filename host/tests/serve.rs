//! `mixio serve` end to end: the food-delivery demo over real HTTP and websockets (on SQLite,
//! and on PostgreSQL by configuration only), a standard `wasi:http/proxy` component,
//! backpressure, deadlines, static files, graceful shutdown, and manifest errors.

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use mixio_host::serve::{App, Server};
use mixio_tests::client::{self, Reply};
use mixio_tests::serve::{MixioServe, demo_manifest, scratch_dir, start_in_process};
use mixio_tests::{guest, services};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const MIXIO: &str = env!("CARGO_BIN_EXE_mixio");

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn listen(base: &str, channel: &str) -> Socket {
    let url = format!("{}/ws/{channel}", base.replace("http://", "ws://"));
    let (socket, response) = tokio_tungstenite::connect_async(url).await.expect("websocket connects");
    assert_eq!(response.status(), 101);
    socket
}

async fn next_text(socket: &mut Socket) -> String {
    let message = tokio::time::timeout(Duration::from_secs(20), socket.next())
        .await
        .expect("a websocket message within 20 s")
        .expect("the socket is open")
        .expect("a valid frame");
    match message {
        Message::Text(text) => text.to_string(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// Places an order while `user`'s websocket listens; checks the answer and the notification,
/// and returns the minutes promised.
async fn order_with_notification(base: &str, user: &str, dish: &str) -> u64 {
    let mut socket = listen(base, user).await;
    let reply = client::post_json(base, "/order", &json!({ "user": user, "dish": dish })).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    assert!(reply.header("x-request-id").is_some_and(|id| !id.is_empty()));
    let body: Value = serde_json::from_str(&reply.body).expect("a JSON body");
    let mins = body["mins"].as_u64().expect("mins");
    assert!((30..=60).contains(&mins), "{body}");
    let pushed: Value = serde_json::from_str(&next_text(&mut socket).await).expect("JSON on the websocket");
    assert_eq!(pushed, body, "the websocket carries what the order answered");
    mins
}

#[test]
fn the_demo_takes_an_order_over_http_and_notifies_over_a_websocket() {
    demo_end_to_end(&[]);
}

/// The same `.wasm` files, the same test, with synchronous calls on a thread pool.
#[test]
fn the_demo_works_in_blocking_mode() {
    demo_end_to_end(&["--io", "blocking:8"]);
}

fn demo_end_to_end(extra_args: &[&str]) {
    let dir = scratch_dir("demo");
    let manifest = demo_manifest(&dir);
    let mut args = vec![manifest.to_str().unwrap()];
    args.extend_from_slice(extra_args);
    let server = MixioServe::start(Path::new(MIXIO), &args, &[]);
    let user = services::unique_name("ada");
    runtime().block_on(demo_checks(&server.url, &user));
    check_orders(&dir, &user);
    let io = extra_args.iter().skip_while(|a| **a != "--io").nth(1).unwrap_or(&"async");
    assert!(server.log().contains(&format!("io={io}")), "the server runs in {io} mode:\n{}", server.log());
    assert!(server.stop().success());
}

/// The demo's native build (its guest crates linked into this test, `mixio_handler`) served
/// by the same server, passes the same test.
#[test]
fn the_native_build_of_the_demo_passes_the_same_test() {
    let dir = scratch_dir("demo-native");
    let user = services::unique_name("native");
    runtime().block_on(async {
        let app = App::from_manifest(&demo_manifest(&dir))
            .and_then(|app| app.native("food-delivery", food_delivery::mixio_handler))
            .and_then(|app| app.native("kitchen", kitchen::mixio_handler))
            .unwrap();
        let server = Server::bind(app, "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let base = server.url().to_string();
        tokio::spawn(server.run(std::future::pending(), Duration::from_secs(1)));
        demo_checks(&base, &user).await;
    });
    check_orders(&dir, &user);
}

/// Orders over HTTP (JSON, form, query string) with the websocket listening; the page and the
/// router's answers.
async fn demo_checks(base: &str, user: &str) {
    order_with_notification(base, user, "ramen").await;

    // The form encoding and the query string work too; nobody listening is fine.
    let form = client::send(
        base,
        "POST",
        "/order",
        &[("content-type", "application/x-www-form-urlencoded")],
        format!("user={user}&dish=pho"),
    )
    .await;
    assert_eq!(form.status, 201, "{form:?}");
    let query = client::send(base, "POST", &format!("/order?user={user}&dish=udon"), &[], "").await;
    assert_eq!(query.status, 201, "{query:?}");
    let missing = client::post_json(base, "/order", &json!({ "user": user })).await;
    assert_eq!(missing.status, 400, "{missing:?}");
    // The demo's manifest limits order bodies to 64 KiB.
    let huge = client::send(base, "POST", "/order", &[], vec![b'x'; 100 << 10]).await;
    assert_eq!(huge.status, 413, "{huge:?}");

    // The page and the router.
    let page = client::get(base, "/").await;
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    assert!(page.body.contains("mixio food delivery"));
    assert_eq!(client::get(base, "/order").await.status, 405);
    assert_eq!(client::get(base, "/../mixio.toml").await.status, 404);
    assert_eq!(client::get(base, "/.hidden").await.status, 404);
    assert_eq!(client::get(base, "/ws/ada").await.status, 426);
}

/// The three orders of [`demo_checks`] are rows of the app's SQLite database.
fn check_orders(dir: &Path, user: &str) {
    let db = rusqlite::Connection::open(dir.join("data").join("app.db")).expect("the app's SQLite file");
    let dishes: Vec<String> = db
        .prepare("SELECT dish FROM orders WHERE user_name = ?1 ORDER BY dish")
        .unwrap()
        .query_map([user], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(dishes, ["pho", "ramen", "udon"]);
}

#[test]
fn the_demo_runs_on_postgresql_by_configuration_only() {
    let Some(url) = services::postgres() else { return };
    let dir = scratch_dir("demo-pg");
    let manifest = demo_manifest(&dir);
    let server = MixioServe::start(
        Path::new(MIXIO),
        &[manifest.to_str().unwrap()],
        &[("MIXIO_SQL_DEFAULT", url.as_str())],
    );
    let user = services::unique_name("grace");
    runtime().block_on(async {
        order_with_notification(&server.url, &user, "soba").await;
        let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        let rows = db.query("SELECT dish FROM orders WHERE user_name = $1", &[&user]).await.unwrap();
        let dishes: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        assert_eq!(dishes, ["soba"]);
    });
    assert!(!dir.join("data").join("app.db").exists(), "no SQLite file when PostgreSQL is configured");
    assert!(server.stop().success());
}

#[test]
fn a_standard_wasi_http_component_is_served_unchanged() {
    let wasm = guest("wasi-hello");
    let server = MixioServe::start(Path::new(MIXIO), &[wasm.to_str().unwrap()], &[]);
    runtime().block_on(async {
        let reply = client::get(&server.url, "/some/path?x=1").await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.body, "hello from wasi:http, GET /some/path?x=1\n");
        let reply = client::send(&server.url, "POST", "/upload", &[], "12345").await;
        assert_eq!(reply.header("x-body-bytes"), Some("5"), "{reply:?}");
    });
    // Its stdout goes to the log, tagged with the component.
    let log = server.log();
    assert!(
        log.lines().any(|l| l.contains("wasi_hello") && l.contains("wasi-hello handled /some/path")),
        "{log}"
    );
    assert!(server.stop().success());
}

#[test]
fn a_guest_in_an_infinite_loop_gets_504_while_others_are_served() {
    let dir = scratch_dir("deadline");
    let manifest = dir.join("mixio.toml");
    std::fs::write(
        &manifest,
        format!(
            r#"
            name = "deadline"
            [components.hostile]
            source = "{}"
            routes = ["/hostile"]
            limits = {{ timeout = "500ms" }}
            [components.hello]
            source = "{}"
            routes = ["/hello"]
            "#,
            guest("hostile").display(),
            guest("hello").display()
        ),
    )
    .unwrap();
    let server = MixioServe::start(Path::new(MIXIO), &[manifest.to_str().unwrap()], &[]);
    runtime().block_on(async {
        let base = server.url.clone();
        let loops: Vec<_> = (0..3)
            .map(|_| {
                let base = base.clone();
                tokio::spawn(async move { client::get(&base, "/hostile?do=loop").await })
            })
            .collect();
        // While the loops spin (on both threads), well-behaved requests keep succeeding.
        for _ in 0..20 {
            let reply = client::get(&base, "/hello?name=x").await;
            assert_eq!((reply.status, reply.body.as_str()), (200, "hello, x!\n"));
        }
        for spinning in loops {
            let reply: Reply = spinning.await.unwrap();
            assert_eq!(reply.status, 504, "{reply:?}");
            assert!(reply.body.contains("timed out"), "{reply:?}");
        }
        assert_eq!(client::get(&base, "/hello").await.status, 200);
        // A trap is a 500 for its own request only.
        let trap = client::get(&base, "/hostile?do=unreachable").await;
        assert_eq!(trap.status, 500, "{trap:?}");
        assert!(trap.body.contains("trapped"), "{trap:?}");
    });
    let log = server.log();
    let line =
        log.lines().find(|l| l.contains("timed out")).unwrap_or_else(|| panic!("no timeout line in:\n{log}"));
    assert!(line.contains("hostile") && line.contains("request{id="), "{line}");
    assert!(server.stop().success());
}

/// A guest's request to its own server (`${self}`) is answered in-process: this server is
/// bound but never run, so no connection to it is ever accepted, and the request still gets
/// its answer.
#[test]
fn a_guests_request_to_its_own_server_is_answered_in_process() {
    runtime().block_on(async {
        let app = App::from_toml(&hello_manifest(""), &scratch_dir("in-process")).unwrap();
        let server = Server::bind(app, "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let grants = mixio_host::Grants::new().allow_host(server.url());
        let relay = server.host().load_with(guest("relay"), &grants).unwrap();
        let url = format!("{}/hello?name=self", server.url());
        let fetch = format!("/fetch?url={}&timeout_ms=20000", url.replace('?', "%3F").replace('=', "%3D"));
        let response = relay.call(mixio_host::Request::get(fetch)).await.unwrap();
        let body: Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(response.status, 200, "{body}");
        assert_eq!(body["status"], 200, "{body}");
        assert_eq!(body["body"], "hello, self!\n", "{body}");
        // Another origin, here the same port under another name, is reached over the network,
        // where nobody answers: the request times out.
        let port = server.local_addr().port();
        let grants = mixio_host::Grants::new().allow_host(format!("http://localhost:{port}"));
        let relay = server.host().load_with(guest("relay"), &grants).unwrap();
        let other = format!("/fetch?url=http://localhost:{port}/hello&timeout_ms=300");
        let response = relay.call(mixio_host::Request::get(other)).await.unwrap();
        assert_eq!(response.status, 502, "{}", String::from_utf8_lossy(&response.body));
    });
}

/// A manifest serving `hello` on every path, with `backends` (TOML lines) if given.
fn hello_manifest(backends: &str) -> String {
    format!(
        "name = \"ws\"\n{backends}\n[components.hello]\nsource = \"{}\"\nroutes = [\"/*\"]\n",
        guest("hello").display()
    )
}

fn sleepy_manifest(queue: usize) -> String {
    format!(
        r#"
        name = "backpressure"
        [components.sleepy]
        source = "{}"
        routes = ["/*"]
        limits = {{ max_concurrent = 4, queue = {queue} }}
        "#,
        guest("sleepy").display()
    )
}

async fn fifty_slow_requests(base: &str) -> Vec<Reply> {
    let requests: Vec<_> = (0..50)
        .map(|_| {
            let base = base.to_string();
            tokio::spawn(async move { client::get(&base, "/?ms=400").await })
        })
        .collect();
    let mut replies = Vec::new();
    for request in requests {
        replies.push(request.await.unwrap());
    }
    replies
}

#[test]
fn requests_beyond_the_concurrency_limit_wait_in_the_queue() {
    runtime().block_on(async {
        let (base, stats, _) = start_in_process(&sleepy_manifest(100)).await;
        let replies = fifty_slow_requests(&base).await;
        assert!(replies.iter().all(|r| r.status == 200), "{replies:?}");
        let stats = stats.admission("sleepy").unwrap();
        assert_eq!(stats.peak_running, 4, "never more than 4 at once, and 4 were used: {stats:?}");
        assert!(stats.peak_queued > 0 && stats.rejected == 0, "{stats:?}");
    });
}

#[test]
fn requests_beyond_the_queue_get_503_with_retry_after() {
    runtime().block_on(async {
        let (base, stats, _) = start_in_process(&sleepy_manifest(10)).await;
        let replies = fifty_slow_requests(&base).await;
        let ok = replies.iter().filter(|r| r.status == 200).count();
        let busy: Vec<&Reply> = replies.iter().filter(|r| r.status == 503).collect();
        assert_eq!(ok + busy.len(), 50, "{replies:?}");
        assert!(ok >= 14, "4 running and 10 queued succeed: {ok}");
        assert!(!busy.is_empty(), "the excess is refused");
        assert!(busy.iter().all(|r| r.header("retry-after") == Some("1") && r.body.contains("busy")));
        let stats = stats.admission("sleepy").unwrap();
        assert!(stats.peak_running <= 4 && stats.peak_queued <= 10, "{stats:?}");
        assert_eq!(stats.rejected as usize, busy.len());
    });
}

#[test]
fn sigterm_drains_requests_in_flight_and_exits_0() {
    let server = MixioServe::start(Path::new(MIXIO), &[guest("sleepy").to_str().unwrap()], &[]);
    let base = server.url.clone();
    let rt = runtime();
    let slow = rt.spawn({
        let base = base.clone();
        async move { client::get(&base, "/?ms=1500").await }
    });
    std::thread::sleep(Duration::from_millis(500));
    server.terminate();
    let reply = rt.block_on(slow).unwrap();
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(reply.body.contains("\"requested_ms\":1500"), "{reply:?}");
    let status = server.stop();
    assert_eq!(status.code(), Some(0));
    let refused = rt.block_on(client::try_send(&base, "GET", "/", &[], ""));
    assert!(refused.is_err(), "a stopped server accepts nothing: {refused:?}");
}

#[test]
fn manifest_errors_name_the_file_and_the_key() {
    let dir = scratch_dir("bad-manifest");
    let manifest = dir.join("mixio.toml");
    std::fs::write(
        &manifest,
        "name = \"x\"\n[components.web]\nsource = \"web.wasm\"\nroutes = [\"GET web\"]\n",
    )
    .unwrap();
    let out = std::process::Command::new(MIXIO).args(["serve", manifest.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("mixio.toml") && stderr.contains("components.web.routes[0]"), "{stderr}");
    assert!(stderr.contains("must start with `/`"), "{stderr}");

    let out = std::process::Command::new(MIXIO)
        .args(["serve", dir.join("nothing.toml").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no manifest"));
}

#[test]
fn a_client_too_slow_to_read_is_disconnected_and_nobody_waits_for_it() {
    runtime().block_on(async {
        let (base, stats, host) = start_in_process(&hello_manifest("")).await;

        let mut reader = listen(&base, "news").await;
        let _stalled = listen(&base, "news").await; // never reads
        // The server counts a client once its upgraded connection is being served.
        wait_for_clients(&stats, 2).await;
        // Far more than the socket buffers and the client queue hold: every send returns at
        // once, and the stalled client is dropped. The reader keeps up.
        let message = "x".repeat(32 << 10);
        let mut received = 0;
        for _ in 0..1000 {
            host.send_websocket("news", &message).await.unwrap();
            assert_eq!(next_text(&mut reader).await.len(), message.len());
            received += 1;
        }
        assert_eq!(received, 1000);
        wait_for_clients(&stats, 1).await; // the stalled client is disconnected, the reader stays
        host.send_websocket("news", "still here").await.unwrap();
        assert_eq!(next_text(&mut reader).await, "still here");
    });
}

#[test]
fn websocket_messages_cross_servers_sharing_a_nats_backend() {
    let Some(nats) = services::nats() else { return };
    runtime().block_on(async {
        let manifest = hello_manifest(&format!("[backends]\npubsub = \"{nats}\""));
        let (_, _, host_a) = start_in_process(&manifest).await;
        let (b, _, _) = start_in_process(&manifest).await;
        let channel = services::unique_name("orders");
        let mut on_b = listen(&b, &channel).await;
        host_a.send_websocket(&channel, "from server A").await.unwrap();
        assert_eq!(next_text(&mut on_b).await, "from server A");
    });
}

/// Waits (at most 10 s) until the server has `n` websocket clients.
async fn wait_for_clients(stats: &mixio_host::serve::ServerStats, n: usize) {
    for _ in 0..200 {
        if stats.websocket_clients() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stats.websocket_clients(), n, "websocket clients");
}
