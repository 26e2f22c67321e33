# The README's commands. Each runs `make setup` first.
#   make up     build and run `strata up` (store members, apiserver, scheduler, controller-manager, kubelets), Ctrl-C stops it
#   make test   the whole test suite (unit, integration, etcdctl, kill -9)
#   make bench  criterion micro-benchmarks

CARGO ?= cargo
DATA_DIR ?= strata-data

.PHONY: setup build up test bench fmt lint clean

setup:
	@./scripts/setup.sh

build: setup
	$(CARGO) build --bin strata

up: build
	./target/debug/strata up --data-dir $(DATA_DIR)

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
