#!/usr/bin/env bash
# switchd run with LISTED (default 100,000) devices in a devices_file, each
# at its own loopback address where nothing listens (every poll is 100,000
# refused connections): switchd's RSS after a few polls, the time of one full
# poll, and how the devices are reported (all unreachable, none counted on).
set -euo pipefail
cd "$(dirname "$0")/.."
LISTED=${LISTED:-100000}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
work=$(mktemp -d)
bin=$work/switchd
go build -o "$bin" ./cmd/switchd
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
free_port() { local p; while :; do p=$((20000 + RANDOM % 20000)); (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }; done; }
hport=$(free_port); mport=$(free_port)
for ((i = 0; i < LISTED; i++)); do echo "127.$((100 + i / 62500)).$(((i / 250) % 250 + 1)).$((i % 250 + 1))"; done >"$work/miners.txt"
cat >"$work/site.yaml" <<YAML
site: {name: listed, timezone: UTC, power_cap_kw: 1000000}
policy: policy.yaml
tick: 10s
mqtt: {embedded: "127.0.0.1:$mport"}
http: {listen: "127.0.0.1:$hport"}
fleets:
  - name: luxos
    kind: asic
    devices_file: miners.txt
    driver: luxos
    modes: {off: {power_kw: 0.022}, mining: {power_kw: 2.76, hashrate_ths: 120}}
YAML
echo 'fallbacks: {hashprice_usd_ph_day: 48}' >"$work/policy.yaml"
echo 'rules: [{name: never, when: {price_above_usd_mwh: 99999}, then: {site_cap_kw: 0}}]' >>"$work/policy.yaml"
"$bin" run --config "$work/site.yaml" --log-level warn >"$work/run.log" 2>&1 &
pid=$!
url=http://127.0.0.1:$hport
for _ in $(seq 1 300); do curl -fs "$url/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
metric() { curl -fs "$url/metrics" | awk -v m="$1" '$1 == m { print $2; found = 1 } END { if (!found) print 0 }'; }
# Wait for three polls.
for _ in $(seq 1 600); do
  n=$(metric 'switchd_driver_request_duration_seconds_count{driver="luxos",fleet="luxos",op="state"}')
  [ "${n%.*}" -ge 3 ] && break
  sleep 0.2
done
psum=$(metric 'switchd_driver_request_duration_seconds_sum{driver="luxos",fleet="luxos",op="state"}')
pcnt=$(metric 'switchd_driver_request_duration_seconds_count{driver="luxos",fleet="luxos",op="state"}')
printf '%s listed devices (none answering), switchd run\n' "$LISTED"
printf '  full poll, mean of %s        %6.2f s\n' "$pcnt" "$(echo "$psum / $pcnt" | bc -l)"
printf '  unreachable devices reported %s\n' "$(metric 'switchd_devices_unusable{fleet="luxos",reason="unreachable"}')"
printf '  switchd RSS now / peak       %s / %s MB\n' "$(awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' /proc/$pid/status)" "$(awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' /proc/$pid/status)"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(go version | cut -d' ' -f3-)"
