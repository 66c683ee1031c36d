//! The imports the SDK's modules call: the WIT imports in a WebAssembly guest; with the
//! `native` feature on a native target, the functions of the host that linked the guest
//! ([`crate::native`]). Nothing else in the SDK knows the difference. Both are generated from
//! the list of imports ([`crate::imports`]).

#[allow(unused_imports)]
use crate::bindings::mixio::io::{config, http_client, kv, log, pubsub, sql, time, websocket};

#[cfg(not(all(feature = "native", not(target_arch = "wasm32"))))]
mod imp {
    use super::*;

    pub(crate) type Store = kv::Store;
    pub(crate) type Connection = sql::Connection;

    /// Each import calls its wit-bindgen function.
    macro_rules! wit_imports {
        (
            drops { $($drops:tt)* }
            $($kind:ident fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty
                = $($guest:ident)::+, $($host:ident)::+;)*
        ) => {
            $(
                pub(crate) fn $name($($arg: $ty),*) -> $ret {
                    $($guest)::+($($arg),*)
                }
            )*
        };
    }
    crate::__for_each_import!(wit_imports);
}

#[cfg(all(feature = "native", not(target_arch = "wasm32")))]
mod imp {
    use super::*;
    use crate::native::call;
    pub(crate) use crate::native::{Connection, Store};

    /// Each import calls the same method of the native imports.
    macro_rules! native_imports {
        (
            drops { $($drops:tt)* }
            $($kind:ident fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty
                = $($guest:ident)::+, $($host:ident)::+;)*
        ) => {
            $(
                pub(crate) fn $name($($arg: $ty),*) -> $ret {
                    call(|i| i.$name($($arg),*))
                }
            )*
        };
    }
    crate::__for_each_import!(native_imports);
}

pub(crate) use imp::*;
