#!/bin/bash
# kill -9 the leader of the release cluster in /tmp/sb, 5 times; print time until a put succeeds.
B=/work/main/target/release/strata
IC="m1=http://127.0.0.1:51011,m2=http://127.0.0.1:51021,m3=http://127.0.0.1:51031"
export ETCDCTL_API=3
for t in 1 2 3 4 5; do
  L=""; for i in 1 2 3; do curl -s 127.0.0.1:510${i}0/metrics | grep -q "^etcd_server_is_leader 1" && L=$i; done
  [ -z "$L" ] && { sleep 1; continue; }
  PID=$(pgrep -f "listen-client-urls http://127.0.0.1:510${L}0 ")
  O=$(( L % 3 + 1 )); O2=$(( O % 3 + 1 ))
  T0=$(date +%s%N); kill -9 $PID
  until etcdctl --endpoints=127.0.0.1:510${O}0,127.0.0.1:510${O2}0 --command-timeout=150ms put x y >/dev/null 2>&1; do :; done
  T1=$(date +%s%N)
  echo "trial $t: killed m$L, writes resumed after $(( (T1 - T0) / 1000000 )) ms"
  RUST_LOG=info $B store --name m$L --data-dir m$L --listen-client-urls http://127.0.0.1:510${L}0 --advertise-client-urls http://127.0.0.1:510${L}0 --listen-peer-urls http://127.0.0.1:510${L}1 --initial-advertise-peer-urls http://127.0.0.1:510${L}1 --initial-cluster $IC >> m$L.log 2>&1 &
  until curl -sf 127.0.0.1:510${L}0/health >/dev/null; do sleep 0.1; done; sleep 2
done
