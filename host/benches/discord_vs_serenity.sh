#!/usr/bin/env bash
# roost's Discord gateway against a bare serenity echo bot, both against the tests' fake
# Discord on loopback in this run (rate-limit buckets off: the figures are the bots', not
# Discord's 5 posts a second per channel): `!ping` → `pong` median and p99, a burst of
# 1,000, and the outbox drain of 10,000 messages queued while the daemon was down.
# Run from the repo root: `bash host/benches/discord_vs_serenity.sh` (also `make bench`).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -q --release --locked -p roost -p roost-tests --benches --bins
source host/benches/results.sh
bench_results discord "serenity $(cargo tree -q -p roost-tests -i serenity --depth 0 2>/dev/null | sed -n 's/^serenity v//p' | head -1)"
cargo bench -q --locked -p roost-tests --bench discord 2>/dev/null | grep -v '^$'
