package policies

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/switchd/switchd"
	"gopkg.in/yaml.v3"
)

// DefaultMaxAge returns how old each signal may get before it is stale when
// the site file does not say: prices and AI demand move within minutes, grid
// load is published hourly, hashprice daily.
func DefaultMaxAge() [switchd.NumSignals]time.Duration {
	var a [switchd.NumSignals]time.Duration
	a[switchd.SignalPrice] = 30 * time.Minute
	a[switchd.SignalGridLoad] = 2 * time.Hour
	a[switchd.SignalHashprice] = 48 * time.Hour
	a[switchd.SignalInferencePrice] = 2 * time.Hour
	a[switchd.SignalAIDemand] = 30 * time.Minute
	return a
}

// maxFleetDevices bounds a fleet's size: a site has up to ~100k devices, so a
// bigger count is a typo (an extra zero), not a fleet.
const maxFleetDevices = 1_000_000

// siteFile is the schema of switchd.yaml, as written.
type siteFile struct {
	Site    *siteSection              `yaml:"site"`
	Signals orderedMap[signalSection] `yaml:"signals"`
	Fleets  []fleetSection            `yaml:"fleets"`
}

type siteSection struct {
	Name       string   `yaml:"name"`
	Timezone   string   `yaml:"timezone"`
	PowerCapKW *float64 `yaml:"power_cap_kw"`
}

type signalSection struct {
	MaxAge *duration `yaml:"max_age"`
}

type fleetSection struct {
	Name          string                  `yaml:"name"`
	Kind          string                  `yaml:"kind"`
	Count         *int                    `yaml:"count"`
	Devices       []string                `yaml:"devices"`
	Driver        string                  `yaml:"driver"`
	Settings      yaml.Node               `yaml:"settings"`
	MinDwell      *duration               `yaml:"min_dwell"`
	SwitchCostUSD *float64                `yaml:"switch_cost_usd"`
	Modes         orderedMap[modeSection] `yaml:"modes"`
	Transitions   orderedMap[duration]    `yaml:"transitions"`
}

type modeSection struct {
	PowerKW     *float64 `yaml:"power_kw"`
	HashrateTHs *float64 `yaml:"hashrate_ths"`
	Revenue     string   `yaml:"revenue"`
	USDPerHour  *float64 `yaml:"usd_per_hour"`
}

// LoadSite reads, parses and validates a site file. The error joins every
// problem found, one per line as "<file>:<line>: <key path>: <message>".
func LoadSite(path string) (*Site, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load site: %w", err)
	}
	return ParseSite(path, data)
}

// ParseSite parses and validates a site file's contents; name is the file
// name used in messages and kept as Site.Source.
func ParseSite(name string, data []byte) (*Site, error) {
	l := newLoader(name)
	var f siteFile
	if !l.parse(data, &f) {
		return nil, l.err()
	}
	s := f.validate(l)
	if err := l.err(); err != nil {
		return nil, err
	}
	s.Source = name
	return s, nil
}

// validate checks the decoded file and builds the Site from it, reporting
// every problem to l. The Site is only meaningful when l has no errors.
func (f *siteFile) validate(l *loader) *Site {
	s := &Site{Location: time.UTC, MaxAge: DefaultMaxAge()}
	if f.Site == nil {
		l.errorf("site", "required")
	} else {
		f.Site.validate(l, s)
	}
	for _, e := range f.Signals {
		sig, err := switchd.ParseSignal(e.Key)
		if err != nil {
			l.errorf(e.Path, "%v", err)
			continue
		}
		p := joinPath(e.Path, "max_age")
		switch {
		case e.Value.MaxAge == nil:
			l.errorf(p, "required")
		case *e.Value.MaxAge <= 0:
			l.errorf(p, "must be positive (got %s)", fmtDuration(time.Duration(*e.Value.MaxAge)))
		default:
			s.MaxAge[sig] = time.Duration(*e.Value.MaxAge)
		}
	}
	if len(f.Fleets) == 0 {
		l.errorf("fleets", "at least one fleet is required")
	}
	first := map[string]string{} // fleet name → path of its first definition
	for i := range f.Fleets {
		p := indexPath("fleets", i)
		fl := f.Fleets[i].validate(l, p)
		if name := fl.Spec.Name; name != "" {
			if prev, dup := first[name]; dup {
				l.errorf(joinPath(p, "name"), "duplicate fleet name %q (also %s)", name, prev)
			} else {
				first[name] = p
			}
		}
		s.Fleets = append(s.Fleets, fl)
	}
	return s
}

func (h *siteSection) validate(l *loader, s *Site) {
	s.Name = h.Name
	if h.Name == "" {
		l.errorf("site.name", "required")
	}
	switch h.Timezone {
	case "":
		l.errorf("site.timezone", "required (an IANA name such as America/Chicago)")
	case "Local":
		// Local depends on the machine the daemon runs on; a site's
		// windows must not move when it is redeployed.
		l.errorf("site.timezone", "must be an IANA name such as America/Chicago, not Local")
	default:
		loc, err := time.LoadLocation(h.Timezone)
		if err != nil {
			l.errorf("site.timezone", "unknown time zone %q (want an IANA name such as America/Chicago)", h.Timezone)
		} else {
			s.Location = loc
		}
	}
	if h.PowerCapKW == nil {
		l.errorf("site.power_cap_kw", "required")
	} else if l.positive("site.power_cap_kw", *h.PowerCapKW) {
		s.PowerCapKW = *h.PowerCapKW
	}
}

func (f *fleetSection) validate(l *loader, path string) Fleet {
	fl := Fleet{Driver: f.Driver, Settings: f.Settings}
	spec := &fl.Spec
	spec.Name = f.Name
	switch {
	case f.Name == "":
		l.errorf(joinPath(path, "name"), "required")
	case !nameRE.MatchString(f.Name):
		l.errorf(joinPath(path, "name"), "%q: use lower-case letters, digits, _ and - only", f.Name)
	}

	if f.Kind == "" {
		l.errorf(joinPath(path, "kind"), "required (asic or gpu)")
	} else if err := spec.Kind.UnmarshalText([]byte(f.Kind)); err != nil {
		l.errorf(joinPath(path, "kind"), "%v", err)
	}

	f.validateCount(l, path, &fl)

	switch {
	case f.Driver == "":
		l.errorf(joinPath(path, "driver"), "required")
	case !driverRE.MatchString(f.Driver):
		l.errorf(joinPath(path, "driver"), "%q: use lower-case letters, digits and _ only", f.Driver)
	}

	if f.MinDwell != nil {
		if *f.MinDwell < 0 {
			l.errorf(joinPath(path, "min_dwell"), "must not be negative (got %s)", fmtDuration(time.Duration(*f.MinDwell)))
		} else {
			spec.MinDwell = time.Duration(*f.MinDwell)
		}
	}
	if f.SwitchCostUSD != nil && l.nonNegative(joinPath(path, "switch_cost_usd"), *f.SwitchCostUSD) {
		spec.SwitchCostUSD = *f.SwitchCostUSD
	}

	f.validateModes(l, path, spec)
	f.validateTransitions(l, path, spec)
	return fl
}

// driverRE is what driver names look like; whether the driver exists is
// the driver table's business, checked when the fleet is built.
var driverRE = regexp.MustCompile(`^[a-z0-9_]+$`)

func (f *fleetSection) validateCount(l *loader, path string, fl *Fleet) {
	countPath, devPath := joinPath(path, "count"), joinPath(path, "devices")
	hasCount, hasDevices := f.Count != nil, l.has(devPath)
	switch {
	case hasCount && hasDevices:
		l.errorf(devPath, "give either count or devices, not both")
	case !hasCount && !hasDevices:
		l.errorf(countPath, "required (or a devices list)")
	case hasCount:
		switch c := *f.Count; {
		case c <= 0:
			l.errorf(countPath, "must be positive (got %d)", c)
		case c > maxFleetDevices:
			l.errorf(countPath, "must be at most %d (got %d)", maxFleetDevices, c)
		default:
			fl.Spec.Count = c
		}
	default:
		if len(f.Devices) == 0 {
			l.errorf(devPath, "must list at least one device")
			return
		}
		if len(f.Devices) > maxFleetDevices {
			l.errorf(devPath, "must list at most %d devices (got %d)", maxFleetDevices, len(f.Devices))
			return
		}
		seen := make(map[string]int, len(f.Devices))
		for i, d := range f.Devices {
			p := indexPath(devPath, i)
			if d == "" {
				l.errorf(p, "must not be empty")
				continue
			}
			if j, dup := seen[d]; dup {
				l.errorf(p, "duplicate device %q (also %s)", d, indexPath(devPath, j))
				continue
			}
			seen[d] = i
		}
		fl.Devices = f.Devices
		fl.Spec.Count = len(f.Devices)
	}
}

func (f *fleetSection) validateModes(l *loader, path string, spec *switchd.FleetSpec) {
	modesPath := joinPath(path, "modes")
	for _, e := range f.Modes {
		m, err := switchd.ParseMode(e.Key)
		if err != nil {
			l.errorf(e.Path, "%v", err)
			continue
		}
		spec.Supports[m] = true
		spec.Modes[m] = e.Value.validate(l, e.Path, m)
	}
	switch {
	case !l.has(modesPath):
		l.errorf(modesPath, "required (off at least)")
	case !spec.Supports[switchd.ModeOff]:
		l.errorf(joinPath(modesPath, "off"), "required (every fleet must be able to go off)")
	}
	// Off is the safe state every reconciler may fall back to, supported
	// even when the file is wrong, so that a partial spec is never unsafe.
	spec.Supports[switchd.ModeOff] = true
}

func (ms *modeSection) validate(l *loader, path string, m switchd.Mode) switchd.ModeSpec {
	var spec switchd.ModeSpec
	if ms.PowerKW == nil {
		l.errorf(joinPath(path, "power_kw"), "required")
	} else if l.nonNegative(joinPath(path, "power_kw"), *ms.PowerKW) {
		spec.PowerKW = *ms.PowerKW
	}
	if ms.HashrateTHs != nil && l.nonNegative(joinPath(path, "hashrate_ths"), *ms.HashrateTHs) {
		spec.HashrateTHs = *ms.HashrateTHs
	}

	// Each mode earns what it naturally earns unless the file says otherwise.
	switch m {
	case switchd.ModeMining:
		spec.Revenue = switchd.RevenueHashprice
	case switchd.ModeInference:
		spec.Revenue = switchd.RevenueInference
	}
	revPath := joinPath(path, "revenue")
	if ms.Revenue != "" {
		r, ok := parseRevenue(ms.Revenue)
		if !ok {
			l.errorf(revPath, "unknown revenue %q (want hashprice, inference_price, fixed or none)", ms.Revenue)
			return spec
		}
		spec.Revenue = r
	}
	usdPath := joinPath(path, "usd_per_hour")
	switch spec.Revenue {
	case switchd.RevenueHashprice:
		switch {
		case ms.HashrateTHs == nil:
			l.errorf(joinPath(path, "hashrate_ths"), "required when revenue is hashprice (the default for mining)")
		case *ms.HashrateTHs == 0:
			l.errorf(joinPath(path, "hashrate_ths"), "must be positive when revenue is hashprice (the default for mining)")
		}
	case switchd.RevenueFixed:
		if ms.USDPerHour == nil {
			l.errorf(usdPath, "required with revenue: fixed")
		} else if l.nonNegative(usdPath, *ms.USDPerHour) {
			spec.FixedUSDPerHour = *ms.USDPerHour
		}
	}
	if ms.USDPerHour != nil && spec.Revenue != switchd.RevenueFixed {
		l.errorf(usdPath, "only used with revenue: fixed")
	}
	return spec
}

func parseRevenue(s string) (switchd.RevenueSource, bool) {
	for _, r := range []switchd.RevenueSource{switchd.RevenueNone, switchd.RevenueHashprice, switchd.RevenueInference, switchd.RevenueFixed} {
		if r.String() == s {
			return r, true
		}
	}
	return 0, false
}

func (f *fleetSection) validateTransitions(l *loader, path string, spec *switchd.FleetSpec) {
	var def time.Duration
	var set [switchd.NumModes][switchd.NumModes]bool
	for _, e := range f.Transitions {
		d := time.Duration(e.Value)
		if d < 0 {
			l.errorf(e.Path, "must not be negative (got %s)", fmtDuration(d))
			continue
		}
		if e.Key == "default" {
			def = d
			continue
		}
		fromS, toS, ok := strings.Cut(e.Key, "->")
		if !ok {
			l.errorf(e.Path, "want \"from->to\" (e.g. off->mining) or default")
			continue
		}
		from, ok1 := l.fleetMode(e.Path, strings.TrimSpace(fromS), spec)
		to, ok2 := l.fleetMode(e.Path, strings.TrimSpace(toS), spec)
		if !ok1 || !ok2 {
			continue
		}
		if from == to {
			l.errorf(e.Path, "a mode does not transition to itself")
			continue
		}
		spec.Transition[from][to] = d
		set[from][to] = true
	}
	for from := range spec.Transition {
		for to := range spec.Transition[from] {
			if from != to && !set[from][to] {
				spec.Transition[from][to] = def
			}
		}
	}
}

// fleetMode parses a mode name that must be one the fleet supports.
func (l *loader) fleetMode(path, name string, spec *switchd.FleetSpec) (switchd.Mode, bool) {
	m, err := switchd.ParseMode(name)
	if err != nil {
		l.errorf(path, "%v", err)
		return 0, false
	}
	if !spec.Supports[m] {
		l.errorf(path, "fleet %q has no %s mode", spec.Name, m)
		return 0, false
	}
	return m, true
}

// Summary describes the site in one line, for `switchd validate`.
func (s *Site) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "site %s (%s): cap %s kW", s.Name, s.Location, fmtFloat(s.PowerCapKW))
	var peakKW float64
	for i := range s.Fleets {
		f := &s.Fleets[i].Spec
		var top float64
		var modes []string
		for _, m := range switchd.Modes {
			if f.Supports[m] {
				modes = append(modes, m.String())
				top = max(top, f.Modes[m].PowerKW)
			}
		}
		peakKW += top * float64(f.Count)
		sep := ", "
		if i == 0 {
			sep = "; "
		}
		fmt.Fprintf(&b, "%s%s: %d %s [%s] via %s", sep, f.Name, f.Count, f.Kind, strings.Join(modes, " "), s.Fleets[i].Driver)
	}
	fmt.Fprintf(&b, "; flat out %.0f kW", peakKW)
	return b.String()
}
