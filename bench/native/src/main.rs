//! B8's baseline (BENCHMARKS.md): the food-delivery demo written as a plain native service,
//! axum + sqlx, doing what `guests/food-delivery` and `guests/kitchen` do under `mixio serve`:
//!
//! - `POST /order` (`user`, `dish` from a JSON body or the query string): creates table `orders`
//!   if missing and inserts the order into SQLite (WAL, `synchronous = NORMAL`, 16 connections,
//!   as mixio's SQLite backend), posts it to `/kitchen` on this server over HTTP, sends
//!   `{"mins": N}` to the user's websocket channel and answers `201` with the same JSON;
//! - `POST /kitchen`: thinks for 20 to 200 ms, stores the ticket in an in-memory map, answers
//!   `201 {"mins": N}`;
//! - `GET /ws/{channel}`: a websocket receiving what is sent to the channel.
//!
//! Like the two guests, it logs a line per order and per ticket (`tracing` to stderr, `INFO`
//! unless `RUST_LOG` says otherwise, as `mixio serve`).
//!
//! ```sh
//! cargo run --release -p food-delivery-native -- 127.0.0.1:18080 /tmp/orders.db
//! ```

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::broadcast;

const MAX_CHARS: usize = 100;
const CREATE_ORDERS: &str = "CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, \
     user_name TEXT NOT NULL, dish TEXT NOT NULL, created_ms BIGINT NOT NULL)";

struct App {
    db: SqlitePool,
    http: Client<HttpConnector, Full<Bytes>>,
    kitchen_url: String,
    tickets: Mutex<HashMap<String, Value>>,
    channels: Mutex<HashMap<String, broadcast::Sender<String>>>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(false).init();
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:18080".into());
    let db_path = args.next().unwrap_or_else(|| "food-delivery-native.db".into());
    let options = SqliteConnectOptions::new()
        .filename(&db_path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5));
    let db = SqlitePoolOptions::new()
        .max_connections(16)
        .connect_with(options)
        .await
        .with_context(|| format!("cannot open {db_path}"))?;
    let listener =
        tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let app = Arc::new(App {
        db,
        http: Client::builder(TokioExecutor::new()).build_http(),
        kitchen_url: format!("http://{}/kitchen", listener.local_addr()?),
        tickets: Mutex::default(),
        channels: Mutex::default(),
    });
    let router = Router::new()
        .route("/order", post(order))
        .route("/kitchen", post(kitchen))
        .route("/ws/{channel}", get(websocket))
        .with_state(app);
    println!("food-delivery-native: serving on http://{listen}");
    axum::serve(listener, router).await?;
    Ok(())
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, format!("{message}\n")).into_response()
}

async fn order(
    State(app): State<Arc<App>>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let fields: HashMap<String, Value> = if body.trim_ascii().is_empty() {
        HashMap::new()
    } else {
        match serde_json::from_slice(&body) {
            Ok(fields) => fields,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("body: {e}")),
        }
    };
    let field = |name: &str| -> Result<String, String> {
        let value = fields
            .get(name)
            .and_then(Value::as_str)
            .or(query.get(name).map(String::as_str))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("`{name}` is required (JSON body or query string)"))?;
        if value.chars().count() > MAX_CHARS || value.chars().any(char::is_control) {
            return Err(format!("`{name}` must be 1 to {MAX_CHARS} characters without control characters"));
        }
        Ok(value.to_string())
    };
    let (user, dish) = match (field("user"), field("dish")) {
        (Ok(user), Ok(dish)) => (user, dish),
        (Err(e), _) | (_, Err(e)) => return error(StatusCode::BAD_REQUEST, e),
    };

    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let id = format!("{:016x}-{:08x}", now.as_nanos() as u64, random() & 0xffff_ffff);
    let stored = async {
        sqlx::query(CREATE_ORDERS).execute(&app.db).await?;
        sqlx::query("INSERT INTO orders (id, user_name, dish, created_ms) VALUES ($1, $2, $3, $4)")
            .bind(&id)
            .bind(&user)
            .bind(&dish)
            .bind(now.as_millis() as i64)
            .execute(&app.db)
            .await
    };
    if let Err(e) = stored.await {
        return error(StatusCode::INTERNAL_SERVER_ERROR, e);
    }
    tracing::info!("order {id}: {dish} for {user}");

    let ticket = json!({ "id": id, "user": user, "dish": dish }).to_string();
    let request = hyper::Request::post(&app.kitchen_url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(ticket)))
        .expect("a valid request");
    let answer = match app.http.request(request).await {
        Ok(answer) => answer,
        Err(e) => return error(StatusCode::BAD_GATEWAY, e),
    };
    let status = answer.status();
    let body = match answer.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => return error(StatusCode::BAD_GATEWAY, e),
    };
    let mins = serde_json::from_slice::<Value>(&body).ok().and_then(|v| v.get("mins")?.as_u64());
    let Some(mins) = mins.filter(|_| status == StatusCode::CREATED) else {
        let body = String::from_utf8_lossy(&body);
        return error(StatusCode::BAD_GATEWAY, format!("kitchen answered {status}: {}", body.trim_end()));
    };

    let eta = json!({ "mins": mins });
    if let Some(channel) = app.channels.lock().unwrap().get(&user) {
        // At most once to the connected clients, as mixio's websockets.
        let _ = channel.send(eta.to_string());
    }
    (StatusCode::CREATED, Json(eta)).into_response()
}

async fn kitchen(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let mut ticket: serde_json::Map<String, Value> = match serde_json::from_slice(&body) {
        Ok(ticket) => ticket,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("expected a JSON order: {e}")),
    };
    let Some(dish) = ticket.get("dish").and_then(Value::as_str).map(str::to_string) else {
        return error(StatusCode::BAD_REQUEST, "the order needs a string `dish`");
    };
    let r = random();
    let id = match ticket.get("id") {
        Some(Value::String(id)) => id.clone(),
        Some(Value::Number(id)) => id.to_string(),
        _ => format!("k{r:016x}"),
    };
    let mins = 30 + (r >> 32) % 31;
    tokio::time::sleep(Duration::from_millis(20 + r % 181)).await;
    ticket.insert("mins".into(), mins.into());
    app.tickets.lock().unwrap().insert(format!("ticket:{id}"), Value::Object(ticket));
    tracing::info!("ticket {id}: {dish} in {mins} min");
    (StatusCode::CREATED, Json(json!({ "mins": mins }))).into_response()
}

async fn websocket(
    State(app): State<Arc<App>>,
    Path(channel): Path<String>,
    ws: WebSocketUpgrade,
) -> Response {
    let receiver =
        app.channels.lock().unwrap().entry(channel).or_insert_with(|| broadcast::channel(256).0).subscribe();
    ws.on_upgrade(move |socket| forward(socket, receiver))
}

async fn forward(mut socket: WebSocket, mut receiver: broadcast::Receiver<String>) {
    while let Ok(text) = receiver.recv().await {
        if socket.send(Message::text(text)).await.is_err() {
            return;
        }
    }
}

fn random() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos());
    hasher.finish()
}
