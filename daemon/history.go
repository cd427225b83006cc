package daemon

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/daemon/web"
)

// The history behind the status page's charts and GET /api/v1/history. Its
// memory is bounded by point count, not by time: when historyMaxPoints are
// kept, neighbouring points are merged in pairs and the step doubles, so a
// daemon ticking every second and one ticking every minute both keep a day
// in at most historyMaxPoints points.
const (
	historyMaxPoints = 1440
	// historyMinStep merges ticks closer than this into one point.
	historyMinStep = time.Second
	// historyMaxDecisions bounds the decisions kept for the chart markers.
	historyMaxDecisions = 500
)

// histPoint holds sums, so that merging two points is adding them.
type histPoint struct {
	t        time.Time // its first tick
	n        int       // ticks merged into it
	priceN   int       // of those, ticks with a price
	priceSum float64
	priceMin float64
	priceMax float64
	capSum   float64
	running  []float64 // kW summed over the ticks, per fleet
	waking   []float64
}

func (p *histPoint) merge(q *histPoint) {
	p.n += q.n
	if q.priceN > 0 {
		if p.priceN == 0 {
			p.priceMin, p.priceMax = q.priceMin, q.priceMax
		} else {
			p.priceMin, p.priceMax = min(p.priceMin, q.priceMin), max(p.priceMax, q.priceMax)
		}
		p.priceN += q.priceN
		p.priceSum += q.priceSum
	}
	p.capSum += q.capSum
	for i := range p.running {
		p.running[i] += q.running[i]
		p.waking[i] += q.waking[i]
	}
}

// history is the daemon's recent past: points of price and power per fleet,
// the decisions, and each fleet's own last decision. It belongs to the
// daemon and is used under its mu; the zero value is ready.
type history struct {
	step      time.Duration
	points    []histPoint           // oldest first
	decisions []web.HistoryDecision // oldest first
	// newest is the time of the newest decision recorded: the daemon's
	// decision list is newest first and bounded, so the ones after it are
	// new.
	newest time.Time
	// fleetLast is, per fleet, its last decision with its own commands
	// only. The pointed-to values are never changed once stored, so views
	// may share them.
	fleetLast []*web.DecisionView
}

// record adds a tick: the price the controller used (when it had one), the
// fleets' power as shown in v, and the decisions among decs (newest first)
// not recorded yet.
func (h *history) record(now time.Time, price float64, havePrice bool, v *web.StateView, decs []web.DecisionView) {
	if len(h.fleetLast) != len(v.Fleets) {
		h.fleetLast = make([]*web.DecisionView, len(v.Fleets))
	}
	for i := len(decs) - 1; i >= 0; i-- {
		dv := &decs[i]
		if !dv.Time.After(h.newest) {
			continue
		}
		h.newest = dv.Time
		h.decisions = append(h.decisions, web.HistoryDecision{
			Time: dv.Time, Rules: append([]string{}, dv.Rules...), Reason: dv.Reason, Summary: decisionSummary(dv),
		})
		for fi := range v.Fleets {
			if own := fleetDecision(dv, v.Fleets[fi].Name); own != nil {
				h.fleetLast[fi] = own
			}
		}
	}

	p := histPoint{t: now, n: 1, capSum: v.SiteCapKW, running: make([]float64, len(v.Fleets)), waking: make([]float64, len(v.Fleets))}
	if havePrice && !math.IsNaN(price) && !math.IsInf(price, 0) {
		p.priceN, p.priceSum, p.priceMin, p.priceMax = 1, price, price, price
	}
	for i := range v.Fleets {
		p.running[i], p.waking[i] = splitWaking(&v.Fleets[i])
	}
	if h.step < historyMinStep {
		h.step = historyMinStep
	}
	if n := len(h.points); n > 0 && now.Sub(h.points[n-1].t) < h.step && len(h.points[n-1].running) == len(p.running) {
		h.points[n-1].merge(&p)
	} else {
		h.points = append(h.points, p)
	}
	if len(h.points) > historyMaxPoints {
		h.compact()
	}
	h.trim(now)
}

// compact halves the points by merging neighbours and doubles the step.
func (h *history) compact() {
	out := h.points[:0]
	for i := 0; i < len(h.points); i += 2 {
		p := h.points[i]
		if i+1 < len(h.points) && len(h.points[i+1].running) == len(p.running) {
			p.merge(&h.points[i+1])
		}
		out = append(out, p)
	}
	clear(h.points[len(out):])
	h.points = out
	h.step *= 2
}

// trim drops what is older than the span, and decisions beyond their bound.
func (h *history) trim(now time.Time) {
	cut := now.Add(-web.HistorySpan)
	i := 0
	for i < len(h.points) && h.points[i].t.Before(cut) {
		i++
	}
	if i > 0 {
		h.points = append(h.points[:0], h.points[i:]...)
	}
	j := 0
	for j < len(h.decisions) && (h.decisions[j].Time.Before(cut) || len(h.decisions)-j > historyMaxDecisions) {
		j++
	}
	if j > 0 {
		h.decisions = append(h.decisions[:0], h.decisions[j:]...)
	}
}

// lastDecision is fleet i's own last decision, or nil.
func (h *history) lastDecision(i int) *web.DecisionView {
	if i < len(h.fleetLast) {
		return h.fleetLast[i]
	}
	return nil
}

// view returns the history as served, with the fleets' names.
func (h *history) view(now time.Time, site string, fleets []string) web.HistoryView {
	_, off := now.Zone()
	v := web.HistoryView{
		Site: site, Time: now, From: now.Add(-web.HistorySpan), StepSeconds: max(h.step, historyMinStep).Seconds(),
		TZOffsetSeconds: off, T: []float64{}, PriceUSDPerMWh: []*float64{}, PriceMinUSDPerMWh: []*float64{},
		PriceMaxUSDPerMWh: []*float64{}, SiteCapKW: []float64{}, Decisions: []web.HistoryDecision{},
	}
	for _, name := range fleets {
		v.Fleets = append(v.Fleets, web.HistoryFleet{Name: name, RunningKW: []float64{}, WakingKW: []float64{}})
	}
	for i := range h.points {
		p := &h.points[i]
		if p.t.Before(v.From) {
			continue
		}
		n := float64(p.n)
		v.T = append(v.T, round(float64(p.t.UnixMilli())/1000, 3))
		if p.priceN > 0 {
			mean, lo, hi := round(p.priceSum/float64(p.priceN), 2), round(p.priceMin, 2), round(p.priceMax, 2)
			v.PriceUSDPerMWh, v.PriceMinUSDPerMWh, v.PriceMaxUSDPerMWh = append(v.PriceUSDPerMWh, &mean), append(v.PriceMinUSDPerMWh, &lo), append(v.PriceMaxUSDPerMWh, &hi)
		} else {
			v.PriceUSDPerMWh, v.PriceMinUSDPerMWh, v.PriceMaxUSDPerMWh = append(v.PriceUSDPerMWh, nil), append(v.PriceMinUSDPerMWh, nil), append(v.PriceMaxUSDPerMWh, nil)
		}
		v.SiteCapKW = append(v.SiteCapKW, round(p.capSum/n, 2))
		for fi := range v.Fleets {
			run, wake := 0.0, 0.0
			if fi < len(p.running) {
				run, wake = p.running[fi]/n, p.waking[fi]/n
			}
			v.Fleets[fi].RunningKW = append(v.Fleets[fi].RunningKW, round(run, 2))
			v.Fleets[fi].WakingKW = append(v.Fleets[fi].WakingKW, round(wake, 2))
		}
	}
	for _, d := range h.decisions {
		if !d.Time.Before(v.From) {
			v.Decisions = append(v.Decisions, d)
		}
	}
	return v
}

// splitWaking splits a fleet's power into what its devices draw except
// those waking (in transition to a working mode), and what those draw.
func splitWaking(f *web.FleetView) (runningKW, wakingKW float64) {
	for m, kw := range f.MovingPowerByModeKW {
		if m != switchd.ModeOff.String() {
			wakingKW += kw
		}
	}
	// A driver that reports its power may report less than the catalog
	// says the waking devices draw.
	wakingKW = min(wakingKW, max(f.PowerKW, 0))
	return f.PowerKW - wakingKW, wakingKW
}

// fleetDecision is dv restricted to fleet's commands, or nil when it has
// none for that fleet.
func fleetDecision(dv *web.DecisionView, fleet string) *web.DecisionView {
	own := web.DecisionView{Time: dv.Time, Rules: append([]string{}, dv.Rules...), Reason: dv.Reason, Commands: []web.CommandView{}}
	for _, c := range dv.Commands {
		if c.Fleet == fleet {
			own.Commands = append(own.Commands, c)
		}
	}
	for _, c := range dv.Held {
		if c.Fleet == fleet {
			own.Held = append(own.Held, c)
		}
	}
	if len(own.Commands)+len(own.Held) == 0 {
		return nil
	}
	return &own
}

// decisionSummary lists a decision's commands in one line.
func decisionSummary(dv *web.DecisionView) string {
	var parts []string
	for _, c := range dv.Commands {
		parts = append(parts, fmt.Sprintf("%s %s→%s ×%d", c.Fleet, c.From, c.To, c.Count))
	}
	for _, c := range dv.Held {
		parts = append(parts, fmt.Sprintf("held: %s %s→%s ×%d", c.Fleet, c.From, c.To, c.Count))
	}
	return strings.Join(parts, "; ")
}

func round(x float64, decimals int) float64 {
	p := math.Pow(10, float64(decimals))
	return math.Round(x*p) / p
}

// History implements web.Backend.
func (d *daemon) History() web.HistoryView {
	d.mu.Lock()
	defer d.mu.Unlock()
	names := make([]string, len(d.site.Fleets))
	for i := range d.site.Fleets {
		names[i] = d.site.Fleets[i].Spec.Name
	}
	return d.hist.view(d.clock.Now(), d.site.Name, names)
}
