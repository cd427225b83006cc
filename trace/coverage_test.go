package trace

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
)

var cdt = time.FixedZone("", -5*3600)

// priceCSV is a made-up 15-minute price trace of n rows from t0 (TEST DATA,
// not market data); rows whose index is in skip have an empty price cell.
func priceCSV(t0 time.Time, n int, skip map[int]bool) string {
	var b strings.Builder
	b.WriteString("time,price_usd_mwh\n")
	for i := range n {
		fmt.Fprintf(&b, "%s,", t0.Add(time.Duration(i)*15*time.Minute).Format(time.RFC3339))
		if !skip[i] {
			fmt.Fprintf(&b, "%d", 10+i)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func collectCSV(t *testing.T, files ...string) *Series {
	t.Helper()
	srcs := make([]Source, len(files))
	for i, f := range files {
		r, err := NewReader(strings.NewReader(f), fmt.Sprintf("f%d.csv", i+1))
		require.NoError(t, err)
		srcs[i] = r
	}
	s, err := Collect(Merge(srcs...))
	require.NoError(t, err)
	return s
}

func TestCoverage(t *testing.T) {
	t0 := time.Date(2024, 4, 26, 0, 0, 0, 0, cdt)
	t.Run("15-minute price with a missing hour", func(t *testing.T) {
		s := collectCSV(t, priceCSV(t0, 96, map[int]bool{40: true, 41: true, 42: true, 43: true}))
		c := s.Coverage(switchd.SignalPrice)
		require.Equal(t, 15*time.Minute, c.Cadence)
		require.Equal(t, 92, c.Samples)
		require.Equal(t, []Gap{{Start: t0.Add(10 * time.Hour), End: t0.Add(11 * time.Hour), Kind: GapBetween}}, c.Gaps)
		require.InDelta(t, 23.0/24, c.Covered(), 1e-12)
	})
	t.Run("a daily series that ends is missing after its last day", func(t *testing.T) {
		// Hashprice sampled daily at midnight UTC for two days, merged
		// into four days of prices.
		hp := "time,hashprice_usd_ph_day\n2024-04-26T05:00:00Z,60\n2024-04-27T05:00:00Z,61\n"
		s := collectCSV(t, priceCSV(t0, 4*96, nil), hp)
		c := s.Coverage(switchd.SignalHashprice)
		require.Equal(t, 24*time.Hour, c.Cadence)
		require.Len(t, c.Gaps, 1)
		g := c.Gaps[0]
		require.Equal(t, GapAfterLast, g.Kind)
		require.True(t, g.Start.Equal(t0.Add(48*time.Hour)), "gap from %s", g.Start)
		require.True(t, g.End.Equal(s.End()))
		require.InDelta(t, 0.5, c.Covered(), 1e-12)
		// The merged series still carries the last value there: the gap is
		// what tells a consumer that nothing was measured.
		v, ok := s.Value(s.Len()-1, switchd.SignalHashprice)
		require.True(t, ok)
		require.Equal(t, 61.0, v)
		require.False(t, s.Fresh(s.Len()-1, switchd.SignalHashprice))
	})
	t.Run("a signal that starts late and one that is absent", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("time,price_usd_mwh,grid_load_mw\n")
		for i := range 8 {
			load := ""
			if i >= 4 {
				load = "50000"
			}
			fmt.Fprintf(&b, "%s,20,%s\n", t0.Add(time.Duration(i)*15*time.Minute).Format(time.RFC3339), load)
		}
		s := collectCSV(t, b.String())
		c := s.Coverage(switchd.SignalGridLoad)
		require.Equal(t, []Gap{{Start: t0, End: t0.Add(time.Hour), Kind: GapBeforeFirst}}, c.Gaps)
		c = s.Coverage(switchd.SignalHashprice)
		require.Zero(t, c.Samples)
		require.Equal(t, GapNoSample, c.Gaps[0].Kind)
		require.Zero(t, c.Covered())
	})
	t.Run("jitter is not a gap", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("time,price_usd_mwh\n")
		at := t0
		for i := range 20 {
			fmt.Fprintf(&b, "%s,20\n", at.Format(time.RFC3339))
			at = at.Add(15*time.Minute + time.Duration(i%3)*time.Minute)
		}
		c := collectCSV(t, b.String()).Coverage(switchd.SignalPrice)
		require.Empty(t, c.Gaps)
	})
}

func TestResample(t *testing.T) {
	t0 := time.Date(2024, 4, 26, 0, 0, 0, 0, cdt)
	readAll := func(t *testing.T, src Source) []Row {
		t.Helper()
		var rows []Row
		for {
			r, err := src.Next()
			if err == io.EOF {
				return rows
			}
			require.NoError(t, err)
			rows = append(rows, r)
		}
	}
	t.Run("hourly means of 15-minute prices", func(t *testing.T) {
		r, err := NewReader(strings.NewReader(priceCSV(t0, 8, nil)), "p.csv")
		require.NoError(t, err)
		rows := readAll(t, Resample(r, time.Hour))
		require.Len(t, rows, 2)
		require.True(t, rows[0].Time.Equal(t0))
		require.True(t, rows[1].Time.Equal(t0.Add(time.Hour)))
		require.InDelta(t, (10+11+12+13)/4.0, rows[0].Values[switchd.SignalPrice], 1e-12)
		require.InDelta(t, (14+15+16+17)/4.0, rows[1].Values[switchd.SignalPrice], 1e-12)
		require.Equal(t, rows[1].Time, rows[1].At[switchd.SignalPrice], "a fresh sample at the hour")
	})
	t.Run("interval-weighted, gaps kept, a daily series stays daily", func(t *testing.T) {
		// Hour 1 lacks two quarter-hours; hour 2 has no price at all.
		skip := map[int]bool{5: true, 6: true, 8: true, 9: true, 10: true, 11: true}
		hp := "time,hashprice_usd_ph_day\n2024-04-26T05:00:00Z,60\n"
		var srcs []Source
		for i, f := range []string{priceCSV(t0, 16, skip), hp} {
			r, err := NewReader(strings.NewReader(f), fmt.Sprintf("f%d.csv", i))
			require.NoError(t, err)
			srcs = append(srcs, r)
		}
		s, err := Collect(Resample(Merge(srcs...), time.Hour))
		require.NoError(t, err)
		require.Equal(t, 4, s.Len())
		// Hour 1: the sample at :00 and :45 weigh 15 minutes each (the
		// empty cells carry, they are not samples).
		v, _ := s.Value(1, switchd.SignalPrice)
		require.InDelta(t, (14+17)/2.0, v, 1e-12)
		require.False(t, s.Fresh(2, switchd.SignalPrice), "no sample in hour 2: none made up")
		c := s.Coverage(switchd.SignalPrice)
		require.Equal(t, time.Hour, c.Cadence)
		require.Equal(t, []Gap{{Start: t0.Add(2 * time.Hour), End: t0.Add(3 * time.Hour), Kind: GapBetween}}, c.Gaps)
		require.Equal(t, 1, s.Coverage(switchd.SignalHashprice).Samples)
		for i := 1; i < s.Len(); i++ {
			require.False(t, s.Fresh(i, switchd.SignalHashprice), "row %d", i)
		}
	})
	t.Run("writes and reads back", func(t *testing.T) {
		r, err := NewReader(strings.NewReader(priceCSV(t0, 10, nil)), "p.csv")
		require.NoError(t, err)
		var out bytes.Buffer
		require.NoError(t, WriteCSV(&out, Resample(r, 30*time.Minute)))
		require.Equal(t, "time,price_usd_mwh\n"+
			"2024-04-26T00:00:00-05:00,10.5\n2024-04-26T00:30:00-05:00,12.5\n2024-04-26T01:00:00-05:00,14.5\n"+
			"2024-04-26T01:30:00-05:00,16.5\n2024-04-26T02:00:00-05:00,18.5\n", out.String())
	})
	t.Run("local days across a change of offset", func(t *testing.T) {
		// ERCOT-style rows around the November fall-back, hourly.
		var b strings.Builder
		b.WriteString("time,price_usd_mwh\n")
		at := time.Date(2024, 11, 2, 0, 0, 0, 0, time.UTC).Add(5 * time.Hour) // midnight CDT
		for range 72 {
			loc := cdt
			if !at.Before(time.Date(2024, 11, 3, 7, 0, 0, 0, time.UTC)) {
				loc = time.FixedZone("", -6*3600)
			}
			fmt.Fprintf(&b, "%s,20\n", at.In(loc).Format(time.RFC3339))
			at = at.Add(time.Hour)
		}
		r, err := NewReader(strings.NewReader(b.String()), "dst.csv")
		require.NoError(t, err)
		s, err := Collect(Resample(r, 24*time.Hour))
		require.NoError(t, err)
		require.Equal(t, 3, s.Len())
		require.Equal(t, "2024-11-02T00:00:00-05:00", s.Time(0).Format(time.RFC3339))
		require.Equal(t, "2024-11-03T00:00:00-05:00", s.Time(1).Format(time.RFC3339))
		require.Equal(t, "2024-11-04T00:00:00-06:00", s.Time(2).Format(time.RFC3339), "a 25-hour day")
		// Hourly, the repeated hour stays two hours.
		r, err = NewReader(strings.NewReader(b.String()), "dst.csv")
		require.NoError(t, err)
		s, err = Collect(Resample(r, time.Hour))
		require.NoError(t, err)
		require.Equal(t, 72, s.Len())
	})
	t.Run("step must be positive", func(t *testing.T) {
		r, err := NewReader(strings.NewReader(priceCSV(t0, 2, nil)), "p.csv")
		require.NoError(t, err)
		_, err = Resample(r, 0).Next()
		require.ErrorContains(t, err, "step must be positive")
	})
}
