//! `mixio:io/kv`: the WIT host implementation, with the access check (only granted stores),
//! namespacing (a component's keys are prefixed with its namespace and the store name), and
//! the per-instance limits.

mod backend;
mod memory;
mod redis;
mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::Resource;

pub use backend::{KvBackend, KvError};
pub use memory::MemoryKv;
pub use redis::RedisKv;
pub use sqlite::SqliteKv;

use crate::bindings::mixio::io::kv::{Error, Host, HostStore};
use crate::metrics::host_call;
use crate::state::GuestState;

/// Longest key a guest may use, in bytes.
pub const MAX_KEY: usize = 1024;
/// Largest value a guest may store, in bytes.
pub const MAX_VALUE: usize = 1 << 20;
/// Stores one instance may have open at once.
pub const MAX_OPEN_STORES: usize = 64;

/// An open store: its backend and the prefix of this component's keys in it.
pub struct OpenStore {
    backend: Arc<dyn KvBackend>,
    prefix: String,
}

impl From<KvError> for Error {
    fn from(e: KvError) -> Error {
        match e {
            KvError::Invalid(m) => Error::Invalid(m),
            KvError::Backend(m) => Error::Backend(m),
        }
    }
}

fn check_key(key: &str) -> Result<(), Error> {
    if key.is_empty() {
        return Err(Error::Invalid("keys must not be empty".into()));
    }
    if key.len() > MAX_KEY {
        return Err(Error::Invalid(format!("key of {} bytes exceeds the limit of {MAX_KEY}", key.len())));
    }
    Ok(())
}

fn check_value(value: &[u8]) -> Result<(), Error> {
    if value.len() > MAX_VALUE {
        return Err(Error::Invalid(format!(
            "value of {} bytes exceeds the limit of {MAX_VALUE}",
            value.len()
        )));
    }
    Ok(())
}

impl GuestState {
    fn store(&self, store: &Resource<OpenStore>) -> wasmtime::Result<(Arc<dyn KvBackend>, String)> {
        let s = self.table.get(store)?;
        Ok((s.backend.clone(), s.prefix.clone()))
    }
}

impl Host for GuestState {}

impl HostStore for GuestState {
    async fn open(&mut self, name: String) -> wasmtime::Result<Result<Resource<OpenStore>, Error>> {
        let Some(backend) = self.caps.kv_store(&name) else {
            return Ok(Err(Error::AccessDenied(format!(
                "kv store `{name}` is not granted to component `{}`",
                self.component
            ))));
        };
        if self.open_kv_stores >= MAX_OPEN_STORES {
            return Ok(Err(Error::Invalid(format!(
                "too many open kv stores (the limit is {MAX_OPEN_STORES})"
            ))));
        }
        let prefix = format!("{}:{name}:", self.caps.namespace);
        let handle = self.table.push(OpenStore { backend, prefix })?;
        self.open_kv_stores += 1;
        Ok(Ok(handle))
    }

    async fn get(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let (backend, prefix) = self.store(&store)?;
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        Ok(host_call(&self.counters, backend.get(&(prefix + &key))).await.map_err(Error::from))
    }

    async fn set(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let (backend, prefix) = self.store(&store)?;
        if let Err(e) = check_key(&key).and_then(|()| check_value(&value)) {
            return Ok(Err(e));
        }
        if ttl_ms == Some(0) {
            return Ok(Err(Error::Invalid("a TTL must be at least 1 ms".into())));
        }
        let ttl = ttl_ms.map(Duration::from_millis);
        Ok(host_call(&self.counters, backend.set(&(prefix + &key), &value, ttl)).await.map_err(Error::from))
    }

    async fn delete(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let (backend, prefix) = self.store(&store)?;
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        Ok(host_call(&self.counters, backend.delete(&(prefix + &key))).await.map_err(Error::from))
    }

    async fn exists(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let (backend, prefix) = self.store(&store)?;
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        Ok(host_call(&self.counters, backend.exists(&(prefix + &key))).await.map_err(Error::from))
    }

    async fn list_keys(
        &mut self,
        store: Resource<OpenStore>,
        prefix: String,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let (backend, ns) = self.store(&store)?;
        if prefix.len() > MAX_KEY {
            return Ok(Err(Error::Invalid(format!("prefix exceeds the key limit of {MAX_KEY} bytes"))));
        }
        let keys = host_call(&self.counters, backend.list_keys(&(ns.clone() + &prefix))).await;
        Ok(keys
            .map(|keys| keys.into_iter().filter_map(|k| k.strip_prefix(&ns).map(String::from)).collect())
            .map_err(Error::from))
    }

    async fn increment(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, Error>> {
        let (backend, prefix) = self.store(&store)?;
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        Ok(host_call(&self.counters, backend.increment(&(prefix + &key), delta)).await.map_err(Error::from))
    }

    async fn compare_and_swap(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let (backend, prefix) = self.store(&store)?;
        if let Err(e) = check_key(&key).and_then(|()| check_value(&value)) {
            return Ok(Err(e));
        }
        let full = prefix + &key;
        Ok(host_call(&self.counters, backend.compare_and_swap(&full, expected.as_deref(), &value))
            .await
            .map_err(Error::from))
    }

    async fn drop(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        self.open_kv_stores -= 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_are_bounded() {
        assert!(check_key("k").is_ok());
        assert!(matches!(check_key(""), Err(Error::Invalid(_))));
        assert!(check_key(&"k".repeat(MAX_KEY)).is_ok());
        assert!(matches!(check_key(&"k".repeat(MAX_KEY + 1)), Err(Error::Invalid(_))));
        assert!(check_value(&vec![0; MAX_VALUE]).is_ok());
        assert!(matches!(check_value(&vec![0; MAX_VALUE + 1]), Err(Error::Invalid(_))));
    }
}
