//! [`Component`]: a compiled, pre-instantiated guest, and the two ways to drive it: [`Call`]
//! a handler, [`Run`] a command. Each call gets its own `Store` and instance, created from the
//! pre-instantiated component (linking and type checks were done once, at load).

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;
use wasmtime::{Store, StoreLimitsBuilder, UpdateDeadline};
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::{I32Exit, WasiCtxBuilder};

use crate::bindings::{HANDLER_EXPORT, HandlerPre, Request, Response};
use crate::capabilities::{ComponentCaps, Grants};
use crate::error::Error;
use crate::host::{Host, HostInner};
use crate::state::GuestState;
use crate::stdio::{GuestOutput, Stream};

/// The name of the export that makes a component a command.
const COMMAND_EXPORT_PREFIX: &str = "wasi:cli/run@0.2";

/// What a component can do, by what it exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentKind {
    /// Exports `mixio:io/incoming-handler`: use [`Component::call`].
    Handler,
    /// Exports `wasi:cli/run`: use [`Component::run`].
    Command,
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

struct ComponentInner {
    name: Arc<str>,
    host: Arc<HostInner>,
    caps: Arc<ComponentCaps>,
    handler: Option<HandlerPre<GuestState>>,
    command: Option<CommandPre<GuestState>>,
}

impl Component {
    pub(crate) fn load(
        host: &Host,
        display: &str,
        name: String,
        bytes: &[u8],
        grants: &Grants,
    ) -> Result<Component, Error> {
        let load_error = |reason: String| Error::Load { name: display.to_string(), reason };
        let caps = Arc::new(ComponentCaps::resolve(&name, grants, &host.inner.backends)?);
        check_header(bytes).map_err(load_error)?;
        let inner = &host.inner;
        let started = std::time::Instant::now();
        let hits = || inner.cache.as_ref().map(|c| c.cache_hits());
        let hits_before = hits();
        let component = wasmtime::component::Component::new(&inner.engine, bytes)
            .map_err(|e| load_error(format!("invalid component: {e:#}")))?;
        let how = if hits() > hits_before { "loaded from the compiled-code cache" } else { "compiled" };
        tracing::info!(component = %name, elapsed_ms = started.elapsed().as_millis() as u64, "{how}");

        let ty = component.component_type();
        let exports: Vec<String> = ty.exports(&inner.engine).map(|(name, _)| name.to_string()).collect();
        let has_handler = exports.iter().any(|e| e == HANDLER_EXPORT);
        let has_command = exports.iter().any(|e| e.starts_with(COMMAND_EXPORT_PREFIX));
        if !has_handler && !has_command {
            return Err(load_error(format!(
                "it exports neither `{HANDLER_EXPORT}` (a handler) nor `wasi:cli/run` (a command); it exports: {}",
                if exports.is_empty() { "nothing".to_string() } else { exports.join(", ") }
            )));
        }

        let pre = inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| load_error(format!("it needs an import this host does not provide: {e:#}")))?;
        let handler = match has_handler {
            true => Some(HandlerPre::new(pre.clone()).map_err(|e| {
                load_error(format!("its `{HANDLER_EXPORT}` export has the wrong type: {e:#}"))
            })?),
            false => None,
        };
        let command =
            match has_command {
                true => Some(CommandPre::new(pre).map_err(|e| {
                    load_error(format!("its `wasi:cli/run` export has the wrong type: {e:#}"))
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
            }),
        })
    }

    /// The component's name (its file stem, or the name given to
    /// [`Host::load_bytes`]); it tags log lines and errors.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Whether this is a handler or a command (a component exporting both is a handler).
    pub fn kind(&self) -> ComponentKind {
        match self.inner.handler {
            Some(_) => ComponentKind::Handler,
            None => ComponentKind::Command,
        }
    }

    /// Calls the handler with `request` in a fresh instance. Await the returned [`Call`];
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

    fn new_store(&self, wasi: &mut WasiCtxBuilder, stderr: Option<GuestOutput>) -> Store<GuestState> {
        let host = &self.inner.host;
        let limits = StoreLimitsBuilder::new().memory_size(host.limits.max_memory).build();
        let state = GuestState::new(
            self.inner.name.clone(),
            host.counters.clone(),
            self.inner.caps.clone(),
            wasi.build(),
            limits,
            stderr,
        );
        let mut store = Store::new(&host.engine, state);
        store.limiter(|s| &mut s.limits);
        // Yield to the executor at every epoch tick: a busy guest cannot starve the others,
        // and a deadline (a dropped future) takes effect within one tick.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));
        store
    }

    fn guest_error(&self, store: &Store<GuestState>, error: wasmtime::Error) -> Error {
        let error = Error::from_guest(
            &self.inner.name,
            error,
            &store.data().stderr_tail(),
            self.inner.host.limits.max_instances,
        );
        tracing::warn!(component = %self.inner.name, "{error}");
        error
    }

    async fn handle(&self, request: Request) -> Result<Response, Error> {
        let Some(pre) = &self.inner.handler else {
            return Err(Error::Unsupported {
                component: self.inner.name.to_string(),
                reason: "is a command, not a handler: run it instead of calling it".into(),
            });
        };
        self.inner.host.counters.call_started();
        let stdout = GuestOutput::new(self.inner.name.clone(), Stream::Stdout);
        let stderr = GuestOutput::new(self.inner.name.clone(), Stream::Stderr);
        let mut store =
            self.new_store(WasiCtxBuilder::new().stdout(stdout).stderr(stderr.clone()), Some(stderr));
        let result = async {
            let handler = pre.instantiate_async(&mut store).await?;
            handler.mixio_io_incoming_handler().call_handle(&mut store, &request).await
        }
        .await;
        result.map_err(|e| self.guest_error(&store, e))
    }

    async fn run_command(&self, args: Vec<String>, inherit_stdio: bool) -> Result<i32, Error> {
        let Some(pre) = &self.inner.command else {
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
        let mut store = self.new_store(&mut wasi, stderr);
        let result = async {
            let command = pre.instantiate_async(&mut store).await?;
            command.wasi_cli_run().call_run(&mut store).await
        }
        .await;
        match result {
            Ok(Ok(())) => Ok(0),
            Ok(Err(())) => Ok(1),
            Err(e) => match e.downcast_ref::<I32Exit>() {
                Some(exit) => Ok(exit.0),
                None => Err(self.guest_error(&store, e)),
            },
        }
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
            match timeout {
                Some(t) => tokio::time::timeout(t, work)
                    .await
                    .unwrap_or_else(|_| Err(Error::Timeout { component: component(), timeout: t })),
                None => work.await,
            }
        };
        let result = match cancel {
            Some(cancel) => tokio::select! {
                biased;
                result = timed => result,
                () = cancel => Err(Error::Cancelled { component: component() }),
            },
            None => timed.await,
        };
        if let Err(e @ (Error::Timeout { .. } | Error::Cancelled { .. })) = &result {
            tracing::warn!(component = %self.inner.name, "{e}");
        }
        result
    }
}

type CancelSignal = Pin<Box<dyn Future<Output = ()> + Send>>;

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
        let span = tracing::info_span!("call", component = %self.component.inner.name, method = %self.request.method, uri = %self.request.path_with_query);
        Box::pin(
            async move {
                let c = &self.component;
                c.supervise(c.handle(self.request), self.timeout, self.cancel).await
            }
            .instrument(span),
        )
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
                c.supervise(c.run_command(self.args, self.inherit_stdio), self.timeout, self.cancel).await
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
