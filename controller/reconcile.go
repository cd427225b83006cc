package controller

import (
	"math"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/policies"
)

// start is a wanted move that raises a fleet's draw; starts are granted in
// merit order under the stagger, ramp, retry and cap limits.
type start struct {
	fleet    int
	from, to switchd.Mode
	count    int
	dKW      float64 // extra draw per device, from the moment it is commanded
	merit    float64 // value gained per extra kW, for ordering
}

// reconcile turns the decision into commands (into each fleet's cmds).
//
// The rules, in order:
//   - A move out of a mode is forced when a constraint no longer allows the
//     devices there (forbidden, over a max) or the site cap requires it;
//     forced moves ignore dwell and hold.
//   - Other (economic) moves happen only for devices past their dwell time
//     (except out of a mode a rule discourages: the dispatcher weighed the
//     move against its switching cost, and the rule asked for it),
//     and not at all while a fail-safe holds.
//   - Moves that lower a device's draw (sheds) are never slowed.
//   - Moves that raise it (starts) wait for retries, stagger batches, ramp
//     budget and cap headroom, counting devices in transition at the larger
//     of their two modes' power so the cap holds at every instant.
//   - A shed-only tick (TickOptions.ShedOnly) holds like a fail-safe hold,
//     and sends a device forced out of its mode to off where the plan's
//     mode for it would raise its draw: only sheds go out.
func (c *Controller) reconcile(now time.Time, pol *policies.Policy) {
	ev := &c.dec.Eval
	cons := &ev.Constraints
	hold := cons.Hold && !ev.Curtail || c.shedOnly
	capKW := cons.SiteCapKW
	powNow, powLanded := c.powerKW()
	c.rampTopUp(now, pol)

	starts := c.startsBuf[:0]
	var shedKW float64
	for i := range c.fleets {
		f := &c.fleets[i]
		if f.err != nil || i >= len(c.dec.Plan.Fleets) {
			continue
		}
		spec := f.spec
		target := &c.dec.Plan.Fleets[i].Count
		fc := policies.NoFleetConstraint()
		if i < len(cons.Fleets) {
			fc = cons.Fleets[i]
		}

		var out, deficit [switchd.NumModes]int
		dwellBlocked := false
		for m := range switchd.NumModes {
			cur := f.steady[m] + f.arriving[m]
			allowed := fc.Max[m]
			if fc.Forbid[m] && m != int(switchd.ModeOff) {
				allowed = 0
			}
			forced := min(max(cur-allowed, 0), f.steady[m])
			surplus := max(cur-target[m], 0)
			econ, ruled := 0, 0
			if !hold {
				econ = min(surplus, f.eligible[m])
				if fc.Discourage[m] { // a rule's move: weighed, not held to dwell
					ruled = min(surplus, f.steady[m]) - econ
				} else if econ < min(surplus, f.steady[m]) {
					dwellBlocked = true
				}
			}
			out[m] = min(f.steady[m], max(forced, econ+ruled))
			c.forced += max(out[m]-econ, 0)
			deficit[m] = max(target[m]-cur, 0)
		}
		if dwellBlocked {
			c.wakeAtDwell(now, f)
		}

		// Pair devices leaving a mode with the modes short of devices, the
		// most valuable first; what is left over (forced out, nowhere
		// wanted) goes off.
		order := modesByValue(spec, &ev.Values)
		for _, from := range switchd.Modes {
			for _, to := range order {
				if out[from] == 0 {
					break
				}
				if to == from || deficit[to] == 0 {
					continue
				}
				if c.shedOnly && spec.TransitionPowerKW(from, to) > spec.Modes[from].PowerKW {
					continue // a start: what is left goes off below
				}
				n := min(out[from], deficit[to])
				out[from] -= n
				deficit[to] -= n
				starts, shedKW = c.move(f, i, from, to, n, starts, shedKW, &ev.Values)
			}
			if out[from] > 0 && from != switchd.ModeOff {
				starts, shedKW = c.move(f, i, from, switchd.ModeOff, out[from], starts, shedKW, &ev.Values)
			}
		}
	}

	// The cap may have dropped below what is running (a rule fired): shed
	// more, dwell or not, the least valuable per kW first.
	if excess := powLanded - shedKW - capKW; excess > 1e-9 {
		c.shedForCap(excess, &ev.Values)
	}

	// Grant starts in merit order.
	sortStarts(starts)
	for _, s := range starts {
		f := &c.fleets[s.fleet]
		n := s.count
		if hold {
			break
		}
		if now.Before(f.retryAt) {
			c.wakeAt(f.retryAt)
			continue
		}
		if st := pol.Stagger; st.Batch > 0 {
			if f.windowStart.IsZero() || now.Sub(f.windowStart) >= st.Interval {
				f.windowStart, f.started = now, 0
			}
			if n > st.Batch-f.started {
				n = st.Batch - f.started
				c.wakeAt(f.windowStart.Add(st.Interval))
			}
		}
		if pol.RampUpKWPerMin > 0 && c.rampBudget < float64(n)*s.dKW {
			byRamp := max(int(c.rampBudget/s.dKW), 0)
			n = byRamp
			need := (float64(n+1)*s.dKW - c.rampBudget) / pol.RampUpKWPerMin
			c.wakeAt(now.Add(max(time.Duration(need*float64(time.Minute)), time.Second)))
		}
		if room := capKW - powNow; room < float64(n)*s.dKW {
			// Headroom comes back when transitions land; those wakes are set.
			n = max(int(math.Floor(room/s.dKW+1e-9)), 0)
		}
		if n <= 0 {
			continue
		}
		f.cmds = append(f.cmds, switchd.Command{From: s.from, To: s.to, Count: n})
		f.started += n
		c.rampBudget -= float64(n) * s.dKW
		powNow += float64(n) * s.dKW
	}
	c.startsBuf = starts[:0]
}

// move records a wanted move: sheds go straight into the fleet's commands,
// starts into the list granted later.
func (c *Controller) move(f *fleet, i int, from, to switchd.Mode, n int, starts []start, shedKW float64, v *switchd.Values) ([]start, float64) {
	if n <= 0 {
		return starts, shedKW
	}
	spec := f.spec
	dKW := spec.TransitionPowerKW(from, to) - spec.Modes[from].PowerKW
	if dKW <= 0 {
		f.cmds = append(f.cmds, switchd.Command{From: from, To: to, Count: n})
		f.steady[from] -= n // not available to a cap shed any more
		shedKW += float64(n) * (spec.Modes[from].PowerKW - spec.Modes[to].PowerKW)
		return starts, shedKW
	}
	merit := (spec.ValuePerHour(to, v) - spec.ValuePerHour(from, v)) / dKW
	return append(starts, start{fleet: i, from: from, to: to, count: n, dKW: dKW, merit: merit}), shedKW
}

// shedForCap sends running devices off until excess kW (of landed power) is
// shed, the least valuable per kW first.
func (c *Controller) shedForCap(excess float64, v *switchd.Values) {
	for excess > 1e-9 {
		best, bestMode, bestMerit := -1, switchd.ModeOff, math.Inf(1)
		for i := range c.fleets {
			f := &c.fleets[i]
			if f.err != nil {
				continue
			}
			for _, m := range switchd.Modes[1:] {
				dKW := f.spec.Modes[m].PowerKW - f.spec.Modes[switchd.ModeOff].PowerKW
				if f.steady[m] == 0 || dKW <= 0 {
					continue
				}
				merit := (f.spec.ValuePerHour(m, v) - f.spec.ValuePerHour(switchd.ModeOff, v)) / dKW
				if merit < bestMerit {
					best, bestMode, bestMerit = i, m, merit
				}
			}
		}
		if best < 0 {
			return // nothing left to shed: every device is off or moving
		}
		f := &c.fleets[best]
		dKW := f.spec.Modes[bestMode].PowerKW - f.spec.Modes[switchd.ModeOff].PowerKW
		n := min(int(math.Ceil(excess/dKW-1e-9)), f.steady[bestMode])
		f.cmds = append(f.cmds, switchd.Command{From: bestMode, To: switchd.ModeOff, Count: n})
		f.steady[bestMode] -= n
		c.forced += n
		excess -= float64(n) * dKW
	}
}

// wakeAtDwell wakes the controller when the next device of the fleet comes
// out of its dwell time.
func (c *Controller) wakeAtDwell(now time.Time, f *fleet) {
	cut := now.Add(-f.spec.MinDwell)
	for _, co := range f.state.Cohorts {
		if co.Steady() && co.Since.After(cut) {
			c.wakeAt(co.Since.Add(f.spec.MinDwell))
		}
	}
}

// modesByValue orders a fleet's supported modes by value per device-hour,
// best first (off last among equals).
func modesByValue(spec *switchd.FleetSpec, v *switchd.Values) [switchd.NumModes]switchd.Mode {
	order := switchd.Modes
	var val [switchd.NumModes]float64
	for _, m := range order {
		val[m] = spec.ValuePerHour(m, v)
		if m != switchd.ModeOff && !spec.Supports[m] {
			val[m] = math.Inf(-1)
		}
	}
	// Insertion sort of three.
	for i := 1; i < len(order); i++ {
		for j := i; j > 0 && val[order[j]] > val[order[j-1]]; j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	return order
}

// sortStarts orders starts by merit, best first; ties keep fleet order.
func sortStarts(s []start) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].merit > s[j-1].merit; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
