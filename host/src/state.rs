//! The data of one guest instance: what its host calls can reach. One is created per call and
//! dropped with the call's `Store`, whatever way the call ends.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits};
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
    pub(crate) limits: GuestLimits,
    /// The guest's stderr when it goes to the log (not when inherited by `mixio run`).
    pub(crate) stderr: Option<GuestOutput>,
    /// Its stdout when it goes to the log, where a reused instance's call ends its last line.
    pub(crate) stdout: Option<GuestOutput>,
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
        let limits = GuestLimits { limits, memories: Vec::new() };
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
            stdout: None,
        }
    }

    /// Makes a reused instance ready for its next call once its call has ended: rolls back
    /// a transaction left open, logs an unterminated last line of output, and clears the stderr
    /// tail (the next call's error reports hold only that call's output). An error means the instance holds what it cannot give back
    /// (work of its own unfinished, a transaction that did not roll back): retire it.
    pub(crate) async fn end_call(&mut self) -> Result<(), String> {
        self.counters.flush();
        // A line left unterminated is logged now, with this call's request, not the next's.
        for output in [&self.stdout, &self.stderr].into_iter().flatten() {
            output.clear();
        }
        if crate::capabilities::http_client::holds_request_state(&mut self.table) {
            return Err("it left outbound HTTP or its response unfinished".into());
        }
        self.capabilities.end_call(&mut self.table).await
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

/// The store's resource limits, recording the size of each linear memory as it grows (for
/// the memory bound of reused instances).
pub(crate) struct GuestLimits {
    limits: StoreLimits,
    /// The sizes of the instance's memories, in bytes, in the order they were created.
    memories: Vec<usize>,
}

impl GuestLimits {
    /// The bytes of all the instance's linear memories.
    pub(crate) fn memory(&self) -> usize {
        self.memories.iter().sum()
    }
}

impl ResourceLimiter for GuestLimits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if allowed {
            // A memory is created growing from 0; later growths start from its current size.
            match self.memories.iter_mut().rev().find(|size| **size == current) {
                Some(size) if current > 0 => *size = desired,
                _ => self.memories.push(desired),
            }
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}
