// Package controller is switchd's decision loop: it snapshots signals, asks
// a planner (the policy and dispatcher) for a target, and reconciles the
// fleets' observed state towards it through their drivers, honouring dwell,
// hysteresis, ramp limits, staggered starts, transition times and retries.
//
// The core has no goroutines, no locks and no clock of its own: time comes
// from the injected Clock, read once per Tick, and every timer is a stored
// timestamp compared with a later tick's now. So the daemon (wall clock) and
// the simulator (virtual clock) run the very same code. It must not import
// MQTT, HTTP or any other I/O package.
package controller

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/policies"
)

// Retry backoff bounds after a driver error or a device that did not reach
// its commanded mode.
const (
	minBackoff = 30 * time.Second
	maxBackoff = 10 * time.Minute
)

// Options configure a Controller.
type Options struct {
	Site    *config.Site
	Policy  *policies.Policy
	Drivers []switchd.Driver // one per fleet, indexed like Site.Fleets
	Clock   switchd.Clock
	// Planner decides targets; nil means a PolicyPlanner.
	Planner Planner
	// Recorder, when set, makes commands durable before they are sent.
	Recorder Recorder
	// Parallel, when set, runs fn(0) ... fn(n-1) and returns when all have
	// returned; the daemon passes one that runs them on goroutines, so
	// fleets are polled and commanded at the same time. Nil runs them one
	// after another (the simulator). The core itself starts no goroutine.
	Parallel func(n int, fn func(i int))
	// DRKeepEnded is how many ended demand-response events DRRecords
	// keeps: 0 means 32 (the daemon: the journal has them all), negative
	// means every one (the simulator reports them all).
	DRKeepEnded int
	// Standby, when set, is asked once per tick whether this controller
	// is a standby (a high-availability follower): such a tick reads the
	// fleets, plans and reconciles as usual (a warm plan) but records and
	// sends nothing. Nil means always active.
	Standby func() bool
}

// Validate checks that the options fit together.
func (o *Options) Validate() error {
	var errs []error
	if o.Site == nil {
		errs = append(errs, errors.New("no site"))
	}
	if o.Policy == nil {
		errs = append(errs, errors.New("no policy"))
	}
	if o.Clock == nil {
		errs = append(errs, errors.New("no clock"))
	}
	if o.Site != nil && len(o.Drivers) != len(o.Site.Fleets) {
		errs = append(errs, fmt.Errorf("%d drivers for %d fleets", len(o.Drivers), len(o.Site.Fleets)))
	}
	for i, d := range o.Drivers {
		if d == nil {
			errs = append(errs, fmt.Errorf("fleet %d: no driver", i))
		}
	}
	return errors.Join(errs...)
}

// fleet is the controller's memory of one fleet between ticks.
type fleet struct {
	spec   *switchd.FleetSpec
	driver switchd.Driver

	state    switchd.FleetState // as read this tick
	err      error              // driver error this tick, if any
	wake     time.Time          // the fleet's earliest wake, found while reading it
	last     time.Time          // the tick's now, for the fleet's own wakeAt
	usable   int                // devices the plan may count on
	applyErr error              // outcome of this tick's Apply

	steady   [switchd.NumModes]int // devices steady in each mode
	arriving [switchd.NumModes]int // devices on their way to each mode
	eligible [switchd.NumModes]int // steady devices past their dwell time

	// Staggered starts: at most Stagger.Batch devices started per window
	// of Stagger.Interval beginning at windowStart.
	windowStart time.Time
	started     int

	// Retries: no new commands before retryAt; backoff doubles on each
	// failure and resets once a tick sees none.
	retryAt time.Time
	backoff time.Duration

	cmds []switchd.Command
}

// FleetReport is what happened to one fleet in a tick.
type FleetReport struct {
	Commands []switchd.Command // sent this tick
	Err      error             // driver error (state or apply), if any
	Op       string            // the driver call that failed: "state" or "apply"
	Failed   int               // devices that did not reach a commanded mode
	// Held are commands the journal could not record: not sent.
	Held []switchd.Command
}

// Controller runs the decision loop for one site. Tick must not be called
// concurrently; SetPolicy and Observe may be called from other goroutines
// only if the caller serialises them with Tick (the daemon does).
type Controller struct {
	site     *config.Site
	policy   atomic.Pointer[policies.Policy]
	clock    switchd.Clock
	planner  Planner
	recorder Recorder
	parallel func(n int, fn func(i int))
	standby  func() bool
	// recordErr is the journal failure of the last tick, if any: it held
	// back the tick's starts (sheds went out all the same).
	recordErr error

	snap      switchd.Snapshot
	forecast  *Forecast // latest price forecast observed, nil if none
	overrides []Override
	batch     []FleetCommands
	fleets    []fleet
	current   [][switchd.NumModes]int
	in        PlanInput
	dec       Decision
	reports   []FleetReport
	// startsBuf is reconcile's scratch list, kept to avoid an allocation
	// per tick.
	startsBuf []start
	usable    []int
	forced    int // devices moved by a constraint in the last tick

	rampAt     time.Time // when rampBudget was last topped up
	rampBudget float64   // kW of increase allowed now
	nextWake   time.Time
	lastTick   time.Time

	// shedOnly is the running tick's TickOptions.ShedOnly; held is the
	// policy a shed-only tick plans with (heldPolicy), kept to reuse.
	shedOnly bool
	held     policies.Policy

	dr drState // demand-response events (see dr.go)
}

// New returns a controller; opts must be valid.
func New(opts Options) (*Controller, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("controller: %w", err)
	}
	c := &Controller{
		site:     opts.Site,
		clock:    opts.Clock,
		planner:  opts.Planner,
		recorder: opts.Recorder,
		parallel: opts.Parallel,
		standby:  opts.Standby,
		fleets:   make([]fleet, len(opts.Site.Fleets)),
		current:  make([][switchd.NumModes]int, len(opts.Site.Fleets)),
		reports:  make([]FleetReport, len(opts.Site.Fleets)),
	}
	if c.planner == nil {
		c.planner = &PolicyPlanner{}
	}
	c.policy.Store(opts.Policy)
	for i := range c.fleets {
		c.fleets[i].spec = &opts.Site.Fleets[i].Spec
		c.fleets[i].driver = opts.Drivers[i]
	}
	c.dr.lead = drLead(c.fleets)
	c.dr.keepEnded = opts.DRKeepEnded
	return c, nil
}

// SetPolicy swaps the policy; it takes effect at the next tick.
func (c *Controller) SetPolicy(p *policies.Policy) { c.policy.Store(p) }

// Policy returns the policy in force.
func (c *Controller) Policy() *policies.Policy { return c.policy.Load() }

// Observe stores a signal sample as the latest value of its signal. Samples
// older than the value held are ignored (they would move time backwards).
func (c *Controller) Observe(s switchd.Sample) {
	if c.snap.Have[s.Signal] && s.Time.Before(c.snap.At[s.Signal]) {
		return
	}
	c.snap.Set(s)
	if s.Signal == switchd.SignalGridLoad {
		loc := c.site.Location
		if loc == nil {
			loc = time.UTC
		}
		c.snap.NotePeak(s.Time.In(loc), s.Value)
	}
}

// Forget makes a signal absent, as before its first sample: its
// fallback (if the policy has one) applies until the next sample. The
// simulator uses it for an input whose series has ended or has a gap.
func (c *Controller) Forget(s switchd.Signal) {
	if s < switchd.NumSignals {
		c.snap.Have[s] = false
	}
}

// Snapshot returns the signals as last observed.
func (c *Controller) Snapshot() *switchd.Snapshot { return &c.snap }

// Decision returns the last tick's decision (valid until the next tick).
func (c *Controller) Decision() *Decision { return &c.dec }

// Reports returns the last tick's per-fleet reports, indexed like the site's
// fleets (valid until the next tick).
func (c *Controller) Reports() []FleetReport { return c.reports }

// ForcedMoves is the number of devices the last tick moved because a
// constraint required it (a cap, a forbidden mode, a fail-safe) or a rule
// discouraged the mode they left; dwell does not apply to those moves.
func (c *Controller) ForcedMoves() int { return c.forced }

// NextWake is the earliest instant after the last tick at which the
// controller has something to do without a new signal: a transition landing,
// the next stagger batch, ramp budget, a retry, a dwell expiring on a wanted
// move, a schedule window edge, a signal going stale. Zero if none.
func (c *Controller) NextWake() time.Time { return c.nextWake }

// TickOptions say what one tick may do; the zero value is a normal tick.
type TickOptions struct {
	// ShedOnly makes a tick that reads the fleets, plans and journals as
	// usual but sends only the sheds a constraint requires: the site cap
	// (interconnect, a rule's, a demand-response event's, an operator's
	// cap override) and the forbids and maximums of rules and overrides.
	// Nothing starts, no economic switch is made and no fail-safe acts:
	// a signal with a fail-safe that has no value yet counts as unknown
	// (neither stale nor at its fallback, so no rule fires on it), and a
	// stale one holds rather than curtails. The daemon ticks so while it
	// waits, after a start, for the first value of its fail-safe signals:
	// a restart must not flip devices on a missing input, but the cap holds
	// from the first tick.
	ShedOnly bool
}

// Tick runs one whole cycle: read the clock once, read driver states,
// evaluate the policy, reconcile, and apply commands. Driver errors are
// reported per fleet (Reports) and retried with backoff; Tick itself only
// fails when the context is done.
func (c *Controller) Tick(ctx context.Context) error { return c.TickWith(ctx, TickOptions{}) }

// TickWith is Tick with options for this tick only.
func (c *Controller) TickWith(ctx context.Context, opt TickOptions) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := c.clock.Now()
	c.lastTick = now
	c.nextWake = time.Time{}
	c.forced = 0
	c.shedOnly = opt.ShedOnly
	pol := c.policy.Load()
	planPol := pol
	if c.shedOnly {
		planPol = c.heldPolicy(pol)
		ctx = switchd.WithShedOnly(ctx) // drivers re-command drift only downwards
	}

	c.each(func(i int) { c.readFleet(ctx, now, i) })
	for i := range c.fleets {
		c.wakeAt(c.fleets[i].wake)
	}

	c.dropExpired(now)
	if len(c.usable) != len(c.fleets) {
		c.usable = make([]int, len(c.fleets))
	}
	unusableKW := 0.0
	for i := range c.fleets {
		f := &c.fleets[i]
		c.usable[i] = f.usable
		for m, n := range f.state.Unusable.ByMode {
			unusableKW += float64(n) * f.spec.Modes[m].PowerKW
		}
	}
	c.in = PlanInput{Site: c.site, Policy: planPol, Snap: &c.snap, Current: c.current, Overrides: c.overrides, Usable: c.usable, UnusableKW: unusableKW}
	c.in.Forecast = c.freshForecast(now)
	c.in.DRCapKW, c.in.DRFired = c.drBeforePlan(now)
	c.planner.Plan(now, &c.in, &c.dec)
	c.dec.ShedOnly = c.shedOnly
	c.drCheckPlan(now, unusableKW)
	c.wakeAt(c.planner.NextWake(now, &c.in))
	c.wakeAtStale(now, pol)

	c.reconcile(now, pol)
	if c.standby != nil && c.standby() {
		// A follower: the plan is kept warm, the leader commands.
		for i := range c.fleets {
			c.fleets[i].cmds = c.fleets[i].cmds[:0]
		}
	}

	c.recordErr = nil
	if err := c.record(now); err != nil {
		// Nothing is sent that is not journalled, except sheds: the grid
		// comes first, so load still goes down when the journal cannot be
		// written, and increases wait. Try again shortly.
		c.recordErr = err
		for i := range c.fleets {
			f := &c.fleets[i]
			sheds := f.cmds[:0:0]
			for _, cmd := range f.cmds {
				if f.spec.TransitionPowerKW(cmd.From, cmd.To) <= f.spec.Modes[cmd.From].PowerKW {
					sheds = append(sheds, cmd)
				} else {
					c.reports[i].Held = append(c.reports[i].Held, cmd)
				}
			}
			f.cmds = sheds
		}
		c.wakeAt(now.Add(minBackoff))
	}
	c.each(func(i int) {
		f := &c.fleets[i]
		f.applyErr = nil
		if len(f.cmds) > 0 {
			f.applyErr = f.driver.Apply(ctx, f.cmds)
		}
	})
	for i := range c.fleets {
		f := &c.fleets[i]
		r := &c.reports[i]
		r.Commands = f.cmds
		if len(f.cmds) == 0 {
			continue
		}
		err := f.applyErr
		if c.recorder != nil {
			c.recorder.Applied(now, f.spec.Name, f.cmds, err)
		}
		if err != nil {
			r.Err = fmt.Errorf("fleet %q: apply: %w", f.spec.Name, err)
			r.Op = "apply"
			r.Commands = nil
			f.fail(now)
			c.wakeAt(f.retryAt)
			continue
		}
		for _, cmd := range f.cmds {
			c.wakeAt(now.Add(f.spec.Transition[cmd.From][cmd.To]))
		}
	}
	c.drAfterApply(now)
	return nil
}

// heldPolicy returns pol as a shed-only tick plans with it: every signal
// with a fail-safe and no value yet is unknown (no fail-safe, no fallback),
// and a fail-safe that would curtail holds instead. The copy is shallow:
// the rules are pol's, read only.
func (c *Controller) heldPolicy(pol *policies.Policy) *policies.Policy {
	c.held = *pol
	for _, s := range switchd.AllSignals {
		switch {
		case pol.FailSafe[s] == policies.FailSafeNone:
		case !c.snap.Have[s]:
			c.held.FailSafe[s] = policies.FailSafeNone
			c.held.HasFallback[s] = false
		case pol.FailSafe[s] == policies.FailSafeCurtail:
			c.held.FailSafe[s] = policies.FailSafeHold
		}
	}
	return &c.held
}

// RecordErr is the journal failure of the last tick, or nil. While the
// journal fails, only sheds are sent.
func (c *Controller) RecordErr() error { return c.recordErr }

// Observed returns fleet i's state as its driver reported it in the last
// tick (valid until the next tick).
func (c *Controller) Observed(i int) *switchd.FleetState { return &c.fleets[i].state }

// each runs fn for every fleet, in parallel when the daemon asked for it.
func (c *Controller) each(fn func(i int)) {
	if c.parallel == nil || len(c.fleets) < 2 {
		for i := range c.fleets {
			fn(i)
		}
		return
	}
	c.parallel(len(c.fleets), fn)
}

// record hands this tick's commands to the recorder, if any.
func (c *Controller) record(now time.Time) error {
	if c.recorder == nil {
		return nil
	}
	c.batch = c.batch[:0]
	for i := range c.fleets {
		f := &c.fleets[i]
		if len(f.cmds) == 0 {
			continue
		}
		fc := FleetCommands{Fleet: f.spec.Name, Commands: f.cmds, After: c.current[i]}
		for _, cmd := range f.cmds {
			fc.After[cmd.From] -= cmd.Count
			fc.After[cmd.To] += cmd.Count
		}
		c.batch = append(c.batch, fc)
	}
	if len(c.batch) == 0 {
		return nil
	}
	if err := c.recorder.Commands(now, &c.dec, c.batch); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// SetOverrides replaces the operator overrides; they apply from the next
// tick. Callers serialise it with Tick.
func (c *Controller) SetOverrides(ovs []Override) {
	c.overrides = append(c.overrides[:0], ovs...)
}

// Overrides returns the overrides still in force as of the last tick.
func (c *Controller) Overrides() []Override { return c.overrides }

// dropExpired forgets overrides that are no longer in force.
func (c *Controller) dropExpired(now time.Time) {
	kept := c.overrides[:0]
	for _, o := range c.overrides {
		if o.Active(now) {
			kept = append(kept, o)
			c.wakeAt(o.Until)
		}
	}
	c.overrides = kept
}

// readFleet reads one driver's state and derives the counts the reconciler
// works with. It touches only fleet i's fields (fleets are read in
// parallel); its wake-ups go to the fleet's own wake, merged afterwards.
func (c *Controller) readFleet(ctx context.Context, now time.Time, i int) {
	f := &c.fleets[i]
	r := &c.reports[i]
	*r = FleetReport{}
	f.cmds = f.cmds[:0]
	f.wake, f.last = time.Time{}, now
	f.steady, f.arriving, f.eligible = [switchd.NumModes]int{}, [switchd.NumModes]int{}, [switchd.NumModes]int{}
	st, err := f.driver.State(ctx)
	f.err = err
	if err != nil {
		r.Err = fmt.Errorf("fleet %q: state: %w", f.spec.Name, err)
		r.Op = "state"
		f.fail(now)
		f.wakeAt(f.retryAt)
		// Without an observation the fleet keeps its last known counts for
		// planning, and gets no commands this tick.
		return
	}
	f.state = st
	r.Failed = st.Failed
	if st.Failed > 0 {
		f.fail(now)
		f.wakeAt(f.retryAt)
	} else if !now.Before(f.retryAt) {
		f.backoff = 0
	}
	dwellCut := now.Add(-f.spec.MinDwell)
	usable := 0
	for _, co := range st.Cohorts {
		usable += co.Count
		if co.Steady() {
			f.steady[co.Mode] += co.Count
			if !co.Since.After(dwellCut) {
				f.eligible[co.Mode] += co.Count
			}
			continue
		}
		f.arriving[co.Target] += co.Count
		f.wakeAt(co.Since.Add(f.spec.Transition[co.Mode][co.Target]))
	}
	f.usable = usable
	for m := range c.current[i] {
		c.current[i][m] = f.steady[m] + f.arriving[m]
	}
}

// wakeAt lowers the fleet's next wake to t if t is set and earlier.
func (f *fleet) wakeAt(t time.Time) {
	if t.IsZero() || !t.After(f.last) {
		return
	}
	if f.wake.IsZero() || t.Before(f.wake) {
		f.wake = t
	}
}

// fail starts or doubles the fleet's retry backoff.
func (f *fleet) fail(now time.Time) {
	f.backoff = min(max(2*f.backoff, minBackoff), maxBackoff)
	f.retryAt = now.Add(f.backoff)
}

// wakeAt lowers the next wake to t if t is set and earlier.
func (c *Controller) wakeAt(t time.Time) {
	if t.IsZero() || !t.After(c.lastTick) {
		return
	}
	if c.nextWake.IsZero() || t.Before(c.nextWake) {
		c.nextWake = t
	}
}

// wakeAtStale wakes the controller when a signal with a fail-safe goes stale.
func (c *Controller) wakeAtStale(now time.Time, pol *policies.Policy) {
	for _, s := range switchd.AllSignals {
		if pol.FailSafe[s] == policies.FailSafeNone || !c.snap.Have[s] {
			continue
		}
		// Stale means strictly older than the max age.
		c.wakeAt(c.snap.At[s].Add(c.site.MaxAge[s] + time.Nanosecond))
	}
}

// powerKW returns the site's draw now (devices in transition at the larger
// of their two modes' power) and the draw once every transition has landed.
func (c *Controller) powerKW() (now, landed float64) {
	for i := range c.fleets {
		f := &c.fleets[i]
		for _, co := range f.state.Cohorts {
			n := float64(co.Count)
			now += n * f.spec.TransitionPowerKW(co.Mode, co.Target)
			landed += n * f.spec.Modes[co.Target].PowerKW
		}
		// Devices the controller cannot move draw where they were seen.
		for m, n := range f.state.Unusable.ByMode {
			now += float64(n) * f.spec.Modes[m].PowerKW
			landed += float64(n) * f.spec.Modes[m].PowerKW
		}
	}
	return now, landed
}

// rampTopUp adds the ramp budget earned since the last top-up. The budget
// holds at most one minute's worth, so a long quiet spell does not allow a
// step of many minutes' ramp at once.
func (c *Controller) rampTopUp(now time.Time, pol *policies.Policy) {
	if pol.RampUpKWPerMin <= 0 {
		c.rampBudget = math.Inf(1)
		return
	}
	if c.rampAt.IsZero() {
		c.rampBudget = pol.RampUpKWPerMin
	} else {
		c.rampBudget += pol.RampUpKWPerMin * now.Sub(c.rampAt).Minutes()
	}
	c.rampBudget = min(c.rampBudget, pol.RampUpKWPerMin)
	c.rampAt = now
}
