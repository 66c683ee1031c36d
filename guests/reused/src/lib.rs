//! A guest that shows what survives from one request to the next when its instance is reused
//! (`tests/tests/reuse.rs`): its own globals do; what the host holds for a request does not.
//!
//! - `/count`: how many requests this instance has served, itself included (a global).
//! - `/panic`: panics (a trap). `/sleep?ms=N`: sleeps N ms.
//! - `/grow?mib=N`: keeps N MiB more in a global, written to.
//! - `/begin`: opens database `default`, begins a transaction, inserts a row, and keeps the
//!   connection in a global without committing.
//! - `/stale`: through the kept connection, the rows it sees and what `commit` answers.
//! - `/rows`: the committed rows, through a new connection.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use mixio::http::{Request, Response};
use mixio::sql::Connection;

thread_local! {
    static SERVED: Cell<u32> = const { Cell::new(0) };
    static KEPT: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    static CONNECTION: RefCell<Option<Connection>> = const { RefCell::new(None) };
}

const CREATE: &str = "CREATE TABLE IF NOT EXISTS reused (id INTEGER)";

fn count(conn: &Connection) -> Result<i64, mixio::Error> {
    conn.query("SELECT COUNT(*) AS n FROM reused", &[])?.first().map_or(Ok(0), |row| row.get::<i64>("n"))
}

#[mixio::handler]
fn handle(req: Request) -> Result<Response, mixio::Error> {
    let served = SERVED.with(|n| {
        n.set(n.get() + 1);
        n.get()
    });
    let number = |name: &str| req.query_param(name).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Ok(match req.path() {
        "/count" => Response::text(served.to_string()),
        "/panic" => panic!("asked to panic"),
        "/sleep" => {
            mixio::time::sleep(Duration::from_millis(number("ms")));
            Response::text("slept")
        }
        "/grow" => {
            let bytes = number("mib") as usize * (1 << 20);
            KEPT.with(|kept| kept.borrow_mut().push(vec![1; bytes]));
            Response::text("grown")
        }
        "/begin" => {
            let conn = Connection::open("default")?;
            conn.execute(CREATE, &[])?;
            conn.begin()?;
            conn.execute("INSERT INTO reused (id) VALUES ($1)", mixio::sql::params![served])?;
            let seen = count(&conn)?;
            CONNECTION.with(|kept| *kept.borrow_mut() = Some(conn));
            Response::text(format!("rows={seen}"))
        }
        "/stale" => CONNECTION.with(|kept| -> Result<Response, mixio::Error> {
            let kept = kept.borrow();
            let Some(conn) = kept.as_ref() else { return Ok(Response::error(404, "no connection kept")) };
            let seen = count(conn)?;
            let commit = match conn.commit() {
                Ok(()) => "ok".to_string(),
                Err(e) => e.to_string(),
            };
            Ok(Response::text(format!("rows={seen} commit={commit}")))
        })?,
        "/rows" => {
            let conn = Connection::open("default")?;
            conn.execute(CREATE, &[])?;
            Response::text(format!("rows={}", count(&conn)?))
        }
        _ => Response::error(404, "unknown path"),
    })
}
