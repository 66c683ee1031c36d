//! End-to-end tests of mixio. The build script builds every guest under `guests/` for
//! `wasm32-wasip2`; [`guest`] finds the result.

use std::path::PathBuf;
use std::time::Duration;

pub mod client;
pub mod gate;
pub mod http_server;
pub mod proxy;
pub mod serve;
pub mod services;
pub mod webdriver;

/// The directory holding the guests' `.wasm` files.
pub const GUESTS_DIR: &str = env!("MIXIO_GUESTS_DIR");

/// The built component of the guest crate `name` (a directory under `guests/`).
pub fn guest(name: &str) -> PathBuf {
    let dir = PathBuf::from(GUESTS_DIR);
    // cargo names a cdylib after the crate (`-` becomes `_`) and a binary after the package.
    let library = dir.join(format!("{}.wasm", name.replace('-', "_")));
    let binary = dir.join(format!("{name}.wasm"));
    let path = if library.exists() { library } else { binary };
    assert!(path.exists(), "no component for guest `{name}` at {}", path.display());
    path
}

/// Polls `done` every 10 ms until it holds, at most 3,000 times (30 s): a bound against a hang,
/// not a speed requirement. Panics naming `what` if it never holds.
pub async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..3000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(done(), "still waiting for {what} after 3,000 polls");
}
