#!/usr/bin/env bash
# The `!ping` round trip of this checkout against another commit (default: 2e18b3d, the
# last commit before the hardening), both built in release into one target dir and run
# alternately five times each, so both see the same machine. Usage:
#   bash host/benches/round_trip_vs.sh [COMMIT]
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
base=${1:-2e18b3d}
target=$root/target/bench/round-trip-target
old=$root/target/bench/round-trip-$base
source host/benches/results.sh
[ -d "$old" ] || git worktree add -f "$old" "$base" >/dev/null
build() {  # prints the bench executable built from the checkout in $1
  (cd "$1" && CARGO_TARGET_DIR=$target cargo bench -q -p roost --bench round_trip --no-run \
    --message-format=json 2>/dev/null) |
    sed -n 's/.*"executable":"\([^"]*round_trip[^"]*\)".*/\1/p' | tail -1
}
old_bin=$(build "$old")
new_bin=$(build "$root")
bench_results round_trip_vs "roost at $base"
for round in 1 2 3 4 5; do
  echo "round $round"
  echo "  $base: $("$old_bin" --bench 2>/dev/null | grep median)"
  echo "  this:  $("$new_bin" --bench 2>/dev/null | grep median)"
done
