#!/usr/bin/env bash
# Side-by-side benchmarks of roost against Errbot 6.2.1, both measured in this run:
#   command round trip in process (median, p99), startup to ready (cold and warm compile
#   cache), idle resident memory; and roost's idle cost, CPU time (utime + stime from
#   /proc/PID/stat) and thread wake-ups (its threads' voluntary context switches) over
#   IDLE_S seconds (60; 10 in `make bench-quick`). Run from the repo root: `make bench`.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
work=$root/target/bench
mkdir -p "$work"

echo "== Errbot 6.2.1 (TestBot backend), installed in $work/errbot-venv"
if [ ! -x "$work/errbot-venv/bin/python" ]; then
  python3 -m venv "$work/errbot-venv"
  "$work/errbot-venv/bin/pip" install -q errbot==6.2.1 pytest
fi
source host/benches/results.sh
bench_results side_by_side "errbot $("$work/errbot-venv/bin/pip" show errbot | sed -n 's/^Version: //p')"
eval "$("$work/errbot-venv/bin/python" host/benches/errbot_peer.py 2>/dev/null | grep '^ERRBOT_')"
echo "errbot: round trip median ${ERRBOT_MEDIAN_MS} ms, p99 ${ERRBOT_P99_MS} ms; startup ${ERRBOT_STARTUP_S} s; RSS ${ERRBOT_RSS_MB} MB"

echo "== roost round trip (release)"
ERRBOT_MEDIAN_MS=$ERRBOT_MEDIAN_MS ERRBOT_P99_MS=$ERRBOT_P99_MS \
  cargo bench -q -p roost --bench round_trip 2>/dev/null | grep -v '^$'

echo "== roost startup to ready and idle memory (release binary, starter config)"
cargo build -q --release -p roost
bin=$root/target/release/roost
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
(cd "$dir" && "$bin" init >/dev/null)
start_once() {  # sets $secs (spawn to "roost ready") and $pid
  local log=$dir/log.txt
  : >"$log"
  local t0
  t0=$(date +%s.%N)
  (cd "$dir" && exec "$bin" run >/dev/null 2>"$log") &
  pid=$!
  until grep -q "roost ready" "$log"; do sleep 0.002; done
  secs=$(echo "$(date +%s.%N) - $t0" | bc)
}
rm -rf "$dir/data/cache"
start_once; cold=$secs; kill "$pid"; wait "$pid" || true
start_once; warm=$secs
# Past the two seconds after which the hub hands back the pages only starting used.
sleep 4
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
idle_s=${IDLE_S:-60}
[ "${BENCH_QUICK:-0}" = 1 ] && idle_s=${IDLE_S:-10}
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
# One line per thread alive: its id and its voluntary context switches so far. Summed per
# thread id, so a thread that ends within the window takes nothing off the count (its
# switches in the window are then not counted) and one born in it counts from zero.
wakeups() {
  local status
  for status in /proc/"$pid"/task/*/status; do
    awk '/^Pid:/ {id = $2} /^voluntary_ctxt_switches/ {print id, $2}' "$status" 2>/dev/null || true
  done
}
t0=$(ticks) w0=$(wakeups)
sleep "$idle_s"
t1=$(ticks) w1=$(wakeups)
woken=$(printf '%s\n--\n%s\n' "$w0" "$w1" |
  awk '$1 == "--" {after = 1; next} !after {before[$1] = $2; next} {s += $2 - before[$1]} END {print s + 0}')
kill "$pid"; wait "$pid" || true
rss_mb=$(echo "scale=1; $rss_kb/1024" | bc)
echo "roost: startup cold ${cold} s, warm ${warm} s; idle RSS ${rss_mb} MB"
echo "roost idle over ${idle_s} s: $(( (t1 - t0) * 1000 / $(getconf CLK_TCK) )) ms of CPU, ${woken} thread wake-ups"
echo "  startup vs errbot ${ERRBOT_STARTUP_S} s: $(echo "scale=1; $ERRBOT_STARTUP_S/$warm" | bc)x (warm)"
echo "  idle RSS vs errbot ${ERRBOT_RSS_MB} MB: $(echo "scale=2; $rss_mb/$ERRBOT_RSS_MB" | bc)x the memory"
