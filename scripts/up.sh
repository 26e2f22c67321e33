#!/usr/bin/env bash
# Starts a three-member Strata store cluster on loopback (etcd's Procfile layout: client ports
# 2379, 22379, 32379; peer ports 2380, 22380, 32380), data in $DATA_DIR/n1..n3, and the
# apiserver over it on https://127.0.0.1:6443 with a generated CA, signing key, admin token and
# $DATA_DIR/kubeconfig. Ctrl-C stops everything cleanly. Used by `make up`.
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
API_PORT=${API_PORT:-6443}
mkdir -p "$DATA_DIR/apiserver"
token=$("$BIN" token --key-file "$DATA_DIR/apiserver/sa.key" --create-key --user admin --group system:masters --ttl 31536000)
"$BIN" apiserver --etcd-servers "http://127.0.0.1:2379,http://127.0.0.1:22379,http://127.0.0.1:32379" \
  --secure-port "$API_PORT" --cert-dir "$DATA_DIR/apiserver" \
  --service-account-key-file "$DATA_DIR/apiserver/sa.key" 2> >(sed -u "s/^/[apiserver] /" >&2) &
pids+=($!)
for _ in $(seq 1 100); do [ -f "$DATA_DIR/apiserver/ca.crt" ] && break; sleep 0.1; done
abs_dir=$(cd "$DATA_DIR" && pwd)
cat > "$DATA_DIR/kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: strata
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority: $abs_dir/apiserver/ca.crt
users:
- name: admin
  user:
    token: $token
contexts:
- name: strata
  context:
    cluster: strata
    user: admin
current-context: strata
KUBECONFIG
echo "Three-member Strata store and the apiserver starting (data in $DATA_DIR). Ctrl-C stops them."
echo "Try:  KUBECONFIG=$abs_dir/kubeconfig kubectl get namespaces"
echo "Try:  ETCDCTL_API=3 etcdctl --endpoints=$endpoints endpoint status -w table"
echo "      ETCDCTL_API=3 etcdctl --endpoints=$endpoints put hello world"
wait
