#!/usr/bin/env bash
# Three-member etcd vs three-member Strata on loopback, same client (strata bench), fresh data
# directories each round. Usage: scripts/bench-cluster.sh [rounds]   (needs a release build and
# Debian's etcd-server). Prints one JSON line per run: server, workload, round, then the report.
set -euo pipefail
ROUNDS=${1:-2}
BIN=${BIN:-./target/release/strata}
DIR=${BENCH_DIR:-/tmp/strata-bench-cluster}
pids=()
cleanup() { for p in "${pids[@]:-}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
trap cleanup EXIT

start_cluster() { # $1 = etcd|strata ; $2 = base port
  local kind=$1 base=$2 cluster="" i
  rm -rf "$DIR/$kind"; mkdir -p "$DIR/$kind"
  for i in 1 2 3; do cluster+="${cluster:+,}m$i=http://127.0.0.1:$((base + i * 10 + 1))"; done
  for i in 1 2 3; do
    local c="http://127.0.0.1:$((base + i * 10))" p="http://127.0.0.1:$((base + i * 10 + 1))"
    local args=(--name "m$i" --data-dir "$DIR/$kind/m$i" --listen-client-urls "$c" --advertise-client-urls "$c"
      --listen-peer-urls "$p" --initial-advertise-peer-urls "$p" --initial-cluster "$cluster"
      --initial-cluster-state new)
    if [ "$kind" = etcd ]; then
      etcd "${args[@]}" > "$DIR/$kind/m$i.log" 2>&1 &
    else
      "$BIN" store "${args[@]}" > "$DIR/$kind/m$i.log" 2>&1 &
    fi
    pids+=($!)
  done
  ENDPOINTS="127.0.0.1:$((base + 10)),127.0.0.1:$((base + 20)),127.0.0.1:$((base + 30))"
  for _ in $(seq 1 100); do
    ETCDCTL_API=3 etcdctl --endpoints="$ENDPOINTS" --command-timeout=1s put bench-ready 1 >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "cluster $kind did not start" >&2; exit 1
}

run() { # server workload args...
  local server=$1 name=$2; shift 2
  local out; out=$("$BIN" bench --endpoints "$ENDPOINTS" --json "$@")
  echo "{\"server\":\"$server\",\"workload\":\"$name\",\"round\":$round,\"report\":$out}"
}

for round in $(seq 1 "$ROUNDS"); do
  for kind in etcd strata; do
    if [ "$kind" = etcd ]; then base=41000; else base=51000; fi
    start_cluster "$kind" "$base"
    run "$kind" put-100 --clients 100 --conns 10 put --total 30000 --val-size 256 --key-size 8 --key-space-size 100000
    run "$kind" put-1 --clients 1 --conns 1 put --total 3000 --val-size 256 --key-size 8 --key-space-size 100000
    run "$kind" range-l-100 --clients 100 --conns 10 range bench-ready --total 30000 --consistency l
    run "$kind" range-s-100 --clients 100 --conns 10 range bench-ready --total 30000 --consistency s
    cleanup
  done
done
