//! `mixio:io/kv`: the WIT host implementation, with the access check (only granted stores),
//! namespacing (a component's keys are prefixed with its namespace and the store name), and
//! the per-instance limits.

mod backend;
mod memory;
mod redis;
mod sqlite;

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::Resource;

pub(crate) use backend::{KvBackend, KvError};
pub(crate) use memory::MemoryKv;
pub(crate) use redis::RedisKv;
pub(crate) use sqlite::SqliteKv;

use crate::capabilities::bindings::mixio::io::kv::{Error, Host, HostStore};
use crate::capabilities::{Backends, Capability, Grants, Resolved, View, granted, name_token, namespace};
use crate::metrics::{Backend, backend_call};

/// Longest key a guest may use, in bytes.
pub const MAX_KEY: usize = 1024;
/// Largest value a guest may store, in bytes.
pub const MAX_VALUE: usize = 1 << 20;
/// Most keys of one `get-many` or `set-many`.
pub const MAX_MANY: usize = 256;
/// Most bytes of values one `get-many` or `set-many` carries.
pub const MAX_MANY_BYTES: usize = 16 << 20;
/// Stores one instance may have open at once.
pub const MAX_OPEN_STORES: usize = 64;

/// The key-value capability.
pub(crate) struct Kv;

/// What a component is granted of kv: its stores, by name, and its namespace.
pub(crate) struct KvGrants {
    stores: HashMap<String, Arc<dyn KvBackend>>,
    /// The component's namespace, the first part of its keys.
    namespace: String,
}

impl Capability for Kv {
    type Grants = KvGrants;
    /// The stores the instance has open.
    type State = usize;

    fn resolve(component: &str, grants: &Grants, backends: &Backends) -> Resolved<KvGrants> {
        Ok(KvGrants {
            stores: granted(component, "kv store", &grants.kv, &backends.kv)?,
            namespace: namespace(component, grants),
        })
    }
}

/// The store a URL names: `memory`, `sqlite:PATH` or `redis://HOST:PORT`.
pub(crate) fn open(url: &str) -> Result<Arc<dyn KvBackend>, String> {
    Ok(if url == "memory" {
        Arc::new(MemoryKv::default())
    } else if let Some(path) = url.strip_prefix("sqlite:") {
        Arc::new(SqliteKv::open(Path::new(path))?)
    } else if url.starts_with("redis://") || url.starts_with("rediss://") {
        Arc::new(RedisKv::new(url)?)
    } else {
        return Err("unknown backend; use `memory`, `sqlite:PATH` or `redis://HOST:PORT`".into());
    })
}

/// An open store: its backend and the prefix of this component's keys in it.
#[doc(hidden)]
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

fn check_ttl(ttl_ms: Option<u64>) -> Result<(), Error> {
    match ttl_ms {
        Some(0) => Err(Error::Invalid("a TTL must be at least 1 ms".into())),
        _ => Ok(()),
    }
}

impl View<'_, Kv> {
    /// Checks `key`, then runs `op` on the store's backend with the key in the component's
    /// namespace, counting the guest as suspended while `op` is pending.
    async fn on_key<T, F: Future<Output = Result<T, KvError>>>(
        &mut self,
        store: &Resource<OpenStore>,
        key: &str,
        op: impl FnOnce(Arc<dyn KvBackend>, String) -> F,
    ) -> wasmtime::Result<Result<T, Error>> {
        let s = self.table.get(store)?;
        let (backend, full_key) = (s.backend.clone(), format!("{}{key}", s.prefix));
        if let Err(e) = check_key(key) {
            return Ok(Err(e));
        }
        Ok(backend_call(&self.caller.counters, Backend::Kv, op(backend, full_key)).await.map_err(Error::from))
    }
}

/// Checks the size of a `get-many` or `set-many`: its count, and the total of its values.
fn check_many(count: usize, bytes: usize) -> Result<(), Error> {
    if count > MAX_MANY {
        return Err(Error::Invalid(format!("{count} keys in one call exceed the limit of {MAX_MANY}")));
    }
    if bytes > MAX_MANY_BYTES {
        return Err(Error::Invalid(format!(
            "values of {bytes} bytes in one call exceed the limit of {MAX_MANY_BYTES}"
        )));
    }
    Ok(())
}

impl Host for View<'_, Kv> {}

impl HostStore for View<'_, Kv> {
    async fn open(&mut self, name: String) -> wasmtime::Result<Result<Resource<OpenStore>, Error>> {
        let Some(backend) = self.grants.stores.get(&name).cloned() else {
            return Ok(Err(Error::AccessDenied(format!(
                "kv store `{name}` is not granted to component `{}`",
                self.caller.component
            ))));
        };
        if *self.state >= MAX_OPEN_STORES {
            return Ok(Err(Error::Invalid(format!(
                "too many open kv stores (the limit is {MAX_OPEN_STORES})"
            ))));
        }
        // Injective tokens with `:` between them: no two (namespace, store) pairs share a
        // prefix, nor does one prefix start another.
        let prefix = format!("{}:{}:", self.grants.namespace, name_token(&name));
        let handle = self.table.push(OpenStore { backend, prefix })?;
        *self.state += 1;
        Ok(Ok(handle))
    }

    async fn get(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        self.on_key(&store, &key, |kv, key| async move { kv.get(&key).await }).await
    }

    async fn set(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> wasmtime::Result<Result<(), Error>> {
        if let Err(e) = check_value(&value) {
            return Ok(Err(e));
        }
        if let Err(e) = check_ttl(ttl_ms) {
            return Ok(Err(e));
        }
        let ttl = ttl_ms.map(Duration::from_millis);
        self.on_key(&store, &key, |kv, key| async move { kv.set(&key, &value, ttl).await }).await
    }

    async fn get_many(
        &mut self,
        store: Resource<OpenStore>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<Option<Vec<u8>>>, Error>> {
        let s = self.table.get(&store)?;
        let backend = s.backend.clone();
        if let Err(e) = check_many(keys.len(), 0) {
            return Ok(Err(e));
        }
        if let Some(e) = keys.iter().find_map(|key| check_key(key).err()) {
            return Ok(Err(e));
        }
        let keys: Vec<String> = keys.iter().map(|key| format!("{}{key}", s.prefix)).collect();
        let values = backend.get_many(&keys, MAX_MANY_BYTES);
        Ok(backend_call(&self.caller.counters, Backend::Kv, values).await.map_err(Error::from))
    }

    async fn set_many(
        &mut self,
        store: Resource<OpenStore>,
        entries: Vec<(String, Vec<u8>)>,
        ttl_ms: Option<u64>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let s = self.table.get(&store)?;
        let backend = s.backend.clone();
        let checked = check_many(entries.len(), entries.iter().map(|(_, v)| v.len()).sum())
            .and_then(|()| entries.iter().try_for_each(|(key, value)| check_key(key).and(check_value(value))))
            .and_then(|()| check_ttl(ttl_ms));
        if let Err(e) = checked {
            return Ok(Err(e));
        }
        let entries: Vec<(String, Vec<u8>)> =
            entries.into_iter().map(|(key, value)| (format!("{}{key}", s.prefix), value)).collect();
        let ttl = ttl_ms.map(Duration::from_millis);
        Ok(backend_call(&self.caller.counters, Backend::Kv, backend.set_many(&entries, ttl))
            .await
            .map_err(Error::from))
    }

    async fn delete(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        self.on_key(&store, &key, |kv, key| async move { kv.delete(&key).await }).await
    }

    async fn exists(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        self.on_key(&store, &key, |kv, key| async move { kv.exists(&key).await }).await
    }

    async fn list_keys(
        &mut self,
        store: Resource<OpenStore>,
        prefix: String,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let s = self.table.get(&store)?;
        let (backend, ns) = (s.backend.clone(), s.prefix.clone());
        if prefix.len() > MAX_KEY {
            return Ok(Err(Error::Invalid(format!("prefix exceeds the key limit of {MAX_KEY} bytes"))));
        }
        let keys =
            backend_call(&self.caller.counters, Backend::Kv, backend.list_keys(&(ns.clone() + &prefix)))
                .await;
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
        self.on_key(&store, &key, |kv, key| async move { kv.increment(&key, delta).await }).await
    }

    async fn compare_and_swap(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<bool, Error>> {
        if let Err(e) = check_value(&value) {
            return Ok(Err(e));
        }
        self.on_key(&store, &key, |kv, key| async move {
            kv.compare_and_swap(&key, expected.as_deref(), &value).await
        })
        .await
    }

    async fn drop(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        *self.state -= 1;
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
        assert!(check_many(MAX_MANY, MAX_MANY_BYTES).is_ok());
        assert!(matches!(check_many(MAX_MANY + 1, 0), Err(Error::Invalid(_))));
        assert!(matches!(check_many(1, MAX_MANY_BYTES + 1), Err(Error::Invalid(_))));
    }
}
