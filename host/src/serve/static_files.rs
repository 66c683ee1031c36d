//! Files of the app's `static_dir`, for `GET` and `HEAD` requests no route takes. `/` and
//! paths ending in `/` serve `index.html`. Hidden files and `..` are never served.

use std::path::Path;

use bytes::Bytes;
use hyper::{Response, StatusCode, header};

use super::{Body, full, text_response};

pub(crate) async fn serve(dir: &Path, path: &str, head: bool) -> Response<Body> {
    let mut file = dir.to_path_buf();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        if segment.starts_with('.') || segment.contains(['\\', '%', '\0']) {
            return not_found();
        }
        file.push(segment);
    }
    if path.ends_with('/') {
        file.push("index.html");
    }
    let bytes = match tokio::fs::read(&file).await {
        Ok(bytes) => bytes,
        Err(_) => return not_found(),
    };
    let content_type = match file.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    };
    let length = bytes.len();
    let body = if head { Bytes::new() } else { Bytes::from(bytes) };
    let mut response = Response::new(full(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-cache"));
    headers.insert(header::CONTENT_LENGTH, length.into());
    response
}

fn not_found() -> Response<Body> {
    text_response(StatusCode::NOT_FOUND, "not found")
}
