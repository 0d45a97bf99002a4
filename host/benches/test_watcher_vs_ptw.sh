#!/usr/bin/env bash
# test-watcher against pytest-watch 4.2.0 and watchexec, on the same tree in one run:
#
#  - save -> runner started: a runner script that appends its start time (ns) to a log; the
#    time of each save is taken just before the write. N saves, one at a time, with a
#    pause between; median and p99 per tool.
#  - a burst of 20 saves within ~100 ms: how many times the runner started.
#  - idle cost while watching a 50,000-file tree: CPU time over IDLE_S seconds and RSS.
#  - ready: from the tool's start until a save is noticed (after its first run, the file
#    is appended to, then again every 0.6 s until a run follows: a figure to ±0.6 s), and
#    the inotify watches it holds.
#
# Every tool runs at its default settings (roost: debounce 50 ms; ptw: --spool 200;
# watchexec: 50 ms). roost's RSS is the whole hub (wasmtime, the bot, the plugin).
#
# Installs pytest-watch 4.2.0 into a venv and watchexec with cargo, both kept under
# target/bench so a second run starts at once.
# Usage: bash host/benches/test_watcher_vs_ptw.sh  (env: N, IDLE_S, FILES, KEEP=1)
set -euo pipefail

N=${N:-50}
IDLE_S=${IDLE_S:-30}
FILES=${FILES:-50000}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d /tmp/roost-twbench.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    # Only the tools started here: a bare `wait` would also wait for the results file's
    # `tee` (results.sh), which ends only when this script does.
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
    [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

echo "== building roost (release)" >&2
(cd "$ROOT" && cargo build --release -q -p roost)
ROOST="$ROOT/target/release/roost"

echo "== installing pytest-watch 4.2.0 and watchexec" >&2
TOOLS="$ROOT/target/bench"
mkdir -p "$TOOLS"
if [ ! -x "$TOOLS/ptw-venv/bin/ptw" ]; then
    python3 -m venv "$TOOLS/ptw-venv"
    "$TOOLS/ptw-venv/bin/pip" install -q "pytest-watch==4.2.0" pytest
fi
PTW="$TOOLS/ptw-venv/bin/ptw"
# Pinned, like pytest-watch: the figures in BENCHMARKS.md were taken with this version.
WATCHEXEC_VERSION=2.8.0
cargo install -q --locked watchexec-cli --version "$WATCHEXEC_VERSION" --root "$TOOLS/cargo" 2>&1 | tail -2 >&2
WATCHEXEC="$TOOLS/cargo/bin/watchexec"
source "$ROOT/host/benches/results.sh"
# Another tree size writes its own file (`make bench` runs 50,000 and 500,000 files).
name=test_watcher_vs_ptw
[ "$FILES" = 50000 ] || name=${name}_$FILES
bench_results "$name" "pytest-watch 4.2.0" "watchexec $WATCHEXEC_VERSION"

echo "== a tree of $FILES files" >&2
TREE="$WORK/tree"
python3 - "$TREE" "$FILES" <<'EOF'
import os, sys
root, files = sys.argv[1], int(sys.argv[2])
per_dir = 200
for i in range(files):
    d = os.path.join(root, f"pkg{i // per_dir // 20}", f"mod{i // per_dir}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i}.py"), "w") as f:
        f.write(f"X = {i}\n")
EOF
TARGET=$(find "$TREE" -name 'f0.py')

RUNLOG="$WORK/runs.log"
RUNNER="$WORK/runner.sh"
printf '#!/bin/sh\ndate +%%s%%N >> %s\n' "$RUNLOG" > "$RUNNER"
chmod +x "$RUNNER"

runs() { [ -f "$RUNLOG" ] && wc -l < "$RUNLOG" || echo 0; }
now_ns() { date +%s%N; }

wait_runs() { # wait until the runner has started $1 times ($2 ms, 10 s by default)
    local want=$1 limit=${2:-10000} t=0
    while [ "$(runs)" -lt "$want" ]; do
        sleep 0.005; t=$((t + 5))
        if [ $t -gt "$limit" ]; then echo "timeout waiting for run $want" >&2; return 1; fi
    done
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
watches() { cat /proc/"$1"/fdinfo/* 2>/dev/null | grep -c '^inotify wd:' || true; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

measure() { # name pid
    local name=$1 pid=$2
    local lat=() before t0 started
    for i in $(seq 1 "$N"); do
        before=$(runs)
        t0=$(now_ns)
        echo "# save $i" >> "$TARGET"
        wait_runs $((before + 1))
        started=$(tail -1 "$RUNLOG")
        lat+=($(( (started - t0) / 1000 )))
        sleep 0.4
    done
    sleep 1
    local b=$(runs)
    for i in $(seq 1 20); do echo "# burst $i" >> "$TARGET"; sleep 0.005; done
    sleep 3
    local burst=$(( $(runs) - b ))
    local hz; hz=$(getconf CLK_TCK)
    local c0 c1; c0=$(cpu_ticks "$pid"); sleep "$IDLE_S"; c1=$(cpu_ticks "$pid")
    local cpu_ms=$(( (c1 - c0) * 1000 / hz ))
    local rss; rss=$(rss_kb "$pid")
    printf '%s\n' "${lat[@]}" | sort -n > "$WORK/$name.lat"
    local med p99
    med=$(awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}' "$WORK/$name.lat")
    p99=$(awk '{a[NR]=$1} END {i=int(NR*0.99+0.999); if (i>NR) i=NR; print a[i]}' "$WORK/$name.lat")
    printf '| %s | %.1f | %.1f | %d | %d ms | %.1f | %.2f | %d |\n' "$name" \
        "$(echo "$med / 1000" | bc -l)" "$(echo "$p99 / 1000" | bc -l)" "$burst" \
        "$cpu_ms" "$(echo "$rss / 1024" | bc -l)" "$(echo "$READY_MS / 1000" | bc -l)" \
        "$(watches "$pid")" >> "$WORK/results.md"
}

start_and_settle() { # command...: starts it, waits until a save is noticed (READY_MS after
    # the start), returns the pid in PID
    : > "$RUNLOG"
    local t0; t0=$(now_ns)
    "$@" > "$WORK/tool.out" 2>&1 &
    PID=$!
    PIDS+=("$PID")
    wait_runs 1 120000 || { cat "$WORK/tool.out" >&2; exit 1; }
    # One save, then time for the tool's debounce (ptw's 200 ms spool and start) before
    # the next: saves closer together would keep a trailing debounce from ever firing.
    until { echo "# ready?" >> "$TARGET"; wait_runs 2 600 2>/dev/null; }; do
        if [ $(( ($(now_ns) - t0) / 1000000 )) -gt 300000 ]; then echo "never ready" >&2; exit 1; fi
    done
    READY_MS=$(( ($(sed -n 2p "$RUNLOG") - t0) / 1000000 ))
    sleep 2
}

stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

echo "| tool | save → runner, median (ms) | p99 (ms) | runs for a 20-save burst | CPU while idle ${IDLE_S} s | RSS idle (MiB) | start → a save noticed (s) | inotify watches |" > "$WORK/results.md"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |" >> "$WORK/results.md"

echo "== roost test-watcher" >&2
mkdir -p "$WORK/roost"
cat > "$WORK/roost/roost.toml" <<EOF
[host]
data_dir = "data"
log = "warn"
[gateways.console]
enabled = true
[plugins.test-watcher]
enabled = true
[plugins.test-watcher.grants]
watch_roots = ["$TREE"]
programs = ["$RUNNER"]
process_dirs = ["$TREE"]
[plugins.test-watcher.config.projects.bench]
root = "$TREE"
runner = "$RUNNER"
kind = "other"
extensions = [".py"]
report = "none"
EOF
start_and_settle "$ROOST" --config "$WORK/roost/roost.toml" run
measure "roost test-watcher" "$PID"
stop "$PID"

echo "== pytest-watch 4.2.0" >&2
start_and_settle "$PTW" --runner "$RUNNER" "$TREE"
measure "pytest-watch 4.2.0" "$PID"
stop "$PID"

WATCHEXEC_NAME="watchexec $("$WATCHEXEC" --version | awk 'NR == 1 {print $2}')"
echo "== $WATCHEXEC_NAME" >&2
start_and_settle "$WATCHEXEC" -w "$TREE" -e py -- "$RUNNER"
measure "$WATCHEXEC_NAME" "$PID"
stop "$PID"

echo
echo "$FILES files, $N saves each, $(nproc) cores; $(uname -r)"
cat "$WORK/results.md"
