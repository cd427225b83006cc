package policies

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
)

func chicago(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("America/Chicago")
	require.NoError(t, err)
	return loc
}

func window(t testing.TB, spec string, d time.Duration) *Window {
	t.Helper()
	s, err := parseSchedule(spec, time.UTC)
	require.NoError(t, err)
	return &Window{Spec: spec, Schedule: s, For: d}
}

func TestWindowActive(t *testing.T) {
	loc := chicago(t)
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		require.NoError(t, err)
		return v
	}
	daily3pm := window(t, "0 15 * * *", 3*time.Hour)
	fourCP := window(t, "0 15 * 6-9 1-5", 4*time.Hour)
	midnight4h := window(t, "0 0 * * *", 4*time.Hour)
	twoThirty := window(t, "30 2 * * *", time.Hour)
	oneThirty := window(t, "30 1 * * *", 30*time.Minute)
	utc := window(t, "CRON_TZ=UTC 0 15 * * *", time.Hour)
	for _, tc := range []struct {
		name string
		w    *Window
		now  string
		want bool
	}{
		// 3 pm site time is 21:00Z in CST (UTC-6) and 20:00Z in CDT (UTC-5).
		{"CST day before spring forward, opening instant", daily3pm, "2024-03-09T15:00:00-06:00", true},
		{"CST day, a second before", daily3pm, "2024-03-09T14:59:59-06:00", false},
		{"CST day, last nanosecond", daily3pm, "2024-03-09T17:59:59.999999999-06:00", true},
		{"CST day, closing instant is outside", daily3pm, "2024-03-09T18:00:00-06:00", false},
		{"spring forward day opens at 20:00Z", daily3pm, "2024-03-10T20:00:00Z", true},
		{"spring forward day, 21:00Z is 4 pm", daily3pm, "2024-03-10T21:00:00Z", true},
		{"spring forward day, 19:59Z is 2:59 pm", daily3pm, "2024-03-10T19:59:00Z", false},
		{"spring forward day closes at 23:00Z", daily3pm, "2024-03-10T23:00:00Z", false},
		{"fall back day opens at 21:00Z again", daily3pm, "2024-11-03T21:00:00Z", true},
		{"fall back day, 20:30Z is 2:30 pm CST", daily3pm, "2024-11-03T20:30:00Z", false},
		{"fall back day closes at 6 pm CST", daily3pm, "2024-11-04T00:00:00Z", false},
		// For is elapsed time: a 4h window from midnight on the night
		// the clocks skip an hour closes at 5 am on the wall clock.
		{"window across spring forward, 4:30 am CDT", midnight4h, "2024-03-10T04:30:00-05:00", true},
		{"window across spring forward, 5:00 am CDT", midnight4h, "2024-03-10T05:00:00-05:00", false},
		{"window across fall back, second 1:30 am", midnight4h, "2024-11-03T01:30:00-06:00", true},
		{"window across fall back, 3:00 am CST", midnight4h, "2024-11-03T03:00:00-06:00", false},
		// Wall times the clock skips or repeats: cron skips a start that
		// does not exist and fires twice on one that happens twice.
		{"2:30 does not exist on spring forward day", twoThirty, "2024-03-10T03:30:00-05:00", false},
		{"2:30 the day after", twoThirty, "2024-03-11T02:30:00-05:00", true},
		{"1:30 CDT on fall back day", oneThirty, "2024-11-03T01:45:00-05:00", true},
		{"1:30 CST on fall back day", oneThirty, "2024-11-03T01:45:00-06:00", true},
		{"between the two 1:30s", oneThirty, "2024-11-03T01:15:00-06:00", false},
		// 4CP: weekdays June to September, 3 pm to 7 pm.
		{"4CP peak 2024-06-27 Thu 4 pm", fourCP, "2024-06-27T16:00:00-05:00", true},
		{"4CP Saturday", fourCP, "2024-06-29T16:00:00-05:00", false},
		{"4CP last day of May", fourCP, "2024-05-31T16:00:00-05:00", false},
		{"4CP 2024-09-30 Mon 6:59 pm", fourCP, "2024-09-30T18:59:00-05:00", true},
		{"4CP 2024-10-01 Tue", fourCP, "2024-10-01T16:00:00-05:00", false},
		{"4CP 7 pm", fourCP, "2024-08-20T19:00:00-05:00", false},
		{"CRON_TZ ignores the site zone", utc, "2024-07-01T15:30:00Z", true},
		{"CRON_TZ, 3:30 pm site time", utc, "2024-07-01T15:30:00-05:00", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.w.Active(at(tc.now), loc))
		})
	}
}

func TestWindowActiveDegenerate(t *testing.T) {
	now := time.Date(2024, 7, 1, 15, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		w    *Window
		loc  *time.Location
		want bool
	}{
		{"nil window", nil, time.UTC, false},
		{"no schedule", &Window{For: time.Hour}, time.UTC, false},
		{"zero duration", &Window{Schedule: window(t, "0 15 * * *", 0).Schedule}, time.UTC, false},
		{"nil location means UTC", window(t, "0 15 * * *", time.Hour), nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.w.Active(now, tc.loc))
		})
	}
}

func TestNextEdge(t *testing.T) {
	site := loadTestSite(t)
	loc := site.Location
	fourCP := parseTestPolicy(t, site, `
rules:
  - name: 4cp
    when: {schedule: "0 15 * 6-9 1-5", for: 4h}
    then: {forbid: {asics: [mining]}}
`)
	two := parseTestPolicy(t, site, `
rules:
  - name: daily
    when: {schedule: "0 15 * * *", for: 3h}
    then: {site_cap_kw: 1000}
  - name: morning
    when: {schedule: "0 6 * * *", for: 30m}
    then: {site_cap_kw: 1000}
  - name: no-window
    when: {price_above_usd_mwh: 100}
    then: {site_cap_kw: 1000}
`)
	none := parseTestPolicy(t, site, "rules:\n  - {name: r, then: {site_cap_kw: 1}}\n")
	local := func(y int, mo time.Month, d, h, mi int) time.Time { return time.Date(y, mo, d, h, mi, 0, 0, loc) }
	for _, tc := range []struct {
		name string
		p    *Policy
		now  time.Time
		want time.Time
	}{
		{"before the window opens", fourCP, local(2024, 6, 27, 12, 0), local(2024, 6, 27, 15, 0)},
		{"inside: it closes", fourCP, local(2024, 6, 27, 15, 30), local(2024, 6, 27, 19, 0)},
		{"at the opening instant: the closing", fourCP, local(2024, 6, 27, 15, 0), local(2024, 6, 27, 19, 0)},
		{"at the closing instant: the next opening", fourCP, local(2024, 6, 27, 19, 0), local(2024, 6, 28, 15, 0)},
		{"friday evening: monday", fourCP, local(2024, 6, 28, 20, 0), local(2024, 7, 1, 15, 0)},
		{"after the season: next June", fourCP, local(2024, 9, 30, 19, 0), local(2025, 6, 2, 15, 0)},
		{"earliest of several rules", two, local(2024, 3, 9, 5, 0), local(2024, 3, 9, 6, 0)},
		{"closing before another opening", two, local(2024, 3, 9, 17, 0), local(2024, 3, 9, 18, 0)},
		{"across spring forward", two, local(2024, 3, 9, 19, 0), local(2024, 3, 10, 6, 0)},
		{"spring forward afternoon", two, local(2024, 3, 10, 7, 0), time.Date(2024, 3, 10, 20, 0, 0, 0, time.UTC)},
		{"no windows", none, local(2024, 3, 9, 19, 0), time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.p.NextEdge(tc.now, site)
			require.True(t, tc.want.Equal(got), "want %v, got %v", tc.want, got)
		})
	}
}

// TestNextEdgeAgreesWithActive walks edge to edge through both 2024 DST
// changes and checks that the windows' state flips exactly at each edge and
// nowhere in between.
func TestNextEdgeAgreesWithActive(t *testing.T) {
	site := loadTestSite(t)
	p := parseTestPolicy(t, site, `
rules:
  - {name: a, when: {schedule: "0 15 * * *", for: 3h}, then: {site_cap_kw: 1}}
  - {name: b, when: {schedule: "30 1,2 * * *", for: 45m}, then: {site_cap_kw: 1}}
  - {name: c, when: {schedule: "0 0 * * 0", for: 26h}, then: {site_cap_kw: 1}}
`)
	state := func(now time.Time) [3]bool {
		var s [3]bool
		for i := range p.Rules {
			s[i] = p.Rules[i].When.Window.Active(now, site.Location)
		}
		return s
	}
	for _, start := range []time.Time{
		time.Date(2024, 3, 7, 0, 0, 0, 0, site.Location),
		time.Date(2024, 10, 31, 0, 0, 0, 0, site.Location),
	} {
		t.Run(start.Format(time.DateOnly), func(t *testing.T) {
			now := start
			edges := 0
			for now.Before(start.AddDate(0, 0, 7)) {
				next := p.NextEdge(now, site)
				require.True(t, next.After(now))
				before := state(now)
				for probe := now.Add(5 * time.Minute); probe.Before(next); probe = probe.Add(5 * time.Minute) {
					require.Equal(t, before, state(probe), "state changed at %v, before the edge at %v", probe, next)
				}
				require.Equal(t, before, state(next.Add(-time.Nanosecond)))
				require.NotEqual(t, before, state(next), "nothing changed at the edge %v", next)
				now = next
				edges++
			}
			require.Greater(t, edges, 20)
		})
	}
}

func snapshotAt(now time.Time, vals map[switchd.Signal]float64, age time.Duration) switchd.Snapshot {
	var s switchd.Snapshot
	for sig, v := range vals {
		s.Set(switchd.Sample{Time: now.Add(-age), Signal: sig, Value: v})
	}
	return s
}

func TestEvaluateValuesAndStaleness(t *testing.T) {
	site := loadTestSite(t)
	now := time.Date(2024, 7, 1, 12, 0, 0, 0, site.Location)
	const price, load, hash, inf, ai = switchd.SignalPrice, switchd.SignalGridLoad, switchd.SignalHashprice, switchd.SignalInferencePrice, switchd.SignalAIDemand
	withFallbacks := parseTestPolicy(t, site, "fallbacks: {hashprice_usd_ph_day: 48, ai_demand_gpus: 600}\n")
	curtailPrice := parseTestPolicy(t, site, "fail_safe: {price: curtail, grid_load: hold}\n")
	holdLoad := parseTestPolicy(t, site, "fallbacks: {price_usd_mwh: 30}\nfail_safe: {price: curtail, grid_load: hold}\n")
	for _, tc := range []struct {
		name        string
		p           *Policy
		snap        switchd.Snapshot
		wantValues  switchd.Values
		wantStale   []switchd.Signal
		wantCurtail bool
		wantHold    bool
	}{
		{
			name: "received values win over fallbacks, others fall back or are absent",
			p:    withFallbacks,
			snap: snapshotAt(now, map[switchd.Signal]float64{price: 42, hash: 50}, time.Minute),
			wantValues: switchd.Values{
				V:       [switchd.NumSignals]float64{price: 42, hash: 50, ai: 600},
				Present: [switchd.NumSignals]bool{price: true, hash: true, ai: true},
			},
		},
		{
			name: "old values are still used but stale; no fail-safe, no action",
			p:    withFallbacks,
			snap: snapshotAt(now, map[switchd.Signal]float64{price: 42, inf: 2}, 31*time.Minute),
			wantValues: switchd.Values{
				V:       [switchd.NumSignals]float64{price: 42, hash: 48, inf: 2, ai: 600},
				Present: [switchd.NumSignals]bool{price: true, hash: true, inf: true, ai: true},
			},
			wantStale: []switchd.Signal{price},
		},
		{
			name: "exactly max age is not stale",
			p:    curtailPrice,
			snap: snapshotAt(now, map[switchd.Signal]float64{price: 42, load: 60000}, 30*time.Minute),
			wantValues: switchd.Values{
				V:       [switchd.NumSignals]float64{price: 42, load: 60000},
				Present: [switchd.NumSignals]bool{price: true, load: true},
			},
		},
		{
			name:        "never received with a fail-safe is stale: curtail wins over hold",
			p:           curtailPrice,
			wantStale:   []switchd.Signal{price, load},
			wantCurtail: true,
		},
		{
			name: "a fallback covers a signal never received; hold applies",
			p:    holdLoad,
			wantValues: switchd.Values{
				V:       [switchd.NumSignals]float64{price: 30},
				Present: [switchd.NumSignals]bool{price: true},
			},
			wantStale: []switchd.Signal{load},
			wantHold:  true,
		},
		{
			name: "stale received price curtails even with a fallback",
			p:    holdLoad,
			snap: snapshotAt(now, map[switchd.Signal]float64{price: 42, load: 60000}, 45*time.Minute),
			wantValues: switchd.Values{
				V:       [switchd.NumSignals]float64{price: 42, load: 60000},
				Present: [switchd.NumSignals]bool{price: true, load: true},
			},
			wantStale:   []switchd.Signal{price},
			wantCurtail: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := tc.p.Evaluate(now, &tc.snap, site)
			require.Equal(t, tc.wantValues, ev.Values)
			require.Equal(t, tc.wantStale, nilIfEmpty(ev.Stale))
			require.Equal(t, tc.wantCurtail, ev.Curtail)
			require.Equal(t, tc.wantHold, ev.Constraints.Hold)
			require.Len(t, ev.Constraints.Fleets, len(site.Fleets))
			for _, c := range ev.Constraints.Fleets {
				require.Equal(t, tc.wantCurtail, c.Forbid[switchd.ModeMining])
				require.Equal(t, tc.wantCurtail, c.Forbid[switchd.ModeInference])
				require.False(t, c.Forbid[switchd.ModeOff])
			}
		})
	}
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

func TestEvaluateRules(t *testing.T) {
	site := loadTestSite(t)
	p := parseTestPolicy(t, site, `
fallbacks: {hashprice_usd_ph_day: 48}
fail_safe: {grid_load: none}
rules:
  - name: spike
    when: {price_above_usd_mwh: 1000}
    then: {site_cap_kw: 12000, min_devices: {gpus: {inference: 600}}}
  - name: emergency
    when: {price_above_usd_mwh: 3000}
    then: {site_cap_kw: 19000, force: {asics: off}, max_devices: {gpus: {inference: 700}}}
  - name: negative
    when: {price_below_usd_mwh: 0}
    then: {min_devices: {asics: {mining: 1000}}, max_devices: {gpus: {inference: 100}}}
  - name: peak
    when: {schedule: "0 15 * 6-9 1-5", for: 4h, grid_load_above_mw: 75000}
    then: {forbid: {asics: [mining], gpus: inference}, max_devices: {gpus: {inference: 500}}}
  - name: blind
    when: {signal_stale: [grid_load, ai_demand]}
    then: {site_cap_kw: 15000}
`)
	peak := time.Date(2024, 8, 20, 17, 0, 0, 0, site.Location)
	night := time.Date(2024, 8, 20, 2, 0, 0, 0, site.Location)
	vals := func(price, load float64) map[switchd.Signal]float64 {
		return map[switchd.Signal]float64{switchd.SignalPrice: price, switchd.SignalGridLoad: load, switchd.SignalAIDemand: 700}
	}
	free := func() []FleetConstraint { return []FleetConstraint{NoFleetConstraint(), NoFleetConstraint()} }
	for _, tc := range []struct {
		name      string
		now       time.Time
		snap      switchd.Snapshot
		wantFired []string
		wantCapKW float64
		want      func() []FleetConstraint
	}{
		{"nothing fires", night, snapshotAt(night, vals(30, 60000), 0), nil, 20000, free},
		{"threshold is strict", night, snapshotAt(night, vals(1000, 60000), 0), nil, 20000, free},
		{"spike", night, snapshotAt(night, vals(1000.01, 60000), 0), []string{"spike"}, 12000, func() []FleetConstraint {
			c := free()
			c[1].Min[switchd.ModeInference] = 600
			return c
		}},
		{"spike and emergency merge: lowest cap, forced off, tightest max", night, snapshotAt(night, vals(5000, 60000), 0),
			[]string{"spike", "emergency"}, 12000, func() []FleetConstraint {
				c := free()
				c[0].Min[switchd.ModeOff] = 1000
				c[0].Forbid[switchd.ModeMining] = true
				c[0].Forbid[switchd.ModeInference] = true
				c[1].Min[switchd.ModeInference] = 600
				c[1].Max[switchd.ModeInference] = 700
				return c
			}},
		{"negative price", night, snapshotAt(night, vals(-5, 60000), 0), []string{"negative"}, 20000, func() []FleetConstraint {
			c := free()
			c[0].Min[switchd.ModeMining] = 1000
			c[1].Max[switchd.ModeInference] = 100
			return c
		}},
		{"peak window with high load", peak, snapshotAt(peak, vals(30, 80000), 0), []string{"peak"}, 20000, func() []FleetConstraint {
			c := free()
			c[0].Forbid[switchd.ModeMining] = true
			c[1].Forbid[switchd.ModeInference] = true
			c[1].Max[switchd.ModeInference] = 500
			return c
		}},
		{"peak window, load below threshold", peak, snapshotAt(peak, vals(30, 70000), 0), nil, 20000, free},
		{"high load outside the window", night, snapshotAt(night, vals(30, 80000), 0), nil, 20000, free},
		{"forbid wins over min", peak, snapshotAt(peak, vals(-5, 80000), 0), []string{"negative", "peak"}, 20000, func() []FleetConstraint {
			c := free()
			c[0].Forbid[switchd.ModeMining] = true // negative's min of 1000 is dropped
			c[1].Forbid[switchd.ModeInference] = true
			c[1].Max[switchd.ModeInference] = 100
			return c
		}},
		{"no price and no load: nothing fires", night,
			snapshotAt(night, map[switchd.Signal]float64{switchd.SignalAIDemand: 700}, 0), nil, 20000, free},
		{"stale grid load", night, snapshotAt(night, vals(30, 80000), 3*time.Hour), []string{"blind"}, 15000, free},
		{"a stale value still counts", peak, snapshotAt(peak, vals(30, 80000), 3*time.Hour), []string{"peak", "blind"}, 15000, func() []FleetConstraint {
			c := free()
			c[0].Forbid[switchd.ModeMining] = true
			c[1].Forbid[switchd.ModeInference] = true
			c[1].Max[switchd.ModeInference] = 500
			return c
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := p.Evaluate(tc.now, &tc.snap, site)
			require.Equal(t, tc.wantFired, nilIfEmpty(ev.Fired))
			require.Equal(t, tc.wantCapKW, ev.Constraints.SiteCapKW)
			require.Equal(t, tc.want(), ev.Constraints.Fleets)
			require.False(t, ev.Curtail)
		})
	}
}

// TestEvaluateIntoReuse checks that a reused Evaluation carries nothing over
// from the previous call.
func TestEvaluateIntoReuse(t *testing.T) {
	site := loadTestSite(t)
	p := parseTestPolicy(t, site, `
fail_safe: {price: curtail}
rules:
  - {name: spike, when: {price_above_usd_mwh: 1000}, then: {site_cap_kw: 100, force: {gpus: inference}}}
`)
	now := time.Date(2024, 7, 1, 12, 0, 0, 0, time.UTC)
	spike := snapshotAt(now, map[switchd.Signal]float64{switchd.SignalPrice: 5000}, 0)
	calm := snapshotAt(now, map[switchd.Signal]float64{switchd.SignalPrice: 20}, 0)

	var ev Evaluation
	p.EvaluateInto(now, nil, site, &ev) // never heard the price: curtail
	require.True(t, ev.Curtail)
	p.EvaluateInto(now, &spike, site, &ev)
	require.Equal(t, []string{"spike"}, ev.Fired)
	p.EvaluateInto(now, &calm, site, &ev)
	fresh := p.Evaluate(now, &calm, site)
	require.Equal(t, fresh.Values, ev.Values)
	require.Equal(t, fresh.Constraints, ev.Constraints)
	require.Empty(t, ev.Fired)
	require.Empty(t, ev.Stale)
	require.False(t, ev.Curtail)
	require.Equal(t, 20000.0, ev.Constraints.SiteCapKW)
}

// TestEvaluateIntoAllocs holds EvaluateInto to its contract: nothing
// allocated once the Evaluation has grown, whatever fires.
func TestEvaluateIntoAllocs(t *testing.T) {
	site, p := examplePolicy(t, "ercot-4cp.yaml")
	now := time.Date(2024, 8, 20, 17, 0, 0, 0, site.Location)
	snap := snapshotAt(now, map[switchd.Signal]float64{switchd.SignalPrice: 4000, switchd.SignalGridLoad: 85000}, 3*time.Hour)
	snap.NotePeak(now, 85000) // the month's highest load so far
	var ev Evaluation
	p.EvaluateInto(now, &snap, site, &ev)
	require.Equal(t, []string{"4cp-watch", "price-spike", "price-emergency", "4cp-blind"}, ev.Fired)
	allocs := testing.AllocsPerRun(100, func() {
		now = now.Add(time.Minute)
		p.EvaluateInto(now, &snap, site, &ev)
	})
	require.Zero(t, allocs)
}

func examplePolicy(t testing.TB, file string) (*config.Site, *Policy) {
	t.Helper()
	site, err := config.LoadSite(filepath.Join("..", "examples", "site.yaml"))
	require.NoError(t, err)
	p, err := LoadPolicy(filepath.Join("..", "examples", "policies", file), site)
	require.NoError(t, err)
	return site, p
}

func BenchmarkEvaluateInto(b *testing.B) {
	site, p := examplePolicy(b, "ercot-4cp.yaml")
	now := time.Date(2024, 8, 20, 17, 0, 0, 0, site.Location)
	snap := snapshotAt(now, map[switchd.Signal]float64{switchd.SignalPrice: 40, switchd.SignalGridLoad: 80000}, 0)
	var ev Evaluation
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(15 * time.Minute)
		p.EvaluateInto(now, &snap, site, &ev)
	}
}

func BenchmarkNextEdge(b *testing.B) {
	site, p := examplePolicy(b, "ercot-4cp.yaml")
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, site.Location)
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(15 * time.Minute)
		p.NextEdge(now, site)
	}
}
