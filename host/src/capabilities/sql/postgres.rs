//! The PostgreSQL backend: tokio-postgres with a deadpool connection pool and a per-connection
//! cache of prepared statements.
//!
//! Values are bound with the type PostgreSQL expects for each parameter: an `integer` becomes
//! an `int2`/`int4`/`int8`/`float`/`numeric`-compatible value as needed, `text` binds to
//! text-like columns (and `json`), `blob` to `bytea`. Columns of types outside the common
//! subset (timestamps, numeric, uuid, ...) are read as text when PostgreSQL can send them as
//! such; otherwise cast them in the query (`created_at::text`).

use std::error::Error as _;
use std::str::FromStr;

use bytes::BytesMut;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{NoTls, Row};

use super::backend::{Budget, SqlBackend, SqlConnection, SqlError};
use crate::capabilities::bindings::mixio::io::sql::{Rows, Value};
use crate::error::BoxError;

/// Connections per database unless the URL says otherwise (`?pool_size=N`).
pub const DEFAULT_POOL_SIZE: usize = 16;

/// A PostgreSQL database.
pub struct PostgresDb {
    pool: Pool,
}

impl PostgresDb {
    /// A pool for `url` (`postgres://user[:password]@host[:port]/db[?pool_size=N&...]`);
    /// connects on first use.
    pub fn new(url: &str) -> Result<PostgresDb, String> {
        let (url, pool_size) = take_pool_size(url)?;
        let config = tokio_postgres::Config::from_str(&url).map_err(|e| e.to_string())?;
        let manager =
            Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(pool_size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(std::time::Duration::from_secs(30)))
            .create_timeout(Some(std::time::Duration::from_secs(5)))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(PostgresDb { pool })
    }
}

/// Removes mixio's own `pool_size` parameter from the URL.
fn take_pool_size(url: &str) -> Result<(String, usize), String> {
    let Some((base, query)) = url.split_once('?') else { return Ok((url.to_string(), DEFAULT_POOL_SIZE)) };
    let mut size = DEFAULT_POOL_SIZE;
    let mut rest = Vec::new();
    for pair in query.split('&') {
        match pair.strip_prefix("pool_size=") {
            Some(n) => {
                size = n
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("pool_size must be a positive number, got `{n}`"))?
            }
            None => rest.push(pair),
        }
    }
    let url = if rest.is_empty() { base.to_string() } else { format!("{base}?{}", rest.join("&")) };
    Ok((url, size))
}

#[async_trait::async_trait]
impl SqlBackend for PostgresDb {
    async fn connection(&self) -> Result<Box<dyn SqlConnection>, SqlError> {
        let client = self.pool.get().await.map_err(|e| SqlError::Backend(format!("postgres: {e}")))?;
        Ok(Box::new(PgConnection { client: Some(client), in_transaction: false }))
    }

    async fn ping(&self) -> Result<(), SqlError> {
        let client = self.pool.get().await.map_err(|e| SqlError::Backend(format!("postgres: {e}")))?;
        client.simple_query("SELECT 1").await.map_err(classify)?;
        Ok(())
    }
}

struct PgConnection {
    client: Option<Object>,
    in_transaction: bool,
}

impl PgConnection {
    fn client(&self) -> &Object {
        self.client.as_ref().expect("present until dropped")
    }

    async fn prepare(&self, statement: &str) -> Result<tokio_postgres::Statement, SqlError> {
        self.client().prepare_cached(statement).await.map_err(classify)
    }
}

impl Drop for PgConnection {
    fn drop(&mut self) {
        if self.in_transaction
            && let Some(client) = self.client.take()
        {
            // Closing the connection makes the server roll the transaction back; it must not
            // go back to the pool with the transaction open.
            drop(Object::take(client));
        }
    }
}

#[async_trait::async_trait]
impl SqlConnection for PgConnection {
    async fn execute(&mut self, statement: &str, params: &[Value]) -> Result<u64, SqlError> {
        let stmt = self.prepare(statement).await?;
        let params = PgValue::list(params);
        let result = self.client().execute(&stmt, &PgValue::refs(&params)).await;
        match result {
            // PostgreSQL's `CREATE ... IF NOT EXISTS` is not safe against itself: when two
            // sessions create the same object at once, one fails on the system catalogs' unique
            // index instead of finding the object. Outside a transaction the statement has no
            // effect then, so it runs again and now finds the object.
            Err(e) if !self.in_transaction && lost_create_race(statement, &e) => {
                self.client().execute(&stmt, &PgValue::refs(&params)).await.map_err(classify)
            }
            result => result.map_err(classify),
        }
    }

    async fn query(&mut self, statement: &str, params: &[Value]) -> Result<Rows, SqlError> {
        let stmt = self.prepare(statement).await?;
        let params = PgValue::list(params);
        let rows = self.client().query(&stmt, &PgValue::refs(&params)).await.map_err(classify)?;
        let columns = stmt.columns().iter().map(|c| c.name().to_string()).collect();
        let mut budget = Budget::new();
        let rows = rows.iter().map(|row| decode_row(row, &mut budget)).collect::<Result<_, _>>()?;
        Ok(Rows { columns, rows })
    }

    async fn begin(&mut self) -> Result<(), SqlError> {
        self.client().batch_execute("BEGIN").await.map_err(classify)?;
        self.in_transaction = true;
        Ok(())
    }

    async fn commit(&mut self) -> Result<(), SqlError> {
        let result = self.client().batch_execute("COMMIT").await.map_err(classify);
        self.in_transaction = false;
        result
    }

    async fn rollback(&mut self) -> Result<(), SqlError> {
        let result = self.client().batch_execute("ROLLBACK").await.map_err(classify);
        self.in_transaction = false;
        result
    }
}

fn decode_row(row: &Row, budget: &mut Budget) -> Result<Vec<Value>, SqlError> {
    (0..row.len())
        .map(|i| {
            let ty = row.columns()[i].type_();
            let value = decode(row, i, ty).map_err(|e| {
                SqlError::InvalidQuery(format!(
                    "column `{}` has type {ty}, which mixio cannot read ({e}); cast it in the query, e.g. `::text`",
                    row.columns()[i].name()
                ))
            })?;
            budget.take(&value)?;
            Ok(value)
        })
        .collect()
}

fn decode(row: &Row, i: usize, ty: &Type) -> Result<Value, tokio_postgres::Error> {
    fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Value) -> Value {
        v.map_or(Value::Null, f)
    }
    Ok(match *ty {
        Type::BOOL => opt(row.try_get::<_, Option<bool>>(i)?, Value::Boolean),
        Type::INT2 => opt(row.try_get::<_, Option<i16>>(i)?, |n| Value::Integer(n.into())),
        Type::INT4 => opt(row.try_get::<_, Option<i32>>(i)?, |n| Value::Integer(n.into())),
        Type::INT8 => opt(row.try_get::<_, Option<i64>>(i)?, Value::Integer),
        Type::OID => opt(row.try_get::<_, Option<u32>>(i)?, |n| Value::Integer(n.into())),
        Type::FLOAT4 => opt(row.try_get::<_, Option<f32>>(i)?, |f| Value::Real(f.into())),
        Type::FLOAT8 => opt(row.try_get::<_, Option<f64>>(i)?, Value::Real),
        Type::BYTEA => opt(row.try_get::<_, Option<Vec<u8>>>(i)?, Value::Blob),
        // `void`, the result of functions such as `pg_sleep`, carries no value.
        Type::VOID => Value::Null,
        _ => opt(row.try_get::<_, Option<String>>(i)?, Value::Text),
    })
}

/// A parameter, converted to the type PostgreSQL inferred for it.
#[derive(Debug)]
struct PgValue(Value);

impl PgValue {
    fn list(params: &[Value]) -> Vec<PgValue> {
        params.iter().cloned().map(PgValue).collect()
    }

    fn refs(params: &[PgValue]) -> Vec<&(dyn ToSql + Sync)> {
        params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
    }
}

impl ToSql for PgValue {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let mismatch =
            |what: &str| -> BoxError { format!("cannot bind {what} to a parameter of type {ty}").into() };
        match &self.0 {
            Value::Null => Ok(IsNull::Yes),
            Value::Boolean(b) => match *ty {
                Type::BOOL => b.to_sql(ty, out),
                _ => Err(mismatch("a boolean")),
            },
            Value::Integer(n) => match *ty {
                Type::INT2 => i16::try_from(*n)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*n)?.to_sql(ty, out),
                Type::INT8 => n.to_sql(ty, out),
                Type::OID => u32::try_from(*n)?.to_sql(ty, out),
                Type::FLOAT4 => (*n as f32).to_sql(ty, out),
                Type::FLOAT8 => (*n as f64).to_sql(ty, out),
                Type::BOOL => (*n != 0).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    n.to_string().to_sql(ty, out)
                }
                _ => Err(mismatch("an integer")),
            },
            Value::Real(f) => match *ty {
                Type::FLOAT4 => (*f as f32).to_sql(ty, out),
                Type::FLOAT8 => f.to_sql(ty, out),
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::UNKNOWN => f.to_string().to_sql(ty, out),
                _ => Err(mismatch("a real")),
            },
            Value::Text(s) => match *ty {
                Type::JSONB => {
                    out.extend_from_slice(&[1]);
                    out.extend_from_slice(s.as_bytes());
                    Ok(IsNull::No)
                }
                Type::JSON => {
                    out.extend_from_slice(s.as_bytes());
                    Ok(IsNull::No)
                }
                Type::BYTEA => s.as_bytes().to_sql(ty, out),
                _ if <&str as ToSql>::accepts(ty) => s.as_str().to_sql(ty, out),
                _ => Err(mismatch("text")),
            },
            Value::Blob(b) => match *ty {
                Type::BYTEA => b.as_slice().to_sql(ty, out),
                _ => Err(mismatch("a blob")),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// Whether `e` is a `CREATE ... IF NOT EXISTS` losing a race with the same statement in another
/// session: a unique violation in the catalogs, or the object created in between.
fn lost_create_race(statement: &str, e: &tokio_postgres::Error) -> bool {
    let Some(db) = e.as_db_error() else { return false };
    let words: Vec<String> = statement.split_whitespace().take(12).map(str::to_ascii_uppercase).collect();
    let if_not_exists = words.windows(3).any(|w| w == ["IF", "NOT", "EXISTS"]);
    words.first().is_some_and(|w| w == "CREATE")
        && if_not_exists
        && matches!(db.code().code(), "23505" | "42P07" | "42710")
}

/// Maps a PostgreSQL error to what the guest sees, by SQLSTATE class.
fn classify(e: tokio_postgres::Error) -> SqlError {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        let message = match db.detail() {
            Some(detail) => format!("{}: {detail}", db.message()),
            None => db.message().to_string(),
        };
        return match &code[..2] {
            "23" => SqlError::Constraint(message),
            "42" | "22" | "0A" | "2B" | "25" => SqlError::InvalidQuery(message),
            _ => SqlError::Backend(format!("postgres: {message}")),
        };
    }
    // Parameters that could not be converted are the statement's fault.
    if e.source()
        .is_some_and(|s| s.to_string().starts_with("cannot bind") || s.is::<std::num::TryFromIntError>())
    {
        return SqlError::InvalidQuery(format!(
            "{e}: {}",
            e.source().map(ToString::to_string).unwrap_or_default()
        ));
    }
    SqlError::Backend(format!("postgres: {e}"))
}

#[cfg(test)]
mod tests {
    use super::SqlBackend;

    #[test]
    fn pool_size_is_taken_from_the_url() {
        assert_eq!(
            super::take_pool_size("postgres://u@h/db?pool_size=5&options=x").unwrap(),
            ("postgres://u@h/db?options=x".to_string(), 5)
        );
        assert_eq!(super::take_pool_size("postgres://u@h/db").unwrap().1, super::DEFAULT_POOL_SIZE);
        assert!(super::take_pool_size("postgres://u@h/db?pool_size=0").is_err());
    }

    #[tokio::test]
    async fn conformance() {
        let Some(url) = mixio_tests::services::postgres() else { return };
        let db = super::PostgresDb::new(&url).unwrap();
        let table = mixio_tests::services::unique_name("conformance");
        super::super::backend::conformance::run(&db, &table).await;
    }

    #[tokio::test]
    async fn create_if_not_exists_at_once_from_many_connections() {
        let Some(url) = mixio_tests::services::postgres() else { return };
        let db = super::PostgresDb::new(&url).unwrap();
        for round in 0..10 {
            let table = mixio_tests::services::unique_name(&format!("race{round}"));
            let statement = format!("CREATE TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY)");
            let mut connections = Vec::new();
            for _ in 0..8 {
                connections.push(db.connection().await.unwrap());
            }
            let results =
                futures_util::future::join_all(connections.iter_mut().map(|c| c.execute(&statement, &[])))
                    .await;
            for result in results {
                assert!(result.is_ok(), "round {round}: {result:?}");
            }
            connections[0].execute(&format!("DROP TABLE {table}"), &[]).await.unwrap();
        }
    }
}
