package sim

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
)

// The page's script and style, inlined into every report: the file opens
// with no network.
var (
	//go:embed html/report.js
	reportJS string
	//go:embed html/report.css
	reportCSS string
)

// htmlDetailRuns is how many runs keep their per-interval power and
// curtailment in the page (a selector picks which one is drawn); every run
// keeps its cumulative profit.
const htmlDetailRuns = 8

// htmlProfitPoints bounds the cumulative-profit points kept per run when
// there are more runs than htmlDetailRuns, so a 64-run sweep over a year
// stays a few megabytes; the tables' figures are never thinned.
const htmlProfitPoints = 4000

// HTMLCollector gathers one comparison's per-interval records for the HTML
// report: the policy run's through OnInterval, the baselines' through
// OnBaselineInterval. One collector per Compare; it is not safe for
// concurrent use.
type HTMLCollector struct {
	site   *config.Site
	layers []htmlLayer
	// From the policy run: the trace as the controller saw it.
	start                    []int64 // unix seconds
	end                      int64
	price, grid, breakeven   []float64 // NaN where absent
	breakevenFleet           string
	policy, alwaysOn, thresh htmlRun
}

// htmlLayer is one band of the stacked power chart: a fleet in a mode.
type htmlLayer struct {
	fleet int
	mode  switchd.Mode
}

// htmlRun is one run's per-interval series.
type htmlRun struct {
	profit []float64 // cumulative USD at each interval's end
	power  []float64 // average kW over the interval
	off    []int     // devices steady in off at the interval's end
	counts [][]int   // per layer: devices steady in it at the interval's end
}

// NewHTMLCollector returns a collector for runs on site.
func NewHTMLCollector(site *config.Site) *HTMLCollector {
	c := &HTMLCollector{site: site, breakevenFleet: ""}
	for i := range site.Fleets {
		spec := &site.Fleets[i].Spec
		for _, m := range switchd.Modes {
			if m == switchd.ModeOff || spec.Supports[m] {
				c.layers = append(c.layers, htmlLayer{fleet: i, mode: m})
			}
		}
		if c.breakevenFleet == "" && spec.Supports[switchd.ModeMining] {
			c.breakevenFleet = spec.Name
		}
	}
	c.policy.counts = make([][]int, len(c.layers))
	return c
}

// Hook sets o's interval callbacks to feed the collector.
func (c *HTMLCollector) Hook(o *CompareOptions) {
	o.OnInterval = c.onPolicy
	o.OnBaselineInterval = c.onBaseline
}

func (c *HTMLCollector) onPolicy(r *IntervalRecord) {
	c.start = append(c.start, r.Start.Unix())
	c.end = r.End.Unix()
	get := func(s switchd.Signal) float64 {
		if v, ok := r.Values.Get(s); ok {
			return v
		}
		return math.NaN()
	}
	c.price = append(c.price, get(switchd.SignalPrice))
	c.grid = append(c.grid, get(switchd.SignalGridLoad))
	be := math.NaN()
	for i := range c.site.Fleets {
		spec := &c.site.Fleets[i].Spec
		if spec.Name == c.breakevenFleet {
			if _, ok := r.Values.Get(switchd.SignalHashprice); ok {
				be = spec.BreakevenUSDPerMWh(switchd.ModeMining, &r.Values)
			}
			break
		}
	}
	c.breakeven = append(c.breakeven, be)
	c.policy.add(r, c.layers)
}

func (c *HTMLCollector) onBaseline(name string, r *IntervalRecord) {
	switch name {
	case "always_on":
		c.alwaysOn.add(r, nil)
	case "threshold_debounce":
		c.thresh.add(r, nil)
	}
}

func (h *htmlRun) add(r *IntervalRecord, layers []htmlLayer) {
	h.profit = append(h.profit, r.ProfitUSD)
	h.power = append(h.power, r.PowerKW)
	off := 0
	for i := range r.Counts {
		off += r.Counts[i][switchd.ModeOff]
	}
	h.off = append(h.off, off)
	for k, l := range layers {
		h.counts[k] = append(h.counts[k], r.Counts[l.fleet][l.mode])
	}
}

// HTMLPeak is a marked interval (a coincident peak) in the report.
type HTMLPeak struct {
	Start time.Time
	End   time.Time
	Label string
}

// HTMLOptions is what WriteHTML draws.
type HTMLOptions struct {
	Site     *config.Site
	Outcomes []Outcome
	// Collectors[i] holds Outcomes[i]'s intervals.
	Collectors []*HTMLCollector
	// Summary is the text report, shown as it is printed.
	Summary string
	// Peaks are marked on the time charts; nil takes them from the report.
	Peaks []HTMLPeak
}

// WriteHTML writes one self-contained HTML page (inline script, style and
// data; no network) with the price and curtailment, the stacked site power,
// the cumulative profit of each run against the baselines and the oracle,
// peak intervals and the summary. The page downsamples only for drawing:
// its data holds every interval.
func WriteHTML(w io.Writer, o HTMLOptions) error {
	if len(o.Outcomes) == 0 || len(o.Collectors) != len(o.Outcomes) {
		return fmt.Errorf("html: %d outcomes, %d collectors", len(o.Outcomes), len(o.Collectors))
	}
	c0 := o.Collectors[0]
	n := len(c0.start)
	if n == 0 {
		return fmt.Errorf("html: no intervals recorded")
	}
	for i, c := range o.Collectors {
		if len(c.start) != n || len(c.alwaysOn.profit) != n || len(c.thresh.profit) != n {
			return fmt.Errorf("html: run %d recorded %d/%d/%d intervals, want %d", i+1, len(c.start), len(c.alwaysOn.profit), len(c.thresh.profit), n)
		}
	}
	r0 := o.Outcomes[0].Report
	t0 := c0.start[0]
	_, tzOff := time.Unix(t0, 0).In(r0.Trace.Start.Location()).Zone()

	var b jsonBuf
	b.raw(`{"t0":`)
	b.int(t0)
	b.raw(`,"end":`)
	b.int(c0.end - t0)
	b.raw(`,"tzOffset":`)
	b.int(int64(tzOff))
	b.raw(`,"site":`)
	b.str(r0.Site)
	b.raw(`,"files":`)
	b.str(strings.Join(r0.Trace.Files, ", "))
	b.raw(`,"capKW":`)
	b.float(o.Site.PowerCapKW, 1)
	b.raw(`,"t":`)
	rel := make([]float64, n)
	for i, s := range c0.start {
		rel[i] = float64(s - t0)
	}
	b.deltas(rel, 1)
	b.raw(`,"price":`)
	b.values(c0.price, 100)
	b.raw(`,"grid":`)
	if allNaN(c0.grid) {
		b.raw("null")
	} else {
		b.deltas(c0.grid, 1)
	}
	b.raw(`,"breakeven":`)
	if allNaN(c0.breakeven) {
		b.raw("null")
	} else {
		b.raw(`{"label":`)
		b.str(c0.breakevenFleet + " mining breakeven")
		b.raw(`,"v":`)
		b.deltas(c0.breakeven, 10)
		b.raw("}")
	}
	b.raw(`,"layers":[`)
	for k, l := range c0.layers {
		if k > 0 {
			b.raw(",")
		}
		spec := &o.Site.Fleets[l.fleet].Spec
		b.raw(`{"fleet":`)
		b.str(spec.Name)
		b.raw(`,"mode":`)
		b.str(l.mode.String())
		b.raw(`,"kw":`)
		b.float(spec.Modes[l.mode].PowerKW, 1e6)
		b.raw("}")
	}
	b.raw(`],"devices":`)
	devices := 0
	for i := range o.Site.Fleets {
		devices += o.Site.Fleets[i].Spec.Count
	}
	b.int(int64(devices))

	// Runs: each policy run, then the first run's baselines.
	stride := 1
	if len(o.Outcomes) > htmlDetailRuns {
		stride = max(1, (n+htmlProfitPoints-1)/htmlProfitPoints)
	}
	b.raw(`,"runs":[`)
	for i, out := range o.Outcomes {
		c := o.Collectors[i]
		if i > 0 {
			b.raw(",")
		}
		b.raw(`{"label":`)
		b.str(out.Label)
		b.raw(`,"kind":"policy","final":`)
		b.float(out.ProfitUSD, 100)
		b.raw(`,"stride":`)
		b.int(int64(stride))
		b.raw(`,"profit":`)
		b.deltas(strided(c.policy.profit, stride), 1)
		b.raw(`,"vsAlwaysOn":`)
		b.deltas(strided(diff(c.policy.profit, c.alwaysOn.profit), stride), 1)
		b.raw(`,"vsThreshold":`)
		b.deltas(strided(diff(c.policy.profit, c.thresh.profit), stride), 1)
		// Coincident-peak charges are billed for the season, not by
		// interval: the page marks each run's margin net of them at the end.
		bl := &out.Baselines
		if out.CP != nil && bl.AlwaysOn.CP != nil && bl.ThresholdDebounce.CP != nil {
			b.raw(`,"cpNet":{"vsAlwaysOn":`)
			b.float(out.CP.ProfitNetUSD-bl.AlwaysOn.CP.ProfitNetUSD, 100)
			b.raw(`,"vsThreshold":`)
			b.float(out.CP.ProfitNetUSD-bl.ThresholdDebounce.CP.ProfitNetUSD, 100)
			b.raw(`,"charge":`)
			b.float(out.CP.ChargeUSD, 100)
			b.raw("}")
		}
		if i < htmlDetailRuns {
			b.raw(`,"detail":{"power":`)
			b.deltas(c.policy.power, 1)
			b.raw(`,"curtailed":`)
			curt := make([]float64, n)
			for k := range curt {
				// Devices the policy held off that always-on ran, at the
				// interval's end.
				curt[k] = float64(max(0, c.policy.off[k]-c.alwaysOn.off[k]))
			}
			b.deltas(curt, 1)
			b.raw(`,"counts":[`)
			for k := range c.policy.counts {
				if k > 0 {
					b.raw(",")
				}
				b.deltas(intsToFloats(c.policy.counts[k]), 1)
			}
			b.raw("]}")
		}
		b.raw("}")
	}
	for _, bl := range []struct {
		name  string
		run   *htmlRun
		final float64
	}{{"always_on", &c0.alwaysOn, r0.Baselines.AlwaysOn.ProfitUSD}, {"threshold_debounce", &c0.thresh, r0.Baselines.ThresholdDebounce.ProfitUSD}} {
		b.raw(`,{"label":`)
		b.str(bl.name)
		b.raw(`,"kind":`)
		b.str(bl.name)
		b.raw(`,"final":`)
		b.float(bl.final, 100)
		b.raw(`,"stride":1,"profit":`)
		b.deltas(bl.run.profit, 1)
		b.raw("}")
	}
	b.raw(`],"oracles":[`)
	// The oracle is one total over the trace (no per-interval path): one
	// reference per distinct bound.
	seen := map[float64]bool{}
	first := true
	for _, out := range o.Outcomes {
		or := out.Baselines.Oracle
		if seen[or.ProfitUSD] {
			continue
		}
		seen[or.ProfitUSD] = true
		if !first {
			b.raw(",")
		}
		first = false
		label := "oracle"
		if len(seen) > 1 {
			label = "oracle (" + out.Label + ")"
		}
		b.raw(`{"label":`)
		b.str(label)
		b.raw(`,"profit":`)
		b.float(or.ProfitUSD, 100)
		b.raw(`,"alwaysOn":`)
		b.float(out.Baselines.AlwaysOn.ProfitUSD, 100)
		b.raw(`,"threshold":`)
		b.float(out.Baselines.ThresholdDebounce.ProfitUSD, 100)
		b.raw(`,"method":`)
		b.str(or.Method)
		b.raw("}")
	}
	b.raw(`],"peaks":[`)
	peaks := o.Peaks
	if peaks == nil {
		name := "policy"
		if len(o.Outcomes) > 1 {
			name = o.Outcomes[0].Label
		}
		peaks = reportPeaks(r0, name)
	}
	for i, p := range peaks {
		if i > 0 {
			b.raw(",")
		}
		b.raw(`{"start":`)
		b.int(p.Start.Unix() - t0)
		b.raw(`,"end":`)
		b.int(p.End.Unix() - t0)
		b.raw(`,"label":`)
		b.str(p.Label)
		b.raw("}")
	}
	b.raw("]}")
	if b.err != nil {
		return b.err
	}

	title := "switchd sim — SIMULATED — " + r0.Site + " — " + o.Outcomes[0].Label
	if len(o.Outcomes) > 1 {
		title = fmt.Sprintf("switchd sim — SIMULATED — %s — %d runs", r0.Site, len(o.Outcomes))
	}
	var p strings.Builder
	p.WriteString("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
	fmt.Fprintf(&p, "<title>%s</title>\n", html.EscapeString(title))
	p.WriteString("<style>\n" + reportCSS + "</style>\n</head>\n<body>\n")
	fmt.Fprintf(&p, "<h1>%s</h1>\n", html.EscapeString(title))
	fmt.Fprintf(&p, "<p class=\"sub\">A <b>simulated</b> replay: the real controller on simulated devices, over %s (%s to %s, %d intervals). "+
		"Drag across a chart to zoom, double-click to see the whole trace. Charts draw the minimum and maximum (or the mean, for power) of the intervals under each pixel; every figure in the tables uses every interval.</p>\n",
		html.EscapeString(strings.Join(r0.Trace.Files, ", ")), r0.Trace.Start.Format("2006-01-02 15:04 MST"), r0.Trace.End.Format("2006-01-02 15:04 MST"), r0.Trace.Intervals)
	p.WriteString(htmlBody)
	fmt.Fprintf(&p, "<h2>Summary</h2>\n<pre id=\"summary\">%s</pre>\n", html.EscapeString(o.Summary))
	writeAIHTML(&p, o.Outcomes)
	p.WriteString("<script type=\"application/json\" id=\"data\">")
	if _, err := io.WriteString(w, p.String()); err != nil {
		return err
	}
	if _, err := w.Write(b.buf); err != nil {
		return err
	}
	_, err := io.WriteString(w, "</script>\n<script>\n"+reportJS+"</script>\n</body>\n</html>\n")
	return err
}

// htmlBody is the charts' skeleton; report.js fills the canvases.
const htmlBody = `<div id="controls">
<button id="reset" type="button">whole trace</button>
<label><input type="checkbox" id="linear"> linear price scale</label>
<label id="runpick">power and curtailment of <select id="run"></select></label>
<span id="readout"></span>
</div>
<div class="chart" id="chart-price"><h2>Price (USD/MWh), curtailment shaded</h2><div class="legend" id="legend-price"></div><div class="plot"><canvas id="c-price"></canvas><canvas class="overlay"></canvas></div></div>
<div class="chart" id="chart-grid"><h2>System load (MW)</h2><div class="legend" id="legend-grid"></div><div class="plot"><canvas id="c-grid"></canvas><canvas class="overlay"></canvas></div></div>
<div class="chart" id="chart-power"><h2>Site power by fleet and mode (kW)</h2><div class="legend" id="legend-power"></div><div class="plot"><canvas id="c-power"></canvas><canvas class="overlay"></canvas></div></div>
<div class="chart" id="chart-profit"><h2>Cumulative profit (USD)</h2><div class="legend" id="legend-profit"></div><div class="plot"><canvas id="c-profit"></canvas><canvas class="overlay"></canvas></div></div>
<div class="chart" id="chart-margin"><h2>Cumulative profit over each baseline (USD)</h2><div class="legend" id="legend-margin"></div><div class="plot"><canvas id="c-margin"></canvas><canvas class="overlay"></canvas></div></div>
<div id="peaks"></div>
<pre id="layout" hidden></pre>
`

// reportPeaks returns the report's coincident-peak intervals, labelled with
// the system load and the draw in them of the policy (named policy) and
// the baselines.
func reportPeaks(r *Report, policy string) []HTMLPeak {
	cp := r.CoincidentPeak
	if cp == nil || !cp.Computed {
		return nil
	}
	out := make([]HTMLPeak, 0, len(cp.Peaks))
	for i, p := range cp.Peaks {
		label := fmt.Sprintf("%s coincident peak: system load %.0f MW", p.Month, p.GridLoadMW)
		if p.Intervals > 1 {
			label += fmt.Sprintf(" (%d tied intervals)", p.Intervals)
		}
		for _, run := range []struct {
			name string
			cp   *RunCP
		}{{policy, r.CP}, {"always_on", r.Baselines.AlwaysOn.CP}, {"threshold_debounce", r.Baselines.ThresholdDebounce.CP}} {
			if run.cp != nil && i < len(run.cp.PeakLoadKW) {
				label += fmt.Sprintf("; %s draws %.0f kW", run.name, run.cp.PeakLoadKW[i])
			}
		}
		out = append(out, HTMLPeak{Start: p.Start, End: p.End, Label: label})
	}
	return out
}

func allNaN(v []float64) bool {
	for _, x := range v {
		if !math.IsNaN(x) {
			return false
		}
	}
	return true
}

func diff(a, b []float64) []float64 {
	out := make([]float64, len(a))
	for i := range a {
		out[i] = a[i] - b[i]
	}
	return out
}

func intsToFloats(v []int) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// strided keeps every k-th value and the last.
func strided(v []float64, k int) []float64 {
	if k <= 1 {
		return v
	}
	out := make([]float64, 0, len(v)/k+2)
	for i := 0; i < len(v); i += k {
		out = append(out, v[i])
	}
	if (len(v)-1)%k != 0 {
		out = append(out, v[len(v)-1])
	}
	return out
}

// jsonBuf writes the page's data compactly: numeric columns as arrays,
// slowly changing ones as differences of rounded values (so the sums are
// exact at the rounding), absent values as null.
type jsonBuf struct {
	buf []byte
	err error
}

func (b *jsonBuf) raw(s string) { b.buf = append(b.buf, s...) }
func (b *jsonBuf) int(v int64)  { b.buf = strconv.AppendInt(b.buf, v, 10) }

func (b *jsonBuf) str(s string) {
	j, err := json.Marshal(s) // escapes <, > and &: safe inside <script>
	if err != nil && b.err == nil {
		b.err = err
	}
	b.buf = append(b.buf, j...)
}

// float writes v rounded to 1/scale.
func (b *jsonBuf) float(v, scale float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		b.raw("null")
		return
	}
	b.buf = strconv.AppendFloat(b.buf, math.Round(v*scale)/scale, 'f', -1, 64)
}

// values writes v rounded to 1/scale, NaN as null.
func (b *jsonBuf) values(v []float64, scale float64) {
	b.raw("[")
	for i, x := range v {
		if i > 0 {
			b.raw(",")
		}
		b.float(x, scale)
	}
	b.raw("]")
}

// deltas writes v rounded to 1/scale as differences between consecutive
// present values (in units of 1/scale; the page divides by "scale" when it
// is not 1), NaN as null.
func (b *jsonBuf) deltas(v []float64, scale float64) {
	if scale != 1 {
		b.raw(`{"scale":`)
		b.float(scale, 1)
		b.raw(`,"d":`)
	}
	b.raw("[")
	var prev int64
	for i, x := range v {
		if i > 0 {
			b.raw(",")
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			b.raw("null")
			continue
		}
		r := int64(math.Round(x * scale))
		b.int(r - prev)
		prev = r
	}
	b.raw("]")
	if scale != 1 {
		b.raw("}")
	}
}
