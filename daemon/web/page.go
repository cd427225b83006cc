package web

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/switchd/switchd"
)

// PageRefresh is how often the status page reloads itself.
const PageRefresh = 5 * time.Second

// maxPageDecisions bounds the decisions listed on the status page.
const maxPageDecisions = 10

// chartJS draws the charts from the history embedded in the page.
//
//go:embed charts.js
var chartJS string

// pageCSP allows the inline style sheet and the chart script (by its hash)
// and nothing else: the page loads no external asset and fetches nothing.
var pageCSP = "default-src 'none'; style-src 'unsafe-inline'; script-src " + scriptHash(chartJS) +
	"; frame-ancestors 'none'; form-action 'none'; base-uri 'none'"

// scriptHash is the CSP source that allows exactly the inline script js.
func scriptHash(js string) string {
	h := sha256.Sum256([]byte(js))
	return "'sha256-" + base64.StdEncoding.EncodeToString(h[:]) + "'"
}

func (h *handler) page(w http.ResponseWriter, _ *http.Request) {
	s := h.backend.State()
	ok, reason := h.backend.Ready()
	hist := h.backend.History()
	data := newPageData(&s, ok, reason, h.version)
	// json.Marshal escapes <, > and &, so the data cannot close its
	// script element.
	hj, err := json.Marshal(hist)
	if err != nil {
		h.log.Error("render status page", zap.Error(err))
		writeText(w, http.StatusInternalServerError, "render status page: see the daemon log")
		return
	}
	data.HistoryJSON, data.ChartJS = template.JS(hj), template.JS(chartJS)
	// Render fully before writing, so a template error is a clean 500
	// instead of half a page.
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, data); err != nil {
		h.log.Error("render status page", zap.Error(err))
		writeText(w, http.StatusInternalServerError, "render status page: see the daemon log")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", pageCSP)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

// pageData is StateView formatted for people: numbers with units, ages,
// modes in a fixed order.
type pageData struct {
	Site, Version, Time string
	RefreshSeconds      int
	Ready               bool
	ReadyReason         string
	FailSafe            string // "" when none
	Stale               []string
	PowerKW, CapKW      string
	BarPct              int    // power as a share of the cap, clamped to 0..100
	BarClass            string // ok, high, over
	Signals             []pageSignal
	Price               *pageSignal // the headline signal, if configured
	Fleets              []pageFleet
	Overrides           []pageOverride
	Decisions           []pageDecision
	MoreDecisions       int
	Policy              pagePolicy
	Journal             *JournalView
	JournalErrorSince   string
	MQTT                *pageMQTT // nil: no broker configured
	HA                  *pageHA   // nil: no high availability
	Waiting             []string  // what the controller waits for
	// HistoryJSON is GET /api/v1/history's answer, which ChartJS draws.
	HistoryJSON, ChartJS template.JS
}

// pageMQTT is the broker connection line.
type pageMQTT struct {
	Broker, Since, LastError string
	Connected                bool
	Attempts                 int
}

type pageSignal struct {
	Name, Topic, Value, Age, MaxAge, Fallback string
	Stale                                     bool
	// Status is "stale", "fresh", "fallback" (never received, fallback
	// used) or "missing" (neither).
	Status string
}

type pageFleet struct {
	Name, Kind, Driver string
	DriverUp           bool
	Observed           bool
	LastError          string
	Devices, Moving    int
	Failed             int
	PowerKW            string
	Modes              []pageMode
	MovingRows         []pageMoving // devices in transition, by the mode they head to
	Targets            int
	LastDecision       string
	LastCommands       []string // the fleet's own commands in its last decision
	Unusable           int
	Reasons            []pageReason // every reason, zeros included
	Drifted            int
	Transitions        []pageTransition
	Problems           []pageProblem // the first maxPageProblems
	ProblemsTotal      int
	MoreProblems       int
}

type pageReason struct {
	Reason string
	Count  int
}

type pageTransition struct {
	Kind     string // "off->mining"
	Count    int
	P50, P95 string
}

type pageProblem struct {
	Addr, Problem, Mode, Commanded, Since, Error string
}

// maxPageProblems bounds the problem devices listed per fleet on the page.
const maxPageProblems = 10

// pageMoving is a row of devices in transition towards one mode: "waking"
// towards a working mode, "stopping" towards off.
type pageMoving struct {
	Label   string // "waking → mining"
	Count   int
	PowerKW string
}

type pageMode struct {
	Mode           string
	Steady, Target int
	PowerKW        string
	TargetDiffers  bool
}

type pageOverride struct {
	ID, What, Until, Reason, Created string
}

type pageDecision struct {
	Time, Rules, Reason string
	Commands            []string
	Held                []string // not sent: the journal failed
}

type pagePolicy struct {
	Source, SHA256, Short, LoadedAt, Summary string
}

func newPageData(s *StateView, ready bool, reason, version string) *pageData {
	d := &pageData{
		Site:           s.Site,
		Version:        version,
		Time:           fmtTime(s.Time),
		RefreshSeconds: int(PageRefresh / time.Second),
		Ready:          ready,
		ReadyReason:    reason,
		Stale:          s.Stale,
		PowerKW:        fmtKW(s.PowerKW),
		CapKW:          fmtKW(s.SiteCapKW),
	}
	if !d.Ready && d.ReadyReason == "" {
		d.ReadyReason = "not ready"
	}
	if s.FailSafe != "" && s.FailSafe != "none" {
		d.FailSafe = s.FailSafe
	}
	d.BarPct, d.BarClass = bar(s.PowerKW, s.SiteCapKW)
	d.Waiting = s.Waiting
	if m := s.MQTT; m != nil {
		d.MQTT = &pageMQTT{Broker: m.Broker, Connected: m.Connected, Since: fmtTime(m.Since), Attempts: m.Attempts, LastError: m.LastError}
	}
	d.HA = newPageHA(s.HA)
	for _, sg := range s.Signals {
		d.Signals = append(d.Signals, newPageSignal(&sg))
	}
	for i := range d.Signals {
		if d.Signals[i].Name == switchd.SignalPrice.String() {
			d.Price = &d.Signals[i]
		}
	}
	for i := range s.Fleets {
		d.Fleets = append(d.Fleets, newPageFleet(&s.Fleets[i]))
	}
	for _, o := range s.Overrides {
		d.Overrides = append(d.Overrides, pageOverride{
			ID:      o.ID,
			What:    overrideWhat(&o),
			Until:   fmtTime(o.Until),
			Reason:  o.Reason,
			Created: fmtTime(o.CreatedAt),
		})
	}
	decs := s.Decisions
	if len(decs) > maxPageDecisions {
		d.MoreDecisions = len(decs) - maxPageDecisions
		decs = decs[:maxPageDecisions]
	}
	for i := range decs {
		d.Decisions = append(d.Decisions, newPageDecision(&decs[i]))
	}
	d.Journal = s.Journal
	if j := s.Journal; j != nil && j.ErrorSince != nil {
		d.JournalErrorSince = fmtTime(*j.ErrorSince)
	}
	d.Policy = pagePolicy{
		Source:   s.Policy.Source,
		SHA256:   s.Policy.SHA256,
		Short:    shortHash(s.Policy.SHA256),
		LoadedAt: fmtTime(s.Policy.LoadedAt),
		Summary:  s.Policy.Summary,
	}
	return d
}

// bar is the power bar's fill and colour: amber from 90 % of the cap, red
// at or over it.
func bar(powerKW, capKW float64) (pct int, class string) {
	if capKW <= 0 || math.IsNaN(powerKW) || math.IsNaN(capKW) {
		return 0, "ok"
	}
	r := powerKW / capKW
	switch {
	case r >= 1:
		class = "over"
	case r >= 0.9:
		class = "high"
	default:
		class = "ok"
	}
	return int(math.Round(100 * min(max(r, 0), 1))), class
}

func newPageSignal(sg *SignalView) pageSignal {
	p := pageSignal{
		Name:   sg.Name,
		Topic:  sg.Topic,
		Value:  "—",
		Age:    "—",
		MaxAge: sg.MaxAge,
		Stale:  sg.Stale,
	}
	if sg.Value != nil {
		p.Value = fmtSignal(sg.Name, *sg.Value)
	}
	if sg.AgeSeconds != nil {
		p.Age = fmtAge(*sg.AgeSeconds)
	} else if sg.Value == nil {
		p.Age = "never received"
	}
	if sg.Fallback != nil {
		p.Fallback = fmtSignal(sg.Name, *sg.Fallback)
	}
	switch {
	case sg.Stale:
		p.Status = "stale"
	case sg.Value != nil:
		p.Status = "fresh"
	case sg.Fallback != nil:
		p.Status = "fallback"
	default:
		p.Status = "missing"
	}
	return p
}

func newPageFleet(f *FleetView) pageFleet {
	p := pageFleet{
		Name:      f.Name,
		Kind:      f.Kind,
		Driver:    f.Driver,
		DriverUp:  f.DriverUp,
		LastError: f.LastError,
		Devices:   f.Devices,
		Moving:    f.Moving,
		Failed:    f.Failed,
		PowerKW:   fmtKW(f.PowerKW),
		Observed:  f.Observed,
		Unusable:  f.Unusable.Total,
		Drifted:   f.Drifted,
	}
	for _, r := range switchd.Problems {
		p.Reasons = append(p.Reasons, pageReason{Reason: r, Count: f.Unusable.ByReason[r]})
	}
	kinds := make([]string, 0, len(f.Transitions))
	for k := range f.Transitions {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		tv := f.Transitions[k]
		p.Transitions = append(p.Transitions, pageTransition{Kind: k, Count: tv.Count, P50: fmtSeconds(tv.P50Seconds), P95: fmtSeconds(tv.P95Seconds)})
	}
	p.ProblemsTotal = max(f.ProblemsTotal, len(f.Problems))
	for i, dv := range f.Problems {
		if i == maxPageProblems {
			break
		}
		pp := pageProblem{Addr: dv.Addr, Problem: dv.Problem, Mode: dv.Mode, Commanded: dv.Commanded, Since: "—", Error: dv.LastError}
		if !dv.Since.IsZero() {
			pp.Since = fmtTime(dv.Since)
		}
		if pp.Commanded == "" {
			pp.Commanded = "—"
		}
		if pp.Error == "" {
			pp.Error = "—"
		}
		p.Problems = append(p.Problems, pp)
	}
	p.MoreProblems = p.ProblemsTotal - len(p.Problems)
	for _, m := range modeOrder(f.Modes, f.Target, f.PowerByModeKW) {
		pm := pageMode{
			Mode:    m,
			Steady:  f.Modes[m],
			Target:  f.Target[m],
			PowerKW: fmtKW(f.PowerByModeKW[m]),
		}
		pm.TargetDiffers = pm.Steady != pm.Target
		p.Targets += pm.Target
		p.Modes = append(p.Modes, pm)
		if n := f.MovingTo[m]; n > 0 {
			verb := "waking"
			if m == switchd.ModeOff.String() {
				verb = "stopping"
			}
			p.MovingRows = append(p.MovingRows, pageMoving{Label: verb + " → " + m, Count: n, PowerKW: fmtKW(f.MovingPowerByModeKW[m])})
		}
	}
	if ld := f.LastDecision; ld != nil {
		p.LastDecision = fmtTime(ld.Time)
		if len(ld.Rules) > 0 {
			p.LastDecision += " (" + strings.Join(ld.Rules, ", ") + ")"
		}
		for _, c := range ld.Commands {
			p.LastCommands = append(p.LastCommands, fmt.Sprintf("%s → %s × %s", c.From, c.To, fmtInt(c.Count)))
		}
		for _, c := range ld.Held {
			p.LastCommands = append(p.LastCommands, fmt.Sprintf("held (journal failing): %s → %s × %s", c.From, c.To, fmtInt(c.Count)))
		}
	}
	return p
}

// modeOrder lists the modes present in any of the maps: the known modes in
// their usual order first, then any other name sorted.
func modeOrder(counts, target map[string]int, power map[string]float64) []string {
	seen := map[string]bool{}
	for k := range counts {
		seen[k] = true
	}
	for k := range target {
		seen[k] = true
	}
	for k := range power {
		seen[k] = true
	}
	var out []string
	for _, m := range switchd.Modes {
		if seen[m.String()] {
			out = append(out, m.String())
			delete(seen, m.String())
		}
	}
	var rest []string
	for k := range seen {
		rest = append(rest, k)
	}
	slices.Sort(rest)
	return append(out, rest...)
}

func overrideWhat(o *OverrideView) string {
	var parts []string
	if o.Fleet != "" {
		what := o.Fleet
		if o.Mode != "" {
			what += " forced " + o.Mode
		}
		parts = append(parts, what)
	}
	if o.SiteCapKW != nil {
		parts = append(parts, "site cap "+fmtKW(*o.SiteCapKW))
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, "; ")
}

func newPageDecision(dv *DecisionView) pageDecision {
	p := pageDecision{
		Time:   fmtTime(dv.Time),
		Rules:  strings.Join(dv.Rules, ", "),
		Reason: dv.Reason,
	}
	if p.Rules == "" {
		p.Rules = "—"
	}
	for _, c := range dv.Commands {
		p.Commands = append(p.Commands, fmt.Sprintf("%s: %s → %s × %s", c.Fleet, c.From, c.To, fmtInt(c.Count)))
	}
	for _, c := range dv.Held {
		p.Held = append(p.Held, fmt.Sprintf("%s: %s → %s × %s", c.Fleet, c.From, c.To, fmtInt(c.Count)))
	}
	return p
}

// signalUnits are the units of the known signals (see switchd.Signal).
var signalUnits = map[string]struct {
	unit     string
	decimals int
}{
	"price":           {"USD/MWh", 2},
	"grid_load":       {"MW", 0},
	"hashprice":       {"USD/PH/day", 2},
	"inference_price": {"USD/GPU-h", 2},
	"ai_demand":       {"GPUs", 0},
	"cp_alert":        {"probability", 2},
}

func fmtSignal(name string, v float64) string {
	u, ok := signalUnits[name]
	if !ok {
		return strconv.FormatFloat(v, 'g', 6, 64)
	}
	return fmtNum(v, u.decimals) + " " + u.unit
}

// fmtKW shows power in kW, or in MW from 10 MW on, where kW digits stop
// being readable at a glance.
func fmtKW(kw float64) string {
	if math.Abs(kw) >= 10_000 {
		return fmtNum(kw/1000, 2) + " MW"
	}
	return fmtNum(kw, 1) + " kW"
}

func fmtInt(n int) string { return fmtNum(float64(n), 0) }

// fmtNum formats with a fixed number of decimals and thousands separators.
func fmtNum(v float64, decimals int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	s := strconv.FormatFloat(math.Abs(v), 'f', decimals, 64)
	intPart, frac, hasFrac := strings.Cut(s, ".")
	var b strings.Builder
	if v < 0 && strings.Trim(s, "0.") != "" {
		b.WriteByte('-')
	}
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if hasFrac {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return b.String()
}

// fmtAge shows an age to the second below a minute and coarser above.
func fmtAge(seconds float64) string {
	if math.IsNaN(seconds) {
		return "—"
	}
	if seconds < 0 {
		return "in the future"
	}
	d := time.Duration(seconds * float64(time.Second)).Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd %02dh", int(d.Hours())/24, int(d.Hours())%24)
}

// fmtSeconds shows a measured duration: tenths of a second below a minute.
func fmtSeconds(sec float64) string {
	if math.IsNaN(sec) || math.IsInf(sec, 0) {
		return "—"
	}
	if sec < 60 {
		return strconv.FormatFloat(sec, 'f', 1, 64) + " s"
	}
	return fmtAge(sec)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.Format("2006-01-02 15:04:05 MST")
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{"n": fmtInt}).Parse(pageHTML))

const pageHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{{.RefreshSeconds}}">
<title>switchd · {{.Site}}</title>
<style>
body { font: 15px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em auto; max-width: 68em; padding: 0 1em; color: #1d232a; background: #fafbfc; }
h1 { font-size: 1.5em; margin: 0 0 .2em; }
h2 { font-size: 1.15em; margin: 1.6em 0 .4em; border-bottom: 1px solid #d6dbe0; padding-bottom: .2em; }
h3 { font-size: 1em; margin: 1.2em 0 .3em; }
.sub { color: #5b6570; font-size: .9em; }
table { border-collapse: collapse; margin: .3em 0; min-width: 26em; background: #fff; }
th, td { border: 1px solid #d6dbe0; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #eef1f4; font-weight: 600; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: 600; background: #f6f8fa; }
tr.stale td { background: #fdecea; }
.badge { display: inline-block; padding: .05em .5em; border-radius: .8em; font-size: .85em; font-weight: 600; }
.good { background: #d7f2dd; color: #10561f; }
.bad { background: #fbd9d5; color: #8c1d12; }
.warn { background: #fdf0c9; color: #6d5100; }
.muted { background: #e3e7eb; color: #4a535c; }
.bar { width: 30em; max-width: 100%; height: 1.2em; background: #e3e7eb; border-radius: .3em; overflow: hidden; }
.fill { height: 100%; }
.fill.ok { background: #3b8f4f; }
.fill.high { background: #d59a00; }
.fill.over { background: #c5321f; }
.diff { color: #0b5cad; font-weight: 600; }
code { font-size: .9em; }
ul.cmds { margin: 0; padding-left: 1.1em; }
footer { margin-top: 2em; color: #5b6570; font-size: .85em; }
#charts svg { display: block; max-width: 60em; margin: .4em 0; font-family: inherit; }
.legend { font-size: .85em; color: #4a535c; }
.legend span { margin-right: 1.2em; white-space: nowrap; }
.legend i { display: inline-block; width: .9em; height: .9em; margin-right: .3em; vertical-align: -.1em; }
.legend i.dash { border-top: 2px dashed #1d232a; height: 0; }
.legend i.mark { border-left: 2px dashed #c5321f; width: 0; }
#chart-errors { color: #8c1d12; }
</style>
</head>
<body>
<h1>switchd · {{.Site}}</h1>
<div class="sub">{{.Time}} · refreshes every {{.RefreshSeconds}} s{{if .Version}} · version {{.Version}}{{end}}</div>
<p>
{{if .Ready}}<span class="badge good">READY</span>{{if .ReadyReason}} {{.ReadyReason}}{{end}}{{else}}<span class="badge bad">NOT READY</span> {{.ReadyReason}}{{end}}
{{if .FailSafe}} <span class="badge bad">FAIL-SAFE: {{.FailSafe}}</span>{{end}}
{{if .Stale}} <span class="badge warn">stale: {{range $i, $s := .Stale}}{{if $i}}, {{end}}{{$s}}{{end}}</span>{{end}}
{{if .Overrides}} <span class="badge warn">{{len .Overrides}} override(s) in force</span>{{end}}
{{with .Journal}}{{if .Error}} <span class="badge bad">JOURNAL FAILING</span>{{end}}{{end}}
{{with .MQTT}}{{if not .Connected}} <span class="badge bad">MQTT BROKER DISCONNECTED</span>{{end}}{{end}}
</p>
{{with .HA}}<p id="ha">High availability: instance <code>{{.Instance}}</code> is <span class="badge {{if eq .Role "leader"}}good{{else}}warn{{end}}">{{.Role}}</span>, term {{.Term}}{{if .Leader}} · leader {{.Leader}}{{if .LeaderHTTP}} (<code>{{.LeaderHTTP}}</code>){{end}}{{end}}</p>{{end}}
{{with .MQTT}}<p id="mqtt">MQTT broker <code>{{.Broker}}</code>: {{if .Connected}}<span class="badge good">connected</span> since {{.Since}}{{else}}<span class="badge bad">disconnected</span> since {{.Since}}, {{.Attempts}} attempt(s){{if .LastError}} · {{.LastError}}{{end}}{{end}}</p>{{end}}
{{if .Waiting}}<p id="waiting">waiting for: {{range $i, $w := .Waiting}}{{if $i}}; {{end}}{{$w}}{{end}}</p>{{end}}

<h2>Power</h2>
{{with .Price}}<p>price <strong>{{.Value}}</strong>{{if ne .Age "—"}} · {{.Age}} old{{end}}{{if .Stale}} <span class="badge bad">STALE</span>{{end}}{{if eq .Status "fallback"}} · fallback {{.Fallback}}{{end}}</p>{{end}}
<p><strong>{{.PowerKW}}</strong> of {{.CapKW}} cap ({{.BarPct}} %)</p>
<div class="bar" title="{{.PowerKW}} of {{.CapKW}}"><div class="fill {{.BarClass}}" style="width: {{.BarPct}}%"></div></div>

<h2>Last 24 hours</h2>
<div id="charts"><p class="sub">the charts need JavaScript; the data is at <a href="/api/v1/history">/api/v1/history</a></p></div>
<pre id="chart-errors" hidden></pre>
<script type="application/json" id="history">{{.HistoryJSON}}</script>
<script>{{.ChartJS}}</script>

<h2>Signals</h2>
<table>
<tr><th>signal</th><th>value</th><th>age</th><th>max age</th><th>fallback</th><th>status</th></tr>
{{range .Signals}}<tr{{if .Stale}} class="stale"{{end}}>
<td>{{.Name}}{{if .Topic}}<br><code class="sub">{{.Topic}}</code>{{end}}</td>
<td class="n">{{.Value}}</td><td class="n">{{.Age}}</td><td class="n">{{.MaxAge}}</td><td class="n">{{.Fallback}}</td>
<td>{{if eq .Status "stale"}}<span class="badge bad">STALE</span>{{else if eq .Status "fresh"}}<span class="badge good">fresh</span>{{else if eq .Status "fallback"}}<span class="badge warn">fallback</span>{{else}}<span class="badge muted">not received</span>{{end}}</td>
</tr>
{{else}}<tr><td colspan="6">no signals configured</td></tr>
{{end}}</table>

<h2>Fleets</h2>
{{range .Fleets}}<h3>{{.Name}} <span class="sub">{{.Kind}} · {{n .Devices}} devices · driver {{.Driver}}</span>
{{if .DriverUp}}<span class="badge good">driver up</span>{{else}}<span class="badge bad">driver down</span>{{end}}</h3>
{{if .LastError}}<p class="sub">last error: {{.LastError}}</p>{{end}}
{{if not .Observed}}<p class="sub">not observed yet: counts appear after the first tick</p>{{end}}
<p class="sub">{{if .Unusable}}<span class="badge warn">{{n .Unusable}} unusable</span>{{else}}unusable: none{{end}} ·
{{range $i, $r := .Reasons}}{{if $i}} · {{end}}{{$r.Reason}} {{n $r.Count}}{{end}}{{if .Drifted}} · drifted (re-commanded) {{n .Drifted}}{{end}}</p>
<table>
<tr><th>mode</th><th>devices</th><th>target</th><th>power</th></tr>
{{range .Modes}}<tr><td>{{.Mode}}</td><td class="n">{{n .Steady}}</td><td class="n{{if .TargetDiffers}} diff{{end}}">{{n .Target}}</td><td class="n">{{.PowerKW}}</td></tr>
{{end}}{{range .MovingRows}}<tr><td>{{.Label}}</td><td class="n">{{n .Count}}</td><td></td><td class="n">{{.PowerKW}}</td></tr>
{{else}}<tr><td>moving</td><td class="n">0</td><td></td><td></td></tr>
{{end}}{{if .Failed}}<tr class="stale"><td>failed</td><td class="n">{{n .Failed}}</td><td></td><td></td></tr>
{{end}}<tr class="total"><td>total</td><td class="n">{{n .Devices}}</td><td class="n">{{n .Targets}}</td><td class="n">{{.PowerKW}}</td></tr>
</table>
{{if .Problems}}<table>
<tr><th>device</th><th>problem</th><th>seen in</th><th>commanded</th><th>since</th><th>error</th></tr>
{{range .Problems}}<tr><td><code>{{.Addr}}</code></td><td>{{.Problem}}</td><td>{{.Mode}}</td><td>{{.Commanded}}</td><td>{{.Since}}</td><td>{{.Error}}</td></tr>
{{end}}</table>
{{if .MoreProblems}}<p class="sub">and {{n .MoreProblems}} more: <a href="/api/v1/devices?fleet={{.Name}}&amp;problem=1">/api/v1/devices?fleet={{.Name}}&amp;problem=1</a></p>{{end}}
{{end}}{{if .Transitions}}<table>
<tr><th>transition</th><th>measured</th><th>p50</th><th>p95</th></tr>
{{range .Transitions}}<tr><td>{{.Kind}}</td><td class="n">{{n .Count}}</td><td class="n">{{.P50}}</td><td class="n">{{.P95}}</td></tr>
{{end}}</table>
{{end}}{{if .LastDecision}}<p class="sub">last change: {{.LastDecision}}{{range $i, $c := .LastCommands}}{{if $i}};{{else}}:{{end}} {{$c}}{{end}}</p>{{end}}
{{else}}<p>no fleets</p>
{{end}}

<h2>Overrides</h2>
{{if .Overrides}}<table>
<tr><th>id</th><th>what</th><th>until</th><th>reason</th><th>created</th></tr>
{{range .Overrides}}<tr><td><code>{{.ID}}</code></td><td>{{.What}}</td><td>{{.Until}}</td><td>{{.Reason}}</td><td>{{.Created}}</td></tr>
{{end}}</table>
{{else}}<p class="sub">none</p>
{{end}}

<h2>Last decisions</h2>
{{if .Decisions}}<table>
<tr><th>time</th><th>rules</th><th>reason</th><th>commands</th></tr>
{{range .Decisions}}<tr><td>{{.Time}}</td><td>{{.Rules}}</td><td>{{.Reason}}</td>
<td>{{if .Commands}}<ul class="cmds">{{range .Commands}}<li>{{.}}</li>{{end}}</ul>{{else}}—{{end}}{{if .Held}}<ul class="cmds">{{range .Held}}<li>held (journal failing): {{.}}</li>{{end}}</ul>{{end}}</td></tr>
{{end}}</table>
{{if .MoreDecisions}}<p class="sub">and {{.MoreDecisions}} earlier (see /api/v1/state)</p>{{end}}
{{else}}<p class="sub">none yet</p>
{{end}}

<h2>Policy</h2>
<table>
<tr><th>source</th><td><code>{{.Policy.Source}}</code></td></tr>
<tr><th>sha256</th><td><code title="{{.Policy.SHA256}}">{{.Policy.Short}}</code></td></tr>
<tr><th>loaded</th><td>{{.Policy.LoadedAt}}</td></tr>
{{if .Policy.Summary}}<tr><th>summary</th><td>{{.Policy.Summary}}</td></tr>{{end}}
</table>
{{with .Journal}}
<h2>Journal</h2>
<table>
<tr><th>path</th><td><code>{{.Path}}</code></td></tr>
<tr><th>head</th><td>seq {{.Seq}} · <code>{{.Hash}}</code></td></tr>
{{if .Error}}<tr class="stale"><th>error</th><td>{{.Error}} (since {{$.JournalErrorSince}}): starts are held back, sheds still go out</td></tr>{{end}}
</table>
{{end}}

<footer>JSON: <a href="/api/v1/state">/api/v1/state</a> · <a href="/api/v1/plan">/api/v1/plan</a> · <a href="/api/v1/history">/api/v1/history</a> · <code>/api/v1/devices?fleet=NAME</code> · metrics: <a href="/metrics">/metrics</a> · <a href="/readyz">/readyz</a></footer>
</body>
</html>
`
