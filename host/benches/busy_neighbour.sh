#!/usr/bin/env bash
# The !ping round trip while another plugin spins (host/benches/busy_neighbour.rs), with one
# runtime worker and with tokio's default (one per core): what the number of workers costs
# a plugin's neighbours. Results in target/bench/busy_neighbour.txt. Usage (repo root):
#   bash host/benches/busy_neighbour.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source host/benches/results.sh
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
cargo build -q --release --manifest-path tests/plugins/Cargo.toml --target wasm32-wasip2 \
  --target-dir target/wasm-plugins -p faulty
export FAULTY_WASM=$PWD/target/wasm-plugins/wasm32-wasip2/release/faulty.wasm
cargo build -q --release -p roost --bench busy_neighbour
bench_results busy_neighbour
for round in 1 2 3; do
  for workers in 1 default; do
    dir=$(mktemp -d)
    if [ "$workers" = 1 ]; then
      TOKIO_WORKER_THREADS=1 cargo bench -q -p roost --bench busy_neighbour -- "$dir" 2>/dev/null | grep workers=
    else
      env -u TOKIO_WORKER_THREADS cargo bench -q -p roost --bench busy_neighbour -- "$dir" 2>/dev/null | grep workers=
    fi
    rm -rf "$dir"
  done
done
