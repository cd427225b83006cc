// Package mqttagent drives devices that already have an agent on MQTT
// (YAML name "mqtt"): Home Assistant, a PLC gateway, a vendor agent. The
// desired mode of each device is published, retained, on its command
// topic; the agent reports the mode it observed and the power it draws on
// its state topic. A device is an id in the topics, not a network address.
//
// All the devices of a fleet share one broker connection, made on first
// use and closed when the last device is closed (pool.Stop). The package
// imports the root, drivers/internal/pool and paho.
package mqttagent

import (
	_ "embed"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/internal/pool"
)

// Sample is a commented settings block for the driver.
//
//go:embed sample.yaml
var Sample string

// deviceVar is the placeholder of the device id in topic templates.
const deviceVar = "{device}"

// Payload is the command payload format.
type Payload string

// Command payload formats.
const (
	PayloadJSON  Payload = "json"  // {"mode":"off"}
	PayloadPlain Payload = "plain" // off
)

// UnmarshalText accepts "json" or "plain".
func (p *Payload) UnmarshalText(b []byte) error {
	switch v := Payload(b); v {
	case PayloadJSON, PayloadPlain:
		*p = v
		return nil
	}
	return fmt.Errorf("command_payload %q: want json or plain", b)
}

// Config is the driver's settings block.
type Config struct {
	pool.Settings `yaml:",inline"`
	// Credentials log in to the broker (fleet-wide; a device's Secret is
	// not used).
	pool.Credentials `yaml:",inline"`

	Broker   string `yaml:"broker"`    // tcp://host:1883, ssl://host:8883, ws://...
	ClientID string `yaml:"client_id"` // default switchd-mqttagent-<random>
	// CommandTopic and StateTopic are templates with {device}; in
	// StateTopic it must be a whole topic level (it is subscribed to with
	// a + wildcard).
	CommandTopic   string  `yaml:"command_topic"`
	StateTopic     string  `yaml:"state_topic"`
	CommandPayload Payload `yaml:"command_payload"`
	// MaxAge is how old a device's last state may be (its ts, else when
	// it arrived) before the device counts as unreachable.
	MaxAge time.Duration `yaml:"max_age"`
}

// DefaultConfig returns the defaults applied before decoding.
func DefaultConfig() Config {
	return Config{
		CommandTopic:   "switchd/devices/{device}/set",
		StateTopic:     "switchd/devices/{device}/state",
		CommandPayload: PayloadJSON,
		MaxAge:         2 * time.Minute,
	}
}

// ParseConfig decodes and validates the settings block.
func ParseConfig(s switchd.Settings) (Config, error) {
	cfg := DefaultConfig()
	if err := s.Decode(&cfg); err != nil {
		return Config{}, err
	}
	cfg.Settings.Defaults()
	errs := []error{cfg.Settings.Validate(s), cfg.Credentials.Validate(s, false)}
	if err := checkBroker(cfg.Broker); err != nil {
		errs = append(errs, s.Errorf("broker", "%v", err))
	}
	if err := checkTemplate(cfg.CommandTopic, false); err != nil {
		errs = append(errs, s.Errorf("command_topic", "%v", err))
	}
	if err := checkTemplate(cfg.StateTopic, true); err != nil {
		errs = append(errs, s.Errorf("state_topic", "%v", err))
	}
	if cfg.MaxAge <= 0 {
		errs = append(errs, s.Errorf("max_age", "must be positive (got %s)", cfg.MaxAge))
	}
	if cfg.ClientID != "" && strings.ContainsAny(cfg.ClientID, "/+#") {
		errs = append(errs, s.Errorf("client_id", "must not contain /, + or #"))
	}
	return cfg, errors.Join(errs...)
}

// checkBroker checks the broker URL.
func checkBroker(raw string) error {
	if raw == "" {
		return errors.New("required: the broker's URL, such as tcp://host:1883")
	}
	u, err := url.Parse(raw)
	if err != nil || !strings.Contains(raw, "://") {
		return fmt.Errorf("%q: want a URL such as tcp://host:1883", raw)
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
	default:
		return fmt.Errorf("%q: unsupported scheme %q (want tcp, mqtt, ssl, tls, mqtts, ws or wss)", raw, u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("%q: no host", raw)
	}
	return nil
}

// checkTemplate checks a topic template: exactly one {device}, no
// wildcards; wholeLevel also wants {device} to be a whole level.
func checkTemplate(t string, wholeLevel bool) error {
	if strings.Count(t, deviceVar) != 1 {
		return fmt.Errorf("%q: must hold %s exactly once", t, deviceVar)
	}
	if strings.ContainsAny(t, "+#") {
		return fmt.Errorf("%q: must not hold wildcards", t)
	}
	if wholeLevel {
		for _, level := range strings.Split(t, "/") {
			if strings.Contains(level, deviceVar) && level != deviceVar {
				return fmt.Errorf("%q: %s must be a whole topic level", t, deviceVar)
			}
		}
	}
	return nil
}

// checkID checks a device id: it becomes one topic level.
func checkID(id string) error {
	if id == "" || strings.ContainsAny(id, "/+#\x00") {
		return fmt.Errorf("device %q: an id must be non-empty and hold no /, + or #", id)
	}
	return nil
}

// New builds the driver of a fleet.
func New(d pool.Deps) (switchd.Driver, error) {
	cfg, err := ParseConfig(d.Settings)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, dev := range d.Devices {
		if err := checkID(dev.Addr); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c := NewConn(&cfg, d.Clock)
	devs := make([]pool.Device, 0, len(d.Devices))
	for _, dev := range d.Devices {
		devs = append(devs, NewDevice(c, dev))
	}
	return pool.New(d, cfg.Settings, devs), nil
}

// OpenDevice builds one device from a settings block, without I/O (it
// connects to the broker on first use): the device `switchd probe` reads.
func OpenDevice(s switchd.Settings, dev switchd.Device) (pool.Device, error) {
	cfg, err := ParseConfig(s)
	if err != nil {
		return nil, err
	}
	return NewDevice(NewConn(&cfg, nil), dev), nil
}
