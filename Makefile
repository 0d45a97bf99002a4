# The README's two commands are `make run` and `make test`; both install what they need.
CARGO ?= cargo
CONFIG ?= config/roost.toml

.PHONY: setup test-deps run build test lint bench bench-quick

HOST_TRIPLE := $(shell rustc -vV | sed -n 's/^host: //p')

## Toolchain pieces the build needs (idempotent, quick when already there).
setup:
	rustup target add wasm32-wasip2

## What the tests need beyond the toolchain: the real sqlite3 shell (db-diff applies its
## diffs with it), sqldiff (sqlite3-tools; db-diff's changesets are compared with its
## own), libclang (rusqlite's `session` feature, which db-diff's tests apply changesets
## with, generates its bindings at build time), pytest (test-watcher's end-to-end tests
## run it, and so does the Python SDK's suite), Chromium (the status page is tested in a
## real headless browser) and Postgres (the store's cases run on it too: without a
## ROOST_TEST_PG URL the tests start a throwaway cluster with its initdb and pg_ctl, found on
## PATH or in /usr/lib/postgresql/<version>/bin, and remove it afterwards).
test-deps:
	command -v sqlite3 >/dev/null || (apt-get update -qq && apt-get install -y -qq sqlite3)
	command -v sqldiff >/dev/null && ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq --no-install-recommends sqlite3-tools libclang1-14 libclang-common-14-dev)
	command -v pytest >/dev/null || (apt-get update -qq && apt-get install -y -qq python3-pytest)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	[ -n "$$ROOST_TEST_PG" ] || command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql)

## Build the host in release (first-party plugins are built and embedded) and run the
## daemon on the default config: SQLite in ./data, the console gateway, the bot plugin.
run: setup
	$(CARGO) run --release -p roost -- --config $(CONFIG) run

## Release binary at target/release/roost.
build: setup
	$(CARGO) build --release -p roost

## Every test: the plugins' own tests (native), the Python SDK's and the Python example's
## (plain CPython, no wasm), then the host's unit tests and the end-to-end tests that drive
## the real binary (built with the `unify_features` example, so the tests reuse its crates:
## tests/examples/unify_features.rs says why).
test: setup test-deps
	cd plugins && $(CARGO) test --locked --target $(HOST_TRIPLE) --no-fail-fast
	pytest -q -p no:cacheprovider plugins/sdk-python plugins/examples/python
	$(CARGO) build --locked --workspace --bin roost --example unify_features
	$(CARGO) test --locked --workspace --doc
	$(CARGO) test --locked --workspace --lib --bins --tests --no-fail-fast

lint: setup
	$(CARGO) fmt --all --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	cd plugins && $(CARGO) fmt --all --check && $(CARGO) clippy --locked --release -- -D warnings

## Every row BENCHMARKS.md carries, each beside its peer: 94 minutes on 2 cores from an
## empty target directory (mostly release builds), results in target/bench/.
bench: setup
	bash host/benches/side_by_side.sh
	bash host/benches/round_trip_vs.sh
	bash host/benches/db_diff_vs_sqldiff.sh
	bash host/benches/alias_monitor_vs_dig.sh
	bash host/benches/test_watcher_vs_ptw.sh
	N=10 IDLE_S=10 FILES=500000 bash host/benches/test_watcher_vs_ptw.sh
	bash host/benches/discord_vs_serenity.sh
	bash host/benches/python_vs_errbot.sh
	bash host/benches/web_vs_native.sh
	bash host/benches/store_sqlite_vs_postgres.sh
	bash host/benches/many_plugins.sh
	bash host/benches/busy_neighbour.sh
	bash host/benches/failover.sh

## The rows that allow smaller sizes, in under 5 minutes once the release build is there
## (a first run builds it): quick figures to compare two commits, in target/bench/quick/.
## `make bench` gives the figures BENCHMARKS.md carries.
bench-quick: setup
	cargo build -q --release -p roost -p roost-tests --bin roost --bin dns-fixture
	BENCH_QUICK=1 bash host/benches/side_by_side.sh
	BENCH_QUICK=1 LOOP_N=100 SCALE=10000 bash host/benches/alias_monitor_vs_dig.sh
	BENCH_QUICK=1 N=20 IDLE_S=5 FILES=5000 bash host/benches/test_watcher_vs_ptw.sh
	BENCH_QUICK=1 SIZES=1000000 bash host/benches/db_diff_vs_sqldiff.sh
