// Package config holds the site configuration (switchd.yaml): the site and
// its fleets, the daemon's MQTT, HTTP, journal, signal and demo settings,
// driver settings blocks, device lists and coincident-peak tariffs; their
// strict loading, and the range checks every command runs (`switchd
// validate`, `run` and `sim` load a site through ParseSite and nothing
// else).
//
// It imports the root package and yaml; never policies, the controller or a
// driver. Beyond the file itself it reads only what the file names (password
// files, device lists, TLS files must exist).
package config

import (
	"crypto/ed25519"
	"time"

	"github.com/switchd/switchd/internal/strictyaml"

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
	// ForecastMaxAge is how old a price forecast may get before it is
	// stale (signals.price_forecast.max_age); zero means the controller's
	// default.
	ForecastMaxAge time.Duration
	// Source is the file the site was loaded from, for messages.
	Source string
	// Daemon holds the settings only `switchd run` uses.
	Daemon Daemon
	// CoincidentPeak is the site's coincident-peak charge; nil when the
	// site file has no coincident_peak section. The simulator charges it;
	// the controller does not read it (rules on grid_load or cp_alert act
	// on peaks live).
	CoincidentPeak *CoincidentPeak
	// DR is the site's demand-response settings (dr.go).
	DR DemandResponse
	// HA is the high-availability settings (ha.go); nil without `ha:`.
	HA *HA
	// Warnings are what is valid but unwise in the file, each like a
	// ConfigError ("<file>:<line>: <key path>: <message>"): `switchd
	// validate` prints them and the daemon logs them at start.
	Warnings []string
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
	// PasswordFile, when the password comes from a file, is that file:
	// the client reads it again at each (re)connection, so a rotated
	// password needs no restart (Password is the fallback).
	PasswordFile string
	// TLS files (PEM); CAFile alone verifies the server, CertFile+KeyFile
	// present a client certificate.
	CAFile, CertFile, KeyFile string
	// SignalPrefix is the default topic prefix for signals: a signal
	// without its own topic is read from "<SignalPrefix>/<signal>".
	SignalPrefix string // default "switchd/<site>/signals"
	// StateTopic is where retained state is published: "<StateTopic>" for
	// the site and "<StateTopic>/fleets/<fleet>" per fleet.
	StateTopic string // default "switchd/<site>/state"
	// UsersFile is the embedded broker's Mosquitto password file (made by
	// mosquitto_passwd); "" for none. Its users log in with their
	// passwords and get the rights ACL gives them.
	UsersFile string
	// ACL is what each user of UsersFile may do, by user name.
	ACL map[string]UserACL
	// AllowAnonymous lets clients without a user name into the embedded
	// broker with every right: the default on loopback without a
	// UsersFile, required explicitly beyond loopback without one.
	AllowAnonymous bool
}

// UserACL is what one user of the embedded broker may do.
type UserACL struct {
	// Publish names the inputs the user may publish (signal names, or
	// ForecastKey): their topics, nothing else.
	Publish []string
	// ReadState lets the user subscribe to the state topic and below it.
	ReadState bool
}

// SignalConfig is how one signal is received and checked.
type SignalConfig struct {
	Topic  string        // MQTT topic; default "<SignalPrefix>/<signal>"
	MaxAge time.Duration // older than this: stale (fail-safe applies)
	// Min and Max bound plausible values; a value outside is rejected.
	Min, Max float64
	// MaxFuture is how far ahead of the local clock a payload's ts may be.
	MaxFuture time.Duration
	// PublisherKey, when set, is the Ed25519 public key of the signal's
	// only publisher: every message must then be signed by it (see
	// mqttio.Verify) and newer than the last accepted one.
	PublisherKey ed25519.PublicKey
}

// HTTPConfig is the HTTP API and metrics endpoint.
type HTTPConfig struct {
	Listen string // host:port; empty means no HTTP server
	// The override token (bearer) comes from TokenFile, or else from the
	// environment variable TokenEnv; with neither, overrides are refused.
	TokenFile string
	TokenEnv  string
	// Hosts are extra Host header names the server answers, beside the
	// listen host, localhost, the loopback addresses, any IP address and
	// the machine's host name: the names operators and Prometheus use to
	// reach it. Others are refused (DNS-rebinding protection).
	Hosts []string
}

// JournalConfig is the append-only decision journal.
type JournalConfig struct {
	Path string // empty means no journal (not recommended in production)
	// MaxSegmentBytes rotates the journal file into numbered segments
	// (path.000001, ...) before it grows past this size; 0 never rotates.
	MaxSegmentBytes int64
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
	PolicyLine int    // the line of the policy key, for messages about the file
	MQTT       MQTTConfig
	Signals    [switchd.NumSignals]SignalConfig
	HTTP       HTTPConfig
	Journal    JournalConfig
	Demo       *DemoConfig
	// Tick is how often the controller runs without a signal change.
	Tick time.Duration // default 10s
	// Forecast is where the price forecast is read from
	// (signals.price_forecast); Min and Max bound its prices.
	Forecast SignalConfig
}

// ConfigError is one problem in a configuration file: it prints as
// "<file>:<line>: <key path>: <message>", which is what `switchd validate`
// shows. The site and policy parsers share it.
type ConfigError = strictyaml.ConfigError
