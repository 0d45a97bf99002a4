//! A spawned task tied to the life of a handle: when the handle is dropped (its owner is
//! gone, the daemon stops leading, a plugin instance ends), the task is aborted rather
//! than left running unowned. The same idea as wasmtime's `AbortOnDropJoinHandle`, for
//! tasks whose result nobody awaits.

/// A task that is aborted when this handle is dropped.
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
