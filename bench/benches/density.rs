//! B6 (BENCHMARKS.md): how many guests wait at once in one process, and the memory each costs.
//!
//! - wasm: `guests/sleepy` called with a one-hour sleep, N at once on a host whose pool holds N
//!   instances, in async mode on a 2-thread runtime;
//! - native: N `fiber::spawn` fibers with the default stack size, each in
//!   `fiber::block_on(tokio::time::sleep(1 h))`, on one thread;
//! - Python and JavaScript: `guests/hello-py` and `guests/hello-js` (the SDKs' smallest
//!   handlers) called with `?ms=` of one hour, which they sleep with the SDK's `time.sleep`, N
//!   at once, as for wasm.
//!
//! Each phase waits until all N are suspended (counted by the host: `Metrics::suspended`,
//! `fiber::suspended()`), reads the process's memory, then drops them all and checks that
//! everything was released. Memory per guest is the growth over the phase divided by N: the
//! resident set (`VmRSS`), and from `/proc/self/smaps_rollup` the proportional set (`Pss`:
//! pages shared with other processes, or between guests through a copy-on-write image, count
//! by their share) and `Private_Dirty` (pages this process alone wrote); the page tables
//! (`VmPTE`, kernel memory outside all three) are shown beside. "In 24 GiB" divides 24 GiB by
//! the Pss per guest.
//!
//! ```sh
//! cargo bench -p mixio-bench --bench density      # 100,000 wasm, 1,000,000 native, 1,000 py, 1,000 js
//! cargo bench -p mixio-bench --bench density -- --wasm 10000 --native 100000 --py 200 --js 200
//! ```
//!
//! The Python and JavaScript components are built by tests/build.rs like every guest with an
//! `app.py` or `app.js` (or taken from `$MIXIO_PREBUILT_GUESTS`; bench/per-request.sh builds
//! `hello_py.wasm` and `hello_js.wasm` into bench/.tools/guests). `--wasm 0 --native 0` runs
//! only these two:
//!
//! ```sh
//! cargo bench -p mixio-bench --bench density -- --wasm 0 --native 0 --py 1000 --js 1000
//! ```
//!
//! Every suspended guest holds a fiber stack with a guard page, and a wasm guest also a linear
//! memory: each costs Linux memory maps (`vm.max_map_count`, 65,530 by default). The run stops
//! early, saying so, when the limit is too low for N; `bench/http.sh` raises it when it can.

use std::future::IntoFuture;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mixio_host::{Host, Request, fiber};
use mixio_tests::guest;

const LONG: Duration = Duration::from_secs(3600);

fn main() {
    let mut wasm = 100_000;
    let mut native = 1_000_000;
    let mut py = 1_000;
    let mut js = 1_000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut count = || -> usize {
            let value = args.next().unwrap_or_default();
            value.replace('_', "").parse().unwrap_or_else(|_| panic!("{arg} needs a count, got {value:?}"))
        };
        match arg.as_str() {
            "--wasm" => wasm = count(),
            "--native" => native = count(),
            "--py" => py = count(),
            "--js" => js = count(),
            _ => {} // `cargo bench` passes `--bench`
        }
    }
    println!(
        "B6 density: {wasm} wasm guests, {native} native fibers, {py} Python guests, {js} JavaScript guests"
    );
    let mut rows = Vec::new();
    if wasm > 0 {
        let path = format!("/?ms={}", LONG.as_millis());
        rows.push(wasm_guests("wasm guests (sleepy, async mode)", guest("sleepy"), &path, wasm));
    }
    if native > 0 {
        rows.push(native_fibers(native));
    }
    let path = format!("/?name=density&ms={}", LONG.as_millis());
    if py > 0 {
        rows.push(wasm_guests(
            "Python guests (hello-py; target >= 20,000 in 24 GiB)",
            guest("hello-py"),
            &path,
            py,
        ));
    }
    if js > 0 {
        rows.push(wasm_guests(
            "JavaScript guests (hello-js; target >= 50,000 in 24 GiB)",
            guest("hello-js"),
            &path,
            js,
        ));
    }
    println!();
    println!(
        "| what | suspended at once | resident memory (RSS) per guest | Pss per guest | Private_Dirty per guest \
         | in 24 GiB (by Pss) | page tables per guest | memory maps | time to suspend all |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
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

/// N calls of `component` at `path` (which must make it sleep for an hour) at once, on a host
/// whose pool holds N instances, in async mode on a 2-thread runtime.
fn wasm_guests(what: &str, component: PathBuf, path: &str, n: usize) -> String {
    check_map_count(n, 6);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let host = Host::builder().max_instances(n as u32).timeout(None).build().expect("host");
    let component =
        host.load(&component).unwrap_or_else(|e| panic!("cannot load {}: {e}", component.display()));
    runtime.block_on(async {
        // Warm up: code, caches and the runtime's own memory are in place before measuring.
        let warm_up = component.call(Request::get("/?ms=1")).await.expect("warm-up call");
        assert_eq!(warm_up.status, 200, "the warm-up call answered {}", warm_up.status);
        let before = Memory::now();
        let start = Instant::now();
        let calls: Vec<_> =
            (0..n).map(|_| tokio::spawn(component.call(Request::get(path)).into_future())).collect();
        wait_for(what, n, || host.metrics().suspended).await;
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
        report(what, n, &before, &peak, took)
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

/// The process's memory (KiB) and memory maps.
struct Memory {
    rss_kib: u64,
    pss_kib: u64,
    private_dirty_kib: u64,
    page_tables_kib: u64,
    maps: usize,
}

impl Memory {
    fn now() -> Memory {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap();
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap().lines().count();
        Memory {
            rss_kib: kib(&status, "VmRSS:"),
            pss_kib: kib(&rollup, "Pss:"),
            private_dirty_kib: kib(&rollup, "Private_Dirty:"),
            page_tables_kib: kib(&status, "VmPTE:"),
            maps,
        }
    }
}

/// The value of the `field` line (`Name:   123 kB`) of a /proc file.
fn kib(text: &str, field: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc"))
}

fn report(what: &str, n: usize, before: &Memory, peak: &Memory, took: Duration) -> String {
    let per_guest = |b: u64, p: u64| p.saturating_sub(b) as f64 / n as f64;
    let rss = per_guest(before.rss_kib, peak.rss_kib);
    let pss = per_guest(before.pss_kib, peak.pss_kib);
    let dirty = per_guest(before.private_dirty_kib, peak.private_dirty_kib);
    let page_tables = per_guest(before.page_tables_kib, peak.page_tables_kib);
    let in_24_gib = (24u64 << 20) as f64 / pss.max(0.001);
    println!(
        "{what}: {n} suspended at once in {took:.1?}; RSS {} MiB -> {} MiB, {rss:.1} KiB per guest; \
         Pss {pss:.1} KiB, Private_Dirty {dirty:.1} KiB, page tables {page_tables:.1} KiB per guest; \
         memory maps {} -> {}",
        before.rss_kib >> 10,
        peak.rss_kib >> 10,
        before.maps,
        peak.maps
    );
    format!(
        "| {what} | {n} | {rss:.1} KiB | {pss:.1} KiB | {dirty:.1} KiB | {in_24_gib:.0} | {page_tables:.1} KiB | {:.1} per guest | {:.1} s |",
        (peak.maps - before.maps) as f64 / n as f64,
        took.as_secs_f64()
    )
}
