#!/usr/bin/env bash
# The whole daemon against a real-sized fleet of fake miners:
#   N (default 5,000) fake LuxOS miners, each on its own loopback address
#   127.0.X.Y:4028, served by `switchd fakes` in a SEPARATE process, so that
#   the CPU and memory below are switchd's own; `switchd run` with its
#   embedded broker drives them through the real luxos driver and pool at
#   the default concurrency (256). A price spike is published with
#   mosquitto_pub and the script measures, from the publish:
#     - decision to last curtail acknowledged (switchd_command_duration_seconds:
#       the one Apply call that sends every curtail and returns when each
#       miner has acknowledged it),
#     - publish to the state API/metrics showing every miner asleep, as the
#       miners report it (a full poll after the acks),
#   then the same for the restore, paced by the policy's stagger
#   (500 miners every 2 s), and the mean duration of a full state poll.
#   CPU is switchd's user+system time over the curtail and over the restore;
#   RSS is switchd's peak (VmHWM).
# Needs: Go, mosquitto_pub (Debian mosquitto-clients), curl.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-5000}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
command -v mosquitto_pub >/dev/null || { echo "needs mosquitto_pub (apt-get install mosquitto-clients)" >&2; exit 1; }
work=$(mktemp -d)
bin=$work/switchd
go build -o "$bin" ./cmd/switchd
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { local p; while :; do p=$((20000 + RANDOM % 20000)); (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }; done; }
mport=$(free_port); hport=$(free_port)
for ((i = 0; i < N; i++)); do echo "127.0.$((10 + i / 250)).$((i % 250 + 1))"; done >"$work/miners.txt"
cat >"$work/site.yaml" <<YAML
site: {name: bench, timezone: UTC, power_cap_kw: 100000}
policy: policy.yaml
tick: 2s
mqtt: {embedded: "127.0.0.1:$mport", signal_prefix: bench/signals}
http: {listen: "127.0.0.1:$hport"}
journal: {path: state/journal.log}
fleets:
  - name: luxos
    kind: asic
    devices_file: miners.txt
    driver: luxos
    modes: {off: {power_kw: 0.022}, mining: {power_kw: 2.76, hashrate_ths: 120}}
    transitions: {off->mining: 15s, mining->off: 5s}
YAML
cat >"$work/policy.yaml" <<YAML
fallbacks: {hashprice_usd_ph_day: 48}
fail_safe: {price: hold}
stagger: {batch: 500, interval: 2s}
rules:
  - name: price-spike
    when: {price_above_usd_mwh: 1000}
    then: {force: {luxos: off}}
YAML
"$bin" fakes --config "$work/site.yaml" --running >"$work/fakes.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do grep -q listening "$work/fakes.log" && break; sleep 0.1; done
grep -q listening "$work/fakes.log" || { cat "$work/fakes.log"; exit 1; }
"$bin" run --config "$work/site.yaml" --log-level warn >"$work/run.log" 2>&1 &
spid=$!
pids+=($spid)
url=http://127.0.0.1:$hport
for _ in $(seq 1 300); do curl -fs "$url/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

metric() { curl -fs "$url/metrics" | awk -v m="$1" '$1 == m { print $2; found = 1 } END { if (!found) print 0 }'; }
mining() { metric 'switchd_fleet_devices{fleet="luxos",mode="mining"}'; }
moving() { metric 'switchd_fleet_devices_moving{fleet="luxos"}'; }
cmdsum() { metric 'switchd_command_duration_seconds_sum{fleet="luxos"}'; }
cpu() { awk '{ print $14 + $15 }' "/proc/$spid/stat"; }
now() { date +%s.%N; }
publish() { mosquitto_pub -h 127.0.0.1 -p "$mport" -q 1 -t bench/signals/price -m "$1"; }
wait_for() { # $1 = wanted mining count, $2 = timeout in s
  local end=$(($(date +%s) + $2))
  while [ "$(date +%s)" -lt "$end" ]; do
    if [ "$(mining)" = "$1" ] && [ "$(moving)" = "0" ]; then return 0; fi
    sleep 0.05
  done
  echo "timed out waiting for mining=$1 (mining=$(mining) moving=$(moving))" >&2
  tail -20 "$work/run.log" >&2
  return 1
}

publish 30
wait_for "$N" 120
hz=$(getconf CLK_TCK)

c0=$(cpu); s0=$(cmdsum); t0=$(now)
publish 5000
wait_for 0 120
t1=$(now); c1=$(cpu); s1=$(cmdsum)
curtail_ack=$(echo "$s1 - $s0" | bc -l)
curtail_obs=$(echo "$t1 - $t0" | bc -l)
curtail_cpu=$(echo "($c1 - $c0) / $hz" | bc -l)

c0=$(cpu); s0=$(cmdsum); t0=$(now)
publish 25
wait_for "$N" 300
t1=$(now); c1=$(cpu); s1=$(cmdsum)
restore_ack=$(echo "$s1 - $s0" | bc -l)
restore_obs=$(echo "$t1 - $t0" | bc -l)
restore_cpu=$(echo "($c1 - $c0) / $hz" | bc -l)

psum=$(metric 'switchd_driver_request_duration_seconds_sum{driver="luxos",fleet="luxos",op="state"}')
pcnt=$(metric 'switchd_driver_request_duration_seconds_count{driver="luxos",fleet="luxos",op="state"}')
rss=$(awk '/VmHWM/ { print $2 / 1024 }' "/proc/$spid/status")
printf '%s fake LuxOS miners (separate process), switchd run, default concurrency\n' "$N"
printf '  curtail: Apply time, every curtail acknowledged  %6.2f s\n' "$curtail_ack"
printf '  curtail: publish to every miner observed asleep  %6.2f s\n' "$curtail_obs"
printf '  curtail: switchd CPU                            %6.2f s\n' "$curtail_cpu"
printf '  restore: Apply time summed over stagger batches  %6.2f s\n' "$restore_ack"
printf '  restore: publish to every miner observed mining  %6.2f s (stagger 500 / 2 s, wake ramp 10 s)\n' "$restore_obs"
printf '  restore: switchd CPU                            %6.2f s\n' "$restore_cpu"
printf '  full state poll, mean of %s                     %6.2f s\n' "$pcnt" "$(echo "$psum / $pcnt" | bc -l)"
printf '  switchd peak RSS                                %6.1f MB\n' "$rss"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(go version | cut -d' ' -f3-)"
