# The README's commands. Each runs `make setup` first.
#   make up     build and run `strata up` (store members, apiserver, scheduler, controller-manager, kubelets), Ctrl-C stops it
#   make test   the whole test suite (unit, integration, etcdctl, kill -9)
#   make bench  etcd vs Strata, three members each (strata bench compare): bench-report/report.md and charts
#   make bench-micro  the criterion micro-benchmarks

CARGO ?= cargo
DATA_DIR ?= strata-data

.PHONY: setup build up test bench bench-micro fmt lint clean

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

# A release build (its own RocksDB compile the first time), then the comparison: a fresh
# three-member etcd (Debian's etcd-server) and a fresh three-member Strata on loopback, the same
# workloads against each in turn. BENCH_ARGS adds flags, e.g. BENCH_ARGS="--rounds 3".
BENCH_ARGS ?=
bench: setup
	$(CARGO) build --release --bin strata
	./target/release/strata bench compare --out-dir bench-report $(BENCH_ARGS)

bench-micro: setup
	$(CARGO) bench -p strata-bench --benches

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
