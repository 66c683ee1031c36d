//! A small HTTP server on 127.0.0.1 for tests of outbound HTTP. It counts the connections it
//! accepts, so a test can prove a refused request never connected.
//!
//! | path | answer |
//! |---|---|
//! | `/echo` | `200`, JSON `{"method", "path", "body", "headers"}` |
//! | `/redirect?to=URL[&status=N]` | `N` (default 302) with `location: URL` |
//! | `/slow?ms=N` | `200 slow` after N ms |
//! | `/big?bytes=N` | `200` with N bytes |
//! | `/status/N` | status N |

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::net::TcpListener;

/// A running server; stopped when dropped.
pub struct TestServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    /// Starts a server on an ephemeral port (needs a tokio runtime).
    pub async fn start() -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                counter.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, hyper::service::service_fn(respond))
                        .await;
                });
            }
        });
        TestServer { addr, connections, task }
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| {
            v.replace("%3A", ":")
                .replace("%2F", "/")
                .replace("%3F", "?")
                .replace("%3D", "=")
                .replace("%26", "&")
        })
    })
}

async fn respond(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let reply = |status: u16, body: Vec<u8>| {
        Response::builder().status(status).body(Full::new(Bytes::from(body))).expect("valid response")
    };
    let response = match path.as_str() {
        "/echo" => {
            let method = req.method().to_string();
            let headers: serde_json::Map<String, serde_json::Value> = req
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
                .collect();
            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let json = serde_json::json!({
                "method": method,
                "path": format!("{path}{}", if query.is_empty() { String::new() } else { format!("?{query}") }),
                "body": String::from_utf8_lossy(&body),
                "headers": headers,
            });
            let mut r = reply(200, json.to_string().into_bytes());
            r.headers_mut().insert("content-type", "application/json".parse().unwrap());
            r
        }
        "/redirect" => {
            let status = param(&query, "status").and_then(|s| s.parse().ok()).unwrap_or(302);
            let mut r = reply(status, Vec::new());
            r.headers_mut().insert("location", param(&query, "to").unwrap_or_default().parse().unwrap());
            r
        }
        "/slow" => {
            let ms = param(&query, "ms").and_then(|s| s.parse().ok()).unwrap_or(1000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            reply(200, b"slow".to_vec())
        }
        "/big" => {
            let n = param(&query, "bytes").and_then(|s| s.parse().ok()).unwrap_or(0);
            reply(200, vec![b'x'; n])
        }
        p if p.starts_with("/status/") => reply(p[8..].parse().unwrap_or(500), Vec::new()),
        _ => reply(404, b"not found".to_vec()),
    };
    Ok(response)
}
