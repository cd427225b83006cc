#!/usr/bin/env bash
# Price forecasts (issue: grid services, item 4): the gain from giving the
# same policy a price forecast, on every ERCOT trace in SWITCHD_TRACES
# (merged with the daily hashprice file), with the shipped policies on
# examples/site.yaml at its switch costs (0.05/0.10 USD) and at 1 USD per
# switch. Prints Markdown: profit and oracle_capture without a forecast and
# with one at each noise level, and the share of the gap to the oracle the
# forecast closes.
#
# The ERCOT traces carry no day-ahead column, so every forecast here is
# SYNTHETIC (sim --forecast noisy:SIGMA): each interval's actual real-time
# price × exp(SIGMA·z − SIGMA²/2), z standard normal (mean-one lognormal
# noise), issued at each site midnight for the next 48 h (24–48 h ahead).
# SIGMA 0 is perfect foresight over that horizon. Spikes stay where they
# happened, so this is kinder than a real day-ahead market. Every figure is
# SIMULATED. Needs Go and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
T=${SWITCHD_TRACES:-../shared/traces}
SIGMAS=${SIGMAS:-"0 0.1 0.3"}
bin=$(mktemp -d)/switchd
go build -o "$bin" ./cmd/switchd
work=$(dirname "$bin")
policies=(examples/policies/price-only.yaml examples/policies/demo.yaml examples/policies/ercot-4cp.yaml)
site1=$work/site-1usd.yaml
sed -E "s/^(    switch_cost_usd:) .*/\1 1/" examples/site.yaml >"$site1"
cp -r examples/policies "$work/"

run() { # out, site, policy, trace, forecast flag...
  local out=$1 site=$2 pol=$3 tr=$4
  shift 4
  "$bin" sim --config "$site" --policy "$pol" --trace "$tr" --trace "$T/btc_hashprice_daily_2023-04_2024-04.csv" \
    "$@" --format json >"$out" 2>"$work/err" || { echo "failed: $(head -c 300 "$work/err")" >&2; exit 1; }
}

echo "| trace | policy | \$/switch | forecast | profit \$M | oracle \$M | oracle_capture | switches | gain \$k | gap to oracle closed |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for tr in "$T"/ercot_*.csv; do
  for p in "${policies[@]}"; do
    for s in examples/site.yaml "$site1"; do
      cost=site
      [ "$s" = "$site1" ] && cost=1
      run "$work/none.json" "$s" "$p" "$tr"
      files=("$work/none.json")
      for sg in $SIGMAS; do
        run "$work/s$sg.json" "$s" "$p" "$tr" --forecast "noisy:$sg"
        files+=("$work/s$sg.json")
      done
      python3 - "$(basename "$tr" .csv)" "$(basename "$p" .yaml)" "$cost" "${files[@]}" <<'PY'
import json, sys
tr, pol, cost, files = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
runs = [json.load(open(f)) for f in files]
base = runs[0]
o = base["baselines"]["oracle"]["profit_usd"]
for d in runs:
    f = d.get("forecast")
    label = "none" if f is None else ("synthetic σ=%g" % f.get("sigma", 0) if f["synthetic"] else f["source"])
    assert d["baselines"]["oracle"]["profit_usd"] == o, "oracle changed with a forecast"
    gain = d["profit_usd"] - base["profit_usd"]
    gap = o - base["profit_usd"]
    closed = "–" if f is None or gap <= 0 else "%.0f%%" % (100 * gain / gap)
    print("| %s | %s | %s | %s | %.3f | %.3f | %.4f | %d | %s | %s |" % (
        tr, pol, cost, label, d["profit_usd"] / 1e6, o / 1e6, d["oracle_capture"], d["switches"],
        "–" if f is None else "%+.1f" % (gain / 1e3), closed))
PY
    done
  done
done
echo
echo "machine: $(nproc) cores, $(go version | cut -d' ' -f3-), $(date -u +%F)"
