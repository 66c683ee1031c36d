//! The one Wasmtime engine of a host: Cranelift, the pooling allocator sized from
//! [`Limits`](crate::Limits), copy-on-write memory images, epoch interruption, and the
//! on-disk cache of compiled components. Also the single epoch ticker thread.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Cache, CacheConfig, Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Limits that apply to every guest instance of a host.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Limits {
    /// Instances that may exist at once: the size of the pooling allocator. Default 1024.
    ///
    /// Each linear memory normally reserves 4 GiB of address space, so that compiled code
    /// needs no bounds checks. Pools too large for that (past about 4,000 instances) reserve
    /// only [`max_memory`](Limits::max_memory) per memory, and code checks bounds explicitly.
    pub max_instances: u32,
    /// Bytes of linear memory one instance may use. Default 128 MiB.
    pub max_memory: usize,
    /// Bytes of wasm stack one instance may use before it traps with a stack overflow.
    /// Default 512 KiB.
    pub max_wasm_stack: usize,
    /// Deadline of a handler call, instantiation included; `None` for no deadline.
    /// Default 30 s. Commands run without a deadline unless [`Run::timeout`](crate::Run::timeout)
    /// sets one.
    pub timeout: Option<Duration>,
}

impl Limits {
    /// Checks that a pool of [`max_instances`](Limits::max_instances) memories of
    /// [`max_memory`](Limits::max_memory) bytes fits the process's address space, as
    /// [`HostBuilder::build`](crate::HostBuilder::build) does: a front end can then name the
    /// setting to lower before it builds anything.
    ///
    /// ```
    /// let mut limits = mixio_host::Limits::default();
    /// assert!(limits.check_address_space().is_ok());
    /// limits.max_instances = 100_000;
    /// limits.max_memory = 4 << 30;
    /// assert!(limits.check_address_space().is_err());
    /// ```
    pub fn check_address_space(&self) -> Result<(), String> {
        check_pool(self.max_instances, self.max_memory).map(|_| ())
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_instances: 1024,
            max_memory: 128 << 20,
            max_wasm_stack: 512 << 10,
            timeout: Some(Duration::from_secs(30)),
        }
    }
}

/// How often the epoch advances. A running guest yields to the scheduler at every tick, so
/// CPU-bound guests cannot starve the others, and a timed-out call is stopped within a tick.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Core instances, memories and tables a typical component needs: the pool is sized for
/// `max_instances` components of this shape. A Rust guest has 3 core instances, a
/// componentize-js one 4, a componentize-py one 14 (CPython and its libraries are linked as
/// modules of their own); the core-instance limit is a counter, not memory set aside, so it
/// has room for more.
const CORE_INSTANCES_PER_COMPONENT: u32 = 32;
const MEMORIES_PER_COMPONENT: u32 = 2;
const TABLES_PER_COMPONENT: u32 = 4;

/// Address space the pool of linear memories may reserve (of the 128 TiB a 64-bit Linux process
/// has). Each memory normally reserves 4 GiB plus a guard region, so that compiled code needs
/// no bounds checks; a pool with more memories than fit in this budget reserves only
/// `max_memory` plus the guard per memory instead, and its code checks bounds explicitly.
const MEMORY_ADDRESS_BUDGET: u64 = 32 << 40;
/// Wasmtime's reservation per memory by default, and its guard region.
const FULL_RESERVATION: u64 = 4 << 30;
const MEMORY_GUARD: u64 = 32 << 20;

/// Whether a pool of `max_instances` instances of `max_memory` bytes each fits the address
/// space; if so, whether its memories get the full reservation (no bounds checks in code).
pub(crate) fn check_pool(max_instances: u32, max_memory: usize) -> Result<bool, String> {
    let memories = u64::from(max_instances.saturating_mul(MEMORIES_PER_COMPONENT));
    if memories * (FULL_RESERVATION + MEMORY_GUARD) <= MEMORY_ADDRESS_BUDGET {
        return Ok(true);
    }
    let per_memory = (max_memory as u64).saturating_add(MEMORY_GUARD);
    if memories.saturating_mul(per_memory) > MEMORY_ADDRESS_BUDGET {
        return Err(format!(
            "max_instances {max_instances} with max_memory {} MiB needs {} TiB of address space \
             for linear memories, more than the {} TiB budget: lower one of them",
            max_memory >> 20,
            memories.saturating_mul(per_memory) >> 40,
            MEMORY_ADDRESS_BUDGET >> 40
        ));
    }
    Ok(false)
}

pub(crate) fn build(limits: &Limits, cache: Option<Cache>) -> wasmtime::Result<Engine> {
    let n = limits.max_instances;
    let mut config = Config::new();
    let full_reservation = check_pool(n, limits.max_memory).map_err(wasmtime::Error::msg)?;
    if !full_reservation {
        config.memory_reservation(limits.max_memory as u64).memory_guard_size(MEMORY_GUARD);
    }
    // Decommits are not batched (`decommit_batch_size` stays 1): a slot in a batch is unusable
    // until the batch is flushed, and Wasmtime's flush on a full pool can miss a batch another
    // thread is flushing, so a pool exactly at its limit refused instances that admission had
    // let in (503s under a full queue; withdrawn in 2bffbb3, test
    // `a_pool_at_its_limit_serves_every_admitted_request`).
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(n)
        .total_core_instances(n.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
        .total_memories(n.saturating_mul(MEMORIES_PER_COMPONENT))
        .total_tables(n.saturating_mul(TABLES_PER_COMPONENT))
        .total_stacks(n)
        .async_stack_keep_resident(STACK_KEEP_RESIDENT)
        .table_keep_resident(TABLE_KEEP_RESIDENT)
        .max_memory_size(limits.max_memory);

    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .memory_init_cow(true)
        .epoch_interruption(true)
        .max_wasm_stack(limits.max_wasm_stack)
        .async_stack_size(limits.max_wasm_stack + ASYNC_STACK_HOST_ROOM)
        // A fiber stack goes back to the pool with its top `STACK_KEEP_RESIDENT` zeroed and
        // the rest decommitted. Without this a stack keeps every page any guest ever touched
        // (deep recursion dirties all of it), and a long-running host's memory creeps up to
        // the whole pool's stacks: the 10-minute soak grew +19.5% (RELIABILITY.md).
        .async_stack_zeroing(true)
        .cache(cache);
    Engine::new(&config)
}

/// Stack room above the wasm stack limit for host functions running on the guest's fiber.
const ASYNC_STACK_HOST_ROOM: usize = 1 << 20;

/// The part of a fiber stack kept resident (and zeroed with `memset`) between calls. The
/// demo's handlers, and a CPython or SpiderMonkey guest's, touch 16 KiB of it per call; a guest
/// that touches more gets the rest decommitted and faults it in again next time.
const STACK_KEEP_RESIDENT: usize = 16 << 10;

/// The part of each table slot reset with `memset` instead of being decommitted: a typical
/// component's tables fit in a page or two, so they stay resident and no `madvise` or page
/// fault is spent on them per instance (B4b: +17% in alternating rounds, 43d0b60). At most this
/// much per table slot stays resident: 64 MiB for the default pool of 1,024 instances. Linear
/// memories are not kept resident: `memset` of their first bytes misses what guests touch (a
/// Rust guest's stack is its first 1 MiB), and Wasmtime 48's `PAGEMAP_SCAN` reset, which
/// copies back only the pages an instance wrote (+29 to +38% for a fresh Rust hello, BENCHMARKS.md
/// B9), skips written pages that are swapped out: the next instance in the slot, of any
/// component, would read them.
const TABLE_KEEP_RESIDENT: usize = 16 << 10;

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
