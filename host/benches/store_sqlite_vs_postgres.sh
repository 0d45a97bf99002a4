#!/usr/bin/env bash
# The store on SQLite and on Postgres side by side (host/benches/store.rs): KV set/get
# latency, concurrent KV writes, outbox push and drain. Postgres: a throwaway cluster
# (initdb from the system packages) with fsync on. Results in
# target/bench/store.txt. Usage (repo root):
#   bash host/benches/store_sqlite_vs_postgres.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source host/benches/results.sh
cargo build -q --release -p roost --bench store
initdb=$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)
bench_results store "postgres $("$initdb" --version | awk '{print $3}')" \
  "sqlite $(sed -n '/^name = "libsqlite3-sys"/{n;s/version = //p}' Cargo.lock | tr -d '"') (libsqlite3-sys, bundled)"
cargo bench -q -p roost --bench store 2>/dev/null | grep -v '^$'
