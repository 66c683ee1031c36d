//! A `mixio serve` in this process (the `hello` and `hostile` guests), shared by every run of
//! a target, and a raw HTTP exchange with it.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct Served {
    pub runtime: tokio::runtime::Runtime,
    pub addr: String,
}

pub fn server() -> &'static Served {
    static SERVED: OnceLock<Served> = OnceLock::new();
    SERVED.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let manifest = format!(
            "name = \"fuzz\"\n\
             [components.hello]\nsource = \"{}\"\nroutes = [\"/hello\"]\n\
             [components.hostile]\nsource = \"{}\"\nroutes = [\"/hostile\"]\nlimits = {{ timeout = \"2s\" }}\n",
            mixio_tests::guest("hello").display(),
            mixio_tests::guest("hostile").display()
        );
        let (url, _, _) = runtime.block_on(mixio_tests::serve::start_in_process(&manifest));
        Served { runtime, addr: url.trim_start_matches("http://").to_string() }
    })
}

/// Sends `bytes` on a new connection (then closes its sending side if `hang_up`, so a server
/// waiting for the rest of a request learns there is none) and returns what came back before
/// the server closed the connection or went quiet for 3 s.
pub fn exchange(served: &Served, bytes: &[u8], hang_up: bool) -> Vec<u8> {
    served.runtime.block_on(async {
        let mut socket = tokio::net::TcpStream::connect(&served.addr).await.expect("the server accepts");
        let _ = socket.write_all(bytes).await;
        if hang_up {
            let _ = socket.shutdown().await;
        }
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(3), socket.read_to_end(&mut answer)).await;
        answer
    })
}

/// After any input the server still answers a well-formed request.
pub fn still_serving(served: &Served) {
    let answer =
        exchange(served, b"GET /hello?name=fuzz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n", false);
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
}
