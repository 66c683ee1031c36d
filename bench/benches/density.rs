//! B6 (BENCHMARKS.md): how many guests wait at once in one process, and the memory each costs.
//!
//! - wasm: `guests/sleepy` called with a one-hour sleep, N at once on a host whose pool holds N
//!   instances, in async mode on a 2-thread runtime;
//! - native: N `fiber::spawn` fibers with the default stack size, each in
//!   `fiber::block_on(tokio::time::sleep(1 h))`, on one thread.
//!
//! Each phase waits until all N are suspended (counted by the host: `Metrics::suspended`,
//! `fiber::suspended()`), reads the process's resident memory, then drops them all and checks
//! that everything was released.
//!
//! ```sh
//! cargo bench -p mixio-bench --bench density                  # 100,000 wasm, 1,000,000 native
//! cargo bench -p mixio-bench --bench density -- --wasm 10000 --native 100000
//! ```
//!
//! Every suspended guest holds a fiber stack with a guard page, and a wasm guest also a linear
//! memory: each costs Linux memory maps (`vm.max_map_count`, 65,530 by default). The run stops
//! early, saying so, when the limit is too low for N; `bench/http.sh` raises it when it can.

use std::future::IntoFuture;
use std::time::{Duration, Instant};

use mixio_host::{Host, Request, fiber};
use mixio_tests::guest;

const LONG: Duration = Duration::from_secs(3600);

fn main() {
    let mut wasm = 100_000;
    let mut native = 1_000_000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut count = || -> usize {
            let value = args.next().unwrap_or_default();
            value.replace('_', "").parse().unwrap_or_else(|_| panic!("{arg} needs a count, got {value:?}"))
        };
        match arg.as_str() {
            "--wasm" => wasm = count(),
            "--native" => native = count(),
            _ => {} // `cargo bench` passes `--bench`
        }
    }
    println!("B6 density: {wasm} wasm guests, {native} native fibers");
    let mut rows = Vec::new();
    if wasm > 0 {
        rows.push(wasm_guests(wasm));
    }
    if native > 0 {
        rows.push(native_fibers(native));
    }
    println!();
    println!("| what | suspended at once | resident memory per guest | memory maps | time to suspend all |");
    println!("|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
}

/// Memory maps each suspended guest needs, roughly: stack and guard, and for wasm the memory
/// slot's pieces.
fn check_map_count(guests: usize, maps_per_guest: usize) {
    let limit: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(usize::MAX);
    let needed = guests * maps_per_guest + 10_000;
    if limit < needed {
        eprintln!(
            "vm.max_map_count is {limit}; {guests} guests need about {needed} memory maps.\n\
             Raise it first: sudo sysctl -w vm.max_map_count={}",
            needed.next_power_of_two()
        );
        std::process::exit(2);
    }
}

fn wasm_guests(n: usize) -> String {
    check_map_count(n, 6);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let host = Host::builder().max_instances(n as u32).timeout(None).build().expect("host");
    let sleepy = host.load(guest("sleepy")).expect("sleepy");
    let path = format!("/?ms={}", LONG.as_millis());
    runtime.block_on(async {
        // Warm up: code, caches and the runtime's own memory are in place before measuring.
        sleepy.call(Request::get("/?ms=1")).await.expect("warm-up call");
        let before = Memory::now();
        let start = Instant::now();
        let calls: Vec<_> =
            (0..n).map(|_| tokio::spawn(sleepy.call(Request::get(&path)).into_future())).collect();
        wait_for("wasm guests", n, || host.metrics().suspended).await;
        let took = start.elapsed();
        let peak = Memory::now();
        let m = host.metrics();
        assert_eq!((m.suspended, m.instances), (n, n));
        for call in &calls {
            call.abort();
        }
        for call in calls {
            assert!(call.await.unwrap_err().is_cancelled());
        }
        let m = host.metrics();
        assert_eq!((m.suspended, m.instances), (0, 0), "every instance was dropped");
        report("wasm guests (sleepy, async mode)", n, &before, &peak, took)
    })
}

fn native_fibers(n: usize) -> String {
    check_map_count(n, 2);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        tokio::task::spawn_local(fiber::spawn(|| fiber::block_on(tokio::time::sleep(Duration::ZERO))))
            .await
            .unwrap();
        let before = Memory::now();
        let start = Instant::now();
        let fibers: Vec<_> = (0..n)
            .map(|_| tokio::task::spawn_local(fiber::spawn(|| fiber::block_on(tokio::time::sleep(LONG)))))
            .collect();
        wait_for("native fibers", n, fiber::suspended).await;
        let took = start.elapsed();
        let peak = Memory::now();
        for f in &fibers {
            f.abort();
        }
        for f in fibers {
            assert!(f.await.unwrap_err().is_cancelled());
        }
        assert_eq!(fiber::suspended(), 0, "every fiber was unwound");
        report(
            &format!("native fibers ({} KiB stacks)", fiber::DEFAULT_STACK_SIZE >> 10),
            n,
            &before,
            &peak,
            took,
        )
    })
}

/// Waits until `count()` reaches `n`, printing progress every few seconds.
async fn wait_for(what: &str, n: usize, count: impl Fn() -> usize) {
    let start = Instant::now();
    let mut last_print = Instant::now();
    loop {
        let now = count();
        if now >= n {
            return;
        }
        if last_print.elapsed() > Duration::from_secs(5) {
            println!("  {now} of {n} {what} suspended after {:.0?}", start.elapsed());
            last_print = Instant::now();
        }
        assert!(start.elapsed() < Duration::from_secs(1800), "only {now} of {n} {what} were suspended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The process's resident memory and memory maps.
struct Memory {
    rss_kib: u64,
    maps: usize,
}

impl Memory {
    fn now() -> Memory {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/self/status");
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap().lines().count();
        Memory { rss_kib, maps }
    }
}

fn report(what: &str, n: usize, before: &Memory, peak: &Memory, took: Duration) -> String {
    let per_guest = (peak.rss_kib - before.rss_kib) as f64 / n as f64;
    println!(
        "{what}: {n} suspended at once in {took:.1?}; resident memory {} MiB -> {} MiB, {per_guest:.1} KiB \
         per guest; memory maps {} -> {}",
        before.rss_kib >> 10,
        peak.rss_kib >> 10,
        before.maps,
        peak.maps
    );
    format!(
        "| {what} | {n} | {per_guest:.1} KiB | {:.1} per guest | {:.1} s |",
        (peak.maps - before.maps) as f64 / n as f64,
        took.as_secs_f64()
    )
}
