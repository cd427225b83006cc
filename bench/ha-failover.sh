#!/usr/bin/env bash
# High-availability failover times (REAL processes, fake devices): runs
# cmd/switchd's TestHAFailover RUNS times (default 5) — three switchd
# binaries, a real etcd (Debian's etcd-server) and a real Mosquitto on
# loopback, six fake LuxOS miners, lease TTL 3s — and prints one Markdown
# row per run: how long after a SIGKILL of the leader a new one was
# elected, how long after a SIGSTOP of the next leader the third instance
# had commanded the miners (election + first command batch), and the fence
# checks the woken ex-leader failed. Needs Go, etcd and mosquitto.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
echo "| run | SIGKILL → new leader elected | SIGSTOP → new leader's commands landed | woken ex-leader's fence | result |"
echo "|---|---|---|---|---|"
for i in $(seq 1 "$RUNS"); do
  out=$(SWITCHD_REQUIRE_ETCD=1 go test -count=1 -v -run '^TestHAFailover$' ./cmd/switchd 2>&1) && res=PASS || res=FAIL
  kill=$(grep -o 'elected [0-9.]*m\?s after the kill' <<<"$out" | awk '{print $2}')
  stop=$(grep -o 'commanded [0-9.]*m\?s after the stop' <<<"$out" | awk '{print $2}')
  fence=$(grep -o 'woken ex-leader: .*' <<<"$out" | sed 's/woken ex-leader: //')
  echo "| $i | ${kill:-?} | ${stop:-?} | ${fence:-?} | $res |"
done
