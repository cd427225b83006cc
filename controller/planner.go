package controller

import (
	"math"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/policies"
)

// PlanInput is what a planner sees at one instant.
type PlanInput struct {
	Site   *config.Site
	Policy *policies.Policy
	Snap   *switchd.Snapshot
	// Current[i][m] is the devices of fleet i in mode m or on their way to it.
	Current [][switchd.NumModes]int
	// Usable[i] is how many of fleet i's devices the plan may count on
	// (the fleet size less devices that are unreachable, faulted or stuck);
	// UnusableKW is what those draw, taken off the site cap. Nil Usable
	// means every device is usable.
	Usable     []int
	UnusableKW float64
	// Overrides are the operator's manual instructions (some may have
	// expired: check Active).
	Overrides []Override
	// Forecast is a fresh price forecast, or nil: without one the planner
	// decides from the live price and its history alone.
	Forecast *Forecast
	// DRCapKW is the tightest demand-response cap in force (+Inf or 0
	// with DRFired empty: none), DRFired the ids of the events in force
	// as "dr:<id>".
	DRCapKW float64
	DRFired []string
}

// Decision is a planner's output: the evaluated policy (values, constraints,
// rules fired) and the target plan.
type Decision struct {
	Eval policies.Evaluation
	Plan switchd.Plan
	// ShedOnly is set when the tick was shed-only (TickOptions.ShedOnly):
	// the plan is not acted on, only the sheds the constraints require.
	ShedOnly bool
}

// Planner decides the target plan. The controller's own planner evaluates the
// policy and runs the dispatcher; the simulator plugs in the baselines
// (always-on, threshold with debounce) so they run through the same
// reconciler and driver.
type Planner interface {
	// Plan fills d for instant now, reusing d's slices.
	Plan(now time.Time, in *PlanInput, d *Decision)
	// NextWake is the next instant after now at which the planner's answer
	// may change with no new signal (a schedule window edge, a debounce
	// expiring), or the zero time.
	NextWake(now time.Time, in *PlanInput) time.Time
}

// PolicyPlanner evaluates the policy's rules and dispatches by merit order.
// It keeps the price history it has been shown (through the snapshot, one
// sample per new price) to estimate how long a switch would be held, which
// is what a switch's cost is spread over.
type PolicyPlanner struct {
	din  policies.DispatchInput
	site *config.Site // the site din.Fleets was built from
	hold holdEstimator
	// tracks[i][m] folds the price history into spells against fleet i's
	// breakeven for mode m.
	tracks [][switchd.NumModes]holdTrack
	warm   aiWarmTrack // recent AI demand, for the policy's ai_warm
}

// Plan implements Planner.
func (p *PolicyPlanner) Plan(now time.Time, in *PlanInput, d *Decision) {
	in.Policy.EvaluateInto(now, in.Snap, in.Site, &d.Eval)
	applyOverrides(now, in.Site, in.Overrides, &d.Eval)
	applyDR(in, &d.Eval)
	if p.site != in.Site {
		p.din.Fleets, p.site = in.Site.Specs(), in.Site
	}
	for i := range p.din.Fleets {
		p.din.Fleets[i].Count = in.Site.Fleets[i].Spec.Count
		if i < len(in.Usable) {
			p.din.Fleets[i].Count = in.Usable[i]
		}
	}
	p.din.Values = d.Eval.Values
	p.din.Constraints = d.Eval.Constraints
	// Devices the plan cannot move still draw power under the cap.
	p.din.Constraints.SiteCapKW = max(p.din.Constraints.SiteCapKW-in.UnusableKW, 0)
	if len(in.DRFired) == 0 {
		// Capacity committed to programs stays sheddable, except while
		// an event is using it.
		policies.CommitFloor(p.din.Fleets, &p.din.Constraints, in.Site.DR.Programs, &p.din.Values)
	}
	p.din.Current = in.Current
	p.din.HysteresisUSDPerMWh = in.Policy.HysteresisUSDPerMWh
	p.estimateHolds(now, in.Site, in.Snap)
	p.din.IncumbentPrice = p.din.IncumbentPrice[:0]
	if in.Forecast != nil {
		p.forecastAhead(now, in.Forecast)
	}
	p.warm.apply(now, &p.din.Values, in.Policy.AIWarm)
	policies.DispatchInto(&p.din, &d.Plan)
}

// estimateHolds records the snapshot's price (if new) and the modes the
// evaluated constraints keep out of reach, and fills din.HoldHours: for each
// fleet and mode, how long the present spell of the price on one side of
// the mode's breakeven against off is expected to last, at the values the
// dispatcher will use (din.Values). Fleets without a switching cost, and
// modes whose value does not depend on the price, get +Inf (no cost per
// hour); with too little history the entry is 0 (no estimate).
func (p *PolicyPlanner) estimateHolds(now time.Time, site *config.Site, snap *switchd.Snapshot) {
	cons := &p.din.Constraints
	// A rule that lowers the site cap below both the interconnect and what
	// a fleet draws with every device in a mode keeps that mode (in part)
	// out of reach, like a forbid.
	lowered := cons.SiteCapKW < site.PowerCapKW
	var forced uint64
	for i := range p.din.Fleets {
		spec := &p.din.Fleets[i]
		for m := switchd.ModeOff + 1; m < switchd.NumModes; m++ {
			out := lowered && cons.SiteCapKW < float64(spec.Count)*spec.Modes[m].PowerKW
			if i < len(cons.Fleets) {
				c := &cons.Fleets[i]
				out = out || c.Forbid[m] || c.Max[m] < spec.Count
			}
			if out {
				forced |= holdBit(i, m)
			}
		}
	}
	p.hold.loc = site.Location
	if snap.Have[switchd.SignalPrice] {
		p.hold.observe(snap.At[switchd.SignalPrice], snap.Value[switchd.SignalPrice], forced)
	}

	n := len(p.din.Fleets)
	if cap(p.din.HoldHours) < n {
		p.din.HoldHours = make([][switchd.NumModes]float64, n)
	}
	p.din.HoldHours = p.din.HoldHours[:n]
	if cap(p.din.BackShare) < n {
		p.din.BackShare = make([][switchd.NumModes]float64, n)
	}
	p.din.BackShare = p.din.BackShare[:n]
	clear(p.din.BackShare)
	if len(p.tracks) != n {
		p.tracks = make([][switchd.NumModes]holdTrack, n)
	}
	for i := range p.din.Fleets {
		spec := &p.din.Fleets[i]
		h := &p.din.HoldHours[i]
		for m := range switchd.Mode(switchd.NumModes) {
			h[m] = math.Inf(1)
			if m == switchd.ModeOff || !spec.Supports[m] || !(spec.SwitchCostUSD > 0) {
				continue
			}
			ref := holdReference(spec, m)
			dKW := spec.Modes[m].PowerKW - spec.Modes[ref].PowerKW
			if dKW == 0 {
				continue
			}
			// The price at which m is worth what ref is: m gains below it
			// when it draws more than ref, above it when it draws less.
			dRev := spec.RevenuePerHour(m, &p.din.Values) - spec.RevenuePerHour(ref, &p.din.Values)
			hold, back := p.hold.hold(&p.tracks[i][m], now, dRev/(dKW/1000), dKW < 0, holdBit(i, m),
				spec.SwitchCostUSD/(math.Abs(dKW)/1000))
			h[m] = hold.Hours()
			p.din.BackShare[i][m] = back
		}
	}
}

// NextWake implements Planner: the next schedule window edge, the next
// instant a slow shed would land on a forecast interval (with a forecast),
// or when the peak of recent AI demand kept warm (ai_warm.hold) expires,
// whichever comes first.
func (p *PolicyPlanner) NextWake(now time.Time, in *PlanInput) time.Time {
	w := in.Policy.NextEdge(now, in.Site)
	if in.Forecast != nil {
		if f := p.forecastWake(now, in.Forecast); !f.IsZero() && (w.IsZero() || f.Before(w)) {
			w = f
		}
	}
	if x := p.warm.nextWake(now, in.Policy.AIWarm.Hold); !x.IsZero() && (w.IsZero() || x.Before(w)) {
		w = x
	}
	return w
}

// holdReference is the mode whose breakeven against m bounds how long a
// device stays in m: off, except for a power target (mining_reduced) of a
// fleet that also mines at full power, whose devices leave it for full
// power when the price falls below the price at which the two are worth
// the same, long before it would go off.
func holdReference(spec *switchd.FleetSpec, m switchd.Mode) switchd.Mode {
	if m == switchd.ModeMiningReduced && spec.Supports[switchd.ModeMining] {
		return switchd.ModeMining
	}
	return switchd.ModeOff
}
