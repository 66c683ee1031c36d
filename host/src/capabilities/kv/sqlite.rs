//! The SQLite backend: one table in a database file, so keys survive restarts. The embedded
//! default.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::backend::{KvBackend, KvError, add, over_budget, parse_counter};
use crate::sqlite::SqlitePool;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS mixio_kv (
    key TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL,
    expires_at INTEGER
) WITHOUT ROWID;";

/// Connections at once: SQLite has one writer, so a few readers beside it are plenty.
const POOL_SIZE: usize = 4;

/// Keys in a table of a SQLite database file.
pub struct SqliteKv {
    pool: Arc<SqlitePool>,
}

impl SqliteKv {
    /// Opens (creating if needed) the database file at `path`.
    pub fn open(path: &Path) -> Result<SqliteKv, String> {
        Ok(SqliteKv { pool: SqlitePool::open(path, POOL_SIZE, SCHEMA)? })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut rusqlite::Connection, i64) -> rusqlite::Result<Result<T, KvError>> + Send + 'static,
    ) -> Result<T, KvError> {
        self.pool
            .run(move |conn| f(conn, now_ms()))
            .await
            .map_err(KvError::Backend)?
            .map_err(|e| KvError::Backend(e.to_string()))?
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn expiry(now: i64, ttl: Option<Duration>) -> Option<i64> {
    ttl.map(|t| now.saturating_add(i64::try_from(t.as_millis()).unwrap_or(i64::MAX)))
}

/// Sets a key's value and expiry, whether it exists or not.
const UPSERT: &str = "INSERT INTO mixio_kv (key, value, expires_at) VALUES (?1, ?2, ?3)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at";

const LIVE: &str = "(expires_at IS NULL OR expires_at > ?2)";

#[async_trait::async_trait]
impl KvBackend for SqliteKv {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let key = key.to_string();
        self.run(move |c, now| {
            let sql = format!("SELECT value FROM mixio_kv WHERE key = ?1 AND {LIVE}");
            Ok(Ok(c.query_row(&sql, params![key, now], |r| r.get(0)).optional()?))
        })
        .await
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), KvError> {
        let (key, value) = (key.to_string(), value.to_vec());
        self.run(move |c, now| {
            c.execute(UPSERT, params![key, value, expiry(now, ttl)])?;
            Ok(Ok(()))
        })
        .await
    }

    async fn get_many(&self, keys: &[String], max_bytes: usize) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        let keys = keys.to_vec();
        self.run(move |c, now| {
            // One read transaction: one snapshot of the keys.
            let tx = c.transaction_with_behavior(TransactionBehavior::Deferred)?;
            let sql = format!("SELECT value FROM mixio_kv WHERE key = ?1 AND {LIVE}");
            let mut statement = tx.prepare_cached(&sql)?;
            let (mut values, mut total) = (Vec::with_capacity(keys.len()), 0usize);
            for key in &keys {
                let value: Option<Vec<u8>> =
                    statement.query_row(params![key, now], |r| r.get(0)).optional()?;
                total += value.as_ref().map_or(0, Vec::len);
                if total > max_bytes {
                    return Ok(Err(over_budget(max_bytes)));
                }
                values.push(value);
            }
            Ok(Ok(values))
        })
        .await
    }

    async fn set_many(&self, entries: &[(String, Vec<u8>)], ttl: Option<Duration>) -> Result<(), KvError> {
        let entries = entries.to_vec();
        self.run(move |c, now| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            {
                let mut statement = tx.prepare_cached(UPSERT)?;
                for (key, value) in &entries {
                    statement.execute(params![key, value, expiry(now, ttl)])?;
                }
            }
            tx.commit()?;
            Ok(Ok(()))
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<bool, KvError> {
        let key = key.to_string();
        self.run(move |c, now| {
            let live =
                c.execute(&format!("DELETE FROM mixio_kv WHERE key = ?1 AND {LIVE}"), params![key, now])?;
            c.execute("DELETE FROM mixio_kv WHERE key = ?1", params![key])?;
            Ok(Ok(live > 0))
        })
        .await
    }

    async fn exists(&self, key: &str) -> Result<bool, KvError> {
        Ok(self.get(key).await?.is_some())
    }

    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, KvError> {
        let prefix = prefix.to_string();
        self.run(move |c, now| {
            let sql = format!(
                "SELECT key FROM mixio_kv WHERE key >= ?1 AND substr(key, 1, length(?1)) = ?1 AND {LIVE} ORDER BY key"
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let keys = stmt.query_map(params![prefix, now], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
            Ok(Ok(keys))
        })
        .await
    }

    async fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        let key = key.to_string();
        self.run(move |c, now| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let current: Option<(Vec<u8>, Option<i64>)> = tx
                .query_row(
                    &format!("SELECT value, expires_at FROM mixio_kv WHERE key = ?1 AND {LIVE}"),
                    params![key, now],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let next = match parse_counter(&key, current.as_ref().map(|(v, _)| v.as_slice()))
                .and_then(|n| add(&key, n, delta))
            {
                Ok(next) => next,
                Err(e) => return Ok(Err(e)),
            };
            tx.execute(UPSERT, params![key, next.to_string().into_bytes(), current.and_then(|(_, e)| e)])?;
            tx.commit()?;
            Ok(Ok(next))
        })
        .await
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool, KvError> {
        let (key, expected, value) = (key.to_string(), expected.map(<[u8]>::to_vec), value.to_vec());
        self.run(move |c, now| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let current: Option<Vec<u8>> = tx
                .query_row(
                    &format!("SELECT value FROM mixio_kv WHERE key = ?1 AND {LIVE}"),
                    params![key, now],
                    |r| r.get(0),
                )
                .optional()?;
            if current != expected {
                return Ok(Ok(false));
            }
            tx.execute(
                "INSERT INTO mixio_kv (key, value, expires_at) VALUES (?1, ?2, NULL)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = NULL",
                params![key, value],
            )?;
            tx.commit()?;
            Ok(Ok(true))
        })
        .await
    }

    async fn ping(&self) -> Result<(), KvError> {
        self.run(|c, _| Ok(Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))).await
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn conformance_and_persistence() {
        let dir = std::env::temp_dir().join(format!("mixio-kv-sqlite-{}", std::process::id()));
        let path = dir.join("nested/kv.db");
        let kv = super::SqliteKv::open(&path).unwrap();
        super::super::backend::conformance::run(&kv, "ns").await;

        use super::KvBackend;
        kv.set("ns:kept", b"yes", None).await.unwrap();
        drop(kv);
        let reopened = super::SqliteKv::open(&path).unwrap();
        assert_eq!(
            reopened.get("ns:kept").await.unwrap().as_deref(),
            Some(&b"yes"[..]),
            "survives a restart"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
