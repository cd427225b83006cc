package sim

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/dr"
	"github.com/switchd/switchd/internal/testenv"
	"github.com/switchd/switchd/policies"
	"github.com/switchd/switchd/trace"
)

func TestPeakEvents(t *testing.T) {
	s := goldenSeries(t)
	evs := PeakEvents(s, PeakEventOptions{N: 3, Gap: 6 * time.Hour, Notice: 10 * time.Minute, Duration: time.Hour, Program: "p", TargetKW: 300})
	require.Len(t, evs, 3)
	// The 2,500 USD/MWh spike (rows 76-81) holds the first pick; the others
	// are the highest prices at least 6 h away from it and each other.
	spike := s.Time(76)
	require.Contains(t, []time.Time{evs[0].Start, evs[1].Start, evs[2].Start}, spike)
	for i, ev := range evs {
		require.NoError(t, ev.Validate())
		require.Equal(t, ev.Start.Add(-10*time.Minute), ev.Notice)
		require.Equal(t, time.Hour, ev.End.Sub(ev.Start))
		require.False(t, ev.End.After(s.End()))
		if i > 0 {
			require.GreaterOrEqual(t, ev.Start.Sub(evs[i-1].Start), 6*time.Hour)
		}
	}
}

func TestCompareWithEvents(t *testing.T) {
	site, err := config.ParseSite("golden-site.yaml", []byte(goldenSite))
	require.NoError(t, err)
	pol, err := policies.ParsePolicy("golden-policy.yaml", []byte(goldenPolicy), site)
	require.NoError(t, err)
	s := goldenSeries(t)
	at := func(i int) time.Time { return s.Time(i) }
	kw := func(v float64) *float64 { return &v }
	evs := []dr.Event{
		// Midday on day one: the policy runs flat out; 300 kW means GPUs go too.
		{ID: "noon", Program: "ers", TargetKW: kw(300), Notice: at(46), Start: at(48), End: at(52)},
		// Off draw is 1000 x 0.015 + 400 x 0.2 = 95 kW: 50 kW is out of reach.
		{ID: "impossible", Program: "ers", TargetKW: kw(50), Notice: at(140), Start: at(144), End: at(148)},
		// Shed below the baseline, with a deadline 15 minutes in.
		{ID: "shed", Program: "lr", ShedKW: kw(1000), Notice: at(120), Start: at(124), End: at(128), Deadline: at(125)},
		{ID: "late", Program: "ers", TargetKW: kw(300), Notice: s.End().Add(time.Hour), Start: s.End().Add(2 * time.Hour), End: s.End().Add(3 * time.Hour)},
	}
	rep, err := Compare(context.Background(), CompareOptions{Site: site, Policy: pol, Series: s, Files: []string{"golden.csv"}, Events: evs})
	require.NoError(t, err)
	d := rep.DR
	require.NotNil(t, d)
	require.True(t, d.Simulated)
	require.Equal(t, 2, d.Met)
	require.Equal(t, 1, d.NotMet)
	require.Equal(t, 1, d.NotDelivered)
	byID := map[string]DREventReport{}
	for _, e := range d.Events {
		byID[e.ID] = e
	}
	noon := byID["noon"]
	require.True(t, noon.Met)
	require.Equal(t, "ended", noon.Phase)
	require.Empty(t, noon.Alarm)
	require.Zero(t, noon.ShortfallKWh)
	require.Greater(t, noon.BaselineKW, 3000.0, "the site ran near its 4 MW cap before noon")
	require.InDelta(t, 1, noon.BaselineKnown, 1e-9, "the load was measured over all 10 intervals before notice")
	require.NotNil(t, noon.TimeToTargetSeconds)
	require.Len(t, noon.Intervals, 4)
	for _, in := range noon.Intervals {
		require.LessOrEqual(t, in.MeanKW, 300+1e-6)
	}

	imp := byID["impossible"]
	require.False(t, imp.Met)
	require.Equal(t, dr.AlarmCannotMeet, imp.Alarm, "known when the cap took force")
	require.InDelta(t, 45, imp.ShortfallKWh, 1e-6, "95 kW against 50 kW for an hour")

	shed := byID["shed"]
	require.True(t, shed.Met)
	require.InDelta(t, shed.BaselineKW-1000, shed.CapKW, 1e-9)

	var text bytes.Buffer
	require.NoError(t, d.WriteText(&text, ""))
	require.Contains(t, text.String(), "SIMULATED demand-response compliance: 2 met by deadline, 1 not met, 0 pending at trace end, 1 noticed after it")
	require.Contains(t, text.String(), "cannot_meet")

	// The baselines get no events; the policy's own report has them.
	rep2, err := Compare(context.Background(), CompareOptions{Site: site, Policy: pol, Series: s, Files: []string{"golden.csv"}})
	require.NoError(t, err)
	require.Nil(t, rep2.DR)
	require.Equal(t, rep2.Baselines.AlwaysOn, rep.Baselines.AlwaysOn)
}

// TestPeakEventsRealTrace: ten events on the highest prices of a real ERCOT
// month are all met, the example site shedding miners (and GPUs when the
// target asks for it) within its transition times.
func TestPeakEventsRealTrace(t *testing.T) {
	path := testenv.TraceFile(t, "ercot_lz_houston_rt15_2023-08.csv")
	site, err := config.LoadSite("../examples/site.yaml")
	require.NoError(t, err)
	pol, err := policies.LoadPolicy("../examples/policies/price-only.yaml", site)
	require.NoError(t, err)
	src, _, closer, err := trace.Open([]string{path})
	require.NoError(t, err)
	s, err := trace.Collect(src)
	closer.Close()
	require.NoError(t, err)
	for _, target := range []float64{9000, 3000} {
		evs := PeakEvents(s, PeakEventOptions{N: 10, Gap: 24 * time.Hour, Notice: 10 * time.Minute, Duration: time.Hour, Program: "p", TargetKW: target})
		require.Len(t, evs, 10)
		rep, err := Compare(context.Background(), CompareOptions{Site: site, Policy: pol, Series: s, Files: []string{filepath.Base(path)}, Events: evs})
		require.NoError(t, err)
		require.Equal(t, 10, rep.DR.Met, "target %v kW", target)
		require.Zero(t, rep.DR.ShortfallKWh)
	}
}
