package trace

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/internal/testenv"
)

func chicago(t *testing.T) *time.Location {
	loc, err := time.LoadLocation("America/Chicago")
	require.NoError(t, err)
	return loc
}

// writeTrace writes a CSV trace file and returns its path.
func writeTrace(t *testing.T, name, body string) string {
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

// quarterHours returns a price trace of n quarter-hours from start.
func quarterHours(start time.Time, n int) string {
	var b strings.Builder
	b.WriteString("time,price_usd_mwh\n")
	for i := range n {
		fmt.Fprintf(&b, "%s,%d\n", start.Add(time.Duration(i)*15*time.Minute).Format(time.RFC3339), i)
	}
	return b.String()
}

func TestParseRepeat(t *testing.T) {
	r, err := ParseRepeat("weekly")
	require.NoError(t, err)
	require.Equal(t, RepeatWeekly, r)
	require.Equal(t, "weekly", r.String())
	_, err = ParseRepeat("monthly")
	require.EqualError(t, err, `unknown repeat "monthly" (want weekly or none)`)
}

// A 2-day demand file (Wed-Thu) tiled over three weeks of prices: every
// Wednesday and Thursday carries the file's value at the same time of day,
// the other days have no fresh sample.
func TestOpenRepeatWeekly(t *testing.T) {
	loc := chicago(t)
	prices := writeTrace(t, "p.csv", quarterHours(time.Date(2024, 1, 1, 0, 0, 0, 0, loc), 3*7*96)) // Mon Jan 1
	var b strings.Builder
	b.WriteString("time,ai_demand_gpus\n")
	d0 := time.Date(2024, 11, 6, 0, 0, 0, 0, loc) // a Wednesday
	for i := range 2 * 96 {
		fmt.Fprintf(&b, "%s,%d\n", d0.Add(time.Duration(i)*15*time.Minute).Format(time.RFC3339), i)
	}
	demand := writeTrace(t, "d.csv", b.String())

	src, notices, c, err := OpenRepeat([]string{prices, demand}, []Repeat{RepeatNone, RepeatWeekly}, loc)
	require.NoError(t, err)
	defer c.Close()
	require.Contains(t, strings.Join(notices, "\n"), "repeated weekly")
	s, err := Collect(src)
	require.NoError(t, err)
	require.Equal(t, 3*7*96, s.Len())
	fresh := 0
	for i := range s.Len() {
		tm := s.Time(i)
		wd := tm.Weekday()
		if !s.Fresh(i, switchd.SignalAIDemand) {
			require.NotContains(t, []time.Weekday{time.Wednesday, time.Thursday}, wd, "row %s", tm)
			continue
		}
		fresh++
		require.Contains(t, []time.Weekday{time.Wednesday, time.Thursday}, wd, "row %s", tm)
		v, ok := s.Value(i, switchd.SignalAIDemand)
		require.True(t, ok)
		want := float64((int(wd-time.Wednesday)*96 + tm.Hour()*4 + tm.Minute()/15))
		require.Equal(t, want, v, "row %s", tm)
	}
	require.Equal(t, 3*2*96, fresh)
	cov := s.Coverage(switchd.SignalAIDemand)
	require.NotEmpty(t, cov.Gaps, "Fri-Tue are missing, not made up")
}

// Across DST the copy keeps the wall clock: the hour skipped in March is
// dropped, the hour repeated in November is yielded twice.
func TestTileWeeklyDST(t *testing.T) {
	loc := chicago(t)
	d0 := time.Date(2024, 11, 6, 0, 0, 0, 0, loc) // Wed, CST
	var rows []Row
	for i := range 5 * 96 {
		r := Row{Time: d0.Add(time.Duration(i) * 15 * time.Minute)}
		r.Values[switchd.SignalAIDemand], r.Has[switchd.SignalAIDemand] = float64(i), true
		rows = append(rows, r)
	}
	collect := func(from time.Time, until time.Time) []Row {
		src, err := TileWeekly(rows, loc, from, "d.csv")
		require.NoError(t, err)
		var out []Row
		prev := time.Time{}
		for {
			r, err := src.Next()
			require.NoError(t, err)
			require.True(t, prev.IsZero() || r.Time.After(prev))
			prev = r.Time
			if !r.Time.Before(until) {
				return out
			}
			if !r.Time.Before(from) {
				out = append(out, r)
			}
		}
	}
	// Sun 2024-03-10: 02:00-03:00 does not exist; Thu..Sun copy.
	mar := collect(time.Date(2024, 3, 10, 0, 0, 0, 0, loc), time.Date(2024, 3, 11, 0, 0, 0, 0, loc))
	require.Len(t, mar, 92)
	for _, r := range mar {
		require.Equal(t, r.Time, r.At[switchd.SignalAIDemand])
		h, m, _ := r.Time.Clock()
		i := 4*96 + h*4 + m/15 // Sunday is the file's fifth day
		require.Equal(t, float64(i), r.Values[switchd.SignalAIDemand], "at %s", r.Time)
	}
	// Sun 2024-11-03: 01:00-02:00 happens twice; both carry the value.
	nov := collect(time.Date(2024, 11, 3, 0, 0, 0, 0, loc), time.Date(2024, 11, 4, 0, 0, 0, 0, loc))
	require.Len(t, nov, 100)
}

func TestTileWeeklyRejects(t *testing.T) {
	loc := chicago(t)
	d0 := time.Date(2024, 11, 6, 0, 0, 0, 0, loc)
	rows := []Row{{Time: d0}, {Time: d0.AddDate(0, 0, 7)}}
	_, err := TileWeekly(rows, loc, d0, "long.csv")
	require.ErrorContains(t, err, "long.csv: --repeat weekly: the file spans")
	_, err = TileWeekly(nil, loc, d0, "empty.csv")
	require.EqualError(t, err, "empty.csv: --repeat weekly: no rows")

	p := writeTrace(t, "p.csv", quarterHours(d0, 4))
	_, _, _, err = OpenRepeat([]string{p, p}, []Repeat{RepeatWeekly}, loc)
	require.ErrorContains(t, err, "--repeat cannot apply to the first --trace")
	bad := writeTrace(t, "bad.csv", "time,ai_demand_gpus\n2024-11-06T00:00:00-06:00,1\n2024-11-06T00:15:00-06:00,x\n")
	_, _, _, err = OpenRepeat([]string{p, bad}, []Repeat{RepeatNone, RepeatWeekly}, loc)
	var te *Error
	require.True(t, errors.As(err, &te), "%v", err)
	require.Equal(t, 3, te.Line)
}

// The real 5-day BurstGPT demand file over the 2024 ERCOT year: every
// Wednesday to Sunday of the year carries demand, every Monday and Tuesday
// is missing, and the merged series stays strictly increasing across DST.
func TestOpenRepeatBurstGPTOverERCOT(t *testing.T) {
	price := testenv.TraceFile(t, "ercot_hb_hubavg_rt15_2024.csv")
	demand := testenv.TraceFile(t, "ai_demand_burstgpt_15min.csv")
	loc := chicago(t)
	src, _, c, err := OpenRepeat([]string{price, demand}, []Repeat{RepeatNone, RepeatWeekly}, loc)
	require.NoError(t, err)
	defer c.Close()
	s, err := Collect(src)
	require.NoError(t, err)
	for i := range s.Len() {
		wd := s.Time(i).In(loc).Weekday()
		mid := wd != time.Monday && wd != time.Tuesday
		require.Equal(t, mid, s.Fresh(i, switchd.SignalAIDemand), "row %s", s.Time(i))
	}
	_, err = src.Next()
	require.True(t, errors.Is(err, io.EOF))
}
