#!/usr/bin/env bash
# Starts a three-member Strata store cluster on loopback (etcd's Procfile layout: client ports
# 2379, 22379, 32379; peer ports 2380, 22380, 32380), data in $DATA_DIR/n1..n3, and stops every
# member cleanly on Ctrl-C. Used by `make up`.
set -euo pipefail
BIN=${BIN:-./target/debug/strata}
DATA_DIR=${DATA_DIR:-.strata}
CLIENT_PORTS=(2379 22379 32379)
PEER_PORTS=(2380 22380 32380)
cluster=""
for i in 0 1 2; do
  cluster+="${cluster:+,}n$((i+1))=http://127.0.0.1:${PEER_PORTS[$i]}"
done
pids=()
stop() {
  echo "Stopping the cluster..."
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait || true
}
trap stop INT TERM
mkdir -p "$DATA_DIR"
for i in 0 1 2; do
  name="n$((i+1))"
  "$BIN" store --name "$name" --data-dir "$DATA_DIR/$name" \
    --listen-client-urls "http://127.0.0.1:${CLIENT_PORTS[$i]}" \
    --advertise-client-urls "http://127.0.0.1:${CLIENT_PORTS[$i]}" \
    --listen-peer-urls "http://127.0.0.1:${PEER_PORTS[$i]}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${PEER_PORTS[$i]}" \
    --initial-cluster "$cluster" 2> >(sed -u "s/^/[$name] /" >&2) &
  pids+=($!)
done
endpoints="127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379"
echo "Three-member Strata store starting (data in $DATA_DIR). Ctrl-C stops it."
echo "Try:  ETCDCTL_API=3 etcdctl --endpoints=$endpoints endpoint status -w table"
echo "      ETCDCTL_API=3 etcdctl --endpoints=$endpoints put hello world"
wait
