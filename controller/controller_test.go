package controller_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/controller"
	"github.com/switchd/switchd/drivers/simdev"
	"github.com/switchd/switchd/policies"
)

const oneFleet = `site: {name: t, timezone: UTC, power_cap_kw: 30}
fleets:
  - name: asics
    kind: asic
    count: 10
    driver: sim
    modes:
      off: {power_kw: 0}
      mining: {power_kw: 3.5, hashrate_ths: 200}
    transitions: {default: 1m}
`

func load(t *testing.T, site string) (*config.Site, *policies.Policy) {
	t.Helper()
	s, err := config.ParseSite("site.yaml", []byte(site))
	require.NoError(t, err)
	p, err := policies.ParsePolicy("policy.yaml", []byte("fallbacks: {hashprice_usd_ph_day: 50}\n"), s)
	require.NoError(t, err)
	return s, p
}

// failingRecorder is a journal that cannot be written; it keeps the
// outcomes it is told of.
type failingRecorder struct{ applied *[]switchd.Command }

func (failingRecorder) Commands(time.Time, *controller.Decision, []controller.FleetCommands) error {
	return errors.New("disk full")
}
func (r failingRecorder) Applied(_ time.Time, _ string, cmds []switchd.Command, _ error) {
	*r.applied = append(*r.applied, cmds...)
}

// TestJournalFailureShedsButHoldsStarts: the grid comes first, so load
// still goes down when the journal cannot be written; increases wait.
func TestJournalFailureShedsButHoldsStarts(t *testing.T) {
	site, pol := load(t, oneFleet)
	clk := &clock{t: time.Date(2024, 7, 1, 12, 0, 0, 0, time.UTC)}
	drv := simdev.New(site.Fleets[0].Spec, simdev.Config{Initial: switchd.ModeMining}, clk)
	var applied []switchd.Command
	ctl, err := controller.New(controller.Options{Site: site, Policy: pol, Drivers: []switchd.Driver{drv}, Clock: clk, Recorder: failingRecorder{&applied}})
	require.NoError(t, err)
	ctx := context.Background()

	// 30 kW cap, 10 miners at 3.5 kW: two must go, journal or not.
	ctl.Observe(switchd.Sample{Time: clk.t, Signal: switchd.SignalPrice, Value: 20})
	require.NoError(t, ctl.Tick(ctx))
	require.ErrorContains(t, ctl.RecordErr(), "disk full")
	require.Equal(t, []switchd.Command{{From: switchd.ModeMining, To: switchd.ModeOff, Count: 2}}, ctl.Reports()[0].Commands)
	require.NoError(t, ctl.Reports()[0].Err, "a journal failure is not a driver error")

	// A price spike sheds everything, still without a journal.
	clk.t = clk.t.Add(2 * time.Minute)
	ctl.Observe(switchd.Sample{Time: clk.t, Signal: switchd.SignalPrice, Value: 5000})
	require.NoError(t, ctl.Tick(ctx))
	require.Equal(t, []switchd.Command{{From: switchd.ModeMining, To: switchd.ModeOff, Count: 8}}, ctl.Reports()[0].Commands)

	// Cheap again: starts are held, not sent.
	clk.t = clk.t.Add(time.Hour)
	ctl.Observe(switchd.Sample{Time: clk.t, Signal: switchd.SignalPrice, Value: 20})
	require.NoError(t, ctl.Tick(ctx))
	require.Empty(t, ctl.Reports()[0].Commands)
	require.Equal(t, []switchd.Command{{From: switchd.ModeOff, To: switchd.ModeMining, Count: 8}}, ctl.Reports()[0].Held)

	// The recorder heard the outcome of both sheds (to log and record
	// them when it can), and of nothing held.
	require.Equal(t, []switchd.Command{{From: switchd.ModeMining, To: switchd.ModeOff, Count: 2}, {From: switchd.ModeMining, To: switchd.ModeOff, Count: 8}}, applied)
}

// stuckDriver reports some devices unusable, stuck in mining.
type stuckDriver struct {
	switchd.Driver
	stuck int
}

func (s *stuckDriver) State(ctx context.Context) (switchd.FleetState, error) {
	st, err := s.Driver.State(ctx)
	if err != nil {
		return st, err
	}
	// Take the stuck devices out of the off cohort.
	out := st
	out.Cohorts = nil
	left := s.stuck
	for _, c := range st.Cohorts {
		if c.Mode == switchd.ModeOff && c.Steady() && left > 0 {
			n := min(left, c.Count)
			c.Count -= n
			left -= n
		}
		if c.Count > 0 {
			out.Cohorts = append(out.Cohorts, c)
		}
	}
	out.Unusable.ByMode[switchd.ModeMining] = s.stuck
	out.Unusable.ByReason = map[string]int{switchd.ProblemStuck: s.stuck}
	return out, nil
}

// TestUnusableDevicesAreNotCountedOn: devices the driver cannot move are
// left out of the plan, and what they draw counts under the cap.
func TestUnusableDevicesAreNotCountedOn(t *testing.T) {
	site, pol := load(t, oneFleet)
	clk := &clock{t: time.Date(2024, 7, 1, 12, 0, 0, 0, time.UTC)}
	drv := &stuckDriver{Driver: simdev.New(site.Fleets[0].Spec, simdev.Config{}, clk), stuck: 2}
	ctl, err := controller.New(controller.Options{Site: site, Policy: pol, Drivers: []switchd.Driver{drv}, Clock: clk})
	require.NoError(t, err)
	ctl.Observe(switchd.Sample{Time: clk.t, Signal: switchd.SignalPrice, Value: 20})
	require.NoError(t, ctl.Tick(context.Background()))
	// 30 kW cap less 2 x 3.5 kW stuck mining leaves 23 kW: 6 miners of
	// the 8 usable.
	require.Equal(t, []switchd.Command{{From: switchd.ModeOff, To: switchd.ModeMining, Count: 6}}, ctl.Reports()[0].Commands)
	require.Equal(t, 6, ctl.Decision().Plan.Fleets[0].Count[switchd.ModeMining])
	require.Equal(t, 2, ctl.Decision().Plan.Fleets[0].Count[switchd.ModeOff], "the plan places usable devices only")
	require.Equal(t, 2, ctl.Observed(0).Unusable.Total())
}

// TestParallelRunner: with a runner, every fleet is read and commanded.
func TestParallelRunner(t *testing.T) {
	site, pol := load(t, oneFleet+`  - name: more
    kind: asic
    count: 4
    driver: sim
    modes:
      off: {power_kw: 0}
      mining: {power_kw: 1, hashrate_ths: 200}
`)
	clk := &clock{t: time.Date(2024, 7, 1, 12, 0, 0, 0, time.UTC)}
	d0 := simdev.New(site.Fleets[0].Spec, simdev.Config{}, clk)
	d1 := simdev.New(site.Fleets[1].Spec, simdev.Config{}, clk)
	calls := 0
	parallel := func(n int, fn func(int)) {
		calls++
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() { defer wg.Done(); fn(i) }()
		}
		wg.Wait()
	}
	ctl, err := controller.New(controller.Options{Site: site, Policy: pol, Drivers: []switchd.Driver{d0, d1}, Clock: clk, Parallel: parallel})
	require.NoError(t, err)
	ctl.Observe(switchd.Sample{Time: clk.t, Signal: switchd.SignalPrice, Value: 20})
	require.NoError(t, ctl.Tick(context.Background()))
	require.Equal(t, 2, calls, "one fan-out to read, one to apply")
	require.NotEmpty(t, ctl.Reports()[0].Commands)
	require.NotEmpty(t, ctl.Reports()[1].Commands)
	require.False(t, ctl.NextWake().IsZero(), "wakes found by the fleets are merged")
}
