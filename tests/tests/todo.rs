//! The `todo` guest (SQL CRUD plus a key-value hit counter): the same `.wasm` passes the same
//! suite on SQLite and on PostgreSQL; transactions left open by a trapping guest are rolled
//! back on both; ungranted databases are refused.

use std::future::IntoFuture;

use mixio_host::{Grants, Host, IoMode, Request, Response};
use mixio_tests::{guest, services};
use serde_json::{Value, json};

fn request(method: &str, uri: &str, body: Option<Value>) -> Request {
    let req = Request::new(method, uri);
    match body {
        Some(body) => req.with_header("content-type", "application/json").with_body(body.to_string()),
        None => req,
    }
}

async fn send(host: &Host, method: &str, uri: &str, body: Option<Value>) -> Response {
    let todo = host.load_with(guest("todo"), &Grants::new().kv("default").sql("default")).unwrap();
    todo.call(request(method, uri, body)).await.unwrap()
}

fn json_body(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

/// The suite, against whatever database `host` maps `default` to.
async fn crud_suite(host: &Host) {
    let created = send(host, "POST", "/todos", Some(json!({"title": "write docs"}))).await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(json_body(&created), json!({"id": 1, "title": "write docs", "done": false}));
    let second =
        send(host, "POST", "/todos", Some(json!({"title": "it's \"quoted\"; DROP TABLE todos; --"}))).await;
    assert_eq!(json_body(&second)["id"], 2);

    let list = send(host, "GET", "/todos", None).await;
    assert_eq!(
        json_body(&list),
        json!([
            {"id": 1, "title": "write docs", "done": false},
            {"id": 2, "title": "it's \"quoted\"; DROP TABLE todos; --", "done": false},
        ])
    );

    let patched = send(host, "PATCH", "/todos/1", Some(json!({"done": true}))).await;
    assert_eq!(json_body(&patched), json!({"id": 1, "title": "write docs", "done": true}));
    let renamed = send(host, "PATCH", "/todos/1", Some(json!({"title": "write more docs"}))).await;
    assert_eq!(json_body(&renamed), json!({"id": 1, "title": "write more docs", "done": true}));
    assert_eq!(send(host, "PATCH", "/todos/99", Some(json!({"done": true}))).await.status, 404);

    assert_eq!(json_body(&send(host, "GET", "/todos/1", None).await)["done"], true);
    assert_eq!(send(host, "DELETE", "/todos/2", None).await.status, 204);
    assert_eq!(send(host, "DELETE", "/todos/2", None).await.status, 404);
    assert_eq!(send(host, "GET", "/todos/2", None).await.status, 404);
    assert_eq!(send(host, "POST", "/todos", Some(json!({"nope": 1}))).await.status, 400);

    // Every request counted, each in a fresh instance: the counter lives in the kv store.
    let hits = send(host, "GET", "/hits", None).await;
    assert_eq!(json_body(&hits), json!({"hits": 12}));
    assert_eq!(hits.header("x-hits"), Some(&b"12"[..]));

    // Many keys in one call each way.
    let labels = json!({"urgent": "red", "later": "grey", "déjà": "vu"});
    assert_eq!(send(host, "PUT", "/labels", Some(labels)).await.status, 204);
    let read = send(host, "GET", "/labels/later,missing,urgent,d%C3%A9j%C3%A0", None).await;
    assert_eq!(
        json_body(&read),
        json!(["grey", null, "red", null]),
        "the path is not decoded: {}",
        read.text()
    );
    let read = send(host, "GET", "/labels/urgent,later", None).await;
    assert_eq!(json_body(&read), json!(["red", "grey"]));
}

/// A transaction left open by a trapping guest leaves no row behind.
async fn trap_rolls_back(host: &Host, db: &Db) {
    let hostile = host.load_with(guest("hostile"), &Grants::new().sql("default")).unwrap();
    let error = hostile.call(Request::get("/?do=trap-in-transaction&title=ghost")).await.unwrap_err();
    assert!(matches!(error, mixio_host::Error::Trap { .. }), "{error}");
    assert_eq!(host.metrics().instances, 0);
    // Give a closed connection's rollback a moment to reach the server.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(db.count("hostile_tx").await, 0, "the trapped transaction was rolled back");

    // Cancelled while suspended inside the transaction: rolled back too.
    let (cancel, cancelled) = tokio::sync::oneshot::channel::<()>();
    let call = tokio::spawn(
        hostile
            .call(Request::get("/?do=sleep-in-transaction&title=ghost"))
            .cancel_on(async move {
                let _ = cancelled.await;
            })
            .into_future(),
    );
    for _ in 0..2000 {
        if host.metrics().suspended == 1 || call.is_finished() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(!call.is_finished(), "the guest is still sleeping: {:?}", call.await);
    cancel.send(()).unwrap();
    assert!(matches!(call.await.unwrap(), Err(mixio_host::Error::Cancelled { .. })));
    // In blocking mode the guest's thread drops the instance when it sees the cancellation.
    mixio_tests::wait_until("the instance to go", || host.metrics().instances == 0).await;
    assert_eq!(db.count("hostile_tx").await, 0, "the cancelled transaction was rolled back");
}

async fn access_is_denied_without_a_grant(host: &Host) {
    let todo = host.load_with(guest("todo"), &Grants::new().kv("default")).unwrap();
    let response = todo.call(Request::get("/todos")).await.unwrap();
    assert_eq!(response.status, 500);
    assert!(
        response.text().contains("access denied: sql database `default` is not granted"),
        "{}",
        response.text()
    );
}

/// The database a test reads directly, to check what guests wrote.
enum Db {
    Sqlite(std::path::PathBuf),
    Postgres(tokio_postgres::Client),
}

impl Db {
    async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT count(*) FROM {table}");
        match self {
            Db::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).unwrap();
                conn.query_row(&sql, [], |r| r.get(0)).unwrap()
            }
            Db::Postgres(client) => client.query_one(&sql, &[]).await.unwrap().get(0),
        }
    }
}

#[tokio::test]
async fn todo_on_sqlite() {
    todo_on_sqlite_with(IoMode::Async).await;
}

/// The same `.wasm`, the same suite, each call blocking a thread of a pool.
#[tokio::test]
async fn todo_on_sqlite_in_blocking_mode() {
    todo_on_sqlite_with(IoMode::Blocking { threads: 4 }).await;
}

#[tokio::test]
async fn todo_on_postgres() {
    todo_on_postgres_with(IoMode::Async).await;
}

#[tokio::test]
async fn todo_on_postgres_in_blocking_mode() {
    todo_on_postgres_with(IoMode::Blocking { threads: 4 }).await;
}

async fn todo_on_sqlite_with(io: IoMode) {
    let dir = std::env::temp_dir().join(services::unique_name("mixio-todo"));
    let path = dir.join("app.db");
    let host = Host::builder()
        .io(io)
        .kv_store("default", "memory")
        .sql_database("default", format!("sqlite:{}", path.display()))
        .build()
        .unwrap();
    host.connect().await.unwrap();
    crud_suite(&host).await;
    let db = Db::Sqlite(path);
    assert_eq!(db.count("todos").await, 1);
    trap_rolls_back(&host, &db).await;
    access_is_denied_without_a_grant(&host).await;
    std::fs::remove_dir_all(dir).unwrap();
}

async fn todo_on_postgres_with(io: IoMode) {
    let Some(url) = services::postgres() else { return };
    // A schema of its own, so tests run in parallel and repeatedly.
    let schema = services::unique_name("todo");
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client.batch_execute(&format!("CREATE SCHEMA {schema}")).await.unwrap();
    client.batch_execute(&format!("SET search_path TO {schema}")).await.unwrap();

    let host = Host::builder()
        .io(io)
        .kv_store("default", "memory")
        .sql_database("default", format!("{url}?options=-csearch_path%3D{schema}"))
        .build()
        .unwrap();
    host.connect().await.unwrap();
    crud_suite(&host).await;
    let db = Db::Postgres(client);
    assert_eq!(db.count("todos").await, 1);
    trap_rolls_back(&host, &db).await;
    access_is_denied_without_a_grant(&host).await;

    let Db::Postgres(client) = db else { unreachable!() };
    client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await.unwrap();
}

#[tokio::test]
async fn an_unreachable_database_fails_connect_naming_its_key() {
    let host =
        Host::builder().sql_database("orders", "postgres://postgres@127.0.0.1:1/none").build().unwrap();
    let error = host.connect().await.unwrap_err().to_string();
    assert!(error.contains("sql.orders"), "{error}");
    let error = Host::builder().kv_store("cache", "memcached://x").build().unwrap_err().to_string();
    assert!(error.contains("kv.cache") && error.contains("unknown backend"), "{error}");
    let error = Host::builder()
        .sql_database("db", "postgres://u:secret@h/db?pool_size=x")
        .build()
        .unwrap_err()
        .to_string();
    assert!(error.contains("sql.db") && !error.contains("secret"), "the password is not shown: {error}");
}
