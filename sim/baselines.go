package sim

import (
	"slices"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/controller"
	"github.com/switchd/switchd/policies"
)

// DebounceWindow is how long the price must stay at or below breakeven
// before the threshold baseline resumes mining.
const DebounceWindow = 15 * time.Minute

// alwaysOnPlanner runs every fleet in its best mode all the time: the
// dispatcher with energy treated as free, so only revenue per kW orders the
// modes, under the interconnect cap and AI demand. It is also the reference
// for "hours curtailed".
type alwaysOnPlanner struct {
	site  *config.Site
	din   policies.DispatchInput
	plan  switchd.Plan
	spare [][switchd.NumModes]int
	// forbidMining, when set, is applied on top (the threshold baseline).
	forbidMining []bool
}

var _ controller.Planner = (*alwaysOnPlanner)(nil)

func newAlwaysOn(site *config.Site) *alwaysOnPlanner {
	a := &alwaysOnPlanner{site: site}
	a.din.Fleets = site.Specs()
	// Always-on does not weigh switching costs when it plans (the
	// accounting still charges every switch).
	for i := range a.din.Fleets {
		a.din.Fleets[i].SwitchCostUSD = 0
	}
	a.din.Constraints.Fleets = make([]policies.FleetConstraint, len(site.Fleets))
	a.forbidMining = make([]bool, len(site.Fleets))
	return a
}

// dispatch fills plan for values v with energy at zero price.
func (a *alwaysOnPlanner) dispatch(v *switchd.Values, plan *switchd.Plan) {
	a.din.Values = *v
	a.din.Values.V[switchd.SignalPrice] = 0
	a.din.Constraints.SiteCapKW = a.site.PowerCapKW
	for i := range a.din.Constraints.Fleets {
		a.din.Constraints.Fleets[i] = policies.NoFleetConstraint()
		a.din.Constraints.Fleets[i].Forbid[switchd.ModeMining] = a.forbidMining[i]
		// A curtailment script stops all mining, power targets included.
		a.din.Constraints.Fleets[i].Forbid[switchd.ModeMiningReduced] = a.forbidMining[i]
	}
	policies.DispatchInto(&a.din, plan)
}

// offCount is how many devices always-on keeps off at values v.
func (a *alwaysOnPlanner) offCount(v *switchd.Values) int {
	a.dispatch(v, &a.plan)
	n := 0
	for _, f := range a.plan.Fleets {
		n += f.Count[switchd.ModeOff]
	}
	return n
}

// Plan implements controller.Planner.
func (a *alwaysOnPlanner) Plan(now time.Time, in *controller.PlanInput, d *controller.Decision) {
	d.Eval.Values = in.Policy.Values(in.Snap)
	d.Eval.Fired = d.Eval.Fired[:0]
	d.Eval.Stale = d.Eval.Stale[:0]
	d.Eval.Curtail = false
	a.dispatch(&d.Eval.Values, &d.Plan)
	d.Eval.Constraints.SiteCapKW = a.site.PowerCapKW
	d.Eval.Constraints.Hold = false
	d.Eval.Constraints.Fleets = append(d.Eval.Constraints.Fleets[:0], a.din.Constraints.Fleets...)
}

// NextWake implements controller.Planner: always-on never changes its mind
// on its own.
func (a *alwaysOnPlanner) NextWake(time.Time, *controller.PlanInput) time.Time { return time.Time{} }

// thresholdPlanner is what simple curtailment scripts do: run always-on, but
// stop all mining of a fleet when the price rises above that fleet's mining
// breakeven, and resume only once the price has stayed at or below it for
// DebounceWindow.
type thresholdPlanner struct {
	*alwaysOnPlanner
	curtailed  []bool
	belowSince []time.Time
}

var _ controller.Planner = (*thresholdPlanner)(nil)

func newThreshold(site *config.Site) *thresholdPlanner {
	return &thresholdPlanner{
		alwaysOnPlanner: newAlwaysOn(site),
		curtailed:       make([]bool, len(site.Fleets)),
		belowSince:      make([]time.Time, len(site.Fleets)),
	}
}

// Plan implements controller.Planner.
func (t *thresholdPlanner) Plan(now time.Time, in *controller.PlanInput, d *controller.Decision) {
	v := in.Policy.Values(in.Snap)
	price, ok := v.Get(switchd.SignalPrice)
	for i := range t.site.Fleets {
		spec := &t.site.Fleets[i].Spec
		if !ok || !spec.Supports[switchd.ModeMining] {
			continue
		}
		switch {
		case price > spec.BreakevenUSDPerMWh(switchd.ModeMining, &v):
			t.curtailed[i], t.belowSince[i] = true, time.Time{}
		case t.curtailed[i] && t.belowSince[i].IsZero():
			t.belowSince[i] = now
		}
		if t.curtailed[i] && !t.belowSince[i].IsZero() && now.Sub(t.belowSince[i]) >= DebounceWindow {
			t.curtailed[i], t.belowSince[i] = false, time.Time{}
		}
	}
	copy(t.forbidMining, t.curtailed)
	t.alwaysOnPlanner.Plan(now, in, d)
}

// NextWake implements controller.Planner: when a debounce runs out.
func (t *thresholdPlanner) NextWake(now time.Time, _ *controller.PlanInput) time.Time {
	var w time.Time
	for i, c := range t.curtailed {
		if !c || t.belowSince[i].IsZero() {
			continue
		}
		if e := t.belowSince[i].Add(DebounceWindow); e.After(now) && (w.IsZero() || e.Before(w)) {
			w = e
		}
	}
	return w
}

func sortFloatsDesc(x []float64) {
	slices.Sort(x)
	slices.Reverse(x)
}
