//! `mixio:io/time`: sleeping suspends only the calling guest.

use std::sync::LazyLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::capabilities::View;
use crate::capabilities::bindings::mixio::io::time::{Datetime, Host};
use crate::metrics::host_call;

/// The time capability: every component has it (nothing to grant).
pub(crate) struct Time;

/// The zero point of `monotonic-now`, fixed for the life of the process.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

impl Host for View<'_, Time> {
    async fn sleep(&mut self, duration: u64) -> wasmtime::Result<()> {
        host_call(&self.caller.counters, tokio::time::sleep(Duration::from_nanos(duration))).await;
        Ok(())
    }

    fn now(&mut self) -> Datetime {
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Datetime { seconds: since_epoch.as_secs(), nanoseconds: since_epoch.subsec_nanos() }
    }

    fn monotonic_now(&mut self) -> u64 {
        u64::try_from(EPOCH.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}
