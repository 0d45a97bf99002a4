//! The tokio runtime every roost command runs on, and how many worker threads it has.

/// Runtime workers unless `TOKIO_WORKER_THREADS` says otherwise. One: a chat command's
/// task and the actor of the plugin that answers it then stay on one thread. With two (one
/// per core on the 2-core machines roost is measured on), tokio wakes the idle worker to
/// steal work on 1–3 % of round trips, which put the `!ping` p99 at 37–47 µs instead of
/// 12–34 µs, and a DNS-heavy check spent more CPU on wake-ups (BENCHMARKS.md). Nothing that
/// blocks runs on a worker: SQLite queries, compiling, file reads and secret files go to
/// tokio's blocking pool, the store has its own thread, and a plugin's call yields at
/// every epoch tick (`runtime::engine::EPOCH_TICK`), so a busy plugin delays the others
/// by at most a tick at a time.
pub const WORKERS: usize = 1;

/// A runtime with every driver and [`WORKERS`] workers, unless `TOKIO_WORKER_THREADS`
/// (tokio's own variable) is set: a hub with several CPU-heavy plugins may want them to
/// run side by side.
pub fn build() -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        builder.worker_threads(WORKERS);
    }
    builder.enable_all().build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_worker_unless_tokio_worker_threads_says_otherwise() {
        let runtime = build().expect("a runtime");
        let want = std::env::var("TOKIO_WORKER_THREADS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(WORKERS);
        assert_eq!(runtime.metrics().num_workers(), want);
        assert_eq!(runtime.block_on(async { 6 * 7 }), 42, "it runs work");
    }
}
