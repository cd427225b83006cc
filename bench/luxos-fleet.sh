#!/usr/bin/env bash
# LuxOS fleet figures (Go benchmarks in drivers/luxos/bench_test.go):
#  1. 5,000 fake LuxOS miners, each on its own loopback address 127.0.X.Y:4028, driven through the
#     real luxos driver and the shared pool with default settings (concurrency 256): one full state
#     poll; decision to every curtail acknowledged and to every miner observed asleep; the same for
#     restore in stagger batches of 500; CPU time and peak RSS (of the whole test process, fakes
#     included).
#  2. 100,000 listed devices (each at its own 127.1.X.Y:4028, where nothing listens): driver
#     construction, one full state poll (every connection refused), heap and RSS. Run in its own
#     process so that its peak RSS is its own.
# Environment: N (fleet size, default 5000), LISTED (default 100000), COUNT (runs, default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# Print "name value unit" lines from a benchmark line's metric pairs.
figures() {
  awk '/^Benchmark/ { print $1; for (i = 3; i < NF; i += 2) printf "  %-20s %s\n", $(i+1), $i }'
}

echo "== ${N:-5000} fake LuxOS miners on loopback, default settings (open-file limit $(ulimit -n))"
SWITCHD_BENCH_FLEET_N="${N:-5000}" go test -run '^$' -bench '^BenchmarkFleet5000$' -benchtime 1x \
  -count "${COUNT:-1}" ./drivers/luxos | figures
echo "== ${LISTED:-100000} listed devices: construct the driver, one state poll (all refused)"
SWITCHD_BENCH_LISTED_N="${LISTED:-100000}" go test -run '^$' -bench '^BenchmarkListed100k$' -benchtime 1x \
  -count "${COUNT:-1}" ./drivers/luxos | figures
echo "== machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(go version | cut -d' ' -f3-)"
