//! A Python plugin in process: its first load (compile, empty cache), its cached load, the
//! `!echo hi` round trip (router → actor → CPython in wasm → reply, as round_trip.rs times
//! `!ping`) and the resident memory each loaded copy adds. Needs the plugin built by
//! `roost build` (`host/benches/python/echo`), passed as `ROOST_BENCH_PY_WASM`; run by
//! `host/benches/python_vs_errbot.sh`, which also times Errbot 6.2.1 in the same run.

use std::path::Path;
use std::time::{Duration, Instant};

use roost::config::Config;
use roost::daemon::Host;
use roost::router::Router;

#[path = "common/round_trips.rs"]
mod round_trips;
use round_trips::time_round_trips;

const WARMUP: usize = 500;
const ROUNDS: usize = 5_000;
/// Copies loaded side by side to measure the memory one more Python plugin costs.
const COPIES: usize = 4;

fn main() {
    let wasm = std::env::var("ROOST_BENCH_PY_WASM").expect("ROOST_BENCH_PY_WASM: the echo plugin");
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = dir.path().join("data/plugins");
    std::fs::create_dir_all(&plugins).expect("plugins dir");
    std::fs::copy(&wasm, plugins.join("echo.wasm")).expect("copy the plugin");
    let runtime = roost::async_runtime::build().expect("runtime");
    runtime.block_on(async {
        let first = load(dir.path()).await;
        println!(
            "python echo: first load (compile, empty cache) {:.2} s",
            first.as_secs_f64()
        );
        let cached = load(dir.path()).await;
        println!("python echo: cached load {:.3} s", cached.as_secs_f64());
        round_trip(dir.path()).await;
        memory_per_plugin(dir.path(), &plugins).await;
    });
}

/// Builds a host on `dir` and loads its plugins; returns how long loading took.
async fn load(dir: &Path) -> Duration {
    let host = host(dir);
    let started = Instant::now();
    let errors = host.supervisor.sync().await;
    let took = started.elapsed();
    assert!(errors.is_empty(), "{errors:?}");
    host.supervisor.unload_all();
    took
}

fn host(dir: &Path) -> Host {
    let config_path = dir.join("roost.toml");
    let text = "[host]\ndata_dir = \"data\"\n[rate_limit]\nper_minute = 0\n[plugins.bot]\nenabled = false\n";
    std::fs::write(&config_path, text).expect("write config");
    Host::build(Config::load(&config_path).expect("config")).expect("host")
}

async fn round_trip(dir: &Path) {
    let host = host(dir);
    let errors = host.supervisor.sync().await;
    assert!(errors.is_empty(), "{errors:?}");
    let router = std::sync::Arc::new(Router::new(host.supervisor.clone()));
    let (median, p99) = time_round_trips(router, "!echo hi", "hi", WARMUP, ROUNDS).await;
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "python echo: !echo round trip ({ROUNDS} rounds) median {:.1} us, p99 {:.1} us",
        us(median),
        us(p99)
    );
    host.supervisor.unload_all();
}

/// Resident memory with one copy loaded, then with [`COPIES`] more (cached compiles).
async fn memory_per_plugin(dir: &Path, plugins: &Path) {
    let host = host(dir);
    let errors = host.supervisor.sync().await;
    assert!(errors.is_empty(), "{errors:?}");
    let one = rss_kb();
    for i in 0..COPIES {
        std::fs::copy(
            plugins.join("echo.wasm"),
            plugins.join(format!("echo{i}.wasm")),
        )
        .expect("copy");
    }
    let errors = host.supervisor.sync().await;
    assert!(errors.is_empty(), "{errors:?}");
    let more = rss_kb();
    println!(
        "python echo: RSS with 1 loaded {:.1} MB, with {} loaded {:.1} MB: {:.1} MB per Python plugin",
        one as f64 / 1024.0,
        COPIES + 1,
        more as f64 / 1024.0,
        (more.saturating_sub(one)) as f64 / 1024.0 / COPIES as f64
    );
    host.supervisor.unload_all();
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
