package policies

import (
	"encoding/csv"
	"errors"
	"io"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/internal/testenv"
)

// TestEvaluateERCOT2024 replays the real 2024 ERCOT hub-average trace
// (SWITCHD_TRACES/ercot_hb_hubavg_rt15_2024.csv) through the ercot-4cp
// example and checks every interval against the rules worked out by hand
// from the calendar: the cron windows, DST and thresholds must agree with
// plain date arithmetic on a year of real timestamps.
func TestEvaluateERCOT2024(t *testing.T) {
	f, err := os.Open(testenv.TraceFile(t, "ercot_hb_hubavg_rt15_2024.csv"))
	require.NoError(t, err)
	defer f.Close()
	r := csv.NewReader(f)
	header, err := r.Read()
	require.NoError(t, err)
	require.Equal(t, []string{"time", "price_usd_mwh", "grid_load_mw"}, header[:3])

	site, p := examplePolicy(t, "ercot-4cp.yaml")
	require.Equal(t, "4cp-watch", p.Rules[0].Name)
	require.NotNil(t, p.Rules[0].When.NearMonthPeakPct)
	near := *p.Rules[0].When.NearMonthPeakPct / 100
	var snap switchd.Snapshot
	var ev Evaluation
	rows, watch, spikes := 0, 0, 0
	peaks := map[time.Month]float64{}
	peakFired := map[time.Month]bool{}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		at, err := time.Parse(time.RFC3339, rec[0])
		require.NoError(t, err)
		price, err := strconv.ParseFloat(rec[1], 64)
		require.NoError(t, err)
		load, err := strconv.ParseFloat(rec[2], 64)
		require.NoError(t, err)
		snap.Set(switchd.Sample{Time: at, Signal: switchd.SignalPrice, Value: price})
		snap.Set(switchd.Sample{Time: at, Signal: switchd.SignalGridLoad, Value: load})
		snap.NotePeak(at.In(site.Location), load)
		p.EvaluateInto(at, &snap, site, &ev)
		rows++

		local := at.In(site.Location)
		inWindow := local.Month() >= time.June && local.Month() <= time.September &&
			local.Weekday() >= time.Monday && local.Weekday() <= time.Friday &&
			local.Hour() >= 15 && local.Hour() < 19
		var want []string
		if inWindow && load > 75000 && load >= near*snap.MonthPeakGridLoad {
			want = append(want, "4cp-watch")
			watch++
		}
		if price > 1000 {
			want = append(want, "price-spike")
			spikes++
		}
		if price > 3000 {
			want = append(want, "price-emergency")
		}
		require.Equal(t, want, nilIfEmpty(ev.Fired), "at %s (price %s, load %s)", rec[0], rec[1], rec[2])
		require.False(t, ev.Curtail)
		require.Empty(t, ev.Stale)

		if m := local.Month(); m >= time.June && m <= time.September && load > peaks[m] {
			peaks[m] = load
			peakFired[m] = len(ev.Fired) > 0 && ev.Fired[0] == "4cp-watch"
		}
	}
	// 366 days of quarter-hours (a leap year; DST days have 92 and 100);
	// the other counts come from a separate script over the same file.
	require.Equal(t, 366*96, rows)
	require.Equal(t, 32, spikes)
	// 644 quarter-hours pass the 75 GW threshold in the window; 468 of them
	// are below 99.8% of their month's highest load so far (268 below 99%,
	// 28 below 95%).
	require.Equal(t, 176, watch)
	require.Len(t, peaks, 4)
	for m, fired := range peakFired {
		require.True(t, fired, "the %s peak of %.0f MW was not in the 4cp-watch window", m, peaks[m])
	}
}

// TestNextEdge4CPSeason walks the ercot-4cp example's windows edge to edge
// through 2024: two edges per weekday from June to September.
func TestNextEdge4CPSeason(t *testing.T) {
	site, p := examplePolicy(t, "ercot-4cp.yaml")
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, site.Location)
	end := start.AddDate(1, 0, 0)
	weekdays := 0
	for d := start; d.Before(end); d = d.AddDate(0, 0, 1) {
		if d.Month() >= time.June && d.Month() <= time.September && d.Weekday() != time.Saturday && d.Weekday() != time.Sunday {
			weekdays++
		}
	}
	edges := 0
	for now := p.NextEdge(start, site); now.Before(end); now = p.NextEdge(now, site) {
		local := now.In(site.Location)
		require.Contains(t, []int{15, 19}, local.Hour(), "edge at %v", local)
		require.Zero(t, local.Minute())
		edges++
	}
	require.Equal(t, 86, weekdays)
	require.Equal(t, 2*weekdays, edges)
}
