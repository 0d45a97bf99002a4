//! The tokio runtime every roost command runs on (the daemon, the CLI, the benches), built
//! in one place so that the benches measure the daemon's settings.
//!
//! Workers: tokio's default, one per core, or `TOKIO_WORKER_THREADS`. One worker keeps a
//! command and the plugin answering it on one thread, which takes the `!ping` p99 from
//! 34–39 µs to 12–16 µs (BENCHMARKS.md), but it is not the default: with one worker, any
//! call that blocks a worker stalls the whole hub, and the end-to-end test of a leader
//! paused and fenced off on Postgres showed the bot's host calls timing out over and over.
//! A cause found since holds for any number of workers: a leader stopped inside a Postgres
//! transaction kept its row locks against the hub that took over until it woke (now ended
//! by the server, `store::postgres::IDLE_IN_TRANSACTION`). One worker stays off the default
//! until a full test run with it passes.

/// A runtime with every driver and tokio's default number of workers.
pub fn build() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_per_core_unless_tokio_worker_threads_says_otherwise() {
        let runtime = build().expect("a runtime");
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let want = std::env::var("TOKIO_WORKER_THREADS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(cores);
        assert_eq!(runtime.metrics().num_workers(), want);
        assert_eq!(runtime.block_on(async { 6 * 7 }), 42, "it runs work");
    }
}
