package policies

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/internal/strictyaml"
	"gopkg.in/yaml.v3"
)

// maxWindow bounds a schedule window's duration. Longer spans are better
// written as a cron spec over months, and the cron library only looks five
// years ahead, which a window must stay well inside.
const maxWindow = 366 * 24 * time.Hour

// cronReference is where the "does this spec ever fire" check starts. Any
// fixed instant works: the library looks five years ahead, long enough for
// every valid calendar spec (29 February included) to fire.
var cronReference = time.Date(2024, time.January, 1, 0, 0, 0, 0, time.UTC)

// policyFile is the schema of a policy file, as written.
type policyFile struct {
	Fallbacks           *fallbackSection              `yaml:"fallbacks"`
	HysteresisUSDPerMWh *float64                      `yaml:"hysteresis_usd_mwh"`
	RampUpKWPerMin      *ramp                         `yaml:"ramp_up_kw_per_min"`
	Stagger             *staggerSection               `yaml:"stagger"`
	FailSafe            strictyaml.OrderedMap[string] `yaml:"fail_safe"`
	Rules               []ruleSection                 `yaml:"rules"`
	AIWarm              *aiWarmSection                `yaml:"ai_warm"`
}

type fallbackSection struct {
	HashpriceUSDPerPHDay   *float64 `yaml:"hashprice_usd_ph_day"`
	InferenceUSDPerGPUHour *float64 `yaml:"inference_usd_gpu_hour"`
	AIDemandGPUs           *float64 `yaml:"ai_demand_gpus"`
	PriceUSDPerMWh         *float64 `yaml:"price_usd_mwh"`
	GridLoadMW             *float64 `yaml:"grid_load_mw"`
}

type staggerSection struct {
	Batch    *int                 `yaml:"batch"`
	Interval *strictyaml.Duration `yaml:"interval"`
}

type ruleSection struct {
	Name string       `yaml:"name"`
	When *whenSection `yaml:"when"`
	Then *thenSection `yaml:"then"`
}

type whenSection struct {
	Schedule            *string              `yaml:"schedule"`
	For                 *strictyaml.Duration `yaml:"for"`
	GridLoadAboveMW     *float64             `yaml:"grid_load_above_mw"`
	NearMonthPeakPct    *float64             `yaml:"grid_load_above_month_peak_pct"`
	CPAlertAbove        *float64             `yaml:"cp_alert_above"`
	PriceAboveUSDPerMWh *float64             `yaml:"price_above_usd_mwh"`
	PriceBelowUSDPerMWh *float64             `yaml:"price_below_usd_mwh"`
	SignalStale         strictyaml.NameList  `yaml:"signal_stale"`
}

type thenSection struct {
	SiteCapKW  *float64                                          `yaml:"site_cap_kw"`
	Forbid     strictyaml.OrderedMap[strictyaml.NameList]        `yaml:"forbid"`
	Force      strictyaml.OrderedMap[string]                     `yaml:"force"`
	MinDevices strictyaml.OrderedMap[strictyaml.OrderedMap[int]] `yaml:"min_devices"`
	MaxDevices strictyaml.OrderedMap[strictyaml.OrderedMap[int]] `yaml:"max_devices"`
	Discourage strictyaml.OrderedMap[strictyaml.NameList]        `yaml:"discourage"`
}

// LoadPolicy reads, parses and validates a policy file against the site it
// will run on. The error joins every problem found, one per line as
// "<file>:<line>: <key path>: <message>".
func LoadPolicy(path string, site *config.Site) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load policy: %w", err)
	}
	return ParsePolicy(path, data, site)
}

// ParsePolicy parses and validates a policy file's contents against site;
// name is the file name used in messages and kept as Policy.Source. The
// policy's per-fleet effects are indexed like site.Fleets, so it must only
// be evaluated with that site.
func ParsePolicy(name string, data []byte, site *config.Site) (*Policy, error) {
	if site == nil {
		return nil, fmt.Errorf("policy %s: no site to check it against", name)
	}
	l := strictyaml.NewLoader(name)
	var f policyFile
	if !l.Parse(data, &f) {
		return nil, l.Err()
	}
	p := f.validate(l, site)
	if err := l.Err(); err != nil {
		return nil, err
	}
	p.Source = name
	return p, nil
}

// validate checks the decoded file against site and builds the Policy,
// reporting every problem to l.
func (f *policyFile) validate(l *strictyaml.Loader, site *config.Site) *Policy {
	p := &Policy{}
	if !l.Has("fallbacks") && !l.Has("hysteresis_usd_mwh") && !l.Has("ramp_up_kw_per_min") && !l.Has("stagger") && !l.Has("fail_safe") && !l.Has("rules") {
		// An empty file is a wrong path or a file truncated by an editor,
		// not a policy: it would run the site on economics alone.
		l.Errorf("", "empty policy: give rules (and fallbacks, hysteresis_usd_mwh, ...)")
		return p
	}
	if f.Fallbacks != nil {
		f.Fallbacks.validate(l, p, site)
	}
	if v := f.HysteresisUSDPerMWh; v != nil && l.NonNegative("hysteresis_usd_mwh", *v) {
		// Hysteresis is in USD/MWh of price: one larger than the whole
		// plausible price range would keep every device where it is.
		lo, hi := site.SignalRange(switchd.SignalPrice)
		if *v > hi-lo {
			l.Errorf("hysteresis_usd_mwh", "must be at most %s USD/MWh, the plausible price range (signals.price min %s to max %s; got %s)",
				strictyaml.FmtFloat(hi-lo), strictyaml.FmtFloat(lo), strictyaml.FmtFloat(hi), strictyaml.FmtFloat(*v))
		} else {
			p.HysteresisUSDPerMWh = *v
		}
	}
	if r := f.RampUpKWPerMin; r != nil {
		switch {
		case r.unlimited:
			p.RampUpKWPerMin = 0
		case r.kw <= 0:
			// 0 used to mean unlimited, silently: say it in words.
			l.Errorf("ramp_up_kw_per_min", "must be positive (got %s); write unlimited for no limit", strictyaml.FmtFloat(r.kw))
		case r.kw > config.MaxPowerKW:
			l.Errorf("ramp_up_kw_per_min", "must be at most %s kW per minute (got %s); write unlimited for no limit", strictyaml.FmtFloat(config.MaxPowerKW), strictyaml.FmtFloat(r.kw))
		default:
			p.RampUpKWPerMin = r.kw
		}
	}
	if st := f.Stagger; st != nil {
		switch {
		case st.Batch == nil:
			l.Errorf("stagger.batch", "required")
		case *st.Batch < 1:
			l.Errorf("stagger.batch", "must be at least 1 (got %d)", *st.Batch)
		default:
			p.Stagger.Batch = *st.Batch
		}
		switch {
		case st.Interval == nil:
			l.Errorf("stagger.interval", "required")
		case *st.Interval <= 0:
			l.Errorf("stagger.interval", "must be positive (got %s)", strictyaml.FmtDuration(time.Duration(*st.Interval)))
		case time.Duration(*st.Interval) > config.MaxStaggerInterval:
			l.Errorf("stagger.interval", "must be at most %s (got %s)", strictyaml.FmtDuration(config.MaxStaggerInterval), strictyaml.FmtDuration(time.Duration(*st.Interval)))
		default:
			p.Stagger.Interval = time.Duration(*st.Interval)
		}
	}
	if f.AIWarm != nil {
		f.AIWarm.validate(l, p)
	}
	for _, e := range f.FailSafe {
		sig, err := switchd.ParseSignal(e.Key)
		if err != nil {
			l.Errorf(e.Path, "%v", err)
			continue
		}
		fs, ok := parseFailSafe(e.Value)
		if !ok {
			l.Errorf(e.Path, "unknown fail-safe %q (want none, hold or curtail)", e.Value)
			continue
		}
		p.FailSafe[sig] = fs
	}
	if l.Has("rules") && len(f.Rules) == 0 {
		l.Errorf("rules", "empty: give at least one rule, or delete the key")
	}
	first := map[string]string{} // rule name → path of its first definition
	for i := range f.Rules {
		path := strictyaml.IndexPath("rules", i)
		r := f.Rules[i].validate(l, path, site)
		if r.Name != "" {
			if prev, dup := first[r.Name]; dup {
				l.Errorf(strictyaml.JoinPath(path, "name"), "duplicate rule name %q (also %s)", r.Name, prev)
			} else {
				first[r.Name] = path
			}
		}
		p.Rules = append(p.Rules, r)
	}
	return p
}

func (fb *fallbackSection) validate(l *strictyaml.Loader, p *Policy, site *config.Site) {
	for _, x := range []struct {
		v     *float64
		sig   switchd.Signal
		key   string
		minus bool // whether a negative value makes sense
	}{
		{fb.PriceUSDPerMWh, switchd.SignalPrice, "price_usd_mwh", true},
		{fb.GridLoadMW, switchd.SignalGridLoad, "grid_load_mw", false},
		{fb.HashpriceUSDPerPHDay, switchd.SignalHashprice, "hashprice_usd_ph_day", false},
		{fb.InferenceUSDPerGPUHour, switchd.SignalInferencePrice, "inference_usd_gpu_hour", false},
		{fb.AIDemandGPUs, switchd.SignalAIDemand, "ai_demand_gpus", false},
	} {
		if x.v == nil || (!x.minus && !l.NonNegative(strictyaml.JoinPath("fallbacks", x.key), *x.v)) {
			continue
		}
		if gpus := site.InferenceGPUs(); x.sig == switchd.SignalAIDemand && *x.v > float64(gpus) {
			// As the live signal is bounded (signals.ai_demand.max): a
			// demand the site cannot serve is a slip, not a fallback.
			l.Errorf(strictyaml.JoinPath("fallbacks", x.key), "must be at most %d, the devices that can serve inference (got %s)", gpus, strictyaml.FmtFloat(*x.v))
			continue
		}
		p.Fallbacks[x.sig] = *x.v
		p.HasFallback[x.sig] = true
	}
}

func parseFailSafe(s string) (FailSafe, bool) {
	for _, f := range []FailSafe{FailSafeNone, FailSafeHold, FailSafeCurtail} {
		if f.String() == s {
			return f, true
		}
	}
	return 0, false
}

func (rs *ruleSection) validate(l *strictyaml.Loader, path string, site *config.Site) Rule {
	r := Rule{Name: rs.Name}
	if rs.Name == "" {
		l.Errorf(strictyaml.JoinPath(path, "name"), "required")
	}
	whenPath := strictyaml.JoinPath(path, "when")
	switch {
	case rs.When != nil && !l.HasKeys(whenPath):
		// An empty condition always holds: usually the conditions were
		// deleted or commented out, and the rule now fires for good.
		l.Errorf(whenPath, "empty: an empty condition always holds; give a condition, or delete when for a rule meant to hold always")
	case rs.When != nil:
		r.When = rs.When.validate(l, whenPath, site)
	case l.Has(whenPath):
		l.Errorf(whenPath, "empty: an empty condition always holds; give a condition, or delete when for a rule meant to hold always")
	}
	thenPath := strictyaml.JoinPath(path, "then")
	if rs.Then == nil {
		l.Errorf(thenPath, "required (a rule must impose at least one effect)")
	} else {
		r.Then = rs.Then.validate(l, thenPath, site)
	}
	return r
}

func (w *whenSection) validate(l *strictyaml.Loader, path string, site *config.Site) Condition {
	var c Condition
	schedPath, forPath := strictyaml.JoinPath(path, "schedule"), strictyaml.JoinPath(path, "for")
	switch {
	case w.Schedule != nil && w.For == nil:
		l.Errorf(forPath, "required with schedule (how long the window stays open)")
	case w.Schedule == nil && w.For != nil:
		l.Errorf(forPath, "only used with schedule")
	case w.Schedule != nil:
		sched, err := parseSchedule(*w.Schedule, siteLocation(site))
		if err != nil {
			l.Errorf(schedPath, "%v", err)
		}
		d := time.Duration(*w.For)
		switch {
		case d <= 0:
			l.Errorf(forPath, "must be positive (got %s)", strictyaml.FmtDuration(d))
		case d > maxWindow:
			l.Errorf(forPath, "must be at most %s (got %s)", strictyaml.FmtDuration(maxWindow), strictyaml.FmtDuration(d))
		case err == nil:
			c.Window = &Window{Spec: *w.Schedule, Schedule: sched, For: d}
		}
	}
	c.PriceAbove = w.PriceAboveUSDPerMWh
	c.PriceBelow = w.PriceBelowUSDPerMWh
	if a, b := c.PriceAbove, c.PriceBelow; a != nil && b != nil && *a >= *b {
		l.Errorf(path, "price_above_usd_mwh (%s) is not below price_below_usd_mwh (%s): the rule can never fire",
			strictyaml.FmtFloat(*a), strictyaml.FmtFloat(*b))
	}
	if v := w.GridLoadAboveMW; v != nil && l.NonNegative(strictyaml.JoinPath(path, "grid_load_above_mw"), *v) {
		c.GridLoadAbove = v
	}
	if v := w.NearMonthPeakPct; v != nil {
		// Below half the month's peak is no peak; above 100% never fires.
		if *v < 50 || *v > 100 {
			l.Errorf(strictyaml.JoinPath(path, "grid_load_above_month_peak_pct"), "must be a percentage from 50 to 100 (got %s)", strictyaml.FmtFloat(*v))
		} else {
			c.NearMonthPeakPct = v
		}
	}
	if v := w.CPAlertAbove; v != nil {
		// A probability: at 1 or above the rule could never fire, and a
		// value above 1 is a percentage written for a fraction.
		if *v < 0 || *v >= 1 {
			l.Errorf(strictyaml.JoinPath(path, "cp_alert_above"), "must be a probability from 0 to below 1 (got %s)", strictyaml.FmtFloat(*v))
		} else {
			c.CPAlertAbove = v
		}
	}
	stalePath := strictyaml.JoinPath(path, "signal_stale")
	if w.SignalStale != nil && len(w.SignalStale) == 0 {
		l.Errorf(stalePath, "must name at least one signal")
	}
	var seen [switchd.NumSignals]bool
	for i, name := range w.SignalStale {
		sig, err := switchd.ParseSignal(name)
		if err != nil {
			l.Errorf(strictyaml.IndexPath(stalePath, i), "%v", err)
			continue
		}
		if !seen[sig] {
			seen[sig] = true
			c.SignalStale = append(c.SignalStale, sig)
		}
	}
	return c
}

// parseSchedule parses a standard 5-field cron spec, optionally prefixed
// with CRON_TZ= or TZ=, and checks that it fires at all.
func parseSchedule(spec string, loc *time.Location) (sched cron.Schedule, err error) {
	spec = strings.TrimSpace(spec)
	if tz, ok := cutTZ(spec); ok {
		name, rest, _ := strings.Cut(tz, " ")
		if name == "" || strings.TrimSpace(rest) == "" {
			return nil, fmt.Errorf("bad cron spec %q: want CRON_TZ=<zone> followed by 5 fields", spec)
		}
		if name == "Local" {
			return nil, fmt.Errorf("bad cron spec %q: name a zone such as America/Chicago, not Local", spec)
		}
	}
	if _, rest, _ := strings.Cut(spec, "@"); strings.HasPrefix(strings.TrimSpace(rest), "every") {
		// @every fires relative to when it was started, not on the
		// calendar, so it cannot define windows.
		return nil, fmt.Errorf("bad cron spec %q: @every is not a calendar schedule; use 5 fields", spec)
	}
	defer func() {
		// The cron parser has panicked on malformed specs in the past
		// (a CRON_TZ= prefix with nothing after it); never let input do that.
		if r := recover(); r != nil {
			sched, err = nil, fmt.Errorf("bad cron spec %q", spec)
		}
	}()
	sched, err = cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("bad cron spec %q: %w", spec, err)
	}
	if sched.Next(cronReference.In(loc)).IsZero() {
		return nil, fmt.Errorf("cron spec %q never fires", spec)
	}
	return sched, nil
}

// cutTZ returns what follows a CRON_TZ= or TZ= prefix.
func cutTZ(spec string) (string, bool) {
	if s, ok := strings.CutPrefix(spec, "CRON_TZ="); ok {
		return s, true
	}
	return strings.CutPrefix(spec, "TZ=")
}

func (t *thenSection) validate(l *strictyaml.Loader, path string, site *config.Site) Effect {
	var e Effect
	if t.SiteCapKW == nil && len(t.Forbid) == 0 && len(t.Force) == 0 && len(t.MinDevices) == 0 && len(t.MaxDevices) == 0 &&
		len(t.Discourage) == 0 {
		l.Errorf(path, "at least one effect is required (site_cap_kw, forbid, force, min_devices, max_devices or discourage)")
		return e
	}
	if p := strictyaml.JoinPath(path, "site_cap_kw"); t.SiteCapKW != nil && l.NonNegative(p, *t.SiteCapKW) {
		if v := *t.SiteCapKW; v > site.PowerCapKW {
			// A rule narrows; above the interconnect cap it would do
			// nothing, and the author meant something else.
			l.Errorf(p, "must be at most the interconnect cap, site.power_cap_kw %s (got %s)", strictyaml.FmtFloat(site.PowerCapKW), strictyaml.FmtFloat(v))
		} else {
			e.SiteCapKW = t.SiteCapKW
		}
	}
	if len(t.Forbid)+len(t.Force)+len(t.MinDevices)+len(t.MaxDevices)+len(t.Discourage) == 0 {
		return e
	}
	e.Fleets = make([]FleetConstraint, len(site.Fleets))
	for i := range e.Fleets {
		e.Fleets[i] = NoFleetConstraint()
	}
	forced := make([]string, len(site.Fleets)) // path of the force entry per fleet
	for _, f := range t.Force {
		i, spec, ok := ruleFleet(l, f.Path, f.Key, site)
		if !ok {
			continue
		}
		m, ok := config.FleetMode(l, f.Path, f.Value, spec)
		if !ok {
			continue
		}
		// Forced: every device in m. Off stays allowed, because a binding
		// cap must still be able to shed them.
		c := &e.Fleets[i]
		c.Min[m] = spec.Count
		for _, o := range switchd.Modes[:switchd.BaseModes] {
			if o != m && o != switchd.ModeOff {
				c.Forbid[o] = true
			}
		}
		for _, o := range switchd.Modes[switchd.BaseModes:] {
			c.Forbid[o] = o != m && spec.Supports[o]
		}
		forced[i] = f.Path
	}
	conflict := func(p string, i int) bool {
		if forced[i] != "" {
			l.Errorf(p, "fleet %q is forced by %s; drop one of the two", site.Fleets[i].Spec.Name, forced[i])
			return true
		}
		return false
	}
	for _, f := range t.Forbid {
		i, spec, ok := ruleFleet(l, f.Path, f.Key, site)
		if !ok || conflict(f.Path, i) {
			continue
		}
		if len(f.Value) == 0 {
			l.Errorf(f.Path, "must list at least one mode")
		}
		for j, name := range f.Value {
			p := strictyaml.IndexPath(f.Path, j)
			m, ok := config.FleetMode(l, p, name, spec)
			if !ok {
				continue
			}
			if m == switchd.ModeOff {
				l.Errorf(p, "off cannot be forbidden: it is where devices go when nothing else is allowed")
				continue
			}
			e.Fleets[i].Forbid[m] = true
		}
	}
	for _, f := range t.Discourage {
		i, spec, ok := ruleFleet(l, f.Path, f.Key, site)
		if !ok || conflict(f.Path, i) {
			continue
		}
		if len(f.Value) == 0 {
			l.Errorf(f.Path, "must list at least one mode")
		}
		for j, name := range f.Value {
			p := strictyaml.IndexPath(f.Path, j)
			m, ok := config.FleetMode(l, p, name, spec)
			if !ok {
				continue
			}
			switch {
			case m == switchd.ModeOff:
				l.Errorf(p, "off earns nothing already: discourage the modes devices should leave")
			case e.Fleets[i].Forbid[m]:
				l.Errorf(p, "%s is also forbidden by this rule", m)
			default:
				e.Fleets[i].Discourage[m] = true
			}
		}
	}
	for _, f := range t.MinDevices {
		i, spec, ok := ruleFleet(l, f.Path, f.Key, site)
		if !ok || conflict(f.Path, i) {
			continue
		}
		for _, mn := range f.Value {
			m, ok := config.FleetMode(l, mn.Path, mn.Key, spec)
			if !ok || !l.NonNegative(mn.Path, float64(mn.Value)) {
				continue
			}
			switch {
			case mn.Value > spec.Count:
				l.Errorf(mn.Path, "%d is more than the fleet's %d devices", mn.Value, spec.Count)
			case e.Fleets[i].Forbid[m] && mn.Value > 0:
				l.Errorf(mn.Path, "%s is also forbidden by this rule", m)
			default:
				e.Fleets[i].Min[m] = mn.Value
			}
		}
	}
	for _, f := range t.MaxDevices {
		i, spec, ok := ruleFleet(l, f.Path, f.Key, site)
		if !ok || conflict(f.Path, i) {
			continue
		}
		for _, mx := range f.Value {
			m, ok := config.FleetMode(l, mx.Path, mx.Key, spec)
			if !ok || !l.NonNegative(mx.Path, float64(mx.Value)) {
				continue
			}
			if mn := e.Fleets[i].Min[m]; mx.Value < mn {
				l.Errorf(mx.Path, "%d is below this rule's min_devices of %d", mx.Value, mn)
				continue
			}
			e.Fleets[i].Max[m] = mx.Value
		}
	}
	return e
}

// ruleFleet resolves a fleet named in a rule.
func ruleFleet(l *strictyaml.Loader, path, name string, site *config.Site) (int, *switchd.FleetSpec, bool) {
	i := site.FleetIndex(name)
	if i < 0 {
		names := make([]string, len(site.Fleets))
		for j := range site.Fleets {
			names[j] = site.Fleets[j].Spec.Name
		}
		l.Errorf(path, "unknown fleet %q (site has %s)", name, strings.Join(names, ", "))
		return 0, nil, false
	}
	return i, &site.Fleets[i].Spec, true
}

// Summary describes the policy in one line, for `switchd validate`.
func (p *Policy) Summary() string {
	var b strings.Builder
	b.WriteString("policy")
	if p.Source != "" {
		b.WriteString(" " + p.Source)
	}
	names := make([]string, len(p.Rules))
	for i := range p.Rules {
		names[i] = p.Rules[i].Name
	}
	fmt.Fprintf(&b, ": %d %s", len(p.Rules), plural(len(p.Rules), "rule", "rules"))
	if len(names) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(names, ", "))
	}
	var parts []string
	for _, s := range switchd.AllSignals {
		if p.HasFallback[s] {
			parts = append(parts, fmt.Sprintf("%s=%s", s, strictyaml.FmtFloat(p.Fallbacks[s])))
		}
	}
	if len(parts) > 0 {
		fmt.Fprintf(&b, "; fallbacks %s", strings.Join(parts, " "))
	}
	fmt.Fprintf(&b, "; hysteresis %s USD/MWh", strictyaml.FmtFloat(p.HysteresisUSDPerMWh))
	if p.RampUpKWPerMin > 0 {
		fmt.Fprintf(&b, "; ramp up %s kW/min", strictyaml.FmtFloat(p.RampUpKWPerMin))
	} else {
		b.WriteString("; ramp unlimited")
	}
	if p.Stagger.Batch > 0 {
		fmt.Fprintf(&b, "; stagger %d every %s", p.Stagger.Batch, p.Stagger.Interval)
	}
	if w := p.AIWarm; w.Hold > 0 || w.HeadroomGPUs > 0 {
		fmt.Fprintf(&b, "; ai_warm hold %s headroom %d GPUs", w.Hold, w.HeadroomGPUs)
	}
	parts = parts[:0]
	for _, s := range switchd.AllSignals {
		if p.FailSafe[s] != FailSafeNone {
			parts = append(parts, fmt.Sprintf("%s=%s", s, p.FailSafe[s]))
		}
	}
	if len(parts) > 0 {
		fmt.Fprintf(&b, "; fail-safe %s", strings.Join(parts, " "))
	}
	return b.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// ramp is ramp_up_kw_per_min as written: a positive number of kW per
// minute, or the word unlimited.
type ramp struct {
	kw        float64
	unlimited bool
}

// DecodeNode implements strictyaml.NodeDecoder.
func (r *ramp) DecodeNode(l *strictyaml.Loader, n *yaml.Node, path string) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		if n.Value == "unlimited" {
			r.unlimited = true
			return
		}
		l.Failf(path, n.Line, "must be a number of kW per minute, or unlimited (got %s)", strictyaml.Describe(n))
		return
	}
	if f, ok := l.Number(n, path); ok {
		r.kw = f
	}
}
