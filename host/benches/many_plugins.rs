//! How the hub's costs grow with the number of plugins: the bot plus N copies of the hello
//! example (`hello-01.wasm` … in the plugins folder), in process (the daemon's `Host`,
//! without its gateways): the time to load them all, the process's resident memory once
//! loaded and idle, and the `!ping` round trip to the bot with all of them loaded.
//!
//! Usage: `many_plugins N DIR`. The first run on a fresh DIR compiles every plugin (an
//! empty compile cache: "cold"); a second run on the same DIR loads them from the cache
//! ("warm"). `bash host/benches/many_plugins.sh` runs both for N = 0, 10 and 50 and writes
//! target/bench/many_plugins.txt. HELLO_WASM names the hello example's component.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use roost::config::Config;
use roost::daemon::Host;
use roost::router::Router;

#[path = "common/round_trips.rs"]
mod round_trips;
use round_trips::time_round_trips;

const WARMUP: usize = 2_000;
const ROUNDS: usize = 20_000;

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let count: usize = args
        .next()
        .and_then(|n| n.parse().ok())
        .expect("usage: many_plugins N DIR");
    let dir = PathBuf::from(args.next().expect("usage: many_plugins N DIR"));
    let hello = std::env::var("HELLO_WASM").expect("HELLO_WASM: the hello example's component");
    let config = setup(&dir, count, Path::new(&hello));
    let cold = !dir.join("data/cache").exists();
    let runtime = roost::async_runtime::build().expect("runtime");
    runtime.block_on(async {
        let started = Instant::now();
        let host = Host::build(config).expect("host");
        let errors = host.supervisor.sync().await;
        let load = started.elapsed();
        assert!(errors.is_empty(), "{errors:?}");
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss = rss_mb();
        let router = std::sync::Arc::new(Router::new(host.supervisor.clone()));
        let (median, p99) = time_round_trips(router, "!ping", "pong", WARMUP, ROUNDS).await;
        println!(
            "plugins={count} {}: load {:.3} s, RSS {rss:.1} MB, !ping median {:.2} us p99 {:.2} us",
            if cold { "cold" } else { "warm" },
            load.as_secs_f64(),
            median.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6
        );
        host.supervisor.unload_all();
    });
}

/// The config (bot with admin, no rate limit) and `count` copies of `hello` in DIR.
fn setup(dir: &Path, count: usize, hello: &Path) -> Config {
    let plugins = dir.join("data/plugins");
    std::fs::create_dir_all(&plugins).expect("plugins dir");
    for i in 1..=count {
        let copy = plugins.join(format!("hello-{i:02}.wasm"));
        if !copy.exists() {
            std::fs::copy(hello, copy).expect("copy hello");
        }
    }
    let config_path = dir.join("roost.toml");
    let text = "[host]\ndata_dir = \"data\"\n[rate_limit]\nper_minute = 0\n[plugins.bot.grants]\nadmin = true\n";
    std::fs::write(&config_path, text).expect("write config");
    Config::load(&config_path).expect("config")
}

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .expect("VmRSS")
        / 1024.0
}
