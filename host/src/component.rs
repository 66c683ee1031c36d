//! [`Component`]: a compiled, pre-instantiated guest, and the two ways to drive it: [`Call`]
//! a handler, [`Run`] a command. Each call gets its own `Store` and instance, created from the
//! pre-instantiated component (linking and type checks were done once, at load).

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt as _;
use tracing::Instrument;
use wasmtime::{Store, StoreLimitsBuilder, UpdateDeadline};
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::{I32Exit, WasiCtxBuilder};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::{Proxy, ProxyPre};

use crate::blocking::{self, CallCancelled, DeadlineExceeded};
use crate::capabilities::bindings::{
    HANDLER_EXPORT, Handler as HandlerExport, HandlerPre, Request, Response,
};
use crate::capabilities::{ComponentCaps, Grants};
use crate::deadline::{Elapsed, deadline};
use crate::error::Error;
use crate::metrics::Retirement;
use crate::reuse::{Evict, Instance, Pool, Pools, Reuse};
use crate::runtime::{IoMode, Runtime};
use crate::state::GuestState;
use crate::stdio::{GuestOutput, Stream};
use crate::task::AbortOnDrop;

/// The name of the export that makes a component a command.
const COMMAND_EXPORT_PREFIX: &str = "wasi:cli/run@0.2";
/// The name of the export that makes a component a standard `wasi:http` handler.
const HTTP_EXPORT_PREFIX: &str = "wasi:http/incoming-handler@0.2";

/// The body of a response from [`Component::call_http`]: streamed from the guest.
pub type HttpBody = wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// What a component can do, by what it exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentKind {
    /// Exports `mixio:io/incoming-handler`: use [`Component::call`].
    Handler,
    /// Exports `wasi:cli/run`: use [`Component::run`].
    Command,
    /// Exports `wasi:http/incoming-handler` (the `wasi:http/proxy` world, as served by
    /// `wasmtime serve`): use [`Component::call_http`].
    HttpProxy,
}

/// A loaded component, ready to be instantiated once per call. Cheap to clone.
#[derive(Clone)]
pub struct Component {
    inner: Arc<ComponentInner>,
}

impl std::fmt::Debug for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Component").field("name", &self.name()).field("kind", &self.kind()).finish()
    }
}

#[derive(Clone)]
struct ComponentInner {
    name: Arc<str>,
    host: Arc<Runtime>,
    caps: Arc<ComponentCaps>,
    handler: Option<Handler>,
    command: Option<CommandPre<GuestState>>,
    proxy: Option<ProxyPre<GuestState>>,
    /// Bytes of linear memory one instance may use (at most the host's limit).
    max_memory: usize,
    /// The idle instances, for a component that reuses them ([`Component::with_reuse`]).
    reuse: Option<Reusing>,
}

/// A reusing component's idle instances: of its handler, or of its `wasi:http` proxy.
#[derive(Clone)]
enum Reusing {
    Handlers(Arc<Pool<HandlerExport>>),
    Proxies(Arc<Pool<Proxy>>),
}

impl Reusing {
    fn policy(&self) -> Reuse {
        match self {
            Reusing::Handlers(pool) => pool.policy(),
            Reusing::Proxies(pool) => pool.policy(),
        }
    }
}

/// A handler: a pre-instantiated component (called in the host's [`IoMode`]), or a native
/// guest.
#[derive(Clone)]
enum Handler {
    Wasm(HandlerPre<GuestState>),
    Native(crate::native::NativeHandler),
}

impl Component {
    pub(crate) fn load_native(
        runtime: &Arc<Runtime>,
        name: &str,
        handler: crate::native::NativeHandler,
        grants: &Grants,
    ) -> Result<Component, Error> {
        let caps = Arc::new(ComponentCaps::resolve(name, grants, &runtime.backends)?);
        Ok(Component {
            inner: Arc::new(ComponentInner {
                name: name.into(),
                host: runtime.clone(),
                caps,
                handler: Some(Handler::Native(handler)),
                command: None,
                proxy: None,
                max_memory: runtime.limits.max_memory,
                reuse: None,
            }),
        })
    }

    pub(crate) fn load(
        runtime: &Arc<Runtime>,
        display: &str,
        name: String,
        bytes: &[u8],
        grants: &Grants,
    ) -> Result<Component, Error> {
        let load_error = |reason: String| Error::Load { name: display.to_string(), reason };
        let caps = Arc::new(ComponentCaps::resolve(&name, grants, &runtime.backends)?);
        check_header(bytes).map_err(load_error)?;
        let inner = runtime;
        let started = std::time::Instant::now();
        let hits = || inner.cache.as_ref().map(|c| c.cache_hits());
        let hits_before = hits();
        let progress = crate::progress::Progress::compiling(&name, bytes.len());
        let component = wasmtime::component::Component::new(&inner.engine, bytes)
            .map_err(|e| load_error(format!("invalid component: {e:#}")));
        drop(progress);
        let component = component?;
        let how = if hits() > hits_before { "loaded from the compiled-code cache" } else { "compiled" };
        let elapsed = started.elapsed();
        tracing::info!(
            component = %name,
            elapsed_ms = elapsed.as_millis() as u64,
            "{how} in {:.2} s",
            elapsed.as_secs_f64()
        );

        let ty = component.component_type();
        let exports: Vec<String> = ty.exports(&inner.engine).map(|(name, _)| name.to_string()).collect();
        let has_handler = exports.iter().any(|e| e == HANDLER_EXPORT);
        let has_command = exports.iter().any(|e| e.starts_with(COMMAND_EXPORT_PREFIX));
        let has_proxy = exports.iter().any(|e| e.starts_with(HTTP_EXPORT_PREFIX));
        if !has_handler && !has_command && !has_proxy {
            return Err(load_error(format!(
                "it exports none of `{HANDLER_EXPORT}` (a handler), `wasi:http/incoming-handler` \
                 (a wasi:http proxy) and `wasi:cli/run` (a command); it exports: {}",
                if exports.is_empty() { "nothing".to_string() } else { exports.join(", ") }
            )));
        }

        if has_proxy && !has_handler && matches!(inner.io, IoMode::Blocking { .. }) {
            return Err(load_error(
                "it is a wasi:http component, which runs in async mode only (this host is in blocking mode)"
                    .into(),
            ));
        }
        let pre = inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| load_error(format!("it needs an import this host does not provide: {e:#}")))?;
        let handler_type = |e: wasmtime::Error| {
            load_error(format!("its `{HANDLER_EXPORT}` export has the wrong type: {e:#}"))
        };
        let handler = match has_handler {
            false => None,
            true => Some(Handler::Wasm(HandlerPre::new(pre.clone()).map_err(handler_type)?)),
        };
        let command_type =
            |e: wasmtime::Error| load_error(format!("its `wasi:cli/run` export has the wrong type: {e:#}"));
        let command = match has_command {
            false => None,
            true => Some(CommandPre::new(pre.clone()).map_err(command_type)?),
        };
        let proxy = match has_proxy && !has_handler {
            true => Some(ProxyPre::new(pre).map_err(|e| {
                load_error(format!("its `wasi:http/incoming-handler` export has the wrong type: {e:#}"))
            })?),
            false => None,
        };
        Ok(Component {
            inner: Arc::new(ComponentInner {
                name: name.into(),
                host: inner.clone(),
                caps,
                handler,
                command,
                proxy,
                max_memory: runtime.limits.max_memory,
                reuse: None,
            }),
        })
    }

    /// This component with a smaller memory limit than the host's
    /// ([`Limits::max_memory`](crate::Limits::max_memory)) for each of its instances.
    pub fn with_max_memory(&self, bytes: usize) -> Result<Component, Error> {
        let host_max = self.inner.host.limits.max_memory;
        if bytes > host_max || bytes < 64 << 10 {
            return Err(Error::Config(format!(
                "component `{}`: max_memory must be between 64 KiB and the host's {host_max} bytes, got {bytes}",
                self.inner.name
            )));
        }
        let mut inner = (*self.inner).clone();
        inner.max_memory = bytes;
        // Idle instances were made with the old limit: the new component has pools of its own.
        inner.reuse = inner.reuse.as_ref().map(|r| self.new_pools(r.policy()));
        Ok(Component { inner: Arc::new(inner) })
    }

    /// This component with its instances reused: an instance that finished a call cleanly
    /// serves the component's next call (one call at a time) until `reuse` retires it, instead
    /// of a fresh instance per call. The host keeps nothing of one call for the next (a
    /// transaction left open is rolled back), but **the guest's own memory persists**: module
    /// globals, caches, whatever a call left in them. Do not reuse the instances of a
    /// component that serves mutually distrustful users.
    ///
    /// For handlers and `wasi:http` components compiled to wasm, in either [`IoMode`];
    /// retirements are counted by reason in [`Metrics`](crate::Metrics).
    ///
    /// ```no_run
    /// # async fn example(host: mixio_host::Host) -> Result<(), mixio_host::Error> {
    /// use std::time::Duration;
    /// let hello = host.load("hello.wasm")?.with_reuse(mixio_host::Reuse::new().requests(1000).idle(Duration::from_secs(10)))?;
    /// let response = hello.call(mixio_host::Request::get("/")).await?;
    /// # Ok(()) }
    /// ```
    pub fn with_reuse(&self, reuse: Reuse) -> Result<Component, Error> {
        reuse.check().map_err(|e| Error::Config(format!("component `{}`: {e}", self.inner.name)))?;
        let unsupported = |reason: &str| Error::Unsupported {
            component: self.inner.name.to_string(),
            reason: reason.into(),
        };
        match (&self.inner.handler, &self.inner.proxy) {
            (Some(Handler::Native(_)), _) => {
                return Err(unsupported("is native: it has no instance to reuse"));
            }
            (None, None) => {
                return Err(unsupported(
                    "is a command: only handlers and wasi:http components reuse instances",
                ));
            }
            _ => {}
        }
        let mut inner = (*self.inner).clone();
        inner.reuse = Some(self.new_pools(reuse));
        Ok(Component { inner: Arc::new(inner) })
    }

    /// Empty pools of idle instances for this component's export, known to the host (which
    /// retires idle instances when it needs their slots).
    fn new_pools(&self, policy: Reuse) -> Reusing {
        let counters = self.inner.host.counters.clone();
        let (reusing, evict): (Reusing, Arc<dyn Evict>) = if self.inner.handler.is_some() {
            let pool = Arc::new(Pool::new(policy, counters));
            (Reusing::Handlers(pool.clone()), pool)
        } else {
            let pool = Arc::new(Pool::new(policy, counters));
            (Reusing::Proxies(pool.clone()), pool)
        };
        self.inner.host.reuse_pools.register(Arc::downgrade(&evict));
        reusing
    }

    /// The pool of idle handler instances, if the component reuses them.
    fn handlers(&self) -> Option<&Arc<Pool<HandlerExport>>> {
        match &self.inner.reuse {
            Some(Reusing::Handlers(pool)) => Some(pool),
            _ => None,
        }
    }

    /// The pool of idle proxy instances, if the component reuses them.
    fn proxies(&self) -> Option<&Arc<Pool<Proxy>>> {
        match &self.inner.reuse {
            Some(Reusing::Proxies(pool)) => Some(pool),
            _ => None,
        }
    }

    /// The component's name (its file stem, or the name given to
    /// [`Host::load_bytes`](crate::Host::load_bytes)); it tags log lines and errors.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Whether this is a handler, a `wasi:http` proxy or a command (a component exporting
    /// several is a handler, else a proxy).
    pub fn kind(&self) -> ComponentKind {
        // (Whatever the host's I/O mode.)
        if self.inner.handler.is_some() {
            ComponentKind::Handler
        } else if self.inner.proxy.is_some() {
            ComponentKind::HttpProxy
        } else {
            ComponentKind::Command
        }
    }

    /// Calls the handler with `request` in a fresh instance (or an idle one, for a component
    /// that reuses instances: [`with_reuse`](Component::with_reuse)). Await the returned [`Call`];
    /// set a deadline or a cancellation signal on it first if needed.
    pub fn call(&self, request: Request) -> Call {
        Call { component: self.clone(), request, timeout: self.inner.host.limits.timeout, cancel: None }
    }

    /// Runs the command with `args` (the program name is prepended) in a fresh instance.
    /// Await the returned [`Run`] for the exit code.
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut argv = vec![self.inner.name.to_string()];
        argv.extend(args.into_iter().map(Into::into));
        Run { component: self.clone(), args: argv, inherit_stdio: false, timeout: None, cancel: None }
    }

    /// Serves one HTTP request with a `wasi:http` proxy component
    /// ([`ComponentKind::HttpProxy`]) in a fresh instance (or an idle one, for a component that
    /// reuses instances).
    ///
    /// Returns once the guest has set the response status and headers; the body then streams
    /// from the guest, whose instance lives on in a task of its own until it finishes the body
    /// or `timeout` (counted from this call) passes. Dropping the returned future before the
    /// response is ready stops the guest.
    pub async fn call_http<B>(
        &self,
        request: hyper::Request<B>,
        timeout: Option<Duration>,
    ) -> Result<hyper::Response<HttpBody>, Error>
    where
        B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        self.call_http_holding(request, timeout, ()).await
    }

    /// [`call_http`](Component::call_http), holding `slot` until the instance is gone, or idle
    /// again for a component that reuses instances (it may run on after its response's body is
    /// sent): an HTTP trigger's admission permit, so that the instances running a call are
    /// counted for as long as they run. The body does not
    /// hold it: what is left of the body once the instance is gone is buffered, and a client
    /// slow to read it must not keep the component's slot.
    pub async fn call_http_holding<B>(
        &self,
        request: hyper::Request<B>,
        timeout: Option<Duration>,
        slot: impl Send + Sync + 'static,
    ) -> Result<hyper::Response<HttpBody>, Error>
    where
        B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let slot: Box<dyn Send + Sync> = Box::new(slot);
        let name = || self.inner.name.to_string();
        let Some(pre) = self.inner.proxy.clone() else {
            return Err(Error::Unsupported {
                component: name(),
                reason: "does not export `wasi:http/incoming-handler`".into(),
            });
        };
        let span = tracing::debug_span!("call_http", component = %self.inner.name, method = %request.method(), uri = %request.uri());
        self.inner.host.counters.call_started();
        let pool = self.proxies().cloned();
        let mut instance = self.instance(pool.as_ref());
        instance.start_call(timeout.and_then(|t| std::time::Instant::now().checked_add(t)));
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let mut host_error = |e: wasmtime::Error| {
            // A request wasi:http refuses (a `Host` header that is not ASCII, say).
            instance.retire_as = Some(Retirement::Failed);
            Error::Host { component: name(), message: format!("{e:#}") }
        };
        let mut http = instance.store.data_mut().http();
        let incoming = http.new_incoming_request(Scheme::Http, request).map_err(&mut host_error)?;
        let outparam = http.new_response_outparam(sender).map_err(&mut host_error)?;

        let component = self.clone();
        let (failure_sender, failure) = tokio::sync::oneshot::channel();
        let mut holder = HttpInstance { instance: Some(instance), _slot: slot };
        let guest = async move {
            let Some(instance) = holder.instance.as_mut() else {
                unreachable!("the instance is taken only below")
            };
            let work = async {
                let proxy = component.export(&pre, instance).await?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut instance.store, incoming, outparam)
                    .await?;
                instance.export = Some(proxy);
                instance.end_call().await;
                wasmtime::Result::Ok(())
            };
            let result = match deadline(work, timeout).await {
                Ok(result) => result.map_err(|e| component.guest_error(&instance.store, e)),
                Err(Elapsed) => Err(component.timeout_error(timeout)),
            };
            if let Err(e @ Error::Timeout { .. }) = &result {
                tracing::debug!(component = %component.name(), "{e}");
            }
            match result {
                Ok(()) => {
                    if let (Some(pool), Some(instance)) = (&pool, holder.instance.take()) {
                        pool.give_back(instance);
                    }
                    drop(holder);
                    Ok(())
                }
                Err(e) => {
                    instance.retire_as = Some(match e {
                        Error::Timeout { .. } => Retirement::Timeout,
                        _ => Retirement::Failed,
                    });
                    // Dropping the store closes the response body as if the guest had finished
                    // it: the body learns first that the call failed, so that it can end in an
                    // error instead.
                    let _ = failure_sender.send(e.to_string());
                    drop(holder);
                    Err(e)
                }
            }
        };
        // The guest's task runs in the caller's span too (a server's request span: the guest's
        // log lines carry its request id), whether or not the call's own span is recorded.
        let task = tokio::spawn(guest.instrument(span).instrument(tracing::Span::current()));
        let mut task = AbortOnDrop(Some(task));
        match receiver.await {
            Ok(Ok(response)) => {
                task.detach();
                let component = self.inner.name.clone();
                let span = tracing::Span::current();
                Ok(response
                    .map(|body| GuestBody { body, failure: Some(failure), component, span }.boxed_unsync()))
            }
            Ok(Err(code)) => Err(Error::Failed { component: name(), message: format!("it answered {code}") }),
            Err(_) => match task.join().await {
                Ok(Ok(())) => Err(Error::Failed {
                    component: name(),
                    message: "it returned without setting a response".into(),
                }),
                Ok(Err(e)) => Err(e),
                Err(e) => {
                    Err(Error::Host { component: name(), message: format!("the guest task failed: {e}") })
                }
            },
        }
    }

    /// An instance for a call: an idle one from `pool`, else a fresh one (whose retirement is
    /// counted if the component reuses instances).
    fn instance<E: Send + 'static>(&self, pool: Option<&Arc<Pool<E>>>) -> Instance<E> {
        match pool {
            Some(pool) => pool.take().unwrap_or_else(|| {
                Instance::fresh(self.logged_store(), Some(self.inner.host.counters.clone()))
            }),
            None => Instance::fresh(self.logged_store(), None),
        }
    }

    /// A new store whose guest's stdout and stderr go to the log.
    fn logged_store(&self) -> Store<GuestState> {
        let stdout = GuestOutput::new(self.inner.name.clone(), Stream::Stdout);
        let stderr = GuestOutput::new(self.inner.name.clone(), Stream::Stderr);
        let mut store =
            self.new_store(WasiCtxBuilder::new().stdout(stdout.clone()).stderr(stderr.clone()), Some(stderr));
        store.data_mut().stdout = Some(stdout);
        store
    }

    /// The export of `instance`: kept from its last call, or instantiated now with
    /// `instantiate`. A fresh instance finding no free slot in the host's pool retires the least
    /// recently used idle instance of a reusing component and tries again; if it still finds
    /// none, it retires every idle instance and tries once more.
    async fn export<P: Pre>(
        &self,
        pre: &P,
        instance: &mut Instance<P::Export>,
    ) -> wasmtime::Result<P::Export> {
        if let Some(export) = instance.export.take() {
            return Ok(export);
        }
        let pools = &self.inner.host.reuse_pools;
        let mut created = pre.instantiate(&mut instance.store).await;
        // Two tries at most: a failed attempt may leave core instances and memories in the
        // store, which the next attempt in it cannot use.
        for evict in [Pools::evict_oldest as fn(&Pools) -> bool, Pools::evict_all] {
            let full = created
                .as_ref()
                .is_err_and(|e| e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>().is_some());
            if !full || !evict(pools) {
                break;
            }
            // It serves its call and is then retired, giving back what the failure left.
            instance.unfinished = Some("its instantiation was retried in a full pool".into());
            created = pre.instantiate(&mut instance.store).await;
        }
        created
    }

    fn new_state(&self, wasi: &mut WasiCtxBuilder, stderr: Option<GuestOutput>) -> GuestState {
        wasi.envs(&self.inner.caps.environment);
        let limits = StoreLimitsBuilder::new().memory_size(self.inner.max_memory).build();
        GuestState::new(
            self.inner.name.clone(),
            self.inner.host.counters.clone(),
            self.inner.caps.clone(),
            wasi.build(),
            limits,
            stderr,
        )
    }

    fn new_store(&self, wasi: &mut WasiCtxBuilder, stderr: Option<GuestOutput>) -> Store<GuestState> {
        let state = self.new_state(wasi, stderr);
        let mut store = Store::new(&self.inner.host.engine, state);
        store.limiter(|s| &mut s.limits);
        // Yield to the executor at every epoch tick: a busy guest cannot starve the others,
        // and a deadline (a dropped future) takes effect within one tick.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));
        store
    }

    /// The error of a call whose deadline passed ([`Elapsed`] comes only from a set deadline).
    fn timeout_error(&self, timeout: Option<Duration>) -> Error {
        Error::Timeout { component: self.name().to_string(), timeout: timeout.unwrap_or_default() }
    }

    fn guest_error(&self, store: &Store<GuestState>, error: wasmtime::Error) -> Error {
        let error = Error::from_guest(
            &self.inner.name,
            error,
            &store.data().stderr_tail(),
            self.inner.host.limits.max_instances,
        );
        tracing::debug!(component = %self.inner.name, "{error}");
        error
    }

    /// Calls the handler; `deadline` is when `timeout` from the call's start passes.
    async fn handle(
        &self,
        request: Request,
        timeout: Option<Duration>,
        deadline: Option<std::time::Instant>,
    ) -> Result<Response, Error> {
        let Some(pre) = self.inner.handler.clone() else {
            return Err(Error::Unsupported {
                component: self.inner.name.to_string(),
                reason: match self.kind() {
                    ComponentKind::HttpProxy => "is a wasi:http component: serve it (`call_http`)".into(),
                    _ => "is a command, not a handler: run it instead of calling it".into(),
                },
            });
        };
        self.inner.host.counters.call_started();
        let pool = self.handlers().cloned();
        let instance = || {
            let mut instance = self.instance(pool.as_ref());
            instance.start_call(deadline);
            instance
        };
        /// Calls the handler of `instance`, instantiating it first if it is fresh, in either
        /// mode; then, if its component reuses it, makes it ready for its next call.
        async fn call(
            component: Component,
            pre: HandlerPre<GuestState>,
            mut instance: Instance<HandlerExport>,
            request: Request,
        ) -> (Instance<HandlerExport>, wasmtime::Result<Response>) {
            let result = async {
                let handler = component.export(&pre, &mut instance).await?;
                let response =
                    handler.mixio_io_incoming_handler().call_handle(&mut instance.store, &request).await?;
                instance.export = Some(handler);
                instance.end_call().await;
                Ok(response)
            }
            .await;
            (instance, result)
        }
        // The instance of a call that did not fail goes back to the component's pool, if it has
        // one; else it is dropped.
        let finish = {
            let pool = pool.clone();
            move |instance| {
                if let Some(pool) = &pool {
                    pool.give_back(instance);
                }
            }
        };
        match (pre, self.inner.host.io) {
            (Handler::Wasm(pre), IoMode::Async) => {
                let (instance, result) = call(self.clone(), pre, instance(), request).await;
                match result {
                    Ok(response) => {
                        finish(instance);
                        Ok(response)
                    }
                    Err(e) => {
                        let mut instance = instance;
                        instance.retire_as = Some(Retirement::Failed);
                        Err(self.guest_error(&instance.store, e))
                    }
                }
            }
            (Handler::Wasm(pre), IoMode::Blocking { .. }) => {
                let thread = self.blocking_thread().await?;
                let component = self.clone();
                let work = move |instance| call(component, pre, instance, request);
                self.on_blocking_thread(thread, instance(), timeout, work, finish).await
            }
            (Handler::Native(handler), _) => {
                let Some(threads) = self.inner.host.native_threads.get() else {
                    return Err(Error::Unsupported {
                        component: self.inner.name.to_string(),
                        reason: "is native, but the host's native threads are not running".into(),
                    });
                };
                let state = self.new_state(&mut WasiCtxBuilder::new(), None);
                threads.call(&self.inner.name, handler, state, request).await
            }
        }
    }

    async fn run_command(
        &self,
        args: Vec<String>,
        inherit_stdio: bool,
        timeout: Option<Duration>,
    ) -> Result<i32, Error> {
        let Some(pre) = self.inner.command.clone() else {
            return Err(Error::Unsupported {
                component: self.inner.name.to_string(),
                reason: "is a handler, not a command: call it instead of running it".into(),
            });
        };
        self.inner.host.counters.call_started();
        let mut wasi = WasiCtxBuilder::new();
        wasi.args(&args);
        let stderr = if inherit_stdio {
            wasi.inherit_stdio();
            None
        } else {
            let stderr = GuestOutput::new(self.inner.name.clone(), Stream::Stderr);
            wasi.stdout(GuestOutput::new(self.inner.name.clone(), Stream::Stdout)).stderr(stderr.clone());
            Some(stderr)
        };
        /// The exit code of a run that returned `result`.
        fn exit_code(result: wasmtime::Result<Result<(), ()>>) -> wasmtime::Result<i32> {
            match result {
                Ok(Ok(())) => Ok(0),
                Ok(Err(())) => Ok(1),
                Err(e) => match e.downcast_ref::<I32Exit>() {
                    Some(exit) => Ok(exit.0),
                    None => Err(e),
                },
            }
        }
        /// Instantiates `pre` in `store` and runs it, in either mode.
        async fn run(
            pre: CommandPre<GuestState>,
            mut store: Store<GuestState>,
        ) -> (Store<GuestState>, wasmtime::Result<i32>) {
            let result = async {
                let command = pre.instantiate_async(&mut store).await?;
                command.wasi_cli_run().call_run(&mut store).await
            }
            .await;
            (store, exit_code(result))
        }
        match self.inner.host.io {
            IoMode::Async => {
                let (store, result) = run(pre, self.new_store(&mut wasi, stderr)).await;
                result.map_err(|e| self.guest_error(&store, e))
            }
            IoMode::Blocking { .. } => {
                let thread = self.blocking_thread().await?;
                let store = self.new_store(&mut wasi, stderr);
                self.on_blocking_thread(thread, store, timeout, move |store| run(pre, store), drop).await
            }
        }
    }

    /// Waits for a thread of blocking mode's pool. The deadline of a blocking call is enforced
    /// on its thread: a call waiting on an import past it is dropped, and running code is
    /// interrupted at the next epoch tick after it.
    async fn blocking_thread(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Error> {
        self.inner.host.blocking_threads.clone().acquire_owned().await.map_err(|e| Error::Host {
            component: self.inner.name.to_string(),
            message: format!("the blocking thread pool is closed: {e}"),
        })
    }

    /// Blocking mode: runs the call `work` returns to completion on a thread of the host's
    /// pool, which blocks while the guest waits on an import (the caller holds `thread`, a
    /// permit of the pool, taken before the instance was created). `work` gives the store
    /// (or the instance holding it) back with the call's result, for the guest's error report
    /// or, if the call succeeded, to `finish` (which drops it, or keeps it for another call),
    /// still on the thread: an instance is done with before its thread serves another call.
    async fn on_blocking_thread<S, T, F, Fut>(
        &self,
        thread: tokio::sync::OwnedSemaphorePermit,
        mut store: S,
        timeout: Option<Duration>,
        work: F,
        finish: impl FnOnce(S) + Send + 'static,
    ) -> Result<T, Error>
    where
        S: HasStore + Send + 'static,
        T: Send + 'static,
        F: FnOnce(S) -> Fut + Send + 'static,
        Fut: Future<Output = (S, wasmtime::Result<T>)>,
    {
        let host_error = |message: String| Error::Host { component: self.inner.name.to_string(), message };
        // Dropping this future (the caller cancelled, or gave up) drops `_caller`, which
        // stops the call: a waiting import at once, running code at the next epoch tick.
        let (_caller, cancel) = tokio::sync::watch::channel(());
        // A deadline too far to add to the clock is none.
        let deadline = timeout.and_then(|t| std::time::Instant::now().checked_add(t));
        let stop = blocking::Stop { deadline, cancel: Some(cancel) };
        let running = stop.clone();
        store
            .store_mut()
            .epoch_deadline_callback(move |_| running.check().map(|()| UpdateDeadline::Continue(1)));
        let component = self.clone();
        let span = tracing::Span::current();
        let call = tokio::task::spawn_blocking(move || {
            let _span = span.entered();
            let error = |e: wasmtime::Error, store: Option<&Store<GuestState>>| {
                let name = component.name().to_string();
                match (timeout, store) {
                    _ if e.downcast_ref::<CallCancelled>().is_some() => Error::Cancelled { component: name },
                    (Some(timeout), _) if e.downcast_ref::<DeadlineExceeded>().is_some() => {
                        Error::Timeout { component: name, timeout }
                    }
                    (_, Some(store)) => component.guest_error(store, e),
                    (_, None) => Error::Host { component: name, message: format!("{e:#}") },
                }
            };
            // A call stopped while it waits is dropped inside `wait`, with its instance.
            let result = match blocking::wait(stop, work(store)) {
                Ok((store, Ok(value))) => {
                    finish(store);
                    Ok(value)
                }
                Ok((mut store, Err(e))) => {
                    let error = error(e, Some(store.store_mut()));
                    store.failed(match error {
                        Error::Timeout { .. } => Retirement::Timeout,
                        Error::Cancelled { .. } => Retirement::Cancelled,
                        _ => Retirement::Failed,
                    });
                    Err(error)
                }
                Err(e) => Err(error(e, None)),
            };
            // The instance goes before the thread is handed to the next call.
            drop(thread);
            result
        });
        call.await.map_err(|e| host_error(format!("the blocking call failed: {e}")))?
    }

    /// Runs `work` under a deadline and a cancellation signal; whichever fires first drops
    /// `work`, and with it the guest's fiber, instance and store.
    async fn supervise<T>(
        &self,
        work: impl Future<Output = Result<T, Error>>,
        timeout: Option<Duration>,
        cancel: Option<CancelSignal>,
    ) -> Result<T, Error> {
        let component = || self.inner.name.to_string();
        let timed = async {
            deadline(work, timeout).await.unwrap_or_else(|Elapsed| Err(self.timeout_error(timeout)))
        };
        let result = match cancel {
            Some(cancel) => tokio::select! {
                biased;
                result = timed => result,
                () = cancel => Err(Error::Cancelled { component: component() }),
            },
            None => timed.await,
        };
        // Reported to the caller, who decides what to log (a server logs the failed request).
        if let Err(e @ (Error::Timeout { .. } | Error::Cancelled { .. })) = &result {
            tracing::debug!(component = %self.inner.name, "{e}");
        }
        result
    }
}

type CancelSignal = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The body of a `wasi:http` guest's response. A guest that fails after it has begun to answer
/// (a trap, its deadline) cannot change the status any more; its body ends in an error, so that
/// the client sees a cut-off response (the connection closed before the body's end) rather
/// than a complete-looking one.
struct GuestBody {
    body: HttpBody,
    /// Sent (the call's error) before the guest's store, and with it the body's sender, is dropped.
    failure: Option<tokio::sync::oneshot::Receiver<String>>,
    component: Arc<str>,
    /// The span of the call's caller (a server's request), for the line reporting a failure.
    span: tracing::Span,
}

/// A `wasi:http` guest's instance and the slot it occupies. Fields drop in order: the store,
/// and with it the instance's place in the pool, is gone before the slot is given back,
/// however the guest's task ends (finished, failed, or aborted). An instance that goes back
/// to its component's pool of idle instances is taken out first.
struct HttpInstance {
    instance: Option<Instance<Proxy>>,
    _slot: Box<dyn Send + Sync>,
}

/// A pre-instantiated component whose instances export `Export` (a handler, a proxy).
trait Pre {
    type Export;
    fn instantiate(
        &self,
        store: &mut Store<GuestState>,
    ) -> impl Future<Output = wasmtime::Result<Self::Export>> + Send;
}

impl Pre for HandlerPre<GuestState> {
    type Export = HandlerExport;
    fn instantiate(
        &self,
        store: &mut Store<GuestState>,
    ) -> impl Future<Output = wasmtime::Result<HandlerExport>> + Send {
        self.instantiate_async(store)
    }
}

impl Pre for ProxyPre<GuestState> {
    type Export = Proxy;
    fn instantiate(
        &self,
        store: &mut Store<GuestState>,
    ) -> impl Future<Output = wasmtime::Result<Proxy>> + Send {
        self.instantiate_async(store)
    }
}

/// A store, or an instance holding one: what a blocking call runs in.
trait HasStore {
    fn store_mut(&mut self) -> &mut Store<GuestState>;
    /// Its call failed for `reason`: an instance is retired for it.
    fn failed(&mut self, _reason: Retirement) {}
}

impl HasStore for Store<GuestState> {
    fn store_mut(&mut self) -> &mut Store<GuestState> {
        self
    }
}

impl<E> HasStore for Instance<E> {
    fn store_mut(&mut self) -> &mut Store<GuestState> {
        &mut self.store
    }

    fn failed(&mut self, reason: Retirement) {
        self.retire_as = Some(reason);
    }
}

impl hyper::body::Body for GuestBody {
    type Data = bytes::Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, Self::Error>>> {
        let frame = std::task::ready!(Pin::new(&mut self.body).poll_frame(cx));
        if frame.is_some() {
            return std::task::Poll::Ready(frame);
        }
        match self.failure.take().map(|mut failure| failure.try_recv()) {
            Some(Ok(error)) => {
                self.span.in_scope(|| {
                    tracing::warn!(component = %self.component, "{error}; its response, already begun, is cut off")
                });
                std::task::Poll::Ready(Some(Err(wasmtime_wasi_http::Error::InternalError(Some(error)))))
            }
            _ => std::task::Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// A pending handler call; `.await` it for the [`Response`].
#[must_use = "a call does nothing until it is awaited"]
pub struct Call {
    component: Component,
    request: Request,
    timeout: Option<Duration>,
    cancel: Option<CancelSignal>,
}

impl Call {
    /// Replaces the host's default deadline ([`Limits::timeout`](crate::Limits::timeout));
    /// `None` for no deadline.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Cancels the call when `signal` completes: the guest is stopped wherever it is and the
    /// call returns [`Error::Cancelled`].
    pub fn cancel_on(mut self, signal: impl Future<Output = ()> + Send + 'static) -> Self {
        self.cancel = Some(Box::pin(signal));
        self
    }
}

impl IntoFuture for Call {
    type Output = Result<Response, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        let span = tracing::debug_span!("call", component = %self.component.inner.name, method = %self.request.method, uri = %self.request.path_with_query);
        let call = async move {
            let c = &self.component;
            // Taken before `supervise` starts the timer of the same deadline.
            let deadline = self.timeout.and_then(|t| std::time::Instant::now().checked_add(t));
            c.supervise(c.handle(self.request, self.timeout, deadline), self.timeout, self.cancel).await
        };
        // The call is polled again after every pending host call: entering a span that
        // records nothing would cost on each of those polls.
        if span.is_disabled() { Box::pin(call) } else { Box::pin(call.instrument(span)) }
    }
}

/// A pending command run; `.await` it for the exit code.
#[must_use = "a run does nothing until it is awaited"]
pub struct Run {
    component: Component,
    args: Vec<String>,
    inherit_stdio: bool,
    timeout: Option<Duration>,
    cancel: Option<CancelSignal>,
}

impl Run {
    /// Gives the guest this process's stdin, stdout and stderr (as `mixio run` does) instead
    /// of sending its output to the log.
    pub fn inherit_stdio(mut self) -> Self {
        self.inherit_stdio = true;
        self
    }

    /// Stops the command after `timeout` with [`Error::Timeout`].
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Cancels the run when `signal` completes, with [`Error::Cancelled`].
    pub fn cancel_on(mut self, signal: impl Future<Output = ()> + Send + 'static) -> Self {
        self.cancel = Some(Box::pin(signal));
        self
    }
}

impl IntoFuture for Run {
    type Output = Result<i32, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        let span = tracing::info_span!("run", component = %self.component.inner.name);
        Box::pin(
            async move {
                let c = &self.component;
                c.supervise(
                    c.run_command(self.args, self.inherit_stdio, self.timeout),
                    self.timeout,
                    self.cancel,
                )
                .await
            }
            .instrument(span),
        )
    }
}

/// Recognises what `bytes` is before handing it to the compiler, for a clear message.
fn check_header(bytes: &[u8]) -> Result<(), String> {
    if bytes.is_empty() {
        return Err("the file is empty".into());
    }
    if !bytes.starts_with(b"\0asm") {
        let text = bytes.iter().take(64).all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace());
        return Err(if text && bytes.trim_ascii_start().starts_with(b"(") {
            "it is WebAssembly text; mixio loads binary components (`.wasm`)".into()
        } else {
            "not a WebAssembly file (it does not start with `\\0asm`)".into()
        });
    }
    match bytes.get(4..8) {
        Some([0x0d, 0x00, 0x01, 0x00]) => Ok(()),
        Some([0x01, 0x00, 0x00, 0x00]) => {
            Err("it is a core WebAssembly module, not a component: build it for `wasm32-wasip2` \
             (or wrap it with `wasm-tools component new`)"
                .into())
        }
        Some(other) => Err(format!("unsupported WebAssembly version or layer {other:02x?}")),
        None => Err("the file is truncated: it ends inside the WebAssembly header".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::check_header;

    #[test]
    fn headers_are_recognised() {
        assert!(check_header(b"\0asm\x0d\0\x01\0rest").is_ok());
        assert!(check_header(b"").unwrap_err().contains("empty"));
        assert!(check_header(b"\0asm\x01\0\0\0").unwrap_err().contains("core WebAssembly module"));
        assert!(check_header(b"\0asm\x0d").unwrap_err().contains("truncated"));
        assert!(check_header(b"  (component)").unwrap_err().contains("WebAssembly text"));
        assert!(check_header(b"\x7fELF\x02\x01").unwrap_err().contains("not a WebAssembly file"));
    }
}
