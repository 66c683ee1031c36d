//! The soak test (`bench/soak.sh`, see RELIABILITY.md): mixed traffic at a running `mixio serve`
//! of the demo plus `guests/hostile`, then the checks.
//!
//! ```text
//! soak BASE_URL SERVER_PID DATABASE SECONDS
//! ```
//!
//! - good: 32 clients place orders, each with a dish no other order has, and expect `201`;
//! - hostile: 4 clients cycle through `guests/hostile`'s attacks and expect their errors;
//! - hanging up: 4 clients start orders and slow guest calls and hang up before the answer.
//!
//! At the end: no unexpected failure among the good requests; every order answered `201` is in
//! the database exactly once; the server's resident memory at the end is within 10% of what it
//! was after the warm-up (the first fifth of the run, at least 10 s). Exits 1 if a check fails.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use mixio_tests::client;

const GOOD: usize = 32;
const HOSTILE: usize = 4;
const HANGING_UP: usize = 4;

/// The attacks the hostile clients cycle through, with the status each must get.
const ATTACKS: &[(&str, u16)] = &[
    ("/hostile?do=loop", 504),
    ("/hostile?do=panic", 500),
    ("/hostile?do=unreachable", 500),
    ("/hostile?do=recurse", 500),
    ("/hostile?do=memory-bomb", 500),
    ("/hostile?do=huge-body&mb=16", 500),
    ("/hostile?do=many-headers", 500),
    ("/hostile?do=bad-pointer", 500),
    ("/hostile?do=bad-utf8", 500),
    ("/hostile?do=bad-handle", 500),
    ("/hostile?do=kv-flood", 200),
];

#[derive(Default)]
struct Tally {
    good_ok: AtomicU64,
    good_failed: AtomicU64,
    hostile_as_expected: AtomicU64,
    hostile_unexpected: AtomicU64,
    hung_up: AtomicU64,
}

fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the server's /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, pid, db, seconds] = &args[..] else {
        eprintln!("usage: soak BASE_URL SERVER_PID DATABASE SECONDS");
        std::process::exit(2);
    };
    let (pid, seconds): (u32, u64) = (pid.parse().expect("a pid"), seconds.parse().expect("seconds"));
    let base: Arc<str> = base.as_str().into();
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut tasks = Vec::new();

    for c in 0..GOOD {
        let (base, tally, stop, acknowledged) =
            (base.clone(), tally.clone(), stop.clone(), acknowledged.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0_u64;
            while !stop.load(Relaxed) {
                n += 1;
                let dish = format!("soak-{c}-{n}");
                let body = serde_json::json!({ "user": "soak", "dish": dish });
                let reply = client::try_send(
                    &base,
                    "POST",
                    "/order",
                    &[("content-type", "application/json")],
                    body.to_string(),
                )
                .await;
                match reply {
                    Ok(r) if r.status == 201 => {
                        tally.good_ok.fetch_add(1, Relaxed);
                        acknowledged.lock().unwrap().push(dish);
                    }
                    other => {
                        tally.good_failed.fetch_add(1, Relaxed);
                        eprintln!("good request failed: {other:?}");
                    }
                }
            }
        }));
    }
    for c in 0..HOSTILE {
        let (base, tally, stop) = (base.clone(), tally.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            for (path, status) in ATTACKS.iter().cycle().skip(c * 3) {
                if stop.load(Relaxed) {
                    break;
                }
                match client::try_send(&base, "GET", path, &[], "").await {
                    Ok(r) if r.status == *status => tally.hostile_as_expected.fetch_add(1, Relaxed),
                    other => {
                        eprintln!("{path}: expected {status}, got {other:?}");
                        tally.hostile_unexpected.fetch_add(1, Relaxed)
                    }
                };
            }
        }));
    }
    for c in 0..HANGING_UP {
        let (base, tally, stop) = (base.clone(), tally.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0_u64;
            while !stop.load(Relaxed) {
                n += 1;
                let path = if n.is_multiple_of(2) {
                    format!("/hostile?do=sleep-then-panic&ms={}", 50 + n % 200)
                } else {
                    "/order".to_string()
                };
                let body =
                    serde_json::json!({ "user": "soak-gone", "dish": format!("gone-{c}-{n}") }).to_string();
                let method = if n.is_multiple_of(2) { "GET" } else { "POST" };
                let headers = [("content-type", "application/json")];
                let _ = tokio::time::timeout(
                    Duration::from_millis(5 + n % 40),
                    client::try_send(&base, method, &path, &headers, body),
                )
                .await;
                tally.hung_up.fetch_add(1, Relaxed);
            }
        }));
    }

    let started = Instant::now();
    let warm_up = Duration::from_secs((seconds / 5).max(10).min(seconds));
    tokio::time::sleep(warm_up).await;
    let warm_rss = resident_kib(pid);
    println!("after warm-up ({} s): server resident {} KiB", warm_up.as_secs(), warm_rss);
    // The resident memory every tenth of the run, to show its trend.
    let step = Duration::from_secs((seconds / 10).max(1));
    while started.elapsed() + step <= Duration::from_secs(seconds) {
        tokio::time::sleep(step).await;
        println!("at {:>4} s: server resident {} KiB", started.elapsed().as_secs(), resident_kib(pid));
    }
    tokio::time::sleep(Duration::from_secs(seconds).saturating_sub(started.elapsed())).await;
    stop.store(true, Relaxed);
    for task in tasks {
        task.await.expect("a client task");
    }
    // Let the last hung-up calls finish (the longest guest call lasts 2 s) before measuring.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let end_rss = resident_kib(pid);

    let acknowledged = acknowledged.lock().unwrap().clone();
    let db = rusqlite::Connection::open(db).expect("the app's database");
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    let mut stored = std::collections::HashMap::<String, u32>::new();
    let mut rows = db.prepare("SELECT dish FROM orders WHERE user_name = 'soak'").unwrap();
    for dish in rows.query_map([], |r| r.get::<_, String>(0)).unwrap() {
        *stored.entry(dish.unwrap()).or_default() += 1;
    }
    let mut missing_or_doubled = 0;
    for dish in &acknowledged {
        let n = stored.get(dish).copied().unwrap_or(0);
        if n != 1 {
            missing_or_doubled += 1;
            eprintln!("order {dish}: acknowledged, {n} rows");
        }
    }

    let t = &tally;
    let growth = end_rss as f64 / warm_rss as f64 - 1.0;
    println!("| what | figure |");
    println!("|---|---|");
    println!("| duration | {} s |", started.elapsed().as_secs());
    println!("| good orders answered 201 | {} |", t.good_ok.load(Relaxed));
    println!("| good requests failed | {} |", t.good_failed.load(Relaxed));
    println!("| hostile requests answered as expected | {} |", t.hostile_as_expected.load(Relaxed));
    println!("| hostile requests answered otherwise | {} |", t.hostile_unexpected.load(Relaxed));
    println!("| requests hung up on | {} |", t.hung_up.load(Relaxed));
    println!("| acknowledged orders not in the database exactly once | {missing_or_doubled} |");
    println!(
        "| server resident memory after warm-up / at the end | {warm_rss} KiB / {end_rss} KiB ({:+.1}%) |",
        growth * 100.0
    );
    let passed = t.good_failed.load(Relaxed) == 0
        && t.hostile_unexpected.load(Relaxed) == 0
        && missing_or_doubled == 0
        && growth <= 0.10
        && t.good_ok.load(Relaxed) > 0;
    println!("{}", if passed { "soak: passed" } else { "soak: FAILED" });
    std::process::exit(if passed { 0 } else { 1 });
}
