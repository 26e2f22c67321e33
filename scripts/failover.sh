#!/usr/bin/env bash
# Failover time: starts a three-member Strata cluster (release build) on loopback with default
# timeouts, then five times kills the leader with SIGKILL and measures how long until a write is
# acknowledged by the survivors (etcdctl put with a 150 ms deadline in a loop; etcdctl's own
# start-up is included), restarting the killed member each time. Usage: scripts/failover.sh
set -euo pipefail
B=${BIN:-$PWD/target/release/strata}
DIR=${FAILOVER_DIR:-/tmp/strata-failover}
IC="m1=http://127.0.0.1:51011,m2=http://127.0.0.1:51021,m3=http://127.0.0.1:51031"
export ETCDCTL_API=3
rm -rf "$DIR"; mkdir -p "$DIR"; cd "$DIR"
start() {
  "$B" store --name "m$1" --data-dir "m$1" --listen-client-urls "http://127.0.0.1:510${1}0" \
    --advertise-client-urls "http://127.0.0.1:510${1}0" --listen-peer-urls "http://127.0.0.1:510${1}1" \
    --initial-advertise-peer-urls "http://127.0.0.1:510${1}1" --initial-cluster "$IC" >> "m$1.log" 2>&1 &
}
trap 'pkill -f "strata store --name m[123] --data-dir m[123]" || true' EXIT
for i in 1 2 3; do start $i; done
for i in 1 2 3; do until curl -sf "127.0.0.1:510${i}0/health" >/dev/null; do sleep 0.1; done; done
for t in 1 2 3 4 5; do
  L=""
  for i in 1 2 3; do curl -s "127.0.0.1:510${i}0/metrics" | grep -q "^etcd_server_is_leader 1" && L=$i; done
  if [ -z "$L" ]; then sleep 1; continue; fi
  PID=$(pgrep -f "listen-client-urls http://127.0.0.1:510${L}0 ")
  O=$(( L % 3 + 1 )); O2=$(( O % 3 + 1 ))
  T0=$(date +%s%N); kill -9 "$PID"
  until etcdctl --endpoints="127.0.0.1:510${O}0,127.0.0.1:510${O2}0" --command-timeout=150ms put x y >/dev/null 2>&1; do :; done
  T1=$(date +%s%N)
  echo "trial $t: killed m$L, writes resumed after $(( (T1 - T0) / 1000000 )) ms"
  start "$L"
  until curl -sf "127.0.0.1:510${L}0/health" >/dev/null; do sleep 0.1; done
  sleep 2
done
