package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/controller"
	"github.com/switchd/switchd/drivers/simdev"
	"github.com/switchd/switchd/policies"
)

// shedSite: 10 miners at 3.5 kW, mining (35 kW), and 4 GPUs, off, that
// would serve inference; the interconnect cap is set per test.
const shedSite = `site: {name: t, timezone: UTC, power_cap_kw: %v}
fleets:
  - name: asics
    kind: asic
    count: 10
    driver: sim
    modes:
      off: {power_kw: 0}
      mining: {power_kw: 3.5, hashrate_ths: 200}
    transitions: {default: 1m}
  - name: gpus
    kind: gpu
    count: 4
    driver: sim
    modes:
      off: {power_kw: 0.2}
      inference: {power_kw: 1.275}
    transitions: {default: 1m}
`

// shedPolicy: a price fail-safe that curtails, a spike rule, and a rule
// on the price going stale.
const shedPolicy = `fallbacks: {hashprice_usd_ph_day: 50, inference_usd_gpu_hour: 2.10, ai_demand_gpus: 4}
fail_safe: {price: curtail}
rules:
  - name: spike
    when: {price_above_usd_mwh: 1000}
    then: {force: {asics: off}}
  - name: blind
    when: {signal_stale: [price]}
    then: {forbid: {asics: [mining]}}
`

type shedRig struct {
	t    *testing.T
	clk  *clock
	ctl  *controller.Controller
	rec  *countingRecorder
	drvs []*simdev.Driver
}

func newShedRig(t *testing.T, capKW float64, pol string) *shedRig {
	t.Helper()
	site, err := config.ParseSite("site.yaml", fmt.Appendf(nil, shedSite, capKW))
	require.NoError(t, err)
	p, err := policies.ParsePolicy("policy.yaml", []byte(pol), site)
	require.NoError(t, err)
	r := &shedRig{t: t, clk: &clock{t: time.Date(2024, 7, 1, 12, 0, 0, 0, time.UTC)}, rec: &countingRecorder{}}
	r.drvs = []*simdev.Driver{
		simdev.New(site.Fleets[0].Spec, simdev.Config{Initial: switchd.ModeMining}, r.clk),
		simdev.New(site.Fleets[1].Spec, simdev.Config{Initial: switchd.ModeOff}, r.clk),
	}
	r.ctl, err = controller.New(controller.Options{Site: site, Policy: p, Drivers: []switchd.Driver{r.drvs[0], r.drvs[1]}, Clock: r.clk, Recorder: r.rec})
	require.NoError(t, err)
	return r
}

// tick advances the clock by d and ticks, shed-only or not; it returns
// the commands sent to each fleet.
func (r *shedRig) tick(d time.Duration, shedOnly bool) [][]switchd.Command {
	r.t.Helper()
	r.clk.t = r.clk.t.Add(d)
	require.NoError(r.t, r.ctl.TickWith(context.Background(), controller.TickOptions{ShedOnly: shedOnly}))
	out := make([][]switchd.Command, len(r.ctl.Reports()))
	for i, rep := range r.ctl.Reports() {
		require.NoError(r.t, rep.Err)
		out[i] = rep.Commands
	}
	require.Equal(r.t, shedOnly, r.ctl.Decision().ShedOnly)
	return out
}

func (r *shedRig) count(fleet int, m switchd.Mode) int {
	st, err := r.drvs[fleet].State(context.Background())
	require.NoError(r.t, err)
	steady, arriving := st.Count(m)
	return steady + arriving
}

var shedOff = func(n int) []switchd.Command {
	return []switchd.Command{{From: switchd.ModeMining, To: switchd.ModeOff, Count: n}}
}

// TestShedOnlyKeepsTheCap: with no price yet, a shed-only tick sheds what
// the interconnect cap requires (2 of 10 miners under 30 kW, the GPUs
// drawing 0.8 kW off) and nothing more: no fail-safe curtail, no rule on
// the missing price, no GPU started. A normal tick on the same inputs
// curtails.
func TestShedOnlyKeepsTheCap(t *testing.T) {
	r := newShedRig(t, 30, shedPolicy)
	cmds := r.tick(0, true)
	require.Equal(t, shedOff(2), cmds[0], "the cap's shed goes out")
	require.Empty(t, cmds[1], "no GPU starts")
	require.Equal(t, 1, r.rec.commands, "the shed is journalled first")
	require.Empty(t, r.ctl.Decision().Eval.Stale, "a missing price is unknown, not stale")
	require.False(t, r.ctl.Decision().Eval.Curtail)

	// Held ticks later: the cap holds, nothing else moves.
	for range 3 {
		cmds = r.tick(2*time.Minute, true)
		require.Empty(t, cmds[0])
		require.Empty(t, cmds[1])
	}
	require.Equal(t, 8, r.count(0, switchd.ModeMining))
	require.Zero(t, r.count(1, switchd.ModeInference))

	// The same inputs in a normal tick: the fail-safe curtails.
	cmds = r.tick(time.Second, false)
	require.Equal(t, shedOff(8), cmds[0])
	require.True(t, r.ctl.Decision().Eval.Curtail)
	require.Contains(t, r.ctl.Decision().Eval.Fired, "blind")
}

// TestShedOnlyIgnoresFallbacks: a rule that would fire on a fail-safe
// signal's fallback (no value received yet) does not act in a shed-only
// tick; in a normal tick it does.
func TestShedOnlyIgnoresFallbacks(t *testing.T) {
	r := newShedRig(t, 1000, strings.Replace(shedPolicy, "ai_demand_gpus: 4}", "ai_demand_gpus: 4, price_usd_mwh: 5000}", 1))
	cmds := r.tick(0, true)
	require.Empty(t, cmds[0], "no rule on a price nobody sent")
	require.NotContains(t, r.ctl.Decision().Eval.Fired, "spike")
	require.Zero(t, r.rec.commands)
	cmds = r.tick(time.Second, false)
	require.Equal(t, shedOff(10), cmds[0])
	require.Contains(t, r.ctl.Decision().Eval.Fired, "spike")
}

// TestShedOnlyWithinTheCapSendsNothing: under the cap a shed-only tick
// reads and plans but sends and journals nothing, even once a price has
// arrived that would start the GPUs or make mining a loss (no rule fires
// at 300 USD/MWh: the merit order alone would shed the miners).
func TestShedOnlyWithinTheCapSendsNothing(t *testing.T) {
	r := newShedRig(t, 1000, shedPolicy)
	for range 3 {
		cmds := r.tick(time.Minute, true)
		require.Empty(t, cmds[0])
		require.Empty(t, cmds[1])
	}
	// The plan is there (warm), not acted on.
	require.Equal(t, 10, r.ctl.Decision().Plan.Fleets[0].Count[switchd.ModeMining]+r.ctl.Decision().Plan.Fleets[0].Count[switchd.ModeOff])
	for _, price := range []float64{20, 300} {
		r.ctl.Observe(switchd.Sample{Time: r.clk.t.Add(time.Minute), Signal: switchd.SignalPrice, Value: price})
		cmds := r.tick(time.Minute, true)
		require.Empty(t, cmds[0], "price %v: no economic switch", price)
		require.Empty(t, cmds[1], "price %v: no start", price)
	}
	require.Zero(t, r.rec.commands+r.rec.applied, "nothing journalled")
	require.Equal(t, 10, r.count(0, switchd.ModeMining))
	require.Zero(t, r.count(1, switchd.ModeInference))
}

// TestShedOnlyObeysCapsAndForbids: an operator's cap override, a
// demand-response style forced mode to off, and a rule's site cap shed in a
// shed-only tick; an override forcing GPUs into inference starts none.
func TestShedOnlyObeysCapsAndForbids(t *testing.T) {
	r := newShedRig(t, 1000, `fallbacks: {hashprice_usd_ph_day: 50, inference_usd_gpu_hour: 2.10, ai_demand_gpus: 4}
fail_safe: {price: curtail, grid_load: hold}
rules:
  - name: peak
    when: {grid_load_above_mw: 70000}
    then: {site_cap_kw: 21}
`)
	until := r.clk.t.Add(time.Hour)
	r.ctl.SetOverrides([]controller.Override{
		{ID: "cap", HasCap: true, SiteCapKW: 28, Until: until},
		{ID: "gpus", Fleet: "gpus", HasMode: true, Mode: switchd.ModeInference, Until: until},
	})
	// The GPUs draw 0.8 kW off.
	cmds := r.tick(0, true)
	require.Equal(t, shedOff(3), cmds[0], "28 kW: 7 miners at most")
	require.Empty(t, cmds[1], "an override's start waits for the hold to end")

	// A grid-load value fires the peak rule: its cap sheds.
	r.ctl.Observe(switchd.Sample{Time: r.clk.t.Add(time.Minute), Signal: switchd.SignalGridLoad, Value: 75000})
	cmds = r.tick(2*time.Minute, true)
	require.Equal(t, shedOff(2), cmds[0], "21 kW: 5 miners at most")

	r.ctl.SetOverrides([]controller.Override{{ID: "asics", Fleet: "asics", HasMode: true, Mode: switchd.ModeOff, Until: until}})
	cmds = r.tick(2*time.Minute, true)
	require.Equal(t, shedOff(5), cmds[0], "the operator's off")
	require.Empty(t, cmds[1])
	require.Zero(t, r.count(1, switchd.ModeInference))
}

// TestShedOnlyForcedStartGoesOff: devices a forbid forces out of their
// mode go to the plan's mode only where that lowers their draw; where it
// would raise it (mining_reduced to mining), a shed-only tick sends them
// off instead, so that the forbid is obeyed with nothing started.
func TestShedOnlyForcedStartGoesOff(t *testing.T) {
	site, err := config.ParseSite("site.yaml", []byte(`site: {name: t, timezone: UTC, power_cap_kw: 1000}
fleets:
  - name: asics
    kind: asic
    count: 10
    driver: sim
    modes:
      off: {power_kw: 0.02}
      mining: {power_kw: 3.5, hashrate_ths: 200}
      mining_reduced: {power_kw: 2.45, hashrate_ths: 160}
    transitions: {default: 1m}
`))
	require.NoError(t, err)
	pol, err := policies.ParsePolicy("policy.yaml", []byte(`fallbacks: {hashprice_usd_ph_day: 50}
fail_safe: {price: curtail}
rules:
  - name: no-reduced
    when: {grid_load_above_mw: 1}
    then: {forbid: {asics: [mining_reduced]}}
`), site)
	require.NoError(t, err)
	clk := &clock{t: time.Date(2024, 7, 1, 12, 0, 0, 0, time.UTC)}
	drv := simdev.New(site.Fleets[0].Spec, simdev.Config{Initial: switchd.ModeMiningReduced}, clk)
	ctl, err := controller.New(controller.Options{Site: site, Policy: pol, Drivers: []switchd.Driver{drv}, Clock: clk})
	require.NoError(t, err)
	ctx := context.Background()
	ctl.Observe(switchd.Sample{Time: clk.t, Signal: switchd.SignalPrice, Value: 20})
	ctl.Observe(switchd.Sample{Time: clk.t, Signal: switchd.SignalGridLoad, Value: 5})

	// The plan wants them mining (cheap power): a start, not in a
	// shed-only tick.
	require.NoError(t, ctl.TickWith(ctx, controller.TickOptions{ShedOnly: true}))
	require.Equal(t, 10, ctl.Decision().Plan.Fleets[0].Count[switchd.ModeMining])
	require.Equal(t, []switchd.Command{{From: switchd.ModeMiningReduced, To: switchd.ModeOff, Count: 10}}, ctl.Reports()[0].Commands)
}

// ctxSpy is a driver that notes whether its State call came from a
// shed-only tick.
type ctxSpy struct {
	*simdev.Driver
	shedOnly []bool
}

func (s *ctxSpy) State(ctx context.Context) (switchd.FleetState, error) {
	s.shedOnly = append(s.shedOnly, switchd.ShedOnlyFrom(ctx))
	return s.Driver.State(ctx)
}

// TestShedOnlyTellsTheDrivers: the drivers' calls in a shed-only tick carry
// switchd.WithShedOnly (so a device pool re-commands drift only
// downwards), and a full tick's do not.
func TestShedOnlyTellsTheDrivers(t *testing.T) {
	site, err := config.ParseSite("site.yaml", fmt.Appendf(nil, shedSite, 100))
	require.NoError(t, err)
	p, err := policies.ParsePolicy("policy.yaml", []byte(shedPolicy), site)
	require.NoError(t, err)
	clk := &clock{t: time.Date(2024, 7, 1, 12, 0, 0, 0, time.UTC)}
	spy := &ctxSpy{Driver: simdev.New(site.Fleets[0].Spec, simdev.Config{Initial: switchd.ModeMining}, clk)}
	gpus := simdev.New(site.Fleets[1].Spec, simdev.Config{Initial: switchd.ModeOff}, clk)
	ctl, err := controller.New(controller.Options{Site: site, Policy: p, Drivers: []switchd.Driver{spy, gpus}, Clock: clk, Recorder: &countingRecorder{}})
	require.NoError(t, err)
	require.NoError(t, ctl.TickWith(context.Background(), controller.TickOptions{ShedOnly: true}))
	clk.t = clk.t.Add(time.Minute)
	require.NoError(t, ctl.Tick(context.Background()))
	require.Equal(t, []bool{true, false}, spy.shedOnly)
}
