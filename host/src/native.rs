//! Native guests: a guest crate compiled for the host's target (the `mixio` SDK with its
//! `native` feature) and linked into the host binary. Its handler runs on a
//! [`fiber`]; each SDK call goes to the same capability implementations a
//! WebAssembly guest's imports reach, with the same grants, waiting with
//! [`fiber::block_on`]. No sandbox: native guests are trusted code.
//!
//! Fibers stay on their thread, so native calls run on the host's native threads (one per
//! core), each a current-thread runtime; [`Component::call`](crate::Component::call) hands
//! them the request and awaits the answer. Dropping the call (a deadline, a cancellation)
//! drops the fiber, which unwinds its stack and the call's open stores and connections.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use futures_util::FutureExt;
use mixio::bindings::mixio::io as guest_io;
#[allow(unused_imports)]
use mixio::bindings::mixio::io::{config, http_client, kv, log, pubsub, sql, time, websocket};
use mixio::native::{Connection, Store};
use tokio::sync::{mpsc, oneshot};
use wasmtime::component::Resource;

use crate::capabilities::bindings::mixio::io as host_io;
use crate::capabilities::bindings::{Request, Response};
use crate::capabilities::kv::OpenStore;
use crate::capabilities::sql::OpenConnection;
use crate::capabilities::view;
use crate::error::Error;
use crate::state::GuestState;
use mixio_fiber as fiber;

/// A native guest's handler: `<guest crate>::mixio_handler`, which `#[mixio::handler]`
/// defines.
pub type NativeHandler = fn(mixio::http::Request) -> mixio::http::Response;

type Job = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// The threads native calls run on.
pub(crate) struct NativeThreads {
    senders: Vec<mpsc::UnboundedSender<Job>>,
    next: AtomicUsize,
}

impl NativeThreads {
    pub(crate) fn start() -> std::io::Result<NativeThreads> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut senders = Vec::new();
        for i in 0..threads {
            let (sender, mut jobs) = mpsc::unbounded_channel::<Job>();
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            std::thread::Builder::new().name(format!("mixio-native-{i}")).spawn(move || {
                let local = tokio::task::LocalSet::new();
                local.block_on(&runtime, async {
                    while let Some(job) = jobs.recv().await {
                        tokio::task::spawn_local(job());
                    }
                });
            })?;
            senders.push(sender);
        }
        Ok(NativeThreads { senders, next: AtomicUsize::new(0) })
    }

    /// Runs `handler` on `request` on a fiber of a native thread, with `state` serving its
    /// SDK calls.
    pub(crate) async fn call(
        &self,
        component: &str,
        handler: NativeHandler,
        state: GuestState,
        request: Request,
    ) -> Result<Response, Error> {
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move || {
            Box::pin(async move {
                let mut answer = answer;
                let imports: Rc<dyn mixio::native::Imports> = Rc::new(NativeImports(RefCell::new(state)));
                let request: mixio::http::Request = guest_io::types::Request {
                    method: request.method,
                    path_with_query: request.path_with_query,
                    headers: request.headers,
                    body: request.body,
                }
                .into();
                let run = fiber::spawn(move || mixio::native::with_imports(imports, || handler(request)));
                tokio::select! {
                    result = std::panic::AssertUnwindSafe(run).catch_unwind() => {
                        let _ = answer.send(result.map_err(|panic| panic_message(&*panic)));
                    }
                    // The caller gave up: dropping the fiber unwinds it.
                    () = answer.closed() => {}
                }
            })
        });
        let i = self.next.fetch_add(1, Relaxed) % self.senders.len();
        let gone =
            || Error::Host { component: component.to_string(), message: "the native threads stopped".into() };
        self.senders[i].send(job).map_err(|_| gone())?;
        match answered.await.map_err(|_| gone())? {
            Ok(response) => {
                let response = guest_io::types::Response::from(response);
                Ok(Response { status: response.status, headers: response.headers, body: response.body })
            }
            Err(message) => Err(Error::Panic { component: component.to_string(), message }),
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(s), _) => s.to_string(),
        (_, Some(s)) => s.clone(),
        _ => "a panic with a non-text payload".into(),
    }
}

/// One native call's imports: the capability implementations over the call's state.
struct NativeImports(RefCell<GuestState>);

same_variant!(host_io::kv::Error => guest_io::kv::Error { ; AccessDenied, Invalid, Backend });
same_variant!(host_io::pubsub::Error => guest_io::pubsub::Error { ; AccessDenied, Invalid, Backend });
same_variant!(host_io::websocket::Error => guest_io::websocket::Error { ; AccessDenied, Invalid, Backend });
same_variant!(host_io::sql::Error => guest_io::sql::Error {
    ; AccessDenied, InvalidQuery, ConstraintViolation, TransactionState, Backend
});
same_variant!(host_io::sql::Value => guest_io::sql::Value { Null ; Boolean, Integer, Real, Text, Blob });
same_variant!(guest_io::sql::Value => host_io::sql::Value { Null ; Boolean, Integer, Real, Text, Blob });
same_variant!(host_io::http_client::Error => guest_io::http_client::Error {
    Timeout ; NotAllowed, InvalidRequest, TooLarge, Connection
});
same_variant!(guest_io::log::Level => host_io::log::Level { Trace, Debug, Info, Warn, Error ; });

/// A parameter of the SDK's native imports as the host's bindings take it.
trait IntoHost<T> {
    fn into_host(self) -> T;
}

/// A result of the host's bindings as the SDK's native imports return it.
trait IntoGuest<T> {
    fn into_guest(self) -> T;
}

fn into_host<T, U>(value: T) -> U
where
    T: IntoHost<U>,
{
    value.into_host()
}

fn into_guest<T: IntoGuest<U>, U>(value: T) -> U {
    value.into_guest()
}

/// Types the two bindings share, and types converted with `From`.
macro_rules! convert {
    (same: $($t:ty),*; from: $($from:ty => $to:ty),*) => {
        $(impl IntoHost<$t> for $t { fn into_host(self) -> $t { self } })*
        $(impl IntoGuest<$t> for $t { fn into_guest(self) -> $t { self } })*
        $(impl IntoGuest<$to> for $from { fn into_guest(self) -> $to { self.into() } })*
    };
}
convert!(
    same: (), bool, u64, i64, Option<u64>, Option<String>, Option<Vec<u8>>, Vec<u8>, Vec<String>,
        Vec<Option<Vec<u8>>>;
    from: host_io::kv::Error => guest_io::kv::Error, host_io::sql::Error => guest_io::sql::Error,
        host_io::pubsub::Error => guest_io::pubsub::Error, host_io::websocket::Error => guest_io::websocket::Error,
        host_io::http_client::Error => guest_io::http_client::Error
);

impl<T: IntoGuest<U>, U, E: IntoGuest<F>, F> IntoGuest<Result<U, F>> for Result<T, E> {
    fn into_guest(self) -> Result<U, F> {
        self.map(T::into_guest).map_err(E::into_guest)
    }
}

impl IntoHost<String> for &str {
    fn into_host(self) -> String {
        self.to_string()
    }
}

impl<T: Clone> IntoHost<Vec<T>> for &[T] {
    fn into_host(self) -> Vec<T> {
        self.to_vec()
    }
}

impl IntoHost<Option<Vec<u8>>> for Option<&[u8]> {
    fn into_host(self) -> Option<Vec<u8>> {
        self.map(<[u8]>::to_vec)
    }
}

impl IntoHost<host_io::log::Level> for guest_io::log::Level {
    fn into_host(self) -> host_io::log::Level {
        self.into()
    }
}

impl IntoHost<Vec<host_io::sql::Value>> for &[guest_io::sql::Value] {
    fn into_host(self) -> Vec<host_io::sql::Value> {
        self.iter().cloned().map(Into::into).collect()
    }
}

impl IntoHost<host_io::http_client::OutgoingRequest> for &guest_io::http_client::OutgoingRequest {
    fn into_host(self) -> host_io::http_client::OutgoingRequest {
        host_io::http_client::OutgoingRequest {
            method: self.method.clone(),
            url: self.url.clone(),
            headers: self.headers.clone(),
            body: self.body.clone(),
            timeout_ms: self.timeout_ms,
        }
    }
}

impl IntoGuest<guest_io::http_client::IncomingResponse> for host_io::http_client::IncomingResponse {
    fn into_guest(self) -> guest_io::http_client::IncomingResponse {
        guest_io::http_client::IncomingResponse {
            status: self.status,
            headers: self.headers,
            body: self.body,
        }
    }
}

impl IntoGuest<guest_io::time::Datetime> for host_io::time::Datetime {
    fn into_guest(self) -> guest_io::time::Datetime {
        guest_io::time::Datetime { seconds: self.seconds, nanoseconds: self.nanoseconds }
    }
}

impl IntoGuest<guest_io::sql::Rows> for host_io::sql::Rows {
    fn into_guest(self) -> guest_io::sql::Rows {
        guest_io::sql::Rows {
            columns: self.columns,
            rows: self.rows.into_iter().map(|row| row.into_iter().map(Into::into).collect()).collect(),
        }
    }
}

/// A native handle borrowed for a call, and a resource the host created, which the guest's
/// handle owns from now on.
macro_rules! handles {
    ($($native:ty => $resource:ty),*) => {$(
        impl IntoHost<Resource<$resource>> for &$native {
            fn into_host(self) -> Resource<$resource> {
                Resource::new_borrow(self.rep())
            }
        }

        impl IntoGuest<$native> for Resource<$resource> {
            fn into_guest(self) -> $native {
                <$native>::from_rep(self.rep())
            }
        }
    )*};
}
handles!(Store => OpenStore, Connection => OpenConnection);

/// Runs the future of an import of the async capability implementations to completion on this
/// fiber. A host failure (what would trap a WebAssembly guest) panics the handler instead,
/// which fails its call only.
fn wait<T>(future: impl Future<Output = wasmtime::Result<T>>) -> T {
    untrap(fiber::block_on(future))
}

fn untrap<T>(result: wasmtime::Result<T>) -> T {
    result.unwrap_or_else(|e| panic!("host failure in a native guest: {e:#}"))
}

/// The SDK's native imports, one per import of the `mixio:io` world, each converting its
/// parameters, calling the host's implementation on the call's state and converting its
/// result.
macro_rules! native_imports {
    (
        drops { $($drop:ident = $($drop_host:ident)::+;)* }
        $($kind:ident fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty
            = $($guest:ident)::+, $($host:ident)::+;)*
    ) => {
        impl mixio::native::Imports for NativeImports {
            // A destructor never waits: it may run while a dropped fiber unwinds, off any
            // fiber, on a thread that runs a runtime, where blocking would panic in a panic.
            $(fn $drop(&self, rep: u32) {
                let mut state = self.0.borrow_mut();
                let view = &mut view(&mut *state);
                let dropped = host_io::$($drop_host)::+(view, Resource::new_own(rep)).now_or_never();
                untrap(dropped.expect("dropping a resource never waits"))
            })*
            $(fn $name(&self, $($arg: $ty),*) -> $ret {
                let mut state = self.0.borrow_mut();
                let view = &mut view(&mut *state);
                into_guest(native_imports!(@$kind host_io::$($host)::+(view, $(into_host($arg)),*)))
            })*
        }
    };
    (@io $call:expr) => { wait($call) };
    (@local $call:expr) => { $call };
    (@fallible $call:expr) => { untrap($call) };
}
mixio::__for_each_import!(native_imports);
