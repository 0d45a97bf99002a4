//! Serves the alias-monitor test zones (and the benchmark zone) on loopback for scripts:
//!
//! ```text
//! cargo run -p roost-tests --bin dns-fixture -- [--bench-names N]
//! ```
//!
//! Prints `127.0.0.1:PORT` (UDP and TCP) on one line, then serves until stdin closes or the
//! process gets SIGTERM (its default action ends the process; the kernel closes the sockets).
//! Keep stdin open when running it in the background (e.g. from a pipe or a fifo): started
//! with stdin at /dev/null it exits at once. `--bench-names N` sets how many `nameI.bench.test.`
//! aliases the benchmark zone holds (default 1000; 0 leaves the zone out).

use std::io::{Read, Write};

use anyhow::{Context, bail};
use roost_tests::dns::{DnsServer, bench_zone, test_zones};

/// Aliases in `bench.test.` unless `--bench-names` says otherwise.
const DEFAULT_BENCH_NAMES: usize = 1000;

fn main() -> anyhow::Result<()> {
    let bench_names = bench_names(std::env::args().skip(1))?;
    let mut zones = test_zones();
    if bench_names > 0 {
        zones.push(bench_zone(bench_names));
    }
    let server = DnsServer::try_start(&zones).context("starting the DNS fixture")?;

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", server.addr())?;
    stdout.flush()?;
    drop(stdout);

    // Serve until stdin reaches its end (or a read fails: the same, nobody is there).
    let mut sink = [0u8; 256];
    let mut stdin = std::io::stdin().lock();
    while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
    drop(server);
    Ok(())
}

/// Reads `--bench-names N` (or `--bench-names=N`) from the arguments.
fn bench_names(mut args: impl Iterator<Item = String>) -> anyhow::Result<usize> {
    let mut names = DEFAULT_BENCH_NAMES;
    while let Some(arg) = args.next() {
        let value = match arg.strip_prefix("--bench-names") {
            Some("") => args.next().context("--bench-names needs a number")?,
            Some(rest) if rest.starts_with('=') => rest[1..].to_string(),
            _ => bail!("unknown argument `{arg}` (usage: dns-fixture [--bench-names N])"),
        };
        names = value
            .parse()
            .with_context(|| format!("--bench-names `{value}` is not a count"))?;
    }
    Ok(names)
}
