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
use mixio::bindings::mixio::io as g;
use tokio::sync::{mpsc, oneshot};
use wasmtime::component::Resource;

use crate::bindings::mixio::io as h;
use crate::error::Error;
use crate::state::GuestState;
use crate::{Request, Response, fiber};

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
                let request: mixio::http::Request = g::types::Request {
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
                let response = g::types::Response::from(response);
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

same_variant!(h::kv::Error => g::kv::Error { ; AccessDenied, Invalid, Backend });
same_variant!(h::pubsub::Error => g::pubsub::Error { ; AccessDenied, Invalid, Backend });
same_variant!(h::websocket::Error => g::websocket::Error { ; AccessDenied, Invalid, Backend });
same_variant!(h::sql::Error => g::sql::Error {
    ; AccessDenied, InvalidQuery, ConstraintViolation, TransactionState, Backend
});
same_variant!(h::sql::Value => g::sql::Value { Null ; Boolean, Integer, Real, Text, Blob });
same_variant!(g::sql::Value => h::sql::Value { Null ; Boolean, Integer, Real, Text, Blob });
same_variant!(h::http_client::Error => g::http_client::Error {
    Timeout ; NotAllowed, InvalidRequest, TooLarge, Connection
});
same_variant!(g::log::Level => h::log::Level { Trace, Debug, Info, Warn, Error ; });

/// Runs an import of the async capability implementations to completion on this fiber, with
/// the call's state as `$state`. A host failure (what would trap a WebAssembly guest) panics
/// the handler instead, which fails its call only.
macro_rules! run {
    ($imports:ident, $state:ident, $import:expr) => {{
        let mut guard = $imports.0.borrow_mut();
        let $state = &mut *guard;
        match fiber::block_on($import) {
            Ok(value) => value,
            Err(e) => panic!("host failure in a native guest: {e:#}"),
        }
    }};
}

/// [`run!`] for imports returning a `result`, converted to the SDK's types.
macro_rules! result {
    ($imports:ident, $state:ident, $import:expr) => {
        run!($imports, $state, $import).map(Into::into).map_err(Into::into)
    };
}

fn handle<T: 'static>(rep: u32) -> Resource<T> {
    Resource::new_borrow(rep)
}

impl mixio::native::Imports for NativeImports {
    fn sleep(&self, nanos: u64) {
        run!(self, s, h::time::Host::sleep(s, nanos))
    }

    fn now(&self) -> g::time::Datetime {
        let now = h::time::Host::now(&mut *self.0.borrow_mut());
        g::time::Datetime { seconds: now.seconds, nanoseconds: now.nanoseconds }
    }

    fn monotonic_now(&self) -> u64 {
        h::time::Host::monotonic_now(&mut *self.0.borrow_mut())
    }

    fn log(&self, level: g::log::Level, message: &str) {
        h::log::Host::log(&mut *self.0.borrow_mut(), level.into(), message.to_string())
    }

    fn config_get(&self, name: &str) -> Option<String> {
        h::config::Host::get(&mut *self.0.borrow_mut(), name.to_string()).unwrap_or_default()
    }

    fn kv_open(&self, name: &str) -> Result<u32, g::kv::Error> {
        let name = name.to_string();
        run!(self, s, h::kv::HostStore::open(s, name)).map(|r| r.rep()).map_err(Into::into)
    }

    fn kv_get(&self, store: u32, key: &str) -> Result<Option<Vec<u8>>, g::kv::Error> {
        let key = key.to_string();
        result!(self, s, h::kv::HostStore::get(s, handle(store), key))
    }

    fn kv_set(&self, store: u32, key: &str, value: &[u8], ttl_ms: Option<u64>) -> Result<(), g::kv::Error> {
        let (key, value) = (key.to_string(), value.to_vec());
        result!(self, s, h::kv::HostStore::set(s, handle(store), key, value, ttl_ms))
    }

    fn kv_delete(&self, store: u32, key: &str) -> Result<bool, g::kv::Error> {
        let key = key.to_string();
        result!(self, s, h::kv::HostStore::delete(s, handle(store), key))
    }

    fn kv_exists(&self, store: u32, key: &str) -> Result<bool, g::kv::Error> {
        let key = key.to_string();
        result!(self, s, h::kv::HostStore::exists(s, handle(store), key))
    }

    fn kv_list_keys(&self, store: u32, prefix: &str) -> Result<Vec<String>, g::kv::Error> {
        let prefix = prefix.to_string();
        result!(self, s, h::kv::HostStore::list_keys(s, handle(store), prefix))
    }

    fn kv_increment(&self, store: u32, key: &str, delta: i64) -> Result<i64, g::kv::Error> {
        let key = key.to_string();
        result!(self, s, h::kv::HostStore::increment(s, handle(store), key, delta))
    }

    fn kv_compare_and_swap(
        &self,
        store: u32,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool, g::kv::Error> {
        let (key, expected, value) = (key.to_string(), expected.map(<[u8]>::to_vec), value.to_vec());
        result!(self, s, h::kv::HostStore::compare_and_swap(s, handle(store), key, expected, value))
    }

    fn kv_drop(&self, store: u32) {
        run!(self, s, h::kv::HostStore::drop(s, Resource::new_own(store)))
    }

    fn sql_open(&self, name: &str) -> Result<u32, g::sql::Error> {
        let name = name.to_string();
        run!(self, s, h::sql::HostConnection::open(s, name)).map(|r| r.rep()).map_err(Into::into)
    }

    fn sql_execute(
        &self,
        conn: u32,
        statement: &str,
        params: &[g::sql::Value],
    ) -> Result<u64, g::sql::Error> {
        let (statement, params) = (statement.to_string(), params.iter().cloned().map(Into::into).collect());
        result!(self, s, h::sql::HostConnection::execute(s, handle(conn), statement, params))
    }

    fn sql_query(
        &self,
        conn: u32,
        statement: &str,
        params: &[g::sql::Value],
    ) -> Result<g::sql::Rows, g::sql::Error> {
        let (statement, params) = (statement.to_string(), params.iter().cloned().map(Into::into).collect());
        let rows = run!(self, s, h::sql::HostConnection::query(s, handle(conn), statement, params))?;
        Ok(g::sql::Rows {
            columns: rows.columns,
            rows: rows.rows.into_iter().map(|row| row.into_iter().map(Into::into).collect()).collect(),
        })
    }

    fn sql_begin(&self, conn: u32) -> Result<(), g::sql::Error> {
        result!(self, s, h::sql::HostConnection::begin(s, handle(conn)))
    }

    fn sql_commit(&self, conn: u32) -> Result<(), g::sql::Error> {
        result!(self, s, h::sql::HostConnection::commit(s, handle(conn)))
    }

    fn sql_rollback(&self, conn: u32) -> Result<(), g::sql::Error> {
        result!(self, s, h::sql::HostConnection::rollback(s, handle(conn)))
    }

    fn sql_drop(&self, conn: u32) {
        run!(self, s, h::sql::HostConnection::drop(s, Resource::new_own(conn)))
    }

    fn http_send(
        &self,
        request: &g::http_client::OutgoingRequest,
    ) -> Result<g::http_client::IncomingResponse, g::http_client::Error> {
        let request = h::http_client::OutgoingRequest {
            method: request.method.clone(),
            url: request.url.clone(),
            headers: request.headers.clone(),
            body: request.body.clone(),
            timeout_ms: request.timeout_ms,
        };
        let response = run!(self, s, h::http_client::Host::send(s, request))?;
        Ok(g::http_client::IncomingResponse {
            status: response.status,
            headers: response.headers,
            body: response.body,
        })
    }

    fn publish(&self, topic: &str, payload: &[u8]) -> Result<(), g::pubsub::Error> {
        let (topic, payload) = (topic.to_string(), payload.to_vec());
        result!(self, s, h::pubsub::Host::publish(s, topic, payload))
    }

    fn ws_send(&self, channel: &str, text: &str) -> Result<(), g::websocket::Error> {
        let (channel, text) = (channel.to_string(), text.to_string());
        result!(self, s, h::websocket::Host::send(s, channel, text))
    }
}
