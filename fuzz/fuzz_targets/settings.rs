//! The parsers of durations, sizes and server settings, as the manifest and the command line
//! use them: any text is a value within range or a one-line error, never a panic.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use mixio_serve::ServerLimits;
use mixio_serve::units;

fuzz_target!(|text: &str| {
    let durations = Duration::from_millis(1)..=Duration::from_secs(24 * 3600);
    match units::duration(text, &durations) {
        Ok(d) => assert!(durations.contains(&d)),
        Err(e) => assert!(!e.contains('\n') || text.contains('\n')),
    }
    let sizes = 1..=(4u64 << 30);
    if let Ok(n) = units::size(text, &sizes) {
        assert!(sizes.contains(&n));
    }
    let mut limits = ServerLimits::default();
    for key in ServerLimits::KEYS {
        let _ = limits.set(key, text);
    }
    let _ = mixio_host::IoMode::parse(text);
});
