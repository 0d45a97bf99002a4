//! The `!ping` round trip to the bot while other plugins compute: what the runtime's
//! number of workers costs a plugin's neighbours. The bot and the tests' `faulty` plugin
//! are loaded in process (the daemon's `Host`, without its gateways); `!ping` is timed with
//! faulty idle, then while faulty runs `!spin` (a loop that only its call deadline ends,
//! set here beyond the bench's length). A spinning plugin yields its worker every epoch
//! tick (10 ms), so with one worker a neighbour's command may wait up to a tick; with a
//! worker per core the other worker takes it at once.
//!
//! Usage: `busy_neighbour DIR`, with `FAULTY_WASM` naming the faulty plugin's component;
//! `TOKIO_WORKER_THREADS` sets the workers. `bash host/benches/busy_neighbour.sh` runs it
//! with one worker and with the default and writes target/bench/busy_neighbour.txt.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use roost::config::Config;
use roost::daemon::Host;
use roost::message::ChatMessage;
use roost::router::Router;

// Shared by the round-trip benches; this one wants every sample, not the summary.
#[allow(dead_code)]
#[path = "common/round_trips.rs"]
mod round_trips;
use round_trips::round_trip_samples;

const WARMUP: usize = 2_000;
const ROUNDS: usize = 20_000;
/// How long the bench waits for the spin to begin before giving up.
const PATIENCE: Duration = Duration::from_secs(60);

fn main() {
    let dir = PathBuf::from(
        std::env::args()
            .skip(1)
            .find(|a| !a.starts_with("--"))
            .expect("usage: busy_neighbour DIR"),
    );
    let faulty = std::env::var("FAULTY_WASM").expect("FAULTY_WASM: the faulty plugin");
    let spinners: usize = std::env::var("SPINNERS").map_or(1, |n| n.parse().expect("SPINNERS"));
    let names: Vec<String> = (1..=spinners).map(|i| format!("spinner-{i}")).collect();
    let config = setup(&dir, Path::new(&faulty), &names);
    let runtime = roost::async_runtime::build().expect("runtime");
    let workers = runtime.metrics().num_workers();
    runtime.block_on(async {
        let host = Host::build(config).expect("host");
        let errors = host.supervisor.sync().await;
        assert!(errors.is_empty(), "{errors:?}");
        let router = Arc::new(Router::new(host.supervisor.clone()));
        let idle = round_trip_samples(router.clone(), "!ping", "pong", WARMUP, ROUNDS).await;
        report(workers, &format!("{spinners} idle"), &idle);
        let spins: Vec<_> = names
            .iter()
            .map(|name| {
                let (router, spin) = (router.clone(), console(&format!("!{name}:spin")));
                tokio::spawn(async move { router.handle(&spin).await })
            })
            .collect();
        for name in &names {
            wait_for_spin(&dir, name).await;
        }
        let busy = round_trip_samples(router, "!ping", "pong", WARMUP, ROUNDS).await;
        report(workers, &format!("{spinners} spinning"), &busy);
        for spin in spins {
            assert!(!spin.is_finished(), "a spin ended before the pings did");
            spin.abort();
        }
    });
    // The spins run until their deadline: leave without waiting for them.
    std::process::exit(0);
}

/// Median, p99, p99.9 and slowest of the sorted `samples`, and their sum: how long the
/// rounds took in all.
fn report(workers: usize, what: &str, samples: &[Duration]) {
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let at = |per_mille: usize| us(samples[samples.len() * per_mille / 1000]);
    let total: Duration = samples.iter().sum();
    println!(
        "workers={workers} spinners={what}: !ping median {:.2} us, p99 {:.2} us, p99.9 {:.2} us, max {:.2} us; {ROUNDS} rounds in {:.3} s",
        at(500),
        at(990),
        at(999),
        us(samples[samples.len() - 1]),
        total.as_secs_f64()
    );
}

fn console(text: &str) -> ChatMessage {
    ChatMessage {
        gateway: "bench".into(),
        channel: "bench".into(),
        identity: "console".into(),
        text: text.into(),
    }
}

/// Until plugin `name`'s `spinning` marker is in the store: its spin has begun.
async fn wait_for_spin(dir: &Path, name: &str) {
    let db = dir.join("data/roost.db");
    let start = Instant::now();
    loop {
        let marked = rusqlite::Connection::open(&db)
            .and_then(|c| {
                c.query_row(
                    "SELECT count(*) FROM kv WHERE plugin = ?1 AND key = 'spinning'",
                    [name],
                    |r| r.get::<_, i64>(0),
                )
            })
            .is_ok_and(|n| n == 1);
        if marked {
            return;
        }
        assert!(start.elapsed() < PATIENCE, "the spin never began");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The config (bot with admin, no rate limit, each spinner's deadline past the bench's
/// end) and a copy of faulty in DIR's plugins folder under each of `names`.
fn setup(dir: &Path, faulty: &Path, names: &[String]) -> Config {
    let plugins = dir.join("data/plugins");
    std::fs::create_dir_all(&plugins).expect("plugins dir");
    let mut text = "[host]\ndata_dir = \"data\"\n[rate_limit]\nper_minute = 0\n\
                    [plugins.bot.grants]\nadmin = true\n"
        .to_string();
    for name in names {
        std::fs::copy(faulty, plugins.join(format!("{name}.wasm"))).expect("copy faulty");
        text.push_str(&format!(
            "[plugins.{name}.limits]\ncall_timeout_ms = 600000\n"
        ));
    }
    let config_path = dir.join("roost.toml");
    std::fs::write(&config_path, text).expect("write config");
    Config::load(&config_path).expect("config")
}
