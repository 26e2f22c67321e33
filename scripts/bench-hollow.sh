#!/usr/bin/env bash
# The hollow-node density benchmark (kubemark's test): `strata up --runtime sim` with NODES
# hollow nodes (one kubelet process), then PODS pods created at RATE/s, measured against the
# Kubernetes SLOs (p99 mutating API call latency < 1 s, p99 pod startup latency < 5 s) and
# the scheduler-throughput target (>= 100 pods/s). Everything runs on this machine, so the
# figures include the load generator and all components sharing its cores.
#
#   NODES=1000 PODS=30000 RATE=100 scripts/bench-hollow.sh
set -euo pipefail
BIN=${BIN:-./target/release/strata}
NODES=${NODES:-1000}
PODS=${PODS:-30000}
RATE=${RATE:-100}
PORT=${PORT:-16443}
DATA_DIR=${DATA_DIR:-$(mktemp -d /tmp/strata-hollow.XXXXXX)}
CLIENT_PORTS=${CLIENT_PORTS:-12379,22379,32379}
PEER_PORTS=${PEER_PORTS:-12380,22380,32380}
[ -x "$BIN" ] || { echo "build first: cargo build --release --bin strata (or BIN=...)"; exit 1; }

"$BIN" up --data-dir "$DATA_DIR" --runtime sim --nodes "$NODES" --port "$PORT" \
  --store-client-ports "$CLIENT_PORTS" --store-peer-ports "$PEER_PORTS" > "$DATA_DIR.up.log" 2>&1 &
up=$!
trap 'kill -INT $up 2>/dev/null; wait $up 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  grep -q "export KUBECONFIG" "$DATA_DIR.up.log" 2>/dev/null && break
  kill -0 $up 2>/dev/null || { cat "$DATA_DIR.up.log"; exit 1; }
  sleep 1
done
grep -q "export KUBECONFIG" "$DATA_DIR.up.log" || { echo "cluster not up"; cat "$DATA_DIR.up.log"; exit 1; }
token=$(awk '/token:/ {print $2}' "$DATA_DIR/kubeconfig")
"$BIN" bench apiserver --server "https://127.0.0.1:$PORT" --ca "$DATA_DIR/apiserver/ca.crt" --token "$token" \
  --namespace density density --pods "$PODS" --rate "$RATE" --timeout 300
echo "data and logs: $DATA_DIR"
