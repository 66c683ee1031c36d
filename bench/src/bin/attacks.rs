//! The hostile-client attacks (`bench/attacks.sh`, see RELIABILITY.md): what each costs a running
//! `mixio serve` in resident memory, and whether the server's bounds end it.
//!
//! ```text
//! attacks BASE_URL ADMIN_URL SERVER_PID
//! ```
//!
//! The attacks run one after another, each once the previous one's connections are gone (as
//! `/metrics` on the admin listener tells). While each runs, a well-behaved client sends a few
//! `GET /hello?name=..` a second, and the server's `VmRSS` is sampled every 100 ms. One Markdown
//! row per attack: resident memory before, at the peak, after, and after 200 more well-behaved
//! requests (memory the allocator keeps until it is busy again is not a leak), what the server
//! did, and the well-behaved requests answered. Exits 1 if a well-behaved request failed or an attack was not
//! cut (a client still connected past its bound, or connections still open 60 s after the
//! attack); the memory is reported, never checked.
//!
//! `CHANNELS` (default 10,000) and `IDLE_CONNECTIONS` (default 3,000) size attacks 5 and 7;
//! `ATTACKS=2,7` runs only those; `NPROC` is what the header line reports as the core count
//! (default: the parallelism Rust sees).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime};

use mixio_tests::client;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout};

/// How long the connections of an attack may stay open once its clients are done or gave up.
const QUIET_BOUND: Duration = Duration::from_secs(60);
/// How long an attacking client waits for the server to end its connection.
const CLIENT_BOUND: Duration = Duration::from_secs(60);
/// The request body of attack 2, and how much of it is sent before the client stalls.
const UPLOAD: usize = 10 << 20;
const UPLOAD_SENT: usize = 9 << 20;
/// The response body `guests/hostile` is asked for in attack 3, in MiB.
const HUGE_BODY_MIB: usize = 9;
/// The static file of attack 4 (bench/attacks.sh writes it).
const STATIC_FILE: (&str, usize) = ("/big.bin", 50 << 20);
const MIB: f64 = 1024.0 * 1024.0;
/// The well-behaved requests sent after each attack, before the last memory reading.
const SETTLE: usize = 200;

/// The server's `/metrics`: each sample by its name with labels.
struct Metrics(HashMap<String, f64>);

impl Metrics {
    fn get(&self, name: &str) -> u64 {
        self.0.get(name).copied().unwrap_or(0.0) as u64
    }
}

async fn metrics(admin: &str) -> Result<Metrics, String> {
    let reply = timeout(Duration::from_secs(10), client::try_send(admin, "GET", "/metrics", &[], ""))
        .await
        .map_err(|_| "GET /metrics: no answer within 10 s".to_string())??;
    if reply.status != 200 {
        return Err(format!("GET /metrics: {}", reply.status));
    }
    let samples = reply
        .body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter_map(|(name, value)| Some((name.to_string(), value.parse().ok()?)))
        .collect();
    Ok(Metrics(samples))
}

/// Waits (at most [`QUIET_BOUND`]) until the server holds no connection, websocket channel or
/// request body; says what it still holds if it does not.
async fn wait_quiet(admin: &str) -> Result<Duration, String> {
    let started = Instant::now();
    loop {
        let m = metrics(admin).await?;
        let held =
            (m.get("mixio_connections"), m.get("mixio_websocket_channels"), m.get("mixio_body_memory_bytes"));
        if held == (0, 0, 0) {
            return Ok(started.elapsed());
        }
        if started.elapsed() > QUIET_BOUND {
            return Err(format!(
                "{} connections, {} websocket channels, {} bytes of request bodies still held {} s later",
                held.0,
                held.1,
                held.2,
                QUIET_BOUND.as_secs()
            ));
        }
        sleep(Duration::from_millis(100)).await;
    }
}

/// The server's resident memory in KiB, `None` once it is gone.
fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Samples the server's resident memory every 100 ms and keeps the peak since the last
/// [`reset`](Sampler::reset).
struct Sampler {
    pid: u32,
    peak: AtomicU64,
}

impl Sampler {
    fn start(pid: u32) -> Arc<Sampler> {
        let sampler = Arc::new(Sampler { pid, peak: AtomicU64::new(0) });
        let running = sampler.clone();
        tokio::spawn(async move {
            while let Some(kib) = resident_kib(running.pid) {
                running.peak.fetch_max(kib, Relaxed);
                sleep(Duration::from_millis(100)).await;
            }
        });
        sampler
    }

    /// The resident memory now; the peak starts again from it.
    fn reset(&self) -> Option<u64> {
        let now = resident_kib(self.pid)?;
        self.peak.store(now, Relaxed);
        Some(now)
    }
}

/// Well-behaved requests, four a second until `stop`: how many were answered right, and how
/// many not.
async fn well_behaved(base: Arc<str>, stop: Arc<AtomicBool>) -> (u64, u64) {
    let mut requests = tokio::task::JoinSet::new();
    let started = Instant::now();
    let mut n = 0_u64;
    // Bounded: no attack lasts 10 minutes.
    while !stop.load(Relaxed) && started.elapsed() < Duration::from_secs(600) {
        n += 1;
        let base = base.clone();
        requests.spawn(async move {
            let name = format!("good-{n}");
            let path = format!("/hello?name={name}");
            let reply =
                timeout(Duration::from_secs(20), client::try_send(&base, "GET", &path, &[], "")).await;
            match reply {
                Ok(Ok(r)) if r.status == 200 && r.body == format!("hello, {name}!\n") => true,
                other => {
                    eprintln!("well-behaved GET {path} failed: {other:?}");
                    false
                }
            }
        });
        sleep(Duration::from_millis(250)).await;
    }
    let answers = requests.join_all().await;
    let ok = answers.iter().filter(|ok| **ok).count() as u64;
    (ok, answers.len() as u64 - ok)
}

/// What the server did to an attack, and whether it ended every attacking connection.
struct Outcome {
    did: String,
    cut: bool,
}

struct Row {
    attack: String,
    before: u64,
    peak: u64,
    after: u64,
    /// After [`SETTLE`] more well-behaved requests.
    settled: u64,
    did: String,
    good: (u64, u64),
    passed: bool,
}

struct Bench {
    base: String,
    admin: String,
    addr: SocketAddr,
    sampler: Arc<Sampler>,
}

impl Bench {
    /// Runs one attack: waits for the server to be quiet, then runs `attack` with well-behaved
    /// requests beside it, then waits for its connections to be gone; its row.
    async fn run(&self, attack: &str, run: impl Future<Output = Outcome>) -> Row {
        eprintln!("attacks: {attack}");
        if let Err(e) = wait_quiet(&self.admin).await {
            eprintln!("attacks: before `{attack}`: {e}");
        }
        sleep(Duration::from_millis(500)).await;
        let before = self.resident();
        let stop = Arc::new(AtomicBool::new(false));
        let good = tokio::spawn(well_behaved(self.base.as_str().into(), stop.clone()));
        let started = Instant::now();
        let mut outcome = match timeout(Duration::from_secs(180), run).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome { did: "the attack did not end within 180 s".into(), cut: false },
        };
        stop.store(true, Relaxed);
        let good = good.await.expect("the well-behaved client");
        if let Err(e) = wait_quiet(&self.admin).await {
            outcome.did.push_str(&format!("; NOT CUT: {e}"));
            outcome.cut = false;
        }
        eprintln!("attacks: {attack}: {} ({:.1} s)", outcome.did, started.elapsed().as_secs_f64());
        // Let the allocator give back what it frees lazily.
        sleep(Duration::from_secs(1)).await;
        let peak = self.sampler.peak.load(Relaxed);
        let after = self.resident();
        // Memory the allocator keeps after a free until the thread that allocated it allocates
        // again is not a leak: more requests tell them apart.
        let (ok, failed) = self.settle().await;
        let good = (good.0 + ok, good.1 + failed);
        sleep(Duration::from_millis(500)).await;
        let settled = self.resident();
        let passed = outcome.cut && good.1 == 0 && good.0 > 0;
        Row { attack: attack.into(), before, peak, after, settled, did: outcome.did, good, passed }
    }

    /// [`SETTLE`] well-behaved requests, 4 at once, half to each component: how many were
    /// answered right, and how many not.
    async fn settle(&self) -> (u64, u64) {
        let mut answers = Vec::new();
        for round in 0..SETTLE / 4 {
            let requests = (0..4).map(|i| {
                let base = self.base.clone();
                async move {
                    let (path, expected) = if i % 2 == 0 {
                        let name = format!("settle-{round}-{i}");
                        (format!("/hello?name={name}"), format!("hello, {name}!\n"))
                    } else {
                        ("/hostile?do=ok".to_string(), "fine\n".to_string())
                    };
                    let reply =
                        timeout(Duration::from_secs(20), client::try_send(&base, "GET", &path, &[], ""))
                            .await;
                    match reply {
                        Ok(Ok(r)) if r.status == 200 && r.body == expected => true,
                        other => {
                            eprintln!("well-behaved GET {path} failed: {other:?}");
                            false
                        }
                    }
                }
            });
            answers.extend(futures_join(requests).await);
        }
        let ok = answers.iter().filter(|ok| **ok).count() as u64;
        (ok, answers.len() as u64 - ok)
    }

    fn resident(&self) -> u64 {
        self.sampler.reset().unwrap_or_else(|| {
            eprintln!("attacks: the server (pid {}) is gone", self.sampler.pid);
            std::process::exit(1);
        })
    }

    async fn metric(&self, name: &str) -> u64 {
        match metrics(&self.admin).await {
            Ok(m) => m.get(name),
            Err(e) => {
                eprintln!("attacks: {e}");
                0
            }
        }
    }
}

/// How an attacking connection ended: the status of the answer it got, if any, and whether the
/// server closed it within the client's bound (and after how long).
#[derive(Debug, Default)]
struct Ending {
    status: Option<u16>,
    closed: Option<Duration>,
    connect_error: bool,
    /// Open for the client, but the server's kernel has no socket for it: the handshake's last
    /// packet was dropped with the listener's accept queue full, so the server never saw it.
    unseen: bool,
}

/// Reads what the server sends until it closes the connection, for at most `bound`.
async fn ending(reader: &mut (impl AsyncRead + Unpin), started: Instant, bound: Duration) -> Ending {
    let mut head = Vec::new();
    let mut buf = vec![0; 64 << 10];
    let read_all = async {
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if head.len() < 16 {
                        head.extend_from_slice(&buf[..n.min(16)]);
                    }
                }
            }
        }
    };
    let closed = timeout(bound, read_all).await.is_ok().then(|| started.elapsed());
    let status = std::str::from_utf8(&head)
        .ok()
        .and_then(|h| h.strip_prefix("HTTP/1.1 "))
        .and_then(|h| h.get(..3))
        .and_then(|s| s.parse().ok());
    Ending { status, closed, ..Ending::default() }
}

/// Connects to the server, with a receive buffer of `recv_buffer` bytes if given.
async fn connect(addr: SocketAddr, recv_buffer: Option<u32>) -> std::io::Result<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    timeout(Duration::from_secs(20), socket.connect(addr))
        .await
        .map_err(|_| std::io::Error::other("connect timed out"))?
}

/// How an attacking client sends its request body.
#[derive(Clone, Copy)]
enum Sending {
    /// A byte a second, for at most this many bytes.
    Slowly(usize),
    /// This many bytes at once, then nothing.
    ThenStall(usize),
    /// A byte per TCP segment every half millisecond, for this long (each arrives in a read of
    /// its own on the server).
    Segments(Duration),
}

/// A request whose body is sent as `sending` says after `head`; how the server ended it.
async fn upload(addr: SocketAddr, head: String, sending: Sending) -> Ending {
    let Ok(stream) = connect(addr, None).await else {
        return Ending { connect_error: true, ..Ending::default() };
    };
    let started = Instant::now();
    let (mut reader, mut writer) = stream.into_split();
    let write = async move {
        if writer.write_all(head.as_bytes()).await.is_ok() {
            match sending {
                Sending::Slowly(bytes) => {
                    for _ in 0..bytes {
                        if writer.write_all(b"x").await.is_err() {
                            break;
                        }
                        sleep(Duration::from_secs(1)).await;
                    }
                }
                Sending::Segments(during) => {
                    let _ = writer.as_ref().set_nodelay(true);
                    let until = Instant::now() + during;
                    while Instant::now() < until {
                        if writer.write_all(b"s").await.is_err() {
                            break;
                        }
                        sleep(Duration::from_micros(500)).await;
                    }
                }
                Sending::ThenStall(bytes) => {
                    let chunk = vec![b'u'; 64 << 10];
                    for _ in 0..bytes.div_ceil(chunk.len()) {
                        if writer.write_all(&chunk).await.is_err() {
                            break;
                        }
                    }
                }
            }
        }
        // Stall with the connection open (the write half dropped would send a FIN).
        std::future::pending::<()>().await
    };
    tokio::select! {
        ending = ending(&mut reader, started, CLIENT_BOUND) => ending,
        () = write => unreachable!(),
    }
}

/// Counts of the endings of an attack's connections: by status, closed without an answer,
/// still open at the client's bound, not connected; and the latest close.
#[derive(Default)]
struct Endings {
    by_status: std::collections::BTreeMap<u16, u64>,
    closed_unanswered: u64,
    still_open: u64,
    unseen: u64,
    connect_errors: u64,
    latest: Duration,
}

impl Endings {
    fn of(endings: impl IntoIterator<Item = Ending>) -> Endings {
        let mut tally = Endings::default();
        for e in endings {
            if e.connect_error {
                tally.connect_errors += 1;
                continue;
            }
            match e.closed {
                None if e.unseen => tally.unseen += 1,
                None => tally.still_open += 1,
                Some(after) => {
                    tally.latest = tally.latest.max(after);
                    match e.status {
                        Some(status) => *tally.by_status.entry(status).or_default() += 1,
                        None => tally.closed_unanswered += 1,
                    }
                }
            }
        }
        tally
    }

    /// Connections not cut, never seen by the server, not connected.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.still_open > 0 {
            problems.push(format!("{} STILL OPEN after {} s", self.still_open, CLIENT_BOUND.as_secs()));
        }
        if self.unseen > 0 {
            problems.push(format!(
                "{} never reached the server (dropped by the kernel: the listener's accept queue was full)",
                self.unseen
            ));
        }
        if self.connect_errors > 0 {
            problems.push(format!("{} could not connect", self.connect_errors));
        }
        problems
    }

    fn status(&self, status: u16) -> u64 {
        self.by_status.get(&status).copied().unwrap_or(0)
    }

    /// `expected` first (by name), then the rest.
    fn describe(&self, expected: &[u16]) -> String {
        let mut parts: Vec<String> =
            expected.iter().map(|s| format!("{} answered {s}", self.status(*s))).collect();
        for (status, n) in &self.by_status {
            if !expected.contains(status) {
                parts.push(format!("{n} answered {status}"));
            }
        }
        if self.closed_unanswered > 0 {
            parts.push(format!("{} closed without an answer", self.closed_unanswered));
        }
        parts.extend(self.problems());
        format!("{}, the last closed at {:.1} s", parts.join(", "), self.latest.as_secs_f64())
    }
}

async fn join<T: Send + 'static>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.expect("an attacking client"));
    }
    results
}

/// 1: request bodies sent at a byte a second, cut at the component's deadline (3 s) with 408.
async fn slow_bodies(bench: &Bench, clients: usize) -> Outcome {
    let tasks = (0..clients)
        .map(|_| {
            let head = "POST /hello HTTP/1.1\r\nhost: attacks\r\ncontent-length: 1000\r\n\r\n".to_string();
            tokio::spawn(upload(bench.addr, head, Sending::Slowly(1000)))
        })
        .collect();
    let endings = Endings::of(join(tasks).await);
    Outcome { did: endings.describe(&[408]), cut: endings.still_open == 0 }
}

/// 8: request bodies sent a byte per TCP segment (each a read of its own on the server) for 10 s,
/// then stalled: what the server holds for them stays what arrived, not a read buffer per byte.
async fn segment_bodies(bench: &Bench, clients: usize) -> Outcome {
    let tasks = (0..clients)
        .map(|_| {
            let head = "POST /hostile?do=ok HTTP/1.1\r\nhost: attacks\r\ncontent-length: 1000000\r\n\r\n"
                .to_string();
            tokio::spawn(upload(bench.addr, head, Sending::Segments(Duration::from_secs(10))))
        })
        .collect();
    let endings = Endings::of(join(tasks).await);
    Outcome { did: endings.describe(&[408]), cut: endings.still_open == 0 }
}

/// 2: uploads of 10 MiB that stall after 9 MiB: cut at the body's idle bound with 408, or
/// refused with 503 once the bodies held reach `max_body_memory`.
async fn stalled_uploads(bench: &Bench, clients: usize) -> Outcome {
    let refused_before = bench.metric("mixio_body_memory_refused_total").await;
    let tasks = (0..clients)
        .map(|_| {
            let head =
                format!("POST /hostile?do=ok HTTP/1.1\r\nhost: attacks\r\ncontent-length: {UPLOAD}\r\n\r\n");
            tokio::spawn(upload(bench.addr, head, Sending::ThenStall(UPLOAD_SENT)))
        })
        .collect();
    let endings = Endings::of(join(tasks).await);
    let refused = bench.metric("mixio_body_memory_refused_total").await.saturating_sub(refused_before);
    Outcome {
        did: format!(
            "{}; the server counted {refused} refused (503) at max_body_memory",
            endings.describe(&[408, 503])
        ),
        cut: endings.still_open == 0,
    }
}

/// 3 and 4: clients that ask for a large response and never read it: cut after
/// `write_idle_timeout`, counted in `mixio_write_timeouts_total`.
async fn not_reading(bench: &Bench, clients: usize, path: &str, body: usize) -> Outcome {
    let timeouts_before = bench.metric("mixio_write_timeouts_total").await;
    let mut streams = Vec::new();
    let mut connect_errors = 0;
    for _ in 0..clients {
        match connect(bench.addr, Some(4096)).await {
            Ok(mut stream) => {
                let head = format!("GET {path} HTTP/1.1\r\nhost: attacks\r\n\r\n");
                if stream.write_all(head.as_bytes()).await.is_ok() {
                    streams.push(stream);
                }
            }
            Err(_) => connect_errors += 1,
        }
    }
    let started = Instant::now();
    // Until the server has cut them all (or the bound), reading nothing.
    let mut cut_at = None;
    while started.elapsed() < CLIENT_BOUND {
        let timeouts = bench.metric("mixio_write_timeouts_total").await.saturating_sub(timeouts_before);
        if timeouts >= streams.len() as u64 {
            cut_at = Some(started.elapsed());
            break;
        }
        sleep(Duration::from_millis(200)).await;
    }
    let timeouts = bench.metric("mixio_write_timeouts_total").await.saturating_sub(timeouts_before);
    // Now read: a connection the server cut ends before the whole response (what is left is
    // what the kernel's buffers held).
    let tasks = streams
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                let mut buf = vec![0; 256 << 10];
                let mut total = 0;
                let read_all = async {
                    loop {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => total += n,
                        }
                    }
                };
                // Closed before the whole body: cut.
                timeout(Duration::from_secs(10), read_all).await.is_ok() && total < body
            })
        })
        .collect();
    let cut = join(tasks).await.into_iter().filter(|cut| *cut).count();
    let when = match cut_at {
        Some(at) => format!("all cut {:.1} s after the requests", at.as_secs_f64()),
        None => format!("not all cut within {} s", CLIENT_BOUND.as_secs()),
    };
    let mut did =
        format!("{cut}/{clients} cut before the whole response, write timeouts +{timeouts}, {when}");
    if connect_errors > 0 {
        did.push_str(&format!(", {connect_errors} could not connect"));
    }
    Outcome { did, cut: cut == clients && cut_at.is_some() }
}

/// 5: `channels` distinct websocket channels, joined and left by batches of `batch` clients.
async fn channels(bench: &Bench, round: usize, channels: usize, batch: usize) -> Outcome {
    let mut joined = 0;
    let mut failed = 0;
    let mut most = 0;
    for first in (0..channels).step_by(batch) {
        let tasks: Vec<_> = (first..(first + batch).min(channels))
            .map(|n| {
                let base = bench.base.clone();
                tokio::spawn(async move {
                    timeout(Duration::from_secs(20), client::listen(&base, &format!("attack-{round}-{n}")))
                        .await
                        .ok()
                })
            })
            .collect();
        let mut sockets = Vec::new();
        for task in tasks {
            match task.await {
                Ok(Some(socket)) => sockets.push(socket),
                // Timed out, or `listen` panicked (the handshake failed).
                _ => failed += 1,
            }
        }
        joined += sockets.len();
        most = most.max(bench.metric("mixio_websocket_channels").await);
        // Leave: a close frame, then the server's answer until it closes the connection.
        let leaving = sockets
            .into_iter()
            .map(|mut socket| {
                tokio::spawn(async move {
                    let _ = timeout(Duration::from_secs(5), async {
                        let _ = socket.close(None).await;
                        let mut buf = [0; 256];
                        while let Ok(n) = socket.get_mut().read(&mut buf).await
                            && n > 0
                        {}
                    })
                    .await;
                })
            })
            .collect();
        join(leaving).await;
    }
    let mut did = format!(
        "{joined} channels joined and left ({failed} joins failed), at most {most} at once in mixio_websocket_channels"
    );
    let left = wait_quiet(&bench.admin).await;
    let subjects = bench.metric("mixio_pubsub_subjects").await;
    match &left {
        Ok(after) => did.push_str(&format!(
            "; back to 0 channels {:.1} s after the last left, {subjects} pub/sub subjects",
            after.as_secs_f64()
        )),
        Err(e) => did.push_str(&format!("; {e}")),
    }
    Outcome { did, cut: left.is_ok() && failed == 0 }
}

/// A websocket client of `channel` connected by hand, with a small receive buffer.
async fn raw_websocket(addr: SocketAddr, channel: &str) -> std::io::Result<TcpStream> {
    let mut stream = connect(addr, Some(4096)).await?;
    let head = format!(
        "GET /ws/{channel} HTTP/1.1\r\nhost: attacks\r\nupgrade: websocket\r\nconnection: upgrade\r\n\
         sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    let mut response = Vec::new();
    while !response.ends_with(b"\r\n\r\n") && response.len() < 4096 {
        response.push(stream.read_u8().await?);
    }
    if !response.starts_with(b"HTTP/1.1 101") {
        return Err(std::io::Error::other(String::from_utf8_lossy(&response).into_owned()));
    }
    Ok(stream)
}

/// 6: websocket clients that send pings and never read the pongs: each is disconnected.
async fn ping_flood(bench: &Bench, clients: usize) -> Outcome {
    let tasks = (0..clients)
        .map(|i| {
            let addr = bench.addr;
            tokio::spawn(async move {
                let started = Instant::now();
                let Ok(mut socket) = raw_websocket(addr, &format!("flood-{i}")).await else {
                    return None;
                };
                // A masked ping with a 125-byte payload, the most a control frame carries.
                let mut ping = vec![0x89, 0x80 | 125, 1, 2, 3, 4];
                ping.extend(std::iter::repeat_n(b'p' ^ 1, 125));
                let burst = ping.repeat(64);
                let flood = async {
                    // Bounded: 2 GiB of pings is far more than the server lets a client owe it.
                    for _ in 0..(2 << 30) / burst.len() {
                        if socket.write_all(&burst).await.is_err() {
                            return true;
                        }
                    }
                    false
                };
                let cut = timeout(CLIENT_BOUND, flood).await.unwrap_or(false);
                Some(cut.then(|| started.elapsed()))
            })
        })
        .collect();
    let results = join(tasks).await;
    let not_connected = results.iter().filter(|r| r.is_none()).count();
    let cut: Vec<Duration> = results.iter().flatten().flatten().copied().collect();
    let mut did = format!("{}/{clients} flooding clients disconnected", cut.len());
    if not_connected > 0 {
        did.push_str(&format!(", {not_connected} could not connect"));
    }
    Outcome { did, cut: cut.len() == clients }
}

/// 7: connections that send nothing: closed at `header_timeout`.
async fn idle(bench: &Bench, connections: usize) -> Outcome {
    let mut tasks = Vec::new();
    let mut connect_errors = 0;
    let mut most = 0;
    // By batches smaller than the listener's backlog, each accepted before the next: a burst
    // past the accept queue leaves connections the server never sees (the client thinks the
    // handshake done, the kernel dropped its last packet) instead of attacking it.
    for first in (0..connections).step_by(100) {
        let batch = (first..(first + 100).min(connections)).map(|_| connect(bench.addr, None));
        for stream in futures_join(batch).await {
            match stream {
                Ok(mut stream) => {
                    let started = Instant::now();
                    let server_port = bench.addr.port();
                    tasks.push(tokio::spawn(async move {
                        let mut ending = ending(&mut stream, started, CLIENT_BOUND).await;
                        if ending.closed.is_none()
                            && let Ok(local) = stream.local_addr()
                        {
                            ending.unseen = !server_has_socket(server_port, local.port());
                        }
                        ending
                    }));
                }
                Err(_) => connect_errors += 1,
            }
        }
        let accepted = Instant::now();
        while accepted.elapsed() < Duration::from_secs(2) {
            let open = bench.metric("mixio_connections").await;
            most = most.max(open);
            if open >= tasks.len() as u64 {
                break;
            }
            sleep(Duration::from_millis(10)).await;
        }
    }
    let mut endings = Endings::of(join(tasks).await);
    endings.connect_errors += connect_errors;
    let closed = endings.closed_unanswered + endings.by_status.values().sum::<u64>();
    let mut did = format!(
        "{closed}/{connections} closed by the server, the last {:.1} s after it opened; \
         mixio_connections reached {most}",
        endings.latest.as_secs_f64()
    );
    // hyper closes an idle connection without an answer; say so if it answered some.
    for (status, n) in &endings.by_status {
        did.push_str(&format!(" ({n} answered {status} first)"));
    }
    for problem in endings.problems() {
        did.push_str(&format!(", {problem}"));
    }
    Outcome { did, cut: endings.still_open == 0 }
}

/// Whether this machine's kernel has a socket of the server (on `server_port`) connected to
/// the client on `client_port` (from `/proc/net/tcp`, states other than `LISTEN`).
fn server_has_socket(server_port: u16, client_port: u16) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else { return true };
    let port = |address: &str| address.rsplit_once(':').and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.len() > 3
            && fields[3] != "0A"
            && port(fields[1]) == Some(server_port)
            && port(fields[2]) == Some(client_port)
    })
}

/// Runs the futures at once (as spawned tasks) and returns their outputs in order.
async fn futures_join<T: Send + 'static>(
    futures: impl Iterator<Item = impl Future<Output = T> + Send + 'static>,
) -> Vec<T> {
    join(futures.map(tokio::spawn).collect()).await
}

/// Today's date and the time, UTC (`2025-01-31 12:34 UTC`).
fn utc_now() -> String {
    let secs = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, time) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's `civil_from_days`.
    let z = days + 719_468;
    let (era, doe) = (z.div_euclid(146_097), z.rem_euclid(146_097));
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", time / 3600, time % 3600 / 60)
}

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, admin, pid] = &args[..] else {
        eprintln!("usage: attacks BASE_URL ADMIN_URL SERVER_PID");
        std::process::exit(2);
    };
    let pid: u32 = pid.parse().expect("a pid");
    let addr: SocketAddr =
        base.trim_start_matches("http://").trim_end_matches('/').parse().expect("http://IP:PORT");
    assert!(addr.ip().is_loopback(), "attacks are only for a server on this machine");
    let channel_count = env_count("CHANNELS", 10_000);
    let idle_count = env_count("IDLE_CONNECTIONS", 3_000);
    let started = Instant::now();
    let bench = Bench { base: base.clone(), admin: admin.clone(), addr, sampler: Sampler::start(pid) };
    let max_connections = bench.metric("mixio_connections_max").await;
    let cores = std::env::var("NPROC")
        .ok()
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()).to_string());

    let b = &bench;
    // `ATTACKS=2,7` runs only those (by number).
    let chosen = std::env::var("ATTACKS").unwrap_or_default();
    let chosen = |n: &str| chosen.is_empty() || chosen.split(',').any(|c| c.trim() == n);
    let mut rows = Vec::new();
    if chosen("1") {
        let attack = "1. 200 request bodies at 1 byte/s (POST /hello, 3 s deadline)";
        rows.push(b.run(attack, slow_bodies(b, 200)).await);
    }
    if chosen("2") {
        let attack = "2. 40 uploads of 10 MiB stalled after 9 MiB (POST /hostile)";
        rows.push(b.run(attack, stalled_uploads(b, 40)).await);
    }
    if chosen("3") {
        let attack = format!("3. 30 clients not reading a {HUGE_BODY_MIB} MiB guest response");
        let path = format!("/hostile?do=huge-body&mb={HUGE_BODY_MIB}");
        rows.push(b.run(&attack, not_reading(b, 30, &path, HUGE_BODY_MIB << 20)).await);
    }
    if chosen("4") {
        let attack = format!("4. 10 clients not reading a {} MiB static file", STATIC_FILE.1 >> 20);
        rows.push(b.run(&attack, not_reading(b, 10, STATIC_FILE.0, STATIC_FILE.1)).await);
    }
    for round in 1..=2 {
        if chosen("5") {
            let attack =
                format!("5. {channel_count} websocket channels joined and left, 200 at once (round {round})");
            rows.push(b.run(&attack, channels(b, round, channel_count, 200)).await);
        }
    }
    if chosen("6") {
        let attack = "6. ping flood: 4 websocket clients pinging, never reading";
        rows.push(b.run(attack, ping_flood(b, 4)).await);
    }
    if chosen("7") {
        let attack = format!("7. {idle_count} idle connections (nothing sent)");
        rows.push(b.run(&attack, idle(b, idle_count)).await);
    }
    if chosen("8") {
        let attack =
            "8. 50 request bodies sent a byte per TCP segment for 10 s, then stalled (POST /hostile)";
        rows.push(b.run(attack, segment_bodies(b, 50)).await);
    }

    println!(
        "attacks: {}, {cores} cores (nproc), max_connections {max_connections}, {:.0} s",
        utc_now(),
        started.elapsed().as_secs_f64()
    );
    println!();
    println!(
        "| attack | RSS before (MiB) | peak during (MiB) | after (MiB) | after {SETTLE} more requests (MiB) | \
         what the server did | well-behaved requests OK / failed (during, and the {SETTLE} after) |"
    );
    println!("|---|---:|---:|---:|---:|---|---|");
    let mib = |kib: u64| kib as f64 * 1024.0 / MIB;
    for row in &rows {
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} / {} |",
            row.attack,
            mib(row.before),
            mib(row.peak),
            mib(row.after),
            mib(row.settled),
            row.did,
            row.good.0,
            row.good.1
        );
    }
    let passed = rows.iter().all(|r| r.passed);
    println!();
    println!("{}", if passed { "attacks: passed" } else { "attacks: FAILED" });
    std::process::exit(if passed { 0 } else { 1 });
}
