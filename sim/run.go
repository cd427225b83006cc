package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/controller"
	"github.com/switchd/switchd/dr"
	"github.com/switchd/switchd/drivers/simdev"
	"github.com/switchd/switchd/policies"
	"github.com/switchd/switchd/trace"
)

// VirtualClock is the simulator's clock: it tells the time it was last set
// to. It is the only clock the controller sees in a simulation.
type VirtualClock struct{ t time.Time }

// Now implements switchd.Clock.
func (c *VirtualClock) Now() time.Time { return c.t }

// Set moves the clock to t.
func (c *VirtualClock) Set(t time.Time) { c.t = t }

// RunOptions configure one replay.
type RunOptions struct {
	Site   *config.Site
	Policy *policies.Policy
	// Planner replaces the policy's planner (baselines); nil runs the policy.
	Planner controller.Planner
	Source  trace.Source
	// End is the end of the last row's interval; zero means last row plus
	// the previous step.
	End time.Time
	// TopPriceUSDPerMWh marks the "top price" intervals: those priced at or
	// above it. +Inf (or zero value with no top marking wanted) disables.
	TopPriceUSDPerMWh float64
	// OnInterval, when set, is called after each trace interval.
	OnInterval func(*IntervalRecord)
	// Gaps[s] are the spans in which the trace has no sample of s of its
	// own (trace.Series.Coverage); accounting there is imputed and
	// reported. Nil means every value the source gives was measured.
	Gaps [switchd.NumSignals][]trace.Gap
	// Forecasts, when set, issues the price forecasts the controller is
	// given as the replay reaches each issue time; nil gives none.
	Forecasts *ForecastFeed
	// Events are demand-response events, each given to the controller at
	// its notice time (events.go).
	Events []dr.Event
}

// IntervalRecord is one trace interval's outcome, for the time series.
type IntervalRecord struct {
	Start, End time.Time
	Values     switchd.Values
	// Counts[i][m]: devices of fleet i steady in m at the end of the
	// interval; Moving[i]: devices in transition then.
	Counts     [][switchd.NumModes]int
	Moving     []int
	PowerKW    float64 // average over the interval
	CostUSD    float64
	RevenueUSD float64
	ProfitUSD  float64 // cumulative since the start
	Fired      []string
}

// Result is what a replay earned and did.
type Result struct {
	Intervals int
	Hours     float64

	EnergyMWh          [switchd.NumModes]float64 // steady devices, per mode
	TransitionMWh      float64                   // devices in transition
	EnergyCostUSD      float64
	RevenueUSD         [switchd.NumModes]float64
	SwitchCostUSD      float64 // fleet switch_cost_usd × switches
	ProfitUSD          float64 // revenue − energy cost − switch cost
	Switches           int     // devices commanded to change mode
	Failures           int     // devices that did not reach a commanded mode
	CurtailedHours     float64 // hours with more devices held off than always-on would
	TopPriceEnergyMWh  float64 // energy drawn in the top-price intervals
	PriceHours         float64 // hours with a price known
	PriceTimeUSDPerMWh float64 // Σ price × hours, for the time-weighted average
	MaxPowerKW         float64 // highest draw right after a tick
	SiteCapExceeded    int     // ticks after which the draw exceeded the interconnect cap
	Ticks              int
	DriverErrors       int
	ForcedMoves        int // devices moved by a constraint (dwell does not apply)
	EarlyMoves         int // devices moved before their dwell time was up
	TopPriceIntervals  int
	TopPriceThreshold  float64 // USD/MWh

	// Inputs, as the controller saw them (see inputs.go).
	StaleHours           [switchd.NumSignals]float64 // signal stale
	FailSafeHours        [switchd.NumSignals]float64 // stale with a fail-safe declared
	FallbackHours        [switchd.NumSignals]float64 // absent, the policy's fallback used
	CurtailFailSafeHours float64                     // a fail-safe curtailed
	HoldFailSafeHours    float64                     // a fail-safe held (and none curtailed)
	// Energy drawn in a price gap, priced at the last known price (held)
	// or the policy's fallback, and its cost.
	ImputedHeldMWh, ImputedFallbackMWh, ImputedCostUSD float64
	// ImputedRevenueUSD[s] is revenue priced on s where the trace had no
	// sample of it.
	ImputedRevenueUSD [switchd.NumSignals]float64

	// AI is AI demand served and unserved (ai.go).
	AI AIResult
	// DR is the compliance record of each demand-response event delivered
	// (RunOptions.Events), as of the end of the trace.
	DR []dr.Record
}

// EnergyTotalMWh is all the energy drawn.
func (r *Result) EnergyTotalMWh() float64 {
	t := r.TransitionMWh
	for _, e := range r.EnergyMWh {
		t += e
	}
	return t
}

// RevenueTotalUSD is all the revenue earned.
func (r *Result) RevenueTotalUSD() float64 {
	t := 0.0
	for _, e := range r.RevenueUSD {
		t += e
	}
	return t
}

// Run replays the source through the real controller on a virtual clock and
// the simulated driver, and accounts energy, cost and revenue exactly
// between events. Every fleet is simulated, whatever driver the site names
// (its settings are used only when the driver is "sim").
func Run(ctx context.Context, o RunOptions) (*Result, error) {
	first, err := o.Source.Next()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("trace has no rows")
	}
	if err != nil {
		return nil, err
	}
	clock := &VirtualClock{}
	clock.Set(first.Time)

	site := o.Site
	drivers := make([]*simdev.Driver, len(site.Fleets))
	ifaces := make([]switchd.Driver, len(site.Fleets))
	for i := range site.Fleets {
		cfg, err := simConfig(site, i)
		if err != nil {
			return nil, err
		}
		drivers[i] = simdev.New(site.Fleets[i].Spec, cfg, clock)
		ifaces[i] = drivers[i]
	}
	ctl, err := controller.New(controller.Options{Site: site, Policy: o.Policy, Drivers: ifaces, Clock: clock, Planner: o.Planner, DRKeepEnded: -1})
	if err != nil {
		return nil, err
	}
	r := &runner{o: o, clock: clock, drivers: drivers, ctl: ctl, res: &Result{TopPriceThreshold: o.TopPriceUSDPerMWh}}
	r.alwaysOn = newAlwaysOn(site)
	r.initAI()
	r.events = sortedEvents(o.Events)
	if o.OnInterval != nil {
		r.rec.Counts = make([][switchd.NumModes]int, len(site.Fleets))
		r.rec.Moving = make([]int, len(site.Fleets))
	}
	return r.loop(ctx, first)
}

type runner struct {
	o       RunOptions
	clock   *VirtualClock
	drivers []*simdev.Driver
	ctl     *controller.Controller
	res     *Result

	values        switchd.Values                // accounted at (see accountValues)
	row           trace.Row                     // the current trace row
	fed           [switchd.NumSignals]time.Time // sample time of the last sample fed
	inGap         [switchd.NumSignals]bool      // the current row lies in a gap
	gapIdx        [switchd.NumSignals]int
	priceFallback bool // the current price is the policy's fallback
	alwaysOn      *alwaysOnPlanner
	aoOff         int // devices always-on keeps off in the current interval

	events []dr.Event // not yet delivered, by notice time (events.go)

	// per-interval accumulators
	ivCost, ivRev, ivKWh float64
	rec                  IntervalRecord
	ai                   aiState
}

func (r *runner) loop(ctx context.Context, cur trace.Row) (*Result, error) {
	var prevStep time.Duration
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r.feed(cur)
		next, err := r.o.Source.Next()
		var end time.Time
		switch {
		case errors.Is(err, io.EOF):
			end = r.o.End
			if end.IsZero() {
				if prevStep <= 0 {
					prevStep = 15 * time.Minute
				}
				end = cur.Time.Add(prevStep)
			}
		case err != nil:
			return nil, err
		default:
			end = next.Time
			prevStep = next.Time.Sub(cur.Time)
		}
		r.startInterval(cur)
		if err := r.tick(ctx); err != nil {
			return nil, err
		}
		for {
			w := earliest(earliest(r.ctl.NextWake(), r.nextWithdrawal()), r.nextNotice())
			if w.IsZero() || !w.Before(end) {
				break
			}
			r.advance(w)
			if err := r.tick(ctx); err != nil {
				return nil, err
			}
		}
		r.advance(end)
		r.endInterval(cur.Time, end)
		if errors.Is(err, io.EOF) {
			r.res.DR = r.ctl.DRRecords()
			return r.res, nil
		}
		cur = next
	}
}

// startInterval fixes the values in force for accounting until the next row.
func (r *runner) startInterval(cur trace.Row) {
	r.row = cur
	for _, s := range switchd.AllSignals {
		r.inGap[s] = inGap(r.o.Gaps[s], &r.gapIdx[s], cur.Time)
	}
	r.accountValues()
	r.aoOff = r.alwaysOn.offCount(&r.values)
	r.ivCost, r.ivRev, r.ivKWh = 0, 0, 0
}

func (r *runner) tick(ctx context.Context) error {
	r.withdrawStale()
	if err := r.deliverEvents(); err != nil {
		return err
	}
	if err := r.ctl.Tick(ctx); err != nil {
		return err
	}
	// A withdrawal changes the values the controller runs on.
	r.accountValues()
	r.res.Ticks++
	for _, rep := range r.ctl.Reports() {
		if rep.Err != nil {
			r.res.DriverErrors++
		}
	}
	r.res.ForcedMoves += r.ctl.ForcedMoves()
	p := 0.0
	for _, d := range r.drivers {
		p += d.PowerKW()
	}
	r.res.MaxPowerKW = max(r.res.MaxPowerKW, p)
	if p > r.o.Site.PowerCapKW*(1+1e-9) {
		r.res.SiteCapExceeded++
	}
	return nil
}

// advance settles every driver up to t and accounts the span since the
// last settle at the values in force.
func (r *runner) advance(t time.Time) {
	from := r.clock.Now()
	h := t.Sub(from).Hours()
	off := 0
	var inferenceDH, inferenceRate float64
	r.aiSpanStart()
	for _, d := range r.drivers {
		d.Settle(t)
		u := d.TakeUsage()
		r.aiUsage(d, &u)
		spec := d.Spec()
		r.res.Switches += u.Switches
		r.res.Failures += u.Failures
		r.res.EarlyMoves += u.EarlyMoves
		r.res.SwitchCostUSD += float64(u.Switches) * spec.SwitchCostUSD
		r.res.TransitionMWh += u.TransitionKWh / 1000
		kwh := u.TransitionKWh
		for m := range switchd.NumModes {
			r.res.EnergyMWh[m] += u.EnergyKWh[m] / 1000
			kwh += u.EnergyKWh[m]
			if spec.Modes[m].Revenue == switchd.RevenueInference {
				// Inference earns only up to AI demand, site-wide: cap below.
				inferenceDH += u.DeviceHours[m]
				inferenceRate = r.values.V[switchd.SignalInferencePrice]
				continue
			}
			rev := spec.RevenuePerHour(switchd.Mode(m), &r.values) * u.DeviceHours[m]
			r.res.RevenueUSD[m] += rev
			r.ivRev += rev
			if spec.Modes[m].Revenue == switchd.RevenueHashprice && r.inGap[switchd.SignalHashprice] {
				r.res.ImputedRevenueUSD[switchd.SignalHashprice] += rev
			}
		}
		cost := kwh / 1000 * r.values.V[switchd.SignalPrice]
		r.res.EnergyCostUSD += cost
		if r.inGap[switchd.SignalPrice] || r.priceFallback {
			if r.priceFallback {
				r.res.ImputedFallbackMWh += kwh / 1000
			} else {
				r.res.ImputedHeldMWh += kwh / 1000
			}
			r.res.ImputedCostUSD += cost
		}
		r.ivCost += cost + float64(u.Switches)*spec.SwitchCostUSD
		r.ivKWh += kwh
		steady, arriving := d.Counts()
		off += steady[switchd.ModeOff] + arriving[switchd.ModeOff]
	}
	r.accountAI(h, inferenceDH)
	if inferenceDH > 0 {
		if d, ok := r.values.Get(switchd.SignalAIDemand); ok {
			inferenceDH = min(inferenceDH, max(d, 0)*h)
		}
		rev := inferenceDH * inferenceRate
		r.res.RevenueUSD[switchd.ModeInference] += rev
		r.ivRev += rev
		switch {
		case r.inGap[switchd.SignalInferencePrice]:
			r.res.ImputedRevenueUSD[switchd.SignalInferencePrice] += rev
		case r.inGap[switchd.SignalAIDemand]:
			r.res.ImputedRevenueUSD[switchd.SignalAIDemand] += rev
		}
	}
	if off > r.aoOff && h > 0 {
		r.res.CurtailedHours += h
	}
	r.accountInputs(h)
	r.clock.Set(t)
}

func (r *runner) endInterval(start, end time.Time) {
	h := end.Sub(start).Hours()
	res := r.res
	res.Intervals++
	res.Hours += h
	if p, ok := r.values.Get(switchd.SignalPrice); ok {
		res.PriceHours += h
		res.PriceTimeUSDPerMWh += p * h
		if p >= r.o.TopPriceUSDPerMWh {
			res.TopPriceIntervals++
			res.TopPriceEnergyMWh += r.ivKWh / 1000
		}
	}
	res.ProfitUSD = res.RevenueTotalUSD() - res.EnergyCostUSD - res.SwitchCostUSD
	if r.o.OnInterval == nil {
		return
	}
	rec := &r.rec
	rec.Start, rec.End, rec.Values = start, end, r.values
	for i, d := range r.drivers {
		steady, arriving := d.Counts()
		rec.Counts[i] = steady
		rec.Moving[i] = 0
		for _, n := range arriving {
			rec.Moving[i] += n
		}
	}
	rec.PowerKW = 0
	if h > 0 {
		rec.PowerKW = r.ivKWh / h
	}
	rec.CostUSD, rec.RevenueUSD, rec.ProfitUSD = r.ivCost, r.ivRev, res.ProfitUSD
	rec.Fired = r.ctl.Decision().Eval.Fired
	r.o.OnInterval(rec)
}

// simConfig is the simulated driver's settings for a fleet: its own when
// its driver is "sim", else the defaults (every fleet is simulated here).
func simConfig(site *config.Site, i int) (simdev.Config, error) {
	f := &site.Fleets[i]
	if f.Driver != "sim" {
		return simdev.Config{}, nil
	}
	cfg, err := simdev.ParseConfig(site.DriverSettings(i))
	if err != nil {
		return cfg, fmt.Errorf("fleet %q: %w", f.Spec.Name, err)
	}
	return cfg, nil
}

// TopPriceThreshold returns the price at or above which an interval is in
// the top fraction q of the series' priced intervals (by count), or +Inf if
// the series has no price.
func TopPriceThreshold(s *trace.Series, q float64) float64 {
	prices := make([]float64, 0, s.Len())
	for i := range s.Len() {
		if p, ok := s.Value(i, switchd.SignalPrice); ok {
			prices = append(prices, p)
		}
	}
	if len(prices) == 0 {
		return math.Inf(1)
	}
	k := max(int(math.Ceil(q*float64(len(prices)))), 1)
	// The k-th largest price.
	sortFloatsDesc(prices)
	return prices[k-1]
}

// feed observes the row's samples that are new: each sample once, at the
// time it was taken, as the replay publishes them live. A value the trace
// only carries forward (past its series' end, through a gap) is not fed
// again, so a withdrawn signal stays absent until its next sample.
func (r *runner) feed(cur trace.Row) {
	for _, s := range switchd.AllSignals {
		if !cur.Has[s] {
			continue
		}
		at := cur.At[s]
		if at.IsZero() {
			at = cur.Time
		}
		if !r.fed[s].IsZero() && !at.After(r.fed[s]) {
			continue
		}
		r.fed[s] = at
		r.ctl.Observe(switchd.Sample{Time: at, Signal: s, Value: cur.Values[s]})
	}
	if r.o.Forecasts != nil {
		if f := r.o.Forecasts.Due(cur.Time); f != nil {
			r.ctl.ObserveForecast(f)
		}
	}
}

// withdrawStale makes absent every signal without a fail-safe whose last
// sample is older than its max_age (see inputs.go): the policy's fallback
// then applies, as before the signal's first sample. Signals with a
// fail-safe keep their stale value, so the fail-safe applies as live.
func (r *runner) withdrawStale() {
	now := r.clock.Now()
	snap := r.ctl.Snapshot()
	for _, s := range switchd.AllSignals {
		if r.o.Policy.FailSafe[s] != policies.FailSafeNone || !snap.Have[s] {
			continue
		}
		if a := r.o.Site.MaxAge[s]; a > 0 && now.Sub(snap.At[s]) > a {
			r.ctl.Forget(s) // until the next fresh sample
		}
	}
}

// nextWithdrawal is when withdrawStale next has something to do, or zero.
func (r *runner) nextWithdrawal() time.Time {
	snap := r.ctl.Snapshot()
	var w time.Time
	for _, s := range switchd.AllSignals {
		a := r.o.Site.MaxAge[s]
		if r.o.Policy.FailSafe[s] != policies.FailSafeNone || !snap.Have[s] || a <= 0 {
			continue
		}
		// Stale means strictly older than the max age.
		w = earliest(w, snap.At[s].Add(a+time.Nanosecond))
	}
	return w
}

// accountValues sets the values energy and revenue are accounted at: the
// trace's measured value where the current row has one outside a gap; in a
// price gap the last known price (the row carries it); elsewhere what the
// controller runs on (a held sample, or the policy's fallback).
func (r *runner) accountValues() {
	v := r.o.Policy.Values(r.ctl.Snapshot())
	r.priceFallback = false
	for _, s := range switchd.AllSignals {
		switch {
		case r.row.Has[s] && (!r.inGap[s] || s == switchd.SignalPrice):
			v.V[s], v.Present[s] = r.row.Values[s], true
		case s == switchd.SignalPrice && v.Present[s]:
			r.priceFallback = true
		}
	}
	r.values = v
}

// accountInputs adds h hours of the last tick's view of the inputs: which
// signals were stale, which fail-safe was in force, which fallbacks used.
func (r *runner) accountInputs(h float64) {
	if h <= 0 {
		return
	}
	ev := &r.ctl.Decision().Eval
	pol := r.o.Policy
	for _, s := range ev.Stale {
		r.res.StaleHours[s] += h
		if pol.FailSafe[s] != policies.FailSafeNone {
			r.res.FailSafeHours[s] += h
		}
	}
	switch {
	case ev.Curtail:
		r.res.CurtailFailSafeHours += h
	case ev.Constraints.Hold:
		r.res.HoldFailSafeHours += h
	}
	snap := r.ctl.Snapshot()
	for _, s := range switchd.AllSignals {
		if !snap.Have[s] && pol.HasFallback[s] {
			r.res.FallbackHours[s] += h
		}
	}
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
