package controller_test

import (
	"strconv"
	"strings"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd/dr"
)

// drStep adds a demand-response event: dr ID shed|target KW key=offset ...
func (s *scenario) drStep(where string, f []string) {
	t := s.t
	require.GreaterOrEqual(t, len(f), 4, where)
	kw, err := strconv.ParseFloat(f[3], 64)
	require.NoError(t, err, where)
	now := s.clock.t
	ev := dr.Event{ID: f[1], Program: "test"}
	switch f[2] {
	case "shed":
		ev.ShedKW = &kw
	case "target":
		ev.TargetKW = &kw
	default:
		t.Fatalf("%s: want shed or target, got %q", where, f[2])
	}
	refused := ""
	for _, kv := range f[4:] {
		k, v, ok := strings.Cut(kv, "=")
		require.True(t, ok, where)
		if k == "refused" {
			refused = strings.ReplaceAll(v, "_", " ")
			continue
		}
		d, err := time.ParseDuration(v)
		require.NoError(t, err, where)
		switch k {
		case "notice":
			ev.Notice = now.Add(d)
		case "start":
			ev.Start = now.Add(d)
		case "end":
			ev.End = now.Add(d)
		case "deadline":
			ev.Deadline = now.Add(d)
		case "interval":
			ev.Interval = dr.Duration(d)
		default:
			t.Fatalf("%s: unknown key %q", where, k)
		}
	}
	_, err = s.ctl.AddDREvent(now, ev)
	if refused != "" {
		require.ErrorContains(t, err, refused, where)
		return
	}
	require.NoError(t, err, where)
}

// expectDR checks an event's record.
func (s *scenario) expectDR(where string, f []string) {
	t := s.t
	require.GreaterOrEqual(t, len(f), 2, where)
	var rec *dr.Record
	recs := s.ctl.DRRecords()
	for i := range recs {
		if recs[i].Event.ID == f[1] {
			rec = &recs[i]
		}
	}
	require.NotNil(t, rec, "%s: no event %q", where, f[1])
	num := func(v string) float64 {
		x, err := strconv.ParseFloat(v, 64)
		require.NoError(t, err, where)
		return x
	}
	for _, kv := range f[2:] {
		k, v, ok := strings.Cut(kv, "=")
		require.True(t, ok, where)
		switch k {
		case "phase":
			require.Equal(t, v, string(rec.Phase), "%s: phase", where)
		case "met":
			require.Equal(t, v, strconv.FormatBool(rec.Met), "%s: met", where)
		case "alarm":
			if v == "-" {
				v = ""
			}
			require.Equal(t, v, rec.Alarm, "%s: alarm", where)
		case "cap":
			require.InDelta(t, num(v), rec.CapKW, 0.5, "%s: cap", where)
		case "baseline":
			require.InDelta(t, num(v), rec.BaselineKW, 0.5, "%s: baseline", where)
		case "shortfall":
			require.InDelta(t, num(v), rec.ShortfallKWh, 0.05, "%s: shortfall", where)
		case "met-after":
			d, err := time.ParseDuration(v)
			require.NoError(t, err, where)
			require.Equal(t, rec.Event.Start.Add(d), rec.MetAt, "%s: met at start+%s", where, v)
		case "intervals":
			require.Len(t, rec.Intervals, int(num(v)), "%s: intervals", where)
		default:
			t.Fatalf("%s: unknown key %q", where, k)
		}
	}
}
