#!/usr/bin/env bash
# The apiserver's performance figures: a three-member store, the apiserver over it, then
#   1. watch fan-out: $WATCHERS HTTP watchers on pods while $RATE pod updates/s run for $DURATION s
#      (delivery latency per event, apiserver RSS before/with/after the watchers);
#   2. a consistent list of $OBJECTS pods, $LISTS times.
# Usage: scripts/bench-apiserver.sh   (release build: cargo build --release --bin strata)
set -euo pipefail
BIN=${BIN:-./target/release/strata}
WATCHERS=${WATCHERS:-1000}
RATE=${RATE:-200}
DURATION=${DURATION:-30}
OBJECTS=${OBJECTS:-10000}
LISTS=${LISTS:-50}
dir=$(mktemp -d /tmp/strata-bench-api.XXXXXX)
ulimit -n 65536 2>/dev/null || true
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
cluster="n1=http://127.0.0.1:42381,n2=http://127.0.0.1:42382,n3=http://127.0.0.1:42383"
for i in 0 1 2; do
  "$BIN" store --name "n$((i+1))" --data-dir "$dir/n$((i+1))" \
    --listen-client-urls "http://127.0.0.1:4237$((i+1))" --advertise-client-urls "http://127.0.0.1:4237$((i+1))" \
    --listen-peer-urls "http://127.0.0.1:4238$((i+1))" --initial-advertise-peer-urls "http://127.0.0.1:4238$((i+1))" \
    --initial-cluster "$cluster" 2>"$dir/n$((i+1)).log" &
  pids+=($!)
done
token=$("$BIN" token --key-file "$dir/sa.key" --create-key --user admin --group system:masters)
"$BIN" apiserver --etcd-servers http://127.0.0.1:42371,http://127.0.0.1:42372,http://127.0.0.1:42373 \
  --secure-port 46443 --cert-dir "$dir/certs" --service-account-key-file "$dir/sa.key" ${APISERVER_ARGS:-} 2>"$dir/apiserver.log" &
api=$!
pids+=($api)
for _ in $(seq 1 300); do
  curl -sf --cacert "$dir/certs/ca.crt" -H "Authorization: Bearer $token" https://127.0.0.1:46443/readyz >/dev/null 2>&1 && break
  sleep 0.1
done
common=(--server https://127.0.0.1:46443 --token "$token" --ca "$dir/certs/ca.crt" --pid "$api")
echo "== watch fan-out: $WATCHERS watchers, $RATE updates/s, ${DURATION}s"
[ "${SKIP_WATCH:-}" = 1 ] || "$BIN" bench apiserver "${common[@]}" --namespace fanout watch --watchers "$WATCHERS" --rate "$RATE" --duration "$DURATION"
echo "== list of $OBJECTS pods"
[ "${SKIP_LIST:-}" = 1 ] || "$BIN" bench apiserver "${common[@]}" --namespace big list --objects "$OBJECTS" --total "$LISTS"
