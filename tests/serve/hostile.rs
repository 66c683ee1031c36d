//! Hostile guests, hostile clients and shutdown under load.
//!
//! Every misbehaviour of `guests/hostile` is an error (or a refusal) for its own request only,
//! with a status and a reason; nothing is left behind (instances, suspended guests, open
//! transactions); well-behaved requests running at the same time all succeed. Clients that hang
//! up mid-call or send malformed HTTP cost nothing lasting either, and a server stopped under
//! load finishes every order it acknowledged.

use std::time::Duration;

use mixio_tests::client::{self, Reply};
use mixio_tests::serve::{MixioServe, demo_manifest, scratch_dir, start_in_process};
use mixio_tests::{guest, wait_until};

/// The runtime of each test: two threads, as on the target machine.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// One hostile request and what its answer must hold: the status and parts of the body.
struct Attack {
    path: &'static str,
    status: u16,
    body: &'static [&'static str],
}

const fn attack(path: &'static str, status: u16, body: &'static [&'static str]) -> Attack {
    Attack { path, status, body }
}

/// The whole hostile suite (see the table in `guests/hostile/src/lib.rs`).
const ATTACKS: &[Attack] = &[
    attack("/spin?do=loop", 504, &["timed out after 2s"]),
    attack("/spin?do=io-then-loop&n=20", 504, &["timed out after 2s"]),
    attack("/hostile?do=recurse", 500, &["trapped", "call stack exhausted"]),
    attack("/hostile?do=unreachable", 500, &["trapped", "unreachable"]),
    attack("/hostile?do=panic", 500, &["panicked: boom: the guest gave up"]),
    attack("/hostile?do=sleep-then-panic&ms=20", 500, &["woke up and gave up after 20 ms"]),
    attack(
        "/hostile?do=memory-bomb",
        500,
        &["trapped", "last stderr line: memory allocation of 1048576 bytes failed"],
    ),
    attack("/hostile?do=huge-body&mb=16", 500, &["answered with a body of 16777216 bytes, over its limit"]),
    attack(
        "/hostile?do=many-headers&n=1000",
        500,
        &["answered with 1001 headers", "over the limit of 100 headers"],
    ),
    attack("/hostile?do=trap-in-transaction&title=never", 500, &["trapped"]),
    attack("/hostile?do=kv-flood", 200, &["opened 64 then", "too many open kv stores (the limit is 64)"]),
    attack(
        "/hostile?do=sql-flood",
        200,
        &["opened 16 then", "too many open sql connections (the limit is 16)"],
    ),
    attack(
        "/hostile?do=sql-errors",
        200,
        &["syntax: Err(InvalidQuery(", "constraint: Err(ConstraintViolation(", "after: Ok(1)"],
    ),
    attack("/hostile?do=bad-pointer", 500, &["trapped: string pointer/length out of bounds of memory"]),
    attack("/hostile?do=bad-utf8", 500, &["trapped: invalid utf-8 sequence"]),
    attack("/hostile?do=bad-handle", 500, &["trapped: unknown handle index 30583"]),
    attack("/hostile?do=dropped-handle", 500, &["trapped: unknown handle index"]),
    attack(
        "/hostile?do=escape&port=5432",
        200,
        &["file: Err(", "env: 0\n", "socket: Err(", "fetch: Err(NotAllowed("],
    ),
];

fn manifest(data_dir: &std::path::Path) -> String {
    format!(
        r#"
        name = "hostile"
        data_dir = "{}"
        [components.hostile]
        source = "{}"
        routes = ["/hostile"]
        sql = ["default"]
        kv = ["default"]
        limits = {{ timeout = "30s", max_memory = "48MiB" }}
        # The same guest for the attacks that spin until their deadline: a short one for them,
        # and a long one above, which the other attacks meet however loaded the machine is.
        [components.spin]
        source = "{}"
        routes = ["/spin"]
        limits = {{ timeout = "2s" }}
        [components.hello]
        source = "{}"
        routes = ["/hello"]
        "#,
        data_dir.display(),
        guest("hostile").display(),
        guest("hostile").display(),
        guest("hello").display()
    )
}

/// What is wrong with `reply` as the answer to `attack`, if anything.
fn check(attack: &Attack, reply: &Reply) -> Option<String> {
    let missing: Vec<_> = attack.body.iter().filter(|part| !reply.body.contains(*part)).collect();
    (reply.status != attack.status || !missing.is_empty()).then(|| {
        format!(
            "{}: expected {} with {missing:?}, got {} {:?}",
            attack.path, attack.status, reply.status, reply.body
        )
    })
}

fn assert_all(failures: impl IntoIterator<Item = Option<String>>) {
    let failures: Vec<String> = failures.into_iter().flatten().collect();
    assert!(failures.is_empty(), "{} wrong answers:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn the_hostile_suite_fails_alone_while_well_behaved_requests_all_succeed() {
    let runtime = runtime();
    let dir = scratch_dir("hostile");
    runtime.block_on(async {
        let (base, _, host) = start_in_process(&manifest(&dir)).await;
        // Each attack, twice, all at once.
        let attacks: Vec<_> = ATTACKS
            .iter()
            .chain(ATTACKS)
            .map(|attack| {
                let base = base.clone();
                tokio::spawn(async move { (attack, client::get(&base, attack.path).await) })
            })
            .collect();
        // Meanwhile, a steady stream of well-behaved requests, eight at a time.
        let mut good = 0;
        for round in 0..25 {
            let batch: Vec<_> = (0..8)
                .map(|i| {
                    let base = base.clone();
                    tokio::spawn(
                        async move { client::get(&base, &format!("/hello?name=g{round}x{i}")).await },
                    )
                })
                .collect();
            for (i, request) in batch.into_iter().enumerate() {
                let reply = request.await.unwrap();
                assert_eq!((reply.status, reply.body.as_str()), (200, &*format!("hello, g{round}x{i}!\n")));
                good += 1;
            }
        }
        assert_eq!(good, 200);
        let mut answers = Vec::new();
        for attack in attacks {
            let (attack, reply) = attack.await.unwrap();
            answers.push(check(attack, &reply));
        }
        assert_all(answers);

        // Nothing is left behind: no instance alive, no guest suspended.
        wait_until("every instance to go", || host.metrics().instances == 0).await;
        let metrics = host.metrics();
        assert_eq!((metrics.instances, metrics.suspended), (0, 0), "{metrics:?}");
        // The same attacks again, one by one, give the same answers: the host is unharmed.
        let mut answers = Vec::new();
        for attack in ATTACKS {
            answers.push(check(attack, &client::get(&base, attack.path).await));
        }
        assert_all(answers);
    });
    // The transactions of the guests that trapped were rolled back.
    let db = rusqlite::Connection::open(dir.join("app.db")).unwrap();
    let rows: i64 = db.query_row("SELECT count(*) FROM hostile_tx", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 0, "a trapped guest's insert was committed");
}

/// Sends `GET path` on a new connection and leaves it open, unread.
async fn hang_request(addr: &str, path: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    socket.write_all(format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\n\r\n").as_bytes()).await.expect("send");
    socket
}

/// Clients hang up while their guests are suspended on I/O, 10,000 times: each guest is
/// stopped and its instance freed, and a guest inside a transaction has it rolled back.
#[test]
fn ten_thousand_clients_hanging_up_mid_call_leave_nothing_behind() {
    const BATCH: usize = 200;
    const BATCHES: usize = 50;
    let runtime = runtime();
    let dir = scratch_dir("hangups");
    let manifest = format!(
        "{}\n[components.sleepy]\nsource = \"{}\"\nroutes = [\"/sleepy\"]\n",
        manifest(&dir),
        guest("sleepy").display()
    );
    runtime.block_on(async {
        let (base, _, host) = start_in_process(&manifest).await;
        let addr = base.trim_start_matches("http://").to_string();
        let calls_before = host.metrics().calls;
        for _ in 0..BATCHES {
            let mut sockets = Vec::with_capacity(BATCH);
            for _ in 0..BATCH {
                sockets.push(hang_request(&addr, "/sleepy?ms=600000").await);
            }
            wait_until("the batch to be suspended", || host.metrics().suspended == BATCH).await;
            drop(sockets);
            wait_until("the batch's instances to go", || host.metrics().instances == 0).await;
        }
        let metrics = host.metrics();
        assert_eq!(metrics.calls - calls_before, (BATCH * BATCHES) as u64);
        assert_eq!((metrics.instances, metrics.suspended), (0, 0), "{metrics:?}");

        // Hanging up on a guest that sleeps inside a transaction rolls the transaction back.
        let db_path = dir.join("app.db");
        for i in 0..20 {
            let socket =
                hang_request(&addr, &format!("/hostile?do=sleep-in-transaction&title=gone{i}")).await;
            // Its insert holds the database's write lock until the transaction ends.
            wait_until("the guest's insert", || write_locked(&db_path)).await;
            assert_eq!(host.metrics().instances, 1);
            drop(socket);
            wait_until("its instance to go", || host.metrics().instances == 0).await;
            wait_until("its transaction to end", || !write_locked(&db_path)).await;
        }
        // The server still answers, and the database takes writes (no transaction holds it).
        assert_eq!(client::get(&base, "/hello").await.status, 200);
        let db = rusqlite::Connection::open(dir.join("app.db")).unwrap();
        db.busy_timeout(Duration::from_secs(5)).unwrap();
        db.execute("INSERT INTO hostile_tx (title) VALUES ('from the test')", []).unwrap();
        let rows: Vec<String> = db
            .prepare("SELECT title FROM hostile_tx")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows, ["from the test"], "a hung-up guest's insert was committed");
    });
}

/// Whether a transaction (of a guest) holds the write lock of the SQLite database at `path`.
fn write_locked(path: &std::path::Path) -> bool {
    let Ok(db) = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
    else {
        return false;
    };
    // Try the lock, without waiting for it.
    db.busy_timeout(Duration::ZERO).unwrap();
    match db.execute_batch("BEGIN IMMEDIATE; ROLLBACK;") {
        Ok(()) => false,
        Err(e) => e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy),
    }
}

/// Writes `bytes` on a new connection and reads until the server closes it (or 30 s pass);
/// returns what the server sent. The server may close (or reset) the connection before it has
/// read everything: a failed write or read counts as closed.
async fn exchange(addr: &str, bytes: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let _ = socket.write_all(bytes).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), socket.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok(),
        "the server kept the connection open after {:?}",
        String::from_utf8_lossy(&bytes[..bytes.len().min(80)])
    );
    String::from_utf8_lossy(&answer).into_owned()
}

/// Malformed requests get their status and a closed connection; a client dribbling its
/// headers is cut off; a websocket client sending an invalid frame is disconnected. The server
/// answers well-formed requests all along.
#[test]
fn malformed_http_is_refused_and_the_server_keeps_serving() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let runtime = runtime();
    let dir = scratch_dir("malformed");
    runtime.block_on(async {
        let (base, _, _host) = start_in_process(&manifest(&dir)).await;
        let addr = base.trim_start_matches("http://").to_string();

        // A client that sends its headers one byte a second is cut off.
        let slowloris = {
            let addr = addr.clone();
            tokio::spawn(async move {
                let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
                let started = tokio::time::Instant::now();
                for byte in b"GET /hello HTTP/1.1\r\nhost: x\r\nx-slow: ".iter().chain([b'a'; 60].iter()) {
                    if socket.write_all(&[*byte]).await.is_err() {
                        return started.elapsed();
                    }
                    tokio::time::sleep(Duration::from_millis(1000)).await;
                }
                panic!("the server waited a minute for one request's headers");
            })
        };

        let garbage = exchange(&addr, b"THIS IS NOT HTTP\r\n\r\n").await;
        assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage:?}");
        let huge_header = format!("GET /hello HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n", "a".repeat(1 << 20));
        let huge = exchange(&addr, huge_header.as_bytes()).await;
        // Refused with 431, or with the connection reset before the answer could be read.
        assert!(huge.starts_with("HTTP/1.1 431") || huge.is_empty(), "{huge:?}");
        let bad_version = exchange(&addr, b"GET /hello HTTP/9.9\r\nhost: x\r\n\r\n").await;
        assert!(
            bad_version.starts_with("HTTP/1.1 400") || bad_version.starts_with("HTTP/1.1 505"),
            "{bad_version:?}"
        );
        let bad_length =
            exchange(&addr, b"POST /hello HTTP/1.1\r\nhost: x\r\ncontent-length: abc\r\n\r\n").await;
        assert!(bad_length.starts_with("HTTP/1.1 400"), "{bad_length:?}");
        // Found by the `http_request` fuzzer (which had expected only `HTTP/1.1` answers): an
        // HTTP/2 preface in HTTP/1.0 clothing, trailing bytes included, is an HTTP/1.0 request
        // for `*`, answered in HTTP/1.0.
        let preface = exchange(&addr, b"PRI * HTTP/1.0\r\n\r\nSM\r\n\r\nH").await;
        assert!(preface.starts_with("HTTP/1.0 404"), "{preface:?}");

        // A websocket client that sends a frame with a reserved opcode is disconnected.
        let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
        socket
            .write_all(
                b"GET /ws/malformed HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: upgrade\r\n\
                  sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n",
            )
            .await
            .unwrap();
        let mut head = [0_u8; 12];
        socket.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 101");
        // FIN + opcode 0x3 (reserved), masked, empty payload.
        socket.write_all(&[0x83, 0x80, 1, 2, 3, 4]).await.unwrap();
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(30), socket.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "the server kept a websocket open after an invalid frame");

        assert_eq!(client::get(&base, "/hello?name=still").await.body, "hello, still!\n");
        let cut_after = slowloris.await.unwrap();
        assert!(cut_after < Duration::from_secs(40), "cut off after {cut_after:?}");
        assert_eq!(client::get(&base, "/hello?name=after").await.body, "hello, after!\n");
    });
}

/// `SIGTERM` while clients keep ordering: the server stops accepting, finishes the orders in
/// flight (their calls to the kitchen, on this same server, are answered in-process) and exits
/// 0; every order it answered `201` is in the database.
#[test]
fn sigterm_under_load_loses_no_acknowledged_order() {
    const CLIENTS: usize = 8;
    let dir = scratch_dir("drain-under-load");
    let manifest = demo_manifest(&dir);
    let server = MixioServe::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_mixio")),
        &[manifest.to_str().unwrap()],
        &[],
    );
    let runtime = runtime();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let base = server.url.clone();
            runtime.spawn(async move {
                let order = format!(r#"{{"user": "drain", "dish": "dish {c}"}}"#);
                let mut acknowledged = 0_usize;
                loop {
                    let headers = [("content-type", "application/json")];
                    match client::try_send(&base, "POST", "/order", &headers, order.clone()).await {
                        Ok(reply) if reply.status == 201 => acknowledged += 1,
                        // Refused while draining (a closed listener or connection, or 503).
                        Ok(reply) if reply.status == 503 => return acknowledged,
                        Ok(reply) => panic!("an order failed: {reply:?}"),
                        Err(_) => return acknowledged,
                    }
                }
            })
        })
        .collect();
    runtime.block_on(async {
        // Wait until orders are flowing, then stop the server.
        let db = dir.join("data").join("app.db");
        wait_until("the first orders", || count_orders(&db) >= 20).await;
    });
    server.terminate();
    let acknowledged: usize = clients.into_iter().map(|c| runtime.block_on(c).unwrap()).sum();
    let status = server.stop();
    assert_eq!(status.code(), Some(0), "the server exits 0 after draining");
    let stored = count_orders(&dir.join("data").join("app.db"));
    assert!(acknowledged >= 20, "{acknowledged} orders acknowledged");
    // Every acknowledged order is stored; at most one per client more (its answer was cut off
    // by the client giving up, never by the server dropping it).
    assert!(
        (acknowledged..=acknowledged + CLIENTS).contains(&stored),
        "{acknowledged} acknowledged, {stored} stored"
    );
}

/// The orders of user `drain` in the demo's database (0 before it exists).
fn count_orders(db: &std::path::Path) -> usize {
    let Ok(db) = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return 0;
    };
    db.query_row("SELECT count(*) FROM orders WHERE user_name = 'drain'", [], |r| r.get::<_, i64>(0))
        .map_or(0, |n| n as usize)
}

/// The hostile manifest plus `guests/hostile-wasi` on `/hostile-wasi`, allowed to reach
/// loopback.
fn wasi_manifest(dir: &std::path::Path) -> String {
    format!(
        "{}\n[components.hostile-wasi]\nsource = \"{}\"\nroutes = [\"/hostile-wasi\"]\n\
         allowed_hosts = [\"http://127.0.0.1:*\"]\nlimits = {{ timeout = \"20s\" }}\n",
        manifest(dir),
        guest("hostile-wasi").display()
    )
}

/// A `wasi:http` guest that traps after its response has begun: the client gets the start of a
/// chunked body and then a cut connection, never a clean end that would pass for the whole
/// answer; the instance is gone and the server answers on.
#[test]
fn a_guest_trapping_mid_response_cuts_the_body_off() {
    let runtime = runtime();
    let dir = scratch_dir("respond-then-trap");
    runtime.block_on(async {
        let (base, _, host) = start_in_process(&wasi_manifest(&dir)).await;
        let addr = base.trim_start_matches("http://").to_string();
        for _ in 0..3 {
            let request = format!("GET /hostile-wasi?do=respond-then-trap HTTP/1.1\r\nhost: {addr}\r\n\r\n");
            let answer = exchange(&addr, request.as_bytes()).await;
            // Had the host not sent the head yet when the guest trapped, the connection closes
            // with nothing sent, which does not pass for an answer either.
            if answer.is_empty() {
                continue;
            }
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
            assert!(answer.contains("transfer-encoding: chunked"), "{answer:?}");
            assert!(answer.contains("the start "), "{answer:?}");
            // The last chunk (`0\r\n\r\n`) never comes: the body is cut, not ended.
            assert!(!answer.ends_with("0\r\n\r\n"), "the cut body looks complete: {answer:?}");
        }
        wait_until("every instance to go", || host.metrics().instances == 0).await;
        assert_eq!(client::get(&base, "/hello?name=after").await.body, "hello, after!\n");
    });
}

/// A loopback backend that counts its connections open at once and holds every answer until
/// `hold_until` requests have arrived (or 10 s have passed).
struct CountingBackend {
    addr: String,
    peak: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl CountingBackend {
    async fn start(hold_until: usize) -> CountingBackend {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (open, peak, arrived) =
            (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let released = Arc::new(tokio::sync::Notify::new());
        let peak_seen = peak.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else { return };
                let now_open = open.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now_open, Ordering::SeqCst);
                let (open, arrived, released) = (open.clone(), arrived.clone(), released.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0_u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let release = released.notified();
                    if arrived.fetch_add(1, Ordering::SeqCst) + 1 >= hold_until {
                        released.notify_waiters();
                    } else {
                        let _ = tokio::time::timeout(Duration::from_secs(10), release).await;
                    }
                    // No longer counted once it answers: the answer lets the guest start
                    // another request, which must not count this one as still open.
                    open.fetch_sub(1, Ordering::SeqCst);
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                    let _ = socket.write_all(answer).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        CountingBackend { addr, peak: peak_seen }
    }

    fn peak(&self) -> usize {
        self.peak.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// One instance starting 200 outbound requests at once gets 64 of them (the documented limit)
/// in flight and a refusal naming the limit for the rest; the backend never sees more than 64
/// connections from it.
#[test]
fn an_instance_has_at_most_64_outbound_requests_in_flight() {
    assert_eq!(mixio_host::capabilities::http_client::MAX_OUTBOUND_IN_FLIGHT, 64);
    let runtime = runtime();
    let dir = scratch_dir("fan-out");
    runtime.block_on(async {
        let backend = CountingBackend::start(64).await;
        let (base, _, host) = start_in_process(&wasi_manifest(&dir)).await;
        let reply = client::get(&base, &format!("/hostile-wasi?do=fan-out&n=200&to={}", backend.addr)).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let counts = reply.body.lines().next().unwrap();
        let numbers: Vec<usize> =
            counts.split(", ").map(|part| part.rsplit(' ').next().unwrap().parse().unwrap()).collect();
        let [ok, refused, failed] = numbers[..] else { panic!("{counts:?}") };
        assert!(ok >= 64 && refused >= 1 && failed == 0 && ok + refused == 200, "{counts:?}");
        assert!(
            reply.body.contains("too many outbound requests in flight (the limit is 64)"),
            "{:?}",
            reply.body
        );
        assert_eq!(backend.peak(), 64);
        wait_until("every instance to go", || host.metrics().instances == 0).await;
    });
}
