package controller

import (
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/policies"
)

// PlanInput is what a planner sees at one instant.
type PlanInput struct {
	Site   *policies.Site
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
}

// Decision is a planner's output: the evaluated policy (values, constraints,
// rules fired) and the target plan.
type Decision struct {
	Eval policies.Evaluation
	Plan switchd.Plan
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
type PolicyPlanner struct {
	din  policies.DispatchInput
	site *policies.Site // the site din.Fleets was built from
}

// Plan implements Planner.
func (p *PolicyPlanner) Plan(now time.Time, in *PlanInput, d *Decision) {
	in.Policy.EvaluateInto(now, in.Snap, in.Site, &d.Eval)
	applyOverrides(now, in.Site, in.Overrides, &d.Eval)
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
	p.din.Current = in.Current
	p.din.HysteresisUSDPerMWh = in.Policy.HysteresisUSDPerMWh
	policies.DispatchInto(&p.din, &d.Plan)
}

// NextWake implements Planner: the next schedule window edge.
func (p *PolicyPlanner) NextWake(now time.Time, in *PlanInput) time.Time {
	return in.Policy.NextEdge(now, in.Site)
}
