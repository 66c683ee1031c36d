//! The one Wasmtime engine of a host: Cranelift, the pooling allocator sized from
//! [`Limits`](crate::Limits), copy-on-write memory images, epoch interruption, and the
//! on-disk cache of compiled components. Also the single epoch ticker thread.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Cache, CacheConfig, Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::Limits;

/// How often the epoch advances. A running guest yields to the scheduler at every tick, so
/// CPU-bound guests cannot starve the others, and a timed-out call is stopped within a tick.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Core instances, memories and tables a typical component needs: the pool is sized for
/// `max_instances` components of this shape.
const CORE_INSTANCES_PER_COMPONENT: u32 = 8;
const MEMORIES_PER_COMPONENT: u32 = 2;
const TABLES_PER_COMPONENT: u32 = 4;

pub(crate) fn build(limits: &Limits, cache: Option<Cache>) -> wasmtime::Result<Engine> {
    let n = limits.max_instances;
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(n)
        .total_core_instances(n.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
        .total_memories(n.saturating_mul(MEMORIES_PER_COMPONENT))
        .total_tables(n.saturating_mul(TABLES_PER_COMPONENT))
        .total_stacks(n)
        .max_memory_size(limits.max_memory);

    let mut config = Config::new();
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .memory_init_cow(true)
        .epoch_interruption(true)
        .max_wasm_stack(limits.max_wasm_stack)
        .async_stack_size(limits.max_wasm_stack + ASYNC_STACK_HOST_ROOM)
        .cache(cache);
    Engine::new(&config)
}

/// Stack room above the wasm stack limit for host functions running on the guest's fiber.
const ASYNC_STACK_HOST_ROOM: usize = 1 << 20;

/// The compiled-code cache in `dir`.
pub(crate) fn cache(dir: PathBuf) -> wasmtime::Result<Cache> {
    let mut config = CacheConfig::new();
    config.with_directory(dir);
    Cache::new(config)
}

/// The default cache directory: `$MIXIO_CACHE_DIR`, else `$XDG_CACHE_HOME/mixio`, else
/// `$HOME/.cache/mixio`.
pub(crate) fn default_cache_dir() -> Option<PathBuf> {
    let env = |k| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    env("MIXIO_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("mixio")))
        .or_else(|| env("HOME").map(|d| d.join(".cache").join("mixio")))
        .filter(|d| d.is_absolute())
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped. One per engine.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub(crate) fn start(engine: &Engine) -> std::io::Result<EpochTicker> {
        let stop = Arc::new(AtomicBool::new(false));
        let engine = engine.weak();
        let flag = stop.clone();
        let thread = std::thread::Builder::new().name("mixio-epoch".into()).spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::park_timeout(EPOCH_TICK);
                match engine.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })?;
        Ok(EpochTicker { stop, thread: Some(thread) })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}
