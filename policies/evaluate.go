package policies

import (
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
)

// Active reports whether the window is open at now: it opened at an
// activation of its schedule at or before now, less than For ago. Schedules
// without CRON_TZ= are read in loc (the site's zone), so "0 15 * * *" is 3 pm
// at the site on both sides of a DST change.
func (w *Window) Active(now time.Time, loc *time.Location) bool {
	if w == nil || w.Schedule == nil || w.For <= 0 {
		return false
	}
	if loc == nil {
		loc = time.UTC
	}
	// The first activation after now-For is the only one that can still be
	// open; cron's Next is strictly after its argument, which makes the
	// window half-open: [start, start+For).
	t := w.Schedule.Next(now.In(loc).Add(-w.For))
	return !t.IsZero() && !t.After(now)
}

// nextEdge returns the first instant after now at which the window opens or
// closes, or the zero time if it never does again.
func (w *Window) nextEdge(now time.Time, loc *time.Location) time.Time {
	if w == nil || w.Schedule == nil || w.For <= 0 {
		return time.Time{}
	}
	local := now.In(loc)
	open := w.Schedule.Next(local)
	// The first window that closes after now is the one opening first after
	// now-For; it closes at that opening plus For.
	closing := w.Schedule.Next(local.Add(-w.For))
	if !closing.IsZero() {
		closing = closing.Add(w.For)
	}
	return earliest(open, closing)
}

// earliest returns the earlier of two instants, ignoring zero ones.
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}

// NextEdge returns the first instant after now at which any rule's schedule
// window opens or closes, or the zero time if the policy has no windows. The
// simulator wakes exactly there, so windows act at their edges rather than at
// the next trace row.
func (p *Policy) NextEdge(now time.Time, site *config.Site) time.Time {
	loc := siteLocation(site)
	var edge time.Time
	for i := range p.Rules {
		edge = earliest(edge, p.Rules[i].When.Window.nextEdge(now, loc))
	}
	if edge.IsZero() {
		return edge
	}
	return edge.In(now.Location())
}

func siteLocation(site *config.Site) *time.Location {
	if site == nil || site.Location == nil {
		return time.UTC
	}
	return site.Location
}

// Evaluate evaluates the policy at now; see EvaluateInto. It allocates a new
// Evaluation each call: loops should keep one and call EvaluateInto.
func (p *Policy) Evaluate(now time.Time, snap *switchd.Snapshot, site *config.Site) Evaluation {
	var ev Evaluation
	p.EvaluateInto(now, snap, site, &ev)
	return ev
}

// Values returns the effective signal values: the snapshot's value where
// one was received, else the policy's fallback; a signal with neither is
// not Present (for ai_demand that means unlimited). It is what both the
// controller and the simulator's accounting run their economics on.
func (p *Policy) Values(snap *switchd.Snapshot) switchd.Values {
	var v switchd.Values
	for _, s := range switchd.AllSignals {
		switch {
		case snap.Have[s]:
			v.V[s], v.Present[s] = snap.Value[s], true
		case p.HasFallback[s]:
			v.V[s], v.Present[s] = p.Fallbacks[s], true
		}
	}
	if snap.PeakMonth != 0 && snap.Have[switchd.SignalGridLoad] {
		v.MonthPeakGridLoad, v.HasMonthPeak = snap.MonthPeakGridLoad, true
	}
	return v
}

// EvaluateInto evaluates the policy at now into ev, reusing ev's slices: once
// they have grown to size it allocates nothing, because the simulator calls
// it for every step of a year-long trace.
//
// It computes the effective signal values (the snapshot's value if one was
// received, else the policy's fallback), which signals are stale, the
// fail-safe that applies, which rules fire and the constraints they impose
// together. snap may be nil (nothing received yet).
func (p *Policy) EvaluateInto(now time.Time, snap *switchd.Snapshot, site *config.Site, ev *Evaluation) {
	var empty switchd.Snapshot
	if snap == nil {
		snap = &empty
	}
	nf := len(site.Fleets)
	ev.Fired = ev.Fired[:0]
	ev.Stale = ev.Stale[:0]
	ev.Curtail = false
	c := &ev.Constraints
	c.SiteCapKW = site.PowerCapKW
	c.Hold = false
	if cap(c.Fleets) < nf {
		c.Fleets = make([]FleetConstraint, nf)
	}
	c.Fleets = c.Fleets[:nf]
	for i := range c.Fleets {
		c.Fleets[i] = NoFleetConstraint()
	}

	ev.Values = p.Values(snap)
	var stale [switchd.NumSignals]bool
	var hold bool
	for _, s := range switchd.AllSignals {
		switch {
		case snap.Have[s]:
			// A zero max age (a hand-built Site) means no limit: loaded
			// sites always have one.
			stale[s] = site.MaxAge[s] > 0 && now.Sub(snap.At[s]) > site.MaxAge[s]
		case !p.HasFallback[s]:
			// An operator who declared a fail-safe for a signal wants
			// "never heard from it" treated like "stopped hearing from it".
			stale[s] = p.FailSafe[s] != FailSafeNone
		}
		if !stale[s] {
			continue
		}
		ev.Stale = append(ev.Stale, s)
		switch p.FailSafe[s] {
		case FailSafeCurtail:
			ev.Curtail = true
		case FailSafeHold:
			hold = true
		}
	}
	c.Hold = hold && !ev.Curtail

	loc := siteLocation(site)
	for i := range p.Rules {
		r := &p.Rules[i]
		if !r.When.holds(now, loc, &ev.Values, &stale) {
			continue
		}
		ev.Fired = append(ev.Fired, r.Name)
		if r.Then.SiteCapKW != nil {
			c.SiteCapKW = min(c.SiteCapKW, *r.Then.SiteCapKW)
		}
		for j := range min(len(r.Then.Fleets), nf) {
			c.Fleets[j].merge(&r.Then.Fleets[j])
		}
	}

	for i := range c.Fleets {
		fc := &c.Fleets[i]
		if ev.Curtail {
			fc.Forbid[switchd.ModeMining] = true
			fc.Forbid[switchd.ModeInference] = true
			// And the power-target modes the fleet has: a reduced
			// power target or a sleeping engine still draws.
			if i < len(site.Fleets) {
				forbidExtra(fc, &site.Fleets[i].Spec)
			}
		}
		// A forbid is a safety statement (a 4CP window, a curtailment), a
		// min is a commitment made in calmer times: the forbid wins.
		for m := range fc.Forbid {
			if fc.Forbid[m] {
				fc.Min[m] = 0
			}
		}
	}
}

// merge tightens c by o: anything either forbids is forbidden, anything
// either discourages is discouraged, the larger minimum and the smaller
// maximum hold.
func (c *FleetConstraint) merge(o *FleetConstraint) {
	for m := range c.Forbid {
		c.Forbid[m] = c.Forbid[m] || o.Forbid[m]
		c.Discourage[m] = c.Discourage[m] || o.Discourage[m]
		c.Min[m] = max(c.Min[m], o.Min[m])
		c.Max[m] = min(c.Max[m], o.Max[m])
	}
}

// holds reports whether every set part of the condition holds. A threshold
// on a signal with no value (neither received nor a fallback) does not hold:
// a rule must not fire on a price nobody quoted.
func (c *Condition) holds(now time.Time, loc *time.Location, v *switchd.Values, stale *[switchd.NumSignals]bool) bool {
	price, havePrice := v.Get(switchd.SignalPrice)
	if c.PriceAbove != nil && (!havePrice || !(price > *c.PriceAbove)) {
		return false
	}
	if c.PriceBelow != nil && (!havePrice || !(price < *c.PriceBelow)) {
		return false
	}
	if c.GridLoadAbove != nil {
		load, ok := v.Get(switchd.SignalGridLoad)
		if !ok || !(load > *c.GridLoadAbove) {
			return false
		}
	}
	if c.NearMonthPeakPct != nil {
		// Within pct of the month's highest load so far (a new monthly
		// high is 100%): the intervals that can still be this month's
		// coincident peak.
		load, ok := v.Get(switchd.SignalGridLoad)
		if !ok || !v.HasMonthPeak || !(load >= *c.NearMonthPeakPct/100*v.MonthPeakGridLoad) {
			return false
		}
	}
	if c.CPAlertAbove != nil {
		p, ok := v.Get(switchd.SignalCPAlert)
		if !ok || !(p > *c.CPAlertAbove) {
			return false
		}
	}
	if len(c.SignalStale) > 0 {
		anyStale := false
		for _, s := range c.SignalStale {
			if int(s) < switchd.NumSignals && stale[s] {
				anyStale = true
				break
			}
		}
		if !anyStale {
			return false
		}
	}
	// Last: the window is the most expensive part to check.
	if c.Window != nil && !c.Window.Active(now, loc) {
		return false
	}
	return true
}

// forbidExtra forbids the power-target modes (past off, mining and
// inference) that the fleet supports; the others are never planned anyway.
func forbidExtra(fc *FleetConstraint, spec *switchd.FleetSpec) {
	for _, m := range switchd.Modes[switchd.BaseModes:] {
		if spec.Supports[m] {
			fc.Forbid[m] = true
		}
	}
}
