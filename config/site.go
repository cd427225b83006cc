package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/internal/strictyaml"
	"gopkg.in/yaml.v3"
)

// DefaultMaxAge returns how old each signal may get before it is stale when
// the site file does not say: prices and AI demand move within minutes, grid
// load is published hourly, hashprice daily, and a coincident-peak alert
// is a forecast for the day, published a few times a day at most.
func DefaultMaxAge() [switchd.NumSignals]time.Duration {
	var a [switchd.NumSignals]time.Duration
	a[switchd.SignalPrice] = 30 * time.Minute
	a[switchd.SignalGridLoad] = 2 * time.Hour
	a[switchd.SignalHashprice] = 48 * time.Hour
	a[switchd.SignalInferencePrice] = 2 * time.Hour
	a[switchd.SignalAIDemand] = 30 * time.Minute
	a[switchd.SignalCPAlert] = 24 * time.Hour
	return a
}

// maxFleetDevices bounds a fleet's size: a site has up to ~100k devices, so a
// bigger count is a typo (an extra zero), not a fleet.
const maxFleetDevices = 1_000_000

// siteFile is the schema of switchd.yaml, as written. Everything but site,
// signals.*.max_age and fleets is only used by `switchd run`.
type siteFile struct {
	Site    *siteSection                         `yaml:"site"`
	Policy  string                               `yaml:"policy"`
	Tick    *strictyaml.Duration                 `yaml:"tick"`
	MQTT    *mqttSection                         `yaml:"mqtt"`
	Signals strictyaml.OrderedMap[signalSection] `yaml:"signals"`
	HTTP    *httpSection                         `yaml:"http"`
	Journal *journalSection                      `yaml:"journal"`
	Demo    *demoSection                         `yaml:"demo"`
	Fleets  []fleetSection                       `yaml:"fleets"`
	// CoincidentPeak is the site's coincident-peak charge (cp.go).
	CoincidentPeak *cpSection `yaml:"coincident_peak"`
	// DR is the demand-response section (dr.go).
	DR *drSection `yaml:"demand_response"`
	// HA is the high-availability section (ha.go).
	HA *haSection `yaml:"ha"`
}

type siteSection struct {
	Name       string   `yaml:"name"`
	Timezone   string   `yaml:"timezone"`
	PowerCapKW *float64 `yaml:"power_cap_kw"`
}

type signalSection struct {
	MaxAge    *strictyaml.Duration `yaml:"max_age"`
	Topic     string               `yaml:"topic"`
	Min       *float64             `yaml:"min"`
	Max       *float64             `yaml:"max"`
	MaxFuture *strictyaml.Duration `yaml:"max_future"`
	// PublisherKey is the publisher's Ed25519 public key (publisherkey.go).
	PublisherKey string `yaml:"publisher_key"`
}

type fleetSection struct {
	Name          string                                     `yaml:"name"`
	Kind          string                                     `yaml:"kind"`
	Count         *int                                       `yaml:"count"`
	Devices       []string                                   `yaml:"devices"`
	DevicesFile   string                                     `yaml:"devices_file"`
	Driver        string                                     `yaml:"driver"`
	Settings      yaml.Node                                  `yaml:"settings"`
	MinDwell      *strictyaml.Duration                       `yaml:"min_dwell"`
	SwitchCostUSD *float64                                   `yaml:"switch_cost_usd"`
	Modes         strictyaml.OrderedMap[modeSection]         `yaml:"modes"`
	Transitions   strictyaml.OrderedMap[strictyaml.Duration] `yaml:"transitions"`
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
// name used in messages and kept as Site.Source, and relative paths in the
// file resolve against its directory. Beyond data, it reads what the daemon
// keys name and the daemon needs settled before it starts: the MQTT
// password (from its file or environment variable) and whether the TLS
// files and the demo trace exist.
func ParseSite(name string, data []byte) (*Site, error) {
	l := strictyaml.NewLoader(name)
	var f siteFile
	if !l.Parse(data, &f) {
		return nil, l.Err()
	}
	s := f.validate(l, filepath.Dir(name))
	if err := l.Err(); err != nil {
		return nil, err
	}
	s.Source = name
	return s, nil
}

// validate checks the decoded file and builds the Site from it, reporting
// every problem to l. Relative paths in the file resolve against dir, the
// site file's directory. The Site is only meaningful when l has no errors.
func (f *siteFile) validate(l *strictyaml.Loader, dir string) *Site {
	s := &Site{Location: time.UTC, MaxAge: DefaultMaxAge()}
	s.Daemon.Signals = DefaultSignals()
	if f.Site == nil {
		l.Errorf("site", "required")
	} else {
		f.Site.validate(l, s)
	}
	f.validateDaemon(l, s, dir)
	if len(f.Fleets) == 0 {
		l.Errorf("fleets", "at least one fleet is required")
	}
	first := map[string]string{} // fleet name → path of its first definition
	for i := range f.Fleets {
		p := strictyaml.IndexPath("fleets", i)
		fl := f.Fleets[i].validate(l, p, dir)
		if name := fl.Spec.Name; name != "" {
			if prev, dup := first[name]; dup {
				l.Errorf(strictyaml.JoinPath(p, "name"), "duplicate fleet name %q (also %s)", name, prev)
			} else {
				first[name] = p
			}
		}
		s.Fleets = append(s.Fleets, fl)
	}
	switch {
	case f.CoincidentPeak != nil:
		s.CoincidentPeak = f.CoincidentPeak.validate(l, "coincident_peak")
	case l.Has("coincident_peak"):
		// An empty section would silently charge nothing.
		l.Errorf("coincident_peak", "empty: give a scheme (4cp_15m or 12cp_30m) and rate_usd_per_kw_year, or delete the section")
	}
	f.validateDR(l, s)
	f.validateDRKey(l, s, dir)
	f.validateHA(l, s, dir)
	checkFakeDevices(l, s)
	f.boundAIDemand(l, s)
	s.Warnings = append(httpWarnings(l, s), embeddedWarnings(l, s)...)
	return s
}

// atMostKW reports a power figure above MaxPowerKW at path.
func atMostKW(l *strictyaml.Loader, path string, kw float64) bool {
	if kw > MaxPowerKW {
		l.Errorf(path, "must be at most %s kW (10 GW; got %s): a unit mistake?", strictyaml.FmtFloat(MaxPowerKW), strictyaml.FmtFloat(kw))
		return false
	}
	return true
}

// boundAIDemand bounds the ai_demand signal by the devices that can serve
// inference: a demand for more GPUs than the site has is a unit or feed
// mistake, so its plausible maximum defaults to that count (MQTT payloads
// above it are rejected) and a max set above it is an error.
func (f *siteFile) boundAIDemand(l *strictyaml.Loader, s *Site) {
	n := s.InferenceGPUs()
	if n == 0 {
		return // no fleet serves inference: the signal is never used
	}
	c := &s.Daemon.Signals[switchd.SignalAIDemand]
	for _, e := range f.Signals {
		if e.Key != switchd.SignalAIDemand.String() {
			continue
		}
		if e.Value.Max != nil {
			if *e.Value.Max > float64(n) {
				l.Errorf(strictyaml.JoinPath(e.Path, "max"), "must be at most %d, the devices that can serve inference (got %s)", n, strictyaml.FmtFloat(*e.Value.Max))
			}
			return
		}
		if e.Value.Min != nil && *e.Value.Min >= float64(n) {
			l.Errorf(strictyaml.JoinPath(e.Path, "min"), "must be less than %d, the devices that can serve inference (got %s)", n, strictyaml.FmtFloat(*e.Value.Min))
			return
		}
	}
	c.Max = float64(n)
}

// checkFakeDevices: fakes stand in for hardware on this machine only, so
// with demo.fake_devices every device address must be on loopback and
// nothing is ever sent to a real device by a demo.
func checkFakeDevices(l *strictyaml.Loader, s *Site) {
	if s.Daemon.Demo == nil || !s.Daemon.Demo.FakeDevices {
		return
	}
	for i := range s.Fleets {
		for j, dev := range s.Fleets[i].Devices {
			host := dev.Addr
			if h, _, err := net.SplitHostPort(dev.Addr); err == nil {
				host = h
			}
			if ip := net.ParseIP(host); !strings.EqualFold(host, "localhost") && (ip == nil || !ip.IsLoopback()) {
				l.Errorf(strictyaml.IndexPath(strictyaml.JoinPath(strictyaml.IndexPath("fleets", i), "devices"), j), "%q is not a loopback address: with demo.fake_devices every device must be on 127.0.0.0/8", dev.Addr)
				break
			}
		}
	}
}

func (h *siteSection) validate(l *strictyaml.Loader, s *Site) {
	s.Name = h.Name
	if h.Name == "" {
		l.Errorf("site.name", "required")
	}
	switch h.Timezone {
	case "":
		l.Errorf("site.timezone", "required (an IANA name such as America/Chicago)")
	case "Local":
		// Local depends on the machine the daemon runs on; a site's
		// windows must not move when it is redeployed.
		l.Errorf("site.timezone", "must be an IANA name such as America/Chicago, not Local")
	default:
		loc, err := time.LoadLocation(h.Timezone)
		if err != nil {
			l.Errorf("site.timezone", "unknown time zone %q (want an IANA name such as America/Chicago)", h.Timezone)
		} else {
			s.Location = loc
		}
	}
	if h.PowerCapKW == nil {
		l.Errorf("site.power_cap_kw", "required")
	} else if l.Positive("site.power_cap_kw", *h.PowerCapKW) && atMostKW(l, "site.power_cap_kw", *h.PowerCapKW) {
		s.PowerCapKW = *h.PowerCapKW
	}
}

func (f *fleetSection) validate(l *strictyaml.Loader, path, dir string) Fleet {
	fl := Fleet{Driver: f.Driver, Settings: f.Settings}
	spec := &fl.Spec
	spec.Name = f.Name
	switch {
	case f.Name == "":
		l.Errorf(strictyaml.JoinPath(path, "name"), "required")
	case !nameRE.MatchString(f.Name):
		l.Errorf(strictyaml.JoinPath(path, "name"), "%q: use lower-case letters, digits, _ and - only", f.Name)
	}

	if f.Kind == "" {
		l.Errorf(strictyaml.JoinPath(path, "kind"), "required (asic or gpu)")
	} else if err := spec.Kind.UnmarshalText([]byte(f.Kind)); err != nil {
		l.Errorf(strictyaml.JoinPath(path, "kind"), "%v", err)
	}

	f.validateCount(l, path, &fl, dir)

	fl.DriverLine = l.Line(strictyaml.JoinPath(path, "driver"))
	switch {
	case f.Driver == "":
		l.Errorf(strictyaml.JoinPath(path, "driver"), "required")
	case !driverRE.MatchString(f.Driver):
		l.Errorf(strictyaml.JoinPath(path, "driver"), "%q: use lower-case letters, digits and _ only", f.Driver)
	}

	if f.MinDwell != nil {
		if *f.MinDwell < 0 {
			l.Errorf(strictyaml.JoinPath(path, "min_dwell"), "must not be negative (got %s)", strictyaml.FmtDuration(time.Duration(*f.MinDwell)))
		} else if d := time.Duration(*f.MinDwell); d > MaxMinDwell {
			l.Errorf(strictyaml.JoinPath(path, "min_dwell"), "must be at most %s (got %s): a fleet held longer cannot follow the grid", strictyaml.FmtDuration(MaxMinDwell), strictyaml.FmtDuration(d))
		} else {
			spec.MinDwell = time.Duration(*f.MinDwell)
		}
	}
	if f.SwitchCostUSD != nil && l.NonNegative(strictyaml.JoinPath(path, "switch_cost_usd"), *f.SwitchCostUSD) {
		spec.SwitchCostUSD = *f.SwitchCostUSD
	}

	f.validateModes(l, path, spec)
	f.validateTransitions(l, path, spec)
	return fl
}

// nameRE is what fleet names must look like: they appear in metrics labels,
// MQTT topics and file names.
var nameRE = regexp.MustCompile(`^[a-z0-9_-]+$`)

// driverRE is what driver names look like; whether the driver exists is
// the driver table's business, checked when the fleet is built.
var driverRE = regexp.MustCompile(`^[a-z0-9_]+$`)

func (f *fleetSection) validateCount(l *strictyaml.Loader, path string, fl *Fleet, dir string) {
	countPath, devPath, filePath := strictyaml.JoinPath(path, "count"), strictyaml.JoinPath(path, "devices"), strictyaml.JoinPath(path, "devices_file")
	hasCount, hasDevices, hasFile := f.Count != nil, l.Has(devPath), f.DevicesFile != ""
	given := 0
	for _, b := range []bool{hasCount, hasDevices, hasFile} {
		if b {
			given++
		}
	}
	switch {
	case given > 1:
		l.Errorf(devPath, "give one of count, devices or devices_file")
	case given == 0:
		l.Errorf(countPath, "required (or a devices list, or devices_file)")
	case hasCount:
		switch c := *f.Count; {
		case c <= 0:
			l.Errorf(countPath, "must be positive (got %d)", c)
		case c > maxFleetDevices:
			l.Errorf(countPath, "must be at most %d (got %d)", maxFleetDevices, c)
		default:
			fl.Spec.Count = c
		}
	case hasFile:
		devs, err := readDevicesFile(resolvePath(dir, f.DevicesFile))
		if err != nil {
			// One report per problem in the list, so each prints on a
			// line of its own.
			errs := []error{err}
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				errs = j.Unwrap()
			}
			for _, e := range errs {
				l.Errorf(filePath, "%v", e)
			}
			return
		}
		fl.Devices = devs
		fl.Spec.Count = len(devs)
	default:
		if len(f.Devices) == 0 {
			l.Errorf(devPath, "must list at least one device")
			return
		}
		if len(f.Devices) > maxFleetDevices {
			l.Errorf(devPath, "must list at most %d devices (got %d)", maxFleetDevices, len(f.Devices))
			return
		}
		seen := make(map[string]int, len(f.Devices))
		for i, d := range f.Devices {
			p := strictyaml.IndexPath(devPath, i)
			if d == "" {
				l.Errorf(p, "must not be empty")
				continue
			}
			if j, dup := seen[d]; dup {
				l.Errorf(p, "duplicate device %q (also %s)", d, strictyaml.IndexPath(devPath, j))
				continue
			}
			seen[d] = i
			fl.Devices = append(fl.Devices, switchd.Device{Addr: d})
		}
		fl.Spec.Count = len(f.Devices)
	}
}

func (f *fleetSection) validateModes(l *strictyaml.Loader, path string, spec *switchd.FleetSpec) {
	modesPath := strictyaml.JoinPath(path, "modes")
	for _, e := range f.Modes {
		m, err := switchd.ParseMode(e.Key)
		if err != nil {
			l.Errorf(e.Path, "%v", err)
			continue
		}
		spec.Supports[m] = true
		spec.Modes[m] = e.Value.validate(l, e.Path, m)
	}
	switch {
	case !l.Has(modesPath):
		l.Errorf(modesPath, "required (off at least)")
	case !spec.Supports[switchd.ModeOff]:
		l.Errorf(strictyaml.JoinPath(modesPath, "off"), "required (every fleet must be able to go off)")
	}
	// Off is the safe state every reconciler may fall back to, supported
	// even when the file is wrong, so that a partial spec is never unsafe.
	spec.Supports[switchd.ModeOff] = true
}

func (ms *modeSection) validate(l *strictyaml.Loader, path string, m switchd.Mode) switchd.ModeSpec {
	var spec switchd.ModeSpec
	if ms.PowerKW == nil {
		l.Errorf(strictyaml.JoinPath(path, "power_kw"), "required")
	} else if p := strictyaml.JoinPath(path, "power_kw"); l.NonNegative(p, *ms.PowerKW) && atMostKW(l, p, *ms.PowerKW) {
		spec.PowerKW = *ms.PowerKW
	}
	if ms.HashrateTHs != nil && l.NonNegative(strictyaml.JoinPath(path, "hashrate_ths"), *ms.HashrateTHs) {
		spec.HashrateTHs = *ms.HashrateTHs
	}

	// Each mode earns what it naturally earns unless the file says otherwise.
	switch m {
	case switchd.ModeMining, switchd.ModeMiningReduced:
		spec.Revenue = switchd.RevenueHashprice
	case switchd.ModeInference:
		spec.Revenue = switchd.RevenueInference
	}
	revPath := strictyaml.JoinPath(path, "revenue")
	if ms.Revenue != "" {
		r, ok := parseRevenue(ms.Revenue)
		if !ok {
			l.Errorf(revPath, "unknown revenue %q (want hashprice, inference_price, fixed or none)", ms.Revenue)
			return spec
		}
		spec.Revenue = r
	}
	usdPath := strictyaml.JoinPath(path, "usd_per_hour")
	switch spec.Revenue {
	case switchd.RevenueHashprice:
		switch {
		case ms.HashrateTHs == nil:
			l.Errorf(strictyaml.JoinPath(path, "hashrate_ths"), "required when revenue is hashprice (the default for mining)")
		case *ms.HashrateTHs == 0:
			l.Errorf(strictyaml.JoinPath(path, "hashrate_ths"), "must be positive when revenue is hashprice (the default for mining)")
		}
	case switchd.RevenueFixed:
		if ms.USDPerHour == nil {
			l.Errorf(usdPath, "required with revenue: fixed")
		} else if l.NonNegative(usdPath, *ms.USDPerHour) {
			spec.FixedUSDPerHour = *ms.USDPerHour
		}
	}
	if ms.USDPerHour != nil && spec.Revenue != switchd.RevenueFixed {
		l.Errorf(usdPath, "only used with revenue: fixed")
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

func (f *fleetSection) validateTransitions(l *strictyaml.Loader, path string, spec *switchd.FleetSpec) {
	var def time.Duration
	var set [switchd.NumModes][switchd.NumModes]bool
	for _, e := range f.Transitions {
		d := time.Duration(e.Value)
		if d < 0 {
			l.Errorf(e.Path, "must not be negative (got %s)", strictyaml.FmtDuration(d))
			continue
		}
		if d > MaxTransition {
			l.Errorf(e.Path, "must be at most %s (got %s): a device that takes longer is broken, not slow", strictyaml.FmtDuration(MaxTransition), strictyaml.FmtDuration(d))
			continue
		}
		if e.Key == "default" {
			def = d
			continue
		}
		fromS, toS, ok := strings.Cut(e.Key, "->")
		if !ok {
			l.Errorf(e.Path, "want \"from->to\" (e.g. off->mining) or default")
			continue
		}
		from, ok1 := FleetMode(l, e.Path, strings.TrimSpace(fromS), spec)
		to, ok2 := FleetMode(l, e.Path, strings.TrimSpace(toS), spec)
		if !ok1 || !ok2 {
			continue
		}
		if from == to {
			l.Errorf(e.Path, "a mode does not transition to itself")
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

// FleetMode parses a mode name that must be one the fleet supports,
// reporting a problem at path to l. The policy parser uses it too.
func FleetMode(l *strictyaml.Loader, path, name string, spec *switchd.FleetSpec) (switchd.Mode, bool) {
	m, err := switchd.ParseMode(name)
	if err != nil {
		l.Errorf(path, "%v", err)
		return 0, false
	}
	if !spec.Supports[m] {
		l.Errorf(path, "fleet %q has no %s mode", spec.Name, m)
		return 0, false
	}
	return m, true
}

// Summary describes the site in one line, for `switchd validate`.
func (s *Site) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "site %s (%s): cap %s kW", s.Name, s.Location, strictyaml.FmtFloat(s.PowerCapKW))
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
	if s.CoincidentPeak != nil {
		fmt.Fprintf(&b, "; coincident peaks %s", s.CoincidentPeak)
	}
	return b.String()
}

// Daemon settings. Only `switchd run` uses them, but they are checked as
// strictly as the rest, so that `switchd validate` catches a typo before a
// restart does.

// DefaultTick is how often `switchd run` runs the controller when no signal
// changes: dwell, ramp and stagger timers are checked that often.
const DefaultTick = 10 * time.Second

// DefaultMaxFuture is how far ahead of the local clock a signal's timestamp
// may be when the site file does not say: clocks drift by seconds, but a
// sample from further ahead is a time zone or unit mistake.
const DefaultMaxFuture = time.Minute

// DefaultSignals returns each signal's settings when the site file does not
// say: the default max ages, a minute of clock skew, and ranges wide enough
// for any real market but not for a unit mistake (kW for MW, cents for
// dollars, a negative count). Topics are left empty: they depend on the mqtt
// section.
func DefaultSignals() [switchd.NumSignals]SignalConfig {
	age := DefaultMaxAge()
	var c [switchd.NumSignals]SignalConfig
	for _, sig := range switchd.AllSignals {
		c[sig] = SignalConfig{MaxAge: age[sig], MaxFuture: DefaultMaxFuture}
	}
	// ERCOT's offer floor is -250 and its cap 5,000 USD/MWh; other markets
	// clear between -1,000 and 15,000 or so in scarcity.
	c[switchd.SignalPrice].Min, c[switchd.SignalPrice].Max = -1000, 20000
	c[switchd.SignalGridLoad].Min, c[switchd.SignalGridLoad].Max = 0, 1_000_000
	c[switchd.SignalHashprice].Min, c[switchd.SignalHashprice].Max = 0, 100_000
	c[switchd.SignalInferencePrice].Min, c[switchd.SignalInferencePrice].Max = 0, 1000
	c[switchd.SignalAIDemand].Min, c[switchd.SignalAIDemand].Max = 0, 10_000_000
	// A probability: a 0-100 percentage is a unit mistake, rejected.
	c[switchd.SignalCPAlert].Min, c[switchd.SignalCPAlert].Max = 0, 1
	return c
}

type mqttSection struct {
	Embedded     string      `yaml:"embedded"`
	Broker       string      `yaml:"broker"`
	ClientID     string      `yaml:"client_id"`
	Username     string      `yaml:"username"`
	PasswordFile string      `yaml:"password_file"`
	PasswordEnv  string      `yaml:"password_env"`
	TLS          *tlsSection `yaml:"tls"`
	SignalPrefix string      `yaml:"signal_prefix"`
	StateTopic   string      `yaml:"state_topic"`
	// The embedded broker's authentication (embeddedauth.go).
	AllowAnonymous *bool                             `yaml:"allow_anonymous"`
	UsersFile      string                            `yaml:"users_file"`
	ACL            strictyaml.OrderedMap[aclSection] `yaml:"acl"`
}

type tlsSection struct {
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

type httpSection struct {
	Listen    string   `yaml:"listen"`
	TokenFile string   `yaml:"token_file"`
	TokenEnv  string   `yaml:"token_env"`
	Hosts     []string `yaml:"hosts"`
}

type journalSection struct {
	Path         string `yaml:"path"`
	MaxSegmentMB int    `yaml:"max_segment_mb"`
}

type demoSection struct {
	Trace string     `yaml:"trace"`
	Speed *demoSpeed `yaml:"speed"`
	Loop  bool       `yaml:"loop"`
	// FakeDevices starts fake devices at the fleets' (loopback) addresses.
	FakeDevices bool `yaml:"fake_devices"`
}

// demoSpeed is trace seconds per wall second, written as a number (3600) or
// the way people say it (3600x).
type demoSpeed float64

func (v *demoSpeed) DecodeNode(l *strictyaml.Loader, n *yaml.Node, path string) {
	if strictyaml.IsNull(n) {
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() != "!!str" {
		if f, ok := l.Number(n, path); ok {
			*v = demoSpeed(f)
		}
		return
	}
	if n.Kind == yaml.ScalarNode {
		f, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(n.Value), "x"), 64)
		if err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			*v = demoSpeed(f)
			return
		}
	}
	l.Failf(path, n.Line, "must be a number such as 3600 or 3600x (got %s)", strictyaml.Describe(n))
}

// validateDaemon fills s.Daemon, and s.MaxAge from the signals section.
// The mqtt section goes first: signal topics default from its prefix.
func (f *siteFile) validateDaemon(l *strictyaml.Loader, s *Site, dir string) {
	d := &s.Daemon
	d.Tick = DefaultTick
	if f.Tick != nil {
		if t := time.Duration(*f.Tick); t < MinTick {
			l.Errorf("tick", "must be at least %s (got %s): the controller polls every driver each tick", strictyaml.FmtDuration(MinTick), strictyaml.FmtDuration(t))
		} else if t > MaxTick {
			l.Errorf("tick", "must be at most %s (got %s): devices are only polled each tick", strictyaml.FmtDuration(MaxTick), strictyaml.FmtDuration(t))
		} else {
			d.Tick = t
		}
	}
	if l.Given("policy", f.Policy) {
		d.PolicyPath = resolvePath(dir, f.Policy)
		d.PolicyLine = l.Line("policy")
	}
	f.validateMQTT(l, s, dir)
	explicit := f.validateSignals(l, s)
	f.validatePublisherKeys(l, s, dir)
	f.validateEmbeddedAuth(l, s, dir)
	f.validateHTTP(l, s, dir)
	if l.Has("journal") {
		j := f.Journal
		if j == nil {
			j = &journalSection{}
		}
		if !l.Has("journal.path") {
			l.Errorf("journal.path", "required (or drop the journal section)")
		} else if l.Given("journal.path", j.Path) {
			d.Journal.Path = resolvePath(dir, j.Path)
		}
		if l.Has("journal.max_segment_mb") {
			// At least 1 MiB: a segment holds whole lines of up to 1 MiB.
			if j.MaxSegmentMB < 1 || j.MaxSegmentMB > 1<<20 {
				l.Errorf("journal.max_segment_mb", "must be between 1 and 1048576 MiB, or left out to never rotate (got %d)", j.MaxSegmentMB)
			} else {
				d.Journal.MaxSegmentBytes = int64(j.MaxSegmentMB) << 20
			}
		}
	}
	f.validateDemo(l, s, dir, explicit)
}

func (f *siteFile) validateMQTT(l *strictyaml.Loader, s *Site, dir string) {
	if !l.Has("mqtt") {
		return
	}
	m := f.MQTT
	if m == nil {
		m = &mqttSection{}
	}
	c := &s.Daemon.MQTT
	if l.Given("mqtt.embedded", m.Embedded) {
		if msg := embeddedAddrProblem(m); msg != "" {
			l.Errorf("mqtt.embedded", "%s", msg)
		} else {
			c.Embedded = m.Embedded
		}
	}
	switch {
	case l.Given("mqtt.broker", m.Broker):
		if msg := brokerProblem(m.Broker); msg != "" {
			l.Errorf("mqtt.broker", "%s", msg)
		} else {
			c.Broker = m.Broker
		}
	case c.Embedded != "" && !anyPort(c.Embedded):
		c.Broker = "tcp://" + DialAddr(c.Embedded)
	}
	if !l.Has("mqtt.embedded") && !l.Has("mqtt.broker") {
		l.Errorf("mqtt", "give embedded (a broker run by switchd, e.g. 127.0.0.1:1883) or broker (e.g. tcp://10.0.0.5:1883)")
	}

	c.ClientID = "switchd-" + s.Name
	if l.Given("mqtt.client_id", m.ClientID) {
		if strings.ContainsFunc(m.ClientID, unicode.IsSpace) || strings.ContainsFunc(m.ClientID, unicode.IsControl) {
			l.Errorf("mqtt.client_id", "must not contain spaces or control characters (got %q)", m.ClientID)
		} else {
			c.ClientID = m.ClientID
		}
	}
	if l.Given("mqtt.username", m.Username) {
		c.Username = m.Username
	}
	f.validatePassword(l, c, m, dir)
	f.validateTLS(l, c, m, dir)

	name := s.Name
	c.SignalPrefix = "switchd/" + name + "/signals"
	c.StateTopic = "switchd/" + name + "/state"
	topic(l, "mqtt.signal_prefix", m.SignalPrefix, &c.SignalPrefix, name != "")
	topic(l, "mqtt.state_topic", m.StateTopic, &c.StateTopic, name != "")
}

func (f *siteFile) validatePassword(l *strictyaml.Loader, c *MQTTConfig, m *mqttSection, dir string) {
	filePath, envPath := "mqtt.password_file", "mqtt.password_env"
	hasFile, hasEnv := l.Given(filePath, m.PasswordFile), l.Given(envPath, m.PasswordEnv)
	var msg string
	switch {
	case hasFile && hasEnv:
		l.Errorf(envPath, "give either password_file or password_env, not both")
		return
	case hasFile:
		c.PasswordFile = resolvePath(dir, m.PasswordFile)
		c.Password, msg = readSecret(c.PasswordFile)
		if msg != "" {
			l.Errorf(filePath, "%s", msg)
		}
	case hasEnv:
		c.Password, msg = envSecret(m.PasswordEnv)
		if msg != "" {
			l.Errorf(envPath, "%s", msg)
		}
	default:
		return
	}
	if m.Username == "" {
		// MQTT 3.1.1 forbids a password without a user name; brokers drop
		// such a connection with a reason that names neither.
		l.Errorf("mqtt.username", "required with a password")
	}
}

func (f *siteFile) validateTLS(l *strictyaml.Loader, c *MQTTConfig, m *mqttSection, dir string) {
	if !l.Has("mqtt.tls") {
		return
	}
	t := m.TLS
	if t == nil {
		t = &tlsSection{}
	}
	for _, x := range []struct {
		key string
		v   string
		dst *string
	}{{"ca_file", t.CAFile, &c.CAFile}, {"cert_file", t.CertFile, &c.CertFile}, {"key_file", t.KeyFile, &c.KeyFile}} {
		p := "mqtt.tls." + x.key
		if !l.Given(p, x.v) {
			continue
		}
		file := resolvePath(dir, x.v)
		if msg := fileProblem(file); msg != "" {
			l.Errorf(p, "%s", msg)
			continue
		}
		*x.dst = file
	}
	hasCert, hasKey := l.Has("mqtt.tls.cert_file"), l.Has("mqtt.tls.key_file")
	switch {
	case hasCert && !hasKey:
		l.Errorf("mqtt.tls.key_file", "required with cert_file")
	case hasKey && !hasCert:
		l.Errorf("mqtt.tls.cert_file", "required with key_file")
	case !hasCert && !l.Has("mqtt.tls.ca_file"):
		l.Errorf("mqtt.tls", "give ca_file, or cert_file and key_file, or all three (an ssl:// broker alone already verifies against the system's CAs)")
	}
	// TLS settings next to a plain broker would be silently unused.
	broker := c.Broker
	if broker == "" && c.Embedded != "" {
		broker = "tcp://" + c.Embedded
	}
	if broker != "" && !tlsSchemes[brokerScheme(broker)] {
		l.Errorf("mqtt.tls", "needs a TLS broker URL (ssl://, tls://, mqtts:// or wss://), not %s", broker)
	}
}

// validateSignals fills s.MaxAge and s.Daemon.Signals from the signals
// section, and returns the key path of each topic the file sets.
func (f *siteFile) validateSignals(l *strictyaml.Loader, s *Site) (explicit [switchd.NumSignals]string) {
	cfg := &s.Daemon.Signals
	hasMQTT := l.Has("mqtt")
	for _, e := range f.Signals {
		if e.Key == ForecastKey {
			f.validateForecast(l, s, e.Path, &e.Value)
			continue
		}
		sig, err := switchd.ParseSignal(e.Key)
		if err != nil {
			l.Errorf(e.Path, "%v", err)
			continue
		}
		v, c := &e.Value, &cfg[sig]
		if v.MaxAge != nil {
			if a := time.Duration(*v.MaxAge); a <= 0 {
				l.Errorf(strictyaml.JoinPath(e.Path, "max_age"), "must be positive (got %s)", strictyaml.FmtDuration(a))
			} else if a > MaxMaxAge {
				l.Errorf(strictyaml.JoinPath(e.Path, "max_age"), "must be at most %s (got %s): an older value is no signal", strictyaml.FmtDuration(MaxMaxAge), strictyaml.FmtDuration(a))
			} else {
				s.MaxAge[sig], s.MaxAgeSet[sig] = a, true
			}
		}
		if p := strictyaml.JoinPath(e.Path, "topic"); l.Given(p, v.Topic) {
			switch msg := topicProblem(v.Topic); {
			case !hasMQTT:
				l.Errorf(p, "needs an mqtt section: there is no broker to read it from")
			case msg != "":
				l.Errorf(p, "%s", msg)
			default:
				c.Topic, explicit[sig] = v.Topic, p
			}
		}
		lo, hi := c.Min, c.Max
		if v.Min != nil {
			lo = *v.Min
		}
		if v.Max != nil {
			hi = *v.Max
		}
		switch {
		case lo < hi:
			c.Min, c.Max = lo, hi
		case v.Max != nil:
			l.Errorf(strictyaml.JoinPath(e.Path, "max"), "must be greater than min %s (got %s)", strictyaml.FmtFloat(lo), strictyaml.FmtFloat(hi))
		default:
			l.Errorf(strictyaml.JoinPath(e.Path, "min"), "must be less than max %s (got %s)", strictyaml.FmtFloat(hi), strictyaml.FmtFloat(lo))
		}
		if v.MaxFuture != nil {
			if mf := time.Duration(*v.MaxFuture); mf < 0 {
				l.Errorf(strictyaml.JoinPath(e.Path, "max_future"), "must not be negative (got %s)", strictyaml.FmtDuration(mf))
			} else if mf > MaxMaxFuture {
				l.Errorf(strictyaml.JoinPath(e.Path, "max_future"), "must be at most %s (got %s): clocks drift by seconds, not hours", strictyaml.FmtDuration(MaxMaxFuture), strictyaml.FmtDuration(mf))
			} else {
				c.MaxFuture = mf
			}
		}
	}
	for _, sig := range switchd.AllSignals {
		cfg[sig].MaxAge = s.MaxAge[sig]
	}
	if !hasMQTT {
		return explicit
	}
	m := &s.Daemon.MQTT
	defer f.forecastTopic(l, s, cfg)
	owner := map[string]switchd.Signal{}
	for _, sig := range switchd.AllSignals {
		c := &cfg[sig]
		if c.Topic == "" {
			c.Topic = m.SignalPrefix + "/" + sig.String()
		}
		if prev, dup := owner[c.Topic]; dup {
			// Defaults differ from each other, so one of the two is set.
			p := explicit[sig]
			if p == "" {
				p = explicit[prev]
			}
			l.Errorf(p, "%q is also the topic of signal %s: each signal needs its own", c.Topic, prev)
			continue
		}
		owner[c.Topic] = sig
		if c.Topic == m.StateTopic || strings.HasPrefix(c.Topic, m.StateTopic+"/") {
			if p := explicit[sig]; p != "" {
				l.Errorf(p, "%q is under state_topic %q, where switchd publishes its own state", c.Topic, m.StateTopic)
			} else {
				l.Errorf("mqtt.state_topic", "holds the signal topics (%s/<signal>): switchd would read its own state as signals", m.SignalPrefix)
			}
		}
	}
	return explicit
}

func (f *siteFile) validateHTTP(l *strictyaml.Loader, s *Site, dir string) {
	if !l.Has("http") {
		return
	}
	h := f.HTTP
	if h == nil {
		h = &httpSection{}
	}
	c := &s.Daemon.HTTP
	if !l.Has("http.listen") {
		l.Errorf("http.listen", "required (host:port such as 127.0.0.1:8080)")
	} else if l.Given("http.listen", h.Listen) {
		if msg := hostPortProblem(h.Listen); msg != "" {
			l.Errorf("http.listen", "%s", msg)
		} else {
			c.Listen = h.Listen
		}
	}
	for i, host := range h.Hosts {
		if msg := hostNameProblem(host); msg != "" {
			l.Errorf(strictyaml.IndexPath("http.hosts", i), "%s", msg)
			continue
		}
		c.Hosts = append(c.Hosts, host)
	}
	// The token is read again on every override request (HTTPConfig.Token),
	// so a rotated file needs no restart; here it must already be there
	// and long enough, or an empty file would silently turn overrides off.
	if l.Given("http.token_file", h.TokenFile) {
		c.TokenFile = resolvePath(dir, h.TokenFile)
		if _, err := c.Token(); err != nil {
			l.Errorf("http.token_file", "%v", err)
		}
	}
	if l.Given("http.token_env", h.TokenEnv) {
		if !envNameRE.MatchString(h.TokenEnv) {
			l.Errorf("http.token_env", "%q is not an environment variable name (letters, digits and _)", h.TokenEnv)
		} else {
			c.TokenEnv = h.TokenEnv
			if _, err := c.Token(); err != nil && c.TokenFile == "" {
				l.Errorf("http.token_env", "%v", err)
			}
		}
	}
}

// Token returns the override bearer token, read now from TokenFile or
// TokenEnv, or "" when neither is set (overrides are then refused). A file
// that is missing, empty or shorter than MinTokenBytes (after trimming
// whitespace) is an error, so is a set variable that short: an empty token
// must never pass for "overrides off" by accident. An unset variable is "".
func (c *HTTPConfig) Token() (string, error) {
	var tok, from string
	switch {
	case c.TokenFile != "":
		var msg string
		if tok, msg = readSecret(c.TokenFile); msg != "" {
			return "", errors.New(msg)
		}
		from = c.TokenFile
	case c.TokenEnv != "":
		v, ok := os.LookupEnv(c.TokenEnv)
		if !ok {
			return "", nil
		}
		tok, from = strings.TrimSpace(v), "environment variable "+c.TokenEnv
	default:
		return "", nil
	}
	if len(tok) < MinTokenBytes {
		return "", fmt.Errorf("the token in %s is %d bytes: at least %d are needed (e.g. openssl rand -hex 16)", from, len(tok), MinTokenBytes)
	}
	return tok, nil
}

// httpWarnings returns what is valid but unwise in the http section: an
// API reachable beyond this machine without a token, whose state and
// metrics anyone on the network can read (overrides stay refused).
func httpWarnings(l *strictyaml.Loader, s *Site) []string {
	h := &s.Daemon.HTTP
	if h.TokenFile == "" && h.TokenEnv != "" {
		// Valid (the demo is read-only until SWITCHD_TOKEN is set), but a
		// unit that forgot the variable must not lose overrides silently.
		if _, ok := os.LookupEnv(h.TokenEnv); !ok {
			return []string{l.Warning("http.token_env", "%s is not set: overrides are refused (the API is read-only)", h.TokenEnv)}
		}
	}
	if h.Listen == "" || h.TokenFile != "" || h.TokenEnv != "" {
		return nil
	}
	host, _, _ := net.SplitHostPort(h.Listen)
	if ip := net.ParseIP(host); strings.EqualFold(host, "localhost") || (ip != nil && ip.IsLoopback()) {
		return nil
	}
	return []string{l.Warning("http.listen", "%q is reachable beyond this machine and no token_file or token_env is set: anyone who can reach it reads the site's state, and overrides are refused", h.Listen)}
}

func (f *siteFile) validateDemo(l *strictyaml.Loader, s *Site, dir string, explicit [switchd.NumSignals]string) {
	if !l.Has("demo") {
		return
	}
	d := f.Demo
	if d == nil {
		d = &demoSection{}
	}
	out := &DemoConfig{Loop: d.Loop}
	if !l.Has("demo.trace") {
		l.Errorf("demo.trace", "required (a CSV trace, relative to this file)")
	} else if l.Given("demo.trace", d.Trace) {
		out.Trace = resolvePath(dir, d.Trace)
		if msg := fileProblem(out.Trace); msg != "" {
			l.Errorf("demo.trace", "%s", msg)
		}
	}
	switch {
	case d.Speed != nil && *d.Speed <= 0:
		l.Errorf("demo.speed", "must be positive (got %s)", strictyaml.FmtFloat(float64(*d.Speed)))
	case d.Speed != nil:
		out.Speed = float64(*d.Speed)
	case !l.Has("demo.speed"):
		l.Errorf("demo.speed", "required (trace seconds per wall second, e.g. 3600)")
	}
	// Replaying made-up or historical prices into a broker that other
	// sites or SCADA read would be an incident, so the demo only feeds
	// switchd's own broker.
	if !l.Has("mqtt.embedded") {
		l.Errorf("demo", "needs mqtt.embedded: the demo replays its trace into switchd's own broker only")
	}
	m := &s.Daemon.MQTT
	for _, sig := range switchd.AllSignals {
		if p := explicit[sig]; p != "" && s.Daemon.Signals[sig].Topic != m.SignalPrefix+"/"+sig.String() {
			l.Errorf(p, "the demo publishes %s to %s/%s only: drop this topic or the demo section", sig, m.SignalPrefix, sig)
		}
	}
	out.FakeDevices = d.FakeDevices
	s.Daemon.Demo = out
}

// topic sets *dst to the topic v at path when the file gives one. Without
// one, *dst keeps its default, which is checked too when checkDefault is
// set: it is built from the site name, which may not make a valid topic.
func topic(l *strictyaml.Loader, path, v string, dst *string, checkDefault bool) {
	switch {
	case l.Has(path):
		if !l.Given(path, v) {
			return
		}
		if msg := topicProblem(v); msg != "" {
			l.Errorf(path, "%s", msg)
			return
		}
		*dst = v
	case checkDefault:
		if msg := topicProblem(*dst); msg != "" {
			key := path[strings.LastIndexByte(path, '.')+1:]
			l.Errorf(path, "the default %q (from the site name) %s: set %s", *dst, msg, key)
		}
	}
}

// maxTopicBytes is MQTT's limit on a topic name.
const maxTopicBytes = 65535

// topicProblem says what is wrong with t as a topic switchd subscribes or
// publishes to, or "" when nothing is.
func topicProblem(t string) string {
	switch {
	case t == "":
		return "must not be empty"
	case len(t) > maxTopicBytes:
		return fmt.Sprintf("must be at most %d bytes", maxTopicBytes)
	case strings.ContainsAny(t, "+#"):
		// A wildcard would let several publishers feed one signal, or
		// publish nowhere.
		return "must not contain the wildcards + or #"
	case strings.HasPrefix(t, "$"):
		return "must not start with $ (reserved for the broker's own topics)"
	case strings.HasSuffix(t, "/"):
		return "must not end with /"
	case !utf8.ValidString(t) || strings.ContainsFunc(t, unicode.IsControl):
		return "must not contain control characters"
	}
	return ""
}

// brokerSchemes are the URL schemes paho dials; tlsSchemes are those that
// use TLS.
var (
	brokerSchemes = map[string]bool{"tcp": true, "mqtt": true, "ssl": true, "tls": true, "mqtts": true, "ws": true, "wss": true}
	tlsSchemes    = map[string]bool{"ssl": true, "tls": true, "mqtts": true, "wss": true}
)

func brokerScheme(u string) string {
	scheme, _, _ := strings.Cut(u, "://")
	return strings.ToLower(scheme)
}

// brokerProblem says what is wrong with a broker URL, or "" when nothing is.
func brokerProblem(raw string) string {
	const want = "want a URL such as tcp://10.0.0.5:1883 or ssl://broker.example.com:8883"
	if !strings.Contains(raw, "://") {
		return fmt.Sprintf("%q has no scheme (%s)", raw, want)
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Sprintf("bad URL %q: %v (%s)", raw, err, want)
	}
	if !brokerSchemes[u.Scheme] {
		return fmt.Sprintf("unsupported scheme %q (want tcp, mqtt, ssl, tls, mqtts, ws or wss)", u.Scheme)
	}
	if u.User != nil {
		return "must not hold credentials: use username with password_file or password_env"
	}
	if u.Hostname() == "" {
		return fmt.Sprintf("%q has no host (%s)", raw, want)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("bad port %q (want 1 to 65535)", p)
		}
	}
	if u.Scheme == "ws" || u.Scheme == "wss" {
		return ""
	}
	// paho dials the host of a plain or TLS URL as it is: without a port
	// the dial fails at start, and a path would be ignored.
	if u.Port() == "" {
		return fmt.Sprintf("%q has no port (e.g. :1883, or :8883 for TLS)", raw)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Sprintf("%q: a %s:// URL is host:port only, without a path or query", raw, u.Scheme)
	}
	return ""
}

// hostPortProblem says what is wrong with a listen address, or "" when
// nothing is. Port 0 is allowed: the system picks a free port.
func hostPortProblem(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("%q is not host:port (e.g. 127.0.0.1:8080)", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Sprintf("bad port %q in %q (want 0 to 65535)", port, addr)
	}
	return ""
}

// hostNameProblem says what is wrong with an http.hosts entry, or "" when
// nothing is: it must be a bare DNS name or address, as in a Host header
// without its port.
func hostNameProblem(h string) string {
	if net.ParseIP(h) != nil {
		return ""
	}
	if h == "" || len(h) > 253 || strings.ContainsAny(h, ":/ @*") {
		return fmt.Sprintf("%q is not a host name (give the name alone, without scheme or port, e.g. switchd.example.net)", h)
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || strings.Trim(label, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
			return fmt.Sprintf("%q is not a host name (letters, digits, '-' and '.')", h)
		}
	}
	return ""
}

// anyPort reports whether addr, a valid host:port, asks for any free port.
// The embedded broker's port is then only known once it listens, so Broker
// stays empty for the daemon to fill from the bound address.
func anyPort(addr string) bool {
	_, port, _ := net.SplitHostPort(addr)
	n, err := strconv.ParseUint(port, 10, 16)
	return err == nil && n == 0
}

// envNameRE is what environment variable names look like.
var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func envSecret(name string) (string, string) {
	if !envNameRE.MatchString(name) {
		return "", fmt.Sprintf("%q is not an environment variable name (letters, digits and _)", name)
	}
	v, ok := os.LookupEnv(name)
	switch {
	case !ok:
		return "", fmt.Sprintf("environment variable %s is not set", name)
	case strings.TrimSpace(v) == "":
		return "", fmt.Sprintf("environment variable %s is empty", name)
	}
	return strings.TrimSpace(v), ""
}

// maxSecretBytes bounds a password file: anything bigger is the wrong file.
const maxSecretBytes = 64 << 10

// readSecret reads a password from a file, without the surrounding
// whitespace (editors add a final newline). It returns the password or
// what is wrong.
func readSecret(path string) (string, string) {
	if msg := fileProblem(path); msg != "" {
		return "", msg
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Sprintf("cannot read %s: %v", path, pathErr(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretBytes+1))
	switch {
	case err != nil:
		return "", fmt.Sprintf("cannot read %s: %v", path, pathErr(err))
	case len(b) > maxSecretBytes:
		return "", fmt.Sprintf("%s is larger than %d KiB: not a password file", path, maxSecretBytes>>10)
	}
	pw := strings.TrimSpace(string(b))
	if pw == "" {
		return "", fmt.Sprintf("%s is empty", path)
	}
	return pw, ""
}

// fileProblem says why path is not a regular file switchd can use, or ""
// when it is. Devices and pipes are refused: reading one could block or
// never end.
func fileProblem(path string) string {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("%s does not exist", path)
	case err != nil:
		return fmt.Sprintf("cannot read %s: %v", path, pathErr(err))
	case !fi.Mode().IsRegular():
		return fmt.Sprintf("%s is not a regular file", path)
	}
	return ""
}

// pathErr drops the operation and path from a *fs.PathError, which the
// messages above already name.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// resolvePath resolves a path from the site file against the file's
// directory, so that a config works from whatever directory switchd starts.
func resolvePath(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}
