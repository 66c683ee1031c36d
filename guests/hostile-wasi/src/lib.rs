//! A misbehaving component of the standard `wasi:http/proxy` world, for the hostile tests: the
//! misbehaviours that need the raw `wasi:http` interface (a response streamed, then a trap;
//! outbound requests started all at once).
//!
//! | request | what it does |
//! |---|---|
//! | `?do=respond-then-trap` | starts a chunked `200` response, writes `the start `, waits 100 ms, then traps |
//! | `?do=fan-out&n=N&to=HOST:PORT` | starts N outbound `GET http://HOST:PORT/` at once, then waits for each; answers `200` `ok: A, refused: R, failed: F` and the first refusal's message |
//! | `?do=print` | prints `first`, an empty line, `  indented` and `last` to stdout, and `warned` and an empty line to stderr; answers `200` |
//! | `?do=no-response` | returns without setting a response |
//! | `?do=status&code=N` | answers status `N` (e.g. a `101` it has no business sending) |
//! | `?do=big&kb=N` | answers `200` with a body of `N` KiB, written 4 KiB at a time |

use std::io::Write as _;

use wasi::http::outgoing_handler;
use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingRequest, OutgoingResponse, ResponseOutparam, Scheme,
};

wasi::http::proxy::export!(Hostile);

struct Hostile;

impl wasi::exports::http::incoming_handler::Guest for Hostile {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        match param(&path, "do").unwrap_or_default() {
            "respond-then-trap" => respond_then_trap(response_out),
            "fan-out" => {
                let n = param(&path, "n").and_then(|n| n.parse().ok()).unwrap_or(100);
                let to = param(&path, "to").unwrap_or("127.0.0.1:1");
                respond(response_out, 200, &fan_out(n, to));
            }
            "print" => {
                println!("first");
                println!();
                println!("  indented");
                println!("last");
                eprintln!("warned");
                eprintln!();
                respond(response_out, 200, "printed\n");
            }
            "no-response" => drop(response_out),
            "big" => {
                let kb = param(&path, "kb").and_then(|n| n.parse().ok()).unwrap_or(1024);
                respond_big(response_out, kb);
            }
            "status" => {
                let code = param(&path, "code").and_then(|n| n.parse().ok()).unwrap_or(200);
                respond(response_out, code, "a status of the guest's choosing\n");
            }
            other => respond(response_out, 400, &format!("unknown do={other:?}\n")),
        }
    }
}

/// Value of query parameter `name` in `path`.
fn param<'a>(path: &'a str, name: &str) -> Option<&'a str> {
    let query = path.split_once('?')?.1;
    query.split('&').find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

fn respond_then_trap(out: ResponseOutparam) {
    // No content-length: the host streams the body chunked, so the client sees the start.
    let response = OutgoingResponse::new(Fields::new());
    let body = response.body().expect("a new response has a body");
    ResponseOutparam::set(out, Ok(response));
    let mut stream = body.write().expect("a new body has a stream");
    stream.write_all(b"the start ").expect("write");
    std::io::Write::flush(&mut stream).expect("flush");
    // Time for the host to send the head and the first chunk.
    wasi::clocks::monotonic_clock::subscribe_duration(100_000_000).block();
    // On wasm, `abort` is the `unreachable` instruction: a trap.
    std::process::abort()
}

/// Starts `n` outbound requests to `to` at once, then waits for each.
fn fan_out(n: usize, to: &str) -> String {
    let mut pending = Vec::with_capacity(n);
    let (mut refused, mut failed, mut first_refusal) = (0, 0, None);
    for _ in 0..n {
        let request = OutgoingRequest::new(Fields::new());
        request.set_scheme(Some(&Scheme::Http)).expect("scheme");
        request.set_authority(Some(to)).expect("authority");
        request.set_path_with_query(Some("/")).expect("path");
        match outgoing_handler::handle(request, None) {
            Ok(future) => pending.push(future),
            Err(e) => {
                refused += 1;
                first_refusal.get_or_insert_with(|| format!("{e:?}"));
            }
        }
    }
    let mut ok = 0;
    for future in pending {
        future.subscribe().block();
        match future.get() {
            Some(Ok(Ok(_response))) => ok += 1,
            Some(Ok(Err(e))) => {
                refused += 1;
                first_refusal.get_or_insert_with(|| format!("{e:?}"));
            }
            _ => failed += 1,
        }
    }
    let first = first_refusal.unwrap_or_default();
    format!("ok: {ok}, refused: {refused}, failed: {failed}\n{first}\n")
}

/// A `200` of `kb` KiB, written 4 KiB at a time (each write waits while the client is not
/// reading).
fn respond_big(out: ResponseOutparam, kb: usize) {
    let response = OutgoingResponse::new(Fields::new());
    let body = response.body().expect("a new response has a body");
    ResponseOutparam::set(out, Ok(response));
    {
        let mut stream = body.write().expect("a new body has a stream");
        for _ in 0..kb / 4 {
            stream.write_all(&[b'x'; 4096]).expect("write");
        }
        std::io::Write::flush(&mut stream).expect("flush");
    }
    OutgoingBody::finish(body, None).expect("finish");
}

fn respond(out: ResponseOutparam, status: u16, text: &str) {
    let headers =
        Fields::from_list(&[("content-type".to_string(), b"text/plain".to_vec())]).expect("headers");
    let response = OutgoingResponse::new(headers);
    response.set_status_code(status).expect("status");
    let body = response.body().expect("a new response has a body");
    ResponseOutparam::set(out, Ok(response));
    {
        let mut stream = body.write().expect("a new body has a stream");
        stream.write_all(text.as_bytes()).expect("write");
        std::io::Write::flush(&mut stream).expect("flush");
    }
    OutgoingBody::finish(body, None).expect("finish");
}
