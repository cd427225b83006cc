#!/usr/bin/env bash
# Simulated results on the real traces (issue: simulator results that hold
# on real data). For every price trace in SWITCHD_TRACES (merged with the
# daily hashprice file and the AI-demand file, whose spans they overlap),
# at its own 15-minute cadence and resampled to hourly (--resample 1h):
# each shipped policy against always_on, threshold_debounce and the oracle,
# with profit, energy, coincident-peak charge (examples/site.yaml: ERCOT 4CP,
# 55 USD/kW-year) and oracle capture; then the switch-cost sweep (0, 1, 5, 20
# USD per device switch, every fleet) for each policy, 15-minute and hourly;
# last the other shipped policies, each on the site it is written for. Prints Markdown tables.
# Every figure is SIMULATED. Needs Go and python3 (to read the JSON).
set -euo pipefail
cd "$(dirname "$0")/.."
T=${SWITCHD_TRACES:-../shared/traces}
bin=$(mktemp -d)/switchd
go build -o "$bin" ./cmd/switchd
work=$(dirname "$bin")
traces=()
for f in "$T"/ercot_*.csv; do traces+=("$f"); done
extra=(--trace "$T/btc_hashprice_daily_2023-04_2024-04.csv" --trace "$T/ai_demand_burstgpt_15min.csv")
policies=(examples/policies/price-only.yaml examples/policies/demo.yaml examples/policies/ercot-4cp.yaml)

row() { # trace, resample flag, site, policy, switch cost label[, policy label]
  local out=$work/r.json
  "$bin" sim --config "$3" --policy "$4" --trace "$1" "${extra[@]}" $2 --format json >"$out" 2>"$work/err" ||
    { echo "| $(basename "$1") $2 | $(basename "$4") | failed: $(head -c 200 "$work/err") |"; return; }
  python3 - "$out" "$(basename "$1" .csv)${2:+ (hourly)}" "${6:-$(basename "$4" .yaml)}" "$5" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
tr, pol, cost = sys.argv[2], sys.argv[3], sys.argv[4]
b = d["baselines"]
def cp(r):
    c = r.get("coincident_peak_charge") or {}
    return c.get("charge_usd")
def net(r):
    c = cp(r)
    return r["profit_usd"] - c if c is not None else r["profit_usd"]
m = lambda x: "%.3f" % (x / 1e6) if x is not None else "–"
o = b["oracle"]["profit_usd"]
td = b["threshold_debounce"]
beat = "yes" if net(d) > net(td) else "**no**"
cells = [tr, pol] + ([cost] if cost else []) + [
    m(d["profit_usd"]), "%.0f" % d["energy_mwh"]["total"], m(cp(d)),
    m(b["always_on"]["profit_usd"]), m(cp(b["always_on"])),
    m(td["profit_usd"]), m(cp(td)), m(o),
    "%.3f" % d["oracle_capture"], beat, "%d" % d["switches"]]
print("| " + " | ".join(cells) + " |")
PY
}

hdr="| trace | policy | profit \$M | energy MWh | CP charge \$M | always_on \$M | its CP \$M | threshold \$M | its CP \$M | oracle \$M | capture | beats threshold net of CP | switches |"
echo "### Shipped policies (site examples/site.yaml, switch costs 0.05/0.10 USD)"
echo
echo "$hdr"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for t in "${traces[@]}"; do
  for r in "" "--resample 1h"; do
    for p in "${policies[@]}"; do row "$t" "$r" examples/site.yaml "$p" ""; done
  done
done

echo
echo "### Switch-cost sweep (every fleet's switch_cost_usd set to the value)"
echo
echo "${hdr/| policy |/| policy | \$\/switch |}"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for c in 0 1 5 20; do
  site=$work/site-$c.yaml
  sed -E "s/^(    switch_cost_usd:) .*/\1 $c/" examples/site.yaml >"$site"
  cp -r examples/policies "$work/" 2>/dev/null || true
  for t in "${traces[@]}"; do
    for r in "" "--resample 1h"; do
      for p in "${policies[@]}"; do row "$t" "$r" "$site" "$p" "$c"; done
    done
  done
done
echo
echo "### The other shipped policies, each on the site it is written for (that site's switch costs)"
echo
echo "$hdr"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
others=(examples/ai-site.yaml:examples/policies/ai-demand.yaml examples/power-targets.yaml:examples/policies/power-targets.yaml
  examples/demo.yaml:examples/policies/demo.yaml examples/ai-demo.yaml:examples/policies/ai-demo.yaml)
for t in "${traces[@]}"; do
  for r in "" "--resample 1h"; do
    for sp in "${others[@]}"; do
      row "$t" "$r" "${sp%%:*}" "${sp#*:}" "" "$(basename "${sp#*:}" .yaml) on $(basename "${sp%%:*}")"
    done
  done
done
echo
echo "machine: $(nproc) cores, $(go version | cut -d' ' -f3-), $(date -u +%F)"
