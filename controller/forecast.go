package controller

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/policies"
)

// MaxForecastIntervals bounds a price forecast's length: a week of
// 5-minute prices. A longer one is a unit mistake or an attack, not a
// market product.
const MaxForecastIntervals = 7 * 24 * 12

// MinForecastInterval and MaxForecastInterval bound a forecast's interval
// length: no market settles faster than a minute, and a day-ahead market
// quotes hours.
const (
	MinForecastInterval = time.Minute
	MaxForecastInterval = 24 * time.Hour
)

// DefaultForecastMaxAge is how old a price forecast may get before it is
// stale when the site file does not say: a day-ahead result is published
// once a day and covers the next day, so it is current for up to two.
const DefaultForecastMaxAge = 48 * time.Hour

// Forecast is a price forecast: the expected price of consecutive intervals
// of equal length from Start, as published at Issued (a day-ahead market
// result, a forecaster's curve). It is an input of its own beside the
// scalar signals: the controller keeps the latest and the planner reads it
// while it is fresh.
type Forecast struct {
	Issued          time.Time     // when it was published; its age runs from here
	Start           time.Time     // start of the first interval
	Interval        time.Duration // length of every interval
	PricesUSDPerMWh []float64     // one per interval, from Start
	// Source says where it came from, for reports and logs (an MQTT topic,
	// "synthetic noisy:0.1", a trace column).
	Source string
}

// End is the end of the forecast's last interval.
func (f *Forecast) End() time.Time {
	return f.Start.Add(time.Duration(len(f.PricesUSDPerMWh)) * f.Interval)
}

// index returns the interval holding t, or -1 outside the forecast.
func (f *Forecast) index(t time.Time) int {
	if t.Before(f.Start) || f.Interval <= 0 {
		return -1
	}
	k := int(t.Sub(f.Start) / f.Interval)
	if k >= len(f.PricesUSDPerMWh) {
		return -1
	}
	return k
}

// PriceAt returns the forecast price of the interval holding t.
func (f *Forecast) PriceAt(t time.Time) (float64, bool) {
	k := f.index(t)
	if k < 0 {
		return 0, false
	}
	return f.PricesUSDPerMWh[k], true
}

// Validate checks the forecast's shape and that every price is finite and
// within [lo, hi] (the price signal's plausible range). It names the first
// bad price by its index.
func (f *Forecast) Validate(lo, hi float64) error {
	var errs []error
	if f.Start.IsZero() {
		errs = append(errs, errors.New("no start"))
	}
	if f.Interval < MinForecastInterval || f.Interval > MaxForecastInterval {
		errs = append(errs, fmt.Errorf("interval %s is outside %s to %s", f.Interval, MinForecastInterval, MaxForecastInterval))
	}
	switch n := len(f.PricesUSDPerMWh); {
	case n == 0:
		errs = append(errs, errors.New("no prices"))
	case n > MaxForecastIntervals:
		errs = append(errs, fmt.Errorf("%d prices, more than the %d allowed", n, MaxForecastIntervals))
	}
	for k, p := range f.PricesUSDPerMWh {
		if math.IsNaN(p) || math.IsInf(p, 0) || p < lo || p > hi {
			errs = append(errs, fmt.Errorf("prices[%d] = %v is outside the price range %v to %v", k, p, lo, hi))
			break
		}
	}
	return errors.Join(errs...)
}

// Fresh reports whether the forecast may be used at now: published no more
// than maxAge ago (and not in the future), and still covering some of what
// is ahead.
func (f *Forecast) Fresh(now time.Time, maxAge time.Duration) bool {
	age := now.Sub(f.Issued)
	return age >= 0 && age <= maxAge && now.Before(f.End())
}

// ObserveForecast stores f as the latest price forecast, unless the one held
// was issued later (an older forecast never replaces a newer one). The
// controller keeps f; the caller must not change it afterwards. Staleness
// is judged at each tick against the site's forecast max age.
func (c *Controller) ObserveForecast(f *Forecast) {
	if f == nil || (c.forecast != nil && f.Issued.Before(c.forecast.Issued)) {
		return
	}
	c.forecast = f
}

// Forecast returns the latest price forecast observed, or nil.
func (c *Controller) Forecast() *Forecast { return c.forecast }

// freshForecast returns the forecast the planner may use at now, or nil.
func (c *Controller) freshForecast(now time.Time) *Forecast {
	f := c.forecast
	if f == nil {
		return nil
	}
	maxAge := c.site.ForecastMaxAge
	if maxAge <= 0 {
		maxAge = DefaultForecastMaxAge
	}
	if !f.Fresh(now, maxAge) {
		return nil
	}
	// The plan may change when the forecast goes stale or runs out.
	c.wakeAt(f.Issued.Add(maxAge + time.Nanosecond))
	c.wakeAt(f.End())
	return f
}

// forecastAhead is the planner's use of a fresh forecast. The live price
// rules the interval holding now; the forecast rules the intervals that
// start after now.
//
// Hold: for every fleet and mode whose switch has a cost, how long the price
// stays on its present side of the mode's breakeven is read off the
// forecast (the next interval on the other side) instead of guessed from
// history, and the share of a switch back from the area of that other-side
// spell. So a switch that will not pay back before the forecast turn is
// skipped, and one that will is made even where history says spells are
// short. With no turn within the forecast, the hold is at least what the
// forecast covers.
//
// Lead: a device leaving a mode that draws more than off keeps drawing that
// mode's power, earning nothing, until its transition to off lands. So
// incumbents of such a mode are valued at the forecast price of the
// interval where a shed decided now would land: a slow fleet sheds early
// enough to be off when a forecast spike starts, and does not shed into
// the last minutes of a spike that ends before its shed would land.
// Newcomers keep the live price: a start draws its new mode's power from
// the moment it is commanded, so starting before a price drop only moves
// the warm-up's energy onto the higher price.
//
// A forecast says nothing of rules: a mode a rule will force out of reach
// (a schedule window, a cap) is not foreseen, unlike in the history-based
// estimate, which counts forced spells.
func (p *PolicyPlanner) forecastAhead(now time.Time, f *Forecast) {
	n := len(p.din.Fleets)
	if cap(p.din.IncumbentPrice) < n {
		p.din.IncumbentPrice = make([][switchd.NumModes]policies.LeadPrice, n)
	}
	p.din.IncumbentPrice = p.din.IncumbentPrice[:n]
	clear(p.din.IncumbentPrice)
	live, ok := p.din.Values.Get(switchd.SignalPrice)
	if !ok || math.IsNaN(live) {
		return
	}
	for i := range p.din.Fleets {
		spec := &p.din.Fleets[i]
		for m := switchd.ModeOff + 1; m < switchd.NumModes; m++ {
			if !spec.Supports[m] {
				continue
			}
			dKW := spec.Modes[m].PowerKW - spec.Modes[switchd.ModeOff].PowerKW
			if dKW == 0 {
				continue // no price exposure
			}
			dRev := spec.RevenuePerHour(m, &p.din.Values) - spec.RevenuePerHour(switchd.ModeOff, &p.din.Values)
			threshold := dRev / (dKW / 1000)
			if math.IsNaN(threshold) || math.IsInf(threshold, 0) {
				continue
			}
			if dKW > 0 {
				p.leadPrice(now, f, i, m, dKW, threshold)
			}
			h := p.din.HoldHours[i][m]
			if math.IsInf(h, 1) {
				continue // no switching cost to spread
			}
			switchArea := spec.SwitchCostUSD / (math.Abs(dKW) / 1000)
			hold, back, turned := forecastHold(f, now, live, threshold, dKW < 0, switchArea)
			if !turned {
				// No turn ahead within the forecast: at least that long.
				p.din.HoldHours[i][m] = max(h, hold.Hours())
				continue
			}
			p.din.HoldHours[i][m] = hold.Hours()
			p.din.BackShare[i][m] = back
		}
	}
}

// leadPrice sets IncumbentPrice for fleet i's mode m (drawing dKW more
// than off, worth it below threshold USD/MWh) when a shed decided now lands
// in a forecast interval after the one holding now: the forecast price
// there, and the hold of the forecast spell it starts.
//
// A shed brought forward by the lead L saves, per device, what the mode
// would cost over L at the forecast price beyond what it earns: L × dKW ×
// (q − threshold). When the forecast is wrong the early shed is a wasted
// switch, so the forecast price is used for a shed only when that saving
// pays a switch: noise around breakeven must not make a fast-shedding
// fleet flap at every interval boundary. A forecast price below threshold
// (the dear spell ends before a shed would land) is always used: it only
// holds back a shed that would earn nothing.
func (p *PolicyPlanner) leadPrice(now time.Time, f *Forecast, i int, m switchd.Mode, dKW, threshold float64) {
	spec := &p.din.Fleets[i]
	lead := spec.Transition[m][switchd.ModeOff]
	if lead <= 0 {
		return
	}
	q, ok := forecastAfter(f, now, now.Add(lead))
	if !ok {
		return
	}
	if q > threshold && lead.Hours()*dKW/1000*(q-threshold) < max(spec.SwitchCostUSD, 0) {
		return
	}
	// The hold that counts is that of the spell the shed would land in.
	t := now.Add(lead)
	hold, back, _ := forecastHold(f, t, q, threshold, false, spec.SwitchCostUSD/(dKW/1000))
	p.din.IncumbentPrice[i][m] = policies.LeadPrice{USDPerMWh: q, HoldHours: hold.Hours(), BackShare: back, OK: true}
}

// forecastAfter returns the forecast price at t when t lies in an interval
// of f that starts after now (the live price rules the interval holding
// now).
func forecastAfter(f *Forecast, now, t time.Time) (float64, bool) {
	k := f.index(t)
	if k < 0 || !f.Start.Add(time.Duration(k)*f.Interval).After(now) {
		return 0, false
	}
	return f.PricesUSDPerMWh[k], true
}

// forecastHold reads the forecast for the present spell of the price on one
// side of threshold (gaining below it, or above when gainsAbove), starting
// from the live price at now: hold is the time to the start of the first
// forecast interval after now on the other side, and turned says there is
// one. back is the share of a switch the following other-side spell costs
// (its area between price and threshold over switchArea, at most one; one
// when it runs past the forecast's end). Without a turn, hold is the time
// to the forecast's end.
func forecastHold(f *Forecast, now time.Time, live, threshold float64, gainsAbove bool, switchArea float64) (hold time.Duration, back float64, turned bool) {
	side := func(price float64) bool { return (price <= threshold) != gainsAbove }
	s0 := side(live)
	k := 0
	if j := f.index(now); j >= 0 {
		k = j + 1
	} else if !now.Before(f.Start) {
		return 0, 0, false // past the end
	}
	n := len(f.PricesUSDPerMWh)
	for ; k < n && side(f.PricesUSDPerMWh[k]) == s0; k++ {
	}
	if k == n {
		return f.End().Sub(now), 0, false
	}
	hold = f.Start.Add(time.Duration(k) * f.Interval).Sub(now)
	area := 0.0
	for ; k < n && side(f.PricesUSDPerMWh[k]) != s0; k++ {
		area += math.Abs(f.PricesUSDPerMWh[k]-threshold) * f.Interval.Hours()
	}
	back = 1
	if k < n && area < switchArea {
		back = area / switchArea
	}
	return hold, back, true
}

// forecastWake is the next instant after now at which a lead price may
// change: when a slow shed decided then would land at the start of a
// forecast interval. Zero when there is none within the forecast.
func (p *PolicyPlanner) forecastWake(now time.Time, f *Forecast) time.Time {
	var w time.Time
	for i := range p.din.Fleets {
		spec := &p.din.Fleets[i]
		for m := switchd.ModeOff + 1; m < switchd.NumModes; m++ {
			lead := spec.Transition[m][switchd.ModeOff]
			if !spec.Supports[m] || lead <= 0 || spec.Modes[m].PowerKW <= spec.Modes[switchd.ModeOff].PowerKW {
				continue
			}
			// The first interval start b with b - lead after now.
			t := now.Add(lead)
			var b time.Time
			if k := f.index(t); k >= 0 {
				b = f.Start.Add(time.Duration(k+1) * f.Interval)
			} else if t.Before(f.Start) {
				b = f.Start
			}
			if b.IsZero() || !b.Before(f.End()) {
				continue
			}
			if c := b.Add(-lead); c.After(now) && (w.IsZero() || c.Before(w)) {
				w = c
			}
		}
	}
	return w
}
