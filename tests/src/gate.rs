//! A kitchen on 127.0.0.1 that holds every request until the test opens it, counting the
//! requests waiting: proof that many guests are suspended on outbound HTTP at once. Once
//! open, it answers every request (waiting or new) `201 {"mins": 42}`.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A running gate; stopped when dropped.
pub struct Gate {
    url: String,
    waiting: Arc<AtomicUsize>,
    open: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Gate {
    /// Starts a closed gate on an ephemeral port (needs a tokio runtime).
    pub async fn start() -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let waiting = Arc::new(AtomicUsize::new(0));
        let (open, opened) = watch::channel(false);
        let counter = waiting.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (counter, opened) = (counter.clone(), opened.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_: Request<Incoming>| {
                        let (counter, mut opened) = (counter.clone(), opened.clone());
                        async move {
                            counter.fetch_add(1, Ordering::SeqCst);
                            let _ = opened.wait_for(|open| *open).await;
                            counter.fetch_sub(1, Ordering::SeqCst);
                            let response = Response::builder()
                                .status(201)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from_static(br#"{"mins":42}"#)))
                                .unwrap();
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                });
            }
        });
        Gate { url, waiting, open, task }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Requests held right now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Answers every held request, and every later one at once.
    pub fn open(&self) {
        self.open.send_replace(true);
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.task.abort();
    }
}
