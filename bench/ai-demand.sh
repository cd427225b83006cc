#!/usr/bin/env bash
# AI demand served under a site cap: replays the 2024 ERCOT year (real
# HB_HUBAVG 15-minute prices) with the BurstGPT inference demand shape (a
# real 5-day LLM request log scaled to a 3,000-GPU site, repeated weekly:
# Wednesday to Sunday of every week carry demand, Monday and Tuesday have
# none measured and are counted apart) through examples/ai-site.yaml, whose
# 30,000 kW cap is below its 31,825 kW full load and whose GPUs mine or
# serve. Prints, for the policy, each baseline and the oracle: profit,
# AI demand served and unserved (GPU-hours, USD) and the unserved by cause.
# SIMULATED devices, real controller. Needs jq.
#
#   SWITCHD_TRACES=/path/to/traces bench/ai-demand.sh [extra switchd sim flags]
set -euo pipefail
cd "$(dirname "$0")/.."
traces=${SWITCHD_TRACES:-../shared/traces}
price=$traces/ercot_hb_hubavg_rt15_2024.csv
demand=$traces/ai_demand_burstgpt_15min.csv
policy=${POLICY:-examples/policies/ai-demand.yaml}
bin=$(mktemp -d)/switchd
trap 'rm -rf "$(dirname "$bin")"' EXIT
go build -o "$bin" ./cmd/switchd
start=$(date +%s.%N)
json=$("$bin" sim --config examples/ai-site.yaml --policy "$policy" \
  --trace "$price" --trace "$demand" --repeat weekly --format json "$@" 2>/dev/null)
end=$(date +%s.%N)
echo "SIMULATED: $(basename "$price") + $(basename "$demand") repeated weekly; site examples/ai-site.yaml (cap 30,000 kW < 31,825 kW full load); policy $policy"
echo "$json" | jq -r '.trace.repeated[]? | "repeated: " + .'
echo "$json" | jq -r '"AI demand measured on \(.trace.hours - .ai_demand.demand_unknown_hours | floor) of \(.trace.hours) h; the rest (days of the week the file lacks) counted neither served nor unserved"'
echo
echo "$json" | jq -r '
  def r: . * 100 | round / 100;
  def m: . / 1e6 | r;
  def k: . / 1e3 | r;
  def row(name; x):
    "| \(name) | \(x.profit_usd | m) | \(x.revenue_usd.inference | m) | \(x.revenue_usd.mining | m) | \(x.ai_demand.demand_gpu_hours | k) | \(x.ai_demand.served_gpu_hours | k) | \(x.ai_demand.unserved_gpu_hours | k) | \((x.ai_demand.unserved_gpu_hours / x.ai_demand.demand_gpu_hours * 100) | r)% | \(x.ai_demand.unserved_revenue_usd | k) | \(x.ai_demand.unserved_by_cause | to_entries | map("\(.key) \(.value.gpu_hours / 1e3 | r)") | join(", ")) |";
  "| run | profit (M USD) | inference revenue (M USD) | mining revenue (M USD) | AI demand (k GPU-h) | served (k GPU-h) | unserved (k GPU-h) | unserved share | unserved revenue (k USD) | unserved by cause (k GPU-h) |",
  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
  row("policy"; .),
  row("always_on"; .baselines.always_on),
  row("threshold_debounce"; .baselines.threshold_debounce),
  "| oracle (bound) | \(.baselines.oracle.profit_usd | m) | - | - | - | - | - | - | - | profit bound only; revenue split and served demand not reported |",
  "",
  "oracle capture: \(.oracle_capture * 1000 | round / 10)%; GPU fleet device-hours: \(.ai_demand.dual_use_fleets[]? | "\(.fleet) mining \(.mining_device_hours / 1e3 | round) k, inference \(.inference_device_hours / 1e3 | round) k, off \(.off_device_hours / 1e3 | round) k")",
  "switches: policy \(.switches), always_on \(.baselines.always_on.switches), threshold_debounce \(.baselines.threshold_debounce.switches)"'
printf 'wall time %.1f s (build excluded), %s, %d cores, %s\n' "$(echo "$end - $start" | bc)" "$(go version | cut -d' ' -f3-4)" "$(nproc)" "$(date -u +%F)"
