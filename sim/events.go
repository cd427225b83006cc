package sim

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/controller"
	"github.com/switchd/switchd/dr"
	"github.com/switchd/switchd/trace"
)

// sortedEvents returns a copy of evs by notice time (file order for ties).
func sortedEvents(evs []dr.Event) []dr.Event {
	out := slices.Clone(evs)
	slices.SortStableFunc(out, func(a, b dr.Event) int { return a.Notice.Compare(b.Notice) })
	return out
}

// eventsFor gives the events to the policy's own run only: the baselines'
// planners know nothing of programs, so their compliance would say nothing.
func eventsFor(p controller.Planner, evs []dr.Event) []dr.Event {
	if p != nil {
		return nil
	}
	return evs
}

// nextNotice is the notice time of the next event not yet delivered, or zero.
func (r *runner) nextNotice() time.Time {
	if len(r.events) == 0 {
		return time.Time{}
	}
	return r.events[0].Notice
}

// deliverEvents gives the controller every event whose notice has come, as
// a program's message would arrive live. Events noticed before the trace
// starts arrive at its first tick.
func (r *runner) deliverEvents() error {
	now := r.clock.Now()
	for len(r.events) > 0 && !r.events[0].Notice.After(now) {
		if _, err := r.ctl.AddDREvent(now, r.events[0]); err != nil {
			return fmt.Errorf("demand response: %w", err)
		}
		r.events = r.events[1:]
	}
	return nil
}

// DRReport is the demand-response compliance of a simulated run.
type DRReport struct {
	Simulated bool            `json:"simulated"` // always true
	Events    []DREventReport `json:"events"`
	// Met counts events whose target was met by the deadline, NotMet those
	// past their deadline without, Pending those the trace ends before the
	// deadline of, NotDelivered those noticed after the trace's end.
	Met          int `json:"met"`
	NotMet       int `json:"not_met"`
	Pending      int `json:"pending"`
	NotDelivered int `json:"not_delivered"`
	// MedianTimeToTargetSeconds is over the events that reached their
	// target (null when none did).
	MedianTimeToTargetSeconds *float64 `json:"median_time_to_target_seconds"`
	ShortfallKWh              float64  `json:"shortfall_kwh"`
}

// DREventReport is one event's compliance.
type DREventReport struct {
	ID       string    `json:"id"`
	Program  string    `json:"program"`
	Notice   time.Time `json:"notice"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Deadline time.Time `json:"deadline"`
	// Phase is the record's phase at the end of the trace, or
	// "not_delivered".
	Phase               string        `json:"phase"`
	BaselineKW          float64       `json:"baseline_kw"`
	BaselineKnown       float64       `json:"baseline_known"`
	CapKW               float64       `json:"cap_kw"`
	Met                 bool          `json:"met"`
	MetAt               *time.Time    `json:"met_at"`
	TimeToTargetSeconds *float64      `json:"time_to_target_seconds"`
	Alarm               string        `json:"alarm,omitempty"`
	ShortfallKWh        float64       `json:"shortfall_kwh"`
	MaxOverKW           float64       `json:"max_over_kw"`
	Intervals           []dr.Interval `json:"intervals"`
}

// drReport builds the report from the events given and the records the run
// ended with; nil when no events were given.
func drReport(evs []dr.Event, recs []dr.Record) *DRReport {
	if len(evs) == 0 {
		return nil
	}
	byID := make(map[string]*dr.Record, len(recs))
	for i := range recs {
		byID[recs[i].Event.ID] = &recs[i]
	}
	rep := &DRReport{Simulated: true, Events: []DREventReport{}}
	var ttt []float64
	for _, ev := range sortedEvents(evs) {
		e := DREventReport{ID: ev.ID, Program: ev.Program, Notice: ev.Notice, Start: ev.Start, End: ev.End,
			Deadline: ev.DeadlineOrStart(), Phase: "not_delivered", Intervals: []dr.Interval{}}
		r, ok := byID[ev.ID]
		if !ok {
			rep.NotDelivered++
			rep.Events = append(rep.Events, e)
			continue
		}
		e.Phase = string(r.Phase)
		e.BaselineKW, e.BaselineKnown, e.CapKW = r.BaselineKW, r.BaselineKnown, r.CapKW
		e.Met, e.Alarm, e.ShortfallKWh, e.MaxOverKW, e.Intervals = r.Met, r.Alarm, r.ShortfallKWh, r.MaxOverKW, r.Intervals
		if d, ok := r.TimeToTarget(); ok {
			at, s := r.MetAt, d.Seconds()
			e.MetAt, e.TimeToTargetSeconds = &at, &s
			ttt = append(ttt, s)
		}
		switch {
		case r.Met:
			rep.Met++
		case r.Alarm != "" || r.Phase == dr.PhaseEnded:
			rep.NotMet++
		default:
			rep.Pending++
		}
		rep.ShortfallKWh += r.ShortfallKWh
		rep.Events = append(rep.Events, e)
	}
	if len(ttt) > 0 {
		sort.Float64s(ttt)
		m := ttt[len(ttt)/2]
		if len(ttt)%2 == 0 {
			m = (ttt[len(ttt)/2-1] + m) / 2
		}
		rep.MedianTimeToTargetSeconds = &m
	}
	return rep
}

// WriteText writes the compliance table.
func (d *DRReport) WriteText(w io.Writer, label string) error {
	var b strings.Builder
	title := "SIMULATED demand-response compliance"
	if label != "" {
		title += " — " + label
	}
	fmt.Fprintf(&b, "\n%s: %d met by deadline, %d not met, %d pending at trace end, %d noticed after it; shortfall %.1f kWh",
		title, d.Met, d.NotMet, d.Pending, d.NotDelivered, d.ShortfallKWh)
	if d.MedianTimeToTargetSeconds != nil {
		fmt.Fprintf(&b, "; median time to target %s", fmtSeconds(*d.MedianTimeToTargetSeconds))
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "event\tprogram\tstart (UTC)\tend (UTC)\tbaseline kW\tcap kW\tmet\tmet at (UTC)\tto target\tshortfall kWh\tmax over kW\talarm\t")
	for _, e := range d.Events {
		metAt, to := "-", "-"
		if e.MetAt != nil {
			metAt = e.MetAt.UTC().Format("2006-01-02 15:04:05")
			to = fmtSeconds(*e.TimeToTargetSeconds)
		}
		met := "no"
		switch {
		case e.Met:
			met = "yes"
		case e.Phase == "not_delivered" || (e.Alarm == "" && e.Phase != string(dr.PhaseEnded)):
			met = e.Phase
		}
		alarm := e.Alarm
		if alarm == "" {
			alarm = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.1f\t%.1f\t%s\t%s\t%s\t%.1f\t%.1f\t%s\t\n", e.ID, e.Program,
			e.Start.UTC().Format("2006-01-02 15:04"), e.End.UTC().Format("2006-01-02 15:04"),
			e.BaselineKW, e.CapKW, met, metAt, to, e.ShortfallKWh, e.MaxOverKW, alarm)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// fmtSeconds writes a duration in seconds as Go duration text.
func fmtSeconds(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Second).String()
}

// PeakEventOptions shape the events PeakEvents places on a trace.
type PeakEventOptions struct {
	N        int           // how many events
	Gap      time.Duration // least time between two events' starts
	Notice   time.Duration // notice before the start
	Duration time.Duration // start to end
	Program  string
	// Exactly one of TargetKW and ShedKW is used: TargetKW when positive.
	TargetKW, ShedKW float64
}

// PeakEvents places up to o.N synthetic demand-response events on the
// highest-priced intervals of s, greedily, each start at least o.Gap from
// every other and the whole event (notice to end) inside the trace; ties
// go to the earlier interval. They are for studies and benchmarks of the
// controller's compliance, not a forecast of real deployments.
func PeakEvents(s *trace.Series, o PeakEventOptions) []dr.Event {
	type iv struct {
		i     int
		price float64
	}
	var ivs []iv
	first, end := time.Time{}, s.End()
	if s.Len() > 0 {
		first = s.Time(0)
	}
	for i := range s.Len() {
		if p, ok := s.Value(i, switchd.SignalPrice); ok {
			ivs = append(ivs, iv{i, p})
		}
	}
	sort.SliceStable(ivs, func(a, b int) bool { return ivs[a].price > ivs[b].price })
	var out []dr.Event
	var starts []time.Time
	for _, c := range ivs {
		if len(out) >= o.N {
			break
		}
		start := s.Time(c.i)
		if start.Add(-o.Notice).Before(first) || start.Add(o.Duration).After(end) {
			continue
		}
		near := false
		for _, t := range starts {
			if d := start.Sub(t); d < o.Gap && d > -o.Gap {
				near = true
				break
			}
		}
		if near {
			continue
		}
		starts = append(starts, start)
		ev := dr.Event{ID: fmt.Sprintf("peak-%s", start.UTC().Format("20060102T1504Z")), Program: o.Program,
			Notice: start.Add(-o.Notice), Start: start, End: start.Add(o.Duration)}
		if o.TargetKW > 0 {
			v := o.TargetKW
			ev.TargetKW = &v
		} else {
			v := o.ShedKW
			ev.ShedKW = &v
		}
		out = append(out, ev)
	}
	slices.SortFunc(out, func(a, b dr.Event) int { return a.Start.Compare(b.Start) })
	return out
}
