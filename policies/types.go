// Package policies holds the policy YAML schema, its strict loading and
// validation against a site (package config), the evaluation of rules into
// constraints, and the dispatcher that turns signals and constraints into a
// plan.
//
// Everything here is pure: no I/O outside Load*, no clock (time comes in as
// an argument), no logging. It imports the root package, config, cron and
// yaml only; config never imports it.
package policies

import (
	"math"
	"time"

	"github.com/switchd/switchd"
)

// FailSafe is what happens when a signal goes stale.
type FailSafe uint8

// Fail-safe actions.
const (
	FailSafeNone    FailSafe = iota // ignore staleness (use the last value or fallback)
	FailSafeHold                    // keep every device where it is
	FailSafeCurtail                 // send every device to off
)

// String returns the action's YAML name.
func (f FailSafe) String() string {
	switch f {
	case FailSafeHold:
		return "hold"
	case FailSafeCurtail:
		return "curtail"
	}
	return "none"
}

// Stagger bounds how many devices of a fleet may be started at once.
type Stagger struct {
	Batch    int           // devices per batch; 0 means no staggering
	Interval time.Duration // time between batches
}

// Policy is a loaded and validated policy file.
type Policy struct {
	// Fallbacks are used for signals that have no value (never received);
	// HasFallback[s] says whether one is set.
	Fallbacks   [switchd.NumSignals]float64
	HasFallback [switchd.NumSignals]bool

	HysteresisUSDPerMWh float64 // a device changes mode only when the new one is better by this much per MWh
	RampUpKWPerMin      float64 // 0 means unlimited; shedding is never limited
	Stagger             Stagger
	FailSafe            [switchd.NumSignals]FailSafe
	Rules               []Rule
	AIWarm              AIWarm // GPUs kept loaded beyond ai_demand (aiwarm.go)

	Source string // file the policy was loaded from
}

// Rule is a named condition and the constraints it imposes while it holds.
type Rule struct {
	Name string
	When Condition
	Then Effect
}

// Condition is a conjunction: every set part must hold. An empty condition
// always holds.
type Condition struct {
	PriceAbove    *float64 // USD/MWh
	PriceBelow    *float64 // USD/MWh
	GridLoadAbove *float64 // MW
	// NearMonthPeakPct: grid load at least this percent of the month's
	// highest load so far.
	NearMonthPeakPct *float64
	CPAlertAbove     *float64 // probability, 0 to 1
	Window           *Window
	SignalStale      []switchd.Signal // any of these stale
}

// Reads reports which signals the condition reads: those it compares with a
// threshold and those whose staleness it tests. The simulator refuses a
// trace that lacks one of them (a rule on it could never act as written).
func (c *Condition) Reads() (r [switchd.NumSignals]bool) {
	r[switchd.SignalPrice] = c.PriceAbove != nil || c.PriceBelow != nil
	r[switchd.SignalGridLoad] = c.GridLoadAbove != nil || c.NearMonthPeakPct != nil
	r[switchd.SignalCPAlert] = c.CPAlertAbove != nil
	for _, s := range c.SignalStale {
		if int(s) < switchd.NumSignals {
			r[s] = true
		}
	}
	return r
}

// Window is a recurring time window: it opens at each activation of a cron
// schedule (evaluated in the site's timezone unless the spec says CRON_TZ=)
// and lasts For.
type Window struct {
	Spec     string
	Schedule interface {
		Next(time.Time) time.Time
	}
	For time.Duration
}

// Effect is what a rule imposes. Per-fleet parts are indexed like Site.Fleets.
type Effect struct {
	SiteCapKW *float64
	Fleets    []FleetConstraint // len == len(Site.Fleets) when any per-fleet part is set, else nil
}

// Unlimited is the Max of a mode with no maximum.
const Unlimited = math.MaxInt

// FleetConstraint narrows what the dispatcher may do with one fleet.
type FleetConstraint struct {
	Forbid [switchd.NumModes]bool
	// Min[m] devices must be in m even at a loss (as the cap allows); a
	// forced mode is Min[m] = fleet size with every other mode forbidden.
	Min [switchd.NumModes]int
	// Max[m] devices at most in m; Unlimited when unset.
	Max [switchd.NumModes]int
	// Discourage[m]: the dispatcher counts mode m as earning nothing (its
	// energy still costs), so no device enters it and devices in it leave
	// as soon as leaving pays, their switching cost counted as for any
	// economic move. A preference, not a limit: with no switching cost it
	// empties m at once, as a forbid would; with one, a device rides
	// through a short spell rather than pay for a switch out and back.
	Discourage [switchd.NumModes]bool
}

// NoFleetConstraint returns a constraint that allows everything.
func NoFleetConstraint() FleetConstraint {
	var c FleetConstraint
	for m := range c.Max {
		c.Max[m] = Unlimited
	}
	return c
}

// Constraints is everything the rules and fail-safes allow at one instant.
type Constraints struct {
	SiteCapKW float64           // the tightest cap in force (interconnect or rule)
	Fleets    []FleetConstraint // indexed like Site.Fleets
	// Hold is set when a fail-safe says to keep devices where they are: the
	// reconciler issues no commands except those a cap or forbid requires.
	Hold bool
}

// Evaluation is the result of evaluating a policy at one instant.
type Evaluation struct {
	Values      switchd.Values // effective signal values (received or fallback)
	Constraints Constraints
	Fired       []string         // names of rules that fired, in policy order
	Stale       []switchd.Signal // signals past their max age
	// Curtail is set when a fail-safe curtails: Constraints then forbid
	// every mode but off.
	Curtail bool
}
