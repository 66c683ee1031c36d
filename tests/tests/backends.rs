//! Real I/O under load and failure: 500 guests suspended at once on PostgreSQL queries on one
//! thread; calls during a backend outage fail with errors and succeed again once it is back,
//! without restarting the host.

use std::future::IntoFuture;
use std::time::Duration;

use mixio_host::{Grants, Host, Request};
use mixio_tests::proxy::TcpProxy;
use mixio_tests::{guest, services};

const SLEEPERS: usize = 500;
/// Connections in the pool: below PostgreSQL's `max_connections` (100), so the pool, not the
/// server, bounds how many `pg_sleep`s run at once. The guests waiting for a connection are
/// suspended just like those waiting for their query.
const POOL: usize = 50;

#[test]
fn five_hundred_guests_are_suspended_at_once_on_postgres_queries_on_one_thread() {
    let Some(url) = services::postgres() else { return };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        // The test holds an exclusive advisory lock; each guest first waits for it (shared),
        // so none finishes before all are counted, however slow this machine is.
        let gate = 7_000_000 + i64::from(std::process::id());
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client.execute("SELECT pg_advisory_lock($1)", &[&gate]).await.unwrap();

        let host = Host::builder()
            .max_instances(SLEEPERS as u32)
            .sql_database("default", format!("{url}?pool_size={POOL}"))
            .build()
            .unwrap();
        host.connect().await.unwrap();
        let sleepy = host.load_with(guest("sleepy"), &Grants::new().sql("default")).unwrap();
        let calls: Vec<_> = (0..SLEEPERS)
            .map(|_| {
                let uri = format!("/?on=postgres&ms=200&gate={gate}");
                tokio::spawn(sleepy.call(Request::get(uri)).into_future())
            })
            .collect();

        for _ in 0..30_000 {
            if host.metrics().suspended == SLEEPERS {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(host.metrics().suspended, SLEEPERS, "every guest is suspended on the database at once");
        client.execute("SELECT pg_advisory_unlock($1)", &[&gate]).await.unwrap();

        for call in calls {
            let response = call.await.unwrap().unwrap();
            assert_eq!(response.status, 200, "{}", response.text());
        }
        let m = host.metrics();
        assert_eq!(m.peak_suspended, SLEEPERS);
        assert_eq!((m.suspended, m.instances), (0, 0));
    });
}

async fn kv_hits(host: &Host) -> (u16, String) {
    let todo = host.load_with(guest("todo"), &Grants::new().kv("default").sql("default")).unwrap();
    let r = todo.call(Request::get("/hits")).await.unwrap();
    (r.status, r.text().into_owned())
}

async fn eventually_ok(host: &Host) {
    for _ in 0..100 {
        if kv_hits(host).await.0 == 200 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the host did not recover: {:?}", kv_hits(host).await);
}

#[tokio::test]
async fn a_redis_outage_gives_errors_and_the_host_recovers() {
    let Some(url) = services::redis() else { return };
    let proxy = TcpProxy::start(url.trim_start_matches("redis://")).await;
    let dir = std::env::temp_dir().join(services::unique_name("mixio-outage"));
    let host = Host::builder()
        .kv_store("default", format!("redis://{}", proxy.addr()))
        .sql_database("default", format!("sqlite:{}", dir.join("app.db").display()))
        .build()
        .unwrap();
    assert_eq!(kv_hits(&host).await.0, 200);

    proxy.down();
    let (status, body) = kv_hits(&host).await;
    assert_eq!(status, 500);
    assert!(body.contains("backend error: redis"), "{body}");
    assert!(host.connect().await.is_err(), "connect reports the outage");

    proxy.up();
    eventually_ok(&host).await;
    host.connect().await.unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_postgres_outage_gives_errors_and_the_host_recovers() {
    let Some(url) = services::postgres() else { return };
    let target = url.trim_start_matches("postgres://postgres@").split('/').next().unwrap().to_string();
    let proxy = TcpProxy::start(&target).await;
    let schema = services::unique_name("outage");
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client.batch_execute(&format!("CREATE SCHEMA {schema}")).await.unwrap();

    let proxied = format!("postgres://postgres@{}/test?options=-csearch_path%3D{schema}", proxy.addr());
    let host =
        Host::builder().kv_store("default", "memory").sql_database("default", proxied).build().unwrap();
    assert_eq!(kv_hits(&host).await.0, 200);

    proxy.down();
    let (status, body) = kv_hits(&host).await;
    assert_eq!(status, 500);
    assert!(body.contains("backend error: postgres"), "{body}");

    proxy.up();
    eventually_ok(&host).await;
    client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await.unwrap();
}
