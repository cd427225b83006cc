#!/usr/bin/env bash
# Demand-response compliance (SIMULATED): for every ERCOT price trace in
# SWITCHD_TRACES, ten SYNTHETIC events are generated from the trace itself
# (bench/drevents: the ten highest-priced 15-minute intervals at least a day
# apart; 10 minutes' notice, one hour long, a site target of TARGET_KW,
# default 9000 kW = 25% of examples/site.yaml's 36 MW interconnect), replayed
# with `switchd sim --events` through the real controller on simulated
# devices (examples/site.yaml, examples/policies/price-only.yaml, merged
# with the hashprice and AI-demand traces). Prints one Markdown row per
# trace and target: events met by their deadline, how many needed a shed
# (the price alone had not already brought the site under the target),
# median and worst time to target (from the cap taking force to the site
# being under it), shortfall.
# Needs Go and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
T=${SWITCHD_TRACES:-../shared/traces}
TARGETS_KW=${TARGETS_KW:-9000 3000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/switchd" ./cmd/switchd
go build -o "$work/drevents" ./bench/drevents
extra=(--trace "$T/btc_hashprice_daily_2023-04_2024-04.csv" --trace "$T/ai_demand_burstgpt_15min.csv")
echo "| trace | target kW | events | met by deadline | shed needed (time to target > 0) | median time to target | worst time to target | shortfall kWh | alarms | sim wall time |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for f in "$T"/ercot_*.csv; do for kw in $TARGETS_KW; do
  "$work/drevents" --trace "$f" --n 10 --target-kw "$kw" >"$work/events.jsonl"
  t0=$(date +%s.%N)
  "$work/switchd" sim --config examples/site.yaml --policy examples/policies/price-only.yaml \
    --trace "$f" "${extra[@]}" --events "$work/events.jsonl" --format json >"$work/r.json" 2>"$work/err" ||
    { echo "| $(basename "$f") | $kw | failed: $(head -c 200 "$work/err") |"; continue; }
  t1=$(date +%s.%N)
  python3 - "$work/r.json" "$(basename "$f") | $kw" "$(echo "$t1 - $t0" | bc)" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))["dr"]
evs = d["events"]
ttt = [e["time_to_target_seconds"] for e in evs if e["time_to_target_seconds"] is not None]
alarms = sum(1 for e in evs if e.get("alarm"))
med = d["median_time_to_target_seconds"]
fmt = lambda s: "–" if s is None else "%.0f s" % s
print("| %s | %d | %d of %d | %d | %s | %s | %.1f | %d | %.1f s |" % (
    sys.argv[2], len(evs), d["met"], len(evs), sum(1 for x in ttt if x > 0), fmt(med), fmt(max(ttt) if ttt else None),
    d["shortfall_kwh"], alarms, float(sys.argv[3])))
PY
done; done
