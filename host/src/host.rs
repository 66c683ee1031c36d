//! [`Host`] and [`HostBuilder`]: the engine, the linker with every capability, and the limits
//! that apply to the guests a host runs.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;
use wasmtime::component::{ComponentNamedList, Lift, Linker, Lower};

use crate::capabilities::http_client::{HttpConfig, LocalServer};
use crate::capabilities::pubsub::Subscription;
use crate::capabilities::{Backends, Grants};
use crate::component::Component;
use crate::engine::{self, EpochTicker, Limits};
use crate::error::Error;
use crate::metrics::{Metrics, host_call};
use crate::runtime::{IoMode, Runtime};
use crate::state::GuestState;

/// Adds a host function to a host's linker.
type Extension = Box<dyn FnOnce(&mut Linker<GuestState>) -> wasmtime::Result<()> + Send>;

/// Configures and builds a [`Host`].
pub struct HostBuilder {
    limits: Limits,
    cache_dir: Option<PathBuf>,
    extensions: Vec<Extension>,
    kv_stores: Vec<(String, String)>,
    sql_databases: Vec<(String, String)>,
    pubsub: Option<String>,
    http: HttpConfig,
    io: IoMode,
}

impl HostBuilder {
    /// Sets how guests are called ([`IoMode::Async`] by default).
    pub fn io(mut self, io: IoMode) -> Self {
        self.io = io;
        self
    }

    /// Sets [`Limits::max_instances`].
    pub fn max_instances(mut self, n: u32) -> Self {
        self.limits.max_instances = n;
        self
    }

    /// Sets [`Limits::max_memory`].
    pub fn max_memory(mut self, bytes: usize) -> Self {
        self.limits.max_memory = bytes;
        self
    }

    /// Sets [`Limits::max_wasm_stack`].
    pub fn max_wasm_stack(mut self, bytes: usize) -> Self {
        self.limits.max_wasm_stack = bytes;
        self
    }

    /// Sets [`Limits::timeout`].
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.limits.timeout = timeout;
        self
    }

    /// Replaces all limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Keeps compiled components in `dir` (the default is `$MIXIO_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/mixio`, else `~/.cache/mixio`); `None` compiles every load afresh.
    pub fn cache_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.cache_dir = dir;
        self
    }

    /// Configures the key-value store `name`, which components granted it
    /// ([`Grants::kv`](crate::Grants::kv)) may open. `url` is `memory` (this process only),
    /// `sqlite:PATH` (a file; keys survive restarts) or `redis://HOST:PORT[/DB]` (shared by
    /// every host using that server).
    pub fn kv_store(mut self, name: impl Into<String>, url: impl Into<String>) -> Self {
        self.kv_stores.push((name.into(), url.into()));
        self
    }

    /// Configures the SQL database `name`, which components granted it
    /// ([`Grants::sql`](crate::Grants::sql)) may open. `url` is `sqlite:PATH` (a file, created
    /// if missing) or `postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?pool_size=N]`.
    pub fn sql_database(mut self, name: impl Into<String>, url: impl Into<String>) -> Self {
        self.sql_databases.push((name.into(), url.into()));
        self
    }

    /// Sets the pub/sub backend: `memory` (this process; the default), `nats://HOST:PORT` or
    /// `redis://HOST:PORT`. With a shared backend, every host using it sees the others'
    /// messages.
    pub fn pubsub(mut self, url: impl Into<String>) -> Self {
        self.pubsub = Some(url.into());
        self
    }

    /// Sets the limits of outbound HTTP.
    pub fn http(mut self, config: HttpConfig) -> Self {
        self.http = config;
        self
    }

    /// Adds an asynchronous host function `name` to the imported interface `interface`
    /// (e.g. `"acme:plugin/greeter@0.1.0"`), for guests whose world imports it.
    ///
    /// Parameters and results are tuples of component-model types (`String`, integers,
    /// `Vec<u8>`, `Option`, `Result`, and types derived with
    /// [`wasmtime::component::ComponentType`]). While the returned future is pending the guest
    /// is suspended and counted in [`Metrics::suspended`]. An `Err` traps the guest: return a
    /// WIT `result` for errors the guest should handle.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), mixio_host::Error> {
    /// let host = mixio_host::Host::builder()
    ///     .func_async("acme:plugin/greeter@0.1.0", "greet", |(name,): (String,)| async move {
    ///         tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    ///         Ok((format!("hello, {name}"),))
    ///     })
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn func_async<P, R, F, Fut>(mut self, interface: &str, name: &str, f: F) -> Self
    where
        P: ComponentNamedList + Lift + Send + 'static,
        R: ComponentNamedList + Lower + Send + Sync + 'static,
        F: Fn(P) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<R>> + Send + 'static,
    {
        let interface = interface.to_string();
        let name = name.to_string();
        self.extensions.push(Box::new(move |linker| {
            let span_name: Arc<str> = format!("{interface}#{name}").into();
            let mut instance = linker.instance(&interface)?;
            instance.func_wrap_async(&name, move |store, params: P| {
                let span = tracing::debug_span!("host_call", function = &*span_name);
                let call = f(params);
                // The future borrows the store's counters rather than cloning their `Arc`:
                // no atomic reference counting per call.
                let call = async move {
                    let counters = &store.data().counters;
                    host_call(counters, call).await.map_err(wasmtime::Error::from_anyhow)
                };
                // Entering a disabled span on every poll costs as much as the rest of a ready
                // call: instrument only when the span is recorded.
                if span.is_disabled() { Box::new(call) } else { Box::new(call.instrument(span)) }
            })
        }));
        self
    }

    /// Builds the engine (starting its epoch ticker thread) and links every capability.
    pub fn build(self) -> Result<Host, Error> {
        let l = &self.limits;
        let config = |msg: String| Err(Error::Config(msg));
        if l.max_instances == 0 {
            return config("max_instances must be at least 1".into());
        }
        if l.max_memory < 64 << 10 {
            return config(format!(
                "max_memory must be at least one 64 KiB page, got {} bytes",
                l.max_memory
            ));
        }
        if let IoMode::Blocking { threads: 0 } = self.io {
            return config("the blocking thread pool needs at least 1 thread".into());
        }
        if l.max_wasm_stack < 64 << 10 {
            return config(format!("max_wasm_stack must be at least 64 KiB, got {} bytes", l.max_wasm_stack));
        }
        let mut backends = Backends::new(self.http.clone())?;
        if let Some(url) = &self.pubsub {
            backends.set_pubsub(url)?;
        }
        for (name, url) in &self.kv_stores {
            backends.add_kv(name, url)?;
        }
        for (name, url) in &self.sql_databases {
            backends.add_sql(name, url)?;
        }
        let cache = match self.cache_dir {
            Some(dir) => Some(engine::cache(dir.clone()).map_err(|e| {
                Error::Config(format!("cannot use cache directory `{}`: {e:#}", dir.display()))
            })?),
            None => None,
        };
        let engine = engine::build(l, cache.clone()).map_err(|e| Error::Config(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        // Both modes link the same async implementations: blocking mode drives each call to
        // completion on a thread of its own (`blocking::wait`).
        let linked = wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker))
            .and_then(|()| crate::capabilities::add_to_linker(&mut linker));
        linked.map_err(|e| Error::Config(format!("{e:#}")))?;
        for extension in self.extensions {
            extension(&mut linker).map_err(|e| Error::Config(format!("cannot add host function: {e:#}")))?;
        }
        let threads = match self.io {
            IoMode::Async => 0,
            IoMode::Blocking { threads } => threads,
        };
        let ticker = EpochTicker::start(&engine)
            .map_err(|e| Error::Config(format!("cannot start the epoch ticker thread: {e}")))?;
        Ok(Host {
            inner: Arc::new(Runtime {
                engine,
                linker,
                limits: self.limits,
                counters: Arc::default(),
                backends,
                cache,
                io: self.io,
                blocking_threads: Arc::new(tokio::sync::Semaphore::new(threads)),
                native_threads: std::sync::OnceLock::new(),
                reuse_pools: Default::default(),
                _ticker: ticker,
            }),
        })
    }
}

/// A WebAssembly host: one engine, its capabilities and limits. Cheap to clone.
///
/// Load components with [`Host::load`], then [`Component::call`] handlers or
/// [`Component::run`] commands, as many at once as [`Limits::max_instances`] allows.
#[derive(Clone)]
pub struct Host {
    pub(crate) inner: Arc<Runtime>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").field("limits", &self.inner.limits).field("metrics", &self.metrics()).finish()
    }
}

impl Host {
    /// A builder with default [`Limits`] and the default compiled-code cache.
    pub fn builder() -> HostBuilder {
        HostBuilder {
            limits: Limits::default(),
            cache_dir: engine::default_cache_dir(),
            extensions: Vec::new(),
            kv_stores: Vec::new(),
            sql_databases: Vec::new(),
            pubsub: None,
            http: HttpConfig::default(),
            io: IoMode::Async,
        }
    }

    /// A host with every default.
    pub fn new() -> Result<Host, Error> {
        Host::builder().build()
    }

    /// Loads (compiling, or reading from the cache) and pre-instantiates the component at
    /// `path`, with no [`Grants`]. Compilation is CPU-bound: in an async context call this from
    /// `tokio::task::spawn_blocking` if other tasks must keep running meanwhile.
    pub fn load(&self, path: impl AsRef<Path>) -> Result<Component, Error> {
        self.load_with(path, &Grants::default())
    }

    /// Like [`Host::load`], granting the component what `grants` lists.
    pub fn load_with(&self, path: impl AsRef<Path>, grants: &Grants) -> Result<Component, Error> {
        let path = path.as_ref();
        let name =
            path.file_stem().map_or_else(|| path.display().to_string(), |s| s.to_string_lossy().into_owned());
        self.load_named(path, name, grants)
    }

    /// Like [`Host::load_with`], naming the component `name` rather than after its file: its
    /// log lines, errors and default namespace use that name (load errors still name the
    /// path).
    pub fn load_named(&self, path: &Path, name: String, grants: &Grants) -> Result<Component, Error> {
        let display = path.display().to_string();
        let load_error = |reason: String| Error::Load { name: display.clone(), reason };
        regular_file(path).map_err(load_error)?;
        let bytes = std::fs::read(path).map_err(|e| load_error(e.to_string()))?;
        Component::load(&self.inner, &display, name, &bytes, grants)
    }

    /// Loads a component from `bytes`; `name` tags its log lines and errors.
    pub fn load_bytes(&self, name: &str, bytes: &[u8], grants: &Grants) -> Result<Component, Error> {
        Component::load(&self.inner, name, name.to_string(), bytes, grants)
    }

    /// Loads a native guest: `handler` is the `mixio_handler` of a guest crate linked into
    /// this binary (built with the `mixio` SDK's `native` feature). It is called like any
    /// handler, with the same grants, on a fiber of the host's native threads; no sandbox.
    pub fn load_native(
        &self,
        name: &str,
        handler: crate::native::NativeHandler,
        grants: &Grants,
    ) -> Result<Component, Error> {
        if self.inner.native_threads.get().is_none() {
            let threads = crate::native::NativeThreads::start()
                .map_err(|e| Error::Config(format!("cannot start the native guest threads: {e}")))?;
            let _ = self.inner.native_threads.set(threads);
        }
        Component::load_native(&self.inner, name, handler, grants)
    }

    /// Checks that every configured backend answers (a server that is down is an error naming
    /// its key). Call it at start-up to fail early; it is also a readiness check.
    pub async fn connect(&self) -> Result<(), Error> {
        self.inner.backends.ping().await
    }

    /// The pub/sub subject a guest of namespace `namespace` (its component's name, unless its
    /// grants set one) reaches when it publishes to `topic`: `shop.orders` for `shop` and
    /// `orders`. The namespace is escaped so that no two namespaces share a subject (`a.b`
    /// becomes `a%2Eb`; letters, digits, `-` and `_` stay as they are).
    pub fn subject(namespace: &str, topic: &str) -> String {
        format!("{}.{topic}", crate::capabilities::name_token(namespace))
    }

    /// Subscribes to `subject` on the host's pub/sub backend (see [`Host::subject`] for the
    /// subjects guests publish to).
    pub async fn subscribe(&self, subject: &str) -> Result<Subscription, Error> {
        self.inner
            .backends
            .pubsub
            .subscribe(subject)
            .await
            .map_err(|e| Error::Backend(format!("pubsub: {e}")))
    }

    /// Subjects this host is subscribed to now on its pub/sub backend (each counted once, however
    /// many subscriptions it has to it).
    pub fn pubsub_subjects(&self) -> usize {
        self.inner.backends.pubsub.subjects()
    }

    /// Publishes `payload` to `subject` on the host's pub/sub backend.
    pub async fn publish(&self, subject: &str, payload: impl Into<bytes::Bytes>) -> Result<(), Error> {
        self.inner
            .backends
            .pubsub
            .publish(subject, payload.into())
            .await
            .map_err(|e| Error::Backend(format!("pubsub: {e}")))
    }

    /// Subscribes to what guests (and [`Host::send_websocket`]) send to websocket channel
    /// `channel`, on every host sharing this host's pub/sub backend: the seam of a server that
    /// has websocket clients on that channel.
    pub async fn subscribe_websocket(&self, channel: &str) -> Result<Subscription, Error> {
        self.subscribe(&websocket_subject(channel)?).await
    }

    /// Answers guests' outbound requests to `origin` (a server's URL, e.g. its `${self}`) with
    /// `server`, in-process, from now on and for as long as `server` lives: the seam through
    /// which an HTTP trigger serves the requests of its own components to itself. A host has
    /// one such server: the first call wins, and a later one changes nothing and returns
    /// `false`.
    pub fn serve_locally(&self, origin: &url::Url, server: std::sync::Weak<dyn LocalServer>) -> bool {
        self.inner.backends.http.serve_locally(origin, server)
    }

    /// Sends `text` to the websocket clients of `channel` (on every server sharing this host's
    /// pub/sub backend), as a guest's `mixio::ws::send` does.
    pub async fn send_websocket(&self, channel: &str, text: &str) -> Result<(), Error> {
        self.publish(&websocket_subject(channel)?, text.to_string()).await
    }

    /// How the host calls guests.
    pub fn io(&self) -> IoMode {
        self.inner.io
    }

    /// The host's limits.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// A snapshot of the host's counters.
    pub fn metrics(&self) -> Metrics {
        self.inner.counters.snapshot()
    }

    /// Restarts the peak counters of [`Metrics`] from the current values.
    pub fn reset_peaks(&self) {
        self.inner.counters.reset_peaks();
    }

    /// How many loads were served from the compiled-code cache, and how many compiled.
    pub fn cache_stats(&self) -> Option<(usize, usize)> {
        self.inner.cache.as_ref().map(|c| (c.cache_hits(), c.cache_misses()))
    }
}

/// The pub/sub subject of websocket channel `channel`, once its name is checked.
fn websocket_subject(channel: &str) -> Result<String, Error> {
    use crate::capabilities::websocket;
    websocket::check_channel(channel).map_err(|e| Error::Config(format!("websocket channel: {e}")))?;
    Ok(websocket::subject(channel))
}

/// Checks that `path` (after symlinks) is a regular file, as [`Host::load`] does before it
/// reads one: reading a FIFO would block until a writer comes, a directory or a device is
/// never a component or a manifest. The error says what the path is instead.
///
/// ```
/// assert!(mixio_host::regular_file("/dev/null".as_ref()).unwrap_err().contains("a device"));
/// ```
pub fn regular_file(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    let kind = std::fs::metadata(path).map_err(|e| e.to_string())?.file_type();
    let what = if kind.is_file() {
        return Ok(());
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "not a file"
    };
    Err(format!("it is {what}, not a regular file"))
}
