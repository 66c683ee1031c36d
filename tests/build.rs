//! Builds every crate under `guests/` for `wasm32-wasip2` (release), installing the target with
//! `rustup` when it is missing, then the Python and JavaScript guests (a directory with an
//! `app.py` or an `app.js`) with the SDKs' build scripts, and tells the crate where the `.wasm`
//! files are (`MIXIO_GUESTS_DIR`).
//!
//! The guests get a target directory of their own (`<target>/wasm-guests`), so this nested
//! cargo neither waits for the lock of the outer build nor disturbs its artifacts; cargo's
//! incremental rebuild keeps repeated runs cheap.
//!
//! With `MIXIO_PREBUILT_GUESTS` set, nothing is built: the guests are taken from that directory.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    // Guests built beforehand, for a toolchain that cannot have the wasm target (the fuzzers'
    // nightly): used as they are, from an absolute path to an existing directory.
    println!("cargo:rerun-if-env-changed=MIXIO_PREBUILT_GUESTS");
    if let Some(dir) = std::env::var_os("MIXIO_PREBUILT_GUESTS").map(PathBuf::from) {
        assert!(
            dir.is_absolute() && dir.is_dir(),
            "MIXIO_PREBUILT_GUESTS must be the absolute path of a directory of built guests, not `{}`",
            dir.display()
        );
        println!("cargo:warning=using the prebuilt guests of {} (MIXIO_PREBUILT_GUESTS)", dir.display());
        println!("cargo:rustc-env=MIXIO_GUESTS_DIR={}", dir.display());
        return;
    }
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().expect("tests/ lives in the workspace root").to_path_buf();
    for watched in ["guests", "guest-sdk", "wit", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    // OUT_DIR is <target>/<profile>/build/<pkg>-<hash>/out (or with a <triple>/ level).
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    let target_dir = out_dir
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "build"))
        .and_then(|build| build.parent()?.parent())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| root.join("target"))
        .join("wasm-guests");

    ensure_target();

    let guests = guest_packages(&root.join("guests"));
    let mut cargo = clean_command(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo
        .current_dir(&root)
        .args(["build", "--release", "--target", TARGET, "--target-dir"])
        .arg(&target_dir);
    for guest in &guests {
        cargo.args(["-p", guest]);
    }
    let output = cargo.output().unwrap_or_else(|e| panic!("cannot run cargo to build the guests: {e}"));
    if !output.status.success() {
        panic!("building the guests for {TARGET} failed:\n{}", String::from_utf8_lossy(&output.stderr));
    }
    let dir = target_dir.join(TARGET).join("release");
    build_script_guests(&root, &target_dir, &dir);
    println!("cargo:rustc-env=MIXIO_GUESTS_DIR={}", dir.display());
}

/// Builds each guest under `guests/` written in Python (`app.py`) or JavaScript (`app.js`) into
/// `out/<name>.wasm` (`-` becomes `_`, as cargo names a library), with the tools they need
/// (componentize-py, componentize-js) installed under `target_dir/guest-tools`.
fn build_script_guests(root: &Path, target_dir: &Path, out: &Path) {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("guests"))
        .unwrap_or_else(|e| panic!("cannot list guests/: {e}"))
        .filter_map(|entry| Some(entry.ok()?.path()))
        .collect();
    dirs.sort();
    for dir in dirs {
        let script = if dir.join("app.py").is_file() {
            "guest-sdk/python/build.sh"
        } else if dir.join("app.js").is_file() {
            "guest-sdk/js/build.sh"
        } else {
            continue;
        };
        let name = dir.file_name().unwrap().to_string_lossy().replace('-', "_");
        let output = clean_command("sh")
            .current_dir(root)
            .arg(script)
            .arg(&dir)
            .arg(out.join(format!("{name}.wasm")))
            .env("MIXIO_GUEST_TOOLS", target_dir.join("guest-tools"))
            .output()
            .unwrap_or_else(|e| panic!("cannot run sh {script}: {e}"));
        if !output.status.success() {
            panic!("building {} failed:\n{}", dir.display(), String::from_utf8_lossy(&output.stderr));
        }
    }
}

/// Names of the packages under `guests/` (one directory each, named like its package).
fn guest_packages(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            path.join("Cargo.toml").is_file().then(|| path.file_name()?.to_str().map(String::from))?
        })
        .collect();
    names.sort();
    names
}

/// Installs the wasm target with rustup when the active toolchain lacks it.
fn ensure_target() {
    let sysroot = clean_command(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if sysroot.is_some_and(|s| s.join("lib/rustlib").join(TARGET).is_dir()) {
        return;
    }
    println!("cargo:warning=installing the {TARGET} target with rustup");
    let status = clean_command("rustup")
        .args(["target", "add", TARGET])
        .status()
        .unwrap_or_else(|e| panic!("the {TARGET} target is missing and rustup could not be run: {e}"));
    assert!(status.success(), "`rustup target add {TARGET}` failed");
}

/// A command without the variables cargo sets for build scripts, which would otherwise leak
/// into the nested build (target, flags, profile settings).
fn clean_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let keep = key == "CARGO_HOME" || key == "CARGO_MAKEFLAGS" || key == "CARGO_NET_OFFLINE";
        if !keep
            && (key.starts_with("CARGO_")
                || matches!(
                    &*key,
                    "RUSTFLAGS"
                        | "RUSTC_WRAPPER"
                        | "RUSTC_WORKSPACE_WRAPPER"
                        | "TARGET"
                        | "HOST"
                        | "OUT_DIR"
                        | "OPT_LEVEL"
                        | "PROFILE"
                        | "DEBUG"
                        | "NUM_JOBS"
                        | "RUSTDOC"
                ))
        {
            cmd.env_remove(&*key);
        }
    }
    cmd
}
