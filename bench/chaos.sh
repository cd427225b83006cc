#!/usr/bin/env bash
# Chaos run: switchd against a real Mosquitto and fake LuxOS miners on
# loopback while faults are injected on a seeded random schedule (broker
# restarts, junk, oversized, future-dated and duplicated payloads, retained
# stale prices, SIGKILL, a full disk under the journal, devices timing out
# and lying); prints the faults injected and each invariant's checks and
# violations, and exits 1 on any violation. Figures: bench/RESULTS.md.
#
#   bash bench/chaos.sh [DURATION] [extra flags, e.g. -seed 42 -keep]
#
# Needs mosquitto and mosquitto-clients; the full-disk fault mounts a tmpfs
# (root), and is skipped with a notice otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-10m}"
shift || true
exec go run ./bench/chaos -duration "$duration" "$@"
