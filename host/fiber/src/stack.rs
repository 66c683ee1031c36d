//! Fiber stacks: `mmap`ed with a guard page below (corosensei's `DefaultStack`), kept in a
//! per-thread pool for reuse, since fibers never leave their thread.

use std::cell::RefCell;

use corosensei::stack::DefaultStack;

/// The default usable size of a fiber's stack: 256 KiB.
pub const DEFAULT_STACK_SIZE: usize = 256 << 10;

/// Stacks kept per thread for reuse; beyond this, finished fibers' stacks are unmapped.
const POOL_LIMIT: usize = 1024;

thread_local! {
    /// Free stacks with the size they were asked for.
    static POOL: RefCell<Vec<(usize, DefaultStack)>> = const { RefCell::new(Vec::new()) };
}

/// A stack of `size` usable bytes: a pooled one if this thread has one, else a new one.
pub(crate) fn take(size: usize) -> DefaultStack {
    let pooled = POOL.with_borrow_mut(|pool| {
        let i = pool.iter().rposition(|(s, _)| *s == size)?;
        Some(pool.swap_remove(i).1)
    });
    pooled.unwrap_or_else(|| {
        DefaultStack::new(size).unwrap_or_else(|e| panic!("cannot map a fiber stack of {size} bytes: {e}"))
    })
}

/// Returns the stack of a finished fiber, asked for with `size`, to this thread's pool.
pub(crate) fn recycle(size: usize, stack: DefaultStack) {
    POOL.with_borrow_mut(|pool| {
        if pool.len() < POOL_LIMIT {
            pool.push((size, stack));
        }
    });
}

/// Stacks in this thread's pool.
#[cfg(test)]
pub(crate) fn pooled() -> usize {
    POOL.with_borrow(Vec::len)
}
