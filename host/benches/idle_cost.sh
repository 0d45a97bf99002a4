#!/usr/bin/env bash
# What an idle hub costs: CPU time (utime + stime from /proc/PID/stat) and thread
# wake-ups (the threads' voluntary context switches) of the release `roost run` on the
# starter config over SECS seconds (60 by default), once it is ready.
# Usage: bash host/benches/idle_cost.sh  (env: SECS)
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${SECS:-60}
cargo build -q --release -p roost --bin roost
bin=$PWD/target/release/roost
source host/benches/results.sh
bench_results idle_cost
dir=$(mktemp -d /tmp/roost-idle.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
(cd "$dir" && "$bin" init >/dev/null)
(cd "$dir" && exec "$bin" run >/dev/null 2>"$dir/log.txt") &
pid=$!
until grep -q "roost ready" "$dir/log.txt"; do sleep 0.05; done
sleep 2
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
wakeups() { cat /proc/"$pid"/task/*/status | awk '/^voluntary_ctxt_switches/ {s += $2} END {print s}'; }
hz=$(getconf CLK_TCK)
t0=$(ticks) w0=$(wakeups)
sleep "$secs"
t1=$(ticks) w1=$(wakeups)
echo "idle hub, starter config, $secs s: $(( (t1 - t0) * 1000 / hz )) ms of CPU, $(( w1 - w0 )) thread wake-ups"
