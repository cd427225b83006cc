// Package pool is the per-device bookkeeping every real driver shares: it
// turns a list of device addresses into a switchd.Driver that speaks in
// counts and cohorts. It keeps each device's observed state (mode, since
// when, hashrate, watts, last error), picks which devices a command moves
// (longest in the source mode first, skipping failed ones), polls with
// bounded concurrency, answers State from what the devices reported (never
// from what was commanded), re-commands devices that drift, and leaves out
// of the usable capacity the devices that keep failing, until they recover.
//
// A vendor folder provides only a Device: how to read one unit and how to
// put it in a mode. The package imports the root and zap only; it never
// logs failures at more than debug level (the daemon's driver wrapper owns
// logs and metrics).
package pool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/switchd/switchd"
	"go.uber.org/zap"
)

// Observation is what one read of a device shows.
type Observation struct {
	// Mode is what the device is doing; meaningful only when Known.
	Mode switchd.Mode
	// Known is false when the device answered but its mode cannot be
	// told (a reply without the fields that say).
	Known bool
	// Fault is set when the device is in a working mode but not working:
	// mining mode with zero hashrate (not asleep on purpose), an inference
	// engine that does not pass its readiness check.
	Fault bool
	// Detail says why, for a fault or an unknown mode.
	Detail      string
	HashrateTHs float64
	PowerW      float64
	HasPower    bool
	Model       string
	Firmware    string
}

// Device is one real device. Its methods may be called concurrently for
// different devices but never for the same device at once; each call must
// honour ctx's deadline. Errors are classified with switchd.Retriable or
// switchd.Permanent (unclassified counts as retriable).
type Device interface {
	// Addr is the device's address, for logs and the state API.
	Addr() string
	// Observe reads the device's state without changing it.
	Observe(ctx context.Context) (Observation, error)
	// Set commands the device into mode. It returns when the device has
	// accepted the command, not when it has got there.
	Set(ctx context.Context, mode switchd.Mode) error
}

// Capabilities is an optional Device ability: the control commands the
// device accepts, for `switchd probe`.
type Capabilities interface {
	Supports() []string
}

// PowerSetter is an optional Device ability: a power target in percent of
// nominal (LuxOS profiles, Whatsminer set_power_pct).
type PowerSetter interface {
	SetPowerPercent(ctx context.Context, pct float64) error
}

// Closer is an optional Device ability: resources to release (a session,
// a subscription) when the driver stops.
type Closer interface {
	Close(ctx context.Context) error
}

// Deps is what a driver factory gets: the fleet's catalog entry, its
// devices, its settings block and the clock.
type Deps struct {
	Spec     switchd.FleetSpec
	Devices  []switchd.Device
	Settings switchd.Settings // never nil
	Clock    switchd.Clock
	Logger   *zap.Logger // never nil
}

// Settings are the pool's own keys, shared by every real driver (embed it
// in a driver's Config with `yaml:",inline"`).
type Settings struct {
	// Concurrency bounds the device calls in flight (default 256).
	Concurrency int `yaml:"concurrency"`
	// Timeout bounds one device call (default 5s).
	Timeout time.Duration `yaml:"timeout"`
	// Grace is how long past the fleet's transition time a device may
	// take to show the commanded mode before it is commanded again
	// (default 1m).
	Grace time.Duration `yaml:"grace"`
	// MaxAttempts is how many commands a device gets to reach a mode
	// before it is marked stuck (default 3).
	MaxAttempts int `yaml:"max_attempts"`
	// FailAfter is how many polls in a row a device may miss before it is
	// marked unreachable (default 3).
	FailAfter int `yaml:"fail_after"`
	// Recheck is how long a device marked failed (stuck, refused login)
	// waits before it is tried again (default 10m).
	Recheck time.Duration `yaml:"recheck"`
}

// Defaults fills unset fields.
func (s *Settings) Defaults() {
	if s.Concurrency <= 0 {
		s.Concurrency = 256
	}
	if s.Timeout <= 0 {
		s.Timeout = 5 * time.Second
	}
	if s.Grace <= 0 {
		s.Grace = time.Minute
	}
	if s.MaxAttempts <= 0 {
		s.MaxAttempts = 3
	}
	if s.FailAfter <= 0 {
		s.FailAfter = 3
	}
	if s.Recheck <= 0 {
		s.Recheck = 10 * time.Minute
	}
}

// Validate checks the settings' ranges, naming keys through set.
func (s *Settings) Validate(set switchd.Settings) error {
	var errs []error
	if s.Concurrency < 0 || s.Concurrency > 10000 {
		errs = append(errs, set.Errorf("concurrency", "must be between 1 and 10000 (got %d)", s.Concurrency))
	}
	if s.Timeout < 0 || s.Timeout > 5*time.Minute {
		errs = append(errs, set.Errorf("timeout", "must be between 0 and 5m (got %s)", s.Timeout))
	}
	if s.Grace < 0 {
		errs = append(errs, set.Errorf("grace", "must not be negative (got %s)", s.Grace))
	}
	if s.MaxAttempts < 0 || s.MaxAttempts > 100 {
		errs = append(errs, set.Errorf("max_attempts", "must be between 1 and 100 (got %d)", s.MaxAttempts))
	}
	if s.FailAfter < 0 || s.FailAfter > 100 {
		errs = append(errs, set.Errorf("fail_after", "must be between 1 and 100 (got %d)", s.FailAfter))
	}
	if s.Recheck < 0 {
		errs = append(errs, set.Errorf("recheck", "must not be negative (got %s)", s.Recheck))
	}
	return errors.Join(errs...)
}

// Credentials are a driver's login settings. The password never sits in
// the YAML: it is read from a file or an environment variable when it is
// used, so a rotated secret needs no reload. A device's own Secret
// ("file:PATH" or "env:NAME") overrides the fleet's.
type Credentials struct {
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
}

// Validate checks that at most one source is given and that a file exists
// (without reading it); required makes a missing password an error.
func (c *Credentials) Validate(set switchd.Settings, required bool) error {
	switch {
	case c.PasswordFile != "" && c.PasswordEnv != "":
		return set.Errorf("password_file", "give password_file or password_env, not both")
	case c.PasswordFile != "":
		c.PasswordFile = set.Resolve(c.PasswordFile)
		if _, err := os.Stat(c.PasswordFile); err != nil {
			return set.Errorf("password_file", "%v", err)
		}
	case c.PasswordEnv != "":
	case required:
		return set.Errorf("password_file", "required (or password_env): the device needs a password")
	}
	return nil
}

// Password returns the password for dev, read now.
func (c *Credentials) Password(dev switchd.Device) (string, error) {
	src := dev.Secret
	if src == "" {
		switch {
		case c.PasswordFile != "":
			src = "file:" + c.PasswordFile
		case c.PasswordEnv != "":
			src = "env:" + c.PasswordEnv
		default:
			return "", nil
		}
	}
	return ReadSecret(src)
}

// ReadSecret reads "file:PATH" or "env:NAME". Errors are permanent: a
// missing secret does not come back by retrying.
func ReadSecret(src string) (string, error) {
	kind, ref, ok := strings.Cut(src, ":")
	if !ok {
		return "", switchd.Permanent(fmt.Errorf("secret %q: want file:PATH or env:NAME", src))
	}
	switch kind {
	case "file":
		b, err := os.ReadFile(ref)
		if err != nil {
			return "", switchd.Permanent(fmt.Errorf("secret: %w", err))
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	case "env":
		v, ok := os.LookupEnv(ref)
		if !ok {
			return "", switchd.Permanent(fmt.Errorf("secret: environment variable %s is not set", ref))
		}
		return v, nil
	}
	return "", switchd.Permanent(fmt.Errorf("secret %q: want file:PATH or env:NAME", src))
}

// Probe reads one device without changing it, for `switchd probe`.
func Probe(ctx context.Context, dev Device) switchd.ProbeResult {
	r := switchd.ProbeResult{Addr: dev.Addr(), Mode: "unknown", Supports: []string{}}
	if c, ok := dev.(Capabilities); ok {
		r.Supports = append(r.Supports, c.Supports()...)
	}
	obs, err := dev.Observe(ctx)
	if err != nil {
		r.Error = err.Error()
		r.Reachable = !errors.Is(err, switchd.ErrUnreachable)
		return r
	}
	r.Reachable = true
	if obs.Known {
		r.Mode = obs.Mode.String()
	}
	r.Fault = obs.Fault
	r.Detail = obs.Detail
	r.HashrateTHs = obs.HashrateTHs
	if obs.HasPower {
		w := obs.PowerW
		r.PowerW = &w
	}
	r.Model, r.Firmware = obs.Model, obs.Firmware
	return r
}
