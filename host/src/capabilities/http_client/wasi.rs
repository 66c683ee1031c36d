//! Outbound HTTP of standard `wasi:http` components (those of the `wasi:http/proxy` world):
//! the same allow-list and deadline as `mixio:io/http-client`, applied in Wasmtime's
//! `send_request` hook, and a bound on the requests one instance has in flight at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime_wasi_http::p2::body::{HostFutureTrailers, HostIncomingBody, HostOutgoingBody};
use wasmtime_wasi_http::p2::types::{
    HostFutureIncomingResponse, HostIncomingRequest, HostIncomingResponse, HostOutgoingRequest,
    HostOutgoingResponse, HostResponseOutparam,
};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::HttpGrants;
use crate::metrics::{Backend, BackendFailure, StoreCounters, backend_call};

/// The most outbound `wasi:http` requests one instance may have in flight (from the request
/// until its connection is done); past it, a request fails at once with an error naming the
/// limit.
pub const MAX_OUTBOUND_IN_FLIGHT: usize = 64;

/// The `wasi:http` hooks of one instance.
pub(crate) struct WasiHttpHooksImpl {
    pub(crate) component: Arc<str>,
    /// The component's grants of outbound HTTP (and nothing else of its grants).
    pub(crate) grants: Arc<HttpGrants>,
    pub(crate) counters: Arc<StoreCounters>,
    /// Outbound requests in flight.
    pub(crate) in_flight: Arc<AtomicUsize>,
}

/// Whether `table` holds `wasi:http` state of a call that has ended: an incoming request or
/// its body, a response (outgoing, or its outparam) or its body not finished, an outbound
/// request, its response or its body. An instance holding one must not serve another call:
/// a response body left open would never end, a request in flight would outlive its call.
pub(crate) fn holds_request_state(table: &mut ResourceTable) -> bool {
    table.iter_mut().any(|entry| {
        entry.is::<HostIncomingRequest>()
            || entry.is::<HostResponseOutparam>()
            || entry.is::<HostOutgoingResponse>()
            || entry.is::<HostOutgoingRequest>()
            || entry.is::<HostIncomingResponse>()
            || entry.is::<HostFutureIncomingResponse>()
            || entry.is::<HostIncomingBody>()
            || entry.is::<HostOutgoingBody>()
            || entry.is::<HostFutureTrailers>()
    })
}

/// One outbound request's place among [`MAX_OUTBOUND_IN_FLIGHT`], given back when dropped.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn take(count: &Arc<AtomicUsize>) -> Option<InFlight> {
        let taken = count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < MAX_OUTBOUND_IN_FLIGHT).then_some(n + 1)
        });
        taken.is_ok().then(|| InFlight(count.clone()))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

type ResponseFuture = Box<
    dyn Future<
            Output = Result<
                (hyper::http::Response<WasiBody>, Box<dyn Future<Output = Result<(), Error>> + Send>),
                Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for WasiHttpHooksImpl {
    fn send_request(
        &mut self,
        request: hyper::http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> ResponseFuture {
        let uri = request.uri().to_string();
        let allowed = url::Url::parse(&uri)
            .map_err(|_| Error::HttpRequestUriInvalid)
            .and_then(|url| self.grants.allowed_hosts.check(&url).map_err(|_| Error::HttpRequestDenied));
        if let Err(e) = allowed {
            tracing::warn!(component = %self.component, %uri, "outbound wasi:http request refused: {e}");
            return Box::new(async move { Err(e) });
        }
        let Some(place) = InFlight::take(&self.in_flight) else {
            let message =
                format!("too many outbound requests in flight (the limit is {MAX_OUTBOUND_IN_FLIGHT})");
            tracing::warn!(component = %self.component, %uri, "outbound wasi:http request refused: {message}");
            return Box::new(async move { Err(Error::InternalError(Some(message))) });
        };
        let options = bounded(options, self.grants.client.config().timeout);
        let span = tracing::debug_span!("host_call", function = "wasi:http/outgoing-handler#handle", %uri);
        let counters = self.counters.clone();
        Box::new(tracing::Instrument::instrument(
            async move {
                use http_body_util::BodyExt;
                let send = wasmtime_wasi_http::default_send_request(request, Some(options));
                let (response, io) = backend_call(&counters, Backend::Http, send).await?;
                // The place is held until the connection is done with.
                let io = async move {
                    let _place = place;
                    io.await
                };
                Ok((
                    response.map(BodyExt::boxed_unsync),
                    Box::new(io) as Box<dyn Future<Output = Result<(), Error>> + Send>,
                ))
            },
            span,
        ))
    }
}

/// The guest's timeouts, none longer than the host's outbound deadline.
fn bounded(options: Option<RequestOptions>, limit: Duration) -> RequestOptions {
    let options = options.unwrap_or_default();
    let cap = |t: Option<Duration>| Some(t.map_or(limit, |t| t.min(limit)));
    RequestOptions {
        connect_timeout: cap(options.connect_timeout),
        first_byte_timeout: cap(options.first_byte_timeout),
        between_bytes_timeout: cap(options.between_bytes_timeout),
    }
}

/// Any failure of `wasi:http`'s send (refusals by the allow-list come before it).
impl BackendFailure for wasmtime_wasi_http::Error {
    fn is_backend_failure(&self) -> bool {
        true
    }
}
