//! Files of the app's `static_dir`, for `GET` and `HEAD` requests no route takes. `/` and
//! paths ending in `/` serve `index.html`.
//!
//! What is served must be a regular file inside the directory: the candidate path is resolved
//! (`..`, symlinks in the file or in any parent directory) and refused unless it lands inside the
//! canonical `static_dir`, on a regular file, with no hidden (`.`) segment on the way there.
//! Symlinks that stay inside are followed. Request segments that are hidden or hold `\`, `%`, `:`
//! or NUL are refused before touching the file system. FIFOs, sockets and devices are refused
//! from their metadata, before they are opened (opening a FIFO blocks until a writer comes).
//! Everything refused, and every error, answers the same `404`.
//!
//! A file is streamed in chunks of at most [`CHUNK`] bytes, read as the client takes them, so a
//! client costs at most a chunk (plus the server's write buffer) whatever the file's size. Its
//! `content-length` is the size in the metadata: a file that grows is cut at that size, one that
//! shrinks while being sent ends the body with an error, which cuts the connection.

use std::io;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Frame, SizeHint};
use hyper::{Response, StatusCode, header};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{Body, full, text_response};
use crate::BoxError;

/// The largest chunk a file is read and sent in.
pub(crate) const CHUNK: usize = 64 * 1024;

/// Answers `GET` (or `HEAD`, headers only) of `path` from `dir`; `404` for whatever is refused.
/// A file being sent holds one of `open_files` (a share of the process's file descriptors):
/// when none is left, or the process is out of descriptors, the answer is `503`.
pub(crate) async fn serve(dir: &Path, path: &str, head: bool, open_files: &Arc<Semaphore>) -> Response<Body> {
    let Some(file) = resolve(dir, path).await else {
        return not_found();
    };
    let length = file.metadata.len();
    let body = if head {
        full(Bytes::new())
    } else {
        let Ok(slot) = open_files.clone().try_acquire_owned() else {
            return busy();
        };
        match open(&file).await {
            Ok(Some(opened)) => FileBody::new(opened, length, slot).boxed_unsync(),
            Ok(None) => return not_found(),
            Err(e) if super::connection::out_of_resources(&e) => return busy(),
            Err(_) => return not_found(),
        }
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type(&file.requested)));
    headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-cache"));
    headers.insert(header::CONTENT_LENGTH, length.into());
    response
}

/// A regular file inside the static directory, as resolved for a request.
struct Resolved {
    /// The path the request named (its extension gives the content type).
    requested: PathBuf,
    /// The canonical path: no symlink, `.` or `..` left.
    canonical: PathBuf,
    /// The metadata of `canonical`, a regular file.
    metadata: std::fs::Metadata,
}

/// The regular file inside `dir` that `path` names, or `None` when it is refused or missing.
async fn resolve(dir: &Path, path: &str) -> Option<Resolved> {
    let mut requested = dir.to_path_buf();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        if !plain_segment(segment) {
            return None;
        }
        requested.push(segment);
    }
    if path.ends_with('/') {
        requested.push("index.html");
    }
    let root = tokio::fs::canonicalize(dir).await.ok()?;
    let canonical = tokio::fs::canonicalize(&requested).await.ok()?;
    // A symlink may lead out of the directory, or to a hidden file inside it.
    let inside = canonical.strip_prefix(&root).ok()?;
    if inside.components().any(|c| !matches!(c, Component::Normal(name) if !hidden(name))) {
        return None;
    }
    // `metadata` does not open the file: a FIFO is refused here, without blocking.
    let metadata = tokio::fs::metadata(&canonical).await.ok()?;
    metadata.is_file().then_some(Resolved { requested, canonical, metadata })
}

/// Whether a request's path segment is a plain file name: not hidden (nor `..`), no `\`, `%`,
/// `:` or NUL, and a single normal path component on this platform.
fn plain_segment(segment: &str) -> bool {
    let mut components = Path::new(segment).components();
    !segment.starts_with('.')
        && !segment.contains(['\\', '%', ':', '\0'])
        && matches!((components.next(), components.next()), (Some(Component::Normal(_)), None))
}

/// Whether a file name is hidden (starts with `.`).
fn hidden(name: &std::ffi::OsStr) -> bool {
    name.as_encoded_bytes().starts_with(b".")
}

/// Opens a resolved file, checking that what was opened is still that regular file (it may
/// have been replaced since it was resolved): `None` if it was, the error if it cannot be
/// opened.
async fn open(file: &Resolved) -> io::Result<Option<tokio::fs::File>> {
    let opened = tokio::fs::File::open(&file.canonical).await?;
    let metadata = opened.metadata().await?;
    Ok((metadata.is_file() && same_file(&metadata, &file.metadata)).then_some(opened))
}

/// Whether two metadata describe the same file.
#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

/// Whether two metadata describe the same file (not checked on this platform).
#[cfg(not(unix))]
fn same_file(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    true
}

/// The content type of a file, from its extension.
fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()).unwrap_or("") {
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
    }
}

fn not_found() -> Response<Body> {
    text_response(StatusCode::NOT_FOUND, "not found")
}

/// The answer when no file may be opened now.
fn busy() -> Response<Body> {
    let mut response =
        text_response(StatusCode::SERVICE_UNAVAILABLE, "too many files are being sent: try again shortly");
    response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    response
}

/// The first `remaining` bytes of a file, read in chunks of at most [`CHUNK`] bytes, one when
/// the server asks for it.
struct FileBody {
    file: tokio::fs::File,
    /// The file's share of the descriptors static files may hold.
    _slot: OwnedSemaphorePermit,
    /// The bytes still to send.
    remaining: u64,
    /// Where the next chunk is read.
    buffer: BytesMut,
}

impl FileBody {
    fn new(file: tokio::fs::File, length: u64, slot: OwnedSemaphorePermit) -> Self {
        FileBody { file, _slot: slot, remaining: length, buffer: BytesMut::new() }
    }
}

impl hyper::body::Body for FileBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let want = usize::try_from(this.remaining).map_or(CHUNK, |remaining| remaining.min(CHUNK));
        this.buffer.resize(want, 0);
        let mut read = ReadBuf::new(&mut this.buffer[..]);
        let result = ready!(Pin::new(&mut this.file).poll_read(cx, &mut read));
        let read = read.filled().len();
        if let Err(error) = result {
            this.remaining = 0;
            return Poll::Ready(Some(Err(error.into())));
        }
        if read == 0 {
            this.remaining = 0;
            let error = io::Error::new(io::ErrorKind::UnexpectedEof, "the file shrank while being sent");
            return Poll::Ready(Some(Err(error.into())));
        }
        this.remaining -= read as u64;
        let chunk = this.buffer.split_to(read).freeze();
        this.buffer.clear();
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::symlink;
    use std::time::Duration;

    use super::*;

    /// Room for a few open files.
    fn files() -> Arc<Semaphore> {
        Arc::new(Semaphore::new(4))
    }

    /// A fresh directory `<temp>/mixio-static-<pid>-<name>` holding `static/` and `outside/`.
    fn fresh(name: &str) -> (PathBuf, PathBuf) {
        let base = std::env::temp_dir().join(format!("mixio-static-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("static")).unwrap();
        std::fs::create_dir_all(base.join("outside")).unwrap();
        std::fs::write(base.join("outside/secret.txt"), "secret").unwrap();
        (base.join("static"), base)
    }

    /// The response's status, `content-length` and data frames.
    async fn get(dir: &Path, path: &str, head: bool) -> (StatusCode, Option<u64>, Vec<Bytes>) {
        let response = tokio::time::timeout(Duration::from_secs(5), serve(dir, path, head, &files()))
            .await
            .expect("serve blocked");
        let status = response.status();
        let length =
            response.headers().get(header::CONTENT_LENGTH).map(|v| v.to_str().unwrap().parse().unwrap());
        let mut body = response.into_body();
        let mut frames = Vec::new();
        while let Some(frame) = body.frame().await {
            frames.push(frame.unwrap().into_data().unwrap());
        }
        (status, length, frames)
    }

    fn concat(frames: &[Bytes]) -> Vec<u8> {
        frames.iter().flat_map(|f| f.iter().copied()).collect()
    }

    /// A file being sent holds its slot; with none left the answer is `503`, and the slot is
    /// back once the body is gone.
    #[tokio::test]
    async fn files_being_sent_are_bounded() {
        let (dir, base) = fresh("bounded");
        std::fs::write(dir.join("a.txt"), "a").unwrap();
        let files = Arc::new(Semaphore::new(1));
        let first = serve(&dir, "/a.txt", false, &files).await;
        assert_eq!(serve(&dir, "/a.txt", false, &files).await.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(serve(&dir, "/a.txt", true, &files).await.status(), StatusCode::OK, "HEAD opens nothing");
        drop(first);
        assert_eq!(serve(&dir, "/a.txt", false, &files).await.status(), StatusCode::OK);
        let _ = std::fs::remove_dir_all(base);
    }

    #[tokio::test]
    async fn symlink_to_a_file_outside_is_refused() {
        let (dir, base) = fresh("symlink-file");
        symlink(base.join("outside/secret.txt"), dir.join("secret.txt")).unwrap();
        assert_eq!(get(&dir, "/secret.txt", false).await.0, StatusCode::NOT_FOUND);
        assert_eq!(get(&dir, "/secret.txt", true).await.0, StatusCode::NOT_FOUND);
        let _ = std::fs::remove_dir_all(base);
    }

    #[tokio::test]
    async fn symlinked_directory_outside_is_refused() {
        let (dir, base) = fresh("symlink-dir");
        std::fs::write(base.join("outside/index.html"), "outside").unwrap();
        symlink(base.join("outside"), dir.join("out")).unwrap();
        assert_eq!(get(&dir, "/out/secret.txt", false).await.0, StatusCode::NOT_FOUND);
        assert_eq!(get(&dir, "/out/", false).await.0, StatusCode::NOT_FOUND);
        let _ = std::fs::remove_dir_all(base);
    }

    #[tokio::test]
    async fn symlinks_inside_are_followed() {
        let (dir, base) = fresh("symlink-inside");
        std::fs::create_dir(dir.join("assets")).unwrap();
        std::fs::write(dir.join("assets/app.js"), "let a = 1;").unwrap();
        symlink("assets/app.js", dir.join("app.js")).unwrap();
        symlink(dir.join("assets"), dir.join("linked")).unwrap();
        let (status, length, frames) = get(&dir, "/app.js", false).await;
        assert_eq!((status, length, concat(&frames)), (StatusCode::OK, Some(10), b"let a = 1;".to_vec()));
        assert_eq!(get(&dir, "/linked/app.js", false).await.0, StatusCode::OK);
        let _ = std::fs::remove_dir_all(base);
    }

    #[tokio::test]
    async fn hidden_targets_and_parent_segments_are_refused() {
        let (dir, base) = fresh("dotdot");
        std::fs::write(dir.join(".env"), "KEY=1").unwrap();
        symlink(".env", dir.join("env.txt")).unwrap();
        for path in
            ["/../outside/secret.txt", "/a/../../outside/secret.txt", "/.env", "/env.txt", "/%2e%2e/x"]
        {
            assert_eq!(get(&dir, path, false).await.0, StatusCode::NOT_FOUND, "{path}");
        }
        let _ = std::fs::remove_dir_all(base);
    }

    #[tokio::test]
    async fn fifo_is_refused_without_blocking() {
        let (dir, base) = fresh("fifo");
        let status = std::process::Command::new("mkfifo").arg(dir.join("pipe")).status().unwrap();
        assert!(status.success());
        assert_eq!(get(&dir, "/pipe", false).await.0, StatusCode::NOT_FOUND);
        assert_eq!(get(&dir, "/pipe", true).await.0, StatusCode::NOT_FOUND);
        let _ = std::fs::remove_dir_all(base);
    }

    #[tokio::test]
    async fn large_file_is_streamed_in_bounded_chunks() {
        let (dir, base) = fresh("large");
        let bytes: Vec<u8> = (0..5 * 1024 * 1024).map(|i: u32| (i % 251) as u8).collect();
        std::fs::write(dir.join("big.bin"), &bytes).unwrap();
        let (status, length, frames) = get(&dir, "/big.bin", false).await;
        assert_eq!((status, length), (StatusCode::OK, Some(bytes.len() as u64)));
        assert!(frames.len() >= bytes.len() / CHUNK);
        assert!(frames.iter().all(|f| !f.is_empty() && f.len() <= CHUNK));
        assert!(concat(&frames) == bytes);
        let _ = std::fs::remove_dir_all(base);
    }

    #[tokio::test]
    async fn shrinking_file_ends_the_body_with_an_error() {
        let (dir, base) = fresh("shrink");
        std::fs::write(dir.join("f.bin"), vec![7u8; 3 * CHUNK]).unwrap();
        let response = serve(&dir, "/f.bin", false, &files()).await;
        std::fs::File::options().write(true).open(dir.join("f.bin")).unwrap().set_len(CHUNK as u64).unwrap();
        let mut body = response.into_body();
        let mut sent = 0;
        let error = loop {
            match tokio::time::timeout(Duration::from_secs(5), body.frame()).await.unwrap() {
                Some(Ok(frame)) => sent += frame.into_data().unwrap().len(),
                Some(Err(error)) => break error,
                None => panic!("the body ended without an error"),
            }
        };
        assert_eq!(sent, CHUNK);
        assert!(error.to_string().contains("shrank"), "{error}");
        let _ = std::fs::remove_dir_all(base);
    }

    #[tokio::test]
    async fn growing_file_is_cut_at_its_length() {
        let (dir, base) = fresh("grow");
        std::fs::write(dir.join("log.txt"), "first").unwrap();
        let response = serve(&dir, "/log.txt", false, &files()).await;
        std::fs::write(dir.join("log.txt"), "first and more").unwrap();
        let frames = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&frames[..], b"first");
        let _ = std::fs::remove_dir_all(base);
    }

    #[tokio::test]
    async fn head_has_the_length_and_no_body() {
        let (dir, base) = fresh("head");
        std::fs::write(dir.join("style.css"), "body {}").unwrap();
        let response = serve(&dir, "/style.css", true, &files()).await;
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/css; charset=utf-8");
        let (status, length, frames) = get(&dir, "/style.css", true).await;
        assert_eq!((status, length, concat(&frames)), (StatusCode::OK, Some(7), Vec::new()));
        let _ = std::fs::remove_dir_all(base);
    }

    #[tokio::test]
    async fn index_html_for_directories() {
        let (dir, base) = fresh("index");
        std::fs::write(dir.join("index.html"), "<h1>hi</h1>").unwrap();
        std::fs::create_dir(dir.join("empty")).unwrap();
        let (status, _, frames) = get(&dir, "/", false).await;
        assert_eq!((status, concat(&frames)), (StatusCode::OK, b"<h1>hi</h1>".to_vec()));
        assert_eq!(get(&dir, "/empty/", false).await.0, StatusCode::NOT_FOUND);
        assert_eq!(get(&dir, "/empty", false).await.0, StatusCode::NOT_FOUND);
        assert_eq!(get(&dir, "/missing.txt", false).await.0, StatusCode::NOT_FOUND);
        let _ = std::fs::remove_dir_all(base);
    }
}
