package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/internal/testenv"
	"github.com/switchd/switchd/policies"
	"github.com/switchd/switchd/trace"
)

// The traces in this file are made up by the test (this project), not
// market data: round numbers placed so that the peaks are known in advance.

var cdt = time.FixedZone("CDT", -5*3600)

func cpSeries(t *testing.T, csv string) *trace.Series {
	t.Helper()
	r, err := trace.NewReader(strings.NewReader(csv), "made-up.csv")
	require.NoError(t, err)
	s, err := trace.Collect(r)
	require.NoError(t, err)
	return s
}

func cpSettings(t *testing.T, section string) *config.Site {
	t.Helper()
	site, err := config.ParseSite("cp-site.yaml", []byte(goldenSite+section))
	require.NoError(t, err)
	require.NotNil(t, site.CoincidentPeak)
	return site
}

// summerTrace is a made-up 15-minute trace from 31 May to 30 September 2024
// whose grid load is hourly, repeated on the four quarter-hours as ERCOT's
// is: a daily curve topping at 65 GW, and these hours above it.
var summerPeaks = map[string]float64{
	"2024-05-31T17": 90000, // highest of all, but in May
	"2024-06-12T17": 80000,
	"2024-07-03T16": 81000,
	"2024-08-05T17": 84000, // August's second day
	"2024-08-20T16": 84500, // August's second-highest hour, on its peak day
	"2024-08-20T17": 85000,
	"2024-09-05T15": 79000,
}

func summerTrace() string {
	var b strings.Builder
	b.WriteString("time,price_usd_mwh,grid_load_mw\n")
	for t := time.Date(2024, 5, 31, 0, 0, 0, 0, cdt); t.Before(time.Date(2024, 10, 1, 0, 0, 0, 0, cdt)); t = t.Add(15 * time.Minute) {
		h := float64(t.Hour())
		load := 50000 + 15000*math.Max(0, math.Sin((h-6)/16*math.Pi))
		if v, ok := summerPeaks[t.Format("2006-01-02T15")]; ok {
			load = v
		}
		fmt.Fprintf(&b, "%s,30,%.0f\n", t.Format(time.RFC3339), load)
	}
	return b.String()
}

func peakStarts(r *CPReport) []string {
	var out []string
	for _, p := range r.Peaks {
		out = append(out, fmt.Sprintf("%s %s-%s x%d %.0f", p.Month, p.Start.Format("01-02 15:04"), p.End.Format("15:04"), p.Intervals, p.GridLoadMW))
	}
	return out
}

func TestCPPeaks(t *testing.T) {
	summer := cpSeries(t, summerTrace())
	chicago, err := time.LoadLocation("America/Chicago")
	require.NoError(t, err)
	for _, tc := range []struct {
		name, section string
		want          []string
		notes         []string
	}{
		// One peak in each of June to September, the hour's four
		// quarter-hours tied; May's higher load does not count.
		{"4CP", "coincident_peak: {scheme: 4cp_15m, rate_usd_per_kw_year: 55}\n",
			[]string{
				"2024-06 06-12 17:00-18:00 x4 80000",
				"2024-07 07-03 16:00-17:00 x4 81000",
				"2024-08 08-20 17:00-18:00 x4 85000",
				"2024-09 09-05 15:00-16:00 x4 79000",
			},
			[]string{"4 of 4 peaks span several 15m intervals of equal grid load (load data coarser than the interval, e.g. ERCOT's hourly load): the data cannot tell which was the system peak, so each run is charged its average draw over all of them"}},
		// The 12-peak 30-minute variant, one setting away: May counts now,
		// though the trace holds only its last day; October and the rest
		// are not in the trace.
		{"12CP 30-minute", "coincident_peak: {scheme: 12cp_30m, rate_usd_per_kw_year: 55}\n",
			[]string{
				"2024-05 05-31 17:00-18:00 x2 90000",
				"2024-06 06-12 17:00-18:00 x2 80000",
				"2024-07 07-03 16:00-17:00 x2 81000",
				"2024-08 08-20 17:00-18:00 x2 85000",
				"2024-09 09-05 15:00-16:00 x2 79000",
			},
			[]string{
				"grid load averaged over each 30m interval from the trace's 15m rows",
				"5 of 5 peaks span several 30m intervals of equal grid load (load data coarser than the interval, e.g. ERCOT's hourly load): the data cannot tell which was the system peak, so each run is charged its average draw over all of them",
				"2024-05: the trace gives grid load for 3% of the month; its peak is the highest of that part only",
				"5 of the 12 peaks of 2024 are in the trace: each run is charged their share (5/12 of the annual rate), not a full year's",
			}},
		// Two peaks a month fall on distinct days: August 20's 16:00 hour
		// is higher than August 5's peak but on the same day as the first.
		{"two a month on distinct days", "coincident_peak: {peaks_per_month: 2, months: [8], interval: 1h, rate_usd_per_kw_year: 55}\n",
			[]string{
				"2024-08 08-05 17:00-18:00 x1 84000",
				"2024-08 08-20 17:00-18:00 x1 85000",
			},
			[]string{"grid load averaged over each 1h interval from the trace's 15m rows"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			site := cpSettings(t, tc.section)
			st := newCPStudy(site.CoincidentPeak, chicago, summer)
			require.True(t, st.rep.Computed, st.rep.Reason)
			require.Equal(t, tc.want, peakStarts(&st.rep))
			require.Equal(t, tc.notes, st.rep.Notes)
		})
	}
}

// TestCPIntervalAggregation: with 15-minute grid loads that differ, the
// 15-minute peak and the 30-minute peak are different intervals.
func TestCPIntervalAggregation(t *testing.T) {
	loads := map[string]float64{"16:00": 70000, "16:15": 90000, "16:30": 60000, "17:00": 80000, "17:15": 82000}
	var b strings.Builder
	b.WriteString("time,price_usd_mwh,grid_load_mw\n")
	for t := time.Date(2024, 7, 10, 0, 0, 0, 0, cdt); t.Day() == 10; t = t.Add(15 * time.Minute) {
		load := 50000.0
		if v, ok := loads[t.Format("15:04")]; ok {
			load = v
		}
		fmt.Fprintf(&b, "%s,30,%.0f\n", t.Format(time.RFC3339), load)
	}
	s := cpSeries(t, b.String())
	q := cpSettings(t, "coincident_peak: {months: [7], interval: 15m, rate_usd_per_kw_year: 55}\n")
	st := newCPStudy(q.CoincidentPeak, q.Location, s)
	require.Equal(t, []string{"2024-07 07-10 16:15-16:30 x1 90000"}, peakStarts(&st.rep))

	h := cpSettings(t, "coincident_peak: {months: [7], interval: 30m, rate_usd_per_kw_year: 55}\n")
	st = newCPStudy(h.CoincidentPeak, h.Location, s)
	// 16:00-16:30 averages 80,000 MW; 17:00-17:30 averages 81,000.
	require.Equal(t, []string{"2024-07 07-10 17:00-17:30 x1 81000"}, peakStarts(&st.rep))
	require.Contains(t, st.rep.Notes, "grid load averaged over each 30m interval from the trace's 15m rows")
	require.Contains(t, st.rep.Notes, "2024-07: the trace gives grid load for 3% of the month; its peak is the highest of that part only")
}

func TestCPNotComputed(t *testing.T) {
	site := cpSettings(t, "coincident_peak: {scheme: 4cp_15m, rate_usd_per_kw_year: 55}\n")
	noLoad := cpSeries(t, "time,price_usd_mwh\n2024-08-01T00:00:00-05:00,30\n2024-08-01T00:15:00-05:00,31\n")
	st := newCPStudy(site.CoincidentPeak, site.Location, noLoad)
	require.False(t, st.rep.Computed)
	require.Equal(t, "the trace has no grid_load_mw column, so its system peaks are unknown: no coincident-peak charge computed", st.rep.Reason)

	winter := cpSeries(t, "time,price_usd_mwh,grid_load_mw\n2024-01-15T00:00:00-06:00,30,60000\n2024-01-15T00:15:00-06:00,31,61000\n")
	st = newCPStudy(site.CoincidentPeak, site.Location, winter)
	require.False(t, st.rep.Computed)
	require.Equal(t, "the trace has no 15m interval with a grid load in the peak months (Jun, Jul, Aug, Sep): no coincident-peak charge computed", st.rep.Reason)
	require.Nil(t, st.meter(nil).result(100), "no charge, rather than a charge of zero")

	require.Nil(t, newCPStudy(nil, site.Location, winter), "no section, no study")
}

func TestCPCharge(t *testing.T) {
	cfg := &config.CoincidentPeak{PeaksPerMonth: 1, Months: []time.Month{6, 7, 8, 9}, Interval: 15 * time.Minute, RateUSDPerKWYear: 55}
	// The average peak load times the annual rate: 2,500 kW × 55.
	require.InDelta(t, 137500, CPChargeUSD([]float64{1000, 2000, 3000, 4000}, cfg), 1e-9)
	// One peak of four: its quarter share.
	require.InDelta(t, 55*4000.0/4, CPChargeUSD([]float64{4000}, cfg), 1e-9)

	// The meter: a peak of two tied 15-minute intervals, 17:00-17:30, and
	// runs recorded at 15-minute and hourly granularity.
	st := &cpStudy{cfg: cfg}
	st.rep.Computed = true
	st.rep.Peaks = []CPPeak{{Intervals: 2}}
	p0 := time.Date(2024, 8, 20, 17, 0, 0, 0, cdt)
	st.spans = []cpSpan{{p0, p0.Add(15 * time.Minute), 0}, {p0.Add(15 * time.Minute), p0.Add(30 * time.Minute), 0}}
	var seen int
	m := st.meter(func(*IntervalRecord) { seen++ })
	for i, kw := range []float64{9000, 1000, 3000, 9000} { // 16:45, 17:00, 17:15, 17:30
		s := p0.Add(time.Duration(i-1) * 15 * time.Minute)
		m.onInterval()(&IntervalRecord{Start: s, End: s.Add(15 * time.Minute), PowerKW: kw})
	}
	require.Equal(t, 4, seen, "records are passed on")
	rc := m.result(50000)
	require.Equal(t, []float64{2000}, rc.PeakLoadKW, "the average over the tied intervals")
	require.InDelta(t, 55*2000.0/4, rc.ChargeUSD, 1e-9)
	require.InDelta(t, 50000-rc.ChargeUSD, rc.ProfitNetUSD, 1e-9)

	hourly := st.meter(nil)
	hourly.onInterval()(&IntervalRecord{Start: p0, End: p0.Add(time.Hour), PowerKW: 1200})
	require.Equal(t, []float64{1200}, hourly.result(0).PeakLoadKW, "a coarser row gives its average draw")
}

// cpAlertTrace is two made-up August days: cheap power, an hourly grid load
// that peaks at 85 GW on the 20th from 17:00, and a forecaster's alert of
// 0.8 from 14:00 to 20:00 that day (0.1 otherwise).
func cpAlertTrace() string {
	var b strings.Builder
	b.WriteString("time,price_usd_mwh,hashprice_usd_ph_day,grid_load_mw,cp_alert_probability\n")
	t0 := time.Date(2024, 8, 19, 0, 0, 0, 0, cdt)
	for i := range 192 {
		t := t0.Add(time.Duration(i) * 15 * time.Minute)
		load := 60000 + 500*float64(t.Hour())
		alert := 0.1
		if t.Day() == 20 {
			if t.Hour() == 17 {
				load = 85000
			}
			if t.Hour() >= 14 && t.Hour() < 20 {
				alert = 0.8
			}
		}
		fmt.Fprintf(&b, "%s,30,50,%.0f,%g\n", t.Format(time.RFC3339), load, alert)
	}
	return b.String()
}

const cpAlertPolicy = `
fallbacks: {inference_usd_gpu_hour: 2.10, ai_demand_gpus: 350}
hysteresis_usd_mwh: 5
fail_safe: {price: curtail}
rules:
  - name: cp-alert
    when: {cp_alert_above: 0.5}
    then: {forbid: {asics: [mining]}}
`

// TestCPReport runs a comparison on a site with a 4CP charge: the cp_alert
// rule keeps the miners off in the peak, always-on does not, and the report
// says so in figures, text and JSON.
func TestCPReport(t *testing.T) {
	site := cpSettings(t, "coincident_peak: {scheme: 4cp_15m, rate_usd_per_kw_year: 55}\n")
	pol, err := policies.ParsePolicy("cp-policy.yaml", []byte(cpAlertPolicy), site)
	require.NoError(t, err)
	rep, err := Compare(context.Background(), CompareOptions{Site: site, Policy: pol, Series: cpSeries(t, cpAlertTrace()), Files: []string{"made-up.csv"}})
	require.NoError(t, err)
	checkInvariants(t, site, rep)

	cp := rep.CoincidentPeak
	require.NotNil(t, cp)
	require.True(t, cp.Computed)
	require.Equal(t, []string{"2024-08 08-20 17:00-18:00 x4 85000"}, peakStarts(cp))
	require.Equal(t, 4, cp.PeaksPerSeason)
	require.Equal(t, 55.0, cp.RateUSDPerKWYear)
	require.Equal(t, cpOracleNote, cp.Oracle)

	pc, ac, tc := rep.CP, rep.Baselines.AlwaysOn.CP, rep.Baselines.ThresholdDebounce.CP
	require.NotNil(t, pc)
	require.NotNil(t, ac)
	require.NotNil(t, tc)
	// Always-on runs every miner (3,500 kW) and the GPUs AI demand wants.
	require.Greater(t, ac.PeakLoadKW[0], 3900.0)
	// The alert sent the miners to sleep hours before: GPUs only.
	require.Less(t, pc.PeakLoadKW[0], 600.0)
	for name, rc := range map[string]*RunCP{"policy": pc, "always_on": ac, "threshold_debounce": tc} {
		require.Len(t, rc.PeakLoadKW, 1, name)
		require.InDelta(t, 55*rc.PeakLoadKW[0]/4, rc.ChargeUSD, 1e-6, name)
		require.InDelta(t, rc.PeakLoadKW[0], rc.AvgPeakLoadKW, 1e-9, name)
		require.InDelta(t, ac.ChargeUSD-rc.ChargeUSD, rc.AvoidedUSD, 1e-6, name)
	}
	require.InDelta(t, rep.ProfitUSD-pc.ChargeUSD, pc.ProfitNetUSD, 1e-6)
	require.InDelta(t, rep.Baselines.AlwaysOn.ProfitUSD-ac.ChargeUSD, ac.ProfitNetUSD, 1e-6)
	require.Greater(t, pc.AvoidedUSD, 40000.0)
	require.Zero(t, ac.AvoidedUSD)
	// The bound ignores the charge and still bounds net profit, even less
	// the least charge: 1,000 miners asleep at 15 W and 400 idle GPUs at
	// 200 W draw 95 kW.
	require.InDelta(t, 55*95.0/4, *cp.LeastChargeUSD, 1e-9)
	require.InDelta(t, rep.Baselines.Oracle.ProfitUSD-*cp.LeastChargeUSD, *cp.OracleNetBoundUSD, 1e-6)
	for _, rc := range []*RunCP{pc, ac, tc} {
		require.LessOrEqual(t, rc.ProfitNetUSD, *cp.OracleNetBoundUSD)
		require.GreaterOrEqual(t, rc.ChargeUSD, *cp.LeastChargeUSD)
	}

	var text bytes.Buffer
	require.NoError(t, rep.WriteText(&text))
	out := text.String()
	for _, want := range []string{
		"coincident-peak charge (USD)",
		"profit net of CP charge (USD)",
		"CP charge avoided vs always_on (USD)",
		"coincident peaks (4cp_15m: 4 peaks a year (1 a month in Jun, Jul, Aug, Sep), 15m intervals, 55 USD/kW-year)",
		"charge = 55 USD/kW-year × Σ site kW in each peak / 4 peaks a year",
		"2024-08  2024-08-20 17:00 CDT  18:00          4           85000",
		"note: 1 of the 4 peaks of 2024 are in the trace: each run is charged their share (1/4 of the annual rate), not a full year's",
		"oracle: the perfect-foresight bound ignores coincident-peak charges",
	} {
		require.Contains(t, out, want)
	}

	var js bytes.Buffer
	require.NoError(t, rep.WriteJSON(&js))
	var doc struct {
		Charge         *RunCP    `json:"coincident_peak_charge"`
		CoincidentPeak *CPReport `json:"coincident_peak"`
		Baselines      struct {
			AlwaysOn struct {
				Charge *RunCP `json:"coincident_peak_charge"`
			} `json:"always_on"`
		} `json:"baselines"`
	}
	require.NoError(t, json.Unmarshal(js.Bytes(), &doc))
	require.Equal(t, pc, doc.Charge)
	require.Equal(t, ac, doc.Baselines.AlwaysOn.Charge)
	require.Len(t, doc.CoincidentPeak.Peaks, 1)
	require.Equal(t, 85000.0, doc.CoincidentPeak.Peaks[0].GridLoadMW)
	require.True(t, doc.CoincidentPeak.Peaks[0].Start.Equal(time.Date(2024, 8, 20, 17, 0, 0, 0, cdt)))

	// Without a grid load the report says no charge was computed, and no
	// run carries one.
	noLoad := strings.ReplaceAll(cpAlertTrace(), ",grid_load_mw,", ",other_mw,")
	rep, err = Compare(context.Background(), CompareOptions{Site: site, Policy: pol, Series: cpSeries(t, noLoad), Files: []string{"made-up.csv"}})
	require.NoError(t, err)
	require.False(t, rep.CoincidentPeak.Computed)
	require.Nil(t, rep.CP)
	require.Nil(t, rep.Baselines.AlwaysOn.CP)
	text.Reset()
	require.NoError(t, rep.WriteText(&text))
	require.Contains(t, text.String(), "the trace has no grid_load_mw column, so its system peaks are unknown: no coincident-peak charge computed")
	require.NotContains(t, text.String(), "coincident-peak charge (USD)")
}

// TestCPRealTraces: on the real ERCOT traces the 4CP policy is charged less
// than the threshold baseline, which ignores peaks.
func TestCPRealTraces(t *testing.T) {
	site, err := config.LoadSite("../examples/site.yaml")
	require.NoError(t, err)
	require.NotNil(t, site.CoincidentPeak, "examples/site.yaml charges 4CP")
	pol, err := policies.LoadPolicy("../examples/policies/ercot-4cp.yaml", site)
	require.NoError(t, err)
	for _, tc := range []struct {
		files []string
		peaks int
	}{
		{[]string{"ercot_hb_hubavg_rt15_2024.csv"}, 4},
		{[]string{"ercot_lz_houston_rt15_2023-08.csv", "btc_hashprice_daily_2023-04_2024-04.csv"}, 1},
	} {
		t.Run(tc.files[0], func(t *testing.T) {
			var files []string
			for _, f := range tc.files {
				files = append(files, testenv.TraceFile(t, f))
			}
			src, _, closer, err := trace.Open(files)
			require.NoError(t, err)
			series, err := trace.Collect(src)
			closer.Close()
			require.NoError(t, err)
			rep, err := Compare(context.Background(), CompareOptions{Site: site, Policy: pol, Series: series, Files: files})
			require.NoError(t, err)
			cp := rep.CoincidentPeak
			require.True(t, cp.Computed, cp.Reason)
			require.Len(t, cp.Peaks, tc.peaks)
			pc, ac, tc := rep.CP, rep.Baselines.AlwaysOn.CP, rep.Baselines.ThresholdDebounce.CP
			require.Less(t, pc.ChargeUSD, tc.ChargeUSD, "ercot-4cp must be charged less than threshold_debounce")
			require.Less(t, pc.ChargeUSD, ac.ChargeUSD)
			t.Logf("SIMULATED %s: peaks %v", filepath.Base(files[0]), peakStarts(cp))
			for _, x := range []struct {
				name string
				rr   *RunReport
			}{{"ercot-4cp", &rep.RunReport}, {"threshold_debounce", &rep.Baselines.ThresholdDebounce}, {"always_on", &rep.Baselines.AlwaysOn}} {
				t.Logf("SIMULATED %s %-18s profit %10.0f  CP load %6.0f kW  charge %9.0f  net %10.0f  avoided %9.0f",
					filepath.Base(files[0]), x.name, x.rr.ProfitUSD, x.rr.CP.AvgPeakLoadKW, x.rr.CP.ChargeUSD, x.rr.CP.ProfitNetUSD, x.rr.CP.AvoidedUSD)
			}
			t.Logf("SIMULATED %s oracle bound %.0f (ignores the charge)", filepath.Base(files[0]), rep.Baselines.Oracle.ProfitUSD)
		})
	}
}
