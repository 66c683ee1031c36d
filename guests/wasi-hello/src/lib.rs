//! A component of the standard `wasi:http/proxy` world, built with the `wasi` crate instead of
//! the mixio SDK, to show that mixio serves such components as they are.
//!
//! | request | answer |
//! |---|---|
//! | any method, any path | `200` `text/plain`: `hello from wasi:http, <method> <path_with_query>` |
//!
//! If the request has a body, the answer carries its size in bytes in header `x-body-bytes`.
//! `?sleep=MS` first waits MS milliseconds on the host's monotonic clock (the benchmarks' I/O
//! stand-in).
//! Every request also prints `wasi-hello handled <path_with_query>` to stdout, which the host
//! forwards to its log.

use std::io::{self, Write as _};

use wasi::http::types::{
    Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

wasi::http::proxy::export!(Hello);

struct Hello;

impl wasi::exports::http::incoming_handler::Guest for Hello {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let method = method_name(request.method());
        let path = request.path_with_query().unwrap_or_else(|| "/".into());
        if let Some(ms) = sleep_ms(&path) {
            wasi::clocks::monotonic_clock::subscribe_duration(ms.saturating_mul(1_000_000)).block();
        }
        let mut headers = vec![("content-type".to_string(), b"text/plain".to_vec())];
        let (status, body) = match body_size(&request) {
            Ok(size) => {
                if let Some(size) = size {
                    headers.push(("x-body-bytes".to_string(), size.to_string().into_bytes()));
                }
                (200, format!("hello from wasi:http, {method} {path}\n"))
            }
            Err(e) => (400, format!("could not read the request body: {e}\n")),
        };
        println!("wasi-hello handled {path}");
        if let Err(e) = respond(response_out, status, &headers, body.as_bytes()) {
            eprintln!("wasi-hello could not answer {method} {path}: {e}");
        }
    }
}

/// The `sleep` query parameter, in milliseconds.
fn sleep_ms(path: &str) -> Option<u64> {
    let query = path.split_once('?')?.1;
    query.split('&').find_map(|pair| pair.strip_prefix("sleep=")?.parse().ok())
}

fn method_name(method: Method) -> String {
    match method {
        Method::Get => "GET".into(),
        Method::Head => "HEAD".into(),
        Method::Post => "POST".into(),
        Method::Put => "PUT".into(),
        Method::Delete => "DELETE".into(),
        Method::Connect => "CONNECT".into(),
        Method::Options => "OPTIONS".into(),
        Method::Trace => "TRACE".into(),
        Method::Patch => "PATCH".into(),
        Method::Other(other) => other,
    }
}

/// Reads the request body to its end; its size, or `None` if the request has no body (neither
/// framing headers nor bytes).
fn body_size(request: &IncomingRequest) -> io::Result<Option<u64>> {
    let framed = {
        let headers = request.headers();
        headers.has("content-length") || headers.has("transfer-encoding")
    };
    let body = request.consume().map_err(|()| io::Error::other("the body was already consumed"))?;
    let size = {
        let mut stream = body.stream().map_err(|()| io::Error::other("the body has no stream"))?;
        io::copy(&mut stream, &mut io::sink())?
    };
    // The stream is dropped above: the body can only be finished once its stream is gone.
    drop(IncomingBody::finish(body));
    Ok((framed || size > 0).then_some(size))
}

fn respond(out: ResponseOutparam, status: u16, headers: &[(String, Vec<u8>)], body: &[u8]) -> io::Result<()> {
    let fields = Fields::from_list(headers).map_err(|e| io::Error::other(format!("headers: {e:?}")))?;
    let response = OutgoingResponse::new(fields);
    response.set_status_code(status).map_err(|()| io::Error::other(format!("status {status}")))?;
    let outgoing = response.body().map_err(|()| io::Error::other("the response body was already taken"))?;
    ResponseOutparam::set(out, Ok(response));
    {
        let mut stream =
            outgoing.write().map_err(|()| io::Error::other("the response body has no stream"))?;
        stream.write_all(body)?;
        // `io::Write::flush` blocks until written; the inherent `flush` only starts flushing.
        io::Write::flush(&mut stream)?;
    }
    OutgoingBody::finish(outgoing, None).map_err(|e| io::Error::other(format!("{e:?}")))
}
