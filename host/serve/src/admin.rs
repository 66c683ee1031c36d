//! The admin listener of `mixio serve`, on an address of its own (never the app's): for an
//! orchestrator's probes and a metrics scraper.
//!
//! | path | answer |
//! |---|---|
//! | `GET /healthz` | `200 ok` while the process serves (liveness; also while components compile) |
//! | `GET /readyz` | `200 ready` once the components are loaded and every backend answers; else `503` and why |
//! | `GET /metrics` | the server's counters in the Prometheus text format |
//!
//! It is bound before the components are loaded, so that liveness holds during a long first
//! compile while readiness does not.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Method, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::connection::{ClientSocket, ConnectionStats};
use super::{Accept, Body, Server, ServerLimits, ServerState, full, text_response};
use mixio_host::Error;

/// Connections the admin listener keeps open at once: probes and a scraper need a few.
pub const ADMIN_MAX_CONNECTIONS: usize = 64;
/// How long an admin connection may wait for a request's headers: probes send theirs at once,
/// so idle connections cannot hold the listener's few places for long (Kubernetes' probes give
/// up after 1 s by default).
pub const ADMIN_HEADER_TIMEOUT: Duration = Duration::from_secs(1);

/// The admin listener's address when `mixio serve --admin-listen` is given without one.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9090";

/// How long `/readyz` waits for the backends to answer.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// A bound admin listener, ready to [`run`](AdminServer::run).
pub struct AdminServer {
    listener: TcpListener,
    server: Arc<OnceLock<Arc<ServerState>>>,
}

impl AdminServer {
    /// Listens on `addr` (port 0 picks a free one).
    pub async fn bind(addr: SocketAddr) -> Result<AdminServer, Error> {
        let listener = super::connection::listen(addr)
            .map_err(|e| Error::Config(format!("cannot listen on {addr} (admin): {e}")))?;
        Ok(AdminServer { listener, server: Arc::new(OnceLock::new()) })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// The handle that tells it which server to report on, usable while it runs.
    pub fn watcher(&self) -> Watcher {
        Watcher { server: self.server.clone() }
    }

    /// Serves until dropped (as a task: until it is aborted or the runtime ends), with at most
    /// [`ADMIN_MAX_CONNECTIONS`] open, [`ADMIN_HEADER_TIMEOUT`] for headers, and the default
    /// [`ServerLimits`] write bound.
    pub async fn run(self) {
        let limits = ServerLimits::default();
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new()).header_read_timeout(ADMIN_HEADER_TIMEOUT);
        let slots = Arc::new(tokio::sync::Semaphore::new(ADMIN_MAX_CONNECTIONS));
        let stats = Arc::new(ConnectionStats::default());
        let mut accept = Accept::new(ADMIN_MAX_CONNECTIONS, "the admin listener's fixed cap");
        loop {
            let (stream, slot) = accept.next(&self.listener, slots.clone()).await;
            let stream = ClientSocket::new(stream, slot, limits.write_idle_timeout, stats.clone());
            let server = self.server.clone();
            let service =
                hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let server = server.clone();
                    async move {
                        if let Err(reason) = super::check_host(&request) {
                            return Ok(super::closing(text_response(StatusCode::BAD_REQUEST, reason)));
                        }
                        Ok::<_, Infallible>(
                            answer(server.get(), request.method(), request.uri().path()).await,
                        )
                    }
                });
            let connection = http.serve_connection(TokioIo::new(stream), service);
            tokio::spawn(async move {
                let _ = connection.await;
            });
        }
    }
}

/// Tells a running [`AdminServer`] which server to report on.
#[derive(Clone)]
pub struct Watcher {
    server: Arc<OnceLock<Arc<ServerState>>>,
}

impl Watcher {
    /// Reports on `server` from now on (before, `/readyz` and `/metrics` answer `503`).
    pub fn watch(&self, server: &Server) {
        let _ = self.server.set(server.shared.clone());
    }
}

async fn answer(server: Option<&Arc<ServerState>>, method: &Method, path: &str) -> hyper::Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        return text_response(StatusCode::METHOD_NOT_ALLOWED, "use GET");
    }
    match (path, server) {
        ("/healthz", _) => text_response(StatusCode::OK, "ok"),
        ("/readyz" | "/metrics", None) => {
            text_response(StatusCode::SERVICE_UNAVAILABLE, "starting: the components are being loaded")
        }
        ("/readyz", Some(server)) => ready(server).await,
        ("/metrics", Some(server)) => {
            let mut response = hyper::Response::new(full(Bytes::from(super::prometheus::render(server))));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        _ => text_response(
            StatusCode::NOT_FOUND,
            "not found: the admin listener has /healthz, /readyz and /metrics",
        ),
    }
}

async fn ready(server: &ServerState) -> hyper::Response<Body> {
    if server.draining.load(Ordering::Relaxed) {
        return text_response(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    match tokio::time::timeout(READY_TIMEOUT, server.host.connect()).await {
        Ok(Ok(())) => text_response(StatusCode::OK, "ready"),
        Ok(Err(e)) => text_response(StatusCode::SERVICE_UNAVAILABLE, &format!("not ready: {e}")),
        Err(_) => text_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("not ready: the backends did not answer within {} s", READY_TIMEOUT.as_secs()),
        ),
    }
}
