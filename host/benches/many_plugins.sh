#!/usr/bin/env bash
# How the hub's costs grow with its plugins (host/benches/many_plugins.rs): the bot plus 0,
# 10 and 50 copies of the hello example, each loaded cold (empty compile cache) and then
# warm: load time, resident memory, the !ping round trip. Results in
# target/bench/many_plugins.txt. Usage (repo root):
#   bash host/benches/many_plugins.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source host/benches/results.sh
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
cargo build -q --release --manifest-path plugins/Cargo.toml --target wasm32-wasip2 \
  --target-dir target/wasm-plugins -p hello
export HELLO_WASM=$PWD/target/wasm-plugins/wasm32-wasip2/release/hello.wasm
cargo build -q --release -p roost --bench many_plugins
bench_results many_plugins
for n in 0 10 50; do
  dir=$(mktemp -d)
  cargo bench -q -p roost --bench many_plugins -- "$n" "$dir" 2>/dev/null | grep plugins=
  cargo bench -q -p roost --bench many_plugins -- "$n" "$dir" 2>/dev/null | grep plugins=
  rm -rf "$dir"
done
