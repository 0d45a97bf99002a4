# The README's two commands are `make run` and `make test`; both install what they need.
CARGO ?= cargo
CONFIG ?= config/roost.toml

.PHONY: setup run build test lint bench

## Toolchain pieces the build needs (idempotent, quick when already there).
setup:
	rustup target add wasm32-wasip2

## Build the host in release (first-party plugins are built and embedded) and run the
## daemon on the default config: SQLite in ./data, the console gateway, the bot plugin.
run: setup
	$(CARGO) run --release -p roost -- --config $(CONFIG) run

## Release binary at target/release/roost.
build: setup
	$(CARGO) build --release -p roost

## Every test: unit tests, then end-to-end tests that drive the real binary.
test: setup
	$(CARGO) build -p roost --bin roost
	$(CARGO) test --workspace --no-fail-fast

lint: setup
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench: setup
	bash host/benches/side_by_side.sh
