//! A guest that misbehaves on request, to prove the host survives it: `?do=<mode>`.
//!
//! | mode | what the guest does |
//! |---|---|
//! | `ok` (default) | answers `200 fine` |
//! | `loop` | spins forever without I/O, until the host's deadline stops it |
//! | `unreachable` | executes the wasm `unreachable` instruction (a trap) |
//! | `panic` | panics with a message (Rust aborts: also a trap, with the message on stderr) |
//! | `sleep-then-panic` | sleeps `?ms=` (default 50) on the host, then panics |
//! | `trap-in-transaction` | begins a transaction on SQL database `default`, inserts `?title=` into `hostile_tx`, then traps without committing |
//! | `sleep-in-transaction` | the same, but sleeps `?ms=` (default 60000) instead of trapping, to be cancelled |

use std::time::Duration;

use mixio::http::{Request, Response};

#[mixio::handler]
fn handle(req: Request) -> Response {
    match req.query_param("do").as_deref().unwrap_or("ok") {
        "ok" => Response::text("fine\n"),
        "loop" => spin(),
        "unreachable" => trap(),
        "panic" => panic!("boom: the guest gave up"),
        "sleep-then-panic" => {
            let ms = req.query_param("ms").and_then(|v| v.parse().ok()).unwrap_or(50);
            mixio::time::sleep(Duration::from_millis(ms));
            panic!("woke up and gave up after {ms} ms")
        }
        mode @ ("trap-in-transaction" | "sleep-in-transaction") => {
            let title = req.query_param("title").unwrap_or_default();
            let db = mixio::sql::Connection::open("default").expect("sql database `default`");
            db.execute("CREATE TABLE IF NOT EXISTS hostile_tx (title TEXT NOT NULL)", &[]).expect("create");
            db.begin().expect("begin");
            db.execute("INSERT INTO hostile_tx (title) VALUES ($1)", mixio::sql::params![title])
                .expect("insert");
            if mode == "trap-in-transaction" {
                trap()
            }
            let ms = req.query_param("ms").and_then(|v| v.parse().ok()).unwrap_or(60_000);
            mixio::time::sleep(Duration::from_millis(ms));
            Response::text("woke up without committing\n")
        }
        other => Response::error(400, &format!("unknown mode `{other}`")),
    }
}

/// Loops forever; `black_box` keeps the compiler from proving the loop away.
fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn trap() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort();
}
