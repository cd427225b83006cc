// Package vllm drives vLLM inference hosts (YAML name "vllm"): a device is
// one OpenAI-compatible server, host:port (default port 8000). Leaving
// inference drains in-flight requests (optional, bounded) and then puts
// the engine to sleep (POST /sleep, which frees the GPU in well under a
// second and keeps the process) or stops it with an exec hook; entering
// wakes (POST /wake_up) or starts it, and the device counts as in
// inference only once its readiness check passes.
//
// The package imports the root, drivers/internal/pool and drivers/httpexec
// (the HTTP and exec plumbing) only.
package vllm

import (
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/httpexec"
	"github.com/switchd/switchd/drivers/internal/pool"
)

// Sample is a commented settings block for the driver.
//
//go:embed sample.yaml
var Sample string

// OffAction is how a device leaves inference.
type OffAction string

// Off actions.
const (
	// OffSleep: POST /sleep?level=N (needs --enable-sleep-mode and
	// VLLM_SERVER_DEV_MODE=1); POST /wake_up to come back.
	OffSleep OffAction = "sleep"
	// OffStop: run stop_command (systemctl stop ...); start_command to
	// come back, which reloads the model (30-100+ s).
	OffStop OffAction = "stop"
)

// UnmarshalText accepts "sleep" or "stop".
func (a *OffAction) UnmarshalText(b []byte) error {
	switch v := OffAction(b); v {
	case OffSleep, OffStop:
		*a = v
		return nil
	}
	return fmt.Errorf("off_action %q: want sleep or stop", b)
}

// Config is the driver's settings block.
type Config struct {
	pool.Settings `yaml:",inline"`
	// sleepMode is set when the fleet declares the sleep mode (off_action
	// stop only): a sleeping engine is then in sleep, not off, and sleep
	// is POST /sleep. Not a settings key: it comes from the site's modes.
	sleepMode bool
	// Credentials: the password, when set, is the server's API key, sent
	// as a bearer token; the username is not used.
	pool.Credentials `yaml:",inline"`

	Port   int    `yaml:"port"`   // added to addresses without one (default 8000)
	Scheme string `yaml:"scheme"` // http (default) or https
	// ReadyPath is the readiness GET (default /v1/models, which must list
	// a model; any other path passes on 2xx, such as /health).
	ReadyPath  string    `yaml:"ready_path"`
	OffAction  OffAction `yaml:"off_action"`
	SleepLevel int       `yaml:"sleep_level"` // 1 (default: weights to CPU RAM) or 2 (weights dropped)
	// StopCommand and StartCommand are the exec hooks of off_action stop:
	// argv lists, run without a shell, {addr} {host} {port} replaced.
	StopCommand  []string `yaml:"stop_command"`
	StartCommand []string `yaml:"start_command"`
	// CommandTimeout bounds one hook (default: the call timeout).
	CommandTimeout time.Duration `yaml:"command_timeout"`
	// DrainTimeout bounds the wait for in-flight requests to finish before
	// leaving inference (read from /metrics vllm:num_requests_running);
	// 0 does not wait. It must leave room in timeout for the off call.
	DrainTimeout  time.Duration `yaml:"drain_timeout"`
	DrainInterval time.Duration `yaml:"drain_interval"` // between reads while draining (default 500ms)
}

// DefaultConfig returns the defaults applied before decoding. The call
// timeout is longer than the pool's default: a level 1 sleep copies the
// weights to host memory, seconds for a large model.
func DefaultConfig() Config {
	c := Config{Port: 8000, Scheme: "http", ReadyPath: "/v1/models", OffAction: OffSleep, SleepLevel: 1, DrainInterval: 500 * time.Millisecond}
	c.Timeout = 30 * time.Second
	return c
}

// ParseConfig decodes and validates the settings block.
func ParseConfig(s switchd.Settings) (Config, error) {
	cfg := DefaultConfig()
	if err := s.Decode(&cfg); err != nil {
		return Config{}, err
	}
	cfg.Settings.Defaults()
	errs := []error{cfg.Settings.Validate(s), cfg.Credentials.Validate(s, false)}
	if cfg.Port < 1 || cfg.Port > 65535 {
		errs = append(errs, s.Errorf("port", "must be between 1 and 65535 (got %d)", cfg.Port))
	}
	if cfg.Scheme != "http" && cfg.Scheme != "https" {
		errs = append(errs, s.Errorf("scheme", "want http or https (got %q)", cfg.Scheme))
	}
	if !strings.HasPrefix(cfg.ReadyPath, "/") {
		errs = append(errs, s.Errorf("ready_path", "must start with / (got %q)", cfg.ReadyPath))
	}
	if cfg.SleepLevel != 1 && cfg.SleepLevel != 2 {
		errs = append(errs, s.Errorf("sleep_level", "want 1 or 2 (got %d)", cfg.SleepLevel))
	}
	switch cfg.OffAction {
	case OffStop:
		errs = append(errs, checkArgv(s, "stop_command", cfg.StopCommand), checkArgv(s, "start_command", cfg.StartCommand))
	case OffSleep:
		if cfg.StopCommand != nil {
			errs = append(errs, s.Errorf("stop_command", "only with off_action: stop"))
		}
		if cfg.StartCommand != nil {
			errs = append(errs, s.Errorf("start_command", "only with off_action: stop"))
		}
	}
	if cfg.CommandTimeout < 0 {
		errs = append(errs, s.Errorf("command_timeout", "must not be negative (got %s)", cfg.CommandTimeout))
	}
	if cfg.DrainTimeout < 0 || cfg.DrainTimeout >= cfg.Timeout {
		errs = append(errs, s.Errorf("drain_timeout", "must be between 0 and timeout (%s), which bounds the whole command (got %s)", cfg.Timeout, cfg.DrainTimeout))
	}
	if cfg.DrainInterval < 10*time.Millisecond {
		errs = append(errs, s.Errorf("drain_interval", "must be at least 10ms (got %s)", cfg.DrainInterval))
	}
	return cfg, errors.Join(errs...)
}

// checkArgv checks an exec hook: required, a list naming a program.
func checkArgv(s switchd.Settings, key string, argv []string) error {
	if len(argv) == 0 || argv[0] == "" {
		return s.Errorf(key, "required with off_action: stop (a list: [program, arg, ...])")
	}
	if strings.ContainsAny(argv[0], " \t") {
		return s.Errorf(key, "program %q contains a space: give the arguments as separate list items (no shell runs the command)", argv[0])
	}
	return nil
}

// New builds the driver of a fleet.
func New(d pool.Deps) (switchd.Driver, error) {
	cfg, err := ParseConfig(d.Settings)
	if err != nil {
		return nil, err
	}
	if d.Spec.Supports[switchd.ModeSleep] {
		if cfg.OffAction != OffStop {
			return nil, d.Settings.Errorf("off_action", "fleet %q declares a sleep mode: with off_action sleep, off already is vLLM's sleep; "+
				"use off_action: stop (off stops the server, sleep puts it to sleep) or drop the sleep mode", d.Spec.Name)
		}
		cfg.sleepMode = true
	}
	devs := make([]pool.Device, 0, len(d.Devices))
	for _, dev := range d.Devices {
		if _, _, err := httpexec.BaseURL(dev.Addr, cfg.Scheme, cfg.Port); err != nil {
			return nil, fmt.Errorf("device %q: %w", dev.Addr, err)
		}
		devs = append(devs, NewDevice(&cfg, dev))
	}
	return pool.New(d, cfg.Settings, devs), nil
}

// OpenDevice builds one device from a settings block, without I/O: the
// device `switchd probe` reads.
func OpenDevice(s switchd.Settings, dev switchd.Device) (pool.Device, error) {
	cfg, err := ParseConfig(s)
	if err != nil {
		return nil, err
	}
	return NewDevice(&cfg, dev), nil
}
