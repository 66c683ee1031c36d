#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod stack;

use std::cell::Cell;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};

use corosensei::{Coroutine, CoroutineResult, Yielder};

use corosensei::stack::DefaultStack;

pub use stack::DEFAULT_STACK_SIZE;

/// What a fiber's yielder passes: nothing; the context is read from [`CONTEXT`].
type FiberYielder = Yielder<(), ()>;

thread_local! {
    /// The yielder of the fiber running on this thread; null outside fibers.
    static YIELDER: Cell<*const FiberYielder> = const { Cell::new(std::ptr::null()) };
    /// The context of the [`Fiber::poll`] that resumed the running fiber.
    static CONTEXT: Cell<*mut Context<'static>> = const { Cell::new(std::ptr::null_mut()) };
    /// Fibers of this thread suspended in [`block_on`] now.
    static SUSPENDED: Cell<usize> = const { Cell::new(0) };
}

/// Runs `f` on a fiber with the default stack size. Await the returned [`Fiber`] for its
/// result; `f` starts when the fiber is first polled.
pub fn spawn<F, T>(f: F) -> Fiber<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    Builder::new().spawn(f)
}

/// Configures a fiber before [`Builder::spawn`].
#[derive(Debug, Clone)]
pub struct Builder {
    stack_size: usize,
}

impl Default for Builder {
    fn default() -> Builder {
        Builder::new()
    }
}

impl Builder {
    /// A builder with the default stack size.
    pub fn new() -> Builder {
        Builder { stack_size: DEFAULT_STACK_SIZE }
    }

    /// Sets the usable size of the fiber's stack (rounded up to whole pages; a guard page is
    /// added below it).
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = bytes;
        self
    }

    /// Runs `f` on a new fiber; see [`spawn`].
    ///
    /// # Panics
    ///
    /// If no stack can be mapped (the process is out of address space or of memory maps).
    pub fn spawn<F, T>(self, f: F) -> Fiber<T>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let stack = stack::take(self.stack_size);
        let coroutine = Coroutine::with_stack(stack, move |yielder: &FiberYielder, ()| {
            YIELDER.set(yielder);
            f()
        });
        Fiber { coroutine: Some(coroutine), stack_size: self.stack_size, _not_send: PhantomData }
    }
}

/// A synchronous closure running on its own stack; a future of its result. Not `Send`: see
/// the [module documentation](self).
#[must_use = "a fiber does nothing until it is polled"]
pub struct Fiber<T> {
    coroutine: Option<Coroutine<(), (), T, DefaultStack>>,
    stack_size: usize,
    _not_send: PhantomData<*mut ()>,
}

impl<T> std::fmt::Debug for Fiber<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fiber").field("done", &self.coroutine.is_none()).finish()
    }
}

/// Restores the thread's fiber state when dropped, also when a panic unwinds through.
struct Restore {
    yielder: *const FiberYielder,
    context: *mut Context<'static>,
}

impl Restore {
    fn save() -> Restore {
        Restore { yielder: YIELDER.get(), context: CONTEXT.get() }
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        YIELDER.set(self.yielder);
        CONTEXT.set(self.context);
    }
}

impl<T> Future for Fiber<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        // `Fiber` is `Unpin`: nothing points into it (the coroutine's state is on its stack).
        let this = self.get_mut();
        let coroutine = this.coroutine.as_mut().expect("a Fiber polled after it completed");
        let _restore = Restore::save();
        // Erasing the lifetime is sound because the pointer is only dereferenced by the fiber
        // while it runs, which is within `resume` below, and `_restore` puts the previous
        // value back before `cx` goes out of scope.
        CONTEXT.set((cx as *mut Context<'_>).cast::<Context<'static>>());
        match coroutine.resume(()) {
            CoroutineResult::Yield(()) => Poll::Pending,
            CoroutineResult::Return(value) => {
                if let Some(coroutine) = this.coroutine.take() {
                    stack::recycle(this.stack_size, coroutine.into_stack());
                }
                Poll::Ready(value)
            }
        }
    }
}

impl<T> Drop for Fiber<T> {
    fn drop(&mut self) {
        let Some(mut coroutine) = self.coroutine.take() else { return };
        // Destructors on the fiber's stack run now, outside any fiber: were the yielder of an
        // enclosing fiber still current, a `block_on` in them would suspend that fiber from
        // this stack.
        let _restore = Restore::save();
        YIELDER.set(std::ptr::null());
        CONTEXT.set(std::ptr::null_mut());
        coroutine.force_unwind();
        stack::recycle(self.stack_size, coroutine.into_stack());
    }
}

/// Waits for `future` from synchronous code.
///
/// On a fiber, polls it inline and suspends the fiber while it is pending. Outside any fiber,
/// blocks the thread: on the current tokio runtime if there is one (on a multi-threaded
/// runtime's worker, through `block_in_place`), else on a minimal executor.
///
/// # Panics
///
/// Outside a fiber, on the thread of a current-thread tokio runtime, where blocking would
/// deadlock that runtime.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let yielder = YIELDER.get();
    if yielder.is_null() {
        return block_outside(future);
    }
    let mut future = pin!(future);
    loop {
        let context = CONTEXT.get();
        // SAFETY: `context` was set by the `Fiber::poll` that resumed this fiber, from its own
        // `&mut Context`, and that poll is on the stack below us until we suspend: the pointer
        // is valid and nothing else uses it meanwhile. It is re-read after every resume.
        let poll = future.as_mut().poll(unsafe { &mut *context });
        if let Poll::Ready(value) = poll {
            return value;
        }
        SUSPENDED.set(SUSPENDED.get() + 1);
        let _resumed = Resumed;
        // SAFETY: `yielder` is the yielder of the fiber running this code: each fiber sets
        // YIELDER when it starts and after each resume (below), and every switch back to a
        // parent restores the parent's value. The yielder lives on this fiber's stack for as
        // long as the fiber exists, so the reference is valid here.
        unsafe { &*yielder }.suspend(());
        YIELDER.set(yielder);
    }
}

/// Counts a fiber out of [`SUSPENDED`] when it resumes, or is unwound while suspended.
struct Resumed;

impl Drop for Resumed {
    fn drop(&mut self) {
        SUSPENDED.set(SUSPENDED.get() - 1);
    }
}

/// Whether the calling code runs on a fiber.
pub fn in_fiber() -> bool {
    !YIELDER.get().is_null()
}

/// Fibers of the calling thread suspended in [`block_on`] now.
pub fn suspended() -> usize {
    SUSPENDED.get()
}

fn block_outside<F: Future>(future: F) -> F::Output {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::CurrentThread => {
            // `Handle::block_on` works from threads that are not running the runtime, and
            // panics on the one that is (where blocking would deadlock it).
            handle.block_on(future)
        }
        Ok(handle) => tokio::task::block_in_place(|| handle.block_on(future)),
        Err(_) => park_on(future),
    }
}

/// Blocks the thread on `future` with no runtime: poll, park until woken, repeat.
fn park_on<F: Future>(future: F) -> F::Output {
    use std::sync::Arc;
    use std::task::Wake;

    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Arc::new(Unpark(std::thread::current())).into();
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
        std::thread::park();
    }
}

#[cfg(test)]
mod tests;
