//! Calling handlers and running commands through the embedding API: results, guest failures,
//! bad components, and user-defined host functions.

use std::future::IntoFuture;
use std::time::Duration;

use mixio_host::{ComponentKind, Error, Host, Request};
use mixio_tests::guest;

#[tokio::test]
async fn hello_greets_by_query_parameter() {
    let host = Host::new().unwrap();
    let hello = host.load(guest("hello")).unwrap();
    assert_eq!(hello.kind(), ComponentKind::Handler);
    assert_eq!(hello.name(), "hello");

    let response = hello.call(Request::get("/?name=ada")).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "hello, ada!\n");
    assert_eq!(response.header("Content-Type"), Some(&b"text/plain; charset=utf-8"[..]));

    let response = hello.call(Request::get("/?name=J%C3%BCrgen+K")).await.unwrap();
    assert_eq!(response.text(), "hello, Jürgen K!\n");
}

#[tokio::test]
async fn configuration_variables_reach_the_guest() {
    let host = Host::new().unwrap();
    let hello =
        host.load_with(guest("hello"), &mixio_host::Grants::new().config("greeting", "bonjour")).unwrap();
    assert_eq!(hello.call(Request::get("/?name=ada")).await.unwrap().text(), "bonjour, ada!\n");
}

#[tokio::test]
async fn a_handler_error_is_a_500_with_its_message() {
    let host = Host::new().unwrap();
    let sleepy = host.load(guest("sleepy")).unwrap();
    let response = sleepy.call(Request::get("/?ms=soon")).await.unwrap();
    assert_eq!(response.status, 500);
    assert_eq!(response.text(), "?ms must be a whole number, got \"soon\"\n");
}

/// A fresh instance starts from the component's initial memory: nothing an earlier instance
/// wrote in its slot of the pool (a static, marks on every other page of 2 MiB) is left,
/// however the pool resets the slot (in place for the pages it keeps resident, by the kernel
/// for the rest).
#[tokio::test]
async fn no_instance_sees_what_an_earlier_one_left_in_memory() {
    let host = Host::new().unwrap();
    let hostile = host.load(guest("hostile")).unwrap();
    for _ in 0..20 {
        assert_eq!(hostile.call(Request::get("/?do=remember")).await.unwrap().text(), "0 0\n");
    }
}

#[tokio::test]
async fn a_trap_is_an_error_for_that_call_only() {
    let host = Host::new().unwrap();
    let hostile = host.load(guest("hostile")).unwrap();

    let error = hostile.call(Request::get("/?do=unreachable")).await.unwrap_err();
    match &error {
        Error::Trap { component, message, .. } => {
            assert_eq!(component, "hostile");
            assert!(message.contains("unreachable"), "{message}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert_eq!(hostile.call(Request::get("/")).await.unwrap().text(), "fine\n");
    assert_eq!(host.metrics().instances, 0);
}

#[tokio::test]
async fn a_panic_is_reported_with_its_message_and_the_next_call_succeeds() {
    let host = Host::new().unwrap();
    let hostile = host.load(guest("hostile")).unwrap();

    let error = hostile.call(Request::get("/?do=panic")).await.unwrap_err();
    match &error {
        Error::Panic { component, message } => {
            assert_eq!(component, "hostile");
            assert!(message.starts_with("boom: the guest gave up (at "), "{message}");
            assert!(message.contains("hostile/src/lib.rs"), "{message}");
        }
        other => panic!("expected a panic, got {other:?}"),
    }
    assert_eq!(error.to_string().lines().count(), 1, "one-line message: {error}");

    // A panic after a suspension is reported the same way.
    let error = hostile.call(Request::get("/?do=sleep-then-panic&ms=5")).await.unwrap_err();
    assert!(matches!(&error, Error::Panic { message, .. } if message.contains("after 5 ms")), "{error}");

    assert_eq!(hostile.call(Request::get("/?do=ok")).await.unwrap().status, 200);
    let m = host.metrics();
    assert_eq!((m.instances, m.suspended), (0, 0));
}

#[tokio::test]
async fn failing_and_healthy_calls_run_side_by_side() {
    let host = Host::new().unwrap();
    let hostile = host.load(guest("hostile")).unwrap();
    let sleepy = host.load(guest("sleepy")).unwrap();

    let mut calls = Vec::new();
    for i in 0..60 {
        let (c, uri) = match i % 3 {
            0 => (&hostile, "/?do=sleep-then-panic&ms=20"),
            1 => (&hostile, "/?do=unreachable"),
            _ => (&sleepy, "/?ms=20"),
        };
        calls.push(tokio::spawn(c.call(Request::get(uri)).into_future()));
    }
    let mut ok = 0;
    for (i, call) in calls.into_iter().enumerate() {
        let result = call.await.unwrap();
        match i % 3 {
            0 => assert!(matches!(result, Err(Error::Panic { .. })), "{result:?}"),
            1 => assert!(matches!(result, Err(Error::Trap { .. })), "{result:?}"),
            _ => {
                assert_eq!(result.unwrap().status, 200);
                ok += 1;
            }
        }
    }
    assert_eq!(ok, 20);
    assert_eq!(host.metrics().instances, 0);
}

#[tokio::test]
async fn a_command_runs_with_arguments_and_exit_status() {
    let host = Host::new().unwrap();
    let countdown = host.load(guest("countdown")).unwrap();
    assert_eq!(countdown.kind(), ComponentKind::Command);
    assert_eq!(countdown.run(["3", "1"]).await.unwrap(), 0);
    // The guest exits with status 2; WASI 0.2's `exit` carries only success or failure.
    assert_eq!(countdown.run(["three"]).await.unwrap(), 1);

    let error = countdown.call(Request::get("/")).await.unwrap_err();
    assert!(error.to_string().contains("is a command, not a handler"), "{error}");
    let hello = host.load(guest("hello")).unwrap();
    let error = hello.run(Vec::<String>::new()).await.unwrap_err();
    assert!(error.to_string().contains("is a handler, not a command"), "{error}");
}

#[tokio::test]
async fn a_user_defined_async_host_function_serves_a_custom_world() {
    let host = Host::builder()
        .func_async("acme:plugin/greeter@0.1.0", "greet", |(name,): (String,)| async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok((format!("hello from the host, {name}"),))
        })
        .build()
        .unwrap();
    let plugin = host.load(guest("greeter-plugin")).unwrap();

    let response = plugin.call(Request::get("/?name=ada")).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "hello from the host, ada\n");
    let m = host.metrics();
    assert_eq!(m.peak_suspended, 1, "the guest was suspended in the host function");
    assert_eq!(m.host_calls, 1);
}

#[test]
fn a_component_needing_an_unknown_import_is_refused_at_load() {
    let host = Host::new().unwrap();
    let error = host.load(guest("greeter-plugin")).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, Error::Load { .. }), "{error:?}");
    assert!(message.contains("acme:plugin/greeter@0.1.0"), "{message}");
    assert!(message.contains("does not provide"), "{message}");
}

#[test]
fn files_that_are_not_components_are_refused_with_a_clear_reason() {
    let host = Host::new().unwrap();
    let dir = std::env::temp_dir().join(format!("mixio-bad-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let valid = std::fs::read(guest("hello")).unwrap();
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("empty.wasm", vec![], "the file is empty"),
        ("text.wasm", b"hello, I am text".to_vec(), "not a WebAssembly file"),
        ("core.wasm", b"\0asm\x01\0\0\0".to_vec(), "core WebAssembly module, not a component"),
        ("truncated.wasm", valid[..valid.len() / 2].to_vec(), "invalid component"),
        ("module.wat", b"(module)".to_vec(), "WebAssembly text"),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let error = host.load(&path).unwrap_err().to_string();
        assert!(error.starts_with(&format!("cannot load `{}`", path.display())), "{error}");
        assert!(error.contains(expected), "{name}: {error}");
    }
    let missing = host.load(dir.join("missing.wasm")).unwrap_err().to_string();
    assert!(missing.contains("missing.wasm") && missing.contains("No such file"), "{missing}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn invalid_limits_are_configuration_errors() {
    let error = Host::builder().max_instances(0).build().err().unwrap();
    assert!(matches!(&error, Error::Config(m) if m.contains("max_instances")), "{error}");
    let error = Host::builder().max_memory(1000).build().err().unwrap();
    assert!(matches!(&error, Error::Config(m) if m.contains("max_memory")), "{error}");
    // More address space than a process has: refused with the reason, not a failed mmap.
    let error = Host::builder().max_instances(1_000_000).max_memory(1 << 30).build().err().unwrap();
    assert!(
        matches!(&error, Error::Config(m) if m.contains("max_instances 1000000") && m.contains("address space")),
        "{error}"
    );
}

/// A pool too large for 4 GiB per memory reserves `max_memory` per memory instead; its guests
/// run as usual (their code checks bounds explicitly).
#[tokio::test(flavor = "current_thread")]
async fn a_pool_of_20000_instances_reserves_less_per_memory_and_runs_guests() {
    let host = Host::builder().max_instances(20_000).max_memory(16 << 20).build().unwrap();
    let hello = host.load(guest("hello")).unwrap();
    let response = hello.call(Request::get("/?name=pool")).await.unwrap();
    assert_eq!(response.status, 200);
    assert!(response.text().contains("pool"), "{}", response.text());
}
