//! The SQL backend traits. Statements reaching a backend use `$1`, `$2`, ... placeholders
//! (the rule on every backend); the backend translates them if its engine needs to.

use crate::capabilities::bindings::mixio::io::sql::{Rows, Value};

/// Largest query result (the sum of its values' sizes) a guest may receive, in bytes.
pub const MAX_RESULT_BYTES: usize = 16 << 20;

/// What a statement can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlError {
    /// The statement is wrong: syntax, unknown table or column, parameters.
    #[error("{0}")]
    InvalidQuery(String),
    /// A constraint was violated.
    #[error("{0}")]
    Constraint(String),
    /// The backend failed.
    #[error("{0}")]
    Backend(String),
}

impl crate::metrics::BackendFailure for SqlError {
    fn is_backend_failure(&self) -> bool {
        matches!(self, SqlError::Backend(_))
    }
}

/// A database: a pool of connections.
#[async_trait::async_trait]
pub trait SqlBackend: Send + Sync + 'static {
    /// Takes a connection from the pool (waiting for one if all are busy).
    async fn connection(&self) -> Result<Box<dyn SqlConnection>, SqlError>;
    /// Checks the database is reachable.
    async fn ping(&self) -> Result<(), SqlError>;
}

/// One pooled connection. Dropping it returns it to the pool; a transaction still open is
/// rolled back first (or the connection is closed, which rolls it back).
#[async_trait::async_trait]
pub trait SqlConnection: Send {
    /// Runs a statement; the number of rows it changed.
    async fn execute(&mut self, statement: &str, params: &[Value]) -> Result<u64, SqlError>;
    /// Runs a query; its rows.
    async fn query(&mut self, statement: &str, params: &[Value]) -> Result<Rows, SqlError>;
    /// `BEGIN`.
    async fn begin(&mut self) -> Result<(), SqlError>;
    /// `COMMIT`.
    async fn commit(&mut self) -> Result<(), SqlError>;
    /// `ROLLBACK`.
    async fn rollback(&mut self) -> Result<(), SqlError>;
}

/// Counts the bytes of a result as it is built.
pub(crate) struct Budget(usize);

impl Budget {
    pub(crate) fn new() -> Budget {
        Budget(MAX_RESULT_BYTES)
    }

    pub(crate) fn take(&mut self, value: &Value) -> Result<(), SqlError> {
        let size = match value {
            Value::Text(s) => s.len(),
            Value::Blob(b) => b.len(),
            _ => 8,
        };
        self.0 = self.0.checked_sub(size).ok_or_else(|| {
            SqlError::InvalidQuery(format!(
                "the result exceeds {MAX_RESULT_BYTES} bytes; select fewer rows (LIMIT)"
            ))
        })?;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod conformance {
    //! One suite every backend must pass, written in the SQL both engines accept.
    use super::*;
    use Value::*;

    pub(crate) async fn run(db: &dyn SqlBackend, table: &str) {
        db.ping().await.unwrap();
        let mut c = db.connection().await.unwrap();
        c.execute(&format!("DROP TABLE IF EXISTS {table}"), &[]).await.unwrap();
        c.execute(
            &format!(
                "CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, score REAL, \
                 data BYTEA, flag BOOLEAN)"
            )
            .replace("BYTEA", if is_sqlite(db).await { "BLOB" } else { "BYTEA" }),
            &[],
        )
        .await
        .unwrap();

        let insert = format!("INSERT INTO {table} (id, name, score, data, flag) VALUES ($1, $2, $3, $4, $5)");
        let n = c
            .execute(&insert, &[Integer(1), Text("ada".into()), Real(1.5), Blob(vec![0, 255]), Boolean(true)])
            .await
            .unwrap();
        assert_eq!(n, 1);
        c.execute(&insert, &[Integer(2), Text("grace".into()), Null, Null, Boolean(false)]).await.unwrap();

        // Parameters may repeat and come in any order.
        let rows = c
            .query(
                &format!("SELECT id, name, score, data FROM {table} WHERE name = $2 OR id = $1 ORDER BY id"),
                &[Integer(2), Text("ada".into())],
            )
            .await
            .unwrap();
        assert_eq!(rows.columns, vec!["id", "name", "score", "data"]);
        assert_eq!(
            rows.rows,
            vec![
                vec![Integer(1), Text("ada".into()), Real(1.5), Blob(vec![0, 255])],
                vec![Integer(2), Text("grace".into()), Null, Null]
            ]
        );

        // Injection attempts are just values.
        let evil = Text(format!("x'; DROP TABLE {table}; --"));
        let rows = c.query(&format!("SELECT id FROM {table} WHERE name = $1"), &[evil]).await.unwrap();
        assert!(rows.rows.is_empty());

        // Errors are typed.
        let dup = c.execute(&insert, &[Integer(3), Text("ada".into()), Null, Null, Null]).await.unwrap_err();
        assert!(matches!(dup, SqlError::Constraint(_)), "{dup:?}");
        let bad = c.execute("SELEC nonsense", &[]).await.unwrap_err();
        assert!(matches!(bad, SqlError::InvalidQuery(_)), "{bad:?}");
        let missing = c.query("SELECT * FROM no_such_table_here", &[]).await.unwrap_err();
        assert!(matches!(missing, SqlError::InvalidQuery(_)), "{missing:?}");

        // Transactions: rollback discards, commit keeps.
        c.begin().await.unwrap();
        c.execute(&format!("UPDATE {table} SET score = $1 WHERE id = $2"), &[Real(9.0), Integer(1)])
            .await
            .unwrap();
        c.rollback().await.unwrap();
        c.begin().await.unwrap();
        c.execute(&format!("DELETE FROM {table} WHERE id = $1"), &[Integer(2)]).await.unwrap();
        c.commit().await.unwrap();
        let rows = c.query(&format!("SELECT id, score FROM {table}"), &[]).await.unwrap();
        assert_eq!(rows.rows, vec![vec![Integer(1), Real(1.5)]]);

        // A connection dropped inside a transaction rolls it back.
        c.begin().await.unwrap();
        c.execute(&format!("DELETE FROM {table}"), &[]).await.unwrap();
        drop(c);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut c = db.connection().await.unwrap();
        let rows = c.query(&format!("SELECT count(*) FROM {table}"), &[]).await.unwrap();
        assert_eq!(rows.rows, vec![vec![Integer(1)]], "the dropped transaction was rolled back");

        c.execute(&format!("DROP TABLE {table}"), &[]).await.unwrap();
        if !is_sqlite(db).await {
            let rows = c.query("SELECT pg_sleep(0)", &[]).await.unwrap();
            assert_eq!(rows.rows, vec![vec![Null]], "void reads as null");
        }
    }

    async fn is_sqlite(db: &dyn SqlBackend) -> bool {
        let mut c = db.connection().await.unwrap();
        c.query("SELECT sqlite_version()", &[]).await.is_ok()
    }
}
