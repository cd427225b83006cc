package sim

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/internal/testenv"
	"github.com/switchd/switchd/policies"
	"github.com/switchd/switchd/trace"
)

var update = flag.Bool("update", false, "rewrite golden files")

// goldenTrace is a two-day 15-minute trace the test makes itself: a cheap
// night, a midday plateau, an evening spike to 2,500 USD/MWh on day one, and
// a negative-price hour on day two.
func goldenTrace() string {
	var b strings.Builder
	b.WriteString("time,price_usd_mwh,hashprice_usd_ph_day\n")
	t0 := time.Date(2024, 8, 20, 0, 0, 0, 0, time.FixedZone("CDT", -5*3600))
	for i := range 192 {
		t := t0.Add(time.Duration(i) * 15 * time.Minute)
		h := float64(t.Hour()) + float64(t.Minute())/60
		price := 25 + 60*math.Max(0, math.Sin((h-8)/12*math.Pi))
		switch {
		case i >= 76 && i < 82:
			price = 2500
		case i >= 96+12 && i < 96+16:
			price = -15
		}
		hp := 50.0
		if i >= 96 {
			hp = 46
		}
		fmt.Fprintf(&b, "%s,%.2f,%g\n", t.Format(time.RFC3339), price, hp)
	}
	return b.String()
}

const goldenSite = `
site: {name: golden, timezone: America/Chicago, power_cap_kw: 4000}
fleets:
  - name: asics
    kind: asic
    count: 1000
    driver: sim
    min_dwell: 30m
    switch_cost_usd: 0.05
    modes:
      off: {power_kw: 0.015}
      mining: {power_kw: 3.5, hashrate_ths: 200}
    transitions: {default: 1m, off->mining: 5m, mining->off: 30s}
  - name: gpus
    kind: gpu
    count: 400
    driver: sim
    min_dwell: 15m
    switch_cost_usd: 0.1
    modes:
      off: {power_kw: 0.2}
      inference: {power_kw: 1.275}
    transitions: {default: 3m, inference->off: 30s}
`

const goldenPolicy = `
fallbacks: {inference_usd_gpu_hour: 2.10, ai_demand_gpus: 350}
hysteresis_usd_mwh: 5
ramp_up_kw_per_min: 1500
stagger: {batch: 200, interval: 30s}
fail_safe: {price: curtail}
rules:
  - name: price-spike
    when: {price_above_usd_mwh: 1000}
    then: {site_cap_kw: 600}
`

func TestGoldenReport(t *testing.T) {
	site, err := config.ParseSite("golden-site.yaml", []byte(goldenSite))
	require.NoError(t, err)
	pol, err := policies.ParsePolicy("golden-policy.yaml", []byte(goldenPolicy), site)
	require.NoError(t, err)
	r, err := trace.NewReader(strings.NewReader(goldenTrace()), "golden.csv")
	require.NoError(t, err)
	series, err := trace.Collect(r)
	require.NoError(t, err)
	rep, err := Compare(context.Background(), CompareOptions{Site: site, Policy: pol, Series: series, Files: []string{"golden.csv"}})
	require.NoError(t, err)

	var text, js bytes.Buffer
	require.NoError(t, rep.WriteText(&text))
	require.NoError(t, rep.WriteJSON(&js))
	for name, got := range map[string][]byte{"golden.txt": text.Bytes(), "golden.json": js.Bytes()} {
		path := filepath.Join("testdata", name)
		if *update {
			require.NoError(t, os.WriteFile(path, got, 0o644))
		}
		want, err := os.ReadFile(path)
		require.NoError(t, err, "run go test ./sim -run Golden -update to create it")
		require.Equal(t, string(want), string(got), "%s differs; review, then go test ./sim -run Golden -update", path)
	}
	checkInvariants(t, site, rep)
	// The spike must be shed: the policy draws far less than always-on there.
	require.Greater(t, rep.TopPriceMWhAvoid, 0.0)
}

// checkInvariants asserts what must hold on any trace.
func checkInvariants(t *testing.T, site *config.Site, rep *Report) {
	t.Helper()
	all := map[string]*RunReport{"policy": &rep.RunReport, "always_on": &rep.Baselines.AlwaysOn, "threshold_debounce": &rep.Baselines.ThresholdDebounce}
	for name, r := range all {
		// Energy balance: the parts add up, profit is revenue minus costs.
		e := r.EnergyMWh
		require.InDelta(t, e.Total, e.Off+e.Mining+e.Inference+e.Transition+e.MiningReduced+e.Sleep, 1e-6*math.Max(1, e.Total), name)
		rv := r.RevenueUSD
		require.InDelta(t, rv.Total, rv.Off+rv.Mining+rv.Inference+rv.MiningReduced+rv.Sleep, 1e-6*math.Max(1, rv.Total), name)
		require.InDelta(t, r.ProfitUSD, rv.Total-r.EnergyCostUSD-r.SwitchCostUSD, 1e-6*math.Max(1, math.Abs(r.ProfitUSD)), name)
		// Energy can never exceed the interconnect over the trace's hours.
		require.LessOrEqual(t, e.Total, site.PowerCapKW*rep.Trace.Hours/1000*(1+1e-9), name)
		// Cap never exceeded at any tick.
		require.Zero(t, r.SiteCapExceeded, "%s: draw above the interconnect cap", name)
		require.LessOrEqual(t, r.MaxPowerKW, site.PowerCapKW*(1+1e-9), name)
		// Dwell never violated except by forced moves (caps, forbids, fail-safes).
		require.LessOrEqual(t, r.EarlyMoves, r.ForcedMoves, "%s: economic switches inside min dwell", name)
		// No causal strategy beats the perfect-foresight bound.
		require.LessOrEqual(t, r.ProfitUSD, rep.Baselines.Oracle.ProfitUSD*(1+1e-9)+1e-6, "%s beats the oracle", name)
	}
}

// policySites names the example site of the example policies written for
// one (the others run on examples/site.yaml).
var policySites = map[string]string{"power-targets.yaml": "../examples/power-targets.yaml"}

// TestRealTraceInvariants replays every trace in $SWITCHD_TRACES with every example
// policy and checks the invariants. Price traces are merged with the daily
// hashprice trace when it is there.
func TestRealTraceInvariants(t *testing.T) {
	dir := testenv.Traces(t)
	traces, err := filepath.Glob(filepath.Join(dir, "*.csv"))
	require.NoError(t, err)
	require.NotEmpty(t, traces, "no traces in %s", dir)
	site, err := config.LoadSite("../examples/site.yaml")
	require.NoError(t, err)
	polFiles, err := filepath.Glob("../examples/policies/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, polFiles)
	var hashprice string
	for _, tr := range traces {
		if strings.Contains(filepath.Base(tr), "hashprice") {
			hashprice = tr
		}
	}
	for _, tr := range traces {
		files := []string{tr}
		if hashprice != "" && tr != hashprice {
			files = append(files, hashprice)
		}
		src, _, closer, err := trace.Open(files)
		require.NoError(t, err)
		series, err := trace.Collect(src)
		closer.Close()
		require.NoError(t, err)
		for _, pf := range polFiles {
			name := filepath.Base(tr) + "/" + filepath.Base(pf)
			t.Run(name, func(t *testing.T) {
				site := site
				if own, ok := policySites[filepath.Base(pf)]; ok {
					var err error
					site, err = config.LoadSite(own)
					require.NoError(t, err)
				}
				pol, err := policies.LoadPolicy(pf, site)
				require.NoError(t, err)
				rep, err := Compare(context.Background(), CompareOptions{Site: site, Policy: pol, Series: series, Files: files})
				if _, ok := series.Value(0, switchd.SignalPrice); !ok && !pol.HasFallback[switchd.SignalPrice] {
					// A trace without prices (the daily hashprice file) cannot
					// be costed: a clear error, not a made-up profit.
					require.ErrorContains(t, err, "no price")
					return
				}
				require.NoError(t, err)
				require.Equal(t, series.Len(), rep.Trace.Intervals)
				checkInvariants(t, site, rep)
				// The oracle bounds every baseline too.
				require.GreaterOrEqual(t, rep.Baselines.Oracle.ProfitUSD*(1+1e-9)+1e-6, rep.Baselines.AlwaysOn.ProfitUSD)
				require.GreaterOrEqual(t, rep.Baselines.Oracle.ProfitUSD*(1+1e-9)+1e-6, rep.Baselines.ThresholdDebounce.ProfitUSD)
				t.Logf("%s: policy %.0f, always_on %.0f, threshold %.0f, oracle %.0f (%s)", name,
					rep.ProfitUSD, rep.Baselines.AlwaysOn.ProfitUSD, rep.Baselines.ThresholdDebounce.ProfitUSD,
					rep.Baselines.Oracle.ProfitUSD, rep.Baselines.Oracle.Method)
			})
		}
	}
}

// TestRunEnergyMatchesIntervals cross-checks the run totals against the sum
// of the per-interval records (what --timeseries writes).
func TestRunEnergyMatchesIntervals(t *testing.T) {
	site, err := config.ParseSite("s.yaml", []byte(goldenSite))
	require.NoError(t, err)
	pol, err := policies.ParsePolicy("p.yaml", []byte(goldenPolicy), site)
	require.NoError(t, err)
	r, err := trace.NewReader(strings.NewReader(goldenTrace()), "golden.csv")
	require.NoError(t, err)
	var kwh, cost, rev float64
	n := 0
	res, err := Run(context.Background(), RunOptions{Site: site, Policy: pol, Source: r, TopPriceUSDPerMWh: math.Inf(1),
		OnInterval: func(rec *IntervalRecord) {
			h := rec.End.Sub(rec.Start).Hours()
			kwh += rec.PowerKW * h
			cost += rec.CostUSD
			rev += rec.RevenueUSD
			n++
			var devices int
			for i, c := range rec.Counts {
				for _, k := range c {
					devices += k
				}
				devices += rec.Moving[i]
			}
			require.Equal(t, 1400, devices, "devices are conserved")
		}})
	require.NoError(t, err)
	require.Equal(t, 192, n)
	require.InDelta(t, res.EnergyTotalMWh(), kwh/1000, 1e-6)
	require.InDelta(t, res.EnergyCostUSD+res.SwitchCostUSD, cost, 1e-6)
	require.InDelta(t, res.RevenueTotalUSD(), rev, 1e-6)
	require.Greater(t, res.Switches, 0)
}
