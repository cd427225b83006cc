package daemon

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/daemon/web"
)

// TestFleetViewWakingApart: devices still waking are not shown as running
// in the mode they head to; every row's power adds up to the fleet's.
func TestFleetViewWakingApart(t *testing.T) {
	d, _, _ := newTestDaemon(t, nil)
	f := &d.site.Fleets[0] // asics: off 0.01 kW, mining 3.5 kW
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	obs := &switchd.FleetState{Cohorts: []switchd.Cohort{
		{Mode: switchd.ModeMining, Target: switchd.ModeMining, Since: now, Count: 10},
		{Mode: switchd.ModeOff, Target: switchd.ModeOff, Since: now, Count: 50},
		{Mode: switchd.ModeOff, Target: switchd.ModeMining, Since: now, Count: 30}, // waking
		{Mode: switchd.ModeMining, Target: switchd.ModeOff, Since: now, Count: 10}, // stopping
	}}
	fv := fleetView(f, obs, &fakeDriver{}, nil)

	require.Equal(t, map[string]int{"off": 50, "mining": 10}, fv.Modes)
	require.Equal(t, 40, fv.Moving)
	require.Equal(t, map[string]int{"off": 10, "mining": 30}, fv.MovingTo)
	require.InDelta(t, 10*3.5, fv.PowerByModeKW["mining"], 1e-9, "only the 10 mining, not the 30 waking")
	require.InDelta(t, 50*0.01, fv.PowerByModeKW["off"], 1e-9, "not the 10 still stopping")
	require.InDelta(t, 30*3.5, fv.MovingPowerByModeKW["mining"], 1e-9)
	require.InDelta(t, 10*3.5, fv.MovingPowerByModeKW["off"], 1e-9, "stopping devices draw until they are off")
	sum := 0.0
	for m, kw := range fv.PowerByModeKW {
		sum += kw + fv.MovingPowerByModeKW[m]
	}
	require.InDelta(t, fv.PowerKW, sum, 1e-9, "the rows add up to the fleet")

	run, wake := splitWaking(&fv)
	require.InDelta(t, 30*3.5, wake, 1e-9)
	require.InDelta(t, fv.PowerKW-30*3.5, run, 1e-9)
}

// TestFleetLastDecisionIsItsOwn: each fleet shows the last decision that
// commanded it, with its own commands, even after many decisions about
// another fleet.
func TestFleetLastDecisionIsItsOwn(t *testing.T) {
	d, _, clk := newTestDaemon(t, nil)
	settle := func() {
		for range 4 {
			clk.advance(time.Second)
			d.tick(t.Context())
		}
	}
	observePrice(d, clk, 30) // cheap: both fleets start
	d.tick(t.Context())
	settle()
	v := d.State()
	require.Equal(t, 100, viewFleet(v, "asics").Modes["mining"])
	require.Equal(t, 20, viewFleet(v, "gpus").Modes["inference"])
	gpuStart := viewFleet(v, "gpus").LastDecision
	require.NotNil(t, gpuStart)
	require.Equal(t, []web.CommandView{{Fleet: "gpus", From: "off", To: "inference", Count: 20}}, gpuStart.Commands,
		"the gpus' decision lists the gpus' commands only")

	// The asics flip between off and mining many times; at 500 USD/MWh the
	// GPUs (breakeven about 1,650) keep serving and are never commanded.
	for i := range maxDecisions + 5 {
		clk.advance(time.Second)
		observePrice(d, clk, []float64{500, 30}[i%2])
		d.tick(t.Context())
		settle()
	}
	v = d.State()
	require.Len(t, v.Decisions, maxDecisions)
	for _, dv := range v.Decisions {
		for _, c := range dv.Commands {
			require.Equal(t, "asics", c.Fleet, "only the asics were commanded since")
		}
	}
	gpus := viewFleet(v, "gpus")
	require.NotNil(t, gpus.LastDecision, "the gpus' last decision outlives the site's bounded list")
	require.Equal(t, gpuStart.Time, gpus.LastDecision.Time)
	require.Equal(t, gpuStart.Commands, gpus.LastDecision.Commands)

	asics := viewFleet(v, "asics")
	require.NotNil(t, asics.LastDecision)
	require.Equal(t, v.Decisions[0].Time, asics.LastDecision.Time)
	for _, c := range asics.LastDecision.Commands {
		require.Equal(t, "asics", c.Fleet)
	}
}

// TestHistoryBoundedAndDownsampled: a day of one-second ticks stays within
// the point bound, reaches back a day at a coarser step, and drops what is
// older than the span.
func TestHistoryBoundedAndDownsampled(t *testing.T) {
	var h history
	t0 := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	view := web.StateView{SiteCapKW: 1000, Fleets: []web.FleetView{
		{Name: "asics", PowerKW: 350, MovingPowerByModeKW: map[string]float64{"mining": 50, "off": 0}},
		{Name: "gpus", PowerKW: 25},
	}}
	const ticks = 36 * 3600
	for i := range ticks {
		now := t0.Add(time.Duration(i) * time.Second)
		var decs []web.DecisionView
		if i%600 == 0 { // a decision every 10 minutes, newest first
			decs = []web.DecisionView{{Time: now, Rules: []string{"r"}, Commands: []web.CommandView{{Fleet: "asics", From: "off", To: "mining", Count: i}}}}
		}
		h.record(now, float64(i%100), i%7 != 0, &view, decs)
		require.LessOrEqual(t, len(h.points), historyMaxPoints)
	}
	now := t0.Add((ticks - 1) * time.Second)
	v := h.view(now, "unit", []string{"asics", "gpus"})
	require.NotEmpty(t, v.T)
	require.Len(t, v.PriceUSDPerMWh, len(v.T))
	require.Len(t, v.Fleets[0].RunningKW, len(v.T))
	require.GreaterOrEqual(t, v.T[0], float64(now.Add(-web.HistorySpan).Unix()), "nothing older than a day")
	require.Less(t, v.T[0], float64(now.Add(-web.HistorySpan).Unix()+int64(2*v.StepSeconds)), "and the day is covered")
	require.Greater(t, len(v.T), historyMaxPoints/3)
	require.Greater(t, v.StepSeconds, 1.0)
	require.InDelta(t, 300, v.Fleets[0].RunningKW[len(v.T)-1], 1e-9)
	require.InDelta(t, 50, v.Fleets[0].WakingKW[len(v.T)-1], 1e-9)
	require.InDelta(t, 25, v.Fleets[1].RunningKW[0], 1e-9)
	for i, p := range v.PriceUSDPerMWh {
		require.NotNil(t, p)
		require.LessOrEqual(t, *v.PriceMinUSDPerMWh[i], *p)
		require.GreaterOrEqual(t, *v.PriceMaxUSDPerMWh[i], *p)
	}
	require.Len(t, v.Decisions, 24*6, "a day of decisions")
	require.Equal(t, "asics off→mining ×"+strconv.Itoa(ticks-600), v.Decisions[len(v.Decisions)-1].Summary)
	require.Equal(t, ticks-600, h.lastDecision(0).Commands[0].Count)
	require.Nil(t, h.lastDecision(1), "the gpus were never commanded")
}
