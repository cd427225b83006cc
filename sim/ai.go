package sim

import (
	"errors"
	"fmt"
	"html"
	"slices"
	"strings"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/drivers/simdev"
	"github.com/switchd/switchd/trace"
)

// AI demand served and unserved.
//
// Per span between two events of a replay (a tick, a transition's end, a
// row), demand D is the trace's ai_demand (GPUs wanted) and served is
// min(D, GPUs steady in inference), integrated over the span: a GPU still
// starting or loading its model serves nothing. Unserved GPU-hours are
// Σ(D − served)·dt, and their revenue is those GPU-hours × the inference
// price. Each unserved GPU-hour is attributed to one cause, peeled off in
// this order from the state the last tick left:
//
//   - gpus: demand above the site's inference-capable GPUs;
//   - stale: a fail-safe curtailed or held, or the controller ran on a
//     demand lower than the trace's (a stale or withdrawn signal, its
//     fallback);
//   - rule: a rule forbade inference or capped its device count;
//   - cap: the plan stopped short because the site cap (or a rule's lower
//     cap) had no room left;
//   - price: the dispatcher judged inference not worth it at the prices
//     (its margin negative, or the GPUs worth more mining);
//   - transition: GPUs planned for inference still starting or loading;
//   - pacing: planned but not yet commanded (ramp limit, stagger, dwell,
//     retry back-off) or devices out of service.
//
// Where the trace has no sample of ai_demand of its own (a gap, e.g. the
// days of the week a weekly-repeated file lacks) demand is unknown: those
// hours are counted apart and neither served nor unserved.

// AICause is why some AI demand went unserved.
type AICause uint8

// Causes of unserved AI demand, in attribution order.
const (
	AICauseGPUs AICause = iota
	AICauseStale
	AICauseRule
	AICauseCap
	AICausePrice
	AICauseTransition
	AICausePacing
	numAICauses
)

var aiCauseNames = [numAICauses]string{"gpus", "stale", "rule", "cap", "price", "transition", "pacing"}

// String returns the cause's report name.
func (c AICause) String() string {
	if c < numAICauses {
		return aiCauseNames[c]
	}
	return fmt.Sprintf("cause(%d)", uint8(c))
}

// AIResult is what a replay did with AI demand.
type AIResult struct {
	// Active is set when the trace carries ai_demand (a source that can
	// tell its signals).
	Active             bool
	DemandGPUHours     float64
	ServedGPUHours     float64
	UnservedGPUHours   float64
	UnservedUSD        float64 // unserved GPU-hours × inference price
	ServedUSD          float64 // served GPU-hours × inference price
	ByCauseGPUHours    [numAICauses]float64
	ByCauseUSD         [numAICauses]float64
	DemandUnknownHours float64 // hours without a measured ai_demand
	// FleetModeHours[i][m] are device-hours of fleet i steady in m, for the
	// fleets that can both mine and serve inference (nil rows otherwise).
	FleetModeHours [][switchd.NumModes]float64
	FleetNames     []string
}

// aiState is the runner's AI bookkeeping: the state at the start of the
// span being accounted.
type aiState struct {
	capable  int     // inference-capable devices on the site
	arriving int     // devices on their way to an inference-earning mode
	dual     []bool  // fleet i can both mine and serve inference
	infKW    float64 // least extra draw of one more inference device, from any mode
}

// initAI prepares the AI bookkeeping of a run.
func (r *runner) initAI() {
	a := &r.ai
	a.dual = make([]bool, len(r.drivers))
	r.res.AI.FleetModeHours = make([][switchd.NumModes]float64, len(r.drivers))
	r.res.AI.FleetNames = make([]string, len(r.drivers))
	a.infKW = -1
	for i, d := range r.drivers {
		spec := d.Spec()
		r.res.AI.FleetNames[i] = spec.Name
		if !earnsInference(spec) {
			continue
		}
		a.capable += spec.Count
		a.dual[i] = spec.Supports[switchd.ModeMining]
		for m := range switchd.NumModes {
			if m == int(switchd.ModeInference) || !spec.Supports[m] {
				continue
			}
			dp := max(spec.Modes[switchd.ModeInference].PowerKW-spec.Modes[m].PowerKW, 0)
			if a.infKW < 0 || dp < a.infKW {
				a.infKW = dp
			}
		}
	}
	a.infKW = max(a.infKW, 0)
	// Only a trace that carries ai_demand says what was wanted.
	if src, ok := r.o.Source.(interface{ Signals() []switchd.Signal }); ok {
		r.res.AI.Active = slices.Contains(src.Signals(), switchd.SignalAIDemand)
	}
}

// earnsInference reports whether a fleet serves AI demand.
func earnsInference(spec *switchd.FleetSpec) bool {
	return spec.Supports[switchd.ModeInference] && spec.Modes[switchd.ModeInference].Revenue == switchd.RevenueInference
}

// aiSpanStart notes, before the drivers settle, the devices on their way
// to inference at the start of the span.
func (r *runner) aiSpanStart() {
	a := &r.ai
	a.arriving = 0
	for _, d := range r.drivers {
		if !earnsInference(d.Spec()) {
			continue
		}
		_, arriving := d.Counts()
		a.arriving += arriving[switchd.ModeInference]
	}
}

// aiUsage adds a driver's usage over the span to the per-fleet hours.
func (r *runner) aiUsage(d *simdev.Driver, u *simdev.Usage) {
	for i, x := range r.drivers {
		if x == d && r.ai.dual[i] {
			for m := range switchd.NumModes {
				r.res.AI.FleetModeHours[i][m] += u.DeviceHours[m]
			}
		}
	}
}

// accountAI adds a span of h hours in which inference-earning devices
// were steady for inferenceDH device-hours.
func (r *runner) accountAI(h, inferenceDH float64) {
	res := &r.res.AI
	if h <= 0 {
		return
	}
	if !res.Active {
		return
	}
	if !r.row.Has[switchd.SignalAIDemand] || r.inGap[switchd.SignalAIDemand] {
		res.DemandUnknownHours += h
		return
	}
	d := max(r.row.Values[switchd.SignalAIDemand], 0)
	price := r.values.V[switchd.SignalInferencePrice]
	served := min(d*h, inferenceDH)
	res.DemandGPUHours += d * h
	res.ServedGPUHours += served
	res.ServedUSD += served * price
	left := d*h - served
	if left <= 1e-9 {
		return
	}
	res.UnservedGPUHours += left
	res.UnservedUSD += left * price
	for c, gpuHours := range r.aiCauses(d, h, left) {
		res.ByCauseGPUHours[c] += gpuHours
		res.ByCauseUSD[c] += gpuHours * price
	}
}

// aiCauses splits left unserved GPU-hours over a span of h hours with
// demand d among the causes, in attribution order; they add up to left.
func (r *runner) aiCauses(d, h, left float64) [numAICauses]float64 {
	var out [numAICauses]float64
	take := func(c AICause, gpus float64) {
		x := min(max(gpus, 0)*h, left)
		out[c] += x
		left -= x
	}
	a := &r.ai
	take(AICauseGPUs, d-float64(a.capable))
	want := min(d, float64(a.capable))
	dec := r.ctl.Decision()
	ev := &dec.Eval
	if ev.Curtail || ev.Constraints.Hold {
		out[AICauseStale] += left
		return out
	}
	planned := 0
	allowed := 0
	for i, drv := range r.drivers {
		spec := drv.Spec()
		if !earnsInference(spec) || i >= len(dec.Plan.Fleets) {
			continue
		}
		planned += dec.Plan.Fleets[i].Count[switchd.ModeInference]
		n := spec.Count
		if i < len(ev.Constraints.Fleets) {
			c := &ev.Constraints.Fleets[i]
			if c.Forbid[switchd.ModeInference] {
				n = 0
			}
			n = min(n, c.Max[switchd.ModeInference])
		}
		allowed += max(n, 0)
	}
	short := want - float64(planned)
	if short > 0 {
		// The controller's view of demand, when lower than the trace's.
		if v, ok := ev.Values.Get(switchd.SignalAIDemand); ok && v < want {
			x := min(want-max(v, 0), short)
			take(AICauseStale, x)
			short -= x
		}
		if x := min(want-float64(allowed), short); x > 0 {
			take(AICauseRule, x)
			short -= x
		}
		if short > 0 {
			if r.planDrawKW()+r.ai.infKW > ev.Constraints.SiteCapKW+capSlackKW {
				take(AICauseCap, short)
			} else {
				take(AICausePrice, short)
			}
		}
	}
	take(AICauseTransition, float64(a.arriving))
	out[AICausePacing] += left
	return out
}

// capSlackKW is how close to the cap a plan must be to count as stopped
// by it.
const capSlackKW = 1e-6

// planDrawKW is what the last tick's plan draws with every device steady.
func (r *runner) planDrawKW() float64 {
	p := 0.0
	plan := &r.ctl.Decision().Plan
	for i, d := range r.drivers {
		if i >= len(plan.Fleets) {
			break
		}
		spec := d.Spec()
		for m, n := range plan.Fleets[i].Count {
			p += float64(n) * spec.Modes[m].PowerKW
		}
	}
	return p
}

// AIReport is a run's AI demand figures for the report.
type AIReport struct {
	DemandGPUHours   float64           `json:"demand_gpu_hours"`
	ServedGPUHours   float64           `json:"served_gpu_hours"`
	UnservedGPUHours float64           `json:"unserved_gpu_hours"`
	ServedUSD        float64           `json:"served_revenue_usd"`
	UnservedUSD      float64           `json:"unserved_revenue_usd"`
	UnservedByCause  map[string]AIFigs `json:"unserved_by_cause"`
	DemandUnknownH   float64           `json:"demand_unknown_hours"`
	DualUseFleets    []AIDualUseFleet  `json:"dual_use_fleets,omitempty"`
	byCause          [numAICauses]AIFigs
}

// AIFigs is unserved demand of one cause.
type AIFigs struct {
	GPUHours float64 `json:"gpu_hours"`
	USD      float64 `json:"usd"`
}

// AIDualUseFleet is how a fleet that can both mine and serve inference
// spent its device-hours.
type AIDualUseFleet struct {
	Fleet          string  `json:"fleet"`
	MiningHours    float64 `json:"mining_device_hours"`
	InferenceHours float64 `json:"inference_device_hours"`
	OffHours       float64 `json:"off_device_hours"`
	// The power-target modes, when the fleet has them.
	MiningReducedHours float64 `json:"mining_reduced_device_hours,omitempty"`
	SleepHours         float64 `json:"sleep_device_hours,omitempty"`
}

// aiReport builds the report section, nil when the run had no AI side.
func aiReport(r *Result) *AIReport {
	a := &r.AI
	if !a.Active {
		return nil
	}
	rep := &AIReport{
		DemandGPUHours: a.DemandGPUHours, ServedGPUHours: a.ServedGPUHours,
		UnservedGPUHours: a.UnservedGPUHours, ServedUSD: a.ServedUSD, UnservedUSD: a.UnservedUSD,
		DemandUnknownH: a.DemandUnknownHours, UnservedByCause: map[string]AIFigs{},
	}
	for c := range numAICauses {
		f := AIFigs{GPUHours: a.ByCauseGPUHours[c], USD: a.ByCauseUSD[c]}
		rep.byCause[c] = f
		if f.GPUHours > 0 {
			rep.UnservedByCause[c.String()] = f
		}
	}
	for i, h := range a.FleetModeHours {
		if h == ([switchd.NumModes]float64{}) || i >= len(a.FleetNames) {
			continue
		}
		rep.DualUseFleets = append(rep.DualUseFleets, AIDualUseFleet{Fleet: a.FleetNames[i],
			MiningHours: h[switchd.ModeMining], InferenceHours: h[switchd.ModeInference], OffHours: h[switchd.ModeOff],
			MiningReducedHours: h[switchd.ModeMiningReduced], SleepHours: h[switchd.ModeSleep]})
	}
	return rep
}

// aiRows writes the AI rows of a text table when any run has them; the
// oracle computes a profit bound only, so its column says n/a.
func aiRows(line rowFunc, runs ...*RunReport) {
	some := false
	for _, rr := range runs {
		some = some || rr.AI != nil
	}
	if !some {
		return
	}
	f := func(get func(*AIReport) float64, prec int) func(*RunReport) string {
		return func(rr *RunReport) string {
			if rr.AI == nil {
				return "-"
			}
			return fmt.Sprintf("%.*f", prec, get(rr.AI))
		}
	}
	line("AI demand (GPU-h)", f(func(a *AIReport) float64 { return a.DemandGPUHours }, 0), "")
	line("AI served (GPU-h)", f(func(a *AIReport) float64 { return a.ServedGPUHours }, 0), "n/a")
	line("AI unserved (GPU-h)", f(func(a *AIReport) float64 { return a.UnservedGPUHours }, 0), "n/a")
	line("AI unserved revenue (USD)", f(func(a *AIReport) float64 { return a.UnservedUSD }, 0), "n/a")
	for c := range numAICauses {
		used := false
		for _, rr := range runs {
			used = used || (rr.AI != nil && rr.AI.byCause[c].GPUHours > 0)
		}
		if !used {
			continue
		}
		line("  unserved: "+c.String()+" (GPU-h)", f(func(a *AIReport) float64 { return a.byCause[c].GPUHours }, 0), "")
	}
}

// writeAIText writes the notes under the table: unknown-demand hours,
// dual-use fleets and what each cause means.
func writeAIText(b *strings.Builder, rr *RunReport) {
	a := rr.AI
	if a == nil {
		return
	}
	fmt.Fprintf(b, "AI demand (policy run): %.0f GPU-h wanted, %.0f served (%.1f%%), %.0f unserved worth %.0f USD at the inference price",
		a.DemandGPUHours, a.ServedGPUHours, pct(a.ServedGPUHours, a.DemandGPUHours), a.UnservedGPUHours, a.UnservedUSD)
	if a.UnservedGPUHours > 0 {
		var parts []string
		for c := range numAICauses {
			if x := a.byCause[c].GPUHours; x > 0 {
				parts = append(parts, fmt.Sprintf("%s %.0f", c, x))
			}
		}
		fmt.Fprintf(b, "; unserved by cause (GPU-h): %s", strings.Join(parts, ", "))
	}
	b.WriteString("\n")
	if a.DemandUnknownH > 0 {
		fmt.Fprintf(b, "  %.1f h without a measured ai_demand (gaps in the trace) are counted neither served nor unserved\n", a.DemandUnknownH)
	}
	for _, f := range a.DualUseFleets {
		fmt.Fprintf(b, "  fleet %s (mines and serves): %.0f device-h mining, %.0f inference, %.0f off\n",
			f.Fleet, f.MiningHours, f.InferenceHours, f.OffHours)
	}
	b.WriteString("  causes: gpus = demand above the GPUs; stale = fail-safe or stale demand; rule = a rule forbade or capped inference;\n" +
		"  cap = no room under the site cap; price = not worth it at the prices; transition = GPUs still starting or loading;\n" +
		"  pacing = not yet commanded (ramp, stagger, dwell, back-off) or out of service\n")
}

func pct(x, of float64) float64 {
	if of <= 0 {
		return 0
	}
	return 100 * x / of
}

// repeats parses the --repeat values, one per trace.
func (o *CLIOptions) repeats() ([]trace.Repeat, error) {
	out := make([]trace.Repeat, len(o.Traces))
	var errs []error
	for i, v := range o.Repeats {
		r, err := trace.ParseRepeat(v)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("--repeat: %w", err))
		case i >= len(o.Traces):
			errs = append(errs, errors.New("--repeat applies to the --trace just before it: give the --trace first"))
		case i == 0 && r != trace.RepeatNone:
			errs = append(errs, errors.New("--repeat cannot apply to the first --trace, which sets the timeline"))
		default:
			out[i] = r
		}
	}
	return out, errors.Join(errs...)
}

// repeatedNotes describes the repeated trace files for the report.
func repeatedNotes(files []string, repeats []trace.Repeat, site *config.Site) []string {
	var out []string
	for i, r := range repeats {
		if r == trace.RepeatWeekly && i < len(files) {
			out = append(out, fmt.Sprintf("%s: repeated weekly (same weekday and time of day in %s; days of the week it lacks are missing)",
				files[i], site.Location))
		}
	}
	return out
}

// writeRepeated writes the report's line about repeated trace files.
func writeRepeated(b *strings.Builder, notes []string) {
	for _, n := range notes {
		fmt.Fprintf(b, "       REPEATED %s\n", n)
	}
}

// writeAIHTML writes the HTML report's AI demand table: one column per run
// and baseline, unserved demand by cause, or nothing when no run has AI
// figures.
func writeAIHTML(p *strings.Builder, outs []Outcome) {
	type col struct {
		name string
		ai   *AIReport
	}
	var cols []col
	for i, o := range outs {
		name := "policy"
		if len(outs) > 1 {
			name = fmt.Sprintf("[%d] %s", i+1, o.Label)
		}
		cols = append(cols, col{name, o.AI})
	}
	if len(outs) > 0 {
		b := &outs[0].Baselines
		cols = append(cols, col{"always_on", b.AlwaysOn.AI}, col{"threshold_debounce", b.ThresholdDebounce.AI})
	}
	some := false
	for _, c := range cols {
		some = some || c.ai != nil
	}
	if !some {
		return
	}
	p.WriteString("<h2>AI demand (simulated)</h2>\n<table id=\"ai-demand\">\n<tr><th></th>")
	for _, c := range cols {
		fmt.Fprintf(p, "<th>%s</th>", html.EscapeString(c.name))
	}
	p.WriteString("</tr>\n")
	row := func(name string, get func(*AIReport) float64) {
		fmt.Fprintf(p, "<tr><td>%s</td>", html.EscapeString(name))
		for _, c := range cols {
			if c.ai == nil {
				p.WriteString("<td>-</td>")
				continue
			}
			fmt.Fprintf(p, "<td>%.0f</td>", get(c.ai))
		}
		p.WriteString("</tr>\n")
	}
	row("demand (GPU-h)", func(a *AIReport) float64 { return a.DemandGPUHours })
	row("served (GPU-h)", func(a *AIReport) float64 { return a.ServedGPUHours })
	row("unserved (GPU-h)", func(a *AIReport) float64 { return a.UnservedGPUHours })
	row("served revenue (USD)", func(a *AIReport) float64 { return a.ServedUSD })
	row("unserved revenue (USD)", func(a *AIReport) float64 { return a.UnservedUSD })
	for c := range numAICauses {
		row("unserved: "+c.String()+" (GPU-h)", func(a *AIReport) float64 { return a.byCause[c].GPUHours })
	}
	row("hours without measured demand", func(a *AIReport) float64 { return a.DemandUnknownH })
	p.WriteString("</table>\n<p class=\"sub\">The oracle computes a profit bound only; it does not report served demand. " +
		"Causes: gpus = demand above the GPUs; stale = fail-safe or stale demand; rule = a rule forbade or capped inference; " +
		"cap = no room under the site cap; price = not worth it at the prices; transition = GPUs still starting or loading; " +
		"pacing = not yet commanded (ramp, stagger, dwell, back-off) or out of service.</p>\n")
}
