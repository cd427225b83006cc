#!/usr/bin/env bash
# Daemon figures: signal-to-command latency and ingestion rate through a real
# Mosquitto on loopback (Go benchmarks in daemon/bench_test.go), and the
# daemon's memory (RSS) with a 10,000-device simulated site after an hour of
# replayed signals. Needs mosquitto and mosquitto-clients (Debian).
set -euo pipefail
cd "$(dirname "$0")/.."
for p in mosquitto mosquitto-clients curl; do
  dpkg -s "$p" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$p" >/dev/null; }
done

echo "== signal-to-command latency (10,000 devices, journal fsync, Mosquitto on loopback)"
go test -run '^$' -bench '^BenchmarkSignalToCommand$' -benchtime "${LATENCY_N:-500}x" ./daemon | grep -E '^Benchmark'
echo "== ingestion with the controller running (mosquitto_pub -l, QoS 1, 50,000 messages per round)"
go test -run '^$' -bench '^BenchmarkIngest$' -benchtime 5x ./daemon | grep -E '^Benchmark'

echo "== RSS after an hour of replayed signals (10,000 devices)"
work=$(mktemp -d)
bin=$work/switchd
go build -o "$bin" ./cmd/switchd
# A port nobody answers on (bash's /dev/tcp, no other tool needed).
free_port() { local p; while :; do p=$((20000 + RANDOM % 20000)); (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }; done; }
port=$(free_port)
hport=$(free_port)
cat >"$work/policy.yaml" <<YAML
fallbacks: {hashprice_usd_ph_day: 48, inference_usd_gpu_hour: 2.10, ai_demand_gpus: 1800}
hysteresis_usd_mwh: 5
stagger: {batch: 500, interval: 1s}
fail_safe: {price: curtail}
rules:
  - name: spike
    when: {price_above_usd_mwh: 150}
    then: {force: {asics: off}}
YAML
cat >"$work/site.yaml" <<YAML
site: {name: rss-bench, timezone: America/Chicago, power_cap_kw: 36000}
policy: policy.yaml
tick: 1s
mqtt: {embedded: "127.0.0.1:$port", signal_prefix: bench/signals}
http: {listen: "127.0.0.1:$hport"}
journal: {path: journal.log}
fleets:
  - {name: asics, kind: asic, count: 8000, driver: sim, modes: {off: {power_kw: 0.015}, mining: {power_kw: 3.5, hashrate_ths: 200}}, transitions: {off->mining: 5s, mining->off: 1s}}
  - {name: gpus, kind: gpu, count: 2000, driver: sim, modes: {off: {power_kw: 0.2}, inference: {power_kw: 1.275}}, transitions: {default: 3s}}
YAML
# An hour of SYNTHETIC signals at one-second resolution: 3,600 rows, 4 signals each.
"$bin" gen-trace --start 2024-08-20T15:00:00-05:00 --step 1s --n 3600 --seed 7 --out "$work/hour.csv"
"$bin" run --config "$work/site.yaml" --log-level warn 2>"$work/run.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$hport/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
echo "RSS at start: $(rss) KiB"
start=$(date +%s.%N)
"$bin" replay --trace "$work/hour.csv" --broker "tcp://127.0.0.1:$port" --speed "${SPEED:-0}" --topic-prefix bench/signals --restamp
end=$(date +%s.%N)
sleep 2
echo "replayed in $(awk "BEGIN {printf \"%.1f\", $end - $start}") s; RSS after an hour of signals: $(rss) KiB (peak $(awk '/^VmHWM/ {print $2}' /proc/$pid/status) KiB)"
echo "journal entries: $(wc -l <"$work/journal.log")"
kill -TERM $pid; wait $pid; trap - EXIT
