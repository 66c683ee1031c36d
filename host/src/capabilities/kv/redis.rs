//! The Redis backend: keys shared by every host that points at the same server.

use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use tokio::sync::OnceCell;

use super::backend::{KvBackend, KvError, over_budget};

/// Sets the key only if its value is as expected; `ARGV[1]` says whether a value is expected.
const CAS: &str = r"
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '0' then
    if current then return 0 end
elseif current ~= ARGV[2] then
    return 0
end
redis.call('SET', KEYS[1], ARGV[3])
return 1
";

/// The values of `KEYS` (`MGET`), or -1 if they total more than `ARGV[1]` bytes.
const GET_MANY: &str = r"
local total, budget = 0, tonumber(ARGV[1])
for _, key in ipairs(KEYS) do
    total = total + redis.call('STRLEN', key)
    if total > budget then return -1 end
end
return redis.call('MGET', unpack(KEYS))
";

/// Keys in a Redis server, shared by every host that uses it.
pub struct RedisKv {
    client: redis::Client,
    conn: OnceCell<ConnectionManager>,
    cas: redis::Script,
    get_many: redis::Script,
}

impl RedisKv {
    /// A backend for `url` (`redis://host:port[/db]`); connects on first use.
    pub fn new(url: &str) -> Result<RedisKv, String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        Ok(RedisKv {
            client,
            conn: OnceCell::new(),
            cas: redis::Script::new(CAS),
            get_many: redis::Script::new(GET_MANY),
        })
    }

    async fn conn(&self) -> Result<ConnectionManager, KvError> {
        self.conn
            .get_or_try_init(|| super::super::redis_connection(&self.client))
            .await
            .cloned()
            .map_err(backend)
    }
}

fn backend(e: redis::RedisError) -> KvError {
    KvError::Backend(format!("redis: {e}"))
}

/// `ttl` in whole milliseconds for `PSETEX`, which refuses 0.
fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Escapes the glob characters of a `SCAN MATCH` pattern.
fn glob_escape(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^' | '-') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[async_trait::async_trait]
impl KvBackend for RedisKv {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.conn().await?.get(key).await.map_err(backend)
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), KvError> {
        let mut conn = self.conn().await?;
        match ttl {
            Some(ttl) => conn.pset_ex(key, value, ttl_ms(ttl)).await.map_err(backend),
            None => conn.set(key, value).await.map_err(backend),
        }
    }

    async fn get_many(&self, keys: &[String], max_bytes: usize) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // One script: the values' sizes summed and `MGET`, atomically; nothing past the budget
        // is sent.
        let reply: redis::Value = self
            .get_many
            .key(keys)
            .arg(max_bytes)
            .invoke_async(&mut self.conn().await?)
            .await
            .map_err(backend)?;
        match reply {
            redis::Value::Int(-1) => Err(over_budget(max_bytes)),
            reply => redis::from_redis_value(reply).map_err(|e| KvError::Backend(format!("redis: {e}"))),
        }
    }

    async fn set_many(&self, entries: &[(String, Vec<u8>)], ttl: Option<Duration>) -> Result<(), KvError> {
        if entries.is_empty() {
            return Ok(());
        }
        // One `MULTI`/`EXEC`: all or none.
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (key, value) in entries {
            match ttl {
                Some(ttl) => pipe.pset_ex(key, value, ttl_ms(ttl)).ignore(),
                None => pipe.set(key, value).ignore(),
            };
        }
        pipe.query_async::<()>(&mut self.conn().await?).await.map_err(backend)
    }

    async fn delete(&self, key: &str) -> Result<bool, KvError> {
        let n: u64 = self.conn().await?.del(key).await.map_err(backend)?;
        Ok(n > 0)
    }

    async fn exists(&self, key: &str) -> Result<bool, KvError> {
        self.conn().await?.exists(key).await.map_err(backend)
    }

    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, KvError> {
        let mut conn = self.conn().await?;
        let pattern = format!("{}*", glob_escape(prefix));
        let mut keys = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(backend)?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    async fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        let result: redis::RedisResult<i64> = self.conn().await?.incr(key, delta).await;
        result.map_err(|e| match e.kind() {
            redis::ErrorKind::Server(_) | redis::ErrorKind::UnexpectedReturnType => {
                KvError::Invalid(format!("cannot increment `{key}`: {e}"))
            }
            _ => backend(e),
        })
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool, KvError> {
        let mut conn = self.conn().await?;
        let swapped: i64 = self
            .cas
            .key(key)
            .arg(if expected.is_some() { "1" } else { "0" })
            .arg(expected.unwrap_or_default())
            .arg(value)
            .invoke_async(&mut conn)
            .await
            .map_err(backend)?;
        Ok(swapped == 1)
    }

    async fn ping(&self) -> Result<(), KvError> {
        let _: String = redis::cmd("PING").query_async(&mut self.conn().await?).await.map_err(backend)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn conformance() {
        let Some(url) = mixio_tests::services::redis() else { return };
        let kv = super::RedisKv::new(&url).unwrap();
        let ns = mixio_tests::services::unique_name("kvtest");
        super::super::backend::conformance::run(&kv, &ns).await;
    }

    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(super::glob_escape("a*b?[c]"), r"a\*b\?\[c\]");
    }
}
