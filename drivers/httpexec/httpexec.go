// Package httpexec is the generic inference-host driver (YAML name "http"):
// it puts an engine in and out of inference with configured HTTP calls or
// exec hooks, and reads its state from a readiness endpoint (TGI /health,
// Triton /v2/health/ready, vLLM /v1/models) or a status command. It also
// holds the HTTP and exec plumbing the vllm driver shares.
//
// Exec hooks run their argv directly, never through a shell. The package
// imports the root and drivers/internal/pool only.
package httpexec

import (
	_ "embed"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/internal/pool"
)

// Sample is a commented settings block for the driver.
//
//go:embed sample.yaml
var Sample string

// ReadyCheck says what a 2xx readiness reply must hold.
type ReadyCheck string

// Readiness checks.
const (
	// ReadyStatus: any 2xx reply is ready (TGI /health, Triton
	// /v2/health/ready).
	ReadyStatus ReadyCheck = "status"
	// ReadyModels: the reply is an OpenAI model list with at least one
	// model (GET /v1/models).
	ReadyModels ReadyCheck = "models"
)

// UnmarshalText accepts "status" or "models".
func (r *ReadyCheck) UnmarshalText(b []byte) error {
	switch v := ReadyCheck(b); v {
	case ReadyStatus, ReadyModels:
		*r = v
		return nil
	}
	return fmt.Errorf("ready_check %q: want status or models", b)
}

// NotReady says what a server that answers but is not ready is in.
type NotReady string

// What a not-ready server counts as.
const (
	// NotReadyOff: off (the engine is curtailed or still loading); the
	// pool's transition time covers the loading.
	NotReadyOff NotReady = "off"
	// NotReadyFault: inference, with a fault (for engines that are never
	// put off through their readiness endpoint).
	NotReadyFault NotReady = "fault"
)

// UnmarshalText accepts "off" or "fault".
func (n *NotReady) UnmarshalText(b []byte) error {
	switch v := NotReady(b); v {
	case NotReadyOff, NotReadyFault:
		*n = v
		return nil
	}
	return fmt.Errorf("not_ready %q: want off or fault", b)
}

// Call is one configured HTTP call.
type Call struct {
	Method      string `yaml:"method"` // default POST
	Path        string `yaml:"path"`
	Body        string `yaml:"body"`
	ContentType string `yaml:"content_type"` // default application/json when there is a body
}

// Config is the driver's settings block.
type Config struct {
	pool.Settings `yaml:",inline"`
	// Credentials: the password, when set, is sent as a bearer token;
	// the username is not used.
	pool.Credentials `yaml:",inline"`

	Port   int    `yaml:"port"`   // added to addresses without one (default 8000)
	Scheme string `yaml:"scheme"` // http (default) or https
	// ReadyPath is the readiness GET (default /health), unused when
	// StatusCommand is set.
	ReadyPath  string     `yaml:"ready_path"`
	ReadyCheck ReadyCheck `yaml:"ready_check"`
	NotReady   NotReady   `yaml:"not_ready"`

	// On and Off put the engine in and out of inference over HTTP; or
	// OnCommand and OffCommand as exec hooks (exactly one of each pair).
	On         *Call    `yaml:"on"`
	Off        *Call    `yaml:"off"`
	OnCommand  []string `yaml:"on_command"`
	OffCommand []string `yaml:"off_command"`
	// StatusCommand, when set, replaces the readiness GET.
	StatusCommand []string `yaml:"status_command"`
	// CommandTimeout bounds one exec hook (default: the call timeout).
	CommandTimeout time.Duration `yaml:"command_timeout"`
}

// DefaultConfig returns the defaults applied before decoding. The call
// timeout is longer than the pool's default: starting or stopping a
// service through a hook takes seconds.
func DefaultConfig() Config {
	c := Config{Port: 8000, Scheme: "http", ReadyCheck: ReadyStatus, NotReady: NotReadyOff}
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
	if cfg.StatusCommand == nil && cfg.ReadyPath == "" {
		cfg.ReadyPath = "/health"
	}
	if cfg.ReadyPath != "" && !strings.HasPrefix(cfg.ReadyPath, "/") {
		errs = append(errs, s.Errorf("ready_path", "must start with / (got %q)", cfg.ReadyPath))
	}
	if cfg.StatusCommand != nil {
		errs = append(errs, checkArgv(s, "status_command", cfg.StatusCommand))
		if cfg.ReadyPath != "" {
			errs = append(errs, s.Errorf("ready_path", "give ready_path or status_command, not both"))
		}
	}
	errs = append(errs, checkAction(s, "on", cfg.On, cfg.OnCommand), checkAction(s, "off", cfg.Off, cfg.OffCommand))
	if cfg.CommandTimeout < 0 {
		errs = append(errs, s.Errorf("command_timeout", "must not be negative (got %s)", cfg.CommandTimeout))
	}
	return cfg, errors.Join(errs...)
}

// checkAction checks that exactly one of an HTTP call and a command puts
// the engine in a mode, and that the one given is well formed.
func checkAction(s switchd.Settings, key string, c *Call, argv []string) error {
	switch {
	case c != nil && argv != nil:
		return s.Errorf(key, "give %s or %s_command, not both", key, key)
	case c == nil && argv == nil:
		return s.Errorf(key, "required (or %s_command): how to put the engine %s", key, key)
	case argv != nil:
		return checkArgv(s, key+"_command", argv)
	}
	if c.Method == "" {
		c.Method = http.MethodPost
	}
	c.Method = strings.ToUpper(c.Method)
	if c.ContentType == "" && c.Body != "" {
		c.ContentType = "application/json"
	}
	var errs []error
	switch c.Method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		errs = append(errs, s.Errorf(key+".method", "want GET, POST, PUT, PATCH or DELETE (got %q)", c.Method))
	}
	if !strings.HasPrefix(c.Path, "/") {
		errs = append(errs, s.Errorf(key+".path", "must start with / (got %q)", c.Path))
	}
	return errors.Join(errs...)
}

// checkArgv checks an exec hook's argv: a program and its arguments, as a
// list (a single string with spaces would be one program name).
func checkArgv(s switchd.Settings, key string, argv []string) error {
	if len(argv) == 0 || argv[0] == "" {
		return s.Errorf(key, "must name a program (a list: [program, arg, ...])")
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
	devs := make([]pool.Device, 0, len(d.Devices))
	for _, dev := range d.Devices {
		if _, _, err := BaseURL(dev.Addr, cfg.Scheme, cfg.Port); err != nil {
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
