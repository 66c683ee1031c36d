//! `mixio:io/http-client`: outbound HTTP on a shared, pooled client (connections are reused
//! across guest calls and requests), with each component's allow-list checked before any
//! connection, on every redirect hop.
//!
//! A request to the URL of the `mixio serve` running this host (`${self}`) is answered
//! in-process, without a connection: the same router, admission control and limits, minus the
//! sockets and the HTTP parsing on both ends (like a call to another server, it must be in the
//! component's allowed hosts).

mod allow;
mod wasi;

use std::pin::Pin;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{HeaderMap, Method, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use url::Url;

pub(crate) use allow::{AllowList, Refusal};
pub use wasi::MAX_OUTBOUND_IN_FLIGHT;
pub(crate) use wasi::{WasiHttpHooksImpl, holds_request_state};

use crate::capabilities::bindings::mixio::io::http_client::{Error, Host, IncomingResponse, OutgoingRequest};
use crate::capabilities::{Backends, Capability, Grants, Resolved, View, grant_error};
use crate::error::BoxError;
use crate::metrics::{Backend, backend_call};

/// Limits of outbound HTTP, the same for every component of a host.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpConfig {
    /// Largest response body a guest may receive. Default 10 MiB.
    pub max_response_bytes: u64,
    /// Longest a request may take, redirects and body included; a guest may ask for less.
    /// Default 30 s.
    pub timeout: Duration,
    /// Redirects followed before giving up. Default 10.
    pub max_redirects: u32,
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig { max_response_bytes: 10 << 20, timeout: Duration::from_secs(30), max_redirects: 10 }
    }
}

/// The outbound HTTP capability (`mixio:io/http-client`, and `wasi:http`'s outgoing handler
/// through [`WasiHttpHooksImpl`]).
pub(crate) struct Http;

/// What a component is granted of outbound HTTP: the hosts it may reach, on the host's client.
pub(crate) struct HttpGrants {
    pub(crate) allowed_hosts: AllowList,
    pub(crate) client: Arc<HttpClient>,
}

impl Capability for Http {
    /// Shared with the instance's `wasi:http` hooks, which see nothing else of its grants.
    type Grants = Arc<HttpGrants>;
    type State = ();

    fn resolve(component: &str, grants: &Grants, backends: &Backends) -> Resolved<Arc<HttpGrants>> {
        let allowed_hosts = AllowList::parse(&grants.allowed_hosts).map_err(|e| grant_error(component, e))?;
        Ok(Arc::new(HttpGrants { allowed_hosts, client: backends.http.clone() }))
    }
}

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// A server of this process that answers guests' requests to its own URL in-process, without
/// a connection ([`Host::serve_locally`](crate::Host::serve_locally)): how an HTTP trigger
/// serves its components' requests to itself.
pub trait LocalServer: Send + Sync {
    /// Answers `request` (its URI is the path and query; the `host` header names the server).
    fn serve(
        self: Arc<Self>,
        request: hyper::Request<Full<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = hyper::Response<crate::body::Body>> + Send>>;
}

/// The host's outbound HTTP client.
pub(crate) struct HttpClient {
    client: Client<Connector, Full<Bytes>>,
    config: HttpConfig,
    /// The server answering its own origin in-process, once one is bound.
    local: OnceLock<(url::Origin, Weak<dyn LocalServer>)>,
}

impl HttpClient {
    /// The limits this client applies.
    pub(crate) fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// A client verifying TLS certificates against the Mozilla root store (webpki-roots).
    pub(crate) fn new(config: HttpConfig) -> Result<HttpClient, String> {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let client =
            Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(60)).build(connector);
        Ok(HttpClient { client, config, local: OnceLock::new() })
    }

    /// Answers requests to `origin` (a server's URL) with `server`, in-process, from now on
    /// and for as long as `server` lives; `false` if another server was set before.
    pub(crate) fn serve_locally(&self, origin: &Url, server: Weak<dyn LocalServer>) -> bool {
        self.local.set((origin.origin(), server)).is_ok()
    }

    /// The in-process server answering `url`, if it is this process's server and still runs.
    fn local_server(&self, url: &Url) -> Option<Arc<dyn LocalServer>> {
        let (origin, server) = self.local.get()?;
        (url.origin() == *origin).then(|| server.upgrade())?
    }

    /// Sends `request` for a component whose allowed hosts are `allow`.
    pub(crate) async fn send(
        &self,
        allow: &AllowList,
        request: OutgoingRequest,
    ) -> Result<IncomingResponse, Error> {
        let timeout = match request.timeout_ms {
            Some(ms) => self.config.timeout.min(Duration::from_millis(ms)),
            None => self.config.timeout,
        };
        tokio::time::timeout(timeout, self.exchange(allow, request)).await.unwrap_or(Err(Error::Timeout))
    }

    async fn exchange(&self, allow: &AllowList, request: OutgoingRequest) -> Result<IncomingResponse, Error> {
        let mut url = Url::parse(&request.url)
            .map_err(|e| Error::InvalidRequest(format!("invalid URL `{}`: {e}", request.url)))?;
        let mut method = Method::from_bytes(request.method.as_bytes())
            .map_err(|_| Error::InvalidRequest(format!("invalid method `{}`", request.method)))?;
        let mut headers = header_map(&request.headers)?;
        let mut body = Bytes::from(request.body);

        for hop in 0..=self.config.max_redirects {
            allow.check(&url).map_err(|r| match r {
                Refusal::NotAllowed(m) => Error::NotAllowed(m),
                Refusal::Invalid(m) => Error::InvalidRequest(m),
            })?;
            let mut outgoing = hyper::Request::new(Full::new(body.clone()));
            *outgoing.method_mut() = method.clone();
            *outgoing.headers_mut() = headers.clone();
            let response = match self.local_server(&url) {
                Some(server) => {
                    // What hyper's client would send: the path and query, `host`, the length.
                    let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
                    *outgoing.uri_mut() = parse_uri(target, &url)?;
                    let host = &url[url::Position::BeforeHost..url::Position::AfterPort];
                    let h = outgoing.headers_mut();
                    h.insert(hyper::header::HOST, header_value(host)?);
                    if !body.is_empty() || !matches!(method, Method::GET | Method::HEAD) {
                        h.insert(hyper::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
                    }
                    tracing::trace!(%url, "answered in-process");
                    call_local(server, outgoing).await?
                }
                None => {
                    *outgoing.uri_mut() = parse_uri(url.as_str(), &url)?;
                    let response =
                        self.client.request(outgoing).await.map_err(|e| Error::Connection(describe(&e)))?;
                    response.map(|b| b.map_err(BoxError::from).boxed_unsync())
                }
            };

            let status = response.status();
            let location = response.headers().get(hyper::header::LOCATION).and_then(|l| l.to_str().ok());
            if status.is_redirection()
                && let Some(location) = location
            {
                if hop == self.config.max_redirects {
                    return Err(Error::Connection(format!(
                        "more than {} redirects",
                        self.config.max_redirects
                    )));
                }
                let next = url
                    .join(location)
                    .map_err(|e| Error::Connection(format!("invalid redirect to `{location}`: {e}")))?;
                if status == StatusCode::SEE_OTHER
                    || (matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND)
                        && method == Method::POST)
                {
                    method = Method::GET;
                    body = Bytes::new();
                    headers.remove(hyper::header::CONTENT_TYPE);
                }
                if next.origin() != url.origin() {
                    headers.remove(hyper::header::AUTHORIZATION);
                    headers.remove(hyper::header::COOKIE);
                }
                url = next;
                continue;
            }
            return self.read(response).await;
        }
        unreachable!("the loop returns on its last hop")
    }

    async fn read(&self, response: hyper::Response<crate::body::Body>) -> Result<IncomingResponse, Error> {
        let limit = self.config.max_response_bytes;
        let declared = response
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(Error::TooLarge(limit));
        }
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_string(), value.as_bytes().to_vec()))
            .collect();
        let mut body = response.into_body();
        let mut bytes = Vec::with_capacity(declared.unwrap_or(0) as usize);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Error::Connection(describe(&*e)))?;
            if let Ok(data) = frame.into_data() {
                if bytes.len() as u64 + data.len() as u64 > limit {
                    return Err(Error::TooLarge(limit));
                }
                bytes.extend_from_slice(&data);
            }
        }
        Ok(IncomingResponse { status, headers, body: bytes })
    }
}

/// Headers the host sets itself and does not take from the guest.
const MANAGED: [&str; 5] = ["host", "content-length", "transfer-encoding", "connection", "upgrade"];

fn header_map(fields: &[(String, Vec<u8>)]) -> Result<HeaderMap, Error> {
    let mut map = HeaderMap::new();
    for (name, value) in fields {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::InvalidRequest(format!("invalid header name `{name}`")))?;
        if MANAGED.contains(&name.as_str()) {
            continue;
        }
        let value = HeaderValue::from_bytes(value)
            .map_err(|_| Error::InvalidRequest(format!("invalid value for header `{name}`")))?;
        map.append(name, value);
    }
    Ok(map)
}

/// Serves `request` with this process's server, in a task of its own as over the network (the
/// other instance does not run on the caller's stack), cancelled if the caller stops waiting.
/// The response is framed as hyper's server would frame it: a `content-length` for a body of
/// known length, no body for `HEAD`.
async fn call_local(
    server: Arc<dyn LocalServer>,
    request: hyper::Request<Full<Bytes>>,
) -> Result<hyper::Response<crate::body::Body>, Error> {
    let head = request.method() == Method::HEAD;
    let task = crate::task::AbortOnDrop(Some(tokio::spawn(server.serve(request))));
    let mut response = task
        .join()
        .await
        .map_err(|e| Error::Connection(format!("the request to this server failed: {e}")))?;
    let headers = response.headers();
    let framed = headers.contains_key(hyper::header::CONTENT_LENGTH)
        || headers.contains_key(hyper::header::TRANSFER_ENCODING);
    if let (false, Some(length)) = (framed, hyper::body::Body::size_hint(response.body()).exact()) {
        response.headers_mut().insert(hyper::header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    if head {
        *response.body_mut() = crate::body::full(Bytes::new());
    }
    Ok(response)
}

fn parse_uri(text: &str, url: &Url) -> Result<hyper::Uri, Error> {
    text.parse().map_err(|e| Error::InvalidRequest(format!("invalid URL `{url}`: {e}")))
}

fn header_value(text: &str) -> Result<HeaderValue, Error> {
    HeaderValue::from_str(text).map_err(|_| Error::InvalidRequest(format!("invalid host `{text}`")))
}

/// An error with its causes, e.g. "client error (Connect): tcp connect error: Connection refused".
fn describe(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

impl crate::metrics::BackendFailure for Error {
    fn is_backend_failure(&self) -> bool {
        matches!(self, Error::Timeout | Error::Connection(_))
    }
}

impl Host for View<'_, Http> {
    async fn send(&mut self, request: OutgoingRequest) -> wasmtime::Result<Result<IncomingResponse, Error>> {
        let send = self.grants.client.send(&self.grants.allowed_hosts, request);
        Ok(backend_call(&self.caller.counters, Backend::Http, send).await)
    }
}
