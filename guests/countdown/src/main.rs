//! A command guest: counts down from `N` (first argument, default 3), logging and sleeping
//! `MS` milliseconds (second argument, default 100) between numbers.
//!
//! ```sh
//! mixio run countdown.wasm 5 200
//! ```

use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parse = |i: usize, default: u64| -> Result<u64, String> {
        args.get(i).map_or(Ok(default), |v| {
            v.parse().map_err(|_| format!("countdown: argument {} must be a number, got {v:?}", i + 1))
        })
    };
    let (from, ms) = match (parse(0, 3), parse(1, 100)) {
        (Ok(from), Ok(ms)) => (from, ms),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    for n in (1..=from).rev() {
        mixio::log::info!("countdown at {n}");
        println!("{n}");
        mixio::time::sleep(Duration::from_millis(ms));
    }
    println!("liftoff");
    ExitCode::SUCCESS
}
