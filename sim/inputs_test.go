package sim

import (
	"bytes"
	"context"
	"fmt"
	"math"
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

// inputsTrace is a made-up TEST trace (not market data): days of prices
// at step from 2024-08-20 00:00 CDT, cheap (30 USD/MWh) but for an evening
// at 150; cells whose row index skip reports true are empty.
func inputsTrace(days int, step time.Duration, skip func(i int) bool, extra string, extraVal func(i int) string) string {
	var b strings.Builder
	b.WriteString("time,price_usd_mwh")
	if extra != "" {
		b.WriteString("," + extra)
	}
	b.WriteString("\n")
	t0 := time.Date(2024, 8, 20, 0, 0, 0, 0, time.FixedZone("CDT", -5*3600))
	n := int(time.Duration(days) * 24 * time.Hour / step)
	for i := range n {
		t := t0.Add(time.Duration(i) * step)
		price := "30"
		if h := t.Hour(); h >= 18 && h < 20 {
			price = "150"
		}
		if skip != nil && skip(i) {
			price = ""
		}
		fmt.Fprintf(&b, "%s,%s", t.Format(time.RFC3339), price)
		if extra != "" {
			b.WriteString("," + extraVal(i))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func seriesOf(t *testing.T, files ...string) *trace.Series {
	t.Helper()
	var srcs []trace.Source
	for i, f := range files {
		r, err := trace.NewReader(strings.NewReader(f), fmt.Sprintf("t%d.csv", i+1))
		require.NoError(t, err)
		srcs = append(srcs, r)
	}
	s, err := trace.Collect(trace.Merge(srcs...))
	require.NoError(t, err)
	return s
}

func compareOn(t *testing.T, site, policy string, s *trace.Series, in InputOptions, files ...string) (*Report, error) {
	t.Helper()
	st, err := config.ParseSite("site.yaml", []byte(site))
	require.NoError(t, err)
	pol, err := policies.ParsePolicy("policy.yaml", []byte(policy), st)
	require.NoError(t, err)
	if len(files) == 0 {
		files = []string{"t1.csv"}
	}
	return Compare(context.Background(), CompareOptions{Site: st, Policy: pol, Series: s, Files: files, Inputs: in})
}

func inputByName(t *testing.T, r *Report, name string) InputReport {
	t.Helper()
	for _, in := range r.Inputs.Signals {
		if in.Signal == name {
			return in
		}
	}
	t.Fatalf("no input %s in the report", name)
	return InputReport{}
}

// An hourly trace with no max_age in the site file: the max_age is derived
// from the cadence (2 h), so the price never goes stale between samples.
// With the site's 30 min it is stale half of every hour, and that warns.
func TestHourlyTraceDoesNotFailSafe(t *testing.T) {
	s := seriesOf(t, inputsTrace(3, time.Hour, nil, "", nil))
	rep, err := compareOn(t, goldenSite, goldenPolicy, s, InputOptions{})
	require.NoError(t, err)
	price := inputByName(t, rep, "price")
	require.Equal(t, "1h", price.Cadence)
	require.Equal(t, "2h", price.MaxAge)
	require.Equal(t, "2 × cadence", price.MaxAgeFrom)
	require.Zero(t, price.StaleHours)
	require.Zero(t, rep.Inputs.FailSafeHours["curtail"])
	require.Empty(t, rep.Inputs.Warnings)
	require.Greater(t, *rep.OracleCapture, 0.9, "an hourly trace runs like any other")

	explicit := goldenSite + "signals: {price: {max_age: 30m}}\n"
	stale, err := compareOn(t, explicit, goldenPolicy, s, InputOptions{})
	require.NoError(t, err)
	price = inputByName(t, stale, "price")
	require.Equal(t, "site file", price.MaxAgeFrom)
	// Stale from 30 min after each sample to the next: half the time.
	require.InDelta(t, rep.Trace.Hours/2, stale.Inputs.FailSafeHours["curtail"], 1e-9)
	require.Len(t, stale.Inputs.Warnings, 1)
	require.Contains(t, stale.Inputs.Warnings[0], "site.yaml: signals.price.max_age 30m (site file) is shorter than the price cadence 1h of trace t1.csv")
	require.Less(t, stale.ProfitUSD, rep.ProfitUSD)

	// --max-age auto derives it even where the site file sets it.
	in, err := ParseInputOptions([]string{"auto"}, nil)
	require.NoError(t, err)
	auto, err := compareOn(t, explicit, goldenPolicy, s, in)
	require.NoError(t, err)
	require.Equal(t, rep.ProfitUSD, auto.ProfitUSD)
}

// A resampled real 15-minute trace behaves the same way (skipped without
// SWITCHD_TRACES).
func TestResampledRealTraceDoesNotFailSafe(t *testing.T) {
	path := testenv.TraceFile(t, "ercot_lz_houston_rt15_2023-08.csv")
	src, _, closer, err := trace.Open([]string{path})
	require.NoError(t, err)
	s, err := trace.Collect(trace.Resample(src, time.Hour))
	closer.Close()
	require.NoError(t, err)
	require.Equal(t, 31*24, s.Len())
	site, err := config.LoadSite("../examples/site.yaml")
	require.NoError(t, err)
	pol, err := policies.LoadPolicy("../examples/policies/price-only.yaml", site)
	require.NoError(t, err)
	// examples/site.yaml writes out the 30 min default: it warns, and
	// --max-age auto derives 2 h from the trace.
	in, err := ParseInputOptions([]string{"auto"}, nil)
	require.NoError(t, err)
	rep, err := Compare(context.Background(), CompareOptions{Site: site, Policy: pol, Series: s, Files: []string{path}, Inputs: in})
	require.NoError(t, err)
	require.Zero(t, rep.Inputs.FailSafeHours["curtail"])
	require.Empty(t, rep.Inputs.Warnings)
	t.Logf("hourly %s: policy %.0f, threshold %.0f, oracle %.0f, capture %.3f", filepath.Base(path),
		rep.ProfitUSD, rep.Baselines.ThresholdDebounce.ProfitUSD, rep.Baselines.Oracle.ProfitUSD, *rep.OracleCapture)
	require.Greater(t, *rep.OracleCapture, 0.9)
}

// A daily hashprice merged in that ends halfway is missing after its last
// day, not held: the report lists the span, and the policy's fallback prices
// the mining revenue there, as the README says.
func TestSeriesPastItsEndIsMissing(t *testing.T) {
	prices := inputsTrace(4, 15*time.Minute, nil, "", nil)
	// Two daily samples at midnight UTC, far above the fallback of 48.
	hp := "time,hashprice_usd_ph_day\n2024-08-20T00:00:00Z,90\n2024-08-21T00:00:00Z,90\n"
	s := seriesOf(t, prices, hp)
	policy := strings.Replace(goldenPolicy, "fallbacks: {", "fallbacks: {hashprice_usd_ph_day: 48, ", 1)
	var after []float64 // hashprice accounted once the series has run out
	gapStart := time.Date(2024, 8, 22, 0, 0, 0, 0, time.UTC)
	st, err := config.ParseSite("site.yaml", []byte(goldenSite))
	require.NoError(t, err)
	pol, err := policies.ParsePolicy("policy.yaml", []byte(policy), st)
	require.NoError(t, err)
	rep, err := Compare(context.Background(), CompareOptions{Site: st, Policy: pol, Series: s, Files: []string{"t1.csv", "t2.csv"},
		OnInterval: func(r *IntervalRecord) {
			if !r.Start.Before(gapStart.Add(st.MaxAge[switchd.SignalHashprice])) {
				v, _ := r.Values.Get(switchd.SignalHashprice)
				after = append(after, v)
			}
		}})
	require.NoError(t, err)
	hpIn := inputByName(t, rep, "hashprice")
	require.Len(t, hpIn.Gaps, 1)
	g := hpIn.Gaps[0]
	require.Equal(t, "after last sample", g.Kind)
	require.True(t, g.Start.Equal(gapStart), "gap starts %s", g.Start)
	require.True(t, g.End.Equal(rep.Trace.End))
	require.InDelta(t, 43.0/96*100, hpIn.CoveragePct, 1e-9) // 05:00 UTC on the 20th to midnight UTC on the 22nd
	require.Greater(t, hpIn.FallbackHours, 0.0)
	require.Greater(t, hpIn.ImputedRevenueUSD, 0.0)
	require.NotEmpty(t, after)
	for _, v := range after {
		require.Equal(t, 48.0, v, "the fallback, not the last value (90)")
	}
	require.Len(t, rep.Inputs.Notices, 1)
	require.Contains(t, rep.Inputs.Notices[0], "hashprice (trace t1.csv, t2.csv) has no sample for")

	var text bytes.Buffer
	require.NoError(t, rep.WriteText(&text))
	require.Contains(t, text.String(), "gap 2024-08-21T19:00:00-05:00 to 2024-08-24T00:00:00-05:00 (2.2 d, after last sample)")
}

// A policy that needs grid_load (its fail-safe and rules read it) on a trace
// without it is refused with one error naming the input and the trace; with
// --missing it runs as told.
func TestPolicyNeedingMissingInput(t *testing.T) {
	s := seriesOf(t, inputsTrace(2, 15*time.Minute, nil, "", nil))
	policy := goldenPolicy + `  - name: peak
    when: {grid_load_above_mw: 70000}
    then: {forbid: {asics: [mining]}}
fail_safe: {price: curtail, grid_load: hold}
`
	policy = strings.Replace(policy, "fail_safe: {price: curtail}\n", "", 1)
	_, err := compareOn(t, goldenSite, policy, s, InputOptions{}, "houston.csv")
	require.Error(t, err)
	require.Equal(t, `policy policy.yaml needs grid_load (its fail_safe is hold and rule "peak" reads it), but trace houston.csv has no grid_load_mw column: `+
		`give a trace that carries it (--trace may be repeated to merge one in), or say how to run without it: `+
		`--missing grid_load=fail-safe (absent throughout: its fail-safe applies, as live when a feed never arrives), `+
		`--missing grid_load=ignore (as if the policy did not read it) or --missing grid_load=VALUE (a constant)`, err.Error())

	run := func(flag string) *Report {
		in, err := ParseInputOptions(nil, []string{flag})
		require.NoError(t, err)
		rep, err := compareOn(t, goldenSite, policy, s, in, "houston.csv")
		require.NoError(t, err)
		return rep
	}
	held := run("grid_load=fail-safe")
	require.InDelta(t, held.Trace.Hours, held.Inputs.FailSafeHours["hold"], 1e-9, "held from the first tick")
	require.Equal(t, "fail-safe", inputByName(t, held, "grid_load").Missing)
	ignored := run("grid_load=ignore")
	require.Zero(t, ignored.Inputs.FailSafeHours["hold"])
	require.Greater(t, ignored.Switches, 0)
	require.Greater(t, ignored.ProfitUSD, held.ProfitUSD)
	// A constant above the threshold: the rule keeps miners off throughout.
	high := run("grid_load=80000")
	require.Zero(t, high.Inputs.FailSafeHours["hold"])
	require.Zero(t, high.RevenueUSD.Mining)
}

// Energy drawn while the price is missing is priced at the last known price
// and reported as imputed.
func TestPriceGapIsImputed(t *testing.T) {
	// 03:00 to 04:30 on day one has no price: six empty cells.
	s := seriesOf(t, inputsTrace(2, 15*time.Minute, func(i int) bool { return i >= 12 && i < 18 }, "", nil))
	policy := strings.Replace(goldenPolicy, "fail_safe: {price: curtail}\n", "", 1) // keep running through the gap
	rep, err := compareOn(t, goldenSite, policy, s, InputOptions{})
	require.NoError(t, err)
	price := inputByName(t, rep, "price")
	require.Len(t, price.Gaps, 1)
	require.InDelta(t, 1.5, price.Gaps[0].Hours, 1e-9)
	im := rep.Inputs.Imputed
	require.Greater(t, im.EnergyMWh, 0.0)
	require.Equal(t, im.EnergyMWh, im.HeldMWh)
	require.InDelta(t, 30*im.EnergyMWh, im.CostUSD, 1e-6, "at the last known price, 30 USD/MWh")
	// The site runs flat out at 30 USD/MWh: about 1.5 h of its draw.
	require.InDelta(t, rep.EnergyMWh.Total/rep.Trace.Hours*1.5, im.EnergyMWh, 0.05*im.EnergyMWh)
	var text bytes.Buffer
	require.NoError(t, rep.WriteText(&text))
	require.Contains(t, text.String(), fmt.Sprintf("imputed energy (drawn while the trace had no price): %.1f MWh", im.EnergyMWh))

	// Without a gap nothing is imputed.
	full, err := compareOn(t, goldenSite, policy, seriesOf(t, inputsTrace(2, 15*time.Minute, nil, "", nil)), InputOptions{})
	require.NoError(t, err)
	require.Zero(t, full.Inputs.Imputed.EnergyMWh)
	require.False(t, math.IsNaN(full.ProfitUSD))
}

func TestTraceWarnings(t *testing.T) {
	site, err := config.ParseSite("site.yaml", []byte(goldenSite+"signals: {price: {max_age: 30m}}\n"))
	require.NoError(t, err)
	pol, err := policies.ParsePolicy("policy.yaml", []byte(goldenPolicy), site)
	require.NoError(t, err)
	hourly := seriesOf(t, inputsTrace(1, time.Hour, nil, "", nil))
	ws := TraceWarnings(site, pol, hourly, []string{"hourly.csv"})
	require.Equal(t, []string{"site.yaml: signals.price.max_age 30m (site file) is shorter than the price cadence 1h of trace hourly.csv: " +
		"price goes stale 30m after each sample and its fail-safe (curtail) then applies until the next; set it to at least 1h, e.g. 2h"}, ws)
	// The live daemon derives nothing: the default warns too.
	site, err = config.ParseSite("site.yaml", []byte(goldenSite))
	require.NoError(t, err)
	ws = TraceWarnings(site, nil, hourly, []string{"hourly.csv"})
	require.Len(t, ws, 1)
	require.Contains(t, ws[0], "max_age 30m (default)")
	require.Contains(t, ws[0], "it is then missing (the policy's fallback applies, or none)")
	require.Empty(t, TraceWarnings(site, pol, seriesOf(t, inputsTrace(1, 15*time.Minute, nil, "", nil)), []string{"q.csv"}))
}

func TestParseInputOptions(t *testing.T) {
	o, err := ParseInputOptions([]string{"price=2h", "grid_load=auto"}, []string{"grid_load=ignore", "cp_alert=0.5", "hashprice=fail-safe"})
	require.NoError(t, err)
	require.Equal(t, 2*time.Hour, o.MaxAge[switchd.SignalPrice])
	require.True(t, o.MaxAgeAuto[switchd.SignalGridLoad])
	require.Equal(t, Missing{Mode: MissingIgnore}, *o.Missing[switchd.SignalGridLoad])
	require.Equal(t, Missing{Mode: MissingValue, Value: 0.5}, *o.Missing[switchd.SignalCPAlert])
	require.Equal(t, MissingFailSafe, o.Missing[switchd.SignalHashprice].Mode)
	_, err = ParseInputOptions([]string{"price=soon", "gridload=1h"}, []string{"grid_load=maybe"})
	require.ErrorContains(t, err, `--max-age "price=soon": "soon" is not a positive duration`)
	require.ErrorContains(t, err, `--max-age "gridload=1h": want auto, SIGNAL=DURATION or SIGNAL=auto`)
	require.ErrorContains(t, err, `--missing "grid_load=maybe": "maybe" is not fail-safe, ignore or a number`)
}
