#!/usr/bin/env bash
# Failover between two hubs on one Postgres (tests/benches/failover.rs): kill -9 of the
# leader 20 times, the time until the standby answers !ping; then a standby's idle RSS and
# CPU next to the leader's. Postgres: the throwaway cluster the tests use (initdb from the
# system packages), or ROOST_TEST_PG. Results in target/bench/failover.txt. Usage (repo root):
#   bash host/benches/failover.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source host/benches/results.sh
cargo build -q --release -p roost -p roost-tests --bench failover --bins
initdb=$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)
bench_results failover "postgres $("$initdb" --version | awk '{print $3}')"
cargo bench -q -p roost-tests --bench failover 2>/dev/null | grep -v '^$'
