package controller

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/dr"
	"github.com/switchd/switchd/policies"
)

// MaxDREvents is how many demand-response events may be tracked at once
// (scheduled or active); a program sending more is refused.
const MaxDREvents = 64

// keepEndedDR is how many ended events' records stay in memory for the
// state API (the journal keeps them all).
const keepEndedDR = 32

// DR journal moments, passed to DRRecorder.DR.
const (
	DRReceived = "received" // an event (or an update of one) was accepted
	DRStarted  = "started"  // the event's start passed
	DRAlarm    = "alarm"    // the site failed the event's target (Record.Alarm says how)
	DREnded    = "ended"    // the event ended: the record is its compliance
)

// DRRecorder is an optional capability of a Recorder: it is told of every
// demand-response moment with the event's record as of then. Called from
// Tick or AddDREvent, never concurrently; it must not keep rec.
type DRRecorder interface {
	DR(now time.Time, moment string, rec *dr.Record)
}

// drState is the controller's demand-response memory: the site load as
// measured at each tick, and the events' records.
type drState struct {
	meter  dr.Meter
	recs   []*dr.Record // in order of receipt; ended ones pruned to keepEndedDR
	lead   time.Duration
	alarms int // alarms raised since the controller started
	// keepEnded is Options.DRKeepEnded.
	keepEnded int
}

// AddDREvent accepts a demand-response event at now (callers serialise it
// with Tick). An event already known by id is ignored when identical (a
// redelivered message) and replaces the old one when changed, unless that
// one has ended. It returns whether anything changed.
func (c *Controller) AddDREvent(now time.Time, ev dr.Event) (bool, error) {
	if err := ev.Validate(); err != nil {
		return false, fmt.Errorf("event %q: %w", ev.ID, err)
	}
	if !now.Before(ev.End) {
		// A message delayed past the event's end (or a retained one
		// redelivered) has nothing left to instruct.
		return false, fmt.Errorf("event %q ended at %s, before it arrived", ev.ID, ev.End.Format(time.RFC3339))
	}
	d := &c.dr
	live := 0
	for i, r := range d.recs {
		if r.Event.ID == ev.ID {
			switch {
			case r.Event.Same(&ev):
				return false, nil
			case r.Phase == dr.PhaseEnded:
				return false, fmt.Errorf("event %q has ended: an update comes too late", ev.ID)
			}
			// The baseline is taken at the next tick, from the load
			// measured up to it.
			d.recs[i] = dr.NewRecord(ev, now, d.lead)
			c.drRecord(now, DRReceived, d.recs[i])
			return true, nil
		}
		if r.Phase != dr.PhaseEnded {
			live++
		}
	}
	if live >= MaxDREvents {
		return false, fmt.Errorf("event %q: %d events are tracked already, the most allowed", ev.ID, live)
	}
	r := dr.NewRecord(ev, now, d.lead)
	d.recs = append(d.recs, r)
	c.drRecord(now, DRReceived, r)
	return true, nil
}

// ResumeDR takes back the events a previous run was tracking, with their
// records as last journalled (baseline, cap, intervals), so a restart in the
// middle of an event keeps its cap. Records already ended, or whose id is
// known, are skipped; one whose end passed while the daemon was down is
// closed at the next tick, on what was measured. It returns how many were
// taken. Callers serialise it with Tick.
func (c *Controller) ResumeDR(recs []dr.Record) int {
	n := 0
	for _, r := range recs {
		if r.Phase == dr.PhaseEnded || r.Event.Validate() != nil || c.drIndex(r.Event.ID) >= 0 {
			continue
		}
		if len(c.dr.recs) >= MaxDREvents {
			break
		}
		c.dr.recs = append(c.dr.recs, dr.Resume(r))
		n++
	}
	return n
}

// drIndex is the index of the event's record, or -1.
func (c *Controller) drIndex(id string) int {
	for i, r := range c.dr.recs {
		if r.Event.ID == id {
			return i
		}
	}
	return -1
}

// DRRecords returns copies of the tracked events' records, in order of
// receipt (the recent ended ones included).
func (c *Controller) DRRecords() []dr.Record {
	out := make([]dr.Record, len(c.dr.recs))
	for i, r := range c.dr.recs {
		out[i] = *r
		out[i].Intervals = slices.Clone(r.Intervals)
	}
	return out
}

// DRAlarms is the number of demand-response alarms raised since the
// controller started.
func (c *Controller) DRAlarms() int { return c.dr.alarms }

// drLead is how long the site's slowest shed takes: the longest transition
// of any fleet from a mode it supports to off.
func drLead(fleets []fleet) time.Duration {
	var lead time.Duration
	for i := range fleets {
		spec := fleets[i].spec
		for _, m := range switchd.Modes[1:] {
			if spec.Supports[m] {
				lead = max(lead, spec.Transition[m][switchd.ModeOff])
			}
		}
	}
	return lead
}

// drBeforePlan measures the site's draw as observed this tick, brings the
// records up to now and returns the tightest cap in force (+Inf if none)
// with the ids of the events whose cap is in force. The draw is measured
// whether or not an event is known: the next one's baseline is the load
// before its notice.
func (c *Controller) drBeforePlan(now time.Time) (capKW float64, fired []string) {
	capKW = math.Inf(1)
	load, _ := c.powerKW()
	c.dr.meter.Set(now, load)
	for _, r := range c.dr.recs {
		c.drUpdate(now, r, load)
		if r.CapActive(now) {
			capKW = min(capKW, r.CapKW)
			fired = append(fired, "dr:"+r.Event.ID)
		}
		c.wakeAt(r.NextEdge(now))
	}
	return capKW, fired
}

// drAfterApply records the draw once this tick's accepted commands are
// under way (a start draws its new mode's power at once; a shed lowers the
// draw only when it lands, at a later tick) and updates the records, then
// forgets ended events beyond keepEndedDR.
func (c *Controller) drAfterApply(now time.Time) {
	load, _ := c.powerKW()
	for i := range c.fleets {
		f := &c.fleets[i]
		if f.applyErr != nil {
			continue
		}
		for _, cmd := range f.cmds {
			load += float64(cmd.Count) * (f.spec.TransitionPowerKW(cmd.From, cmd.To) - f.spec.Modes[cmd.From].PowerKW)
		}
	}
	c.dr.meter.Set(now, load)
	ended := 0
	for _, r := range c.dr.recs {
		c.drUpdate(now, r, load)
		if r.Phase == dr.PhaseEnded {
			ended++
		}
	}
	keep := c.dr.keepEnded
	if keep == 0 {
		keep = keepEndedDR
	}
	for i := 0; keep > 0 && ended > keep && i < len(c.dr.recs); {
		if c.dr.recs[i].Phase == dr.PhaseEnded {
			c.dr.recs = slices.Delete(c.dr.recs, i, i+1)
			ended--
			continue
		}
		i++
	}
}

// drUpdate updates one record with the load at now and journals what
// changed.
func (c *Controller) drUpdate(now time.Time, r *dr.Record, load float64) {
	before := r.Phase
	if before == dr.PhaseEnded {
		return
	}
	if alarm := r.Update(now, &c.dr.meter, load); alarm != "" {
		c.dr.alarms++
		c.drRecord(now, DRAlarm, r)
	}
	if before == dr.PhaseScheduled && r.Phase != dr.PhaseScheduled {
		c.drRecord(now, DRStarted, r)
	}
	if before != dr.PhaseEnded && r.Phase == dr.PhaseEnded {
		c.drRecord(now, DREnded, r)
	}
}

// drRecord tells the recorder of a demand-response moment, if it listens.
func (c *Controller) drRecord(now time.Time, moment string, r *dr.Record) {
	if rec, ok := c.recorder.(DRRecorder); ok {
		rec.DR(now, moment, r)
	}
}

// drCheckPlan raises AlarmCannotMeet for each event whose cap is in force
// when even the plan made for it draws more than the cap (with the devices
// the controller cannot command at their draw): the site will not meet
// the target, and the operator hears it now rather than at the deadline.
func (c *Controller) drCheckPlan(now time.Time, unusableKW float64) {
	if len(c.in.DRFired) == 0 {
		return
	}
	planned := unusableKW
	for i, fp := range c.dec.Plan.Fleets {
		if i >= len(c.fleets) {
			break
		}
		for m, n := range fp.Count {
			planned += float64(n) * c.fleets[i].spec.Modes[m].PowerKW
		}
	}
	for _, r := range c.dr.recs {
		if !r.CapActive(now) || planned <= r.CapKW+1e-9*max(r.CapKW, 1) {
			continue
		}
		if r.Raise(dr.AlarmCannotMeet, now) {
			c.dr.alarms++
			c.drRecord(now, DRAlarm, r)
		}
	}
}

// applyDR narrows the site cap to the demand-response cap in force and
// lists the events among the rules fired as "dr:<id>". A program's cap
// beats price and rules (the site holds it whatever the price says), like
// an override; the reconciler sheds for it at full speed, dwell or not.
func applyDR(in *PlanInput, ev *policies.Evaluation) {
	if len(in.DRFired) == 0 {
		return
	}
	ev.Constraints.SiteCapKW = min(ev.Constraints.SiteCapKW, in.DRCapKW)
	ev.Fired = append(ev.Fired, in.DRFired...)
}
