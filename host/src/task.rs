//! Tasks that do not outlive their owner.

/// A spawned task, aborted if this is dropped before the task is joined or detached.
pub(crate) struct AbortOnDrop<T>(pub(crate) Option<tokio::task::JoinHandle<T>>);

impl<T> AbortOnDrop<T> {
    pub(crate) fn detach(&mut self) {
        self.0 = None;
    }

    /// Waits for the task; dropping this future aborts it.
    pub(crate) async fn join(mut self) -> Result<T, tokio::task::JoinError> {
        let out = self.0.as_mut().expect("joined once").await;
        self.0 = None;
        out
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        if let Some(handle) = &self.0 {
            handle.abort();
        }
    }
}
