# The README's commands. Each runs `make setup` first.
#   make up     build and start what Strata has today (a store member), Ctrl-C stops it
#   make test   the whole test suite (unit, integration, etcdctl, kill -9)
#   make bench  criterion micro-benchmarks

CARGO ?= cargo
DATA_DIR ?= .strata
PORT ?= 2379

.PHONY: setup build up test bench fmt lint clean

setup:
	@./scripts/setup.sh

build: setup
	$(CARGO) build --bin strata

up: build
	@echo "Starting a one-member Strata store on http://127.0.0.1:$(PORT) (data in $(DATA_DIR)); Ctrl-C stops it."
	@echo "Try:  ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:$(PORT) put hello world"
	./target/debug/strata store --name n1 --data-dir $(DATA_DIR)/n1 \
		--listen-client-urls http://127.0.0.1:$(PORT) --advertise-client-urls http://127.0.0.1:$(PORT) \
		--listen-peer-urls http://127.0.0.1:$$(($(PORT)+1)) --initial-advertise-peer-urls http://127.0.0.1:$$(($(PORT)+1))

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
