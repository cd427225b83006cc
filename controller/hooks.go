package controller

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/policies"
)

// FleetCommands are the commands one fleet gets in one tick.
type FleetCommands struct {
	Fleet    string
	Commands []switchd.Command
	// After is the devices in each mode once these commands (and the
	// transitions already under way) have landed: the commanded state.
	After [switchd.NumModes]int
}

// Recorder makes decisions and commands durable before they are sent: the
// daemon's journal. The controller calls it from Tick, never concurrently.
type Recorder interface {
	// Commands is called once per tick that has commands, before any of
	// them is sent, and returns once they are durable. If it fails, only
	// the commands that shed load are sent this tick (the others are held
	// and retried at the next tick).
	Commands(now time.Time, d *Decision, cmds []FleetCommands) error
	// Applied is called after a fleet's driver answered, for every fleet
	// sent commands (sheds sent while Commands fails included): err is nil
	// when it accepted them.
	Applied(now time.Time, fleet string, cmds []switchd.Command, err error)
}

// Override is an operator's manual instruction, in force until Until: force
// a fleet into a mode, or cap the site. It beats the policy's rules and
// fail-safes, never the interconnect cap.
type Override struct {
	ID        string
	Fleet     string // for a forced mode; empty for a site cap
	Mode      switchd.Mode
	HasMode   bool
	SiteCapKW float64
	HasCap    bool
	Until     time.Time
	Reason    string
	CreatedAt time.Time
}

// Active reports whether the override is in force at now.
func (o *Override) Active(now time.Time) bool { return now.Before(o.Until) }

// CheckOverride says what is wrong with o on site, given the overrides
// already in force at now, or returns nil: every override is checked here,
// whoever sets it. A cap is at most the interconnect cap (an override
// narrows, never widens) and finite; a forced mode is one the fleet
// supports; at most config.MaxOverrides are in force at once.
func CheckOverride(site *config.Site, o *Override, inForce []Override, now time.Time) error {
	n := 0
	for i := range inForce {
		if inForce[i].Active(now) {
			n++
		}
	}
	if n >= config.MaxOverrides {
		return fmt.Errorf("%d overrides are in force already, the most allowed: clear some first", n)
	}
	if o.HasCap {
		switch c := o.SiteCapKW; {
		case math.IsNaN(c) || c < 0:
			return fmt.Errorf("site_cap_kw must not be negative (got %v)", c)
		case c > site.PowerCapKW:
			return fmt.Errorf("site_cap_kw %s is above the interconnect cap %s kW: an override narrows, never widens",
				strconv.FormatFloat(c, 'g', -1, 64), strconv.FormatFloat(site.PowerCapKW, 'f', -1, 64))
		}
	}
	if o.HasMode {
		fi := site.FleetIndex(o.Fleet)
		if fi < 0 {
			return fmt.Errorf("unknown fleet %q", o.Fleet)
		}
		if o.Mode != switchd.ModeOff && !site.Fleets[fi].Spec.Supports[o.Mode] {
			return fmt.Errorf("fleet %q has no %s mode", o.Fleet, o.Mode)
		}
	}
	return nil
}

// applyOverrides narrows (or, for a forced mode, replaces) the evaluated
// constraints with the overrides in force at now, and lists them among the
// rules fired as "override:<fleet>" or "override:site-cap".
func applyOverrides(now time.Time, site *config.Site, ovs []Override, ev *policies.Evaluation) {
	for i := range ovs {
		o := &ovs[i]
		if !o.Active(now) {
			continue
		}
		if o.HasCap {
			ev.Constraints.SiteCapKW = min(ev.Constraints.SiteCapKW, o.SiteCapKW)
			ev.Fired = append(ev.Fired, "override:site-cap")
		}
		if !o.HasMode {
			continue
		}
		fi := site.FleetIndex(o.Fleet)
		if fi < 0 || fi >= len(ev.Constraints.Fleets) {
			continue
		}
		fc := &ev.Constraints.Fleets[fi]
		*fc = policies.NoFleetConstraint()
		for m := range fc.Forbid {
			fc.Forbid[m] = switchd.Mode(m) != o.Mode && switchd.Mode(m) != switchd.ModeOff
		}
		fc.Min[o.Mode] = site.Fleets[fi].Spec.Count
		// An operator's order is not held back by a fail-safe.
		ev.Constraints.Hold = false
		ev.Fired = append(ev.Fired, "override:"+o.Fleet)
	}
}
