//! `mixio serve`, mixio's HTTP trigger: an HTTP/1.1 server that answers each request with a
//! fresh instance of the component its route names. It is built on `mixio-host`'s public API
//! alone; this crate also holds the `mixio` command line (`src/cli.rs`, `src/main.rs`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), mixio_host::Error> {
//! use mixio_serve::{App, Server};
//!
//! let app = App::from_manifest("mixio.toml".as_ref())?;
//! let server = Server::bind(app, "127.0.0.1:3000".parse().unwrap()).await?;
//! println!("serving on {}", server.url());
//! server.run(async { tokio::signal::ctrl_c().await.unwrap() }, std::time::Duration::from_secs(10)).await;
//! # Ok(()) }
//! ```
//!
//! The path of a request: the [router](Route) picks the component; its admission control
//! (at most `max_concurrent` instances, then a bounded queue, then `503`) gives it a slot; the
//! component runs in a fresh instance on a fiber, suspended whenever it waits on I/O, under its
//! deadline (`504` when it passes). Traps and panics answer `500`. Every answer carries an
//! `x-request-id`, which also tags the log lines of the request.
//!
//! `GET /ws/{channel}` upgrades to a websocket receiving what guests send to `channel`; other
//! `GET` requests no route takes are served from the app's `static_dir`.
//!
//! Every phase of a connection is bounded in time, the connections open at once are capped,
//! and request bodies held in memory count against a server-wide budget: see [`ServerLimits`]
//! for the settings and their defaults.
//!
//! An [`AdminServer`] on an address of its own answers an orchestrator's probes (`/healthz`,
//! `/readyz`) and a Prometheus scraper (`/metrics`); bind it before the server, so liveness
//! holds while the components compile, and [`Watcher::watch`] the server once it is bound.

#![warn(missing_docs)]

mod admin;
mod admission;
mod build;
mod connection;
mod limits;
mod manifest;
mod prometheus;
mod router;
mod static_files;
pub mod units;
mod websocket;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, StatusCode, Version};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tower_http::timeout::TimeoutBody;
use tracing::Instrument;

pub use admin::{
    ADMIN_HEADER_TIMEOUT, ADMIN_MAX_CONNECTIONS, AdminServer, DEFAULT_ADMIN_LISTEN, READY_TIMEOUT, Watcher,
};
pub use admission::AdmissionStats;
pub use limits::{ServerLimits, raise_fd_limit};
pub use manifest::{App, ComponentLimits, ComponentSpec, MANIFEST_FILE};
pub use router::Route;
pub use websocket::{CLIENT_BUFFER, SEND_TIMEOUT};

use admission::Admission;
use connection::{ClientSocket, ConnectionStats};
use mixio_host::body::{Body, full};
use mixio_host::capabilities::http_client::LocalServer;
use mixio_host::capabilities::websocket::check_channel;
use mixio_host::{Component, ComponentKind, Error, Host, Request, Response};
use router::{Routed, Router, WEBSOCKET_PREFIX};
use websocket::Hub;

/// An error a body may carry.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The address `mixio serve` listens on by default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:3000";

/// A bound server, ready to [`run`](Server::run).
pub struct Server {
    listener: TcpListener,
    shared: Arc<ServerState>,
    shutdown: watch::Sender<bool>,
}

/// What the listener, the admin server, in-process requests and every connection of a server
/// share: the host, the routes, the components and the server-wide bounds and counters.
struct ServerState {
    app: String,
    url: String,
    host: Host,
    router: Router,
    components: Vec<ServedComponent>,
    static_dir: Option<PathBuf>,
    hub: Hub,
    request_ids: RequestIds,
    /// Set when shutdown begins: `/readyz` answers `503` from then on.
    draining: AtomicBool,
    limits: ServerLimits,
    /// The connection cap: a permit per connection open.
    connection_slots: Arc<Semaphore>,
    max_connections: usize,
    connections: Arc<ConnectionStats>,
    /// Static files being sent: a quarter of the file descriptors.
    open_files: Arc<Semaphore>,
    /// The budget of request bodies held in memory: a permit per byte.
    body_memory: Arc<Semaphore>,
    /// Requests refused because the body budget was spent.
    body_memory_refused: AtomicU64,
    body_memory_logged: Occasional,
    pubsub_logged: Occasional,
}

/// A component as the server runs it: its limits from the manifest, its admission control and
/// its request counters.
struct ServedComponent {
    component: Component,
    limits: ComponentLimits,
    admission: Arc<Admission>,
    requests: prometheus::RequestStats,
    busy_logged: Occasional,
}

/// A log line that clients can cause at will (a refusal), written at most once a minute; the
/// refusals themselves are counted in the metrics.
#[derive(Default)]
pub(crate) struct Occasional(std::sync::Mutex<Option<Instant>>);

impl Occasional {
    /// Whether the line may be written now (and notes that it is).
    pub(crate) fn due(&self) -> bool {
        let mut last = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let due = last.is_none_or(|at| at.elapsed() >= Duration::from_secs(60));
        if due {
            *last = Some(Instant::now());
        }
        due
    }
}

impl Server {
    /// Listens on `addr` (port 0 picks a free one), starts the app's backends (checking each
    /// answers) and loads its components. `${self}` in the app's config values and allowed
    /// hosts becomes the server's URL.
    pub async fn bind(mut app: App, addr: SocketAddr) -> Result<Server, Error> {
        // Checked before anything is started: the settings, the pool (it must fit the address
        // space), and each component's largest body against the memory for bodies.
        app.check()?;
        let pool_size = app.pool_size()?;
        let listener =
            connection::listen(addr).map_err(|e| Error::Config(format!("cannot listen on {addr}: {e}")))?;
        let local =
            listener.local_addr().map_err(|e| Error::Config(format!("cannot listen on {addr}: {e}")))?;
        let url = match local {
            SocketAddr::V4(a) if a.ip().is_unspecified() => format!("http://127.0.0.1:{}", a.port()),
            SocketAddr::V6(a) if a.ip().is_unspecified() => format!("http://[::1]:{}", a.port()),
            a => format!("http://{a}"),
        };
        app.substitute_self(&url);

        if app.kv.values().chain(app.sql.values()).any(|url| url.starts_with("sqlite:")) {
            std::fs::create_dir_all(&app.data_dir).map_err(|e| {
                Error::Config(format!("cannot create the data directory `{}`: {e}", app.data_dir.display()))
            })?;
        }
        let max_memory = app
            .components
            .iter()
            .filter_map(|c| c.limits.max_memory)
            .max()
            .unwrap_or(0)
            .max(mixio_host::Limits::default().max_memory);
        let mut builder =
            Host::builder().max_instances(pool_size).max_memory(max_memory).pubsub(&app.pubsub).io(app.io);
        tracing::info!(app = %app.name, io = %app.io, "guests' I/O mode");
        for (name, url) in &app.kv {
            builder = builder.kv_store(name, url);
        }
        for (name, url) in &app.sql {
            builder = builder.sql_database(name, url);
        }
        let host = builder.build()?;
        host.connect().await?;

        let mut components = Vec::new();
        for spec in &app.components {
            let (h, spec_name) = (host.clone(), spec.name.clone());
            let (source, grants) = (spec.source.clone(), spec.grants.clone());
            // Named as in the manifest: its log lines, errors and namespace use that name.
            let load = move || h.load_named(&source, spec_name, &grants);
            let mut component = match spec.native {
                Some(handler) => host.load_native(&spec.name, handler, &spec.grants)?,
                None => tokio::task::spawn_blocking(load)
                    .await
                    .map_err(|e| Error::Config(format!("loading `{}` failed: {e}", spec.name)))??,
            };
            if component.kind() == ComponentKind::Command {
                return Err(Error::Load {
                    name: spec.source.display().to_string(),
                    reason: format!(
                        "component `{}` is a command (it exports `wasi:cli/run`); `mixio serve` needs a handler",
                        spec.name
                    ),
                });
            }
            if let Some(bytes) = spec.limits.max_memory {
                component = component.with_max_memory(bytes)?;
            }
            if let Some(reuse) = spec.reuse {
                component = component.with_reuse(reuse)?;
            }
            components.push(ServedComponent {
                component,
                limits: spec.limits.clone(),
                admission: Admission::new(spec.limits.max_concurrent, spec.limits.queue),
                requests: prometheus::RequestStats::new(),
                busy_logged: Occasional::default(),
            });
        }
        let (shutdown, shutdown_rx) = watch::channel(false);
        let origin =
            url::Url::parse(&url).map_err(|e| Error::Config(format!("the server's URL `{url}`: {e}")))?;
        // Half of the descriptors for connections, a quarter for static files being sent, the
        // rest for backends, guests' outbound requests, the admin listener and files.
        let fd_limit = limits::fd_limit().unwrap_or(1024);
        let max_connections = app.server.connections(fd_limit);
        let open_files = usize::try_from(fd_limit / 4).unwrap_or(usize::MAX).clamp(16, 65_536);
        let shared = ServerState {
            app: app.name.clone(),
            url,
            hub: Hub::new(host.clone(), shutdown_rx, app.server.websocket_idle_timeout),
            host,
            router: Router::new(&app.components),
            components,
            static_dir: app.static_dir.clone(),
            request_ids: RequestIds::new(),
            draining: AtomicBool::new(false),
            connection_slots: Arc::new(Semaphore::new(max_connections)),
            open_files: Arc::new(Semaphore::new(open_files)),
            max_connections,
            connections: Arc::default(),
            // At most 1 TiB (`ServerLimits::set`): within a semaphore's permits.
            body_memory: Arc::new(Semaphore::new(app.server.max_body_memory as usize)),
            body_memory_refused: AtomicU64::new(0),
            body_memory_logged: Occasional::default(),
            pubsub_logged: Occasional::default(),
            limits: app.server.clone(),
        };
        let shared = Arc::new(shared);
        // Guests' requests to `${self}` are answered in-process.
        let local: Weak<dyn LocalServer> = Arc::downgrade(&shared) as Weak<ServerState>;
        // The host was built above, for this server alone: no other server answers for it.
        let _first = shared.host.serve_locally(&origin, local);
        Ok(Server { listener, shared, shutdown })
    }

    /// The server's URL, e.g. `http://127.0.0.1:3000`.
    pub fn url(&self) -> &str {
        &self.shared.url
    }

    /// The app's name.
    pub fn app_name(&self) -> &str {
        &self.shared.app
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// The host running the components (its metrics count instances and suspended guests).
    pub fn host(&self) -> &Host {
        &self.shared.host
    }

    /// A handle to read the server's counters while it runs.
    pub fn stats(&self) -> ServerStats {
        ServerStats { shared: self.shared.clone() }
    }

    /// Serves until `shutdown` completes; then stops accepting connections, closes websockets,
    /// and waits up to `drain` for the requests in flight to finish.
    pub async fn run(self, shutdown: impl Future<Output = ()>, drain: Duration) {
        let limits = &self.shared.limits;
        let mut http = hyper::server::conn::http1::Builder::new();
        // The header bound runs from when a connection opens or finishes a response: it is
        // also the keep-alive idle bound.
        http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
        let (stop_connections, stop_rx) = watch::channel(false);
        // Each connection task holds a sender; when all are gone, every connection is closed.
        let (alive, mut all_closed) = mpsc::channel::<()>(1);
        let mut accept = Accept::new(self.shared.max_connections, "the server's `max_connections`");
        tokio::pin!(shutdown);
        loop {
            let slots = self.shared.connection_slots.clone();
            let (stream, slot) = tokio::select! {
                accepted = accept.next(&self.listener, slots) => accepted,
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let socket =
                ClientSocket::new(stream, slot, limits.write_idle_timeout, self.shared.connections.clone());
            let shared = self.shared.clone();
            let service = hyper::service::service_fn(move |request| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(shared.handle(request).await) }
            });
            let connection = http.serve_connection(TokioIo::new(socket), service).with_upgrades();
            let mut stop = stop_rx.clone();
            let alive = alive.clone();
            tokio::spawn(async move {
                let _alive = alive;
                tokio::pin!(connection);
                tokio::select! {
                    _ = connection.as_mut() => return,
                    () = websocket::stopped(&mut stop) => connection.as_mut().graceful_shutdown(),
                }
                let _ = connection.await;
            });
        }
        drop(self.listener);
        self.shared.draining.store(true, Relaxed);
        tracing::info!(app = %self.shared.app, "shutting down: draining requests in flight");
        let _ = self.shutdown.send(true);
        let _ = stop_connections.send(true);
        drop(alive);
        match tokio::time::timeout(drain, all_closed.recv()).await {
            Ok(_) => tracing::info!(app = %self.shared.app, "drained"),
            Err(_) => {
                tracing::warn!(app = %self.shared.app, ?drain, "requests still in flight after the drain bound")
            }
        }
    }
}

/// The accept loop's state: at most `max_connections` open (past it, new connections wait in
/// the kernel's backlog), and a back-off when the process runs out of descriptors; each is
/// logged when it begins, at most once a minute, instead of once per attempt.
pub(crate) struct Accept {
    max_connections: usize,
    /// Set while at the connection cap.
    at_cap: bool,
    /// The current back-off after a failed accept, and the failures since the first.
    backoff: Option<(Duration, u64)>,
    /// The lines logged when the cap is reached, and when accepting fails.
    cap_logged: Occasional,
    backoff_logged: Occasional,
    /// What sets the cap, for the log lines.
    setting: &'static str,
}

impl Accept {
    /// The accept loop of a listener whose cap is `max_connections`, set by `setting`.
    pub(crate) fn new(max_connections: usize, setting: &'static str) -> Accept {
        let (cap_logged, backoff_logged) = Default::default();
        Accept { max_connections, at_cap: false, backoff: None, cap_logged, backoff_logged, setting }
    }

    /// The next connection, with its slot of the cap.
    pub(crate) async fn next(
        &mut self,
        listener: &TcpListener,
        slots: Arc<Semaphore>,
    ) -> (tokio::net::TcpStream, OwnedSemaphorePermit) {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => {
                self.at_cap = false;
                slot
            }
            Err(_) => {
                if !std::mem::replace(&mut self.at_cap, true) && self.cap_logged.due() {
                    tracing::warn!(
                        "{} connections open ({}): new connections wait until one closes",
                        self.max_connections,
                        self.setting
                    );
                }
                // The semaphore is never closed.
                slots.acquire_owned().await.expect("the connection cap is open")
            }
        };
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    if let Some((_, failures)) = self.backoff.take() {
                        tracing::debug!("accepting connections again, after {failures} failed attempts");
                    }
                    return (stream, slot);
                }
                Err(e) if connection::out_of_resources(&e) => {
                    let (wait, failures) = match self.backoff {
                        None => {
                            if self.backoff_logged.due() {
                                tracing::warn!(
                                    "accepting a connection failed: {e}; retrying with a back-off (raise \
                                     the file-descriptor limit, or lower the cap: {}, now {})",
                                    self.setting,
                                    self.max_connections
                                );
                            }
                            (Duration::from_millis(10), 1)
                        }
                        Some((wait, failures)) => ((wait * 2).min(Duration::from_secs(1)), failures + 1),
                    };
                    self.backoff = Some((wait, failures));
                    tokio::time::sleep(wait).await;
                }
                // One connection failed (reset before it was accepted, ...): take the next.
                Err(e) => tracing::debug!("accepting a connection failed: {e}"),
            }
        }
    }
}

/// Counters of a running [`Server`].
#[derive(Clone)]
pub struct ServerStats {
    shared: Arc<ServerState>,
}

impl ServerStats {
    /// Admission counters of component `name`, if the app has it.
    pub fn admission(&self, name: &str) -> Option<AdmissionStats> {
        self.shared.components.iter().find(|c| c.component.name() == name).map(|c| c.admission.stats())
    }

    /// Websocket clients connected now.
    pub fn websocket_clients(&self) -> usize {
        self.shared.hub.clients()
    }

    /// Websocket channels with clients on this server now (each holds a subscription).
    pub fn websocket_channels(&self) -> usize {
        self.shared.hub.channels()
    }

    /// Client connections open now (websockets included).
    pub fn connections(&self) -> usize {
        self.shared.connections.open.load(Relaxed)
    }

    /// The most connections the server keeps open at once.
    pub fn max_connections(&self) -> usize {
        self.shared.max_connections
    }

    /// Connections cut because the client took less than 16 KiB of a response in
    /// [`write_idle_timeout`](ServerLimits::write_idle_timeout) of waiting.
    pub fn write_timeouts(&self) -> u64 {
        self.shared.connections.write_timeouts.load(Relaxed)
    }

    /// Bytes of request bodies held in memory now.
    pub fn body_memory(&self) -> u64 {
        self.shared.body_memory_used()
    }
}

impl LocalServer for ServerState {
    fn serve(
        self: Arc<Self>,
        request: hyper::Request<Full<Bytes>>,
    ) -> std::pin::Pin<Box<dyn Future<Output = hyper::Response<Body>> + Send>> {
        Box::pin(self.handle(request))
    }
}

/// What the server takes as a request body: hyper's, or a buffered one from a guest in this
/// process.
trait RequestBody: hyper::body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static {}
impl<B: hyper::body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static> RequestBody for B {}

impl ServerState {
    async fn handle(self: Arc<Self>, request: hyper::Request<impl RequestBody>) -> hyper::Response<Body> {
        let id = self.request_ids.of(&request);
        let span = tracing::info_span!("request", id = %id, method = %request.method(), path = %request.uri().path());
        let started = Instant::now();
        let mut response = self.dispatch(request).instrument(span.clone()).await;
        span.in_scope(|| {
            tracing::debug!(
                status = response.status().as_u16(),
                elapsed_us = started.elapsed().as_micros() as u64,
                "answered"
            )
        });
        if let Ok(id) = HeaderValue::from_str(&id) {
            response.headers_mut().insert("x-request-id", id);
        }
        response
    }

    fn body_memory_used(&self) -> u64 {
        (self.limits.max_body_memory as usize).saturating_sub(self.body_memory.available_permits()) as u64
    }

    async fn dispatch(self: &Arc<Self>, request: hyper::Request<impl RequestBody>) -> hyper::Response<Body> {
        if let Err(reason) = check_host(&request) {
            return closing(text_response(StatusCode::BAD_REQUEST, reason));
        }
        let path = request.uri().path().to_string();
        if let Some(channel) = path.strip_prefix(WEBSOCKET_PREFIX) {
            return self.websocket(request, channel).await;
        }
        match self.router.route(request.method().as_str(), &path) {
            Routed::Component(i) => self.call(&self.components[i], request).await,
            Routed::MethodNotAllowed(methods) => {
                let mut response = text_response(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
                if let Ok(allow) = HeaderValue::from_str(&methods.join(", ")) {
                    response.headers_mut().insert(header::ALLOW, allow);
                }
                response
            }
            Routed::NotFound => match (&self.static_dir, request.method()) {
                (Some(dir), &Method::GET | &Method::HEAD) => {
                    static_files::serve(dir, &path, request.method() == Method::HEAD, &self.open_files).await
                }
                _ => text_response(StatusCode::NOT_FOUND, "not found"),
            },
        }
    }

    async fn call(
        &self,
        served: &ServedComponent,
        request: hyper::Request<impl RequestBody>,
    ) -> hyper::Response<Body> {
        // Counted however the request ends: a client that leaves first counts as 499.
        let mut counted = prometheus::Counted::new(&served.requests);
        let response = self.admit_and_call(served, request).await;
        counted.answered(response.status().as_u16());
        response
    }

    /// The path of a request to a component: its body is read whole (before an instance is
    /// taken, so slow uploads hold no slot) and it waits for admission, both within the
    /// component's `timeout` from the request's head; then the component runs, under its
    /// `timeout` of its own, so that a timeout is always the component's.
    async fn admit_and_call(
        &self,
        served: &ServedComponent,
        request: hyper::Request<impl RequestBody>,
    ) -> hyper::Response<Body> {
        let limits = &served.limits;
        let declared =
            request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limits.max_request_body) {
            return too_large(limits.max_request_body);
        }
        let deadline = tokio::time::Instant::now().checked_add(limits.timeout).unwrap_or_else(far_future);
        let (parts, body) = request.into_parts();
        let body = match self.read_body(body, limits, deadline).await {
            Ok(body) => body,
            Err(refused) => return refused,
        };
        let permit = match tokio::time::timeout_at(deadline, served.admission.admit()).await {
            Ok(Some(permit)) => permit,
            Ok(None) => return self.busy(served, "the queue is full"),
            Err(_) => return self.busy(served, "the request waited in the queue until its deadline"),
        };
        let result = match served.component.kind() {
            ComponentKind::HttpProxy => {
                let ReadBody { bytes, trailers, memory } = body;
                let request = hyper::Request::from_parts(parts, (bytes, trailers));
                // The slot and the body's memory are held until the instance is gone.
                self.call_proxy(served, request, (permit, memory)).await
            }
            _ => {
                let result = self.call_handler(served, parts, body.bytes).await;
                drop(permit);
                result
            }
        };
        result.unwrap_or_else(|e| error_response(served, &e))
    }

    /// Reads a request body into memory, within the component's `max_request_body`, the
    /// server's idle bound, the request's `deadline` and the server's budget of bodies in
    /// memory (the returned permit holds the body's share of it).
    async fn read_body(
        &self,
        body: impl RequestBody,
        limits: &ComponentLimits,
        deadline: tokio::time::Instant,
    ) -> Result<ReadBody, hyper::Response<Body>> {
        let idle = self.limits.body_idle_timeout;
        // A declared length (at most the limit: larger was refused) gets its buffer at once, so
        // the body is copied once and never grown; the budget is charged what arrives, the
        // pages written. A body of unknown length grows its buffer by doubling, each growth
        // charged whole. Frames are copied out at once: kept, each would keep one of hyper's
        // read buffers alive, far larger than what it holds.
        let declared = hyper::body::Body::size_hint(&body).exact().map(|n| n.min(limits.max_request_body));
        let mut body = std::pin::pin!(TimeoutBody::new(idle, body));
        let mut bytes: Vec<u8> = Vec::new();
        let mut trailers = None;
        let mut held: Option<OwnedSemaphorePermit> = None;
        let refused = || {
            self.body_memory_refused.fetch_add(1, Relaxed);
            if self.body_memory_logged.due() {
                tracing::warn!(
                    "request bodies in memory are at `max_body_memory` ({} bytes): requests refused \
                     (logged at most once a minute, counted in mixio_body_memory_refused_total)",
                    self.limits.max_body_memory
                );
            }
            let mut response = text_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server holds as many request bodies as it may: try again shortly",
            );
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            closing(response)
        };
        // Charges `bytes` more of the budget (at most the limit, within a u32 for tokio).
        let charge = |held: &mut Option<OwnedSemaphorePermit>, bytes: usize| {
            let share = u32::try_from(bytes).ok()?;
            let permit = self.body_memory.clone().try_acquire_many_owned(share).ok()?;
            match held {
                Some(held) => held.merge(permit),
                None => *held = Some(permit),
            }
            Some(())
        };
        if let Some(declared) = declared
            && bytes.try_reserve_exact(declared as usize).is_err()
        {
            return Err(refused());
        }
        loop {
            let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
                Ok(Some(Ok(frame))) => frame,
                Ok(None) => break,
                Ok(Some(Err(e))) if e.is::<tower_http::timeout::TimeoutError>() => {
                    return Err(closing(text_response(
                        StatusCode::REQUEST_TIMEOUT,
                        &format!("no byte of the request body arrived for {idle:?}"),
                    )));
                }
                Ok(Some(Err(e))) => {
                    return Err(closing(text_response(
                        StatusCode::BAD_REQUEST,
                        &format!("cannot read the request body: {e}"),
                    )));
                }
                Err(_) => {
                    return Err(closing(text_response(
                        StatusCode::REQUEST_TIMEOUT,
                        &format!(
                            "the request body did not arrive within the deadline of {:?}",
                            limits.timeout
                        ),
                    )));
                }
            };
            let data = match frame.into_data() {
                Ok(data) => data,
                Err(frame) => {
                    trailers = frame.into_trailers().ok();
                    continue;
                }
            };
            let needed = bytes.len() + data.len();
            if needed as u64 > limits.max_request_body {
                return Err(too_large(limits.max_request_body));
            }
            let charged = if declared.is_some() {
                charge(&mut held, data.len())
            } else if needed > bytes.capacity() {
                let grown =
                    needed.max(bytes.capacity() * 2).max(16 << 10).min(limits.max_request_body as usize);
                let more = grown - bytes.capacity();
                charge(&mut held, more).and_then(|()| bytes.try_reserve_exact(grown - bytes.len()).ok())
            } else {
                Some(())
            };
            if charged.is_none() {
                return Err(refused());
            }
            bytes.extend_from_slice(&data);
        }
        Ok(ReadBody { bytes, trailers, memory: held })
    }

    async fn call_handler(
        &self,
        served: &ServedComponent,
        parts: hyper::http::request::Parts,
        body: Vec<u8>,
    ) -> Result<hyper::Response<Body>, Error> {
        let request = Request {
            method: parts.method.to_string(),
            path_with_query: parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string(),
            headers: parts
                .headers
                .iter()
                .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
                .collect(),
            body,
        };
        let response = served.component.call(request).timeout(Some(served.limits.timeout)).await?;
        Ok(into_http(served, response))
    }

    async fn call_proxy(
        &self,
        served: &ServedComponent,
        request: hyper::Request<(Vec<u8>, Option<hyper::HeaderMap>)>,
        slot: impl Send + Sync + 'static,
    ) -> Result<hyper::Response<Body>, Error> {
        let limits = &served.limits;
        let (mut parts, (bytes, trailers)) = request.into_parts();
        if !parts.headers.contains_key(header::HOST)
            && let Ok(host) = HeaderValue::from_str(self.url.trim_start_matches("http://"))
        {
            parts.headers.insert(header::HOST, host);
        }
        // The body as it arrived: its bytes, then its trailers if it had any.
        let frames = std::iter::once(hyper::body::Frame::data(Bytes::from(bytes)))
            .chain(trailers.map(hyper::body::Frame::trailers))
            .map(Ok::<_, wasmtime_wasi_http::Error>);
        let body = http_body_util::StreamBody::new(futures_util::stream::iter(frames));
        let request = hyper::Request::from_parts(parts, body);
        let response = served.component.call_http_holding(request, Some(limits.timeout), slot).await?;
        if response.status().is_informational() {
            let status = response.status().as_u16();
            return Ok(invalid_response(served, format!("answered with the informational status {status}")));
        }
        Ok(response.map(|body| {
            Limited::new(body, usize::try_from(limits.max_response_body).unwrap_or(usize::MAX)).boxed_unsync()
        }))
    }

    fn busy(&self, served: &ServedComponent, why: &str) -> hyper::Response<Body> {
        let limits = &served.limits;
        if served.busy_logged.due() {
            tracing::warn!(
                component = served.component.name(),
                "busy: {} running and {} waiting; requests refused ({why}; logged at most once a minute, \
                 counted in mixio_requests_total)",
                limits.max_concurrent,
                limits.queue
            );
        }
        let mut response = text_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("`{}` is busy: try again shortly", served.component.name()),
        );
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        response
    }

    async fn websocket(
        self: &Arc<Self>,
        mut request: hyper::Request<impl RequestBody>,
        channel: &str,
    ) -> hyper::Response<Body> {
        let channel = percent_decode(channel);
        if let Err(e) = check_channel(&channel) {
            return text_response(StatusCode::BAD_REQUEST, &e);
        }
        let headers = request.headers();
        let has_token = |name: HeaderName, token: &str| {
            headers
                .get_all(name)
                .iter()
                .any(|v| v.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token))))
        };
        let key = headers.get(header::SEC_WEBSOCKET_KEY).map(|k| k.as_bytes().to_vec());
        let upgrade = request.method() == Method::GET
            && has_token(header::CONNECTION, "upgrade")
            && has_token(header::UPGRADE, "websocket")
            && headers.get(header::SEC_WEBSOCKET_VERSION).is_some_and(|v| v == "13");
        // A request from a guest in this process (`${self}`) cannot be upgraded.
        let upgradable = request.extensions().get::<hyper::upgrade::OnUpgrade>().is_some();
        let (Some(key), true) = (key, upgrade && upgradable) else {
            let mut response = text_response(
                StatusCode::UPGRADE_REQUIRED,
                "this is a websocket channel: connect with a websocket client (version 13)",
            );
            response.headers_mut().insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            response.headers_mut().insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
            return response;
        };
        let member = match self.hub.join(&channel).await {
            Ok(joined) => joined,
            Err(e) => {
                if self.pubsub_logged.due() {
                    tracing::warn!(%channel, "cannot subscribe to the websocket channel: {e} (logged at most once a minute)");
                }
                return text_response(StatusCode::SERVICE_UNAVAILABLE, "the pub/sub backend is unavailable");
            }
        };
        let on_upgrade = hyper::upgrade::on(&mut request);
        let shared = self.clone();
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => shared.hub.serve_client(upgraded, channel, member).await,
                Err(e) => tracing::debug!("websocket upgrade failed: {e}"),
            }
        });
        let mut response = hyper::Response::new(empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = response.headers_mut();
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(accept) = HeaderValue::from_str(&websocket::accept_key(&key)) {
            h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        response
    }
}

/// A request body read whole, with its share of the server's budget of bodies in memory.
struct ReadBody {
    bytes: Vec<u8>,
    trailers: Option<hyper::HeaderMap>,
    /// Given back when the body is gone.
    memory: Option<OwnedSemaphorePermit>,
}

/// The most headers a guest's response may carry (as many as common HTTP clients accept).
pub const MAX_RESPONSE_HEADERS: usize = 100;
/// The most bytes of header names and values a guest's response may carry.
pub const MAX_RESPONSE_HEADER_BYTES: usize = 64 << 10;

/// The `500` answering a guest's response that breaks the rules, logged with the component
/// (and, from the request's span, the request id).
fn invalid_response(served: &ServedComponent, what: String) -> hyper::Response<Body> {
    let name = served.component.name();
    tracing::warn!(component = name, status = 500, "{what}");
    text_response(StatusCode::INTERNAL_SERVER_ERROR, &format!("`{name}` {what}"))
}

/// A guest's [`Response`] as an HTTP response, checked against the component's limits.
fn into_http(served: &ServedComponent, response: Response) -> hyper::Response<Body> {
    let invalid = |what: String| invalid_response(served, what);
    let Ok(status) = StatusCode::from_u16(response.status) else {
        return invalid(format!("answered with an invalid status {}", response.status));
    };
    // A 1xx would tell the client that the real answer follows (or, for 101, that the
    // connection changes protocol): only the server itself sends those.
    if status.is_informational() {
        return invalid(format!("answered with the informational status {status}"));
    }
    if response.body.len() as u64 > served.limits.max_response_body {
        return invalid(format!(
            "answered with a body of {} bytes, over its limit of {}",
            response.body.len(),
            served.limits.max_response_body
        ));
    }
    let header_bytes: usize = response.headers.iter().map(|(n, v)| n.len() + v.len()).sum();
    if response.headers.len() > MAX_RESPONSE_HEADERS || header_bytes > MAX_RESPONSE_HEADER_BYTES {
        return invalid(format!(
            "answered with {} headers of {header_bytes} bytes, over the limit of \
             {MAX_RESPONSE_HEADERS} headers and {MAX_RESPONSE_HEADER_BYTES} bytes",
            response.headers.len()
        ));
    }
    let mut http = hyper::Response::new(full(Bytes::from(response.body)));
    *http.status_mut() = status;
    for (name, value) in response.headers {
        let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(&value))
        else {
            return invalid(format!("answered with an invalid header `{}`", name.escape_default()));
        };
        // The server frames the body itself.
        if matches!(name, header::CONTENT_LENGTH | header::TRANSFER_ENCODING | header::CONNECTION) {
            continue;
        }
        http.headers_mut().append(name, value);
    }
    http
}

/// The answer to a failed call: `504` for a deadline, `503` for no free instance, else `500`;
/// logged with the component and the reason (and, from the request's span, the request id).
fn error_response(served: &ServedComponent, error: &Error) -> hyper::Response<Body> {
    let status = match error {
        Error::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        Error::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    tracing::warn!(component = served.component.name(), status = status.as_u16(), "{error}");
    let mut response = text_response(status, &error.to_string());
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

fn too_large(limit: u64) -> hyper::Response<Body> {
    closing(text_response(StatusCode::PAYLOAD_TOO_LARGE, &format!("the request body exceeds {limit} bytes")))
}

/// `response`, closing the connection after it: the request's body was not read to its end.
fn closing(mut response: hyper::Response<Body>) -> hyper::Response<Body> {
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// RFC 9112 §3.2: an HTTP/1.1 request has exactly one `Host` header, and no request has two.
fn check_host<B>(request: &hyper::Request<B>) -> Result<(), &'static str> {
    match (request.headers().get_all(header::HOST).iter().count(), request.version()) {
        (0, Version::HTTP_11) => Err("an HTTP/1.1 request must have a Host header"),
        (0 | 1, _) => Ok(()),
        _ => Err("a request must not have more than one Host header"),
    }
}

/// A deadline that never comes, for a bound too large to add to the clock.
fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

/// A plain-text answer: `<reason>\n`.
pub(crate) fn text_response(status: StatusCode, reason: &str) -> hyper::Response<Body> {
    let mut response = hyper::Response::new(full(Bytes::from(format!("{reason}\n"))));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

fn empty() -> Body {
    full(Bytes::new())
}

/// `%XX` escapes decoded; invalid UTF-8 replaced.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Request ids: the client's `x-request-id` when it is short and plain, else
/// `<process prefix>-<counter>`.
struct RequestIds {
    prefix: String,
    next: AtomicU64,
}

impl RequestIds {
    fn new() -> RequestIds {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let seed = (u64::from(nanos) ^ (u64::from(std::process::id()) << 20)) & 0xff_ffff;
        RequestIds { prefix: format!("{seed:06x}"), next: AtomicU64::new(1) }
    }

    fn of<B>(&self, request: &hyper::Request<B>) -> String {
        if let Some(id) = request.headers().get("x-request-id").and_then(|v| v.to_str().ok())
            && !id.is_empty()
            && id.len() <= 64
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return id.to_string();
        }
        format!("{}-{:x}", self.prefix, self.next.fetch_add(1, Relaxed))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn percent_escapes_are_decoded() {
        assert_eq!(super::percent_decode("Jos%C3%A9%20M"), "José M");
        assert_eq!(super::percent_decode("100%"), "100%");
        assert_eq!(super::percent_decode("%zz"), "%zz");
    }
}
