//! The tokio runtime every roost command runs on (the daemon, the CLI, the benches), built
//! in one place so that the benches measure the daemon's settings.
//!
//! Workers: tokio's default, one per core, or `TOKIO_WORKER_THREADS`. One worker keeps a
//! command and the plugin answering it on one thread, which takes the `!ping` p99 from
//! 30–38 µs to 9–18 µs while every plugin is idle (BENCHMARKS.md; the second worker, woken
//! to steal the actor's task, is the tail). It is not the default, though the whole test
//! suite passes with it: a plugin that computes holds its worker for a tick at a time
//! (`runtime::engine::BUSY_TICK`), and with one worker every other plugin waits through
//! those ticks (`!ping` beside one spinning plugin: p99 48–71 µs, p99.9 0.45–0.62 ms with
//! one worker; 29–45 µs and 0.10–0.14 ms with two: `host/benches/busy_neighbour.sh`).

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
