//! The imports the SDK's modules call: the WIT imports in a WebAssembly guest; with the
//! `native` feature on a native target, the functions of the host that linked the guest
//! ([`crate::native`]). Nothing else in the SDK knows the difference.

use crate::bindings::mixio::io::{http_client, kv, log, pubsub, sql, time, websocket};

#[cfg(not(all(feature = "native", not(target_arch = "wasm32"))))]
mod imp {
    use super::*;

    pub(crate) type Store = kv::Store;
    pub(crate) type Connection = sql::Connection;

    pub(crate) fn sleep(nanos: u64) {
        time::sleep(nanos)
    }
    pub(crate) fn now() -> time::Datetime {
        time::now()
    }
    pub(crate) fn monotonic_now() -> u64 {
        time::monotonic_now()
    }
    pub(crate) fn log(level: log::Level, message: &str) {
        log::log(level, message)
    }
    pub(crate) fn config_get(name: &str) -> Option<String> {
        crate::bindings::mixio::io::config::get(name)
    }
    pub(crate) fn kv_open(name: &str) -> Result<Store, kv::Error> {
        kv::Store::open(name)
    }
    pub(crate) fn kv_get(store: &Store, key: &str) -> Result<Option<Vec<u8>>, kv::Error> {
        store.get(key)
    }
    pub(crate) fn kv_set(
        store: &Store,
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
    ) -> Result<(), kv::Error> {
        store.set(key, value, ttl_ms)
    }
    pub(crate) fn kv_delete(store: &Store, key: &str) -> Result<bool, kv::Error> {
        store.delete(key)
    }
    pub(crate) fn kv_exists(store: &Store, key: &str) -> Result<bool, kv::Error> {
        store.exists(key)
    }
    pub(crate) fn kv_list_keys(store: &Store, prefix: &str) -> Result<Vec<String>, kv::Error> {
        store.list_keys(prefix)
    }
    pub(crate) fn kv_increment(store: &Store, key: &str, delta: i64) -> Result<i64, kv::Error> {
        store.increment(key, delta)
    }
    pub(crate) fn kv_compare_and_swap(
        store: &Store,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool, kv::Error> {
        store.compare_and_swap(key, expected, value)
    }
    pub(crate) fn sql_open(name: &str) -> Result<Connection, sql::Error> {
        sql::Connection::open(name)
    }
    pub(crate) fn sql_execute(
        c: &Connection,
        statement: &str,
        params: &[sql::Value],
    ) -> Result<u64, sql::Error> {
        c.execute(statement, params)
    }
    pub(crate) fn sql_query(
        c: &Connection,
        statement: &str,
        params: &[sql::Value],
    ) -> Result<sql::Rows, sql::Error> {
        c.query(statement, params)
    }
    pub(crate) fn sql_begin(c: &Connection) -> Result<(), sql::Error> {
        c.begin()
    }
    pub(crate) fn sql_commit(c: &Connection) -> Result<(), sql::Error> {
        c.commit()
    }
    pub(crate) fn sql_rollback(c: &Connection) -> Result<(), sql::Error> {
        c.rollback()
    }
    pub(crate) fn http_send(
        request: &http_client::OutgoingRequest,
    ) -> Result<http_client::IncomingResponse, http_client::Error> {
        http_client::send(request)
    }
    pub(crate) fn publish(topic: &str, payload: &[u8]) -> Result<(), pubsub::Error> {
        pubsub::publish(topic, payload)
    }
    pub(crate) fn ws_send(channel: &str, text: &str) -> Result<(), websocket::Error> {
        websocket::send(channel, text)
    }
}

#[cfg(all(feature = "native", not(target_arch = "wasm32")))]
mod imp {
    use super::*;
    use crate::native::call;

    /// An open store: a handle into the host's table of this call.
    pub(crate) struct Store(u32);

    impl Drop for Store {
        fn drop(&mut self) {
            call(|i| i.kv_drop(self.0));
        }
    }

    /// An open connection: a handle into the host's table of this call.
    pub(crate) struct Connection(u32);

    impl Drop for Connection {
        fn drop(&mut self) {
            call(|i| i.sql_drop(self.0));
        }
    }

    pub(crate) fn sleep(nanos: u64) {
        call(|i| i.sleep(nanos))
    }
    pub(crate) fn now() -> time::Datetime {
        call(|i| i.now())
    }
    pub(crate) fn monotonic_now() -> u64 {
        call(|i| i.monotonic_now())
    }
    pub(crate) fn log(level: log::Level, message: &str) {
        call(|i| i.log(level, message))
    }
    pub(crate) fn config_get(name: &str) -> Option<String> {
        call(|i| i.config_get(name))
    }
    pub(crate) fn kv_open(name: &str) -> Result<Store, kv::Error> {
        call(|i| i.kv_open(name)).map(Store)
    }
    pub(crate) fn kv_get(store: &Store, key: &str) -> Result<Option<Vec<u8>>, kv::Error> {
        call(|i| i.kv_get(store.0, key))
    }
    pub(crate) fn kv_set(
        store: &Store,
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
    ) -> Result<(), kv::Error> {
        call(|i| i.kv_set(store.0, key, value, ttl_ms))
    }
    pub(crate) fn kv_delete(store: &Store, key: &str) -> Result<bool, kv::Error> {
        call(|i| i.kv_delete(store.0, key))
    }
    pub(crate) fn kv_exists(store: &Store, key: &str) -> Result<bool, kv::Error> {
        call(|i| i.kv_exists(store.0, key))
    }
    pub(crate) fn kv_list_keys(store: &Store, prefix: &str) -> Result<Vec<String>, kv::Error> {
        call(|i| i.kv_list_keys(store.0, prefix))
    }
    pub(crate) fn kv_increment(store: &Store, key: &str, delta: i64) -> Result<i64, kv::Error> {
        call(|i| i.kv_increment(store.0, key, delta))
    }
    pub(crate) fn kv_compare_and_swap(
        store: &Store,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool, kv::Error> {
        call(|i| i.kv_compare_and_swap(store.0, key, expected, value))
    }
    pub(crate) fn sql_open(name: &str) -> Result<Connection, sql::Error> {
        call(|i| i.sql_open(name)).map(Connection)
    }
    pub(crate) fn sql_execute(
        c: &Connection,
        statement: &str,
        params: &[sql::Value],
    ) -> Result<u64, sql::Error> {
        call(|i| i.sql_execute(c.0, statement, params))
    }
    pub(crate) fn sql_query(
        c: &Connection,
        statement: &str,
        params: &[sql::Value],
    ) -> Result<sql::Rows, sql::Error> {
        call(|i| i.sql_query(c.0, statement, params))
    }
    pub(crate) fn sql_begin(c: &Connection) -> Result<(), sql::Error> {
        call(|i| i.sql_begin(c.0))
    }
    pub(crate) fn sql_commit(c: &Connection) -> Result<(), sql::Error> {
        call(|i| i.sql_commit(c.0))
    }
    pub(crate) fn sql_rollback(c: &Connection) -> Result<(), sql::Error> {
        call(|i| i.sql_rollback(c.0))
    }
    pub(crate) fn http_send(
        request: &http_client::OutgoingRequest,
    ) -> Result<http_client::IncomingResponse, http_client::Error> {
        call(|i| i.http_send(request))
    }
    pub(crate) fn publish(topic: &str, payload: &[u8]) -> Result<(), pubsub::Error> {
        call(|i| i.publish(topic, payload))
    }
    pub(crate) fn ws_send(channel: &str, text: &str) -> Result<(), websocket::Error> {
        call(|i| i.ws_send(channel, text))
    }
}

pub(crate) use imp::*;
