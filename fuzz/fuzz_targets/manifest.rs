//! The manifest parser: any text is a valid app or a configuration error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mixio_serve::App;

fuzz_target!(|text: &str| {
    match App::from_toml(text, "/nonexistent".as_ref()) {
        Ok(app) => {
            let _ = app.pool_size();
        }
        Err(error) => assert!(!error.to_string().is_empty()),
    }
});
