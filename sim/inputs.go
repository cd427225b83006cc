package sim

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/internal/strictyaml"
	"github.com/switchd/switchd/policies"
	"github.com/switchd/switchd/sim/oracle"
	"github.com/switchd/switchd/trace"
)

// Inputs in the simulator: missing means missing.
//
// The controller is fed only fresh samples, each at the time it was taken,
// exactly as the replay publishes them live; a value a merged trace carries
// past its series' end or through a gap is never fed again. The controller
// then holds the last sample as live does: it is current until it is older
// than the signal's max_age, and then stale, so the policy's fail_safe
// applies. A stale signal without a fail_safe is withdrawn: live, the
// daemon would carry on with the last value in the hope that the feed comes
// back, but a replay knows it will not, and carrying a value for months
// invents data (a daily hashprice ending in April priced the rest of the
// year). Withdrawn, the signal is absent, as before its first sample: the
// policy's fallback applies, or none.
//
// Accounting uses the trace's measured values. In a gap (a span in which a
// signal has no sample of its own, see trace.Coverage) the value is
// imputed and reported: energy is priced at the last known price (or the
// policy's fallback before the first), revenue at the value the controller
// ran on (the held sample, then the fallback).

// DefaultMaxAgeCadences is how many of a signal's cadences a sample lasts
// when the site file sets no max_age: the derived max_age is the larger of
// the default and this many cadences, so an hourly price is stale after 2 h
// (a sample missed and the next late), not after the default 30 min.
const DefaultMaxAgeCadences = 2

// MissingMode is how the simulator treats a signal that a policy needs and
// the trace does not carry at all.
type MissingMode uint8

// Missing modes. The zero value refuses to run.
const (
	MissingRefuse MissingMode = iota
	// MissingFailSafe runs with the signal absent throughout, as live when
	// its feed never arrives: its fail-safe applies from the first tick.
	MissingFailSafe
	// MissingIgnore runs as if the policy did not read the signal: its
	// fail-safe is off, and rules on it never fire (a threshold on a
	// signal with no value does not hold).
	MissingIgnore
	// MissingValue runs with a constant value as the signal's fallback.
	MissingValue
)

// Missing is the treatment of one missing signal.
type Missing struct {
	Mode  MissingMode
	Value float64 // for MissingValue
}

// String is the flag form: fail-safe, ignore or the value.
func (m Missing) String() string {
	switch m.Mode {
	case MissingFailSafe:
		return "fail-safe"
	case MissingIgnore:
		return "ignore"
	case MissingValue:
		return strconv.FormatFloat(m.Value, 'g', -1, 64)
	}
	return "refuse"
}

// InputOptions say how to treat the trace's inputs beyond the site file.
type InputOptions struct {
	// Missing[s], when set, lets a policy that needs s run on a trace
	// without it; nil refuses with an error.
	Missing [switchd.NumSignals]*Missing
	// MaxAge[s] overrides the site's max_age for s; MaxAgeAuto[s] derives
	// it from the trace's cadence even where the site file sets it.
	MaxAge     [switchd.NumSignals]time.Duration
	MaxAgeAuto [switchd.NumSignals]bool
	// Resample, when positive, is the step the trace was resampled to
	// (trace.Resample), for the report.
	Resample time.Duration
	// SignalFiles[s] is the trace file that carries s, for messages
	// (SignalFiles fills it); empty names every file.
	SignalFiles [switchd.NumSignals]string
}

// ParseInputOptions parses the --max-age and --missing flag values:
// "auto" (every signal's max_age from the trace), "SIGNAL=DURATION" or
// "SIGNAL=auto"; and "SIGNAL=fail-safe|ignore|NUMBER".
func ParseInputOptions(maxAge, missing []string) (InputOptions, error) {
	var o InputOptions
	var errs []error
	for _, v := range maxAge {
		if v == "auto" {
			for s := range o.MaxAgeAuto {
				o.MaxAgeAuto[s] = true
			}
			continue
		}
		name, val, ok := strings.Cut(v, "=")
		sig, err := switchd.ParseSignal(name)
		if !ok || err != nil {
			errs = append(errs, fmt.Errorf("--max-age %q: want auto, SIGNAL=DURATION or SIGNAL=auto (SIGNAL one of %s)", v, signalList()))
			continue
		}
		if val == "auto" {
			o.MaxAgeAuto[sig] = true
			continue
		}
		d, err := time.ParseDuration(val)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("--max-age %q: %q is not a positive duration (like 2h)", v, val))
			continue
		}
		o.MaxAge[sig] = d
	}
	for _, v := range missing {
		name, val, ok := strings.Cut(v, "=")
		sig, err := switchd.ParseSignal(name)
		if !ok || err != nil {
			errs = append(errs, fmt.Errorf("--missing %q: want SIGNAL=fail-safe, SIGNAL=ignore or SIGNAL=VALUE (SIGNAL one of %s)", v, signalList()))
			continue
		}
		var m Missing
		switch val {
		case "fail-safe":
			m.Mode = MissingFailSafe
		case "ignore":
			m.Mode = MissingIgnore
		default:
			f, err := strconv.ParseFloat(val, 64)
			if err != nil || f != f {
				errs = append(errs, fmt.Errorf("--missing %q: %q is not fail-safe, ignore or a number", v, val))
				continue
			}
			m = Missing{Mode: MissingValue, Value: f}
		}
		o.Missing[sig] = &m
	}
	return o, errors.Join(errs...)
}

func signalList() string {
	names := make([]string, len(switchd.AllSignals))
	for i, s := range switchd.AllSignals {
		names[i] = s.String()
	}
	return strings.Join(names, ", ")
}

// SignalFiles returns, for each signal, the first of the trace files whose
// header has a column for it (the one that wins when merged); it reads the
// headers only.
func SignalFiles(paths []string) [switchd.NumSignals]string {
	var out [switchd.NumSignals]string
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		rd, err := trace.NewReader(f, p)
		if err == nil {
			for _, s := range rd.Signals() {
				if out[s] == "" {
					out[s] = p
				}
			}
		}
		f.Close()
	}
	return out
}

// inputPlan is what the simulator makes of the trace's inputs before it
// runs: the site with the max ages it uses, the policy with --missing
// applied, each signal's coverage, and the warnings.
type inputPlan struct {
	site       *config.Site
	pol        *policies.Policy
	cov        [switchd.NumSignals]trace.Coverage
	gaps       [switchd.NumSignals][]trace.Gap
	maxAgeFrom [switchd.NumSignals]string
	warnings   []string
	notices    []string
	opts       InputOptions
	files      []string
}

// planInputs checks the policy's inputs against the series and decides the
// max ages. It refuses (one error per missing input, joined) a policy that
// needs a signal the trace does not carry, unless opts.Missing says how to
// treat it.
func planInputs(site *config.Site, pol *policies.Policy, s *trace.Series, files []string, opts InputOptions) (*inputPlan, error) {
	in := &inputPlan{opts: opts, files: files}
	siteCopy := *site
	polCopy := *pol
	in.site, in.pol = &siteCopy, &polCopy
	defaults := config.DefaultMaxAge()
	var errs []error
	for _, sig := range switchd.AllSignals {
		c := s.Coverage(sig)
		in.cov[sig], in.gaps[sig] = c, c.Gaps
		switch {
		case opts.MaxAge[sig] > 0:
			in.site.MaxAge[sig], in.maxAgeFrom[sig] = opts.MaxAge[sig], "--max-age"
		case c.Samples > 0 && (opts.MaxAgeAuto[sig] || !site.MaxAgeSet[sig]):
			a := max(defaults[sig], DefaultMaxAgeCadences*c.Cadence)
			in.site.MaxAge[sig], in.maxAgeFrom[sig] = a, "default"
			if a != defaults[sig] {
				in.maxAgeFrom[sig] = fmt.Sprintf("%d × cadence", DefaultMaxAgeCadences)
			}
		case site.MaxAgeSet[sig]:
			in.maxAgeFrom[sig] = "site file"
		default:
			in.maxAgeFrom[sig] = "default"
		}
		if c.Samples > 0 {
			if n := coverageNotice(&c, in.fileOf(sig)); n != "" {
				in.notices = append(in.notices, n)
			}
			if opts.Missing[sig] != nil {
				in.warnings = append(in.warnings, fmt.Sprintf("--missing %s=%s ignored: the trace carries %s", sig, opts.Missing[sig], sig))
			}
			if w := maxAgeWarning(site, pol, sig, in.site.MaxAge[sig], in.maxAgeFrom[sig], c.Cadence, in.fileOf(sig)); w != "" {
				in.warnings = append(in.warnings, w)
			}
			continue
		}
		why := needs(pol, sig)
		if why == "" {
			continue
		}
		m := opts.Missing[sig]
		if m == nil {
			errs = append(errs, missingError(pol, sig, why, files))
			continue
		}
		switch m.Mode {
		case MissingIgnore:
			in.pol.FailSafe[sig] = policies.FailSafeNone
		case MissingValue:
			in.pol.Fallbacks[sig], in.pol.HasFallback[sig] = m.Value, true
		}
	}
	return in, errors.Join(errs...)
}

// coverageNotice says where a signal the trace carries has gaps, or "".
func coverageNotice(c *trace.Coverage, file string) string {
	if len(c.Gaps) == 0 {
		return ""
	}
	long := c.Gaps[0]
	for _, g := range c.Gaps[1:] {
		if g.Duration() > long.Duration() {
			long = g
		}
	}
	return fmt.Sprintf("%s (trace %s) has no sample for %s of the trace (coverage %.1f%%, %d %s; longest %s to %s, %s): missing there, not held",
		c.Signal, file, fmtHours(c.GapTime().Hours()), 100*c.Covered(), len(c.Gaps), plural(len(c.Gaps), "gap", "gaps"),
		long.Start.Format(time.RFC3339), long.End.Format(time.RFC3339), long.Kind)
}

// needs says why the policy needs sig from the trace ("" if it does not): a
// fail-safe with no fallback to stand in, or a rule that reads it.
func needs(pol *policies.Policy, sig switchd.Signal) string {
	var why []string
	if pol.FailSafe[sig] != policies.FailSafeNone && !pol.HasFallback[sig] {
		why = append(why, fmt.Sprintf("its fail_safe is %s", pol.FailSafe[sig]))
	}
	var rules []string
	for i := range pol.Rules {
		if pol.Rules[i].When.Reads()[sig] {
			rules = append(rules, strconv.Quote(pol.Rules[i].Name))
		}
	}
	if len(rules) > 0 {
		noun := "rule"
		if len(rules) > 1 {
			noun = "rules"
		}
		why = append(why, fmt.Sprintf("%s %s read it", noun, strings.Join(rules, ", ")))
		if len(rules) == 1 {
			why[len(why)-1] = strings.TrimSuffix(why[len(why)-1], " read it") + " reads it"
		}
	}
	return strings.Join(why, " and ")
}

// missingError is the refusal for a needed signal the trace lacks.
func missingError(pol *policies.Policy, sig switchd.Signal, why string, files []string) error {
	return fmt.Errorf("policy %s needs %s (%s), but trace %s has no %s column: "+
		"give a trace that carries it (--trace may be repeated to merge one in), or say how to run without it: "+
		"--missing %s=fail-safe (absent throughout: its fail-safe applies, as live when a feed never arrives), "+
		"--missing %s=ignore (as if the policy did not read it) or --missing %s=VALUE (a constant)",
		pol.Source, sig, why, strings.Join(files, ", "), trace.Column(sig), sig, sig, sig)
}

// maxAgeWarning warns when sig's max_age is shorter than its cadence in the
// trace: the signal would go stale between every two samples.
func maxAgeWarning(site *config.Site, pol *policies.Policy, sig switchd.Signal, maxAge time.Duration, from string, cadence time.Duration, file string) string {
	if maxAge <= 0 || maxAge >= cadence {
		return ""
	}
	what := "it is then missing (the policy's fallback applies, or none)"
	if pol != nil && pol.FailSafe[sig] != policies.FailSafeNone {
		what = fmt.Sprintf("its fail-safe (%s) then applies", pol.FailSafe[sig])
	}
	where := "signals." + sig.String() + ".max_age"
	if site.Source != "" {
		where = site.Source + ": " + where
	}
	return fmt.Sprintf("%s %s (%s) is shorter than the %s cadence %s of trace %s: %s goes stale %s after each sample and %s until the next; set it to at least %s, e.g. %s",
		where, strictyaml.FmtDuration(maxAge), from, sig, strictyaml.FmtDuration(cadence), file, sig, strictyaml.FmtDuration(maxAge), what,
		strictyaml.FmtDuration(cadence), strictyaml.FmtDuration(DefaultMaxAgeCadences*cadence))
}

// fileOf names the trace file that carries sig (every file if unknown).
func (in *inputPlan) fileOf(sig switchd.Signal) string {
	if f := in.opts.SignalFiles[sig]; f != "" {
		return f
	}
	return strings.Join(in.files, ", ")
}

// TraceWarnings returns what `switchd validate --trace` says about a site
// (and policy, which may be nil) against a trace: every signal whose
// max_age, as the site file sets it or by default, is shorter than its
// cadence in the trace (the live daemon does not derive max ages), and every
// signal the policy needs that the trace lacks.
func TraceWarnings(site *config.Site, pol *policies.Policy, s *trace.Series, files []string) []string {
	sf := SignalFiles(files)
	var out []string
	for _, sig := range switchd.AllSignals {
		c := s.Coverage(sig)
		if c.Samples == 0 {
			if pol == nil {
				continue
			}
			refuse := fmt.Sprintf("`switchd sim` refuses it without --missing %s=…", sig)
			if sig == switchd.SignalPrice && !pol.HasFallback[sig] {
				refuse = "`switchd sim` refuses it (energy cannot be costed without a price)"
			}
			if why := needs(pol, sig); why != "" {
				out = append(out, fmt.Sprintf("policy %s needs %s (%s), but trace %s has no %s column: %s",
					pol.Source, sig, why, strings.Join(files, ", "), trace.Column(sig), refuse))
			}
			continue
		}
		from := "default"
		if site.MaxAgeSet[sig] {
			from = "site file"
		}
		file := sf[sig]
		if file == "" {
			file = strings.Join(files, ", ")
		}
		if w := maxAgeWarning(site, pol, sig, site.MaxAge[sig], from, c.Cadence, file); w != "" {
			out = append(out, w)
		}
		if n := coverageNotice(&c, file); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// oracleIntervals turns a series into the oracle's intervals with the
// values the runner accounts at: measured where the trace has a sample;
// in a gap the price held from its last sample, other signals held while
// the controller would hold them (within max_age, or always with a
// fail-safe) and then absent, so the policy's fallback applies.
func (in *inputPlan) oracleIntervals(s *trace.Series) []oracle.Interval {
	out := make([]oracle.Interval, s.Len())
	var snap switchd.Snapshot
	var last [switchd.NumSignals]time.Time // the last sample's time
	var gi [switchd.NumSignals]int         // next gap to look at
	for _, sig := range switchd.AllSignals {
		last[sig] = s.FirstSampledAt(sig)
	}
	end := s.End()
	for i := range out {
		t := s.Time(i)
		next := end
		if i+1 < s.Len() {
			next = s.Time(i + 1)
		}
		for _, sig := range switchd.AllSignals {
			v, ok := s.Value(i, sig)
			if s.Fresh(i, sig) {
				last[sig] = t
			}
			if !ok {
				snap.Have[sig] = false
				continue
			}
			if inGap(in.gaps[sig], &gi[sig], t) && sig != switchd.SignalPrice &&
				in.pol.FailSafe[sig] == policies.FailSafeNone && in.site.MaxAge[sig] > 0 {
				// The runner withdraws the value at w (withdrawStale).
				w := last[sig].Add(in.site.MaxAge[sig] + time.Nanosecond)
				if !w.After(t) {
					snap.Have[sig] = false
					continue
				}
				if w.Before(next) && in.pol.HasFallback[sig] {
					// Withdrawn inside the interval: the bound takes the
					// better of the two (revenue grows with each signal).
					v = max(v, in.pol.Fallbacks[sig])
				}
			}
			snap.Set(switchd.Sample{Time: t, Signal: sig, Value: v})
		}
		out[i] = oracle.Interval{Hours: next.Sub(t).Hours(), Values: in.pol.Values(&snap)}
	}
	return out
}

// inGap reports whether t lies in one of gaps, advancing *k past the gaps
// that end at or before t (t must not decrease between calls).
func inGap(gaps []trace.Gap, k *int, t time.Time) bool {
	for *k < len(gaps) && !gaps[*k].End.After(t) {
		*k++
	}
	return *k < len(gaps) && gaps[*k].Contains(t)
}

// InputsReport is the report's account of the trace's inputs: how each
// signal was covered, how long the policy ran stale or in a fail-safe,
// and what was imputed where the trace had no value.
type InputsReport struct {
	// Resampled is the step the trace was resampled to, if it was.
	Resampled string        `json:"resampled_to,omitempty"`
	Signals   []InputReport `json:"signals"`
	// FailSafeHours is the time the policy spent in each fail-safe action.
	FailSafeHours map[string]float64 `json:"fail_safe_hours"`
	Imputed       ImputedReport      `json:"imputed"`
	Warnings      []string           `json:"warnings"`
	// Notices say where a signal has gaps (each is listed in Signals).
	Notices []string `json:"notices"`
}

// InputReport is one signal's coverage and what the policy saw of it.
type InputReport struct {
	Signal string `json:"signal"`
	// InTrace is false for a signal the trace has no sample of.
	InTrace     bool    `json:"in_trace"`
	Samples     int     `json:"samples"`
	Cadence     string  `json:"cadence,omitempty"`
	MaxAge      string  `json:"max_age"`
	MaxAgeFrom  string  `json:"max_age_from"` // site file, default, 2 × cadence, --max-age
	CoveragePct float64 `json:"coverage_pct"`
	GapHours    float64 `json:"gap_hours"`
	// Gaps lists every span without a sample of the signal's own.
	Gaps []GapReport `json:"gaps"`
	// StaleHours: the policy saw the signal older than max_age (or never
	// received, with a fail-safe and no fallback).
	StaleHours float64 `json:"stale_hours"`
	// FailSafe is the policy's fail-safe for the signal and FailSafeHours
	// how long it was in force because of this signal.
	FailSafe      string  `json:"fail_safe"`
	FailSafeHours float64 `json:"fail_safe_hours"`
	// FallbackHours: the signal was absent and the policy's fallback used.
	FallbackHours float64 `json:"fallback_hours"`
	// Missing is the --missing treatment of a signal the trace lacks.
	Missing string `json:"missing,omitempty"`
	// ImputedRevenueUSD is the policy's revenue priced on this signal
	// where the trace had no sample of it (held, or the fallback).
	ImputedRevenueUSD float64 `json:"imputed_revenue_usd,omitempty"`
}

// GapReport is one span without samples.
type GapReport struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Hours float64   `json:"hours"`
	Kind  string    `json:"kind"`
}

// ImputedReport is the policy's energy drawn while the trace had no price.
type ImputedReport struct {
	EnergyMWh float64 `json:"energy_mwh"`
	CostUSD   float64 `json:"cost_usd"`
	// HeldMWh were priced at the last known price, FallbackMWh at the
	// policy's price fallback (before the first price).
	HeldMWh     float64 `json:"held_price_mwh"`
	FallbackMWh float64 `json:"fallback_price_mwh"`
	Method      string  `json:"method"`
}

// report builds the inputs section from the policy run.
func (in *inputPlan) report(pol *Result) *InputsReport {
	r := &InputsReport{FailSafeHours: map[string]float64{
		policies.FailSafeCurtail.String(): pol.CurtailFailSafeHours,
		policies.FailSafeHold.String():    pol.HoldFailSafeHours,
	}, Warnings: append([]string{}, in.warnings...), Notices: append([]string{}, in.notices...)}
	if in.opts.Resample > 0 {
		r.Resampled = strictyaml.FmtDuration(in.opts.Resample)
	}
	for _, sig := range switchd.AllSignals {
		c := &in.cov[sig]
		ir := InputReport{
			Signal: sig.String(), InTrace: c.Samples > 0, Samples: c.Samples,
			MaxAge: strictyaml.FmtDuration(in.site.MaxAge[sig]), MaxAgeFrom: in.maxAgeFrom[sig],
			StaleHours: pol.StaleHours[sig], FailSafe: in.pol.FailSafe[sig].String(),
			FailSafeHours: pol.FailSafeHours[sig], FallbackHours: pol.FallbackHours[sig],
			ImputedRevenueUSD: pol.ImputedRevenueUSD[sig], Gaps: []GapReport{},
		}
		if m := in.opts.Missing[sig]; m != nil && c.Samples == 0 {
			ir.Missing = m.String()
		}
		if c.Samples > 0 {
			ir.Cadence = strictyaml.FmtDuration(c.Cadence)
			ir.CoveragePct = 100 * c.Covered()
			ir.GapHours = c.GapTime().Hours()
			for _, g := range c.Gaps {
				ir.Gaps = append(ir.Gaps, GapReport{Start: g.Start, End: g.End, Hours: g.Duration().Hours(), Kind: g.Kind.String()})
			}
		}
		// Signals neither carried nor used say nothing worth a line.
		if !ir.InTrace && ir.StaleHours == 0 && ir.FallbackHours == 0 && ir.Missing == "" && ir.ImputedRevenueUSD == 0 {
			continue
		}
		r.Signals = append(r.Signals, ir)
	}
	im := &r.Imputed
	im.HeldMWh, im.FallbackMWh = pol.ImputedHeldMWh, pol.ImputedFallbackMWh
	im.EnergyMWh, im.CostUSD = im.HeldMWh+im.FallbackMWh, pol.ImputedCostUSD
	im.Method = "none: the trace has a price throughout"
	if im.EnergyMWh > 0 || in.cov[switchd.SignalPrice].GapTime() > 0 {
		im.Method = "priced at the last known price; before the first price, at the policy's price fallback"
	}
	return r
}

// writeText writes the inputs section of the text report.
func (r *InputsReport) writeText(b *strings.Builder) {
	if r == nil {
		return
	}
	b.WriteString("\ninputs")
	if r.Resampled != "" {
		fmt.Fprintf(b, " (trace resampled to %s: interval-weighted means)", r.Resampled)
	}
	b.WriteString(" — a gap is a span with no sample of the signal's own; there it is missing, never held:\n")
	const maxGaps = 10
	for _, s := range r.Signals {
		if !s.InTrace {
			fmt.Fprintf(b, "  %-15s not in the trace", s.Signal)
			if s.Missing != "" {
				fmt.Fprintf(b, " (--missing %s=%s)", s.Signal, s.Missing)
			}
		} else {
			fmt.Fprintf(b, "  %-15s cadence %s, max_age %s (%s), coverage %.1f%%", s.Signal, s.Cadence, s.MaxAge, s.MaxAgeFrom, s.CoveragePct)
			if n := len(s.Gaps); n > 0 {
				fmt.Fprintf(b, ", %d %s totalling %.1f h", n, plural(n, "gap", "gaps"), s.GapHours)
			} else {
				b.WriteString(", no gaps")
			}
		}
		if s.StaleHours > 0 {
			fmt.Fprintf(b, "; stale %.1f h", s.StaleHours)
		}
		if s.FailSafeHours > 0 {
			fmt.Fprintf(b, "; fail-safe %s %.1f h", s.FailSafe, s.FailSafeHours)
		}
		if s.FallbackHours > 0 {
			fmt.Fprintf(b, "; policy fallback %.1f h", s.FallbackHours)
		}
		if s.ImputedRevenueUSD != 0 {
			fmt.Fprintf(b, "; revenue on values not in the trace %.0f USD", s.ImputedRevenueUSD)
		}
		b.WriteString("\n")
		for i, g := range s.Gaps {
			if i == maxGaps {
				fmt.Fprintf(b, "    … and %d more (all in --format json)\n", len(s.Gaps)-maxGaps)
				break
			}
			fmt.Fprintf(b, "    gap %s to %s (%s, %s)\n", g.Start.Format(time.RFC3339), g.End.Format(time.RFC3339), fmtHours(g.Hours), g.Kind)
		}
	}
	fmt.Fprintf(b, "  policy time in fail-safe: curtail %.1f h, hold %.1f h\n",
		r.FailSafeHours[policies.FailSafeCurtail.String()], r.FailSafeHours[policies.FailSafeHold.String()])
	im := &r.Imputed
	fmt.Fprintf(b, "  imputed energy (drawn while the trace had no price): %.1f MWh, %.0f USD", im.EnergyMWh, im.CostUSD)
	if im.EnergyMWh > 0 {
		fmt.Fprintf(b, " (%.1f MWh at the last known price, %.1f MWh at the policy's fallback)", im.HeldMWh, im.FallbackMWh)
	}
	b.WriteString("\n")
	for _, w := range r.Warnings {
		fmt.Fprintf(b, "warning: %s\n", w)
	}
}

func fmtHours(h float64) string {
	if h >= 48 {
		return fmt.Sprintf("%.1f d", h/24)
	}
	return fmt.Sprintf("%.2f h", h)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// writeInputNotices writes the runs' input warnings and notices to w, once
// each (runs of several policies share most of them).
func writeInputNotices(w io.Writer, outs []Outcome) {
	seen := map[string]bool{}
	for _, kind := range []string{"warning", "notice"} {
		for _, o := range outs {
			if o.Report == nil || o.Inputs == nil {
				continue
			}
			lines := o.Inputs.Warnings
			if kind == "notice" {
				lines = o.Inputs.Notices
			}
			for _, l := range lines {
				if !seen[l] {
					seen[l] = true
					fmt.Fprintf(w, "%s: %s\n", kind, l)
				}
			}
		}
	}
}
