#!/usr/bin/env bash
# Replays a year of 5-minute SYNTHETIC intervals (105,120 rows, streamed)
# through the real controller for a 10,000- and a 100,000-device site, and a
# month for the 100,000-device site to show memory per run does not grow
# with trace length. Prints Go's benchmark lines and a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-5}
out=$(go test -run '^$' -bench '^BenchmarkYear$' -benchtime 3x -count "$count" ./sim)
echo "$out" | grep -E '^(goos|goarch|cpu|Benchmark)'
echo
echo "$out" | awk '
/^BenchmarkYear/ {
  name=$1; sub(/-[0-9]+$/, "", name)
  for (i = 2; i < NF; i++) {
    if ($(i+1) == "ns/op") ns[name] = ns[name] " " $i
    if ($(i+1) == "B/op") bop[name] = $i
  }
}
END {
  for (n in ns) {
    split(substr(ns[n], 2), v, " "); m = 0
    # median of the runs
    k = length(v); for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    med = v[int((k + 1) / 2)]
    printf "%-40s median %.3f s per run, %s B allocated per run\n", n, med / 1e9, bop[n]
  }
}' | sort
