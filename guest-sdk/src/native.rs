//! Native guests (feature `native`): the same guest source compiled for the host's target and
//! linked into a native host binary, which serves its handler (the function
//! `#[mixio::handler]` marks, also exported as `mixio_handler`) with `mixio-host`.
//!
//! Every SDK call goes to the [`Imports`] of the call being served: the host installs them
//! with [`with_imports`] around the handler, runs it on a fiber, and each import waits for
//! the host's capability backends with `mixio_host::fiber::block_on`, suspending the fiber.
//! The guest gets the same capabilities, grants and deadline as its WebAssembly build, and no
//! sandbox: a native guest is trusted code, and the fastest way to run it.

use std::cell::RefCell;
use std::rc::Rc;

use crate::bindings::mixio::io::{http_client, kv, log, pubsub, sql, time, websocket};

/// What a native guest's SDK calls, implemented by the host for one call. Resources (stores,
/// connections) are handles into the host's table of the call.
#[allow(missing_docs)]
pub trait Imports {
    fn sleep(&self, nanos: u64);
    fn now(&self) -> time::Datetime;
    fn monotonic_now(&self) -> u64;
    fn log(&self, level: log::Level, message: &str);
    fn config_get(&self, name: &str) -> Option<String>;
    fn kv_open(&self, name: &str) -> Result<u32, kv::Error>;
    fn kv_get(&self, store: u32, key: &str) -> Result<Option<Vec<u8>>, kv::Error>;
    fn kv_set(&self, store: u32, key: &str, value: &[u8], ttl_ms: Option<u64>) -> Result<(), kv::Error>;
    fn kv_delete(&self, store: u32, key: &str) -> Result<bool, kv::Error>;
    fn kv_exists(&self, store: u32, key: &str) -> Result<bool, kv::Error>;
    fn kv_list_keys(&self, store: u32, prefix: &str) -> Result<Vec<String>, kv::Error>;
    fn kv_increment(&self, store: u32, key: &str, delta: i64) -> Result<i64, kv::Error>;
    fn kv_compare_and_swap(
        &self,
        store: u32,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool, kv::Error>;
    fn kv_drop(&self, store: u32);
    fn sql_open(&self, name: &str) -> Result<u32, sql::Error>;
    fn sql_execute(&self, conn: u32, statement: &str, params: &[sql::Value]) -> Result<u64, sql::Error>;
    fn sql_query(&self, conn: u32, statement: &str, params: &[sql::Value]) -> Result<sql::Rows, sql::Error>;
    fn sql_begin(&self, conn: u32) -> Result<(), sql::Error>;
    fn sql_commit(&self, conn: u32) -> Result<(), sql::Error>;
    fn sql_rollback(&self, conn: u32) -> Result<(), sql::Error>;
    fn sql_drop(&self, conn: u32);
    fn http_send(
        &self,
        request: &http_client::OutgoingRequest,
    ) -> Result<http_client::IncomingResponse, http_client::Error>;
    fn publish(&self, topic: &str, payload: &[u8]) -> Result<(), pubsub::Error>;
    fn ws_send(&self, channel: &str, text: &str) -> Result<(), websocket::Error>;
}

thread_local! {
    /// The imports of the call running on this thread (on this fiber, see [`call`]).
    static CURRENT: RefCell<Option<Rc<dyn Imports>>> = const { RefCell::new(None) };
}

/// Runs `handler` with `imports` serving its SDK calls.
pub fn with_imports<R>(imports: Rc<dyn Imports>, handler: impl FnOnce() -> R) -> R {
    struct Reset(Option<Rc<dyn Imports>>);
    impl Drop for Reset {
        fn drop(&mut self) {
            CURRENT.set(self.0.take());
        }
    }
    let _reset = Reset(CURRENT.replace(Some(imports)));
    handler()
}

/// Calls the current imports. An import may suspend this fiber, and other calls' fibers run
/// on the thread meanwhile and install their own imports: this call's are taken off the thread
/// for the import's duration and put back after, so a suspended call holds nothing there.
pub(crate) fn call<R>(f: impl FnOnce(&dyn Imports) -> R) -> R {
    let imports = CURRENT.take().expect(
        "a native mixio guest called the SDK outside a call: run it with mixio_host (native::with_imports)",
    );
    struct PutBack(Option<Rc<dyn Imports>>);
    impl Drop for PutBack {
        fn drop(&mut self) {
            CURRENT.set(self.0.take());
        }
    }
    let imports = PutBack(Some(imports));
    f(imports.0.as_deref().expect("set above"))
}
