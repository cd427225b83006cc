package dr

import (
	"math"
	"time"
)

// Phase is where an event stands.
type Phase string

// The phases of an event, in order.
const (
	PhaseScheduled Phase = "scheduled" // received, before its start
	PhaseActive    Phase = "active"    // between start and end
	PhaseEnded     Phase = "ended"     // past its end: the record is final
)

// Alarm kinds.
const (
	AlarmNotMet = "not_met_by_deadline" // the site was above its target at the deadline
	AlarmLost   = "target_lost"         // met, then above the target again before the end
	// AlarmCannotMeet is raised by the controller when the cap takes force
	// and even its plan for the cap draws more (load that must stay on,
	// devices it cannot command): known before the deadline.
	AlarmCannotMeet = "cannot_meet"
)

// Interval is one settlement interval of an event: the site's mean load in
// it and the energy above the target (counted from the deadline on).
type Interval struct {
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	MeanKW  float64   `json:"mean_kw"`
	OverKWh float64   `json:"over_kwh"`
	// Known is the share of the interval over which the load was measured
	// (1 normally; less if the daemon was down part of it).
	Known float64 `json:"known"`
}

// Record is the compliance record of one event, kept up to date by Update.
// Load is the site draw as the controller measures it.
type Record struct {
	Event      Event     `json:"event"`
	ReceivedAt time.Time `json:"received_at"`
	Phase      Phase     `json:"phase"`
	// BaselineKW is the mean load of the BaselineIntervals intervals before
	// notice; BaselineKnown is the share of that window with measured load
	// (0: none, the load at receipt was used instead).
	BaselineKW    float64 `json:"baseline_kw"`
	BaselineKnown float64 `json:"baseline_known"`
	// CapKW is the draw the event allows (target, or baseline − shed).
	CapKW float64 `json:"cap_kw"`
	// EffectiveFrom is when the cap takes force: early enough before the
	// deadline for the slowest shed to land, never before notice nor
	// after start.
	EffectiveFrom time.Time `json:"effective_from"`
	// MetAt is the first instant from EffectiveFrom on at which the load
	// was at or under the cap (zero: not yet; it may be before the start);
	// Met says it was by the deadline.
	MetAt time.Time `json:"met_at,omitzero"`
	Met   bool      `json:"met"`
	// Alarm is set (an Alarm constant) when the site failed its target;
	// AlarmAt is when that was found.
	Alarm   string    `json:"alarm,omitempty"`
	AlarmAt time.Time `json:"alarm_at,omitzero"`
	// Intervals are the closed settlement intervals from start.
	Intervals []Interval `json:"intervals"`
	// ShortfallKWh is the energy above the cap from the deadline to the
	// end (or to now while active); MaxOverKW the largest excess seen then.
	ShortfallKWh float64 `json:"shortfall_kwh"`
	MaxOverKW    float64 `json:"max_over_kw"`

	// Baselined says the baseline and cap are fixed (at the first update
	// from notice on).
	Baselined bool `json:"baselined"`

	closed  time.Time // end of the last closed interval
	checked time.Time // MaxOverKW covers up to here
}

// NewRecord starts the record of ev received at now. lead is how long the
// site's slowest shed takes to land: the cap takes force that long before
// the deadline (within [notice, start]).
func NewRecord(ev Event, now time.Time, lead time.Duration) *Record {
	from := ev.DeadlineOrStart().Add(-lead)
	from = later(ev.Notice, earlier(from, ev.Start))
	return &Record{Event: ev, ReceivedAt: now, Phase: PhaseScheduled, EffectiveFrom: from, closed: ev.Start, Intervals: []Interval{}}
}

// Resume rebuilds a record from its JSON form (as journalled), so that a
// restarted daemon carries on with the baseline, cap and intervals it had.
// The load while it was down is unknown: intervals then show less than
// full Known, and met and shortfall are judged on what was measured.
func Resume(r Record) *Record {
	r.closed = r.Event.Start
	if n := len(r.Intervals); n > 0 {
		r.closed = r.Intervals[n-1].End
	}
	r.checked = r.closed
	if r.Intervals == nil {
		r.Intervals = []Interval{}
	}
	return &r
}

// Raise records an alarm found outside Update (AlarmCannotMeet) and
// reports whether it is the event's first: an event carries one alarm.
func (r *Record) Raise(alarm string, now time.Time) bool {
	if r.Alarm != "" || r.Phase == PhaseEnded {
		return false
	}
	r.Alarm, r.AlarmAt = alarm, now
	return true
}

// CapActive reports whether the event's cap is in force at now.
func (r *Record) CapActive(now time.Time) bool {
	return r.Baselined && !now.Before(r.EffectiveFrom) && now.Before(r.Event.End)
}

// NextEdge is the first instant after now at which Update has something
// to do (notice, cap in force, start, deadline, an interval's end, end), or
// zero once the event has ended: a controller wakes then.
func (r *Record) NextEdge(now time.Time) time.Time {
	if r.Phase == PhaseEnded {
		return time.Time{}
	}
	ev := &r.Event
	for _, t := range []time.Time{ev.Notice, r.EffectiveFrom, ev.Start, ev.DeadlineOrStart()} {
		if t.After(now) {
			return t
		}
	}
	if next := r.closed.Add(ev.IntervalOrDefault()); next.After(now) && next.Before(ev.End) {
		return next
	}
	if ev.End.After(now) {
		return ev.End
	}
	return time.Time{}
}

// TimeToTarget is how long the site took from the cap taking force to
// being under it; ok is false while it has not been.
func (r *Record) TimeToTarget() (d time.Duration, ok bool) {
	if r.MetAt.IsZero() {
		return 0, false
	}
	return r.MetAt.Sub(r.EffectiveFrom), true
}

// Update brings the record to now from the meter (which must hold the load
// up to now). loadKW is the load at now, used for a baseline when the meter
// holds none. It returns the alarm raised by this update, if any.
func (r *Record) Update(now time.Time, m *Meter, loadKW float64) (alarm string) {
	if r.Phase == PhaseEnded {
		return ""
	}
	ev := &r.Event
	if !r.Baselined && !now.Before(ev.Notice) {
		r.baseline(m, loadKW)
	}
	if !r.Baselined {
		return ""
	}
	until := earlier(now, ev.End)
	deadline := ev.DeadlineOrStart()
	if r.MetAt.IsZero() && !now.Before(r.EffectiveFrom) {
		if t := m.FirstAtOrBelow(r.EffectiveFrom, until.Add(time.Nanosecond), r.CapKW); !t.IsZero() {
			r.MetAt = t
			r.Met = !t.After(deadline)
		}
	}
	if !now.Before(ev.Start) && r.Phase == PhaseScheduled {
		r.Phase = PhaseActive
	}
	if r.Phase != PhaseActive {
		return ""
	}
	r.closeIntervals(until, m)
	if !until.Before(deadline) && r.Alarm == "" {
		switch {
		case r.MetAt.IsZero() || r.MetAt.After(deadline):
			alarm = AlarmNotMet
		case r.over(m, deadline, until):
			alarm = AlarmLost
		}
		if alarm != "" {
			r.Alarm, r.AlarmAt = alarm, now
		}
	}
	if !now.Before(ev.End) {
		r.Phase = PhaseEnded
	}
	return alarm
}

// over reports whether the load went above the cap anywhere in [from, to].
func (r *Record) over(m *Meter, from, to time.Time) bool {
	_, over, _ := m.Integrate(from, to, r.CapKW)
	if over > 0 {
		return true
	}
	kw, ok := m.At(to)
	return ok && kw > r.CapKW+1e-9*max(math.Abs(r.CapKW), 1)
}

// baseline fixes the baseline and the cap from the meter.
func (r *Record) baseline(m *Meter, loadKW float64) {
	ev := &r.Event
	iv := ev.IntervalOrDefault()
	to := ev.Notice.Truncate(iv)
	from := to.Add(-BaselineIntervals * iv)
	kWh, _, known := m.Integrate(from, to, math.Inf(1))
	if known > 0 {
		r.BaselineKW = kWh / known.Hours()
		r.BaselineKnown = known.Seconds() / to.Sub(from).Seconds()
	} else {
		r.BaselineKW, r.BaselineKnown = loadKW, 0
	}
	r.CapKW = ev.CapKW(r.BaselineKW)
	r.Baselined = true
}

// closeIntervals closes the settlement intervals that ended by until (the
// last one at the event's end) and adds their shortfall. The interval in
// progress also counts towards ShortfallKWh, recomputed each time.
func (r *Record) closeIntervals(until time.Time, m *Meter) {
	ev := &r.Event
	iv := ev.IntervalOrDefault()
	deadline := ev.DeadlineOrStart()
	for {
		end := earlier(r.closed.Add(iv), ev.End)
		if end.After(until) || !r.closed.Before(end) {
			break
		}
		r.Intervals = append(r.Intervals, r.measure(m, r.closed, end, deadline))
		r.closed = end
	}
	r.ShortfallKWh = 0
	for _, in := range r.Intervals {
		r.ShortfallKWh += in.OverKWh
	}
	if r.closed.Before(until) {
		r.ShortfallKWh += r.measure(m, r.closed, until, deadline).OverKWh
	}
	// The meter keeps hours, an event may last days: fold the excess in
	// as it is measured.
	from := later(r.checked, later(deadline, ev.Start))
	r.MaxOverKW = max(r.MaxOverKW, r.maxOver(m, from, until))
	r.checked = later(r.checked, until)
}

// measure is one interval's mean load and its energy above the cap after
// the deadline.
func (r *Record) measure(m *Meter, from, to, deadline time.Time) Interval {
	kWh, _, known := m.Integrate(from, to, math.Inf(1))
	in := Interval{Start: from, End: to}
	if known > 0 {
		in.MeanKW = kWh / known.Hours()
		in.Known = known.Seconds() / to.Sub(from).Seconds()
	}
	if a := later(from, deadline); a.Before(to) {
		_, in.OverKWh, _ = m.Integrate(a, to, r.CapKW)
	}
	return in
}

// maxOver is the largest excess over the cap at any step in [from, to).
func (r *Record) maxOver(m *Meter, from, to time.Time) float64 {
	worst := 0.0
	for i, s := range m.steps {
		end := m.last
		if i+1 < len(m.steps) {
			end = m.steps[i+1].At
		}
		if later(s.At, from).Before(earlier(end, to)) {
			worst = max(worst, s.KW-r.CapKW)
		}
	}
	return worst
}
