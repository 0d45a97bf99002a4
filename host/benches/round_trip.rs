//! Command round trip in process: router → bot plugin actor → wasm `on-command` → reply.
//! The same path a chat message takes after its gateway, without the socket. Prints median
//! and p99 and, when `ERRBOT_MEDIAN_MS`/`ERRBOT_P99_MS` are set (the bench script measures
//! Errbot's TestBot in the same run), the ratios.
//!
//! Run: `cargo bench -p roost --bench round_trip` (or `make bench` for the side-by-side).

use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use roost::config::Config;
use roost::daemon::Host;
use roost::router::Router;

#[path = "common/round_trips.rs"]
mod round_trips;
use round_trips::time_round_trips;

const WARMUP: usize = 2_000;
const ROUNDS: usize = 20_000;

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config_path = dir.path().join("roost.toml");
    let text = "[host]\ndata_dir = \"data\"\n[rate_limit]\nper_minute = 0\n[plugins.bot.grants]\nadmin = true\n";
    std::fs::write(&config_path, text).expect("write config");
    let config = Config::load(&config_path).expect("config");
    let runtime = roost::async_runtime::build().expect("runtime");
    runtime.block_on(async {
        let host = Host::build(config).expect("host");
        let errors = host.supervisor.sync().await;
        assert!(errors.is_empty(), "{errors:?}");
        let router = std::sync::Arc::new(Router::new(host.supervisor.clone()));
        let (median, p99) = time_round_trips(router, "!ping", "pong", WARMUP, ROUNDS).await;
        println!(
            "round_trip !ping ({ROUNDS} rounds): median {} us, p99 {} us",
            us(median),
            us(p99)
        );
        let (floor_median, floor_p99) = channel_floor(ROUNDS).await;
        println!(
            "  floor on this machine (a task answering over the same channels, no plugin): median {} us, p99 {} us",
            us(floor_median),
            us(floor_p99)
        );
        for (what, ours, var) in [
            ("median", median, "ERRBOT_MEDIAN_MS"),
            ("p99", p99, "ERRBOT_P99_MS"),
        ] {
            if let Some(peer) = std::env::var(var).ok().and_then(|v| v.parse::<f64>().ok()) {
                let ours_ms = ours.as_secs_f64() * 1000.0;
                println!(
                    "  vs Errbot TestBot {what} {peer:.3} ms: {:.1}x faster",
                    peer / ours_ms
                );
            }
        }
        host.supervisor.unload_all();
    });
}

/// The floor under any round trip through a plugin's actor here: a task that answers each
/// request over the same kind of channels (`mpsc` in, `oneshot` back) and does nothing
/// else, timed the same way from another task. Its p99 is the machine's scheduling noise.
async fn channel_floor(rounds: usize) -> (Duration, Duration) {
    let (tx, mut rx) = mpsc::channel::<oneshot::Sender<()>>(16);
    tokio::spawn(async move {
        while let Some(reply) = rx.recv().await {
            let _ = reply.send(());
        }
    });
    let timing = tokio::spawn(async move {
        let mut samples = Vec::with_capacity(rounds);
        for i in 0..WARMUP + rounds {
            let t = Instant::now();
            let (reply, answer) = oneshot::channel();
            tx.try_send(reply).expect("the echo task");
            answer.await.expect("an echo");
            if i >= WARMUP {
                samples.push(t.elapsed());
            }
        }
        samples.sort();
        (samples[rounds / 2], samples[rounds * 99 / 100])
    });
    timing.await.expect("the timing task")
}

fn us(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e6)
}
