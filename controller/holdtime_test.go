package controller

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/policies"
)

var holdT0 = time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC)

// feed records one sample every step, starting at holdT0, with the prices
// given and forced[j] as the j-th sample's mask (none when short).
func feed(e *holdEstimator, step time.Duration, prices []float64, forced ...uint64) time.Time {
	t := holdT0
	for j, p := range prices {
		var f uint64
		if j < len(forced) {
			f = forced[j]
		}
		e.observe(holdT0.Add(time.Duration(j)*step), p, f)
		t = holdT0.Add(time.Duration(j) * step)
	}
	return t
}

// repeat returns n copies of p.
func repeat(p float64, n int) []float64 {
	out := make([]float64, n)
	for j := range out {
		out[j] = p
	}
	return out
}

// join concatenates price runs.
func join(runs ...[]float64) []float64 {
	var out []float64
	for _, r := range runs {
		out = append(out, r...)
	}
	return out
}

func TestHoldEstimator(t *testing.T) {
	const (
		theta = 100.0
		cheap = 50.0
		dear  = 300.0
		h     = time.Hour
		q     = 15 * time.Minute
	)
	// Hourly samples: cheap spells of 4 h and 8 h, a dear spell of 2 h
	// between them and one of 1 h before the present cheap spell.
	history := join(repeat(cheap, 4), repeat(dear, 2), repeat(cheap, 8), repeat(dear, 1))
	tests := []struct {
		name       string
		step       time.Duration
		prices     []float64
		forced     []uint64
		after      time.Duration // now, after the newest sample
		gainsAbove bool
		switchArea float64
		wantHold   time.Duration
		wantBack   float64
	}{
		{name: "no samples", step: h, wantHold: 0},
		{name: "one sample is no history", step: h, prices: []float64{cheap}, after: 3 * h, wantHold: 0},
		// The present spell began with the first sample 3 h ago and none has
		// ended: it is expected to last as long again.
		{name: "no spell ended: as long again", step: h, prices: repeat(cheap, 3), after: 0, wantHold: 2 * h},
		{name: "never below the spacing", step: q, prices: []float64{dear, cheap}, after: 0, wantHold: q, wantBack: 1},
		// A fresh cheap spell is judged by both past cheap spells (4 h, 8 h).
		{name: "fresh spell: mean of past spells", step: h, prices: append(history[:len(history):len(history)], cheap), after: 0,
			switchArea: 1e9, wantHold: 6 * h, wantBack: (200*2 + 200*1) / 2 / 1e9},
		// 5 h in, only the 8 h spell lasted as long: 3 h more.
		{name: "older spell: only longer spells count", step: h, prices: append(history[:len(history):len(history)], cheap), after: 5 * h,
			switchArea: 1e9, wantHold: 3 * h, wantBack: 300.0 / 1e9},
		// 9 h in, none lasted as long: as long again.
		{name: "longest yet: as long again", step: h, prices: append(history[:len(history):len(history)], cheap), after: 9 * h,
			switchArea: 1e9, wantHold: 9 * h, wantBack: 300.0 / 1e9},
		// Each dear spell's area (200 USD/MWh × 2 h, × 1 h) against one
		// switch's worth of 300: the 2 h spell is worth a switch back, the
		// 1 h one two thirds of one.
		{name: "back share: area over a switch, at most one", step: h, prices: append(history[:len(history):len(history)], cheap),
			switchArea: 300, wantHold: 6 * h, wantBack: (1 + 200.0/300) / 2},
		// The dear side of a mode drawing less than off gains: the present
		// dear spell, just begun, is judged by the past 2 h one.
		{name: "gains above", step: h, prices: history, after: 0, gainsAbove: true, switchArea: 1e9,
			wantHold: 2 * h, wantBack: (50*4 + 50*8) / 2 / 1e9},
		// The mode was out of reach for the middle cheap sample: the 8 h
		// cheap spell is two of 3 h and 4 h, and the forced hour costs a
		// whole switch back.
		{name: "forced samples end spells", step: h, prices: append(history[:len(history):len(history)], cheap),
			forced:     func() []uint64 { f := make([]uint64, len(history)+1); f[10] = 1; return f }(),
			switchArea: 1e9, wantHold: (4 + 3 + 4) * h / 3, wantBack: (400.0/1e9 + 1 + 200.0/1e9) / 3},
		{name: "forced bit of another mode is ignored", step: h, prices: append(history[:len(history):len(history)], cheap),
			forced:     func() []uint64 { f := make([]uint64, len(history)+1); f[10] = 2; return f }(),
			switchArea: 1e9, wantHold: 6 * h, wantBack: 600.0 / 2 / 1e9},
		{name: "at the threshold counts as below", step: h, prices: join(repeat(theta, 2), repeat(dear, 1), repeat(theta, 1)),
			switchArea: 1e9, wantHold: 2 * h, wantBack: 200.0 / 1e9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e holdEstimator
			last := feed(&e, tt.step, tt.prices, tt.forced...)
			hold, back := e.hold(&holdTrack{}, last.Add(tt.after), theta, tt.gainsAbove, 1, tt.switchArea)
			require.Equal(t, tt.wantHold, hold)
			require.InDelta(t, tt.wantBack, back, 1e-12)
		})
	}
}

func TestHoldEstimatorObserve(t *testing.T) {
	t.Run("older samples, repeats and bad prices", func(t *testing.T) {
		var e holdEstimator
		e.observe(holdT0, 50, 0)
		e.observe(holdT0.Add(time.Hour), 60, 0)
		e.observe(holdT0.Add(30*time.Minute), 70, 0) // older than the newest: ignored
		e.observe(holdT0.Add(2*time.Hour), math.NaN(), 0)
		e.observe(holdT0.Add(2*time.Hour), math.Inf(1), 0)
		e.observe(holdT0.Add(time.Hour), 60, 4) // the newest again: adds its mask
		require.Equal(t, 2, e.n)
		require.Equal(t, []float64{50, 60}, e.price[:2])
		require.Equal(t, uint64(4), e.forced[e.idx(1)])
	})
	t.Run("the window is a week", func(t *testing.T) {
		var e holdEstimator
		last := feed(&e, time.Hour, repeat(50, 24*10))
		// The newest week of samples, and the one that began before it.
		require.Equal(t, 24*7+1, e.n)
		require.Equal(t, last.Add(-HoldWindow).UnixNano(), e.atNs[e.idx(0)])
	})
	t.Run("a fast feed is bounded", func(t *testing.T) {
		var e holdEstimator
		last := feed(&e, time.Minute, repeat(50, holdMaxSamples+100))
		require.Equal(t, holdMaxSamples, e.n)
		require.Len(t, e.atNs, holdMaxSamples)
		require.Equal(t, last.UnixNano(), e.atNs[e.idx(e.n-1)])
		require.Equal(t, last.Add(-time.Duration(holdMaxSamples-1)*time.Minute).UnixNano(), e.atNs[e.idx(0)])
	})
}

func TestHoldEstimatorAllocs(t *testing.T) {
	var e holdEstimator
	prices := join(repeat(50, 300), repeat(300, 30), repeat(50, 300), repeat(300, 60), repeat(50, 10))
	last := feed(&e, 15*time.Minute, prices)
	var tr holdTrack
	_, _ = e.hold(&tr, last, 100, false, holdBit(1, switchd.ModeMining), 300)
	allocs := testing.AllocsPerRun(100, func() {
		last = last.Add(15 * time.Minute)
		e.observe(last, 40, holdBit(1, switchd.ModeMining))
		_, _ = e.hold(&tr, last, 100, false, holdBit(1, switchd.ModeMining), 300)
	})
	require.Zero(t, allocs)
}

func TestHoldBit(t *testing.T) {
	require.Equal(t, uint64(1)<<4, holdBit(1, switchd.ModeMining))
	require.Equal(t, uint64(1)<<63, holdBit(21, switchd.Mode(0)))
	require.Zero(t, holdBit(22, switchd.ModeMining), "fleets past the mask are never forced")
}

const plannerSite = `
site: {name: t, timezone: UTC, power_cap_kw: 100000}
fleets:
  - name: asics
    kind: asic
    count: 10
    driver: sim
    switch_cost_usd: 1
    modes:
      off: {power_kw: 0}
      mining: {power_kw: 3.5, hashrate_ths: 200}
  - name: free
    kind: asic
    count: 10
    driver: sim
    modes:
      off: {power_kw: 0}
      mining: {power_kw: 3.5, hashrate_ths: 200}
`

const plannerPolicy = `
fallbacks: {hashprice_usd_ph_day: 50}
rules:
  - name: spike
    when: {price_above_usd_mwh: 100}
    then: {forbid: {asics: [mining]}}
`

// TestPolicyPlannerHolds drives the planner through the snapshot, as the
// controller does, and checks what it gives the dispatcher.
func TestPolicyPlannerHolds(t *testing.T) {
	site, err := config.ParseSite("site.yaml", []byte(plannerSite))
	require.NoError(t, err)
	pol, err := policies.ParsePolicy("policy.yaml", []byte(plannerPolicy), site)
	require.NoError(t, err)
	var (
		p    PolicyPlanner
		snap switchd.Snapshot
		d    Decision
	)
	in := PlanInput{Site: site, Policy: pol, Snap: &snap, Current: make([][switchd.NumModes]int, 2)}
	now := holdT0
	plan := func(price float64) {
		snap.Set(switchd.Sample{Time: now, Signal: switchd.SignalPrice, Value: price})
		p.Plan(now, &in, &d)
		// A tick between samples adds nothing but its constraints.
		p.Plan(now.Add(5*time.Minute), &in, &d)
		now = now.Add(15 * time.Minute)
	}
	// 4 h cheap, 1 h forbidden by the spike rule (though still below the
	// breakeven of 119.05 USD/MWh), 2 h cheap so far.
	for range 16 {
		plan(50)
	}
	for range 4 {
		plan(110)
	}
	for range 8 {
		plan(50)
	}
	require.Equal(t, 28, p.hold.n)
	// The fleet without a switching cost, and off, have nothing to spread.
	require.Equal(t, math.Inf(1), p.din.HoldHours[1][switchd.ModeMining])
	require.Equal(t, math.Inf(1), p.din.HoldHours[0][switchd.ModeOff])
	// Asked at 5 min past the newest sample: the cheap spell has lasted 1 h
	// 50 min of the 4 h seen before.
	require.InDelta(t, 4-(1+50.0/60), p.din.HoldHours[0][switchd.ModeMining], 1e-9)
	// The forbidden hour ended a spell, and costs a whole switch back
	// although its price was on the gaining side.
	require.Equal(t, 1.0, p.din.BackShare[0][switchd.ModeMining])

	allocs := testing.AllocsPerRun(50, func() { plan(60) })
	require.Zero(t, allocs)
}

// TestHoldTrackIncremental checks that a track kept between calls, folding
// samples in as they come, answers as one built afresh at every step, also
// when the breakeven moves, the newest sample's mask grows, samples go by
// unseen or fall out of the window. Only the back share may differ once the
// window is full: a spell partly out of it keeps its whole area.
func TestHoldTrackIncremental(t *testing.T) {
	var e holdEstimator
	var kept holdTrack
	now := holdT0
	for j := range 900 {
		// Spells of uneven length around 100, with spikes.
		price := 60 + 80*math.Sin(float64(j)/7) + 30*math.Sin(float64(j)/2.3)
		if j%97 == 50 {
			price = 3000
		}
		var forced uint64
		if j%61 < 3 {
			forced = 1
		}
		e.observe(now, price, forced)
		if j%45 == 7 { // a rule fires between samples
			e.observe(now, price, 1)
		}
		theta := 100.0
		if j >= 300 {
			theta = 110 // hashprice moved
		}
		if j%13 != 5 { // some samples go by unqueried
			at := now.Add(time.Duration(j%4) * time.Minute)
			gotHold, gotBack := e.hold(&kept, at, theta, false, 1, 500)
			wantHold, wantBack := e.hold(&holdTrack{}, at, theta, false, 1, 500)
			require.Equal(t, wantHold, gotHold, "sample %d", j)
			if e.seq0 == 0 {
				require.InDelta(t, wantBack, gotBack, 1e-9, "sample %d", j)
			}
			require.True(t, gotBack >= 0 && gotBack <= 1, "sample %d: back share %v", j, gotBack)
		}
		now = now.Add(15 * time.Minute)
	}
	require.Positive(t, e.seq0, "the window was reached")
}

// TestHoldEstimatorTimeOfDay checks that a spell is judged by the past
// spells that began at about the same time of day: with every afternoon a
// spike, a one-hour lull between spikes and a cheap night that lasts until
// the next afternoon are both cheap spells, and a fresh one is expected to
// last as long as those that began near its own hour, not their mean.
func TestHoldEstimatorTimeOfDay(t *testing.T) {
	const (
		theta = 100.0
		cheap = 50.0
		dear  = 300.0
	)
	// One day, hourly: cheap until 14:00, dear 14–16, a lull at 16:00,
	// dear 17–20, cheap from 20:00 (until 14:00 the next day: 18 h).
	day := join(repeat(cheap, 14), repeat(dear, 2), repeat(cheap, 1), repeat(dear, 3), repeat(cheap, 4))
	history := join(day, day, day, day[:16])
	for _, loc := range []*time.Location{nil, time.FixedZone("UTC-6", -6*3600)} {
		name := "UTC"
		if loc != nil {
			name = loc.String()
		}
		t.Run(name, func(t *testing.T) {
			// Zones move the site's clock, not the samples' pattern: shift the
			// feed so that the pattern's hours are the zone's.
			shift := time.Duration(0)
			if loc != nil {
				_, off := holdT0.In(loc).Zone()
				shift = -time.Duration(off) * time.Second
			}
			at := func(j int) time.Time { return holdT0.Add(shift + time.Duration(j)*time.Hour) }
			// A lull begins at 16:00 on day 3: judged by the three earlier
			// lulls (1 h each), not by the 18 h nights.
			e := holdEstimator{loc: loc}
			for j, p := range append(history[:len(history):len(history)], cheap) {
				e.observe(at(j), p, 0)
			}
			hold, _ := e.hold(&holdTrack{}, at(len(history)), theta, false, 1, 1e9)
			require.Equal(t, time.Hour, hold, "a lull between afternoon spikes")

			// The night begins at 20:00 on day 3: judged by the nights before
			// it that ended within the window (18 h each).
			e = holdEstimator{loc: loc}
			night := join(day, day, day, day[:20], repeat(cheap, 1))
			for j, p := range night {
				e.observe(at(j), p, 0)
			}
			hold, _ = e.hold(&holdTrack{}, at(len(night)-1), theta, false, 1, 1e9)
			require.Equal(t, 18*time.Hour, hold, "a cheap night")
		})
	}
}

func TestNearInDay(t *testing.T) {
	h := int32(3600)
	require.True(t, nearInDay(16*h, 18*h))
	require.False(t, nearInDay(16*h, 18*h+1))
	require.True(t, nearInDay(23*h, 1*h), "across midnight")
	require.False(t, nearInDay(22*h, 1*h))
	require.Equal(t, 17*h+30*60, timeOfDay(time.Date(2024, 7, 1, 22, 30, 0, 0, time.UTC).UnixNano(), time.FixedZone("CDT", -5*3600)))
	require.Equal(t, 22*h+30*60, timeOfDay(time.Date(2024, 7, 1, 22, 30, 0, 0, time.UTC).UnixNano(), nil))
}
