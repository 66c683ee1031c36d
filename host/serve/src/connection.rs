//! One client's socket, as the server holds it: it keeps the connection's place under the
//! server's `max_connections` for as long as the socket is open (through a websocket upgrade
//! too), and cuts a client that does not keep up with what the server writes, so that a client
//! that never reads, or reads a byte now and then, cannot keep a response in memory: once a
//! write has to wait for the client, the client must take [`MIN_WRITE_PROGRESS`] within
//! `write_idle_timeout` of waiting (see [`Stall`]).
//!
//! When the server closes a connection whose client is still sending (a `408` or `413` cuts a
//! body short), closing at once would reset it, and a reset can discard the answer before the
//! client has read it. So the socket lingers: its write side is shut, and what the client still
//! sends is read and dropped for at most [`LINGER`] (and [`LINGER_BYTES`]) before it closes.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Sleep;

/// Counters of a server's connections.
#[derive(Default)]
pub(crate) struct ConnectionStats {
    /// Open now.
    pub(crate) open: AtomicUsize,
    /// Accepted since the server started.
    pub(crate) accepted: AtomicU64,
    /// Cut because the client did not keep up with a response (see the module docs).
    pub(crate) write_timeouts: AtomicU64,
}

/// What a client must take of a response within `write_idle_timeout` once the server's writes
/// wait for it: 16 KiB, a rate of 1.6 KB/s at the default 10 s, far below any real network's.
pub(crate) const MIN_WRITE_PROGRESS: usize = 16 << 10;

/// Longest a closed connection reads what its client still sends (see the module docs).
pub(crate) const LINGER: Duration = Duration::from_secs(2);
/// The most a closed connection reads of what its client still sends.
pub(crate) const LINGER_BYTES: usize = 256 << 10;

/// A stall: it begins when a write has to wait for the client, and ends once the client has
/// taken [`MIN_WRITE_PROGRESS`] since. Its time runs only while writes wait: when everything
/// queued has been written (hyper flushes the socket only once its own buffer is empty) it is
/// paused until a write waits again, so that a response in small pieces, read slowly, is cut
/// too, and an idle kept-alive connection is not.
struct Stall {
    /// What the client took since the stall began.
    taken: usize,
    /// The stall's time left, as of `since`.
    left: Duration,
    /// When a write began to wait, if one waits now (the time is running).
    since: Option<tokio::time::Instant>,
}

/// A client's socket under the server's bounds.
pub(crate) struct ClientSocket {
    /// Taken by the lingering close.
    stream: Option<TcpStream>,
    write_idle: Duration,
    /// Armed when a write has to wait for the client: when it fires, the client has taken less
    /// than [`MIN_WRITE_PROGRESS`] since.
    stall: Option<Pin<Box<Sleep>>>,
    /// The current stall, if one is going on (see [`Stall`]).
    stalled: Option<Stall>,
    /// The server shut its side down (it closes the connection).
    shut_down: bool,
    /// The client closed its side (a read found the end).
    client_done: bool,
    stats: Arc<ConnectionStats>,
    /// Taken by the lingering close.
    slot: Option<OwnedSemaphorePermit>,
}

impl ClientSocket {
    /// `stream`, counted open until dropped, holding `slot` of the connection cap.
    pub(crate) fn new(
        stream: TcpStream,
        slot: OwnedSemaphorePermit,
        write_idle: Duration,
        stats: Arc<ConnectionStats>,
    ) -> ClientSocket {
        stats.open.fetch_add(1, Relaxed);
        stats.accepted.fetch_add(1, Relaxed);
        ClientSocket {
            stream: Some(stream),
            write_idle,
            stall: None,
            stalled: None,
            shut_down: false,
            client_done: false,
            stats,
            slot: Some(slot),
        }
    }

    fn stream(&mut self) -> Pin<&mut TcpStream> {
        // Only `drop` takes it.
        Pin::new(self.stream.as_mut().expect("the socket is open"))
    }

    /// Called when a write waits for the client: starts a stall (and its timer) unless one is
    /// going on, and fails once the timer has run out.
    fn poll_stall(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let stall = self.stalled.get_or_insert(Stall { taken: 0, left: self.write_idle, since: None });
        let now = tokio::time::Instant::now();
        let deadline = now + stall.left;
        let timer = self.stall.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if stall.since.is_none() {
            // Beginning, or running again after a pause.
            stall.since = Some(now);
            timer.as_mut().reset(deadline);
        }
        ready!(timer.as_mut().poll(cx));
        self.stats.write_timeouts.fetch_add(1, Relaxed);
        tracing::debug!(
            "the client did not keep up with the response for {:?}: connection cut",
            self.write_idle
        );
        Poll::Ready(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the client took less than {MIN_WRITE_PROGRESS} bytes in {:?}", self.write_idle),
        ))
    }

    /// `poll` is an operation on the socket that writes `written` of what it was given when it is
    /// done: a stall timer runs while it waits.
    fn writing<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: impl FnOnce(Pin<&mut TcpStream>, &mut Context<'_>) -> Poll<io::Result<T>>,
        written: impl FnOnce(&T) -> usize,
    ) -> Poll<io::Result<T>> {
        match poll(self.stream(), cx) {
            Poll::Ready(result) => {
                if let (Some(stall), Ok(value)) = (&mut self.stalled, &result) {
                    stall.taken += written(value);
                    if stall.taken >= MIN_WRITE_PROGRESS {
                        // The client keeps up: the stall is over.
                        self.stalled = None;
                    }
                }
                Poll::Ready(result)
            }
            Poll::Pending => self.poll_stall(cx).map(Err),
        }
    }
}

impl Drop for ClientSocket {
    fn drop(&mut self) {
        let (Some(stream), Some(slot)) = (self.stream.take(), self.slot.take()) else { return };
        let runtime = tokio::runtime::Handle::try_current();
        match runtime {
            Ok(runtime) if self.shut_down && !self.client_done => {
                let stats = self.stats.clone();
                runtime.spawn(async move {
                    linger(stream).await;
                    drop(slot);
                    stats.open.fetch_sub(1, Relaxed);
                });
            }
            _ => {
                self.stats.open.fetch_sub(1, Relaxed);
            }
        }
    }
}

/// Reads and drops what the client still sends, until it closes its side or the bounds pass.
async fn linger(mut stream: TcpStream) {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 16 << 10];
    let mut read = 0;
    let _ = tokio::time::timeout(LINGER, async {
        while read < LINGER_BYTES {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
    })
    .await;
}

impl AsyncRead for ClientSocket {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = ready!(this.stream().poll_read(cx, buf));
        if result.is_ok() && buf.filled().len() == before && buf.remaining() > 0 {
            this.client_done = true;
        }
        Poll::Ready(result)
    }
}

impl AsyncWrite for ClientSocket {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.get_mut().writing(cx, |s, cx| s.poll_write(cx, buf), |n| *n)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().writing(cx, |s, cx| s.poll_write_vectored(cx, bufs), |n| *n)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(TcpStream::is_write_vectored)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let flushed = this.writing(cx, |s, cx| s.poll_flush(cx), |()| 0);
        if flushed.is_ready()
            && let Some(stall) = &mut this.stalled
            && let Some(since) = stall.since.take()
        {
            // Everything queued was written: nothing waits for the client until the next write
            // does, so the stall's time stops meanwhile.
            stall.left = stall.left.saturating_sub(since.elapsed());
        }
        flushed
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.shut_down = true;
        this.writing(cx, |s, cx| s.poll_shutdown(cx), |()| 0)
    }
}

/// Connections the kernel keeps waiting to be accepted (at most `net.core.somaxconn`): those
/// past `max_connections` wait here. Rust's and mio's default, 128, would make a burst of
/// clients retry their handshakes (a second or more) as soon as the cap is reached.
pub(crate) const BACKLOG: u32 = 4096;

/// A listener on `addr` with a backlog of [`BACKLOG`].
pub(crate) fn listen(addr: std::net::SocketAddr) -> io::Result<tokio::net::TcpListener> {
    let socket = match addr {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    // As `TcpListener::bind` does: a restarted server can bind at once.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Whether a failed `accept` means the process or the system is out of descriptors or memory
/// (waiting helps), rather than one connection failing (the next accept is fine).
pub(crate) fn out_of_resources(error: &io::Error) -> bool {
    use rustix::io::Errno;
    error.raw_os_error().is_some_and(|code| {
        [Errno::MFILE, Errno::NFILE, Errno::NOBUFS, Errno::NOMEM].iter().any(|e| e.raw_os_error() == code)
    })
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A server's sockets under a cap of `slots` connections, and their counters.
    struct Server {
        listener: tokio::net::TcpListener,
        slots: Arc<tokio::sync::Semaphore>,
        stats: Arc<ConnectionStats>,
    }

    impl Server {
        async fn new(slots: usize) -> Server {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let slots = Arc::new(tokio::sync::Semaphore::new(slots));
            Server { listener, slots, stats: Arc::default() }
        }

        /// A client connected, and the server's socket for it, cut after `write_idle`.
        async fn connect(&self, write_idle: Duration) -> (TcpStream, ClientSocket) {
            let client = TcpStream::connect(self.listener.local_addr().unwrap()).await.unwrap();
            let (stream, _) = self.listener.accept().await.unwrap();
            let slot = self.slots.clone().try_acquire_owned().unwrap();
            (client, ClientSocket::new(stream, slot, write_idle, self.stats.clone()))
        }
    }

    /// A client that reads nothing: the writer's socket fills, and the write fails once it has
    /// been pending for the idle bound; a reading client is never cut.
    #[tokio::test]
    async fn a_client_that_takes_nothing_is_cut() {
        let server = Server::new(2).await;
        let (stats, slots) = (&server.stats, &server.slots);
        let (_silent, mut socket) = server.connect(Duration::from_millis(200)).await;
        assert_eq!((stats.open.load(Relaxed), slots.available_permits()), (1, 1));
        let chunk = vec![0u8; 1 << 20];
        let error = loop {
            if let Err(e) = socket.write_all(&chunk).await {
                break e;
            }
        };
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(stats.write_timeouts.load(Relaxed), 1);
        drop(socket);
        assert_eq!((stats.open.load(Relaxed), slots.available_permits()), (0, 2), "the slot is back");

        // A client that reads is never cut, however much is written (a longer bound: the
        // reader must only be scheduled within it).
        let (mut reader, mut socket) = server.connect(Duration::from_secs(5)).await;
        let read = tokio::spawn(async move {
            let mut sink = Vec::new();
            reader.read_to_end(&mut sink).await.map(|_| sink.len())
        });
        for _ in 0..64 {
            socket.write_all(&chunk).await.unwrap();
        }
        socket.shutdown().await.unwrap();
        drop(socket);
        assert_eq!(read.await.unwrap().unwrap(), 64 << 20);
        assert_eq!(stats.write_timeouts.load(Relaxed), 1);
    }

    /// A client reading a steady 5 KB/s, less than the 16 KiB a second the bound asks here, is
    /// cut although it never stops taking bytes; one reading as fast as it can is not. The
    /// buffers on both sides are small, so that what the client takes is what gets written.
    #[tokio::test]
    async fn a_client_taking_too_little_is_cut_though_it_reads() {
        let listener = tokio::net::TcpSocket::new_v4().unwrap();
        listener.set_recv_buffer_size(4096).unwrap();
        listener.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = listener.listen(8).unwrap();
        let stats = Arc::new(ConnectionStats::default());
        let slots = Arc::new(tokio::sync::Semaphore::new(2));
        let connect = |write_idle| {
            let (listener, stats, slots) = (&listener, stats.clone(), slots.clone());
            async move {
                let socket = tokio::net::TcpSocket::new_v4().unwrap();
                socket.set_send_buffer_size(4096).unwrap();
                let server = socket.connect(listener.local_addr().unwrap()).await.unwrap();
                let (client, _) = listener.accept().await.unwrap();
                (client, ClientSocket::new(server, slots.try_acquire_owned().unwrap(), write_idle, stats))
            }
        };
        let (mut slow, mut socket) = connect(Duration::from_secs(1)).await;
        let reading = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            for _ in 0..600 {
                match slow.read(&mut buf).await {
                    Ok(0) | Err(_) => return true,
                    Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
            false
        });
        let error = loop {
            if let Err(e) = socket.write_all(&[0u8; 64 << 10]).await {
                break e;
            }
        };
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        drop(socket);
        assert!(reading.await.unwrap(), "the slow reader saw the connection end");
        assert_eq!(stats.write_timeouts.load(Relaxed), 1);

        let (mut fast, mut socket) = connect(Duration::from_secs(1)).await;
        let reading = tokio::spawn(async move {
            let mut sink = Vec::new();
            fast.read_to_end(&mut sink).await.map(|_| sink.len())
        });
        for _ in 0..64 {
            socket.write_all(&[0u8; 64 << 10]).await.unwrap();
        }
        socket.shutdown().await.unwrap();
        drop(socket);
        assert_eq!(reading.await.unwrap().unwrap(), 64 << 16);
        assert_eq!(stats.write_timeouts.load(Relaxed), 1, "the fast reader was not cut");
    }

    /// The server answers and closes while its client is still sending: the client reads the
    /// whole answer (no reset discards it), and the slot is given back once the linger ends.
    #[tokio::test]
    async fn closing_on_a_client_still_sending_lingers_instead_of_resetting() {
        let server = Server::new(1).await;
        let (stats, slots) = (&server.stats, &server.slots);
        let (mut client, mut socket) = server.connect(Duration::from_secs(5)).await;
        client.write_all(&[1; 1000]).await.unwrap();
        let mut head = [0u8; 10];
        socket.read_exact(&mut head).await.unwrap();
        // The rest of what the client sent is unread when the server answers and closes.
        socket.write_all(b"the answer").await.unwrap();
        socket.shutdown().await.unwrap();
        drop(socket);
        client.write_all(&[2; 1000]).await.unwrap();
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
        assert_eq!(answer, b"the answer");
        drop(client);
        for _ in 0..3000 {
            if slots.available_permits() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!((slots.available_permits(), stats.open.load(Relaxed)), (1, 0));
    }
}
