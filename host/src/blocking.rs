//! Blocking mode: the same components, called with synchronous Wasmtime calls on a bounded
//! pool of OS threads. Each import blocks its thread until the capability's future completes.
//!
//! There is one implementation per capability, the async one (`capabilities/`); this module
//! is the thin synchronous adapter over it: bindings generated for synchronous imports, whose
//! every function waits for the async implementation with [`fiber::block_on`] (outside a fiber
//! that blocks the thread on the runtime), bounded by the call's deadline, and converts the
//! generated types, which the two sets of bindings each have their own copy of.

use std::future::Future;
use std::time::Instant;

use wasmtime::component::Resource;

use crate::bindings::mixio::io as a;
use crate::capabilities::kv::OpenStore;
use crate::capabilities::sql::OpenConnection;
use crate::fiber;
use crate::state::GuestState;

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "mixio:io/handler",
        imports: {
            "mixio:io/time.now": tracing,
            "mixio:io/time.monotonic-now": tracing,
            default: trappable | tracing,
        },
        with: {
            // Types only, or synchronous functions only: shared with the async bindings.
            "mixio:io/types": crate::bindings::mixio::io::types,
            "mixio:io/log": crate::bindings::mixio::io::log,
            "mixio:io/config": crate::bindings::mixio::io::config,
            "mixio:io/kv.store": crate::capabilities::kv::OpenStore,
            "mixio:io/sql.connection": crate::capabilities::sql::OpenConnection,
        },
        require_store_data_send: true,
        additional_derives: [PartialEq],
    });
}

use bindings::mixio::io as s;

/// The call's deadline passed while the guest waited on an import.
#[derive(Debug, thiserror::Error)]
#[error("the call's deadline passed")]
pub(crate) struct DeadlineExceeded;

/// The caller dropped the call (it was cancelled, or timed out on the caller's side).
#[derive(Debug, thiserror::Error)]
#[error("the call was cancelled")]
pub(crate) struct CallCancelled;

/// When a blocking call must stop: its deadline, or its caller going away (the sender of
/// `cancel`, held by the awaiting future, is dropped).
#[derive(Clone, Default)]
pub(crate) struct Stop {
    pub(crate) deadline: Option<Instant>,
    pub(crate) cancel: Option<tokio::sync::watch::Receiver<()>>,
}

impl Stop {
    /// Why the call must stop now, if it must.
    pub(crate) fn check(&self) -> wasmtime::Result<()> {
        if self.cancel.as_ref().is_some_and(|c| c.has_changed().is_err()) {
            return Err(wasmtime::Error::new(CallCancelled));
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(wasmtime::Error::new(DeadlineExceeded));
        }
        Ok(())
    }
}

/// Adds the synchronous adapters of every mixio interface to `linker`.
pub(crate) fn add_to_linker(linker: &mut wasmtime::component::Linker<GuestState>) -> wasmtime::Result<()> {
    type Data = wasmtime::component::HasSelf<GuestState>;
    s::time::add_to_linker::<GuestState, Data>(linker, |s| s)?;
    a::log::add_to_linker::<GuestState, Data>(linker, |s| s)?;
    a::config::add_to_linker::<GuestState, Data>(linker, |s| s)?;
    s::kv::add_to_linker::<GuestState, Data>(linker, |s| s)?;
    s::sql::add_to_linker::<GuestState, Data>(linker, |s| s)?;
    s::http_client::add_to_linker::<GuestState, Data>(linker, |s| s)?;
    s::pubsub::add_to_linker::<GuestState, Data>(linker, |s| s)?;
    s::websocket::add_to_linker::<GuestState, Data>(linker, |s| s)?;
    Ok(())
}

/// Blocks the thread on `future`, giving up when `stop` says so.
pub(crate) fn wait<F: Future>(stop: Stop, future: F) -> wasmtime::Result<F::Output> {
    stop.check()?;
    fiber::block_on(async move {
        let deadline = async {
            match stop.deadline {
                Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
                None => std::future::pending().await,
            }
        };
        let cancelled = async {
            match stop.cancel {
                // Completes with an error when the sender is dropped.
                Some(mut cancel) => while cancel.changed().await.is_ok() {},
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            output = future => Ok(output),
            () = deadline => Err(wasmtime::Error::new(DeadlineExceeded)),
            () = cancelled => Err(wasmtime::Error::new(CallCancelled)),
        }
    })
}

same_variant!(a::kv::Error => s::kv::Error { ; AccessDenied, Invalid, Backend });
same_variant!(a::pubsub::Error => s::pubsub::Error { ; AccessDenied, Invalid, Backend });
same_variant!(a::websocket::Error => s::websocket::Error { ; AccessDenied, Invalid, Backend });
same_variant!(a::sql::Error => s::sql::Error {
    ; AccessDenied, InvalidQuery, ConstraintViolation, TransactionState, Backend
});
same_variant!(a::sql::Value => s::sql::Value { Null ; Boolean, Integer, Real, Text, Blob });
same_variant!(s::sql::Value => a::sql::Value { Null ; Boolean, Integer, Real, Text, Blob });
same_variant!(a::http_client::Error => s::http_client::Error {
    Timeout ; NotAllowed, InvalidRequest, TooLarge, Connection
});

impl From<a::sql::Rows> for s::sql::Rows {
    fn from(rows: a::sql::Rows) -> s::sql::Rows {
        s::sql::Rows {
            columns: rows.columns,
            rows: rows.rows.into_iter().map(|row| row.into_iter().map(Into::into).collect()).collect(),
        }
    }
}

/// `Ok(Ok(v))` of one bindings' types as the other's.
fn convert<T: Into<U>, U, E: Into<F>, F>(
    result: wasmtime::Result<Result<T, E>>,
) -> wasmtime::Result<Result<U, F>> {
    result.map(|r| r.map(Into::into).map_err(Into::into))
}

fn params(params: Vec<s::sql::Value>) -> Vec<a::sql::Value> {
    params.into_iter().map(Into::into).collect()
}

impl s::time::Host for GuestState {
    fn sleep(&mut self, duration: u64) -> wasmtime::Result<()> {
        wait(self.stop.clone(), a::time::Host::sleep(self, duration))?
    }

    fn now(&mut self) -> s::time::Datetime {
        let now = a::time::Host::now(self);
        s::time::Datetime { seconds: now.seconds, nanoseconds: now.nanoseconds }
    }

    fn monotonic_now(&mut self) -> u64 {
        a::time::Host::monotonic_now(self)
    }
}

impl s::kv::Host for GuestState {}

impl s::kv::HostStore for GuestState {
    fn open(&mut self, name: String) -> wasmtime::Result<Result<Resource<OpenStore>, s::kv::Error>> {
        convert(wait(self.stop.clone(), a::kv::HostStore::open(self, name))?)
    }

    fn get(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, s::kv::Error>> {
        convert(wait(self.stop.clone(), a::kv::HostStore::get(self, store, key))?)
    }

    fn set(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> wasmtime::Result<Result<(), s::kv::Error>> {
        convert(wait(self.stop.clone(), a::kv::HostStore::set(self, store, key, value, ttl_ms))?)
    }

    fn delete(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, s::kv::Error>> {
        convert(wait(self.stop.clone(), a::kv::HostStore::delete(self, store, key))?)
    }

    fn exists(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, s::kv::Error>> {
        convert(wait(self.stop.clone(), a::kv::HostStore::exists(self, store, key))?)
    }

    fn list_keys(
        &mut self,
        store: Resource<OpenStore>,
        prefix: String,
    ) -> wasmtime::Result<Result<Vec<String>, s::kv::Error>> {
        convert(wait(self.stop.clone(), a::kv::HostStore::list_keys(self, store, prefix))?)
    }

    fn increment(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, s::kv::Error>> {
        convert(wait(self.stop.clone(), a::kv::HostStore::increment(self, store, key, delta))?)
    }

    fn compare_and_swap(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<bool, s::kv::Error>> {
        convert(wait(
            self.stop.clone(),
            a::kv::HostStore::compare_and_swap(self, store, key, expected, value),
        )?)
    }

    fn drop(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<()> {
        // Dropping never waits on I/O, so it is not bounded by the deadline.
        wait(Stop::default(), a::kv::HostStore::drop(self, store))?
    }
}

impl s::sql::Host for GuestState {}

impl s::sql::HostConnection for GuestState {
    fn open(&mut self, name: String) -> wasmtime::Result<Result<Resource<OpenConnection>, s::sql::Error>> {
        convert(wait(self.stop.clone(), a::sql::HostConnection::open(self, name))?)
    }

    fn execute(
        &mut self,
        conn: Resource<OpenConnection>,
        statement: String,
        values: Vec<s::sql::Value>,
    ) -> wasmtime::Result<Result<u64, s::sql::Error>> {
        convert(wait(
            self.stop.clone(),
            a::sql::HostConnection::execute(self, conn, statement, params(values)),
        )?)
    }

    fn query(
        &mut self,
        conn: Resource<OpenConnection>,
        statement: String,
        values: Vec<s::sql::Value>,
    ) -> wasmtime::Result<Result<s::sql::Rows, s::sql::Error>> {
        convert(wait(
            self.stop.clone(),
            a::sql::HostConnection::query(self, conn, statement, params(values)),
        )?)
    }

    fn begin(&mut self, conn: Resource<OpenConnection>) -> wasmtime::Result<Result<(), s::sql::Error>> {
        convert(wait(self.stop.clone(), a::sql::HostConnection::begin(self, conn))?)
    }

    fn commit(&mut self, conn: Resource<OpenConnection>) -> wasmtime::Result<Result<(), s::sql::Error>> {
        convert(wait(self.stop.clone(), a::sql::HostConnection::commit(self, conn))?)
    }

    fn rollback(&mut self, conn: Resource<OpenConnection>) -> wasmtime::Result<Result<(), s::sql::Error>> {
        convert(wait(self.stop.clone(), a::sql::HostConnection::rollback(self, conn))?)
    }

    fn drop(&mut self, conn: Resource<OpenConnection>) -> wasmtime::Result<()> {
        // Dropping a connection rolls back an open transaction: let it finish.
        wait(Stop::default(), a::sql::HostConnection::drop(self, conn))?
    }
}

impl s::http_client::Host for GuestState {
    fn send(
        &mut self,
        request: s::http_client::OutgoingRequest,
    ) -> wasmtime::Result<Result<s::http_client::IncomingResponse, s::http_client::Error>> {
        let request = a::http_client::OutgoingRequest {
            method: request.method,
            url: request.url,
            headers: request.headers,
            body: request.body,
            timeout_ms: request.timeout_ms,
        };
        let response = wait(self.stop.clone(), a::http_client::Host::send(self, request))??;
        Ok(response
            .map(|r| s::http_client::IncomingResponse { status: r.status, headers: r.headers, body: r.body })
            .map_err(Into::into))
    }
}

impl s::pubsub::Host for GuestState {
    fn publish(&mut self, topic: String, payload: Vec<u8>) -> wasmtime::Result<Result<(), s::pubsub::Error>> {
        convert(wait(self.stop.clone(), a::pubsub::Host::publish(self, topic, payload))?)
    }
}

impl s::websocket::Host for GuestState {
    fn send(&mut self, channel: String, text: String) -> wasmtime::Result<Result<(), s::websocket::Error>> {
        convert(wait(self.stop.clone(), a::websocket::Host::send(self, channel, text))?)
    }
}
