# Sourced by every bench script. `bench_results NAME "tool version"…` writes what the
# figures depend on (commit, CPU, cores, date, peer tool versions) at the top of
# target/bench/NAME.txt (target/bench/quick/ for `make bench-quick`), then copies everything the script prints after it into that file,
# so BENCHMARKS.md is filled from files anyone can regenerate.
bench_results() {
  local name=$1
  shift
  local repo
  repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  # `make bench-quick` (BENCH_QUICK=1) runs smaller sizes: its files go apart.
  local dir=$repo/target/bench
  [ "${BENCH_QUICK:-0}" = 1 ] && dir=$dir/quick
  mkdir -p "$dir"
  RESULTS="$dir/$name.txt"
  {
    echo "# $name"
    echo "commit: $(git -C "$repo" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
    echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
    echo "cores: $(nproc)"
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "roost: $(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)"
    [ "${BENCH_QUICK:-0}" = 1 ] && echo "quick: smaller sizes (make bench-quick)"
    local tool
    for tool in "$@"; do echo "peer: $tool"; done
    echo
  } >"$RESULTS"
  exec > >(tee -a "$RESULTS")
}
