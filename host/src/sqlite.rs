//! A pool of SQLite connections for the SQLite backends (SQL and key-value). SQLite's driver
//! blocks, so every statement runs on tokio's blocking thread pool, never on a runtime thread.
//! The database is a file in WAL mode: readers do not block the writer.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a statement waits for a lock held by another connection before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct SqlitePool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl SqlitePool {
    /// Opens (creating if needed) the database at `path` with at most `size` connections, and
    /// runs `schema` once.
    pub(crate) fn open(path: &Path, size: usize, schema: &str) -> Result<Arc<SqlitePool>, String> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
        }
        let pool = SqlitePool {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(size.max(1))),
        };
        let conn = pool.connect().map_err(|e| format!("cannot open `{}`: {e}", path.display()))?;
        conn.execute_batch(schema).map_err(|e| format!("cannot prepare `{}`: {e}", path.display()))?;
        pool.idle.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
        Ok(Arc::new(pool))
    }

    fn connect(&self) -> rusqlite::Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
        )?;
        Ok(conn)
    }

    /// Takes a connection (waiting for a free one) for a run of statements.
    pub(crate) async fn checkout(self: &Arc<Self>) -> Result<PooledConnection, String> {
        let permit =
            self.permits.clone().acquire_owned().await.map_err(|_| "the pool is closed".to_string())?;
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let pool = self.clone();
                tokio::task::spawn_blocking(move || pool.connect())
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| format!("cannot open `{}`: {e}", self.path.display()))?
            }
        };
        Ok(PooledConnection { conn: Some(conn), pool: self.clone(), _permit: permit })
    }

    /// Runs `f` on a pooled connection.
    pub(crate) async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Connection) -> T + Send + 'static,
    ) -> Result<T, String> {
        self.checkout().await?.run(f).await
    }
}

/// A connection taken from the pool; it goes back when dropped, after rolling back any
/// transaction left open.
pub(crate) struct PooledConnection {
    conn: Option<Connection>,
    pool: Arc<SqlitePool>,
    _permit: OwnedSemaphorePermit,
}

impl PooledConnection {
    /// Runs `f` on this connection on the blocking thread pool. If the caller stops waiting,
    /// `f` still finishes, and the connection is then closed (which rolls back a transaction).
    pub(crate) async fn run<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Connection) -> T + Send + 'static,
    ) -> Result<T, String> {
        let mut conn = self.conn.take().ok_or("the connection was lost by an earlier cancelled statement")?;
        let (conn, out) = tokio::task::spawn_blocking(move || {
            let out = f(&mut conn);
            (conn, out)
        })
        .await
        .map_err(|e| format!("the SQLite worker failed: {e}"))?;
        self.conn = Some(conn);
        Ok(out)
    }
}

impl Drop for PooledConnection {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if conn.is_autocommit() {
            self.pool.idle.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
            return;
        }
        // An open transaction: roll it back off the runtime thread, then return the
        // connection (dropping it, which also rolls back, if that fails).
        let pool = self.pool.clone();
        let rollback = move || {
            if conn.execute_batch("ROLLBACK").is_ok() {
                pool.idle.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(rollback)),
            Err(_) => rollback(),
        }
    }
}
