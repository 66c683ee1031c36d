//! Native guests (feature `native`): the same guest source compiled for the host's target and
//! linked into a native host binary, which serves its handler (the function
//! `#[mixio::handler]` marks, also exported as `mixio_handler`) with `mixio-host`.
//!
//! Every SDK call goes to the [`Imports`] of the call being served: the host installs them
//! with [`with_imports`] around the handler, runs it on a fiber, and each import waits for
//! the host's capability backends with `mixio_host::fiber::block_on`, suspending the fiber.
//! The guest gets the same capabilities, grants and deadline as its WebAssembly build, and no
//! sandbox: a native guest is trusted code, and the fastest way to run it.

use std::cell::RefCell;
use std::rc::Rc;

#[allow(unused_imports)]
use crate::bindings::mixio::io::{config, http_client, kv, log, pubsub, sql, time, websocket};

/// What a native guest's SDK calls, implemented by the host for one call: a method per import
/// of the `mixio:io` world, generated from the list of imports (`mixio::__for_each_import!`,
/// which the host implements this trait with), and a destructor per resource.
macro_rules! imports_trait {
    (
        drops { $($drop:ident = $($drop_host:ident)::+;)* }
        $($kind:ident fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty
            = $($guest:ident)::+, $($host:ident)::+;)*
    ) => {
        #[allow(missing_docs)]
        pub trait Imports {
            $(fn $drop(&self, rep: u32);)*
            $(fn $name(&self, $($arg: $ty),*) -> $ret;)*
        }
    };
}
crate::__for_each_import!(imports_trait);

/// An open key-value store: a handle into the host's table of this call.
pub struct Store(u32);

/// An open SQL connection: a handle into the host's table of this call.
pub struct Connection(u32);

macro_rules! handle {
    ($($handle:ident, $drop:ident;)*) => {$(
        impl $handle {
            /// The handle of the resource `rep` of the host's table, which this value owns.
            #[doc(hidden)]
            pub fn from_rep(rep: u32) -> $handle {
                $handle(rep)
            }

            /// The number of the resource in the host's table.
            #[doc(hidden)]
            pub fn rep(&self) -> u32 {
                self.0
            }
        }

        impl Drop for $handle {
            fn drop(&mut self) {
                call(|i| i.$drop(self.0));
            }
        }
    )*};
}
handle! {
    Store, kv_drop;
    Connection, sql_drop;
}

thread_local! {
    /// The imports of the call running on this thread (on this fiber, see [`call`]).
    static CURRENT: RefCell<Option<Rc<dyn Imports>>> = const { RefCell::new(None) };
}

/// Runs `handler` with `imports` serving its SDK calls.
pub fn with_imports<R>(imports: Rc<dyn Imports>, handler: impl FnOnce() -> R) -> R {
    struct Reset(Option<Rc<dyn Imports>>);
    impl Drop for Reset {
        fn drop(&mut self) {
            CURRENT.set(self.0.take());
        }
    }
    let _reset = Reset(CURRENT.replace(Some(imports)));
    handler()
}

/// Calls the current imports. An import may suspend this fiber, and other calls' fibers run
/// on the thread meanwhile and install their own imports: this call's are taken off the thread
/// for the import's duration and put back after, so a suspended call holds nothing there.
pub(crate) fn call<R>(f: impl FnOnce(&dyn Imports) -> R) -> R {
    let imports = CURRENT.take().expect(
        "a native mixio guest called the SDK outside a call: run it with mixio_host (native::with_imports)",
    );
    struct PutBack(Option<Rc<dyn Imports>>);
    impl Drop for PutBack {
        fn drop(&mut self) {
            CURRENT.set(self.0.take());
        }
    }
    let imports = PutBack(Some(imports));
    f(imports.0.as_deref().expect("set above"))
}
