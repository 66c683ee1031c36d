//! Key-value stores: plain blocking calls; the host suspends the guest while the backend
//! (in-memory, SQLite or Redis, as the host configures) answers.
//!
//! ```no_run
//! let store = mixio::kv::Store::open("default")?;
//! let hits = store.increment("hits", 1)?;
//! store.set("last-user", "ada")?;
//! store.set_with_ttl("session", b"token", std::time::Duration::from_secs(60))?;
//! assert_eq!(store.get_string("last-user")?.as_deref(), Some("ada"));
//! # Ok::<(), mixio::Error>(())
//! ```
//!
//! A component sees only its own keys (or those of the namespace it shares), in the stores it
//! is granted; opening any other store is [`Error::AccessDenied`].

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;

/// An open key-value store.
pub struct Store(crate::sys::Store);

impl Store {
    /// Opens the store called `name`.
    pub fn open(name: &str) -> Result<Store, Error> {
        Ok(Store(crate::sys::kv_open(name)?))
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(crate::sys::kv_get(&self.0, key)?)
    }

    /// The value of `key` as text, if set.
    pub fn get_string(&self, key: &str) -> Result<Option<String>, Error> {
        self.get(key)?
            .map(|v| String::from_utf8(v).map_err(|_| Error::InvalidUtf8("the stored value")))
            .transpose()
    }

    /// The value of `key` parsed as JSON, if set.
    pub fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        self.get(key)?.map(|v| serde_json::from_slice(&v).map_err(|e| Error::Json(e.to_string()))).transpose()
    }

    /// Sets `key` to `value`.
    pub fn set(&self, key: &str, value: impl AsRef<[u8]>) -> Result<(), Error> {
        Ok(crate::sys::kv_set(&self.0, key, value.as_ref(), None)?)
    }

    /// Sets `key` to `value`, expiring after `ttl`.
    pub fn set_with_ttl(&self, key: &str, value: impl AsRef<[u8]>, ttl: Duration) -> Result<(), Error> {
        Ok(crate::sys::kv_set(&self.0, key, value.as_ref(), Some(ttl_ms(ttl)))?)
    }

    /// Sets `key` to `value` serialized as JSON.
    pub fn set_json<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), Error> {
        let bytes = serde_json::to_vec(value).map_err(|e| Error::Json(e.to_string()))?;
        self.set(key, bytes)
    }

    /// The values of `keys`, in their order (`None` where a key is not set), in one call to
    /// the host: at most 256 keys, whose values total at most 16 MiB.
    ///
    /// ```no_run
    /// let store = mixio::kv::Store::open("default")?;
    /// store.set_many(&[("a", "1"), ("b", "2")])?;
    /// assert_eq!(store.get_many(&["a", "b", "c"])?, [Some(b"1".to_vec()), Some(b"2".to_vec()), None]);
    /// # Ok::<(), mixio::Error>(())
    /// ```
    pub fn get_many(&self, keys: &[impl AsRef<str>]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        let keys: Vec<String> = keys.iter().map(|k| k.as_ref().to_string()).collect();
        Ok(crate::sys::kv_get_many(&self.0, &keys)?)
    }

    /// Sets each key of `entries` to its value (a key given twice gets its last value), in one
    /// call to the host, all or none: at most 256 entries, whose values total at most 16 MiB.
    pub fn set_many(&self, entries: &[(impl AsRef<str>, impl AsRef<[u8]>)]) -> Result<(), Error> {
        Ok(crate::sys::kv_set_many(&self.0, &owned(entries), None)?)
    }

    /// [`Store::set_many`], each key expiring after `ttl`.
    pub fn set_many_with_ttl(
        &self,
        entries: &[(impl AsRef<str>, impl AsRef<[u8]>)],
        ttl: Duration,
    ) -> Result<(), Error> {
        Ok(crate::sys::kv_set_many(&self.0, &owned(entries), Some(ttl_ms(ttl)))?)
    }

    /// Removes `key`; true if it was set.
    pub fn delete(&self, key: &str) -> Result<bool, Error> {
        Ok(crate::sys::kv_delete(&self.0, key)?)
    }

    /// Whether `key` is set.
    pub fn exists(&self, key: &str) -> Result<bool, Error> {
        Ok(crate::sys::kv_exists(&self.0, key)?)
    }

    /// The keys starting with `prefix`, sorted.
    pub fn list_keys(&self, prefix: &str) -> Result<Vec<String>, Error> {
        Ok(crate::sys::kv_list_keys(&self.0, prefix)?)
    }

    /// Atomically adds `delta` to the integer at `key` (0 when unset); the new value.
    pub fn increment(&self, key: &str, delta: i64) -> Result<i64, Error> {
        Ok(crate::sys::kv_increment(&self.0, key, delta)?)
    }

    /// Atomically sets `key` to `value` if its current value is `expected` (`None`: unset);
    /// true if it was set.
    pub fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<bool, Error> {
        Ok(crate::sys::kv_compare_and_swap(&self.0, key, expected, value.as_ref())?)
    }
}

/// `ttl` in whole milliseconds, as the host takes it.
fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)
}

fn owned(entries: &[(impl AsRef<str>, impl AsRef<[u8]>)]) -> Vec<(String, Vec<u8>)> {
    entries.iter().map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_vec())).collect()
}
