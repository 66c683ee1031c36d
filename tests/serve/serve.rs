//! `mixio serve` end to end: the food-delivery demo over real HTTP and websockets (on SQLite,
//! and on PostgreSQL by configuration only), a standard `wasi:http/proxy` component,
//! backpressure, deadlines, static files, graceful shutdown, and manifest errors.

use std::path::Path;
use std::time::Duration;

use mixio_serve::{App, Server};
use mixio_tests::client::{self, Reply, listen, next_text};
use mixio_tests::gate::Gate;
use mixio_tests::serve::{MixioServe, demo_manifest, scratch_dir, start_in_process};
use mixio_tests::{guest, services};
use serde_json::{Value, json};

const MIXIO: &str = env!("CARGO_BIN_EXE_mixio");

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Places an order at `route` while `user`'s websocket listens; checks the answer and the
/// notification, and returns the minutes promised.
async fn order_with_notification(base: &str, route: &str, user: &str, dish: &str) -> u64 {
    let mut socket = listen(base, user).await;
    let reply = client::post_json(base, route, &json!({ "user": user, "dish": dish })).await;
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

/// The same `.wasm` files, the same test, each call blocking a thread of a pool.
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
    let log = server.log_when(|l| l.contains(&format!("io={io}")));
    assert!(log.contains(&format!("io={io}")), "the server runs in {io} mode:\n{log}");
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
    order_checks(base, "/order", user).await;

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

/// Orders at `route` (the food-delivery view in Rust, Python or JavaScript): JSON with the
/// websocket listening, a form, a query string, and the answers to bad requests.
async fn order_checks(base: &str, route: &str, user: &str) {
    order_with_notification(base, route, user, "ramen").await;

    // The form encoding and the query string work too; nobody listening is fine.
    let form = client::send(
        base,
        "POST",
        route,
        &[("content-type", "application/x-www-form-urlencoded")],
        format!("user={user}&dish=pho"),
    )
    .await;
    assert_eq!(form.status, 201, "{form:?}");
    let query = client::send(base, "POST", &format!("{route}?user={user}&dish=udon"), &[], "").await;
    assert_eq!(query.status, 201, "{query:?}");
    let missing = client::post_json(base, route, &json!({ "user": user })).await;
    assert_eq!(
        (missing.status, missing.body.as_str()),
        (400, "`dish` is required (JSON body, form body or query string)\n")
    );
    let typed = client::send(
        base,
        "POST",
        route,
        &[("content-type", "application/json")],
        r#"{"user": 7, "dish": "x"}"#,
    )
    .await;
    assert_eq!((typed.status, typed.body.as_str()), (400, "`user` must be a string\n"));
    let array = client::send(base, "POST", route, &[("content-type", "application/json")], "[1]").await;
    assert_eq!((array.status, array.body.as_str()), (400, "the JSON body must be an object\n"));
    let control = client::send(base, "POST", &format!("{route}?user=a%01b&dish=x"), &[], "").await;
    assert_eq!(
        (control.status, control.body.as_str()),
        (400, "`user` must not contain control characters\n")
    );
    let get = client::get(base, route).await;
    assert_eq!(get.status, 405, "{get:?}");
    // The demo's manifest limits order bodies to 64 KiB.
    let huge = client::send(base, "POST", route, &[], vec![b'x'; 100 << 10]).await;
    assert_eq!(huge.status, 413, "{huge:?}");
}

/// The same food-delivery view in Python (guests/food-delivery-py, componentize-py) and in
/// JavaScript (guests/food-delivery-js, componentize-js), served by the demo's manifest beside
/// the Rust one, passes the same checks: HTTP answers, SQL rows, websocket messages.
#[test]
fn the_python_view_passes_the_demo_test() {
    script_view_end_to_end("/py/order", "py");
}

#[test]
fn the_javascript_view_passes_the_demo_test() {
    script_view_end_to_end("/js/order", "js");
}

fn script_view_end_to_end(route: &str, name: &str) {
    let dir = scratch_dir(&format!("demo-{name}"));
    let manifest = demo_manifest(&dir);
    let server = MixioServe::start(Path::new(MIXIO), &[manifest.to_str().unwrap()], &[]);
    let user = services::unique_name(name);
    runtime().block_on(order_checks(&server.url, route, &user));
    check_orders(&dir, &user);
    let component = format!("component=\"food-delivery-{name}\"");
    let logged = |log: &str| log.lines().any(|l| l.contains("order ") && l.contains(&component));
    let log = server.log_when(logged);
    assert!(logged(&log), "the view logs through the host log:\n{log}");
    assert!(server.stop().success());
}

/// Inputs at the edges (repeated fields, key order, Unicode whitespace, control characters,
/// bytes that are not UTF-8, a byte order mark, lone surrogates, deep nesting): the Rust,
/// Python and JavaScript views give the same status and message. Only the JSON parser's own
/// words after `body: invalid JSON:` differ.
#[test]
fn the_three_views_answer_edge_cases_alike() {
    let dir = scratch_dir("alike");
    let server = MixioServe::start(Path::new(MIXIO), &[demo_manifest(&dir).to_str().unwrap()], &[]);
    let json = [("content-type", "application/json")];
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let deep = format!(r#"{{"user": {}1{}, "dish": "x"}}"#, "[".repeat(200), "]".repeat(200));
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], Vec<u8>);
    let cases: Vec<Case> = vec![
        ("?user=&user=ada&dish=x", &[], vec![]),
        ("", &json, br#"{"user": 1, "dish": 2}"#.to_vec()),
        ("", &json, br#"{"user": "ada", "dish": null}"#.to_vec()),
        ("?user=ada%1F&dish=x", &[], vec![]),
        ("?user=ada%C2%85&dish=%E3%80%80x", &[], vec![]),
        ("?dish=x", &form, b"user=\xff".to_vec()),
        ("?dish=x", &[], b"user=\xff".to_vec()),
        ("", &json, b"\xef\xbb\xbf{\"user\": \"ada\", \"dish\": \"x\"}".to_vec()),
        ("", &[], b"\xef\xbb\xbf{\"user\": \"ada\", \"dish\": \"x\"}".to_vec()),
        ("", &json, br#"{"user": "\ud800", "dish": "x"}"#.to_vec()),
        ("", &json, deep.into_bytes()),
        ("", &json, b"\xc2\xa0{\"user\": \"ada\", \"dish\": \"x\"}".to_vec()),
        ("?user=ada", &[("content-type", "text/plain")], b"{\"dish\": \"x\"}".to_vec()),
    ];
    runtime().block_on(async {
        for (query, headers, body) in cases {
            let mut answers = Vec::new();
            for route in ["/order", "/py/order", "/js/order"] {
                let user = services::unique_name("alike");
                let path = format!("{route}{query}").replace("user=ada", &format!("user={user}"));
                let reply = client::send(&server.url, "POST", &path, headers, body.clone()).await;
                // The kitchen's estimate is random; the JSON parsers word their errors apiece.
                let body = match reply.body.split_once("body: invalid JSON:") {
                    _ if reply.status == 201 => "{\"mins\": N}".to_string(),
                    Some((before, _)) => format!("{before}body: invalid JSON: ..."),
                    None => reply.body.replace(&user, "ada"),
                };
                answers.push((reply.status, body));
            }
            assert!(
                answers.iter().all(|a| *a == answers[0]),
                "{query} {:?}: Rust, Python and JavaScript answered {answers:?}",
                String::from_utf8_lossy(&body)
            );
        }
    });
    assert!(server.stop().success());
}

/// 200 orders at once to the Python view: every guest is suspended in its kitchen call at the
/// same moment (counted by the host, and by the kitchen holding 200 requests), then all are
/// answered and stored.
#[test]
fn two_hundred_python_guests_are_suspended_at_once() {
    script_guests_suspended_at_once("food-delivery-py");
}

#[test]
fn two_hundred_javascript_guests_are_suspended_at_once() {
    script_guests_suspended_at_once("food-delivery-js");
}

fn script_guests_suspended_at_once(name: &str) {
    const ORDERS: usize = 200;
    let dir = scratch_dir(name);
    runtime().block_on(async {
        let kitchen = Gate::start().await;
        let manifest = format!(
            r#"
name = "at-once"
data_dir = "{data}"
[backends]
sql = {{ default = "sqlite:app.db" }}
[components.view]
source = "{wasm}"
routes = ["POST /order"]
sql = ["default"]
allowed_hosts = ["{kitchen}"]
websocket = ["*"]
config = {{ kitchen_url = "{kitchen}/kitchen" }}
# Generous: the first order waits until the 200th has arrived, however slow this machine.
limits = {{ timeout = "300s" }}
"#,
            data = dir.join("data").display(),
            wasm = guest(name).display(),
            kitchen = kitchen.url(),
        );
        let (base, _, host) = start_in_process(&manifest).await;
        let orders: Vec<_> = (0..ORDERS)
            .map(|i| {
                let base = base.clone();
                tokio::spawn(async move {
                    client::post_json(&base, "/order", &json!({ "user": format!("u{i}"), "dish": "ramen" }))
                        .await
                })
            })
            .collect();
        // A guest counts as suspended from the moment its request is pending (still connecting,
        // say); the kitchen counts it once the request has arrived. Both reach 200.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
        while host.metrics().suspended < ORDERS || kitchen.waiting() < ORDERS {
            let (suspended, waiting) = (host.metrics().suspended, kitchen.waiting());
            assert!(
                tokio::time::Instant::now() < deadline,
                "{suspended} guests suspended, {waiting} in the kitchen"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let m = host.metrics();
        assert_eq!((m.suspended, m.instances), (ORDERS, ORDERS), "every guest waits in its kitchen call");
        kitchen.open();
        for order in orders {
            let reply = order.await.unwrap();
            assert_eq!((reply.status, reply.body.as_str()), (201, r#"{"mins":42}"#));
        }
        let m = host.metrics();
        assert_eq!(m.peak_suspended, ORDERS);
        assert_eq!((m.suspended, m.instances), (0, 0), "every instance was dropped");
    });
    let db = rusqlite::Connection::open(dir.join("data").join("app.db")).unwrap();
    let rows: i64 = db.query_row("SELECT count(DISTINCT user_name) FROM orders", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, ORDERS as i64);
}

/// Every call of the Python and JavaScript SDKs against the host (guests/sdk-py, guests/sdk-js):
/// kv, SQL (types, transactions), config, the typed errors with the host's messages, time,
/// the request's fields, and an exception escaping the handler.
#[test]
fn the_python_sdk_gives_what_the_host_answers() {
    sdk_report("sdk-py", |kind| {
        match kind {
            "access-denied" => "AccessDenied",
            "invalid" => "InvalidArgument",
            "constraint-violation" => "ConstraintViolation",
            "invalid-query" => "InvalidQuery",
            "transaction-state" => "TransactionState",
            "missing-config" => "MissingConfig",
            "not-allowed" => "NotAllowed",
            other => panic!("{other}"),
        }
        .to_string()
    });
}

#[test]
fn the_javascript_sdk_gives_what_the_host_answers() {
    sdk_report("sdk-js", str::to_string);
}

/// Calls the SDK guest `name` and compares its report with what the host must have answered;
/// `kind` names an error kind as the SDK's language does.
fn sdk_report(name: &str, kind: fn(&str) -> String) {
    let dir = scratch_dir(name);
    let manifest = dir.join("mixio.toml");
    std::fs::write(
        &manifest,
        format!(
            r#"
name = "sdk"
data_dir = "{data}"
[backends]
sql = {{ default = "sqlite:app.db" }}
kv = {{ default = "memory" }}
[components.{name}]
source = "{wasm}"
routes = ["/check"]
kv = ["default"]
sql = ["default"]
websocket = ["*"]
config = {{ greeting = "hi" }}
"#,
            data = dir.join("data").display(),
            wasm = guest(name).display(),
        ),
    )
    .unwrap();
    let server = MixioServe::start(Path::new(MIXIO), &[manifest.to_str().unwrap()], &[]);
    // Messages read like the Rust SDK's: the kind, then the host's words.
    let error = |k: &str, message: &str| {
        let prefix = match k {
            "access-denied" => "access denied: ",
            "invalid" => "invalid argument: ",
            "constraint-violation" => "constraint violation: ",
            "invalid-query" => "invalid query: ",
            "transaction-state" => "transaction: ",
            _ => "",
        };
        json!({ "error": kind(k), "message": format!("{prefix}{message}") })
    };
    let denied = |what: &str| error("access-denied", &format!("{what} is not granted to component `{name}`"));
    let expected = json!({
        "kv": ["hello", [0, 255], "fallback", 1, 42, true, false, "bye", true, ["greeting"], true, false],
        "kv_many": [[111, 110, 101], null, [2]],
        "kv_many_invalid": error("invalid", "257 keys in one call exceed the limit of 256"),
        "kv_denied": denied("kv store `secret`"),
        "kv_invalid": error("invalid", "keys must not be empty"),
        "sql": {
            "inserted": 2,
            "rows": [
                { "id": 1, "name": "tea", "price": 2.5, "data": [1] },
                { "id": 2, "name": "cake", "price": null, "data": null },
                { "id": 3, "name": "kept", "price": null, "data": null },
            ],
            "one": { "name": "tea" },
            "none": null,
        },
        "sql_constraint": error("constraint-violation", "UNIQUE constraint failed: items.name"),
        "sql_invalid": error("invalid-query", "near \"SELEC\": syntax error in SELEC nothing at offset 0"),
        "sql_state": error("transaction-state", "commit without begin"),
        "sql_denied": denied("sql database `other`"),
        "config": ["hi", "default"],
        "config_missing": error("missing-config", "configuration variable `missing` is not set"),
        "http_denied": error("not-allowed", "not allowed: http://example.com/"),
        "ws_invalid": error("invalid", "a channel name must have 1 to 128 bytes"),
        "pubsub_denied": denied("topic `orders`"),
        "slept": true,
        "year": true,
        "request": {
            "method": "POST",
            "path": "/check",
            "GET": { "a": "1", "b": "2" },
            "header": "yes",
            "json": { "k": [1, 2] },
        },
    });
    runtime().block_on(async {
        // Twice: nothing a call leaves behind (the counter aside, which it resets) changes the next.
        for _ in 0..2 {
            let reply = client::send(
                &server.url,
                "POST",
                "/check?a=1&b=2&a=3",
                &[("x-test", "yes"), ("content-type", "application/json")],
                r#"{"k": [1, 2]}"#,
            )
            .await;
            assert_eq!(reply.status, 200, "{reply:?}");
            let report: Value = serde_json::from_str(&reply.body).expect("a JSON report");
            assert_eq!(report, expected);
        }
        let failed = client::get(&server.url, "/check?fail=1").await;
        assert_eq!((failed.status, failed.body.as_str()), (500, "asked to fail\n"));
    });
    let log = server.log_when(|l| l.contains("handler failed: asked to fail"));
    assert!(log.contains("report ready") && log.contains(&format!("component=\"{name}\"")), "{log}");
    assert!(log.contains("handler failed: asked to fail"), "the exception is logged:\n{log}");
    assert!(server.stop().success());
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
        order_with_notification(&server.url, "/order", &user, "soba").await;
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
    let log = server.log_when(|l| l.contains("wasi-hello handled /some/path"));
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
    let log = server.log_when(|l| l.contains("timed out"));
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

/// Fifty clients at once, each sending `each` requests for `path` one after the other; every
/// reply.
async fn fifty_clients(base: &str, path: &'static str, each: usize) -> Vec<Reply> {
    let clients: Vec<_> = (0..50)
        .map(|_| {
            let base = base.to_string();
            tokio::spawn(async move {
                let mut replies = Vec::with_capacity(each);
                for _ in 0..each {
                    replies.push(client::get(&base, path).await);
                }
                replies
            })
        })
        .collect();
    let mut replies = Vec::new();
    for client in clients {
        replies.extend(client.await.unwrap());
    }
    replies
}

#[test]
fn requests_beyond_the_concurrency_limit_wait_in_the_queue() {
    runtime().block_on(async {
        let (base, stats, _) = start_in_process(&sleepy_manifest(100)).await;
        let replies = fifty_clients(&base, "/?ms=400", 1).await;
        assert!(replies.iter().all(|r| r.status == 200), "{replies:?}");
        let stats = stats.admission("sleepy").unwrap();
        assert_eq!(stats.peak_running, 4, "never more than 4 at once, and 4 were used: {stats:?}");
        assert!(stats.peak_queued > 0 && stats.rejected == 0, "{stats:?}");
    });
}

/// A pool exactly as large as the admission limit turns nobody away: the slot of a finished
/// request is the next one's, whichever thread gives its pages back to the kernel. Fifty
/// clients keep four slots in use: 10,000 requests to mixio's `hello` (instances ending and
/// starting on both threads at once), and 2,000 to a `wasi:http` component sleeping 2 ms
/// (its instance runs on after the response it streamed).
#[test]
fn a_pool_at_its_limit_serves_every_admitted_request() {
    for (name, path, each) in [("hello", "/hello", 200), ("wasi-hello", "/?sleep=2", 40)] {
        let manifest = format!(
            "name = \"full\"\n[components.c]\nsource = \"{}\"\nroutes = [\"/*\"]\n\
             limits = {{ max_concurrent = 4, queue = 1000 }}\n",
            guest(name).display()
        );
        runtime().block_on(async {
            let (base, stats, _) = start_in_process(&manifest).await;
            let replies = fifty_clients(&base, path, each).await;
            let refused: Vec<&Reply> = replies.iter().filter(|r| r.status != 200).collect();
            assert!(
                refused.is_empty(),
                "{name}: {} of {} refused, e.g. {:?}",
                refused.len(),
                replies.len(),
                refused.first()
            );
            let stats = stats.admission("c").unwrap();
            assert_eq!((stats.peak_running, stats.rejected), (4, 0), "{name}: the pool was full: {stats:?}");
        });
    }
}

#[test]
fn requests_beyond_the_queue_get_503_with_retry_after() {
    runtime().block_on(async {
        let (base, stats, _) = start_in_process(&sleepy_manifest(10)).await;
        let replies = fifty_clients(&base, "/?ms=400", 1).await;
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
    let server = MixioServe::start(
        Path::new(MIXIO),
        &[guest("sleepy").to_str().unwrap(), "--admin-listen", "127.0.0.1:0"],
        &[],
    );
    let (base, admin) = (server.url.clone(), server.admin_url.clone().expect("the admin listener's URL"));
    let rt = runtime();
    let slow = rt.spawn({
        let base = base.clone();
        async move { client::get(&base, "/?ms=1500").await }
    });
    // SIGTERM once the request is running (a request not yet read when the server stops
    // listening is refused, not drained).
    rt.block_on(async {
        for _ in 0..600 {
            let metrics = client::get(&admin, "/metrics").await.body;
            if metrics.lines().any(|l| l.starts_with("mixio_requests_in_flight{") && l.ends_with(" 1")) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the request did not start within 30 s");
    });
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

/// Waits (at most 30 s) until the server has `n` websocket clients.
async fn wait_for_clients(stats: &mixio_serve::ServerStats, n: usize) {
    for _ in 0..600 {
        if stats.websocket_clients() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stats.websocket_clients(), n, "websocket clients");
}

/// `reuse` in the manifest: each component's requests, one after another, are served by one
/// instance (counted by the host), whatever language the guest is written in; a component
/// without it gets a fresh instance per request.
#[tokio::test]
async fn reuse_set_in_the_manifest_serves_request_after_request_on_one_instance() {
    const REQUESTS: u64 = 5;
    let reused = [("hello", "/hello"), ("wasi-hello", "/wasi"), ("hello-py", "/py"), ("hello-js", "/js")];
    let mut manifest = String::from("name = \"reuse\"\n");
    for (name, route) in reused {
        manifest += &format!(
            "[components.{name}]\nsource = \"{}\"\nroutes = [\"{route}\"]\nreuse = {{ requests = 1000, idle = \"60s\" }}\n",
            guest(name).display()
        );
    }
    manifest +=
        &format!("[components.fresh]\nsource = \"{}\"\nroutes = [\"/fresh\"]\n", guest("hello").display());
    let (base, _, host) = start_in_process(&manifest).await;
    for (name, route) in reused.iter().chain(&[("fresh", "/fresh")]) {
        for _ in 0..REQUESTS {
            let reply = client::get(&base, &format!("{route}?name=ada")).await;
            assert_eq!(reply.status, 200, "{name}: {}", reply.body);
            // A wasi:http instance goes back once its handler returns, which may be after its
            // response's end reached the client.
            mixio_tests::wait_until("the instance to be given back", || {
                let m = host.metrics();
                m.instances == m.idle_instances
            })
            .await;
        }
    }
    let metrics = host.metrics();
    assert_eq!(metrics.reused, (REQUESTS - 1) * reused.len() as u64, "all but each first request");
    assert_eq!(metrics.idle_instances, reused.len(), "one instance of each reusing component waits");
    assert_eq!(metrics.retirements, [0; mixio_host::Retirement::ALL.len()]);
}
