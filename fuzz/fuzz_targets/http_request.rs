//! Raw bytes as an HTTP request to `mixio serve`: any answer is a well-formed HTTP response (or
//! a closed connection), the server never panics, and it keeps serving.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let served = common::server();
    let answer = common::exchange(served, bytes, true);
    // An HTTP/1.0 request is answered in HTTP/1.0.
    let http = answer.starts_with(b"HTTP/1.1 ") || answer.starts_with(b"HTTP/1.0 ");
    assert!(answer.is_empty() || http, "{}", String::from_utf8_lossy(&answer));
    common::still_serving(served);
});
