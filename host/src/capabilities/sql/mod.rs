//! `mixio:io/sql`: the WIT host implementation, with the access check (only granted
//! databases), transaction state, and per-instance limits.
//!
//! Outside a transaction each statement borrows a pooled connection for its duration only;
//! `begin` holds one until `commit` or `rollback`. A transaction still open when the guest's
//! instance is dropped (the call returned, trapped, timed out or was cancelled) is rolled back.

mod backend;
mod postgres;
mod sqlite;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use wasmtime::component::{Resource, ResourceTable};

pub use backend::MAX_RESULT_BYTES;
pub(crate) use backend::{SqlBackend, SqlConnection, SqlError};
pub(crate) use postgres::PostgresDb;
pub(crate) use sqlite::SqliteDb;

use crate::capabilities::bindings::mixio::io::sql::{Error, Host, HostConnection, Rows, Value};
use crate::capabilities::{Backends, Caller, Capability, Grants, Resolved, View, granted};
use crate::metrics::{Backend, backend_call};

/// Longest statement a guest may send, in bytes.
pub const MAX_STATEMENT: usize = 1 << 20;
/// Most parameters of one statement.
pub const MAX_PARAMS: usize = 32_767;
/// Connections (handles) one instance may have open at once.
pub const MAX_OPEN_CONNECTIONS: usize = 16;

/// The SQL capability.
pub(crate) struct Sql;

/// What a component is granted of SQL: its databases, by name.
pub(crate) struct SqlGrants {
    databases: HashMap<String, Arc<dyn SqlBackend>>,
}

impl Capability for Sql {
    type Grants = SqlGrants;
    /// The connections the instance has open.
    type State = usize;

    fn resolve(component: &str, grants: &Grants, backends: &Backends) -> Resolved<SqlGrants> {
        Ok(SqlGrants { databases: granted(component, "sql database", &grants.sql, &backends.sql)? })
    }
}

/// Connections of a SQLite database's pool.
const SQLITE_POOL: usize = 8;

/// The database a URL names: `sqlite:PATH` or `postgres://USER@HOST:PORT/DB`.
pub(crate) fn open(url: &str) -> Result<Arc<dyn SqlBackend>, String> {
    Ok(if let Some(path) = url.strip_prefix("sqlite:") {
        Arc::new(SqliteDb::open(Path::new(path), SQLITE_POOL)?)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Arc::new(PostgresDb::new(url)?)
    } else {
        return Err("unknown backend; use `sqlite:PATH` or `postgres://USER@HOST:PORT/DB`".into());
    })
}

/// An open connection handle: its database, and the connection held by an open transaction.
#[doc(hidden)]
pub struct OpenConnection {
    db: Arc<dyn SqlBackend>,
    transaction: Option<Box<dyn SqlConnection>>,
}

impl From<SqlError> for Error {
    fn from(e: SqlError) -> Error {
        match e {
            SqlError::InvalidQuery(m) => Error::InvalidQuery(m),
            SqlError::Constraint(m) => Error::ConstraintViolation(m),
            SqlError::Backend(m) => Error::Backend(m),
        }
    }
}

fn check(statement: &str, params: &[Value]) -> Result<(), Error> {
    if statement.len() > MAX_STATEMENT {
        return Err(Error::InvalidQuery(format!("the statement exceeds {MAX_STATEMENT} bytes")));
    }
    if params.len() > MAX_PARAMS {
        return Err(Error::InvalidQuery(format!("more than {MAX_PARAMS} parameters")));
    }
    Ok(())
}

/// Which statement method to run.
enum Op {
    Execute,
    Query,
}

enum Outcome {
    Changed(u64),
    Rows(Rows),
}

impl View<'_, Sql> {
    /// Runs a statement on the transaction's connection, or on one borrowed from the pool.
    async fn run_statement(
        &mut self,
        handle: &Resource<OpenConnection>,
        op: Op,
        statement: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<Outcome, Error>> {
        if let Err(e) = check(&statement, &params) {
            return Ok(Err(e));
        }
        let counters = &self.caller.counters;
        let conn = self.table.get_mut(handle)?;
        let db = conn.db.clone();
        let work = async {
            let mut pooled;
            let c: &mut dyn SqlConnection = match conn.transaction.as_mut() {
                Some(tx) => tx.as_mut(),
                None => {
                    pooled = db.connection().await?;
                    pooled.as_mut()
                }
            };
            match op {
                Op::Execute => c.execute(&statement, &params).await.map(Outcome::Changed),
                Op::Query => c.query(&statement, &params).await.map(Outcome::Rows),
            }
        };
        Ok(backend_call(counters, Backend::Sql, work).await.map_err(Error::from))
    }
}

impl View<'_, Sql> {
    /// Commits or rolls back the open transaction, returning its connection to the pool.
    async fn end_transaction(
        &mut self,
        conn: &Resource<OpenConnection>,
        commit: bool,
    ) -> wasmtime::Result<Result<(), Error>> {
        let counters = &self.caller.counters;
        let verb = if commit { "commit" } else { "rollback" };
        let Some(mut tx) = self.table.get_mut(conn)?.transaction.take() else {
            return Ok(Err(Error::TransactionState(format!("{verb} without begin"))));
        };
        let ended = if commit {
            backend_call(counters, Backend::Sql, tx.commit()).await
        } else {
            backend_call(counters, Backend::Sql, tx.rollback()).await
        };
        Ok(ended.map_err(Error::from))
    }
}

/// Rolls back every transaction still open in `table` (the call that began it has ended and
/// its instance will serve another): the next call sees none of its changes, even through a
/// handle the guest kept. The handles stay open, outside a transaction.
pub(crate) async fn end_call(caller: &Caller, table: &mut ResourceTable) -> Result<(), String> {
    let open: Vec<Box<dyn SqlConnection>> = table
        .iter_mut()
        .filter_map(|entry| entry.downcast_mut::<OpenConnection>())
        .filter_map(|conn| conn.transaction.take())
        .collect();
    for mut tx in open {
        tracing::warn!(component = %caller.component, "a transaction left open by the call is rolled back");
        backend_call(&caller.counters, Backend::Sql, tx.rollback())
            .await
            .map_err(|e| format!("a transaction left open could not be rolled back: {e}"))?;
    }
    Ok(())
}

impl Host for View<'_, Sql> {}

impl HostConnection for View<'_, Sql> {
    async fn open(&mut self, name: String) -> wasmtime::Result<Result<Resource<OpenConnection>, Error>> {
        let Some(db) = self.grants.databases.get(&name).cloned() else {
            return Ok(Err(Error::AccessDenied(format!(
                "sql database `{name}` is not granted to component `{}`",
                self.caller.component
            ))));
        };
        if *self.state >= MAX_OPEN_CONNECTIONS {
            return Ok(Err(Error::Backend(format!(
                "too many open sql connections (the limit is {MAX_OPEN_CONNECTIONS})"
            ))));
        }
        let handle = self.table.push(OpenConnection { db, transaction: None })?;
        *self.state += 1;
        Ok(Ok(handle))
    }

    async fn execute(
        &mut self,
        conn: Resource<OpenConnection>,
        statement: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<u64, Error>> {
        Ok(self.run_statement(&conn, Op::Execute, statement, params).await?.map(|o| match o {
            Outcome::Changed(n) => n,
            Outcome::Rows(_) => 0,
        }))
    }

    async fn query(
        &mut self,
        conn: Resource<OpenConnection>,
        statement: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<Rows, Error>> {
        Ok(self.run_statement(&conn, Op::Query, statement, params).await?.map(|o| match o {
            Outcome::Rows(rows) => rows,
            Outcome::Changed(_) => Rows { columns: Vec::new(), rows: Vec::new() },
        }))
    }

    async fn begin(&mut self, conn: Resource<OpenConnection>) -> wasmtime::Result<Result<(), Error>> {
        let counters = &self.caller.counters;
        let conn = self.table.get_mut(&conn)?;
        if conn.transaction.is_some() {
            return Ok(Err(Error::TransactionState("a transaction is already open".into())));
        }
        let db = conn.db.clone();
        let begun = backend_call(counters, Backend::Sql, async {
            let mut c = db.connection().await?;
            c.begin().await?;
            Ok::<_, SqlError>(c)
        })
        .await;
        Ok(match begun {
            Ok(c) => {
                conn.transaction = Some(c);
                Ok(())
            }
            Err(e) => Err(e.into()),
        })
    }

    async fn commit(&mut self, conn: Resource<OpenConnection>) -> wasmtime::Result<Result<(), Error>> {
        self.end_transaction(&conn, true).await
    }

    async fn rollback(&mut self, conn: Resource<OpenConnection>) -> wasmtime::Result<Result<(), Error>> {
        self.end_transaction(&conn, false).await
    }

    async fn drop(&mut self, conn: Resource<OpenConnection>) -> wasmtime::Result<()> {
        // Dropping an open transaction's connection rolls it back.
        self.table.delete(conn)?;
        *self.state -= 1;
        Ok(())
    }
}
