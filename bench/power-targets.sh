#!/usr/bin/env bash
# Power-target modes (issue 10, item 3): what a 70% power target on the
# ASICs (and sleep on the GPUs) is worth against the same site and policy
# without them. For every ERCOT price trace in SWITCHD_TRACES (merged with
# the daily hashprice and AI-demand files), runs examples/power-targets.yaml
# and the same file with the mining_reduced and sleep modes deleted, both
# under examples/policies/price-only.yaml, at two interconnect caps: the
# example's 32,000 kW (binds whenever mining pays) and 45,000 kW (never
# binds: only the price regime matters, the power target breaking even at a
# higher price). Prints a Markdown table of profit, the oracle bound and
# capture. Every figure is SIMULATED, and the power target's efficiency
# (160 TH/s at 2.45 kW) is an assumption stated in the example file.
# Needs Go and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
T=${SWITCHD_TRACES:-../shared/traces}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bin=$work/switchd
go build -o "$bin" ./cmd/switchd
extra=(--trace "$T/btc_hashprice_daily_2023-04_2024-04.csv" --trace "$T/ai_demand_burstgpt_15min.csv")
policy=examples/policies/price-only.yaml

run() { # site file, trace -> json file
  "$bin" sim --config "$1" --policy "$policy" --trace "$2" "${extra[@]}" --format json >"$3" 2>"$work/err" ||
    { echo "sim failed: $(head -c 300 "$work/err")" >&2; exit 1; }
}

echo "| trace | cap kW | profit with \$M | without \$M | gain \$ | gain % | oracle with \$M | oracle without \$M | capture with | capture without | switches with | without |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for t in "$T"/ercot_*.csv; do
  for cap in 32000 45000; do
    # The example's directory, so that relative paths keep working.
    with=examples/.bench-with-$$.yaml
    without=examples/.bench-without-$$.yaml
    sed "s/power_cap_kw: 32000/power_cap_kw: $cap/" examples/power-targets.yaml >"$with"
    sed '/mining_reduced/d; /sleep/d' "$with" >"$without"
    run "$with" "$t" "$work/with.json"
    run "$without" "$t" "$work/without.json"
    rm -f "$with" "$without"
    python3 - "$work/with.json" "$work/without.json" "$(basename "$t" .csv)" "$cap" <<'PY'
import json, sys
w, o = (json.load(open(p)) for p in sys.argv[1:3])
m = lambda x: "%.3f" % (x / 1e6)
gain = w["profit_usd"] - o["profit_usd"]
print("| " + " | ".join([sys.argv[3], sys.argv[4], m(w["profit_usd"]), m(o["profit_usd"]),
    "%.0f" % gain, "%.2f" % (100 * gain / abs(o["profit_usd"])),
    m(w["baselines"]["oracle"]["profit_usd"]), m(o["baselines"]["oracle"]["profit_usd"]),
    "%.3f" % w["oracle_capture"], "%.3f" % o["oracle_capture"],
    "%d" % w["switches"], "%d" % o["switches"]]) + " |")
PY
  done
done
