//! Micro-benchmarks B1–B3 (see BENCHMARKS.md): each compares mixio with its baseline in the
//! same run; `cargo bench -p mixio-bench` prints both sides, and the ratio is their quotient.
//!
//! - B1: a guest→host import round trip, (a) ready at once, (b) pending once: mixio's host
//!   function (`HostBuilder::func_async`) against a bare Wasmtime `func_wrap_async` import,
//!   the same guest loop (`guests/bench-loop`) on both.
//! - B2: `fiber::block_on(f)` from synchronous code on a fiber against `f.await`, for (a) a
//!   ready future and (b) `yield_now`.
//! - B3: instantiate, call and drop the `hello` handler: `Component::call` against bare
//!   `InstancePre::instantiate_async` + `call_async`, both with the pooling allocator.

use std::future::Future;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group};
use mixio_host::fiber;
use mixio_tests::guest;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Pings per call in B1: enough that instantiation is a small part of each sample.
const PINGS: u32 = 10_000;
/// Awaits per fiber in B2.
const WAITS: u64 = 10_000;

mod raw {
    wasmtime::component::bindgen!({
        path: ["../wit", "../guests/bench-loop/wit"],
        world: "bench:looper/looper",
        imports: { default: async },
        exports: { default: async },
    });
}

/// The store data of the bare Wasmtime embedding.
struct Raw {
    wasi: WasiCtx,
    table: ResourceTable,
    yield_once: bool,
}

impl WasiView for Raw {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl raw::bench::looper::ping::Host for Raw {
    async fn ping(&mut self) {
        if self.yield_once {
            tokio::task::yield_now().await;
        }
    }
}

impl raw::mixio::io::config::Host for Raw {
    async fn get(&mut self, _key: String) -> Option<String> {
        None
    }
}

/// A bare Wasmtime engine and linker: pooling allocator, WASI, and only the imports the
/// benchmarked guests use.
fn raw_linker() -> (Engine, Linker<Raw>) {
    let mut config = Config::new();
    config.allocation_strategy(InstanceAllocationStrategy::pooling());
    let engine = Engine::new(&config).unwrap();
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
    type Data = wasmtime::component::HasSelf<Raw>;
    raw::bench::looper::ping::add_to_linker::<Raw, Data>(&mut linker, |s| s).unwrap();
    raw::mixio::io::config::add_to_linker::<Raw, Data>(&mut linker, |s| s).unwrap();
    linker.instance("mixio:io/types@0.1.0").unwrap();
    (engine, linker)
}

fn raw_store(engine: &Engine, yield_once: bool) -> Store<Raw> {
    Store::new(engine, Raw { wasi: WasiCtx::builder().build(), table: ResourceTable::new(), yield_once })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// B1's two sides for one case: mixio's call and the bare Wasmtime call, each one request of
/// [`PINGS`] pings.
struct B1Sides {
    looper: mixio_host::Component,
    engine: Engine,
    pre: raw::LooperPre<Raw>,
    yield_once: bool,
}

impl B1Sides {
    fn new(yield_once: bool) -> B1Sides {
        let host = mixio_host::Host::builder()
            .cache_dir(None)
            .func_async("bench:looper/ping@0.1.0", "ping", move |(): ()| async move {
                if yield_once {
                    tokio::task::yield_now().await;
                }
                Ok(())
            })
            .build()
            .unwrap();
        let looper = host.load(guest("bench-loop")).unwrap();
        let (engine, linker) = raw_linker();
        let component = Component::from_file(&engine, guest("bench-loop")).unwrap();
        let pre = raw::LooperPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
        B1Sides { looper, engine, pre, yield_once }
    }

    async fn mixio(&self) {
        let response = self.looper.call(mixio_host::Request::get(format!("/?n={PINGS}"))).await.unwrap();
        assert_eq!(response.status, 200);
    }

    async fn wasmtime(&self) {
        self.wasmtime_within(None).await
    }

    /// The bare call, under `tokio::time::timeout(deadline)` if given: a bare embedding that
    /// bounds its calls as mixio does (the context row of the paired B1).
    async fn wasmtime_within(&self, deadline: Option<std::time::Duration>) {
        let mut store = raw_store(&self.engine, self.yield_once);
        let looper = self.pre.instantiate_async(&mut store).await.unwrap();
        let request = raw::mixio::io::types::Request {
            method: "GET".into(),
            path_with_query: format!("/?n={PINGS}"),
            headers: Vec::new(),
            body: Vec::new(),
        };
        let call = looper.mixio_io_incoming_handler().call_handle(&mut store, &request);
        let response = match deadline {
            Some(deadline) => tokio::time::timeout(deadline, call).await.expect("within the deadline"),
            None => call.await,
        };
        assert_eq!(response.unwrap().status, 200);
    }
}

const B1_CASES: [(&str, bool); 2] = [("a ready", false), ("b pending once", true)];

fn b1_import_round_trip(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("B1 import round trip");
    group.throughput(Throughput::Elements(u64::from(PINGS)));
    for (case, yield_once) in B1_CASES {
        let sides = B1Sides::new(yield_once);
        group.bench_function(format!("{case}/mixio"), |b| b.to_async(&rt).iter(|| sides.mixio()));
        group.bench_function(format!("{case}/wasmtime"), |b| b.to_async(&rt).iter(|| sides.wasmtime()));
    }
    group.finish();
}

/// Rounds of each paired measurement (odd, so that the median is one of them).
const ROUNDS: usize = 201;

/// Runs `ours` and `theirs` alternately, [`ROUNDS`] times each after a short warm-up (which
/// side goes first alternates too, so neither always runs on a warmer cache), and returns the
/// median and the interquartile range of `compare(ours, theirs)` over the rounds. On a shared
/// machine whose speed drifts over seconds, two neighbouring runs compare more steadily than
/// two medians measured seconds apart.
fn paired(
    mut ours: impl FnMut() -> f64,
    mut theirs: impl FnMut() -> f64,
    compare: impl Fn(f64, f64) -> f64,
) -> (f64, f64, f64) {
    for _ in 0..5 {
        ours();
        theirs();
    }
    let mut values: Vec<f64> = (0..ROUNDS)
        .map(|round| {
            if round % 2 == 0 {
                let a = ours();
                compare(a, theirs())
            } else {
                let b = theirs();
                compare(ours(), b)
            }
        })
        .collect();
    values.sort_by(f64::total_cmp);
    (values[ROUNDS / 2], values[ROUNDS / 4], values[3 * ROUNDS / 4])
}

/// Seconds `future` takes to run to completion on `rt`.
fn seconds(rt: &tokio::runtime::Runtime, future: impl Future<Output = ()>) -> f64 {
    let start = std::time::Instant::now();
    rt.block_on(future);
    start.elapsed().as_secs_f64()
}

/// B1 again, the two sides alternating request by request: the median ratio of mixio's time
/// to bare Wasmtime's, and its interquartile range, for each case. Then, as context, (b)
/// against a bare call bounded by `tokio::time::timeout` of mixio's default deadline (a timer
/// in tokio's wheel makes its driver read the clock at every park, with or without mixio).
fn b1_paired() -> Vec<(&'static str, (f64, f64, f64), bool)> {
    let rt = runtime();
    let mut rows: Vec<_> = B1_CASES
        .into_iter()
        .map(|(case, yield_once)| {
            let sides = B1Sides::new(yield_once);
            let ratio =
                paired(|| seconds(&rt, sides.mixio()), || seconds(&rt, sides.wasmtime()), |a, b| a / b);
            (case, ratio, true)
        })
        .collect();
    let sides = B1Sides::new(true);
    let deadline = mixio_host::Limits::default().timeout;
    let ratio = paired(
        || seconds(&rt, sides.mixio()),
        || seconds(&rt, sides.wasmtime_within(deadline)),
        |a, b| a / b,
    );
    rows.push(("b pending once, the bare call under a deadline too", ratio, false));
    rows
}

/// B2 (b) again, the fiber and the plain `await` alternating run by run ([`WAITS`] awaits
/// each): the median overhead of `fiber::block_on` per await in nanoseconds, and its
/// interquartile range.
fn b2_paired() -> (f64, f64, f64) {
    let rt = runtime();
    let local = tokio::task::LocalSet::new();
    let fiber = || seconds(&rt, local.run_until(fiber::spawn(yield_on_fiber)));
    let plain = || seconds(&rt, local.run_until(yield_awaited()));
    paired(fiber, plain, |a, b| (a - b) * 1e9 / WAITS as f64)
}

/// B2 (b) on a fiber: [`WAITS`] times `fiber::block_on(yield_now())`.
fn yield_on_fiber() {
    for _ in 0..WAITS {
        fiber::block_on(tokio::task::yield_now());
    }
}

/// B2 (b)'s baseline: [`WAITS`] times `yield_now().await`.
async fn yield_awaited() {
    for _ in 0..WAITS {
        tokio::task::yield_now().await;
    }
}

fn b2_fiber_block_on(c: &mut Criterion) {
    let mut group = c.benchmark_group("B2 fiber block_on");
    group.throughput(Throughput::Elements(WAITS));
    let rt = runtime();
    let local = tokio::task::LocalSet::new();

    group.bench_function("a ready/fiber", |b| {
        b.iter(|| {
            local.block_on(
                &rt,
                fiber::spawn(|| {
                    for i in 0..WAITS {
                        std::hint::black_box(fiber::block_on(std::future::ready(i)));
                    }
                }),
            )
        })
    });
    group.bench_function("a ready/await", |b| {
        b.iter(|| {
            local.block_on(&rt, async {
                for i in 0..WAITS {
                    std::hint::black_box(std::future::ready(i).await);
                }
            })
        })
    });
    group.bench_function("b yield_now/fiber", |b| {
        b.iter(|| local.block_on(&rt, fiber::spawn(yield_on_fiber)))
    });
    group.bench_function("b yield_now/await", |b| b.iter(|| local.block_on(&rt, yield_awaited())));
    group.finish();
}

fn b3_instantiate_and_call(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("B3 instantiate + call hello");
    group.throughput(Throughput::Elements(1));

    let host = mixio_host::Host::builder().cache_dir(None).build().unwrap();
    let hello = host.load(guest("hello")).unwrap();
    group.bench_function("mixio", |b| {
        b.to_async(&rt).iter(|| async {
            let response = hello.call(mixio_host::Request::get("/?name=ada")).await.unwrap();
            assert_eq!(response.status, 200);
        })
    });

    let (engine, linker) = raw_linker();
    let component = Component::from_file(&engine, guest("hello")).unwrap();
    // The looper world's export is mixio's handler, which `hello` exports too.
    let pre = raw::LooperPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
    group.bench_function("wasmtime", |b| {
        b.to_async(&rt).iter(|| async {
            let mut store = raw_store(&engine, false);
            let instance = pre.instantiate_async(&mut store).await.unwrap();
            let request = raw::mixio::io::types::Request {
                method: "GET".into(),
                path_with_query: "/?name=ada".into(),
                headers: Vec::new(),
                body: Vec::new(),
            };
            let response =
                instance.mixio_io_incoming_handler().call_handle(&mut store, &request).await.unwrap();
            assert_eq!(response.status, 200);
        })
    });
    group.finish();
}

criterion_group! {
    name = micro;
    config = Criterion::default().sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = b1_import_round_trip, b2_fiber_block_on, b3_instantiate_and_call
}

/// The comparisons: (benchmark, mixio's side, the baseline, target).
const COMPARISONS: [(&str, &str, &str, Target); 5] = [
    ("B1 import round trip", "a ready/mixio", "a ready/wasmtime", Target::Ratio(1.10)),
    ("B1 import round trip", "b pending once/mixio", "b pending once/wasmtime", Target::Ratio(1.10)),
    ("B2 fiber block_on", "a ready/fiber", "a ready/await", Target::OverheadNs(10.0)),
    ("B2 fiber block_on", "b yield_now/fiber", "b yield_now/await", Target::OverheadNs(40.0)),
    ("B3 instantiate + call hello", "mixio", "wasmtime", Target::Ratio(1.5)),
];

#[derive(Clone, Copy)]
enum Target {
    /// mixio's time over the baseline's at most this.
    Ratio(f64),
    /// mixio's time per element minus the baseline's at most this many nanoseconds.
    OverheadNs(f64),
}

/// Median time per element of a benchmark this run measured, in nanoseconds.
fn median_per_element(group: &str, id: &str, elements: f64) -> Option<f64> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/criterion");
    // Criterion stores `a/b` ids as `a_b`.
    let path = dir.join(group).join(id.replace('/', "_")).join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let at = text.find("\"median\"")?;
    let rest = &text[at..];
    let start = rest.find("\"point_estimate\":")? + "\"point_estimate\":".len();
    let end = rest[start..].find([',', '}'])? + start;
    Some(rest[start..end].trim().parse::<f64>().ok()? / elements)
}

/// Prints each comparison's two medians, their ratio, and whether the target holds.
fn print_ratios() {
    println!("\n| benchmark | mixio (ns/op) | baseline (ns/op) | ratio | overhead (ns/op) | target | met |");
    println!("|---|---|---|---|---|---|---|");
    for (group, ours, theirs, target) in COMPARISONS {
        let elements = match group {
            g if g.starts_with("B1") => f64::from(PINGS),
            g if g.starts_with("B2") => WAITS as f64,
            _ => 1.0,
        };
        let (Some(a), Some(b)) =
            (median_per_element(group, ours, elements), median_per_element(group, theirs, elements))
        else {
            println!("| {group}: {ours} vs {theirs} | (not measured) | | | | | |");
            continue;
        };
        let (target_text, met) = match target {
            Target::Ratio(r) => (format!("ratio <= {r}"), a / b <= r),
            Target::OverheadNs(ns) => (format!("overhead <= {ns} ns"), a - b <= ns),
        };
        println!(
            "| {group}: {ours} vs {theirs} | {a:.1} | {b:.1} | {:.2} | {:.1} | {target_text} | {} |",
            a / b,
            a - b,
            if met { "yes" } else { "no" }
        );
    }
}

fn main() {
    micro();
    Criterion::default().configure_from_args().final_summary();
    print_ratios();
    // `cargo bench -- <filter>`: the paired B1 and B2 run unless the filter leaves them out.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    if filter.as_deref().is_none_or(|f| "B1 import round trip".contains(f) || f.contains("B1")) {
        println!("\nB1 paired (mixio and bare Wasmtime alternating, 201 requests of {PINGS} pings each):\n");
        println!("| case | median ratio | interquartile range | target | met |");
        println!("|---|---|---|---|---|");
        for (case, (median, q1, q3), is_target) in b1_paired() {
            let (target, met) = match (is_target, median <= 1.10) {
                (false, _) => ("(context)", ""),
                (true, met) => ("ratio <= 1.1", if met { "yes" } else { "no" }),
            };
            println!("| B1 {case} | {median:.3} | {q1:.3}–{q3:.3} | {target} | {met} |");
        }
    }
    if filter.as_deref().is_none_or(|f| "B2 fiber block_on".contains(f) || f.contains("B2")) {
        println!(
            "\nB2 (b) paired (fiber and plain await alternating, 201 runs of {WAITS} yield_now each):\n"
        );
        println!("| case | median overhead (ns/op) | interquartile range | target | met |");
        println!("|---|---|---|---|---|");
        let (median, q1, q3) = b2_paired();
        let met = if median <= 40.0 { "yes" } else { "no" };
        println!("| B2 b yield_now | {median:.1} | {q1:.1}–{q3:.1} | overhead <= 40 ns | {met} |");
    }
}
