//! Shows that a long compile is under way. Compiling a large component (a Python guest is
//! ~20 MB) takes seconds the first time; afterwards it comes from the compiled-code cache.

use std::io::{IsTerminal, Write};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Nothing is shown for loads quicker than this (a cache hit).
const QUIET: Duration = Duration::from_millis(500);
/// How often the spinner moves.
const FRAME: Duration = Duration::from_millis(100);
const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// While alive, and once [`QUIET`] has passed: a spinner with the seconds elapsed on stderr if
/// it is a terminal, else one log line. Dropping it stops the spinner and clears its line.
pub(crate) struct Progress {
    done: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    pub(crate) fn compiling(component: &str, bytes: usize) -> Progress {
        let (done, finished) = mpsc::channel::<()>();
        let component = component.to_string();
        let started = Instant::now();
        let thread = std::thread::Builder::new().name("mixio-progress".into()).spawn(move || {
            if finished.recv_timeout(QUIET) != Err(RecvTimeoutError::Timeout) {
                return;
            }
            let megabytes = bytes as f64 / 1e6;
            let stderr = std::io::stderr();
            if !stderr.is_terminal() {
                tracing::info!(component, bytes, "compiling (the first time only: the result is cached)");
                return;
            }
            for frame in FRAMES.iter().cycle() {
                let secs = started.elapsed().as_secs_f64();
                let _ =
                    write!(stderr.lock(), "\r{frame} compiling {component} ({megabytes:.1} MB) {secs:.1} s");
                if finished.recv_timeout(FRAME) != Err(RecvTimeoutError::Timeout) {
                    break;
                }
            }
            // Erase the spinner's line.
            let _ = write!(stderr.lock(), "\r\x1b[2K");
        });
        Progress { done: Some(done), thread: thread.ok() }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
