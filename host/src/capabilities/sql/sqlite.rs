//! The SQLite backend: a database file under the app's data directory, in WAL mode, pooled.
//! The embedded default.

use std::path::Path;
use std::sync::Arc;

use rusqlite::types::{ToSqlOutput, Value as SqliteValue, ValueRef};
use rusqlite::{ErrorCode, params_from_iter};

use super::backend::{Budget, SqlBackend, SqlConnection, SqlError};
use crate::capabilities::bindings::mixio::io::sql::{Rows, Value};
use crate::sqlite::{PooledConnection, SqlitePool};

/// A SQLite database file.
pub struct SqliteDb {
    pool: Arc<SqlitePool>,
}

impl SqliteDb {
    /// Opens (creating if needed) the database file at `path` with a pool of `size`
    /// connections.
    pub fn open(path: &Path, size: usize) -> Result<SqliteDb, String> {
        Ok(SqliteDb { pool: SqlitePool::open(path, size, "")? })
    }
}

#[async_trait::async_trait]
impl SqlBackend for SqliteDb {
    async fn connection(&self) -> Result<Box<dyn SqlConnection>, SqlError> {
        Ok(Box::new(SqliteConnection(self.pool.checkout().await.map_err(SqlError::Backend)?)))
    }

    async fn ping(&self) -> Result<(), SqlError> {
        self.pool
            .run(|c| c.query_row("SELECT 1", [], |_| Ok(())))
            .await
            .map_err(SqlError::Backend)?
            .map_err(classify)
    }
}

struct SqliteConnection(PooledConnection);

impl SqliteConnection {
    async fn batch(&mut self, sql: &'static str) -> Result<(), SqlError> {
        self.0.run(move |c| c.execute_batch(sql)).await.map_err(SqlError::Backend)?.map_err(classify)
    }
}

#[async_trait::async_trait]
impl SqlConnection for SqliteConnection {
    async fn execute(&mut self, statement: &str, params: &[Value]) -> Result<u64, SqlError> {
        let sql = translate_placeholders(statement);
        let params = bind(params);
        self.0
            .run(move |c| {
                let mut stmt = c.prepare_cached(&sql)?;
                if stmt.column_count() == 0 {
                    return stmt.execute(params_from_iter(params)).map(|n| n as u64);
                }
                // A statement that returns rows (e.g. `INSERT ... RETURNING`): run it through.
                let mut rows = stmt.query(params_from_iter(params))?;
                while rows.next()?.is_some() {}
                drop(rows);
                Ok(c.changes())
            })
            .await
            .map_err(SqlError::Backend)?
            .map_err(classify)
    }

    async fn query(&mut self, statement: &str, params: &[Value]) -> Result<Rows, SqlError> {
        let sql = translate_placeholders(statement);
        let params = bind(params);
        self.0
            .run(move |c| {
                let mut stmt = c.prepare_cached(&sql).map_err(classify)?;
                let columns: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
                let mut rows = stmt.query(params_from_iter(params)).map_err(classify)?;
                let mut out = Vec::new();
                let mut budget = Budget::new();
                while let Some(row) = rows.next().map_err(classify)? {
                    let mut values = Vec::with_capacity(columns.len());
                    for i in 0..columns.len() {
                        let value = match row.get_ref(i).map_err(classify)? {
                            ValueRef::Null => Value::Null,
                            ValueRef::Integer(n) => Value::Integer(n),
                            ValueRef::Real(f) => Value::Real(f),
                            ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                            ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                        };
                        budget.take(&value)?;
                        values.push(value);
                    }
                    out.push(values);
                }
                Ok(Rows { columns, rows: out })
            })
            .await
            .map_err(SqlError::Backend)?
    }

    async fn begin(&mut self) -> Result<(), SqlError> {
        self.batch("BEGIN").await
    }

    async fn commit(&mut self) -> Result<(), SqlError> {
        self.batch("COMMIT").await
    }

    async fn rollback(&mut self) -> Result<(), SqlError> {
        self.batch("ROLLBACK").await
    }
}

fn bind(params: &[Value]) -> Vec<ToSqlOutput<'static>> {
    params
        .iter()
        .map(|v| {
            ToSqlOutput::Owned(match v {
                Value::Null => SqliteValue::Null,
                Value::Boolean(b) => SqliteValue::Integer(i64::from(*b)),
                Value::Integer(n) => SqliteValue::Integer(*n),
                Value::Real(f) => SqliteValue::Real(*f),
                Value::Text(s) => SqliteValue::Text(s.clone()),
                Value::Blob(b) => SqliteValue::Blob(b.clone()),
            })
        })
        .collect()
}

/// Maps a SQLite error to what the guest sees.
fn classify(e: rusqlite::Error) -> SqlError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            ErrorCode::ConstraintViolation => SqlError::Constraint(e.to_string()),
            ErrorCode::Unknown
            | ErrorCode::TypeMismatch
            | ErrorCode::ParameterOutOfRange
            | ErrorCode::TooBig => SqlError::InvalidQuery(e.to_string()),
            _ => SqlError::Backend(e.to_string()),
        },
        rusqlite::Error::SqlInputError { .. }
        | rusqlite::Error::InvalidParameterCount(..)
        | rusqlite::Error::InvalidParameterName(_)
        | rusqlite::Error::MultipleStatement
        | rusqlite::Error::InvalidColumnIndex(_) => SqlError::InvalidQuery(e.to_string()),
        _ => SqlError::Backend(e.to_string()),
    }
}

/// Rewrites `$N` placeholders to SQLite's numbered `?N`, leaving string literals, quoted
/// identifiers and comments alone. (SQLite would read `$1` as a *named* parameter, numbered by
/// first appearance, so `$2 ... $1` would bind in the wrong order.)
pub(crate) fn translate_placeholders(sql: &str) -> String {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'\'' | b'"' | b'`' => {
                let end = bytes[i + 1..].iter().position(|&b| b == c).map_or(bytes.len(), |p| i + 1 + p + 1);
                out.push_str(&sql[i..end]);
                i = end;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                let end = bytes[i..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |p| i + p);
                out.push_str(&sql[i..end]);
                i = end;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let end = sql[i + 2..].find("*/").map_or(bytes.len(), |p| i + 2 + p + 2);
                out.push_str(&sql[i..end]);
                i = end;
            }
            b'$' if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                out.push('?');
                i += 1;
            }
            _ => {
                let ch = sql[i..].chars().next().expect("in bounds");
                out.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::translate_placeholders as t;

    #[test]
    fn placeholders_are_translated_outside_literals() {
        assert_eq!(t("SELECT * FROM t WHERE a = $2 AND b = $1"), "SELECT * FROM t WHERE a = ?2 AND b = ?1");
        assert_eq!(t("SELECT '$1', \"$2\" -- $3\n, $4 /* $5 */"), "SELECT '$1', \"$2\" -- $3\n, ?4 /* $5 */");
        assert_eq!(t("SELECT 'it''s $1', $10"), "SELECT 'it''s $1', ?10");
        assert_eq!(t("SELECT 'é', $1"), "SELECT 'é', ?1");
        assert_eq!(t("SELECT $ , $a"), "SELECT $ , $a");
    }

    #[tokio::test]
    async fn conformance() {
        let dir = std::env::temp_dir().join(format!("mixio-sql-sqlite-{}", std::process::id()));
        let db = super::SqliteDb::open(&dir.join("app.db"), 4).unwrap();
        super::super::backend::conformance::run(&db, "conformance").await;
        std::fs::remove_dir_all(dir).unwrap();
    }
}
