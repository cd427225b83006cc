package dr

import (
	"math"
	"time"
)

// MeterHorizon is how much load history a Meter keeps: enough for a
// baseline of BaselineIntervals of the longest interval, and one more
// interval still being measured.
const MeterHorizon = (BaselineIntervals + 1) * MaxInterval

// step is the site load from At until the next step.
type step struct {
	At time.Time
	KW float64
}

// Meter holds the site load over time as a step function: each Set says the
// load is kW from t on. The load is known from the first Set up to the
// latest one; the last level is not assumed to last beyond it.
type Meter struct {
	steps []step
	last  time.Time // latest Set
}

// Set records that the load is kW from t on. A t before the latest Set is
// ignored (time does not move backwards); a t equal to it replaces that
// level. Steps older than MeterHorizon before t are dropped.
func (m *Meter) Set(t time.Time, kW float64) {
	if math.IsNaN(kW) {
		return
	}
	if n := len(m.steps); n > 0 {
		switch {
		case t.Before(m.last):
			return
		case t.Equal(m.steps[n-1].At):
			m.steps[n-1].KW = kW
			m.last = t
			m.merge()
			return
		case m.steps[n-1].KW == kW:
			m.last = t
			return
		}
	}
	m.steps = append(m.steps, step{At: t, KW: kW})
	m.last = t
	m.prune(t.Add(-MeterHorizon))
}

// merge folds the last step into the one before when they hold one level.
func (m *Meter) merge() {
	if n := len(m.steps); n > 1 && m.steps[n-2].KW == m.steps[n-1].KW {
		m.steps = m.steps[:n-1]
	}
}

// prune drops steps that end before cut, keeping the one in force at cut.
// It runs on every Set (every controller tick): it looks at the oldest
// steps only and reslices, so the dead head is freed when append next
// grows the array (amortised O(1), at most twice the live steps held).
func (m *Meter) prune(cut time.Time) {
	i := 0
	for i+1 < len(m.steps) && !m.steps[i+1].At.After(cut) {
		i++
	}
	m.steps = m.steps[i:]
}

// Known is the span over which the load is known: [first Set, latest Set].
func (m *Meter) Known() (from, to time.Time) {
	if len(m.steps) == 0 {
		return time.Time{}, time.Time{}
	}
	return m.steps[0].At, m.last
}

// At returns the load at t and whether it is known there.
func (m *Meter) At(t time.Time) (float64, bool) {
	if len(m.steps) == 0 || t.Before(m.steps[0].At) || t.After(m.last) {
		return 0, false
	}
	if n := len(m.steps); !t.Before(m.steps[n-1].At) {
		return m.steps[n-1].KW, true // the common case: now
	}
	kw := m.steps[0].KW
	for _, s := range m.steps[1:] {
		if s.At.After(t) {
			break
		}
		kw = s.KW
	}
	return kw, true
}

// Integrate returns, over the known part of [from, to): the energy drawn
// (kWh), the energy drawn above capKW (kWh) and how long the load was known.
func (m *Meter) Integrate(from, to time.Time, capKW float64) (kWh, overKWh float64, known time.Duration) {
	for i, s := range m.steps {
		end := m.last
		if i+1 < len(m.steps) {
			end = m.steps[i+1].At
		}
		a, b := later(s.At, from), earlier(end, to)
		if !a.Before(b) {
			continue
		}
		d := b.Sub(a)
		h := d.Hours()
		known += d
		kWh += s.KW * h
		overKWh += max(s.KW-capKW, 0) * h
	}
	return kWh, overKWh, known
}

// FirstAtOrBelow is the first instant in [from, to) at which the load is
// known and at most capKW (within a relative 1e-9), or zero.
func (m *Meter) FirstAtOrBelow(from, to time.Time, capKW float64) time.Time {
	tol := 1e-9 * max(math.Abs(capKW), 1)
	for i, s := range m.steps {
		end := m.last
		if i+1 < len(m.steps) {
			end = m.steps[i+1].At
		}
		a := later(s.At, from)
		if s.KW > capKW+tol || a.After(earlier(end, to)) || !a.Before(to) {
			continue
		}
		// The last step holds at its own instant even when nothing later
		// is known yet.
		if a.Before(end) || a.Equal(m.last) {
			return a
		}
	}
	return time.Time{}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
