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
//! | `io-then-loop` | sleeps 1 ms `?n=` times (default 5), then spins forever |
//! | `recurse` | recurses without end (a wasm stack overflow) |
//! | `memory-bomb` | allocates 1 MiB blocks, touching each, until allocation fails |
//! | `huge-body` | answers a body of `?mb=` MiB (default 64) |
//! | `many-headers` | answers with `?n=` headers (default 1000) |
//! | `kv-flood` | opens kv store `default` until the host refuses; answers with the count and the error |
//! | `sql-flood` | the same with SQL database `default` |
//! | `sql-errors` | runs a syntax error and a constraint violation, then a valid query on the same connection; answers the three outcomes |
//! | `bad-pointer` | calls the `log` import with a string pointer and length outside its memory |
//! | `bad-utf8` | calls the `log` import with bytes that are not UTF-8 where a string is expected |
//! | `bad-handle` | calls a kv store method on a handle that was never created |
//! | `dropped-handle` | opens a kv store, drops its handle, then uses it |
//! | `respond` | answers the response its request body describes: a status line, `name: value` header lines, an empty line, the body (bytes taken as they are) |
//! | `remember` | counts its calls in a static and marks every other page of a 2 MiB static buffer; answers the calls and marked bytes it found left by an earlier instance (`0 0` in a fresh one) |
//! | `escape` | tries to read a host file, list the environment, open a socket to `?port=`, and fetch `?url=`; answers what happened to each |

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
        "io-then-loop" => {
            let n = req.query_param("n").and_then(|v| v.parse().ok()).unwrap_or(5);
            for _ in 0..n {
                mixio::time::sleep(Duration::from_millis(1));
            }
            spin()
        }
        "recurse" => {
            let depth = recurse(std::hint::black_box(1));
            Response::text(format!("returned from depth {depth}\n"))
        }
        "memory-bomb" => {
            let mut blocks: Vec<Vec<u8>> = Vec::new();
            loop {
                blocks.push(vec![1; 1 << 20]);
                std::hint::black_box(&blocks);
            }
        }
        "huge-body" => {
            let mb: usize = req.query_param("mb").and_then(|v| v.parse().ok()).unwrap_or(64);
            Response::text("x".repeat(mb << 20))
        }
        "many-headers" => {
            let n: usize = req.query_param("n").and_then(|v| v.parse().ok()).unwrap_or(1_000);
            (0..n).fold(Response::text("headers\n"), |r, i| r.with_header(&format!("x-h{i}"), "v"))
        }
        "kv-flood" => flood("kv stores", || mixio::kv::Store::open("default")),
        "sql-flood" => flood("sql connections", || mixio::sql::Connection::open("default")),
        "sql-errors" => {
            let db = mixio::sql::Connection::open("default").expect("sql database `default`");
            db.execute("CREATE TABLE IF NOT EXISTS hostile_unique (k TEXT PRIMARY KEY)", &[])
                .expect("create");
            let syntax = db.execute("SELEC nonsense FROM", &[]);
            db.execute("INSERT OR IGNORE INTO hostile_unique (k) VALUES ('a')", &[]).expect("insert");
            let constraint = db.execute("INSERT INTO hostile_unique (k) VALUES ('a')", &[]);
            let after = db.query("SELECT count(*) AS n FROM hostile_unique", &[]);
            Response::text(format!(
                "syntax: {syntax:?}\nconstraint: {constraint:?}\nafter: {:?}\n",
                after.map(|r| r.len())
            ))
        }
        "respond" => respond(req.body()),
        "bad-pointer" => {
            raw::log(2, 0xffff_0000, 4096);
            Response::text("the host took a string from outside the guest's memory\n")
        }
        "bad-utf8" => {
            let bytes = [0xff_u8, 0xfe, 0xfd];
            raw::log(2, bytes.as_ptr() as u32, bytes.len() as u32);
            Response::text("the host took bytes that are not UTF-8 as a string\n")
        }
        "bad-handle" => {
            raw::kv_get(0x7777, b"key");
            Response::text("the host used a kv store that was never opened\n")
        }
        "dropped-handle" => {
            let store = raw::kv_open("default").expect("kv store `default`");
            raw::kv_drop(store);
            raw::kv_get(store, b"key");
            Response::text("the host used a kv store after it was dropped\n")
        }
        "remember" => remember(),
        "escape" => {
            let file = std::fs::read_to_string("/etc/passwd").map(|t| t.len());
            let env = std::env::vars().count();
            let port = req.query_param("port").unwrap_or_else(|| "5432".into());
            let socket = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).map(|_| ());
            let url = req.query_param("url").unwrap_or_else(|| "http://127.0.0.1:5432/".into());
            let fetch = mixio::http::get(&url).map(|r| r.status());
            Response::text(format!("file: {file:?}\nenv: {env}\nsocket: {socket:?}\nfetch: {fetch:?}\n"))
        }
        other => Response::error(400, &format!("unknown mode `{other}`")),
    }
}

/// Opens (with `open`) and keeps open until the host refuses; answers with the count and the
/// host's error.
fn flood<T>(what: &str, open: impl Fn() -> Result<T, mixio::Error>) -> Response {
    let mut opened = Vec::new();
    loop {
        match open() {
            Ok(handle) => opened.push(handle),
            Err(error) => return Response::text(format!("opened {} then: {error}\n", opened.len())),
        }
        if opened.len() > 100_000 {
            return Response::error(500, &format!("the host let 100,000 {what} open"));
        }
    }
}

/// The response `spec` describes (see the `respond` mode): whatever its bytes, even a status
/// HTTP does not have or a header name that is not a token.
fn respond(spec: &[u8]) -> Response {
    let (head, body) = match spec.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&spec[..at], &spec[at + 2..]),
        None => (spec, &[][..]),
    };
    let mut lines = head.split(|b| *b == b'\n');
    let status = lines.next().and_then(|l| std::str::from_utf8(l).ok()?.trim().parse().ok()).unwrap_or(200);
    let mut response = Response::new(status).with_body(body.to_vec());
    for line in lines {
        let (name, value) = match line.iter().position(|b| *b == b':') {
            Some(at) => (&line[..at], line[at + 1..].trim_ascii_start()),
            None => (line, &[][..]),
        };
        response = response.with_header(&String::from_utf8_lossy(name), value.to_vec());
    }
    response
}

/// Loops forever; `black_box` keeps the compiler from proving the loop away.
fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

/// Recurses until the wasm stack runs out; the frame's buffer keeps the compiler from turning
/// the recursion into a loop.
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 16]);
    recurse(frame[depth as usize % 16] + 1) + frame[0]
}

fn trap() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort();
}

/// Calls to mixio's imports below the SDK, with the arguments a buggy or malicious guest could
/// pass: the host must check every pointer, length, string and handle it is given.
mod raw {
    #[cfg(target_arch = "wasm32")]
    #[link(wasm_import_module = "mixio:io/log@0.1.0")]
    unsafe extern "C" {
        #[link_name = "log"]
        fn log_import(level: i32, message: u32, len: u32);
    }

    #[cfg(target_arch = "wasm32")]
    #[link(wasm_import_module = "mixio:io/kv@0.1.0")]
    unsafe extern "C" {
        #[link_name = "[method]store.get"]
        fn store_get_import(store: u32, key: u32, len: u32, result: u32);
        #[link_name = "[static]store.open"]
        fn store_open_import(name: u32, len: u32, result: u32);
        #[link_name = "[resource-drop]store"]
        fn store_drop_import(store: u32);
    }

    /// `store.open(name)`: the new store's handle, or `None` if the host refused.
    pub fn kv_open(name: &str) -> Option<u32> {
        // `result<own<store>, error>`: a case byte at 0, the handle (or the error) from 4.
        let mut result = [0_u32; 4];
        // SAFETY: `name` and `result` are live buffers of this guest, and `result` is large
        // and aligned enough for the call's result, which the host writes into it.
        #[cfg(target_arch = "wasm32")]
        unsafe {
            store_open_import(name.as_ptr() as u32, name.len() as u32, result.as_mut_ptr() as u32)
        }
        #[cfg(not(target_arch = "wasm32"))]
        let _ = (name, &mut result);
        (result[0] & 0xff == 0).then_some(result[1])
    }

    /// Drops the store handle `store`.
    pub fn kv_drop(store: u32) {
        // SAFETY: a handle is a plain number; the host checks it.
        #[cfg(target_arch = "wasm32")]
        unsafe {
            store_drop_import(store)
        }
        #[cfg(not(target_arch = "wasm32"))]
        let _ = store;
    }

    /// `log(level, message)` with the message given as a raw pointer and length.
    pub fn log(level: i32, message: u32, len: u32) {
        // SAFETY: nothing in the guest is read or written: the pointer and length go to the
        // host, which must refuse them when they are out of bounds or not UTF-8 (this guest
        // exists to prove that it does).
        #[cfg(target_arch = "wasm32")]
        unsafe {
            log_import(level, message, len)
        }
        #[cfg(not(target_arch = "wasm32"))]
        let _ = (level, message, len);
    }

    /// `store.get(key)` on the store handle `store`, whatever it is.
    pub fn kv_get(store: u32, key: &[u8]) {
        let mut result = [0_u64; 4];
        // SAFETY: `key` and `result` are live buffers of this guest, large enough for the
        // key and for the call's result; only `store` is wrong, which the host must refuse.
        #[cfg(target_arch = "wasm32")]
        unsafe {
            store_get_import(store, key.as_ptr() as u32, key.len() as u32, result.as_mut_ptr() as u32)
        }
        #[cfg(not(target_arch = "wasm32"))]
        let _ = (store, key, &mut result);
    }
}

/// What an earlier instance left in this one's memory: its call count, and its marks in a
/// 2 MiB static buffer (one byte on every other 4 KiB page: more pages than a pool slot keeps
/// resident, in hundreds of separate runs); then leaves both behind for the next.
fn remember() -> Response {
    use std::sync::atomic::{AtomicU8, AtomicU32, Ordering::Relaxed};
    const PAGE: usize = 4096;
    static CALLS: AtomicU32 = AtomicU32::new(0);
    static MARKS: [AtomicU8; 2 << 20] = [const { AtomicU8::new(0) }; 2 << 20];
    let calls = CALLS.fetch_add(1, Relaxed);
    let marked = MARKS.iter().filter(|b| b.load(Relaxed) != 0).count();
    for page in MARKS.chunks(PAGE).step_by(2) {
        page[0].store(0xA5, Relaxed);
    }
    Response::text(format!("{calls} {marked}\n"))
}
