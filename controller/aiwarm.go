package controller

import (
	"math"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/policies"
)

// aiWarmTrack is the planner's memory of recent AI demand for the policy's
// ai_warm: the demand values it was shown, newest last, as a monotone
// queue (each kept value is larger than every later one), so the window's
// peak is the front.
type aiWarmTrack struct {
	pts []aiDemandPoint
}

// aiDemandPoint is one demand value the planner saw, and when.
type aiDemandPoint struct {
	at  time.Time
	gpu float64
}

// apply raises the demand in v that the dispatcher plans for: the highest
// demand seen in the last w.Hold, plus w.HeadroomGPUs. Absent demand
// (unlimited) and a policy without ai_warm leave v alone.
func (t *aiWarmTrack) apply(now time.Time, v *switchd.Values, w policies.AIWarm) {
	d, ok := v.Get(switchd.SignalAIDemand)
	if !ok || (w.Hold <= 0 && w.HeadroomGPUs <= 0) {
		t.pts = t.pts[:0]
		return
	}
	if math.IsNaN(d) {
		return
	}
	t.note(now, d, w.Hold)
	peak := d
	if len(t.pts) > 0 {
		peak = max(peak, t.pts[0].gpu)
	}
	v.V[switchd.SignalAIDemand] = max(peak, 0) + float64(w.HeadroomGPUs)
}

// note adds a demand value seen at now and drops those older than hold.
func (t *aiWarmTrack) note(now time.Time, d float64, hold time.Duration) {
	if hold <= 0 {
		t.pts = t.pts[:0]
		return
	}
	k := 0
	for k < len(t.pts) && now.Sub(t.pts[k].at) >= hold {
		k++
	}
	t.pts = append(t.pts[:0], t.pts[k:]...)
	for len(t.pts) > 0 && t.pts[len(t.pts)-1].gpu <= d {
		t.pts = t.pts[:len(t.pts)-1]
	}
	t.pts = append(t.pts, aiDemandPoint{at: now, gpu: d})
}

// nextWake is when the window's peak expires (the planned demand may then
// fall with no new signal), or zero.
func (t *aiWarmTrack) nextWake(now time.Time, hold time.Duration) time.Time {
	if hold <= 0 || len(t.pts) < 2 {
		return time.Time{}
	}
	if w := t.pts[0].at.Add(hold); w.After(now) {
		return w
	}
	return time.Time{}
}
