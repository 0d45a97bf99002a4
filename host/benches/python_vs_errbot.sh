#!/usr/bin/env bash
# A Python plugin against Errbot 6.2.1, both measured in this run: `roost build` of the
# minimal echo plugin (host/benches/python/echo), its first load (compile) and cached load,
# the `!echo` round trip (median, p99) next to Errbot's TestBot `!echo`, and the resident
# memory per loaded Python plugin next to an Errbot process. Usage (repo root):
#   bash host/benches/python_vs_errbot.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
work=$root/target/bench
mkdir -p "$work"
if [ ! -x "$work/errbot-venv/bin/python" ]; then
  python3 -m venv "$work/errbot-venv"
  "$work/errbot-venv/bin/pip" install -q errbot==6.2.1 pytest
fi
source host/benches/results.sh
bench_results python_vs_errbot "errbot $("$work/errbot-venv/bin/pip" show errbot | sed -n 's/^Version: //p')"

cargo build -q --release -p roost
echo "== roost build of the echo plugin ($(wc -l <host/benches/python/echo/echo.py) lines)"
t0=$(date +%s.%N)
(cd host/benches/python/echo && "$root/target/release/roost" build >/dev/null)
echo "roost build: $(echo "$(date +%s.%N) - $t0" | bc) s"
wasm=host/benches/python/echo/.roost/echo.wasm
echo "component: $(du -h "$wasm" | cut -f1)"

echo "== roost, release"
ROOST_BENCH_PY_WASM=$root/$wasm cargo bench -q -p roost --bench python_plugin 2>/dev/null | grep -v '^$'

echo "== Errbot 6.2.1 TestBot"
eval "$("$work/errbot-venv/bin/python" host/benches/errbot_peer.py 2>/dev/null | grep '^ERRBOT_')"
echo "errbot: !echo round trip median ${ERRBOT_MEDIAN_MS} ms, p99 ${ERRBOT_P99_MS} ms; RSS ${ERRBOT_RSS_MB} MB"
