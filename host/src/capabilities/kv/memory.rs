//! The in-memory backend: a map in this process, lost on restart.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::backend::{KvBackend, KvError, add, over_budget, parse_counter};

/// Keys in this process's memory, lost on restart. Keys in a sorted map (for prefix listing); expired entries are removed when touched.
#[derive(Default)]
pub struct MemoryKv {
    map: Mutex<BTreeMap<String, Entry>>,
}

struct Entry {
    value: Vec<u8>,
    expires: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|t| t > now)
    }
}

impl MemoryKv {
    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<String, Entry>, Instant) -> T) -> T {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut map, Instant::now())
    }

    fn live_value<'a>(map: &'a mut BTreeMap<String, Entry>, key: &str, now: Instant) -> Option<&'a Entry> {
        if map.get(key).is_some_and(|e| !e.live(now)) {
            map.remove(key);
        }
        map.get(key)
    }
}

#[async_trait::async_trait]
impl KvBackend for MemoryKv {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.with(|m, now| Self::live_value(m, key, now).map(|e| e.value.clone())))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), KvError> {
        self.with(|m, now| {
            m.insert(key.to_string(), Entry { value: value.to_vec(), expires: ttl.map(|t| now + t) });
        });
        Ok(())
    }

    async fn get_many(&self, keys: &[String], max_bytes: usize) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        self.with(|m, now| {
            let mut total = 0usize;
            keys.iter()
                .map(|key| {
                    let value = Self::live_value(m, key, now).map(|e| e.value.clone());
                    total += value.as_ref().map_or(0, Vec::len);
                    if total > max_bytes { Err(over_budget(max_bytes)) } else { Ok(value) }
                })
                .collect()
        })
    }

    async fn set_many(&self, entries: &[(String, Vec<u8>)], ttl: Option<Duration>) -> Result<(), KvError> {
        self.with(|m, now| {
            for (key, value) in entries {
                m.insert(key.clone(), Entry { value: value.clone(), expires: ttl.map(|t| now + t) });
            }
        });
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<bool, KvError> {
        Ok(self.with(|m, now| m.remove(key).is_some_and(|e| e.live(now))))
    }

    async fn exists(&self, key: &str) -> Result<bool, KvError> {
        Ok(self.with(|m, now| Self::live_value(m, key, now).is_some()))
    }

    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, KvError> {
        Ok(self.with(|m, now| {
            m.retain(|_, e| e.live(now));
            m.range(prefix.to_string()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, _)| k.clone())
                .collect()
        }))
    }

    async fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        self.with(|m, now| {
            let entry = Self::live_value(m, key, now);
            let next = add(key, parse_counter(key, entry.map(|e| e.value.as_slice()))?, delta)?;
            let expires = entry.and_then(|e| e.expires);
            m.insert(key.to_string(), Entry { value: next.to_string().into_bytes(), expires });
            Ok(next)
        })
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool, KvError> {
        Ok(self.with(|m, now| {
            let current = Self::live_value(m, key, now).map(|e| e.value.as_slice());
            if current != expected {
                return false;
            }
            m.insert(key.to_string(), Entry { value: value.to_vec(), expires: None });
            true
        }))
    }

    async fn ping(&self) -> Result<(), KvError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn conformance() {
        super::super::backend::conformance::run(&super::MemoryKv::default(), "ns").await;
    }
}
