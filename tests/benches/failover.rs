//! Failover figures of issue "The hub's store on Postgres…": two real hubs on one Postgres
//! (the throwaway cluster of `test_pg`, or `ROOST_TEST_PG`), the leader killed with
//! `kill -9` [`KILLS`] times; each time, how long until the standby answers `!ping` (it
//! has taken the lease, loaded its plugins and serves commands), then the killed hub is
//! started again and becomes the next standby. Then what a standby costs while it waits:
//! resident memory, and CPU over [`IDLE`].
//!
//! Run: `bash host/benches/failover.sh` (builds in release, writes target/bench/failover.txt).

use std::time::{Duration, Instant};

use roost_tests::{BASE_CONFIG, Daemon, StartOptions, test_pg};

const KILLS: usize = 20;
const IDLE: Duration = Duration::from_secs(10);
const NAMES: [&str; 2] = ["a", "b"];

/// A hub named `name` on the store at `url`, started without waiting for plugins (a
/// standby loads none).
fn hub(url: &str, name: &str) -> Daemon {
    let config = format!(
        "{}\n[store]\nurl = \"{url}\"\n",
        BASE_CONFIG.replace("[host]\n", &format!("[host]\nname = \"{name}\"\n"))
    );
    let password = test_pg::server().password.clone().unwrap_or_default();
    Daemon::start_with(
        &config,
        &[],
        StartOptions {
            env: &[("ROOST_STORE_PASSWORD", password.as_str())],
            listening_only: true,
            ..StartOptions::default()
        },
    )
}

/// Waits until `d` answers `!ping` (it leads and its bot is loaded).
fn until_pong(d: &Daemon) {
    let start = Instant::now();
    while d.chat("!ping").trim() != "pong" {
        assert!(start.elapsed() < Duration::from_secs(60), "no takeover");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until `d`'s `!status` shows it standing by with `leader` leading.
fn until_standby(d: &Daemon, me: &str, leader: &str) {
    d.chat_until("!status", |s| {
        s.contains(&format!("hub {me}: standby, this hub"))
            && s.contains(&format!("hub {leader}: leader"))
    });
}

/// (user + system CPU seconds, resident MiB) of process `pid`.
fn usage(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let cpu = (fields[11].parse::<f64>().unwrap_or(0.0) + fields[12].parse::<f64>().unwrap_or(0.0))
        / ticks;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    (cpu, kib / 1024.0)
}

fn main() {
    let url = test_pg::fresh_url();
    let mut hubs = [hub(&url, NAMES[0]), hub(&url, NAMES[1])];
    until_pong(&hubs[0]);
    let mut leader = 0;
    let mut takeovers = Vec::with_capacity(KILLS);
    for _ in 0..KILLS {
        let standby = 1 - leader;
        until_standby(&hubs[standby], NAMES[standby], NAMES[leader]);
        let killed = Instant::now();
        hubs[leader].kill9();
        until_pong(&hubs[standby]);
        takeovers.push(killed.elapsed());
        hubs[leader].restart();
        leader = standby;
    }
    takeovers.sort();
    let secs = |d: Duration| d.as_secs_f64();
    println!(
        "failover over {KILLS} kill -9s (kill to the standby answering !ping): median {:.2} s, max {:.2} s, min {:.2} s",
        secs(takeovers[KILLS / 2]),
        secs(takeovers[KILLS - 1]),
        secs(takeovers[0])
    );

    let standby = 1 - leader;
    until_standby(&hubs[standby], NAMES[standby], NAMES[leader]);
    let (pids, before) = (
        [hubs[leader].pid(), hubs[standby].pid()],
        [usage(hubs[leader].pid()), usage(hubs[standby].pid())],
    );
    std::thread::sleep(IDLE);
    let after = [usage(pids[0]), usage(pids[1])];
    for (i, role) in ["leader", "standby"].iter().enumerate() {
        println!(
            "idle {role} (bot loaded: {}): RSS {:.1} MiB, CPU {:.2}% over {} s",
            i == 0,
            after[i].1,
            (after[i].0 - before[i].0) / IDLE.as_secs_f64() * 100.0,
            IDLE.as_secs()
        );
    }
}
