//! More than one node: `mixio serve` processes sharing PostgreSQL (SQL), Redis (KV) and NATS
//! (pub/sub and websocket fan-out), and the admin listener an orchestrator uses (`/healthz`,
//! `/readyz`, `/metrics`). The deployment files are checked against the binary's defaults.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mixio_tests::client;
use mixio_tests::proxy::TcpProxy;
use mixio_tests::serve::{MixioServe, demo_manifest, repo_root, scratch_dir};
use mixio_tests::services;
use serde_json::{Value, json};

const MIXIO: &str = env!("CARGO_BIN_EXE_mixio");

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// The shared backends, or `None` (skipped) when one is unreachable outside CI.
fn shared_backends() -> Option<Vec<(&'static str, String)>> {
    Some(vec![
        ("MIXIO_SQL_DEFAULT", services::postgres()?),
        ("MIXIO_KV_DEFAULT", services::redis()?),
        ("MIXIO_PUBSUB", services::nats()?),
    ])
}

/// A node of the demo app on the shared backends, with its admin listener.
fn node(env: &[(&str, String)]) -> MixioServe {
    let dir = scratch_dir("node");
    let manifest = demo_manifest(&dir);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    MixioServe::start(Path::new(MIXIO), &[manifest.to_str().unwrap(), "--admin-listen", "127.0.0.1:0"], &env)
}

async fn order(base: &str, user: &str, dish: &str) -> client::Reply {
    client::post_json(base, "/order", &json!({ "user": user, "dish": dish })).await
}

async fn dishes_of(user: &str, url: &str) -> Vec<String> {
    let (db, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let rows =
        db.query("SELECT dish FROM orders WHERE user_name = $1 ORDER BY dish", &[&user]).await.unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

/// Orders placed alternately through two nodes land in the one database, and a websocket
/// client connected to node A is told about the orders placed through node B.
#[test]
fn two_nodes_share_one_database_and_fan_out_websocket_messages() {
    let Some(env) = shared_backends() else { return };
    let (a, b) = (node(&env), node(&env));
    let user = services::unique_name("cluster");
    runtime().block_on(async {
        let mut socket = client::listen(&a.url, &user).await;
        let mut expected = Vec::new();
        for i in 0..6 {
            let (node, name) = if i % 2 == 0 { (&a, "a") } else { (&b, "b") };
            let dish = format!("dish-{i}-{name}");
            let reply = order(&node.url, &user, &dish).await;
            assert_eq!(reply.status, 201, "through node {name}: {reply:?}");
            let body: Value = serde_json::from_str(&reply.body).unwrap();
            // Every order's notification reaches the client on node A, wherever it was placed.
            let pushed: Value = serde_json::from_str(&client::next_text(&mut socket).await).unwrap();
            assert_eq!(pushed, body);
            expected.push(dish);
        }
        expected.sort();
        assert_eq!(dishes_of(&user, &env[0].1).await, expected);
    });
}

/// One node is killed (SIGKILL) while both take orders: the other keeps answering, and every
/// order either acknowledged with 201 is in the database exactly once.
#[test]
fn a_node_killed_mid_load_loses_no_acknowledged_order() {
    let Some(env) = shared_backends() else { return };
    let (mut a, b) = (node(&env), node(&env));
    let user = services::unique_name("killed");
    let acknowledged = runtime().block_on(async {
        let acknowledged_by_a = Arc::new(AtomicUsize::new(0));
        let place = |base: String, dishes: std::ops::Range<usize>, count: Option<Arc<AtomicUsize>>| {
            let user = user.clone();
            tokio::spawn(async move {
                let mut done = Vec::new();
                for i in dishes {
                    let dish = format!("dish-{i:04}");
                    let reply = client::try_send(
                        &base,
                        "POST",
                        "/order",
                        &[("content-type", "application/json")],
                        json!({ "user": user, "dish": dish }).to_string(),
                    )
                    .await;
                    let status = reply.map(|r| r.status);
                    if let (Some(count), Ok(201)) = (&count, &status) {
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    done.push((dish, status));
                }
                done
            })
        };
        // Four clients on each node; node A's would go on for long.
        let on_a: Vec<_> = (0..4)
            .map(|c| place(a.url.clone(), c * 1000..c * 1000 + 1000, Some(acknowledged_by_a.clone())))
            .collect();
        let on_b: Vec<_> = (4..8).map(|c| place(b.url.clone(), c * 1000..c * 1000 + 30, None)).collect();
        // Node A dies once it has acknowledged some orders, with others in flight.
        while acknowledged_by_a.load(Ordering::SeqCst) < 8 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        a.kill();
        let mut acknowledged = Vec::new();
        let mut failed_on_a = 0;
        for client in on_a {
            for (dish, status) in client.await.unwrap() {
                match status {
                    Ok(201) => acknowledged.push(dish),
                    _ => failed_on_a += 1,
                }
            }
        }
        assert!(failed_on_a > 0, "node A stopped answering when it was killed");
        for client in on_b {
            for (dish, status) in client.await.unwrap() {
                assert_eq!(status.as_ref().ok(), Some(&201), "node B failed {dish}: {status:?}");
                acknowledged.push(dish);
            }
        }
        // After the kill, node B still answers.
        assert_eq!(order(&b.url, &user, "after").await.status, 201);
        acknowledged.push("after".to_string());
        acknowledged
    });
    let mut acknowledged = acknowledged;
    acknowledged.sort();
    let stored = runtime().block_on(dishes_of(&user, &env[0].1));
    for dish in &acknowledged {
        assert_eq!(stored.iter().filter(|d| *d == dish).count(), 1, "acknowledged order {dish} stored once");
    }
    // At least 8 on node A before the kill, 4 × 30 on node B, and the one after.
    assert!(acknowledged.len() > 8 + 4 * 30, "{} orders acknowledged", acknowledged.len());
}

/// Known traffic, then `/metrics`: the counters match it. `/healthz` and `/readyz` answer.
#[test]
fn metrics_count_what_was_served() {
    let dir = scratch_dir("metrics");
    let server = MixioServe::start(
        Path::new(MIXIO),
        &[demo_manifest(&dir).to_str().unwrap(), "--admin-listen", "127.0.0.1:0"],
        &[],
    );
    let admin = server.admin_url.clone().expect("the admin listener's URL");
    let user = services::unique_name("metrics");
    let text = runtime().block_on(async {
        for dish in ["ramen", "pho", "udon"] {
            assert_eq!(order(&server.url, &user, dish).await.status, 201);
        }
        assert_eq!(client::post_json(&server.url, "/order", &json!({ "user": user })).await.status, 400);
        assert_eq!(client::get(&admin, "/healthz").await.status, 200);
        let ready = client::get(&admin, "/readyz").await;
        assert_eq!((ready.status, ready.body.as_str()), (200, "ready\n"));
        assert_eq!(client::get(&admin, "/nothing").await.status, 404);
        let metrics = client::get(&admin, "/metrics").await;
        assert_eq!(metrics.status, 200);
        assert!(metrics.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
        metrics.body
    });
    let value = |series: &str| -> f64 {
        let line = text.lines().find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '));
        line.unwrap_or_else(|| panic!("no `{series}` in:\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(value(r#"mixio_requests_total{component="food-delivery",status="201"}"#), 3.0);
    assert_eq!(value(r#"mixio_requests_total{component="food-delivery",status="400"}"#), 1.0);
    assert_eq!(value(r#"mixio_requests_total{component="kitchen",status="201"}"#), 3.0);
    assert_eq!(value(r#"mixio_request_duration_seconds_count{component="food-delivery"}"#), 4.0);
    assert_eq!(value(r#"mixio_request_duration_seconds_bucket{component="food-delivery",le="+Inf"}"#), 4.0);
    // Per order: CREATE TABLE and INSERT; the kitchen call; the kitchen's ticket; the message.
    assert_eq!(value(r#"mixio_backend_calls_total{backend="sql"}"#), 6.0);
    assert_eq!(value(r#"mixio_backend_calls_total{backend="http"}"#), 3.0);
    assert_eq!(value(r#"mixio_backend_calls_total{backend="kv"}"#), 3.0);
    assert_eq!(value(r#"mixio_backend_calls_total{backend="pubsub"}"#), 3.0);
    for backend in ["sql", "http", "kv", "pubsub"] {
        assert_eq!(value(&format!(r#"mixio_backend_errors_total{{backend="{backend}"}}"#)), 0.0);
    }
    assert_eq!(value("mixio_instances"), 0.0);
    // The demo does not reuse instances.
    assert_eq!(value("mixio_instances_idle"), 0.0);
    assert_eq!(value("mixio_instance_reuses_total"), 0.0);
    assert_eq!(value(r#"mixio_instance_retirements_total{reason="requests"}"#), 0.0);
    assert_eq!(value("mixio_suspended_guests"), 0.0);
    assert_eq!(value(r#"mixio_requests_in_flight{component="food-delivery"}"#), 0.0);
    assert_eq!(value(r#"mixio_queue_depth{component="kitchen"}"#), 0.0);
    assert!(server.stop().success());
}

/// `--log-format json`: every log line is one JSON object, a guest's lines tagged with their
/// component.
#[test]
fn json_logs_are_one_object_per_line() {
    let dir = scratch_dir("json-logs");
    let server = MixioServe::start(
        Path::new(MIXIO),
        &[demo_manifest(&dir).to_str().unwrap(), "--log-format", "json"],
        &[],
    );
    let user = services::unique_name("json");
    runtime().block_on(async { assert_eq!(order(&server.url, &user, "ramen").await.status, 201) });
    let log = server.log_when(|l| l.contains(&user));
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.iter().all(|l| l["level"].is_string() && l["fields"].is_object()), "{log}");
    let order_line = lines
        .iter()
        .find(|l| {
            l["fields"]["message"].as_str().is_some_and(|m| m.starts_with("order ") && m.contains(&user))
        })
        .unwrap_or_else(|| panic!("the guest's log line:\n{log}"));
    assert_eq!(order_line["fields"]["component"], "food-delivery");
    assert!(server.stop().success());
}

/// `/readyz` is 503 while the database is unreachable and 200 again once it is back, without
/// restarting the node; `/healthz` stays 200 throughout.
#[test]
fn readiness_follows_the_backends() {
    let Some(postgres) = services::postgres() else { return };
    runtime().block_on(async {
        let proxy = TcpProxy::start(services::POSTGRES.0).await;
        let url = postgres.replace(services::POSTGRES.0, &proxy.addr());
        let node = tokio::task::spawn_blocking(move || node(&[("MIXIO_SQL_DEFAULT", url)])).await.unwrap();
        let admin = node.admin_url.clone().unwrap();
        assert_eq!(client::get(&admin, "/readyz").await.status, 200);
        proxy.down();
        let down = client::get(&admin, "/readyz").await;
        assert_eq!(down.status, 503, "{down:?}");
        assert!(down.body.contains("sql.default"), "names the backend: {}", down.body);
        assert_eq!(client::get(&admin, "/healthz").await.status, 200, "alive all the same");
        proxy.up();
        let mut ready = client::get(&admin, "/readyz").await;
        for _ in 0..50 {
            if ready.status == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            ready = client::get(&admin, "/readyz").await;
        }
        assert_eq!(ready.status, 200, "ready again once the database is back: {ready:?}");
        drop(node);
    });
}

/// The Kubernetes manifests parse, and their probes and ports are the binary's: the admin
/// listener's port for `/healthz` and `/readyz`, the app's port for the Service. The
/// Dockerfile runs the binary with the same addresses.
#[test]
fn the_deployment_files_match_the_binary() {
    use mixio_serve::{DEFAULT_ADMIN_LISTEN, DEFAULT_LISTEN};
    let port = |addr: &str| addr.parse::<std::net::SocketAddr>().unwrap().port();
    let (app_port, admin_port) = (port(DEFAULT_LISTEN), port(DEFAULT_ADMIN_LISTEN));

    let text = std::fs::read_to_string(repo_root().join("deploy/mixio.yaml")).expect("deploy/mixio.yaml");
    let documents: Vec<serde_yaml_ng::Value> = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).expect("valid YAML"))
        .collect();
    let kind = |k: &str| {
        documents.iter().find(|d| d["kind"] == k).unwrap_or_else(|| panic!("deploy/mixio.yaml has no {k}"))
    };
    for k in ["ConfigMap", "Secret", "Deployment", "Service", "HorizontalPodAutoscaler"] {
        kind(k);
    }
    let container = &kind("Deployment")["spec"]["template"]["spec"]["containers"][0];
    let ports = container["ports"].as_sequence().unwrap();
    let named = |name: &str| {
        ports.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("no port `{name}`"))["containerPort"]
            .as_u64()
            .unwrap()
    };
    assert_eq!((named("http"), named("admin")), (u64::from(app_port), u64::from(admin_port)));
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &container[probe]["httpGet"];
        assert_eq!((get["path"].as_str(), get["port"].as_str()), (Some(path), Some("admin")), "{probe}");
    }
    let args: Vec<&str> =
        container["args"].as_sequence().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    let arg = |flag: &str| args.iter().skip_while(|a| **a != flag).nth(1).copied();
    assert_eq!(arg("--listen").map(port), Some(app_port));
    assert_eq!(arg("--admin-listen").map(port), Some(admin_port));
    assert_eq!(kind("Service")["spec"]["ports"][0]["targetPort"].as_str(), Some("http"));
    // The manifest the ConfigMap carries is one `mixio serve` accepts, in the image's layout
    // (the repository's, under /app).
    let manifest = kind("ConfigMap")["data"]["mixio.toml"].as_str().expect("mixio.toml in the ConfigMap");
    let manifest = manifest
        .replace("/app/target/wasm32-wasip2/release/", &format!("{}/", mixio_tests::GUESTS_DIR))
        .replace("/app/", &format!("{}/", repo_root().display()));
    let dir = scratch_dir("deploy");
    std::fs::write(dir.join("mixio.toml"), manifest).unwrap();
    mixio_serve::App::from_manifest(&dir.join("mixio.toml")).expect("the ConfigMap's manifest parses");
    let timeout = container["readinessProbe"]["timeoutSeconds"].as_u64().unwrap();
    assert!(timeout > mixio_serve::READY_TIMEOUT.as_secs(), "the probe waits for /readyz's own timeout");
    // The grace period outlasts the drain.
    let grace =
        kind("Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"].as_u64().unwrap();
    let drain: f64 = arg("--drain").unwrap().parse().unwrap();
    assert!(grace as f64 > drain + 5.0);

    let dockerfile = std::fs::read_to_string(repo_root().join("Dockerfile")).expect("Dockerfile");
    let cmd = dockerfile.lines().find(|l| l.starts_with("CMD")).expect("a CMD");
    assert!(
        cmd.contains(&format!("0.0.0.0:{app_port}")) && cmd.contains(&format!("0.0.0.0:{admin_port}")),
        "{cmd}"
    );
    assert!(dockerfile.contains(&format!("EXPOSE {app_port} {admin_port}")));
}
