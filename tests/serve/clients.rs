//! Hostile clients: every way an anonymous client could hold the server's time, descriptors or
//! memory is cut at its bound (see the table in RELIABILITY.md), while well-behaved clients are
//! served throughout; and one component never reaches another's data, whatever the names.
//! Every bound is shown by counting (answers, open connections, live channels), never by
//! timing.

use std::path::Path;
use std::time::Duration;

use mixio_host::{Grants, Host, Request};
use mixio_serve::ServerStats;
use mixio_tests::client;
use mixio_tests::serve::{MixioServe, scratch_dir, start_in_process};
use mixio_tests::{guest, wait_until};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The runtime of each test: two threads, as on the target machine.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Starts a server of [`manifest`]`(dir, server, limits)` in this process, and runs `test` with
/// its URL, its counters and its host, on the two-thread runtime.
fn with_server<F: Future<Output = ()>>(
    dir: &Path,
    server: &str,
    limits: &str,
    test: impl FnOnce(String, ServerStats, Host) -> F,
) {
    runtime().block_on(async {
        let (base, stats, host) = start_in_process(&manifest(dir, server, limits)).await;
        test(base, stats, host).await;
    });
}

/// A `mixio serve` process of [`manifest`]`(dir, "", "")` with `args`, and a file-descriptor
/// limit if `fd_limit` is given.
fn serve_child(dir: &Path, args: &[&str], fd_limit: Option<u32>) -> MixioServe {
    let path = dir.join("mixio.toml");
    std::fs::write(&path, manifest(dir, "", "")).unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_mixio"));
    let args: Vec<&str> = [path.to_str().unwrap()].into_iter().chain(args.iter().copied()).collect();
    match fd_limit {
        Some(limit) => MixioServe::start_with_fd_limit(bin, &args, &[], limit),
        None => MixioServe::start(bin, &args, &[]),
    }
}

/// A manifest with `hello` on `/hello`, `hostile` on `/hostile`, `hostile-wasi` on
/// `/hostile-wasi`, the server settings `server` and the limits `limits` added to every
/// component's.
fn manifest(dir: &Path, server: &str, limits: &str) -> String {
    let limits = if limits.is_empty() { String::new() } else { format!(", {limits}") };
    format!(
        r#"
        name = "clients"
        data_dir = "{data}"
        static_dir = "{data}"
        [server]
        {server}
        [components.hello]
        source = "{hello}"
        routes = ["/hello"]
        limits = {{ timeout = "3s", max_concurrent = 1, queue = 0 {limits} }}
        [components.hostile]
        source = "{hostile}"
        routes = ["/hostile"]
        limits = {{ timeout = "30s" {limits} }}
        [components.hostile-wasi]
        source = "{hostile_wasi}"
        routes = ["/hostile-wasi"]
        limits = {{ timeout = "3s", max_concurrent = 1, queue = 1 {limits} }}
        "#,
        data = dir.display(),
        hello = guest("hello").display(),
        hostile = guest("hostile").display(),
        hostile_wasi = guest("hostile-wasi").display(),
    )
}

/// Reads what the server sends on `socket` until it closes the connection (at most 60 s: a bound
/// against a hang); a reset counts as closed.
async fn read_until_closed(socket: &mut TcpStream) -> String {
    String::from_utf8_lossy(&read_bytes_until_closed(socket).await).into_owned()
}

/// [`read_until_closed`], as bytes.
async fn read_bytes_until_closed(socket: &mut TcpStream) -> Vec<u8> {
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    let read = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept the connection open for 60 s");
    answer
}

/// A connection to `addr` that has sent `head` (a request's headers).
async fn connect_and_send(addr: &str, head: &str) -> TcpStream {
    let mut socket = TcpStream::connect(addr).await.expect("connect");
    socket.write_all(head.as_bytes()).await.expect("send the headers");
    socket
}

/// A request's head with a body of `length` bytes to come.
fn post_head(path: &str, length: usize) -> String {
    format!("POST {path} HTTP/1.1\r\nhost: test\r\ncontent-length: {length}\r\n\r\n")
}

/// Sends a byte of body to `path` every quarter of a second until the server answers or closes;
/// returns the answer.
async fn dribble_body(addr: String, path: &'static str) -> String {
    let mut socket = connect_and_send(&addr, &post_head(path, 1000)).await;
    for _ in 0..1000 {
        if socket.write_all(b"x").await.is_err() {
            break;
        }
        tokio::select! {
            // The server answers (and closes) while the body is still coming.
            _ = socket.readable() => break,
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
    read_until_closed(&mut socket).await
}

/// Sends 10 bytes of body to `path`, then nothing; returns the answer.
async fn stall_body(addr: String, path: &'static str) -> String {
    let mut socket = connect_and_send(&addr, &post_head(path, 1000)).await;
    socket.write_all(&[b'x'; 10]).await.expect("send the start of the body");
    read_until_closed(&mut socket).await
}

/// A body sent at four bytes a second is cut at the component's deadline, one that stops
/// coming at the idle bound, for a mixio handler and a `wasi:http` component alike; none holds
/// its component's only instance slot meanwhile (their queues are empty: a held slot would turn
/// the well-behaved requests away).
#[test]
fn slow_and_stalled_request_bodies_are_cut_and_hold_no_slot() {
    let dir = scratch_dir("slow-bodies");
    with_server(&dir, "body_idle_timeout = \"2s\"", "", |base, stats, _host| async move {
        let addr = base.trim_start_matches("http://").to_string();
        let paths = ["/hello", "/hostile-wasi?do=status&code=200"];
        let mut slow = Vec::new();
        let mut stalled = Vec::new();
        for path in paths {
            slow.extend((0..10).map(|_| tokio::spawn(dribble_body(addr.clone(), path))));
            stalled.extend((0..10).map(|_| tokio::spawn(stall_body(addr.clone(), path))));
        }
        wait_until("the 40 slow clients to connect", || stats.connections() >= 40).await;
        for i in 0..10 {
            let reply = client::get(&base, &format!("/hello?name=g{i}")).await;
            assert_eq!((reply.status, reply.body.as_str()), (200, &*format!("hello, g{i}!\n")));
            let reply = client::get(&base, "/hostile-wasi?do=status&code=200").await;
            assert_eq!(reply.status, 200, "{reply:?}");
        }
        for answer in joined(slow).await {
            assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
            assert!(answer.contains("did not arrive within the deadline of 3s"), "{answer:?}");
        }
        for answer in joined(stalled).await {
            assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
            assert!(answer.contains("no byte of the request body arrived for 2s"), "{answer:?}");
        }
        wait_until("every connection to close", || stats.connections() == 0).await;
        for name in ["hello", "hostile-wasi"] {
            let admission = stats.admission(name).unwrap();
            assert_eq!((admission.peak_running, admission.rejected), (1, 0), "{name}: {admission:?}");
        }
        assert_eq!(stats.body_memory(), 0, "no body is held any more");
    });
}

/// Request bodies in memory, all requests together, stay within `max_body_memory`: past it a
/// request is answered `503`, and the budget is whole again once the bodies are gone.
#[test]
fn request_bodies_in_memory_stay_within_the_budget() {
    let dir = scratch_dir("body-budget");
    let limits = "max_request_body = \"200KiB\"";
    let server = "max_body_memory = \"256KiB\"\nbody_idle_timeout = \"2s\"";
    with_server(&dir, server, limits, |base, stats, _host| async move {
        let addr = base.trim_start_matches("http://").to_string();
        // Three clients send 150 KiB of a 200 KiB body, then stop: 450 KiB wanted, 256 KiB allowed.
        let mut clients = Vec::new();
        for _ in 0..3 {
            let mut socket = connect_and_send(&addr, &post_head("/hostile?do=ok", 200 << 10)).await;
            let _ = socket.write_all(&vec![b'x'; 150 << 10]).await;
            clients.push(tokio::spawn(async move { read_until_closed(&mut socket).await }));
        }
        // The first body is held (and counted) until the idle bound; requests without a body
        // are served meanwhile.
        wait_until("a body to be held", || stats.body_memory() >= 150 << 10).await;
        assert_eq!(client::get(&base, "/hello?name=meanwhile").await.body, "hello, meanwhile!\n");
        let answers = joined(clients).await;
        let refused = answers.iter().filter(|a| a.starts_with("HTTP/1.1 503")).count();
        assert!(refused >= 1, "{answers:?}");
        assert!(
            answers.iter().all(|a| a.starts_with("HTTP/1.1 503") || a.starts_with("HTTP/1.1 408")),
            "{answers:?}"
        );
        wait_until("the bodies to be dropped", || stats.body_memory() == 0).await;
        // With the budget whole again, a 190 KiB body is taken.
        let reply = client::send(&base, "POST", "/hello", &[], vec![b'y'; 190 << 10]).await;
        assert_eq!(reply.status, 200, "{reply:?}");
    });
}

/// The outputs of `tasks`, in order.
async fn joined<T: Send + 'static>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        out.push(task.await.expect("the client task"));
    }
    out
}

/// 600 clients dribbling their bodies against a server with 512 file descriptors: it keeps 256
/// (half) open at once and the rest wait in the kernel's backlog, so it never runs out of
/// descriptors; the admin listener's `/healthz` (even with 100 idle connections on the admin
/// listener) and well-behaved requests are answered all along, and every slow client is cut at
/// its deadline.
#[test]
fn six_hundred_slow_clients_against_512_descriptors() {
    let server = serve_child(&scratch_dir("fd-limit"), &["--admin-listen", "127.0.0.1:0"], Some(512));
    let admin = server.admin_url.clone().expect("the admin listener's URL");
    let runtime = runtime();
    runtime.block_on(async {
        let metrics = || async { client::get(&admin, "/metrics").await.body };
        assert!(metrics().await.contains("mixio_connections_max 256"), "{}", metrics().await);
        // Idle connections on the admin listener, more than it takes: each is closed by the
        // server (its header bound), and probes are answered meanwhile.
        let admin_addr = admin.trim_start_matches("http://").to_string();
        let mut idle_on_admin = Vec::new();
        for _ in 0..100 {
            let mut socket = TcpStream::connect(&admin_addr).await.unwrap();
            idle_on_admin.push(tokio::spawn(async move { read_until_closed(&mut socket).await }));
        }
        let addr = server.url.trim_start_matches("http://").to_string();
        let slow: Vec<_> = (0..600).map(|_| tokio::spawn(dribble_body(addr.clone(), "/hello"))).collect();
        let open = |text: &str| -> u64 {
            text.lines()
                .find_map(|l| l.strip_prefix("mixio_connections "))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        for _ in 0..3000 {
            if open(&metrics().await) == 256 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(open(&metrics().await), 256, "the cap is reached and held");
        for i in 0..10 {
            assert_eq!(client::get(&admin, "/healthz").await.status, 200);
            let reply = client::get(&server.url, &format!("/hello?name=w{i}")).await;
            assert_eq!((reply.status, reply.body.as_str()), (200, &*format!("hello, w{i}!\n")));
        }
        assert_eq!(joined(idle_on_admin).await.len(), 100, "every idle admin connection was closed");
        let answers = joined(slow).await;
        let other: Vec<&String> =
            answers.iter().filter(|a| !a.contains("did not arrive within the deadline of 3s")).collect();
        assert!(
            other.is_empty(),
            "{} of 600 slow clients got another answer than 408: {other:?}",
            other.len()
        );
        for _ in 0..3000 {
            if open(&metrics().await) == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(open(&metrics().await), 0, "every connection is closed");
    });
    let log = server.log();
    assert!(!log.contains("Too many open files"), "{log}");
    assert!(log.contains("new connections wait until one closes"), "{log}");
}

/// Clients that request a large response (a guest's, a static file) and read nothing, or read
/// a hundred bytes now and then, are cut after the write idle bound and counted; a reading
/// client gets its whole answer meanwhile.
#[test]
fn clients_that_never_read_are_cut() {
    let dir = scratch_dir("never-read");
    std::fs::write(dir.join("big.bin"), vec![7u8; 20 << 20]).unwrap();
    with_server(&dir, "write_idle_timeout = \"3s\"", "", |base, stats, _host| async move {
        let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
        let mut stalled = Vec::new();
        let paths = (0..10).map(|_| "/hostile?do=huge-body&mb=9").chain((0..8).map(|_| "/big.bin"));
        for (i, path) in paths.enumerate() {
            // A small receive buffer: the server's writes stall long before the answer's end.
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.set_recv_buffer_size(4096).unwrap();
            let mut stream = socket.connect(addr).await.unwrap();
            stream.write_all(format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n").as_bytes()).await.unwrap();
            if i >= 15 {
                // A trickle: 100 bytes every half second, far below what the bound asks.
                stalled.push(tokio::spawn(async move {
                    let mut buf = [0u8; 100];
                    for _ in 0..600 {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                        }
                    }
                    panic!("a trickling reader was served for 5 minutes");
                }));
            } else {
                stalled.push(tokio::spawn(async move {
                    let _held = stream;
                    std::future::pending::<()>().await
                }));
            }
        }
        wait_until("the 18 slow readers to be cut", || stats.write_timeouts() == 18).await;
        let reply = client::get(&base, "/big.bin").await;
        assert_eq!((reply.status, reply.body.len()), (200, 20 << 20));
        for reader in stalled {
            reader.abort();
        }
        wait_until("every connection to close", || stats.connections() == 0).await;
        assert_eq!(stats.write_timeouts(), 18, "the reading client was not cut");
    });
}

/// A client that does not read a `wasi:http` component's large answer does not keep the
/// component's only slot: the slot is the instance's, which ends at its deadline, and the next
/// request (waiting in the queue of one) is served, though the first client's connection is
/// still open.
#[test]
fn a_slow_reader_does_not_hold_a_wasi_http_slot() {
    let dir = scratch_dir("slow-reader-slot");
    with_server(&dir, "write_idle_timeout = \"60s\"", "", |base, stats, _host| async move {
        let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut reader = socket.connect(addr).await.unwrap();
        reader.write_all(b"GET /hostile-wasi?do=big&kb=16384 HTTP/1.1\r\nhost: test\r\n\r\n").await.unwrap();
        wait_until("the big answer to be running", || {
            stats.admission("hostile-wasi").is_some_and(|a| a.running == 1)
        })
        .await;
        let next = client::get(&base, "/hostile-wasi?do=status&code=200").await;
        assert_eq!(next.status, 200, "{next:?}");
        assert!(stats.connections() >= 1, "the slow reader is still connected");
        drop(reader);
    });
}

/// A kept-alive connection that sends no next request is closed at the header bound.
#[test]
fn idle_keep_alive_connections_are_closed() {
    let dir = scratch_dir("keep-alive");
    with_server(&dir, "header_timeout = \"1s\"", "", |base, stats, _host| async move {
        let addr = base.trim_start_matches("http://");
        let mut socket = connect_and_send(addr, "GET /hello?name=once HTTP/1.1\r\nhost: test\r\n\r\n").await;
        assert_eq!(client::get(&base, "/hostile?do=ok").await.body, "fine\n");
        let answer = read_until_closed(&mut socket).await;
        assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("hello, once!\n"), "{answer:?}");
        assert!(!answer.to_ascii_lowercase().contains("connection: close"), "kept alive: {answer:?}");
        wait_until("the connection to be counted closed", || stats.connections() == 0).await;
    });
}

/// 10,000 websocket channels joined and left, 100 at a time: each batch's channels, and their
/// subscriptions on the pub/sub backend, are gone once their clients are.
#[test]
fn ten_thousand_channels_joined_and_left_leave_none() {
    let dir = scratch_dir("channels");
    with_server(&dir, "", "", |base, stats, host| async move {
        for batch in 0..100 {
            let clients: Vec<_> = (0..100)
                .map(|i| {
                    let base = base.clone();
                    tokio::spawn(async move { client::listen(&base, &format!("c{batch}x{i}")).await })
                })
                .collect();
            let sockets = joined(clients).await;
            assert_eq!(stats.websocket_channels(), 100);
            assert_eq!(client::get(&base, &format!("/hello?name=b{batch}")).await.status, 200);
            drop(sockets);
            wait_until("the batch's channels to go", || stats.websocket_channels() == 0).await;
            wait_until("their subscriptions to go", || host.pubsub_subjects() == 0).await;
        }
        wait_until("every connection to close", || stats.websocket_clients() == 0).await;
    });
}

/// Opens a websocket to `channel` by hand, with a small receive buffer; returns the stream
/// after the `101`.
async fn raw_websocket(addr: std::net::SocketAddr, channel: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let head = format!(
        "GET /ws/{channel} HTTP/1.1\r\nhost: test\r\nupgrade: websocket\r\nconnection: upgrade\r\n\
         sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    while !response.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.unwrap();
        response.push(byte[0]);
    }
    assert!(response.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&response));
    stream
}

/// Four clients send pings and never read the pongs: each is disconnected once its pongs back
/// up, with nothing kept for it, while a well-behaved listener on the same server receives.
#[test]
fn a_ping_flood_is_disconnected() {
    let dir = scratch_dir("ping-flood");
    with_server(&dir, "write_idle_timeout = \"60s\"", "", |base, stats, host| async move {
        let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
        let mut listener = client::listen(&base, "calm").await;
        let flooders: Vec<_> = (0..4)
            .map(|i| {
                tokio::spawn(async move {
                    let mut socket = raw_websocket(addr, &format!("flood{i}")).await;
                    // A masked ping with a 125-byte payload, the most a control frame carries.
                    let mut ping = vec![0x89, 0x80 | 125, 1, 2, 3, 4];
                    ping.extend(std::iter::repeat_n(b'p' ^ 1, 125));
                    let burst = ping.repeat(64);
                    // Bounded: 2 GiB of pings is far more than the server lets a client owe it.
                    for _ in 0..(2 << 30) / burst.len() {
                        if socket.write_all(&burst).await.is_err() {
                            return true;
                        }
                    }
                    false
                })
            })
            .collect();
        assert!(joined(flooders).await.into_iter().all(|cut| cut), "every flooder was disconnected");
        host.send_websocket("calm", "still here").await.unwrap();
        assert_eq!(client::next_text(&mut listener).await, "still here");
        wait_until("the flooders to be gone", || stats.websocket_clients() == 1).await;
        assert_eq!(stats.websocket_channels(), 1);
    });
}

/// A websocket client that answers nothing is pinged, then closed at the idle bound; one that
/// answers pings (as every websocket library does) stays.
#[test]
fn silent_websocket_clients_are_closed() {
    use futures_util::StreamExt;
    let dir = scratch_dir("ws-idle");
    with_server(&dir, "websocket_idle_timeout = \"4s\"", "", |base, stats, _host| async move {
        let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
        let mut silent = raw_websocket(addr, "quiet").await;
        // A client that reads (tungstenite answers each ping as it reads the next frame): it
        // gets ping after ping and stays, past the idle bound.
        let mut listener = client::listen(&base, "quiet").await;
        let listening = tokio::spawn(async move {
            for _ in 0..3 {
                match tokio::time::timeout(Duration::from_secs(30), listener.next()).await {
                    Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Ping(_)))) => {}
                    other => panic!("the listening client was dropped: {other:?}"),
                }
            }
            listener
        });
        // The silent client receives a ping, then a close frame, then the end of the connection.
        let frames = read_bytes_until_closed(&mut silent).await;
        assert_eq!(opcodes(&frames), [0x9, 0x8], "a ping, then a close: {frames:?}");
        let _listener = listening.await.unwrap();
        assert_eq!(stats.websocket_clients(), 1);
    });
}

/// The opcodes of the unmasked frames (each shorter than 126 bytes) a server sent.
fn opcodes(mut frames: &[u8]) -> Vec<u8> {
    let mut opcodes = Vec::new();
    while let [first, length, rest @ ..] = frames {
        opcodes.push(first & 0x0f);
        frames = rest.get(usize::from(length & 0x7f)..).unwrap_or_default();
    }
    opcodes
}

/// Components whose names the old encoding made alike ("t x" and "t_x", "_t" and "t", "tö" and
/// "t_") keep their own counters; `secq`'s topic `x.news` and `secq.x`'s topic `news` are
/// different subjects.
#[tokio::test]
async fn names_that_once_collided_keep_their_own_data() {
    let host = Host::builder()
        .kv_store("default", "memory")
        .sql_database("default", format!("sqlite:{}", scratch_dir("collisions").join("todo.db").display()))
        .build()
        .unwrap();
    let wasm = std::fs::read(guest("todo")).unwrap();
    let grants = Grants::new().kv("default").sql("default");
    let hits = |r: mixio_host::Response| -> i64 {
        serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["hits"].as_i64().unwrap()
    };
    for (first, second) in [("t x", "t_x"), ("_t", "t"), ("tö", "t_")] {
        let a = host.load_bytes(first, &wasm, &grants).unwrap();
        let b = host.load_bytes(second, &wasm, &grants).unwrap();
        assert_eq!(hits(a.call(Request::get("/hits")).await.unwrap()), 1);
        assert_eq!(hits(a.call(Request::get("/hits")).await.unwrap()), 2);
        assert_eq!(hits(b.call(Request::get("/hits")).await.unwrap()), 1, "`{second}` has its own counter");
    }

    use futures_util::StreamExt;
    let relay = std::fs::read(guest("relay")).unwrap();
    let mut secq = host.subscribe(&Host::subject("secq", "x.news")).await.unwrap();
    let mut secq_x = host.subscribe(&Host::subject("secq.x", "news")).await.unwrap();
    let publish = |name: &'static str, topic: &'static str, text: &'static str| {
        let component = host.load_bytes(name, &relay, &Grants::new().topic(topic)).unwrap();
        async move {
            let r =
                component.call(Request::new("POST", format!("/publish?topic={topic}")).with_body(text)).await;
            assert_eq!(r.unwrap().status, 204);
        }
    };
    publish("secq", "x.news", "to secq").await;
    publish("secq.x", "news", "to secq.x").await;
    async fn next(sub: &mut mixio_host::capabilities::pubsub::Subscription) -> String {
        let message = tokio::time::timeout(Duration::from_secs(5), sub.next()).await;
        String::from_utf8(message.unwrap().unwrap().to_vec()).unwrap()
    }
    assert_eq!(next(&mut secq).await, "to secq");
    assert_eq!(next(&mut secq_x).await, "to secq.x");
    let nothing = tokio::time::timeout(Duration::from_millis(200), secq.next()).await;
    assert!(nothing.is_err(), "secq received secq.x's message");
}

/// Nothing outside `static_dir` is served, through `..`, a symlink to a file or to a directory
/// outside; a FIFO in it is refused without blocking; files inside, symlinked or not, are served.
#[test]
fn static_files_stay_inside_the_static_dir() {
    let dir = scratch_dir("static");
    let outside = scratch_dir("static-outside");
    std::fs::write(outside.join("secret.txt"), "secret").unwrap();
    std::fs::write(dir.join("page.html"), "<p>page</p>").unwrap();
    std::os::unix::fs::symlink(outside.join("secret.txt"), dir.join("leak.txt")).unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(dir.join("page.html"), dir.join("alias.html")).unwrap();
    let fifo = std::process::Command::new("mkfifo").arg(dir.join("pipe.txt")).status().unwrap();
    assert!(fifo.success());
    with_server(&dir, "", "", |base, _stats, _host| async move {
        for path in ["/leak.txt", "/elsewhere/secret.txt", "/pipe.txt", "/../static-outside/secret.txt"] {
            let reply = client::get(&base, path).await;
            assert_eq!(reply.status, 404, "{path}: {reply:?}");
            assert!(!reply.body.contains("secret"), "{path}");
        }
        assert_eq!(client::get(&base, "/page.html").await.body, "<p>page</p>");
        assert_eq!(client::get(&base, "/alias.html").await.body, "<p>page</p>");
    });
}

/// RFC 9112 §3.2: an HTTP/1.1 request without a `Host`, or any request with two, is a `400`;
/// an HTTP/1.0 request may go without.
#[test]
fn host_headers_follow_the_rfc() {
    let dir = scratch_dir("host-header");
    with_server(&dir, "", "", |base, _stats, _host| async move {
        let addr = base.trim_start_matches("http://");
        let ask = |head: &'static str| async move {
            let mut socket = connect_and_send(addr, head).await;
            read_until_closed(&mut socket).await
        };
        let none = ask("GET /hello HTTP/1.1\r\n\r\n").await;
        assert!(none.starts_with("HTTP/1.1 400") && none.contains("must have a Host header"), "{none:?}");
        let two = ask("GET /hello HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n").await;
        assert!(two.starts_with("HTTP/1.1 400") && two.contains("more than one Host"), "{two:?}");
        let two_old = ask("GET /hello HTTP/1.0\r\nhost: a\r\nhost: b\r\n\r\n").await;
        assert!(two_old.starts_with("HTTP/1.0 400"), "{two_old:?}");
        let old = ask("GET /hello?name=old HTTP/1.0\r\n\r\n").await;
        assert!(old.starts_with("HTTP/1.0 200") && old.ends_with("hello, old!\n"), "{old:?}");
        let one = ask("GET /hello?name=one HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n").await;
        assert!(one.starts_with("HTTP/1.1 200"), "{one:?}");
    });
}

/// A guest answering a 1xx status (a handler's `101`, a `wasi:http` component's `103`) gets a
/// `500` with the reason, and the next request pipelined on the same connection is answered.
#[test]
fn a_guests_informational_status_is_a_500_and_the_connection_goes_on() {
    let dir = scratch_dir("informational");
    with_server(&dir, "", "", |base, _stats, _host| async move {
        let addr = base.trim_start_matches("http://");
        let spec = "101\nupgrade: websocket\n\n";
        let pipelined = format!(
            "POST /hostile?do=respond HTTP/1.1\r\nhost: test\r\ncontent-length: {}\r\n\r\n{spec}\
             GET /hostile-wasi?do=status&code=103 HTTP/1.1\r\nhost: test\r\n\r\n\
             GET /hello?name=next HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n",
            spec.len()
        );
        let mut socket = connect_and_send(addr, &pipelined).await;
        let answers = read_until_closed(&mut socket).await;
        let statuses: Vec<&str> =
            answers.match_indices("HTTP/1.1 ").map(|(i, _)| &answers[i + 9..i + 12]).collect();
        assert_eq!(statuses, ["500", "500", "200"], "{answers}");
        assert!(answers.contains("answered with the informational status 101"), "{answers}");
        assert!(answers.contains("answered with the informational status 103"), "{answers}");
        assert!(answers.ends_with("hello, next!\n"), "{answers}");
    });
}

/// A `wasi:http` guest's stdout and stderr reach the log line for line, empty lines included,
/// and a guest that returns without answering gets a `500` that the log names with the request
/// id, the component and the reason.
#[test]
fn guest_output_and_guest_failures_are_logged() {
    let server = serve_child(&scratch_dir("guest-log"), &["--log-format", "json"], None);
    let runtime = runtime();
    runtime.block_on(async {
        let printed =
            client::send(&server.url, "GET", "/hostile-wasi?do=print", &[("x-request-id", "print-1")], "")
                .await;
        assert_eq!(printed.status, 200);
        let failed = client::send(
            &server.url,
            "GET",
            "/hostile-wasi?do=no-response",
            &[("x-request-id", "mute-1")],
            "",
        )
        .await;
        assert_eq!(failed.status, 500, "{failed:?}");
    });
    let log = server.log_when(|l| l.contains("mute-1") && l.matches("print-1").count() >= 6);
    let lines: Vec<serde_json::Value> = log.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let of = |id: &str, stream: &str| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l["span"]["id"] == id && l["fields"]["stream"] == stream)
            .map(|l| l["fields"]["message"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(of("print-1", "stdout"), ["first", "", "  indented", "last"], "{log}");
    assert_eq!(of("print-1", "stderr"), ["warned", ""], "{log}");
    let failure = lines
        .iter()
        .find(|l| l["span"]["id"] == "mute-1" && l["fields"]["status"] == 500)
        .unwrap_or_else(|| panic!("no log line for the failed request:\n{log}"));
    assert_eq!(failure["fields"]["component"], "hostile-wasi", "{failure}");
    let message = failure["fields"]["message"].as_str().unwrap();
    assert!(message.contains("returned without setting a response"), "{failure}");
}
