package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/controller"
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
	Site   *policies.Site
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
	ctl, err := controller.New(controller.Options{Site: site, Policy: o.Policy, Drivers: ifaces, Clock: clock, Planner: o.Planner})
	if err != nil {
		return nil, err
	}
	r := &runner{o: o, clock: clock, drivers: drivers, ctl: ctl, res: &Result{TopPriceThreshold: o.TopPriceUSDPerMWh}}
	r.alwaysOn = newAlwaysOn(site)
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

	values   switchd.Values // in force for the current interval
	alwaysOn *alwaysOnPlanner
	aoOff    int // devices always-on keeps off in the current interval

	// per-interval accumulators
	ivCost, ivRev, ivKWh float64
	rec                  IntervalRecord
}

func (r *runner) loop(ctx context.Context, cur trace.Row) (*Result, error) {
	var prevStep time.Duration
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for _, s := range switchd.AllSignals {
			if cur.Has[s] {
				r.ctl.Observe(switchd.Sample{Time: cur.At[s], Signal: s, Value: cur.Values[s]})
			}
		}
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
			w := r.ctl.NextWake()
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
			return r.res, nil
		}
		cur = next
	}
}

// startInterval fixes the values in force for accounting until the next row.
func (r *runner) startInterval(cur trace.Row) {
	r.values = r.o.Policy.Values(r.ctl.Snapshot())
	r.aoOff = r.alwaysOn.offCount(&r.values)
	r.ivCost, r.ivRev, r.ivKWh = 0, 0, 0
}

func (r *runner) tick(ctx context.Context) error {
	if err := r.ctl.Tick(ctx); err != nil {
		return err
	}
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
	for _, d := range r.drivers {
		d.Settle(t)
		u := d.TakeUsage()
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
		}
		cost := kwh / 1000 * r.values.V[switchd.SignalPrice]
		r.res.EnergyCostUSD += cost
		r.ivCost += cost + float64(u.Switches)*spec.SwitchCostUSD
		r.ivKWh += kwh
		steady, arriving := d.Counts()
		off += steady[switchd.ModeOff] + arriving[switchd.ModeOff]
	}
	if inferenceDH > 0 {
		if d, ok := r.values.Get(switchd.SignalAIDemand); ok {
			inferenceDH = min(inferenceDH, max(d, 0)*h)
		}
		rev := inferenceDH * inferenceRate
		r.res.RevenueUSD[switchd.ModeInference] += rev
		r.ivRev += rev
	}
	if off > r.aoOff && h > 0 {
		r.res.CurtailedHours += h
	}
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
func simConfig(site *policies.Site, i int) (simdev.Config, error) {
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
