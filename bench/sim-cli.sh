#!/usr/bin/env bash
# Times the whole `switchd sim` command (policy, two baselines and the oracle)
# on the real 2024 ERCOT year (35,136 quarter-hours) and prints its peak
# memory. Needs GNU time (Debian package "time").
set -euo pipefail
cd "$(dirname "$0")/.."
traces=${SWITCHD_TRACES:-../shared/traces}
command -v /usr/bin/time >/dev/null || { apt-get install -y time >/dev/null; }
bin=$(mktemp -d)/switchd
go build -o "$bin" ./cmd/switchd
args=(sim --config examples/site.yaml --policy examples/policies/ercot-4cp.yaml
  --trace "$traces/ercot_hb_hubavg_rt15_2024.csv" --trace "$traces/btc_hashprice_daily_2023-04_2024-04.csv" --format json)
"$bin" "${args[@]}" >/dev/null 2>&1 # warm the page cache
for i in 1 2 3; do
  /usr/bin/time -f "run $i: %e s wall, peak RSS %M KiB" "$bin" "${args[@]}" 2>&1 >/dev/null | grep '^run'
done
