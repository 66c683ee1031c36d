//! The key-value backend trait. Keys reaching a backend are already namespaced and checked by
//! the WIT layer (`kv/mod.rs`); backends store them as given.

use std::time::Duration;

/// What a backend operation can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// The operation is invalid for the stored data (e.g. `increment` on a non-integer).
    #[error("{0}")]
    Invalid(String),
    /// The backend failed.
    #[error("{0}")]
    Backend(String),
}

impl crate::metrics::BackendFailure for KvError {
    fn is_backend_failure(&self) -> bool {
        matches!(self, KvError::Backend(_))
    }
}

/// A key-value store backend: in-memory, SQLite or Redis.
#[async_trait::async_trait]
pub trait KvBackend: Send + Sync + 'static {
    /// The value of `key`, if set and not expired.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    /// Sets `key`, expiring after `ttl` if given.
    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), KvError>;
    /// The values of `keys`, in their order, in one round trip and one snapshot; refused with
    /// [`over_budget`] (before more is read) when they total more than `max_bytes`.
    async fn get_many(&self, keys: &[String], max_bytes: usize) -> Result<Vec<Option<Vec<u8>>>, KvError>;
    /// Sets every key of `entries` (in their order, so the last of a repeated key wins),
    /// expiring after `ttl` if given, in one round trip, all or none.
    async fn set_many(&self, entries: &[(String, Vec<u8>)], ttl: Option<Duration>) -> Result<(), KvError>;
    /// Removes `key`; true if it was set.
    async fn delete(&self, key: &str) -> Result<bool, KvError>;
    /// Whether `key` is set.
    async fn exists(&self, key: &str) -> Result<bool, KvError>;
    /// Keys starting with `prefix`, sorted.
    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, KvError>;
    /// Adds `delta` to the decimal integer at `key` (0 when unset); the new value.
    async fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError>;
    /// Sets `key` to `value` if its value is `expected` (`None`: unset); true if set.
    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool, KvError>;
    /// Checks the backend is reachable.
    async fn ping(&self) -> Result<(), KvError>;
}

/// The refusal of a `get_many` whose values total more than `max_bytes`.
pub(crate) fn over_budget(max_bytes: usize) -> KvError {
    KvError::Invalid(format!("the values exceed the limit of {max_bytes} bytes in one call"))
}

/// Parses a stored counter for `increment`.
pub(crate) fn parse_counter(key: &str, bytes: Option<&[u8]>) -> Result<i64, KvError> {
    let Some(bytes) = bytes else { return Ok(0) };
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .ok_or_else(|| KvError::Invalid(format!("the value of `{key}` is not an integer")))
}

/// `current + delta`, or an error on overflow.
pub(crate) fn add(key: &str, current: i64, delta: i64) -> Result<i64, KvError> {
    current.checked_add(delta).ok_or_else(|| KvError::Invalid(format!("incrementing `{key}` overflows")))
}

#[cfg(test)]
pub(crate) mod conformance {
    //! One suite every backend must pass.
    use super::*;

    pub(crate) async fn run(kv: &dyn KvBackend, ns: &str) {
        let k = |s: &str| format!("{ns}:{s}");
        kv.ping().await.unwrap();
        assert_eq!(kv.get(&k("a")).await.unwrap(), None);
        assert!(!kv.exists(&k("a")).await.unwrap());
        kv.set(&k("a"), b"1", None).await.unwrap();
        assert_eq!(kv.get(&k("a")).await.unwrap().as_deref(), Some(&b"1"[..]));
        assert!(kv.exists(&k("a")).await.unwrap());
        kv.set(&k("a"), b"\xff\x00binary", None).await.unwrap();
        assert_eq!(kv.get(&k("a")).await.unwrap().as_deref(), Some(&b"\xff\x00binary"[..]));

        // many keys at once, in their order; a repeated key gets its last value; all expire
        assert_eq!(kv.get_many(&[], 100).await.unwrap(), Vec::<Option<Vec<u8>>>::new());
        kv.set_many(&[], None).await.unwrap();
        let entries = [(k("m1"), b"one".to_vec()), (k("m2"), vec![0, 255]), (k("m1"), b"uno".to_vec())];
        kv.set_many(&entries, None).await.unwrap();
        assert_eq!(
            kv.get_many(&[k("m2"), k("absent"), k("m1"), k("m2")], 7).await.unwrap(),
            vec![Some(vec![0, 255]), None, Some(b"uno".to_vec()), Some(vec![0, 255])]
        );
        // 2 + 3 + 2 bytes: one more than a budget of 6 is refused.
        assert_eq!(kv.get_many(&[k("m2"), k("m1"), k("m2")], 6).await, Err(over_budget(6)));
        kv.set_many(&[(k("m3"), b"x".to_vec()), (k("m4"), b"y".to_vec())], Some(Duration::from_millis(50)))
            .await
            .unwrap();
        assert_eq!(
            kv.get_many(&[k("m3"), k("m4")], 100).await.unwrap(),
            vec![Some(b"x".to_vec()), Some(b"y".to_vec())]
        );
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(kv.get_many(&[k("m3"), k("m4")], 100).await.unwrap(), vec![None, None]);
        for key in ["m1", "m2"] {
            kv.delete(&k(key)).await.unwrap();
        }

        // list by prefix, sorted; other prefixes excluded; glob characters are literal
        for key in ["p/b", "p/a", "q/x", "p*/lit"] {
            kv.set(&k(key), b"v", None).await.unwrap();
        }
        assert_eq!(kv.list_keys(&k("p/")).await.unwrap(), vec![k("p/a"), k("p/b")]);
        assert_eq!(kv.list_keys(&k("p*")).await.unwrap(), vec![k("p*/lit")]);

        // delete
        assert!(kv.delete(&k("p/a")).await.unwrap());
        assert!(!kv.delete(&k("p/a")).await.unwrap());

        // increment
        assert_eq!(kv.increment(&k("n"), 5).await.unwrap(), 5);
        assert_eq!(kv.increment(&k("n"), -7).await.unwrap(), -2);
        assert_eq!(kv.get(&k("n")).await.unwrap().as_deref(), Some(&b"-2"[..]));
        assert!(matches!(kv.increment(&k("a"), 1).await, Err(KvError::Invalid(_))));
        kv.set(&k("big"), i64::MAX.to_string().as_bytes(), None).await.unwrap();
        assert!(matches!(kv.increment(&k("big"), 1).await, Err(KvError::Invalid(_))));

        // compare-and-swap
        assert!(kv.compare_and_swap(&k("c"), None, b"one").await.unwrap());
        assert!(!kv.compare_and_swap(&k("c"), None, b"two").await.unwrap());
        assert!(!kv.compare_and_swap(&k("c"), Some(b"zzz"), b"two").await.unwrap());
        assert!(kv.compare_and_swap(&k("c"), Some(b"one"), b"two").await.unwrap());
        assert_eq!(kv.get(&k("c")).await.unwrap().as_deref(), Some(&b"two"[..]));

        // concurrent increments are atomic
        let race = k("race");
        let incs = (0..50).map(|_| kv.increment(&race, 1));
        futures_util::future::join_all(incs).await.into_iter().for_each(|r| {
            r.unwrap();
        });
        assert_eq!(kv.get(&k("race")).await.unwrap().as_deref(), Some(&b"50"[..]));

        // TTL (a live key with a TTL is there; checking that the 50 ms key exists before it
        // expires would race a loaded machine)
        kv.set(&k("t1"), b"still here", Some(Duration::from_secs(60))).await.unwrap();
        assert!(kv.exists(&k("t1")).await.unwrap());
        assert_eq!(kv.get(&k("t1")).await.unwrap().as_deref(), Some(&b"still here"[..]));
        kv.set(&k("t"), b"soon gone", Some(Duration::from_millis(50))).await.unwrap();
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(kv.get(&k("t")).await.unwrap(), None);
        assert!(!kv.exists(&k("t")).await.unwrap());
        assert!(!kv.list_keys(&k("t")).await.unwrap().contains(&k("t")));
        // setting without TTL clears an earlier TTL
        kv.set(&k("t2"), b"x", Some(Duration::from_millis(50))).await.unwrap();
        kv.set(&k("t2"), b"y", None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(kv.get(&k("t2")).await.unwrap().as_deref(), Some(&b"y"[..]));

        for key in kv.list_keys(&k("")).await.unwrap() {
            kv.delete(&key).await.unwrap();
        }
        assert!(kv.list_keys(&k("")).await.unwrap().is_empty());
    }
}
