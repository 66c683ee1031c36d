//! The data of one guest instance: what its host calls can reach. One is created per call and
//! dropped with the call's `Store`, whatever way the call ends.

use std::sync::Arc;

use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::capabilities::http_client::WasiHttpHooksImpl;
use crate::capabilities::{CapabilitiesCtx, ComponentCaps, HasCapabilities};
use crate::metrics::{Counters, StoreCounters};
use crate::stdio::GuestOutput;

pub struct GuestState {
    pub(crate) counters: Arc<StoreCounters>,
    /// mixio's capabilities: what `capabilities::add_to_linker`'s imports see.
    capabilities: CapabilitiesCtx,
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    /// `wasi:http` state, for components of the `wasi:http/proxy` world.
    http: WasiHttpCtx,
    http_hooks: WasiHttpHooksImpl,
    pub(crate) limits: StoreLimits,
    /// The guest's stderr when it goes to the log (not when inherited by `mixio run`).
    pub(crate) stderr: Option<GuestOutput>,
}

impl GuestState {
    pub(crate) fn new(
        component: Arc<str>,
        counters: Arc<Counters>,
        caps: Arc<ComponentCaps>,
        wasi: WasiCtx,
        limits: StoreLimits,
        stderr: Option<GuestOutput>,
    ) -> GuestState {
        counters.instance_created();
        let counters = Arc::new(StoreCounters::new(counters));
        let http_hooks = WasiHttpHooksImpl {
            component: component.clone(),
            grants: caps.granted.http.clone(),
            counters: counters.clone(),
            in_flight: Default::default(),
        };
        GuestState {
            capabilities: CapabilitiesCtx::new(component, counters.clone(), caps),
            counters,
            http: WasiHttpCtx::new(),
            http_hooks,
            wasi,
            table: ResourceTable::new(),
            limits,
            stderr,
        }
    }

    /// What the guest wrote to stderr most recently (for error reports).
    pub(crate) fn stderr_tail(&self) -> String {
        self.stderr.as_ref().map(GuestOutput::finish).unwrap_or_default()
    }
}

impl Drop for GuestState {
    fn drop(&mut self) {
        if let Some(stderr) = &self.stderr {
            stderr.finish();
        }
        self.counters.host.instance_dropped();
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl HasCapabilities for GuestState {
    fn capabilities(&mut self) -> (&mut CapabilitiesCtx, &mut ResourceTable) {
        (&mut self.capabilities, &mut self.table)
    }
}

impl WasiHttpView for GuestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.http_hooks }
    }
}
