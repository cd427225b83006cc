package httpexec

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/internal/pool"
)

// Device is one inference host driven through configured hooks.
type Device struct {
	cfg      *Config
	dev      switchd.Device
	base     string // scheme://host:port
	hostport string
	client   *http.Client
	addrErr  error // a malformed address, reported on use
}

var (
	_ pool.Device       = (*Device)(nil)
	_ pool.Capabilities = (*Device)(nil)
)

// NewDevice returns the device at dev.Addr.
func NewDevice(cfg *Config, dev switchd.Device) pool.Device {
	d := &Device{cfg: cfg, dev: dev, client: NewClient()}
	d.base, d.hostport, d.addrErr = BaseURL(dev.Addr, cfg.Scheme, cfg.Port)
	if d.addrErr != nil {
		d.addrErr = switchd.Permanent(d.addrErr)
	}
	return d
}

// Addr implements pool.Device.
func (d *Device) Addr() string { return d.dev.Addr }

// Supports implements pool.Capabilities: the configured on and off
// actions, such as "off: POST /v2/repository/models/llama/unload" or
// "on: exec /usr/bin/systemctl".
func (d *Device) Supports() []string {
	describe := func(key string, c *Call, argv []string) string {
		if c != nil {
			return key + ": " + c.Method + " " + c.Path
		}
		if len(argv) > 0 {
			return key + ": exec " + argv[0]
		}
		return key
	}
	return []string{describe("on", d.cfg.On, d.cfg.OnCommand), describe("off", d.cfg.Off, d.cfg.OffCommand)}
}

// Observe implements pool.Device: the status command when configured,
// else the readiness GET.
func (d *Device) Observe(ctx context.Context) (pool.Observation, error) {
	if d.addrErr != nil {
		return pool.Observation{}, d.addrErr
	}
	if d.cfg.StatusCommand != nil {
		res, err := Run(ctx, Expand(d.cfg.StatusCommand, d.hostport), d.cfg.CommandTimeout)
		var ee *ExitError
		if err != nil && !errors.As(err, &ee) {
			return pool.Observation{}, fmt.Errorf("status_command: %w", err)
		}
		return ParseStatus(res.Stdout, res.Exit), nil
	}
	token, err := d.cfg.Password(d.dev)
	if err != nil {
		return pool.Observation{}, err
	}
	r, err := Do(ctx, d.client, http.MethodGet, d.base+d.cfg.ReadyPath, token, "", nil)
	if err != nil {
		if Refused(err) {
			// Nothing listens: the engine is stopped, which is off.
			return pool.Observation{Mode: switchd.ModeOff, Known: true, Detail: "not listening"}, nil
		}
		return pool.Observation{}, err
	}
	return readiness(d.cfg, r)
}

// readiness reads a readiness reply.
func readiness(cfg *Config, r Reply) (pool.Observation, error) {
	if r.Status == http.StatusServiceUnavailable {
		return notReady(cfg, "status 503"), nil
	}
	if err := StatusError("readiness "+cfg.ReadyPath, r); err != nil {
		return pool.Observation{}, err
	}
	obs := pool.Observation{Mode: switchd.ModeInference, Known: true}
	if cfg.ReadyCheck == ReadyModels {
		ids, err := ParseModels(r.Body)
		if err != nil {
			return pool.Observation{}, switchd.Retriable(fmt.Errorf("readiness %s: %w", cfg.ReadyPath, err))
		}
		if len(ids) == 0 {
			return notReady(cfg, "no model loaded"), nil
		}
		obs.Model = ids[0]
	}
	return obs, nil
}

// notReady is a server that answers but cannot serve.
func notReady(cfg *Config, why string) pool.Observation {
	if cfg.NotReady == NotReadyFault {
		return pool.Observation{Mode: switchd.ModeInference, Known: true, Fault: true, Detail: "not ready: " + why}
	}
	return pool.Observation{Mode: switchd.ModeOff, Known: true, Detail: "not ready: " + why}
}

// ParseStatus reads a status command's result. The first word of its
// output decides when it is one of the known words (systemctl is-active
// prints active, inactive, failed, activating...); otherwise the exit
// status does: 0 is inference, anything else off (a probe such as
// curl -sf exits non-zero when the server is down).
func ParseStatus(stdout string, exit int) pool.Observation {
	word := ""
	if f := strings.Fields(stdout); len(f) > 0 {
		word = strings.ToLower(f[0])
	}
	switch word {
	case "inference", "ready", "active", "running", "on", "serving":
		return pool.Observation{Mode: switchd.ModeInference, Known: true}
	case "off", "inactive", "stopped", "sleeping", "asleep", "dead":
		return pool.Observation{Mode: switchd.ModeOff, Known: true, Detail: word}
	case "failed":
		// A crashed unit draws no GPU power: off, so that a device meant
		// to be in inference counts as drifted and is started again.
		return pool.Observation{Mode: switchd.ModeOff, Known: true, Detail: "failed"}
	case "activating", "starting", "loading", "reloading", "not-ready":
		return pool.Observation{Mode: switchd.ModeInference, Known: true, Fault: true, Detail: "not ready: " + word}
	case "deactivating", "stopping":
		return pool.Observation{Known: false, Detail: word}
	}
	if exit == 0 {
		return pool.Observation{Mode: switchd.ModeInference, Known: true}
	}
	return pool.Observation{Mode: switchd.ModeOff, Known: true, Detail: fmt.Sprintf("status exit %d", exit)}
}

// Set implements pool.Device.
func (d *Device) Set(ctx context.Context, mode switchd.Mode) error {
	if d.addrErr != nil {
		return d.addrErr
	}
	var (
		call *Call
		argv []string
		key  string
	)
	switch mode {
	case switchd.ModeInference:
		call, argv, key = d.cfg.On, d.cfg.OnCommand, "on"
	case switchd.ModeOff:
		call, argv, key = d.cfg.Off, d.cfg.OffCommand, "off"
	default:
		return switchd.Permanent(fmt.Errorf("mode %s: an inference host is in inference or off", mode))
	}
	if argv != nil {
		if _, err := Run(ctx, Expand(argv, d.hostport), d.cfg.CommandTimeout); err != nil {
			return fmt.Errorf("%s_command: %w", key, err)
		}
		return nil
	}
	if call == nil {
		return switchd.Permanent(fmt.Errorf("%s: no call configured", key))
	}
	token, err := d.cfg.Password(d.dev)
	if err != nil {
		return err
	}
	var body []byte
	if call.Body != "" {
		body = []byte(call.Body)
	}
	r, err := Do(ctx, d.client, call.Method, d.base+call.Path, token, call.ContentType, body)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return StatusError(key+": "+call.Method+" "+call.Path, r)
}
