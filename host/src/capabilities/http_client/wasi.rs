//! Outbound HTTP of standard `wasi:http` components (those of the `wasi:http/proxy` world):
//! the same allow-list and deadline as `mixio:io/http-client`, applied in Wasmtime's
//! `send_request` hook.

use std::sync::Arc;
use std::time::Duration;

use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::capabilities::ComponentCaps;
use crate::metrics::{StoreCounters, host_call};

/// The `wasi:http` hooks of one instance.
pub(crate) struct WasiHttpHooksImpl {
    pub(crate) component: Arc<str>,
    pub(crate) caps: Arc<ComponentCaps>,
    pub(crate) counters: Arc<StoreCounters>,
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
            .and_then(|url| self.caps.allowed_hosts.check(&url).map_err(|_| Error::HttpRequestDenied));
        if let Err(e) = allowed {
            tracing::warn!(component = %self.component, %uri, "outbound wasi:http request refused: {e}");
            return Box::new(async move { Err(e) });
        }
        let options = bounded(options, self.caps.http.config().timeout);
        let span = tracing::debug_span!("host_call", function = "wasi:http/outgoing-handler#handle", %uri);
        let counters = self.counters.clone();
        Box::new(tracing::Instrument::instrument(
            async move {
                use http_body_util::BodyExt;
                let send = wasmtime_wasi_http::default_send_request(request, Some(options));
                let (response, io) = host_call(&counters, send).await?;
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
