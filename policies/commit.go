package policies

import (
	"math"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
)

// CommitFloor raises the constraints' minimums so that the plan keeps the
// capacity the site committed to demand-response programs sheddable: for
// each program, at least its committed kW (plus that of programs with a
// shorter or equal time) runs in modes whose transition to off takes at
// most the program's time. The load is taken where it loses least: modes
// by value per kW over off, best first, at values v. Minimums already set
// count; Forbid and Max are honoured (an operator or a rule wins over a
// commitment, and the dispatcher's cap wins over every minimum). It
// returns whether any minimum was raised. Pure; no allocation for sites of
// up to 16 fleets.
func CommitFloor(fleets []switchd.FleetSpec, cons *Constraints, programs []config.Program, v *switchd.Values) bool {
	if len(programs) == 0 || len(cons.Fleets) < len(fleets) {
		return false
	}
	raised := false
	for _, p := range programs {
		need := 0.0
		for _, q := range programs {
			if q.Within <= p.Within {
				need += q.CommittedKW
			}
		}
		need -= floorKW(fleets, cons, p)
		for need > 1e-9 {
			fi, m := bestFast(fleets, cons, p, v)
			if fi < 0 {
				break // the fleets cannot hold more: config validation said so, or rules forbid it
			}
			spec := &fleets[fi]
			c := &cons.Fleets[fi]
			dKW := spec.Modes[m].PowerKW - spec.Modes[switchd.ModeOff].PowerKW
			room := min(c.Max[m], spec.Count-minTotal(c)+c.Min[m]) - c.Min[m]
			n := min(int(math.Ceil(need/dKW-1e-9)), room)
			c.Min[m] += n
			need -= float64(n) * dKW
			raised = true
		}
	}
	return raised
}

// floorKW is the sheddable load the minimums already keep for program p.
func floorKW(fleets []switchd.FleetSpec, cons *Constraints, p config.Program) float64 {
	kw := 0.0
	for i := range fleets {
		spec := &fleets[i]
		for _, m := range switchd.Modes[1:] {
			if spec.Supports[m] && spec.Transition[m][switchd.ModeOff] <= p.Within {
				kw += float64(cons.Fleets[i].Min[m]) * max(spec.Modes[m].PowerKW-spec.Modes[switchd.ModeOff].PowerKW, 0)
			}
		}
	}
	return kw
}

// bestFast is the fleet and mode with room for more minimum, fast enough
// for p, that loses least per kW held; -1 when none.
func bestFast(fleets []switchd.FleetSpec, cons *Constraints, p config.Program, v *switchd.Values) (int, switchd.Mode) {
	best, bestMode, bestKey := -1, switchd.ModeOff, math.Inf(-1)
	for i := range fleets {
		spec := &fleets[i]
		c := &cons.Fleets[i]
		for _, m := range switchd.Modes[1:] {
			dKW := spec.Modes[m].PowerKW - spec.Modes[switchd.ModeOff].PowerKW
			if !spec.Supports[m] || c.Forbid[m] || dKW <= 0 || spec.Transition[m][switchd.ModeOff] > p.Within {
				continue
			}
			if min(c.Max[m], spec.Count-minTotal(c)+c.Min[m]) <= c.Min[m] {
				continue
			}
			key := (spec.ValuePerHour(m, v) - spec.ValuePerHour(switchd.ModeOff, v)) / dKW
			if math.IsNaN(key) {
				key = math.Inf(-1)
			}
			if best < 0 || key > bestKey {
				best, bestMode, bestKey = i, m, key
			}
		}
	}
	return best, bestMode
}

// minTotal is the devices a fleet's minimums already claim, in any mode.
func minTotal(c *FleetConstraint) int {
	n := 0
	for _, k := range c.Min {
		n += k
	}
	return n
}
