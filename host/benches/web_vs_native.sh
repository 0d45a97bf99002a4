#!/usr/bin/env bash
# The HTTP figures against their peers in one run (tests/benches/web.rs): a plugin's GET
# against native reqwest, webhook in → plugin → outbox against a bare hyper server, and the
# idle RSS the HTTP server adds. Results in target/bench/web.txt. Usage (repo root):
#   bash host/benches/web_vs_native.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source host/benches/results.sh
cargo build -q --release -p roost -p roost-tests --benches --bins
bench_results web "reqwest $(sed -n '/^name = "reqwest"/{n;s/version = //p}' Cargo.lock | tr -d '"')" \
  "axum $(sed -n '/^name = "axum"/{n;s/version = //p}' Cargo.lock | head -1 | tr -d '"')"
cargo bench -q -p roost-tests --bench web 2>/dev/null | grep -v '^$'
