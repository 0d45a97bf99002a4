#!/usr/bin/env bash
# alias-monitor side by side with dig, both against the same loopback authoritative server
# (the tests' DNS fixture, `dns-fixture`) serving 1,000 aliases `nameI.bench.test. CNAME
# app.hosted.test.`, measured in this run:
# - roost: `roost invoke alias-monitor check` on all 1,000 names in one run (every finding
#   the plugin knows is looked for); the plugin's own closing line gives names/s, the median
#   and p99 per name and the queries it sent. Peak RSS of the whole `roost` process for 1
#   name and for 1,000 names (the difference is what the check itself holds).
# - `dig -f`: one dig process asking, per name, the four queries a hand check of an alias
#   needs (SOA and CNAME at the name, A and AAAA of the target).
# - a shell loop of one `dig` per name (CNAME only), the way a cron script would.
# - at scale: roost alone on SCALE names (10,000 and 100,000 by default): seconds, names/s
#   and peak RSS, to show how the cost grows.
# Run from the repo root: `bash host/benches/alias_monitor_vs_dig.sh` (also part of `make bench`).
# N sets the names of the side-by-side run, LOOP_N how many of them the one-dig-per-name
# loop asks (its time is scaled to N), SCALE the sizes of the scale run ("" skips it).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
N=${N:-1000}
LOOP_N=${LOOP_N:-$N}
SCALE=${SCALE-10000 100000}
command -v dig >/dev/null && [ -x /usr/bin/time ] && command -v bc >/dev/null ||
  { apt-get update -qq && apt-get install -y -qq bind9-dnsutils time bc; }
source host/benches/results.sh
bench_results alias_monitor_vs_dig "$(dig -v 2>&1 | head -1)"
cargo build -q --release -p roost -p roost-tests --bin roost --bin dns-fixture
bin=$root/target/release/roost
dir=$(mktemp -d)
fixture=
stop_fixture() { if [ -n "$fixture" ]; then exec 3>&-; wait "$fixture" 2>/dev/null || true; fi; }
trap 'stop_fixture; rm -rf "$dir"' EXIT
start_fixture() { # COUNT: serve COUNT aliases (a fresh fixture), set $addr, $host, $port
  stop_fixture
  rm -f "$dir/stdin" "$dir/addr"
  mkfifo "$dir/stdin"
  "$root/target/release/dns-fixture" --bench-names "$1" <"$dir/stdin" >"$dir/addr" &
  fixture=$!
  exec 3>"$dir/stdin" # the fixture serves until its stdin closes
  for _ in $(seq 100); do [ -s "$dir/addr" ] && break; sleep 0.1; done
  addr=$(cat "$dir/addr")
  host=${addr%:*} port=${addr##*:}
  echo "== DNS fixture on $addr serving $1 aliases"
  python3 - "$dir/config/roost.toml" "$addr" <<'PY'
import sys
path, addr = sys.argv[1], sys.argv[2]
text = open(path).read()
cut = text.index("[plugins.alias-monitor")
text = text[:cut] + f"""[plugins.alias-monitor.grants]
dns_servers = ["{addr}"]
dns_queries_per_minute = 1000000
[plugins.alias-monitor.limits]
call_timeout_ms = 600000
memory_mb = 256
[plugins.alias-monitor.config]
servers = ["{addr}"]
"""
open(path, "w").write(text)
PY
}
(cd "$dir" && "$bin" init >/dev/null)
start_fixture "$N"
seq 0 $((N - 1)) | sed 's/^/name/; s/$/.bench.test/' >"$dir/names"
head -n "$LOOP_N" "$dir/names" >"$dir/loop.names"

measure() { # label, command…: "seconds peak_kib cpu_seconds", stdout kept in $dir/out.<label>
  local label=$1; shift
  /usr/bin/time -f "%e %M %U %S" -o "$dir/time.$label" "$@" >"$dir/out.$label"
  awk '{print $1, $2, $3 + $4}' "$dir/time.$label"
}
ratio() { echo "scale=2; $1 / $2" | bc; }
# CPU seconds the DNS server has used so far: what one run cost it is the difference. On 2
# cores the client and the server share the machine, so their sum bounds the wall time.
tick=$(getconf CLK_TCK)
server_cpu() { awk -v t="$tick" '{printf "%.2f", ($14 + $15) / t}' "/proc/$fixture/stat"; }
minus() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a - b}'; }

# The first run compiles the plugin into this config's cache; it is not counted.
(cd "$dir" && "$bin" invoke alias-monitor check name0.bench.test >/dev/null)
read -r one_sec one_kib _ < <(cd "$dir" && measure roost-one "$bin" invoke alias-monitor check name0.bench.test)
s0=$(server_cpu)
read -r r_sec r_kib r_cpu < <(cd "$dir" && measure roost xargs -a names "$bin" invoke alias-monitor check)
r_server=$(minus "$(server_cpu)" "$s0")
summary=$(tail -n 1 "$dir/out.roost")
grep -q "^checked $N names" <<<"$summary" || { echo "unexpected roost output: $summary"; exit 1; }
problems=$(grep -cE "^(error|warning):" "$dir/out.roost" || true)
[ "$problems" = 0 ] || { echo "roost found problems in healthy aliases"; exit 1; }

while read -r n; do
  printf '%s SOA\n%s CNAME\napp.hosted.test A\napp.hosted.test AAAA\n' "$n" "$n"
done <"$dir/names" >"$dir/queries"
s0=$(server_cpu)
read -r d_sec d_kib d_cpu < <(measure dig-f dig @"$host" -p "$port" +norecurse +tries=1 +time=2 -f "$dir/queries")
d_server=$(minus "$(server_cpu)" "$s0")
answered=$(grep -c "status: NOERROR" "$dir/out.dig-f" || true)

: >"$dir/loop.ms"
loop_start=$(date +%s%N)
while read -r n; do
  t0=$(date +%s%N)
  dig @"$host" -p "$port" +norecurse +tries=1 +short "$n" CNAME >/dev/null
  echo $((($(date +%s%N) - t0) / 1000)) >>"$dir/loop.ms"
done <"$dir/loop.names"
loop_sec=$(echo "scale=2; ($(date +%s%N) - $loop_start) * $N / $LOOP_N / 1000000000" | bc)
sort -n "$dir/loop.ms" >"$dir/loop.sorted"
loop_med=$(sed -n "$(((LOOP_N + 1) / 2))p" "$dir/loop.sorted")
loop_p99=$(sed -n "$(((LOOP_N * 99 + 99) / 100))p" "$dir/loop.sorted")

echo
echo "roost: $summary"
echo "roost: ${r_sec} s wall for the invoke (startup included), ${r_cpu} s CPU (the server's: ${r_server} s), peak RSS $((r_kib / 1024)) MiB ($((one_kib / 1024)) MiB for one name, ${one_sec} s)"
echo "dig -f: ${d_sec} s for $((N * 4)) queries ($answered NOERROR), ${d_cpu} s CPU (the server's: ${d_server} s), peak RSS $((d_kib / 1024)) MiB"
echo "dig per name: ${loop_sec} s for $N names (timed on $LOOP_N), per name median $((loop_med / 1000)).$(printf %03d $((loop_med % 1000))) ms, p99 $((loop_p99 / 1000)).$(printf %03d $((loop_p99 % 1000))) ms"
echo
queries=$(sed -n 's/.*; \([0-9]*\) queries$/\1/p' <<<"$summary")
qps() { echo "scale=0; $1 / $2" | bc; }
printf "%-34s %9s %9s %11s %10s\n" tool seconds queries "queries/s" "÷ roost"
printf "%-34s %9s %9s %11s %10s\n" "roost check ($N names, one run)" "$r_sec" "$queries" "$(qps "$queries" "$r_sec")" 1
printf "%-34s %9s %9s %11s %10s\n" "dig -f (4 queries per name)" "$d_sec" $((N * 4)) "$(qps $((N * 4)) "$d_sec")" "$(ratio "$d_sec" "$r_sec")"
printf "%-34s %9s %9s %11s %10s\n" "dig, one process per name" "$loop_sec" "$N" "$(qps "$N" "$loop_sec")" "$(ratio "$loop_sec" "$r_sec")"

[ -n "$SCALE" ] || exit 0
echo
echo "== roost alone at scale (a fixture serving the largest size)"
most=0
for n in $SCALE; do [ "$n" -gt "$most" ] && most=$n; done
start_fixture "$most"
(cd "$dir" && "$bin" invoke alias-monitor check name0.bench.test >/dev/null)
printf "%-10s %9s %9s %12s\n" names seconds "names/s" "peak RSS"
for n in $SCALE; do
  seq 0 $((n - 1)) | sed 's/^/name/; s/$/.bench.test/' >"$dir/scale.names"
  # One invoke per 25,000 names keeps each command line under the kernel's limit.
  read -r s_sec s_kib _ < <(cd "$dir" && measure scale xargs -n 25000 -a scale.names "$bin" invoke alias-monitor check)
  [ "$(grep -cE "^(error|warning):" "$dir/out.scale" || true)" = 0 ] || { echo "roost found problems at $n"; exit 1; }
  printf "%-10s %9s %9s %9s MiB\n" "$n" "$s_sec" "$(qps "$n" "$s_sec")" $((s_kib / 1024))
done
