// Package policies holds the site and policy YAML schema, their strict
// loading and validation, the evaluation of rules into constraints, and the
// dispatcher that turns signals and constraints into a plan.
//
// Everything here is pure: no I/O outside Load*, no clock (time comes in as
// an argument), no logging. It imports the root package, cron and yaml only.
package policies

import (
	"math"
	"time"

	"github.com/switchd/switchd"
	"gopkg.in/yaml.v3"
)

// Site is a loaded and validated site configuration (switchd.yaml).
type Site struct {
	Name       string
	Location   *time.Location // site timezone, for schedule windows
	PowerCapKW float64        // interconnect limit; never exceeded by a plan
	Fleets     []Fleet
	// MaxAge[s] is how old a signal may get before it counts as stale.
	MaxAge [switchd.NumSignals]time.Duration
	// MaxAgeSet[s] says the site file set MaxAge[s] (signals.<s>.max_age);
	// where it did not, the simulator derives it from the trace's cadence.
	MaxAgeSet [switchd.NumSignals]bool
	// Source is the file the site was loaded from, for messages.
	Source string
	// Daemon holds the settings only `switchd run` uses.
	Daemon Daemon
	// CoincidentPeak is the site's coincident-peak charge; nil when the
	// site file has no coincident_peak section. The simulator charges it;
	// the controller does not read it (rules on grid_load or cp_alert act
	// on peaks live).
	CoincidentPeak *CoincidentPeak
}

// Fleet is one fleet of identical devices and how to drive them.
type Fleet struct {
	Spec     switchd.FleetSpec
	Driver   string           // driver name, e.g. "sim"
	Settings yaml.Node        // the driver's own settings, decoded strictly by its factory
	Devices  []switchd.Device // device list (addresses), for real drivers
	// DriverLine is the line of the fleet's driver key, for messages about
	// the driver (unknown name) made after loading.
	DriverLine int
}

// Specs returns the fleet catalog in site order.
func (s *Site) Specs() []switchd.FleetSpec {
	out := make([]switchd.FleetSpec, len(s.Fleets))
	for i := range s.Fleets {
		out[i] = s.Fleets[i].Spec
	}
	return out
}

// FleetIndex returns the index of the named fleet, or -1.
func (s *Site) FleetIndex(name string) int {
	for i := range s.Fleets {
		if s.Fleets[i].Spec.Name == name {
			return i
		}
	}
	return -1
}

// FailSafe is what happens when a signal goes stale.
type FailSafe uint8

// Fail-safe actions.
const (
	FailSafeNone    FailSafe = iota // ignore staleness (use the last value or fallback)
	FailSafeHold                    // keep every device where it is
	FailSafeCurtail                 // send every device to off
)

// String returns the action's YAML name.
func (f FailSafe) String() string {
	switch f {
	case FailSafeHold:
		return "hold"
	case FailSafeCurtail:
		return "curtail"
	}
	return "none"
}

// Stagger bounds how many devices of a fleet may be started at once.
type Stagger struct {
	Batch    int           // devices per batch; 0 means no staggering
	Interval time.Duration // time between batches
}

// Policy is a loaded and validated policy file.
type Policy struct {
	// Fallbacks are used for signals that have no value (never received);
	// HasFallback[s] says whether one is set.
	Fallbacks   [switchd.NumSignals]float64
	HasFallback [switchd.NumSignals]bool

	HysteresisUSDPerMWh float64 // a device changes mode only when the new one is better by this much per MWh
	RampUpKWPerMin      float64 // 0 means unlimited; shedding is never limited
	Stagger             Stagger
	FailSafe            [switchd.NumSignals]FailSafe
	Rules               []Rule

	Source string // file the policy was loaded from
}

// Rule is a named condition and the constraints it imposes while it holds.
type Rule struct {
	Name string
	When Condition
	Then Effect
}

// Condition is a conjunction: every set part must hold. An empty condition
// always holds.
type Condition struct {
	PriceAbove    *float64 // USD/MWh
	PriceBelow    *float64 // USD/MWh
	GridLoadAbove *float64 // MW
	// NearMonthPeakPct: grid load at least this percent of the month's
	// highest load so far.
	NearMonthPeakPct *float64
	CPAlertAbove     *float64 // probability, 0 to 1
	Window           *Window
	SignalStale      []switchd.Signal // any of these stale
}

// Reads reports which signals the condition reads: those it compares with a
// threshold and those whose staleness it tests. The simulator refuses a
// trace that lacks one of them (a rule on it could never act as written).
func (c *Condition) Reads() (r [switchd.NumSignals]bool) {
	r[switchd.SignalPrice] = c.PriceAbove != nil || c.PriceBelow != nil
	r[switchd.SignalGridLoad] = c.GridLoadAbove != nil || c.NearMonthPeakPct != nil
	r[switchd.SignalCPAlert] = c.CPAlertAbove != nil
	for _, s := range c.SignalStale {
		if int(s) < switchd.NumSignals {
			r[s] = true
		}
	}
	return r
}

// Window is a recurring time window: it opens at each activation of a cron
// schedule (evaluated in the site's timezone unless the spec says CRON_TZ=)
// and lasts For.
type Window struct {
	Spec     string
	Schedule interface {
		Next(time.Time) time.Time
	}
	For time.Duration
}

// Effect is what a rule imposes. Per-fleet parts are indexed like Site.Fleets.
type Effect struct {
	SiteCapKW *float64
	Fleets    []FleetConstraint // len == len(Site.Fleets) when any per-fleet part is set, else nil
}

// Unlimited is the Max of a mode with no maximum.
const Unlimited = math.MaxInt

// FleetConstraint narrows what the dispatcher may do with one fleet.
type FleetConstraint struct {
	Forbid [switchd.NumModes]bool
	// Min[m] devices must be in m even at a loss (as the cap allows); a
	// forced mode is Min[m] = fleet size with every other mode forbidden.
	Min [switchd.NumModes]int
	// Max[m] devices at most in m; Unlimited when unset.
	Max [switchd.NumModes]int
}

// NoFleetConstraint returns a constraint that allows everything.
func NoFleetConstraint() FleetConstraint {
	var c FleetConstraint
	for m := range c.Max {
		c.Max[m] = Unlimited
	}
	return c
}

// Constraints is everything the rules and fail-safes allow at one instant.
type Constraints struct {
	SiteCapKW float64           // the tightest cap in force (interconnect or rule)
	Fleets    []FleetConstraint // indexed like Site.Fleets
	// Hold is set when a fail-safe says to keep devices where they are: the
	// reconciler issues no commands except those a cap or forbid requires.
	Hold bool
}

// Evaluation is the result of evaluating a policy at one instant.
type Evaluation struct {
	Values      switchd.Values // effective signal values (received or fallback)
	Constraints Constraints
	Fired       []string         // names of rules that fired, in policy order
	Stale       []switchd.Signal // signals past their max age
	// Curtail is set when a fail-safe curtails: Constraints then forbid
	// every mode but off.
	Curtail bool
}

// Daemon settings: used by `switchd run`; the simulator ignores them.

// MQTTConfig says where signals come from and where state goes.
type MQTTConfig struct {
	// Embedded, when set, is the loopback address (host:port) of an MQTT
	// broker switchd runs in-process; Broker then defaults to it.
	Embedded string
	// Broker is the URL of the broker to use: tcp://host:1883,
	// ssl://host:8883 (TLS) or ws://host/path.
	Broker   string
	ClientID string // default "switchd-<site>"
	Username string
	Password string // read from password_file or password_env at load
	// TLS files (PEM); CAFile alone verifies the server, CertFile+KeyFile
	// present a client certificate.
	CAFile, CertFile, KeyFile string
	// SignalPrefix is the default topic prefix for signals: a signal
	// without its own topic is read from "<SignalPrefix>/<signal>".
	SignalPrefix string // default "switchd/<site>/signals"
	// StateTopic is where retained state is published: "<StateTopic>" for
	// the site and "<StateTopic>/fleets/<fleet>" per fleet.
	StateTopic string // default "switchd/<site>/state"
}

// SignalConfig is how one signal is received and checked.
type SignalConfig struct {
	Topic  string        // MQTT topic; default "<SignalPrefix>/<signal>"
	MaxAge time.Duration // older than this: stale (fail-safe applies)
	// Min and Max bound plausible values; a value outside is rejected.
	Min, Max float64
	// MaxFuture is how far ahead of the local clock a payload's ts may be.
	MaxFuture time.Duration
}

// HTTPConfig is the HTTP API and metrics endpoint.
type HTTPConfig struct {
	Listen string // host:port; empty means no HTTP server
	// The override token (bearer) comes from TokenFile, or else from the
	// environment variable TokenEnv; with neither, overrides are refused.
	TokenFile string
	TokenEnv  string
}

// JournalConfig is the append-only decision journal.
type JournalConfig struct {
	Path string // empty means no journal (not recommended in production)
}

// DemoConfig makes `switchd run` replay a trace into its own broker, for
// demos: signals then come over MQTT exactly as in production.
type DemoConfig struct {
	Trace string  // CSV trace, relative to the config file
	Speed float64 // trace seconds per wall second (e.g. 3600)
	Loop  bool    // start over at the end
	// FakeDevices makes `switchd run` start a fake device, speaking the
	// driver's real wire protocol, at every (loopback) device address of
	// the site before the daemon starts: a whole site on one machine.
	FakeDevices bool
}

// Daemon holds every setting `switchd run` needs beyond the site itself.
type Daemon struct {
	PolicyPath string // policy file, relative paths resolved against the site file
	MQTT       MQTTConfig
	Signals    [switchd.NumSignals]SignalConfig
	HTTP       HTTPConfig
	Journal    JournalConfig
	Demo       *DemoConfig
	// Tick is how often the controller runs without a signal change.
	Tick time.Duration // default 10s
}
