//! Every import of the `mixio:io` world, listed once: the SDK's plumbing for both targets
//! ([`crate::sys`]) and the native imports' trait ([`crate::native::Imports`]) are generated
//! from this list, and so is the host's implementation of that trait (`mixio-host`'s
//! `native.rs`). A new WIT function is one line here.
//!
//! Each line is `KIND fn NAME(PARAMS) -> RESULT = GUEST_PATH, HOST_PATH;`: the SDK function
//! `sys::NAME`, the wit-bindgen function it calls in a WebAssembly guest (`GUEST_PATH`, called
//! with the parameters as they are; a method takes its resource first), and the method of
//! `mixio-host`'s bindings it reaches natively (`HOST_PATH`). `KIND` is how the host runs it:
//! `io` waits on the async implementation, suspending the native guest's fiber; `local` is a
//! plain call; `fallible` a plain call that can fail the host (a trap for a WebAssembly guest).
//! `drops` are the resources' destructors, which native handles call.
//!
//! The macro passes the list to `$then!`, a macro of the caller's.

#[doc(hidden)]
#[macro_export]
macro_rules! __for_each_import {
    ($then:path) => {
        $then! {
            drops {
                kv_drop = kv::HostStore::drop;
                sql_drop = sql::HostConnection::drop;
            }
            io fn sleep(nanos: u64) -> () = time::sleep, time::Host::sleep;
            local fn now() -> time::Datetime = time::now, time::Host::now;
            local fn monotonic_now() -> u64 = time::monotonic_now, time::Host::monotonic_now;
            local fn log(level: log::Level, message: &str) -> () = log::log, log::Host::log;
            fallible fn config_get(name: &str) -> Option<String> = config::get, config::Host::get;
            io fn kv_open(name: &str) -> Result<Store, kv::Error> = kv::Store::open, kv::HostStore::open;
            io fn kv_get(store: &Store, key: &str) -> Result<Option<Vec<u8>>, kv::Error>
                = kv::Store::get, kv::HostStore::get;
            io fn kv_set(store: &Store, key: &str, value: &[u8], ttl_ms: Option<u64>) -> Result<(), kv::Error>
                = kv::Store::set, kv::HostStore::set;
            io fn kv_get_many(store: &Store, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, kv::Error>
                = kv::Store::get_many, kv::HostStore::get_many;
            io fn kv_set_many(store: &Store, entries: &[(String, Vec<u8>)], ttl_ms: Option<u64>)
                -> Result<(), kv::Error> = kv::Store::set_many, kv::HostStore::set_many;
            io fn kv_delete(store: &Store, key: &str) -> Result<bool, kv::Error>
                = kv::Store::delete, kv::HostStore::delete;
            io fn kv_exists(store: &Store, key: &str) -> Result<bool, kv::Error>
                = kv::Store::exists, kv::HostStore::exists;
            io fn kv_list_keys(store: &Store, prefix: &str) -> Result<Vec<String>, kv::Error>
                = kv::Store::list_keys, kv::HostStore::list_keys;
            io fn kv_increment(store: &Store, key: &str, delta: i64) -> Result<i64, kv::Error>
                = kv::Store::increment, kv::HostStore::increment;
            io fn kv_compare_and_swap(store: &Store, key: &str, expected: Option<&[u8]>, value: &[u8])
                -> Result<bool, kv::Error> = kv::Store::compare_and_swap, kv::HostStore::compare_and_swap;
            io fn sql_open(name: &str) -> Result<Connection, sql::Error>
                = sql::Connection::open, sql::HostConnection::open;
            io fn sql_execute(conn: &Connection, statement: &str, params: &[sql::Value]) -> Result<u64, sql::Error>
                = sql::Connection::execute, sql::HostConnection::execute;
            io fn sql_query(conn: &Connection, statement: &str, params: &[sql::Value])
                -> Result<sql::Rows, sql::Error> = sql::Connection::query, sql::HostConnection::query;
            io fn sql_begin(conn: &Connection) -> Result<(), sql::Error>
                = sql::Connection::begin, sql::HostConnection::begin;
            io fn sql_commit(conn: &Connection) -> Result<(), sql::Error>
                = sql::Connection::commit, sql::HostConnection::commit;
            io fn sql_rollback(conn: &Connection) -> Result<(), sql::Error>
                = sql::Connection::rollback, sql::HostConnection::rollback;
            io fn http_send(request: &http_client::OutgoingRequest)
                -> Result<http_client::IncomingResponse, http_client::Error> = http_client::send, http_client::Host::send;
            io fn publish(topic: &str, payload: &[u8]) -> Result<(), pubsub::Error>
                = pubsub::publish, pubsub::Host::publish;
            io fn ws_send(channel: &str, text: &str) -> Result<(), websocket::Error>
                = websocket::send, websocket::Host::send;
        }
    };
}
