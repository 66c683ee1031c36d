//! The `mixio` binary: `call`, `run`, help, and one-line errors with exit status 2 for files
//! that cannot be loaded.

use std::path::Path;
use std::process::{Command, Output};

use mixio_tests::guest;

fn mixio(args: &[&str]) -> Output {
    mixio_with_env(args, &[])
}

fn mixio_with_env(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mixio"));
    cmd.args(args).env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the mixio binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn call_prints_the_response() {
    let hello = guest("hello");
    let out = mixio(&["call", hello.to_str().unwrap(), "--path", "/?name=ada"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "HTTP/1.1 200 OK\ncontent-type: text/plain; charset=utf-8\n\nhello, ada!\n");
}

#[test]
fn call_sends_method_headers_and_body() {
    let sleepy = guest("sleepy");
    let out = mixio(&[
        "call",
        sleepy.to_str().unwrap(),
        "-X",
        "POST",
        "--path",
        "/?ms=1",
        "-H",
        "x-a: b",
        "--body",
        "{}",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(r#""requested_ms":1"#), "{}", stdout(&out));
}

#[test]
fn run_passes_arguments_and_inherits_stdout() {
    let countdown = guest("countdown");
    let out = mixio(&["run", countdown.to_str().unwrap(), "2", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "2\n1\nliftoff\n");
    assert!(stderr(&out).contains("countdown at 2"), "the guest's log lines: {}", stderr(&out));
}

#[test]
fn a_guest_failure_exits_1_with_one_error_line() {
    let hostile = guest("hostile");
    let out = mixio(&["call", hostile.to_str().unwrap(), "--path", "/?do=panic"]);
    assert_eq!(out.status.code(), Some(1));
    let errors: Vec<_> =
        stderr(&out).lines().filter(|l| l.starts_with("error: ")).map(String::from).collect();
    assert_eq!(errors.len(), 1, "{}", stderr(&out));
    assert!(
        errors[0].starts_with("error: guest `hostile` panicked: boom: the guest gave up"),
        "{}",
        errors[0]
    );
}

#[test]
fn unloadable_files_exit_2_with_one_line_naming_the_file() {
    let dir = std::env::temp_dir().join(format!("mixio-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = dir.join("notes.wasm");
    std::fs::write(&text, "not wasm").unwrap();
    let missing = dir.join("missing.wasm");
    for (sub, file, reason) in [
        ("call", &text, "not a WebAssembly file"),
        ("run", &text, "not a WebAssembly file"),
        ("call", &missing, "No such file"),
    ] {
        let out = mixio(&[sub, file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{sub} {}: {}", file.display(), stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.starts_with(&format!("error: cannot load `{}`: ", file.display())), "{err}");
        assert!(err.contains(reason), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_wrong_kind_of_component_exits_2() {
    let out = mixio(&["run", guest("hello").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is a handler, not a command"), "{}", stderr(&out));
    let out = mixio(&["call", guest("countdown").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is a command, not a handler"), "{}", stderr(&out));
}

#[test]
fn bad_arguments_exit_2() {
    let hello = guest("hello");
    for args in [
        vec!["call", hello.to_str().unwrap(), "--path", "no-slash"],
        vec!["call", hello.to_str().unwrap(), "-H", "no-colon"],
        vec!["call", hello.to_str().unwrap(), "--timeout", "-1"],
        vec!["frobnicate"],
    ] {
        let out = mixio(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn every_subcommand_has_help() {
    for args in [vec!["--help"], vec!["run", "--help"], vec!["call", "--help"], vec!["help", "call"]] {
        let out = mixio(&args);
        assert!(out.status.success(), "{args:?}");
        assert!(stdout(&out).contains("Usage: mixio"), "{args:?}: {}", stdout(&out));
    }
}

#[test]
fn a_second_start_loads_the_compiled_component_from_the_cache() {
    let cache = std::env::temp_dir().join(format!("mixio-cache-{}", std::process::id()));
    let hello = guest("hello");
    let run = || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mixio"));
        cmd.args(["call", hello.to_str().unwrap()])
            .env("MIXIO_CACHE_DIR", &cache)
            .env("RUST_LOG", "mixio_host=info");
        let out = cmd.output().unwrap();
        assert!(out.status.success());
        stderr(&out)
    };
    let first = run();
    assert!(first.contains("compiled") && !first.contains("from the compiled-code cache"), "{first}");
    let second = run();
    assert!(second.contains("loaded from the compiled-code cache"), "{second}");
    std::fs::remove_dir_all(&cache).unwrap();
}

#[test]
fn call_runs_the_same_component_in_blocking_mode() {
    let hello = guest("hello");
    let out = mixio(&["call", "--io", "blocking:2", hello.to_str().unwrap(), "--path", "/?name=bo"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).ends_with("hello, bo!\n"), "{}", stdout(&out));
    let out = mixio(&["call", "--io", "threads", hello.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not an I/O mode"), "{}", stderr(&out));
}
