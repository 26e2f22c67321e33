# The README's commands. Each runs `make setup` first.
#   make up     build and start what Strata has today (three store members and the apiserver), Ctrl-C stops it
#   make test   the whole test suite (unit, integration, etcdctl, kill -9)
#   make bench  criterion micro-benchmarks

CARGO ?= cargo
DATA_DIR ?= .strata

.PHONY: setup build up test bench fmt lint clean

setup:
	@./scripts/setup.sh

build: setup
	$(CARGO) build --bin strata

up: build
	DATA_DIR=$(DATA_DIR) ./scripts/up.sh

# One build profile (dev, optimised in Cargo.toml) for the binary and the tests, so RocksDB is
# compiled once. The tests start the binary, so it is built first.
test: setup
	$(CARGO) build --bin strata
	$(CARGO) test --workspace --no-fail-fast

bench: setup
	$(CARGO) bench -p strata-bench --benches

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
