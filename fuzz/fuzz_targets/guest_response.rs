//! Any response a guest can give (status, header names and values, body: arbitrary bytes,
//! through `guests/hostile`'s `respond` mode) becomes a well-formed HTTP response or a `500`
//! with the reason, and the server keeps serving.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|spec: &[u8]| {
    let served = common::server();
    let mut request = format!(
        "POST /hostile?do=respond HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        spec.len()
    )
    .into_bytes();
    request.extend_from_slice(spec);
    let answer = common::exchange(served, &request, false);
    assert!(answer.starts_with(b"HTTP/1.1 "), "{}", String::from_utf8_lossy(&answer));
    common::still_serving(served);
});
