package sim

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/policies"
	"github.com/switchd/switchd/trace"
)

// benchSimSite is a site of n devices: 80% S21-class ASICs, 20% H100-class GPUs
// with their hosts' share of power, behind an interconnect that binds when
// everything runs (90% of flat-out draw).
func benchSimSite(tb testing.TB, n int) (*config.Site, *policies.Policy) {
	tb.Helper()
	asics, gpus := n*8/10, n*2/10
	flatOut := float64(asics)*3.5 + float64(gpus)*1.275
	site, err := config.ParseSite("bench-site", fmt.Appendf(nil, `
site: {name: bench-%d, timezone: America/Chicago, power_cap_kw: %.0f}
fleets:
  - name: asics
    kind: asic
    count: %d
    driver: sim
    min_dwell: 30m
    switch_cost_usd: 0.05
    modes:
      off: {power_kw: 0.015}
      mining: {power_kw: 3.5, hashrate_ths: 200}
    transitions: {default: 1m, off->mining: 5m, mining->off: 30s}
  - name: gpus
    kind: gpu
    count: %d
    driver: sim
    min_dwell: 15m
    switch_cost_usd: 0.10
    modes:
      off: {power_kw: 0.2}
      inference: {power_kw: 1.275}
    transitions: {default: 3m, inference->off: 30s}
`, n, 0.9*flatOut, asics, gpus))
	if err != nil {
		tb.Fatal(err)
	}
	pol, err := policies.ParsePolicy("bench-policy", fmt.Appendf(nil, `
fallbacks: {hashprice_usd_ph_day: 48, inference_usd_gpu_hour: 2.10, ai_demand_gpus: %d}
hysteresis_usd_mwh: 5
ramp_up_kw_per_min: %.0f
stagger: {batch: %d, interval: 30s}
fail_safe: {price: curtail}
rules:
  - name: summer-evening
    when: {schedule: "0 15 * 6-9 1-5", for: 3h, price_above_usd_mwh: 80}
    then: {forbid: {asics: [mining]}}
  - name: price-spike
    when: {price_above_usd_mwh: 1000}
    then: {site_cap_kw: %.0f}
`, gpus*9/10, flatOut/10, max(n/20, 1), float64(gpus)*1.3), site)
	if err != nil {
		tb.Fatal(err)
	}
	return site, pol
}

// BenchmarkYear replays a year of 5-minute SYNTHETIC intervals (105,120 rows,
// streamed, never held in memory) through the controller for a 10,000- and a
// 100,000-device site. A month beside the year shows that memory per run
// does not grow with trace length (compare B/op).
func BenchmarkYear(b *testing.B) {
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.FixedZone("CST", -6*3600))
	const step = 5 * time.Minute
	for _, c := range []struct {
		name    string
		devices int
		rows    int
	}{
		{"devices=10000/span=year", 10_000, 366 * 288},
		{"devices=100000/span=month", 100_000, 31 * 288},
		{"devices=100000/span=year", 100_000, 366 * 288},
	} {
		b.Run(c.name, func(b *testing.B) {
			site, pol := benchSimSite(b, c.devices)
			b.ReportAllocs()
			var res *Result
			for b.Loop() {
				var err error
				res, err = Run(context.Background(), RunOptions{
					Site: site, Policy: pol, Source: trace.SyntheticSource(start, step, c.rows, 1),
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			perRun := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(perRun*1e9/float64(c.rows), "ns/interval")
			b.ReportMetric(float64(c.devices)*float64(c.rows)/perRun, "device-intervals/s")
			b.ReportMetric(float64(res.Ticks)/float64(c.rows), "ticks/interval")
		})
	}
}
