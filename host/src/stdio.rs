//! Guest stdout and stderr: each complete line becomes a `tracing` event tagged with the
//! component, verbatim (empty lines too), and the last few KiB of stderr are kept so a trap can be reported together with
//! what the guest printed before it (a Rust panic message, for instance).

use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// The longest line forwarded to the log; longer output is split.
const MAX_LINE: usize = 4096;
/// How much of the most recent stderr output is kept for error reports.
const TAIL: usize = 4096;

#[derive(Clone, Copy, Debug)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// One guest stream. Clones share the same buffer.
#[derive(Clone)]
pub(crate) struct GuestOutput(Arc<Mutex<Inner>>);

struct Inner {
    component: Arc<str>,
    stream: Stream,
    line: Vec<u8>,
    tail: Vec<u8>,
}

impl GuestOutput {
    pub(crate) fn new(component: Arc<str>, stream: Stream) -> GuestOutput {
        GuestOutput(Arc::new(Mutex::new(Inner { component, stream, line: Vec::new(), tail: Vec::new() })))
    }

    fn write_bytes(&self, mut bytes: &[u8]) {
        let mut inner = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if matches!(inner.stream, Stream::Stderr) {
            inner.tail.extend_from_slice(bytes);
            let excess = inner.tail.len().saturating_sub(TAIL);
            inner.tail.drain(..excess);
        }
        while let Some(pos) = bytes.iter().position(|&b| b == b'\n') {
            inner.line.extend_from_slice(&bytes[..pos]);
            inner.emit();
            bytes = &bytes[pos + 1..];
        }
        inner.line.extend_from_slice(bytes);
        while inner.line.len() > MAX_LINE {
            let rest = inner.line.split_off(MAX_LINE);
            inner.emit();
            inner.line = rest;
        }
    }

    /// Forwards a last unterminated line and forgets the stderr tail: a reused instance's next
    /// call starts its error reports afresh.
    pub(crate) fn clear(&self) {
        let mut inner = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if !inner.line.is_empty() {
            inner.emit();
        }
        inner.tail.clear();
    }

    /// Forwards a last unterminated line and returns the stderr tail.
    pub(crate) fn finish(&self) -> String {
        let mut inner = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if !inner.line.is_empty() {
            inner.emit();
        }
        String::from_utf8_lossy(&inner.tail).into_owned()
    }
}

impl Inner {
    fn emit(&mut self) {
        let line = String::from_utf8_lossy(&self.line);
        let component = &*self.component;
        match self.stream {
            Stream::Stdout => tracing::info!(target: "mixio::guest", component, stream = "stdout", "{line}"),
            Stream::Stderr => tracing::warn!(target: "mixio::guest", component, stream = "stderr", "{line}"),
        }
        self.line.clear();
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.write_bytes(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: std::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: std::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_keeps_a_bounded_tail_and_splits_lines() {
        let out = GuestOutput::new("t".into(), Stream::Stderr);
        out.write_bytes(b"first\nsecond");
        out.write_bytes(b" half\n");
        assert_eq!(out.finish(), "first\nsecond half\n");
        out.write_bytes(&vec![b'x'; 3 * TAIL]);
        assert_eq!(out.finish().len(), TAIL);
        assert!(out.0.lock().unwrap().line.is_empty());
    }

    /// Lines are logged as the guest wrote them: `println!()` is an empty line, not nothing.
    #[test]
    fn empty_lines_are_lines() {
        use std::sync::{Arc, Mutex};
        let lines = Arc::new(Mutex::new(Vec::new()));
        let collected = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || Line(collected.clone()))
            .without_time()
            .with_level(false)
            .with_target(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let out = GuestOutput::new("t".into(), Stream::Stdout);
            out.write_bytes(b"a\n\n  \nb");
            out.finish();
        });
        // One event per line: "a", "", "  " and the unterminated "b".
        let lines = lines.lock().unwrap();
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert!(lines[0].starts_with("a ") && lines[3].starts_with("b "), "{lines:?}");
    }

    /// A `tracing` writer that appends each event to a shared list.
    struct Line(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

    impl std::io::Write for Line {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().push(String::from_utf8_lossy(buf).into_owned());
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn stdout_keeps_no_tail() {
        let out = GuestOutput::new("t".into(), Stream::Stdout);
        out.write_bytes(b"hello\n");
        assert_eq!(out.finish(), "");
    }
}
