//! End-to-end tests of mixio. The build script builds every guest under `guests/` for
//! `wasm32-wasip2`; [`guest`] finds the result.

use std::path::PathBuf;

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
