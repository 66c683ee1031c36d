//! A small HTTP/1.1 client for tests: one connection per request, the whole body read; and
//! websocket clients of a server's `/ws/{channel}`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

/// A response, its body as text.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The header fields.
    pub headers: hyper::HeaderMap,
    /// The body, lossily decoded as UTF-8.
    pub body: String,
}

impl Reply {
    /// The value of header `name`, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends `method path` to the server at `base` (`http://HOST:PORT`).
pub async fn send(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    try_send(base, method, path, headers, body).await.unwrap_or_else(|e| panic!("{method} {base}{path}: {e}"))
}

/// Like [`send`], with connection and protocol errors returned.
pub async fn try_send(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Result<Reply, String> {
    let authority = base.trim_start_matches("http://").trim_end_matches('/');
    let stream = tokio::net::TcpStream::connect(authority).await.map_err(|e| format!("connect: {e}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let mut request = hyper::Request::builder().method(method).uri(path).header("host", authority);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(body.into())).map_err(|e| e.to_string())?;
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Reply { status, headers, body: String::from_utf8_lossy(&body).into_owned() })
}

/// `GET path`.
pub async fn get(base: &str, path: &str) -> Reply {
    send(base, "GET", path, &[], Bytes::new()).await
}

/// `POST path` with a JSON body.
pub async fn post_json(base: &str, path: &str, body: &serde_json::Value) -> Reply {
    send(base, "POST", path, &[("content-type", "application/json")], body.to_string()).await
}

/// A websocket client connection.
pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects to channel `channel` of the server at `base` (`http://...`).
pub async fn listen(base: &str, channel: &str) -> Socket {
    let url = format!("{}/ws/{channel}", base.replace("http://", "ws://"));
    let (socket, response) = tokio_tungstenite::connect_async(url).await.expect("websocket connects");
    assert_eq!(response.status(), 101);
    socket
}

/// The next message on `socket`, which must be text and come within 20 s.
pub async fn next_text(socket: &mut Socket) -> String {
    use futures_util::StreamExt;
    let message = tokio::time::timeout(std::time::Duration::from_secs(20), socket.next())
        .await
        .expect("a websocket message within 20 s")
        .expect("the socket is open")
        .expect("a valid frame");
    match message {
        tokio_tungstenite::tungstenite::Message::Text(text) => text.to_string(),
        other => panic!("expected a text message, got {other:?}"),
    }
}
