//! The I/O a guest can do, one module per WIT interface. Each implements the host side of its
//! interface on [`GuestState`](crate::state::GuestState); every call that can wait goes through
//! [`host_call`](crate::metrics::host_call) so suspended guests are counted.

mod log;
mod time;

use wasmtime::component::{HasSelf, Linker};

use crate::bindings;
use crate::state::GuestState;

/// Adds every mixio interface to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    bindings::mixio::io::time::add_to_linker::<GuestState, HasSelf<GuestState>>(linker, |s| s)?;
    bindings::mixio::io::log::add_to_linker::<GuestState, HasSelf<GuestState>>(linker, |s| s)?;
    Ok(())
}
