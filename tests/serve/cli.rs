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
    // What mixio is, not the description of the crate the binary happens to be built from.
    let help = stdout(&mixio(&["--help"]));
    assert!(
        help.starts_with("A WebAssembly host where synchronous guest code does asynchronous I/O"),
        "{help}"
    );
}

#[test]
fn a_second_start_loads_the_compiled_component_from_the_cache() {
    let cache = std::env::temp_dir().join(format!("mixio-cache-{}", std::process::id()));
    let hello = guest("hello");
    let run = || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mixio"));
        cmd.args(["call", hello.to_str().unwrap()])
            .env("MIXIO_CACHE_DIR", &cache)
            .env("RUST_LOG", "mixio_host=info,mixio_serve=info");
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

/// Runs `mixio args`, killing it if it has not exited within 60 s (a bad value accepted would
/// start a server): a bound against a hang, not a speed requirement.
fn mixio_bounded(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mixio"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the mixio binary runs");
    for _ in 0..600 {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("mixio {args:?} still ran after 60 s: a bad value was accepted");
}

/// A manifest serving `hello` in a fresh directory, with `extra` appended; its path.
fn hello_manifest(extra: &str) -> std::path::PathBuf {
    let dir = mixio_tests::serve::scratch_dir("cli-manifest");
    let manifest = format!(
        "name = \"t\"\ndata_dir = \"{}\"\n[components.hello]\nsource = \"{}\"\nroutes = [\"/\"]\n{extra}",
        dir.display(),
        guest("hello").display()
    );
    std::fs::write(dir.join("mixio.toml"), manifest).unwrap();
    dir.join("mixio.toml")
}

/// Every flag that takes a value, given every kind of bad value: exit status 2 and one line
/// naming the flag, never a panic.
#[test]
fn bad_values_of_every_flag_are_one_line_errors() {
    let manifest = hello_manifest("");
    let manifest = manifest.to_str().unwrap();
    let hello = guest("hello");
    let hello = hello.to_str().unwrap();
    let bad = [
        "",
        "-1",
        "1e30",
        "1e300",
        "NaN",
        "inf",
        "0x10",
        "abc",
        "18446744073709551616",
        "99999999999999999999999h",
        "1024TiB",
        "5 parsecs",
        "-5s",
        "１０",
    ];
    let flags = [
        ("serve", "--listen"),
        ("serve", "--drain"),
        ("serve", "--io"),
        ("serve", "--admin-listen"),
        ("serve", "--log-format"),
        ("serve", "--max-connections"),
        ("serve", "--header-timeout"),
        ("serve", "--body-idle-timeout"),
        ("serve", "--write-idle-timeout"),
        ("serve", "--websocket-idle-timeout"),
        ("serve", "--max-body-memory"),
        ("call", "--timeout"),
        ("call", "--io"),
        ("call", "--path"),
        ("call", "--method"),
        ("call", "--header"),
    ];
    let mut checked = 0;
    for (command, flag) in flags {
        // A word of letters is a valid method (HTTP allows extension methods).
        let valid = |value: &str| {
            flag == "--method" && !value.is_empty() && value.bytes().all(|b| b.is_ascii_alphabetic())
        };
        for value in bad.into_iter().filter(|v| !valid(v)) {
            let target = if command == "serve" { manifest } else { hello };
            // `--flag=value`, as a value starting with `-` must be given.
            let flag_value = format!("{flag}={value}");
            let args = [command, target, &flag_value];
            let out = mixio_bounded(&args);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
            assert!(!err.contains("panicked"), "{args:?}: {err}");
            assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: one line: {err}");
            assert!(err.contains(flag.trim_start_matches('-')), "{args:?} names the flag: {err}");
            checked += 1;
        }
    }
    assert_eq!(checked, flags.len() * bad.len() - 3, "all but three values for each flag");
}

/// Bad values in a manifest: one line naming the file and the key, exit status 2, never a
/// panic or a hang; a `source` that is a FIFO is refused at once.
#[test]
fn bad_manifest_values_are_one_line_errors() {
    let cases = [
        ("[components.hello.limits]\ntimeout = 18446744073709551615", "[components.hello.limits]`, `timeout"),
        ("[components.hello.limits]\ntimeout = \"1e30\"", "components.hello.limits.timeout"),
        ("[components.hello.limits]\ntimeout = -1", "components.hello.limits.timeout"),
        ("[components.hello.limits]\ntimeout = -0.5", "components.hello.limits.timeout"),
        ("[components.hello.limits]\nmax_memory = 1.5", "components.hello.limits.max_memory"),
        ("[server]\nmax_body_memory = \"64KiB\"", "components.hello.limits.max_request_body"),
        ("[components.hello.limits]\nmax_memory = \"1024GiB\"", "components.hello.limits.max_memory"),
        ("[components.hello.limits]\nmax_concurrent = 9223372036854775807", "max_concurrent"),
        ("[components.hello.limits]\nqueue = -3", "components.hello.limits.queue"),
        ("[components.hello.limits]\nmax_request_body = \"2TiB\"", "max_request_body"),
        ("[server]\nheader_timeout = \"0s\"", "server.header_timeout"),
        ("[server]\nmax_body_memory = \"1KiB\"", "server.max_body_memory"),
        ("[server]\nmax_connections = 0", "server.max_connections"),
        ("[server]\nnagle = true", "server.nagle"),
        ("max_instances = 4000000\n", "max_instances"),
    ];
    for (extra, key) in cases {
        // `max_instances` goes before the tables.
        let manifest = if extra.starts_with("max_instances") {
            let path = hello_manifest("");
            let text = std::fs::read_to_string(&path).unwrap();
            std::fs::write(&path, format!("{extra}{text}")).unwrap();
            path
        } else {
            hello_manifest(extra)
        };
        let out = mixio_bounded(&["serve", manifest.to_str().unwrap(), "--listen", "127.0.0.1:0"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{extra}: {err}");
        assert!(!err.contains("panicked"), "{extra}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{extra}: one line: {err}");
        assert!(
            err.contains("mixio.toml") && err.contains(key),
            "{extra}: names the file and `{key}`: {err}"
        );
    }

    // A FIFO as the source, and as the manifest: refused at once, not read.
    let dir = mixio_tests::serve::scratch_dir("cli-fifo");
    let fifo = dir.join("fifo.wasm");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let manifest = dir.join("mixio.toml");
    let text = format!("name = \"t\"\n[components.f]\nsource = \"{}\"\nroutes = [\"/\"]\n", fifo.display());
    std::fs::write(&manifest, text).unwrap();
    for target in [manifest.to_str().unwrap(), fifo.to_str().unwrap()] {
        let out = mixio_bounded(&["serve", target, "--listen", "127.0.0.1:0"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{target}: {err}");
        assert!(err.contains("FIFO"), "{target}: {err}");
    }
    let fifo_manifest = dir.join("fifo.toml");
    assert!(Command::new("mkfifo").arg(&fifo_manifest).status().unwrap().success());
    let out = mixio_bounded(&["serve", fifo_manifest.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("FIFO"), "{}", stderr(&out));
    let out = mixio_bounded(&["call", fifo.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("FIFO"), "{}", stderr(&out));
}

/// The longest accepted deadline, in blocking mode (where the deadline is a clock reading plus
/// the timeout): requests are answered.
#[test]
fn blocking_mode_takes_the_longest_deadline() {
    let out =
        mixio_bounded(&["call", "--io", "blocking:2", guest("hello").to_str().unwrap(), "--timeout", "24h"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("hello"), "{}", stdout(&out));
}
