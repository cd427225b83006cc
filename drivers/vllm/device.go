package vllm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/httpexec"
	"github.com/switchd/switchd/drivers/internal/pool"
)

// sleepModeHint is added to a 404 on the sleep routes.
const sleepModeHint = "sleep mode not enabled: start vLLM with --enable-sleep-mode and VLLM_SERVER_DEV_MODE=1, or use off_action: stop"

// Device is one vLLM server.
type Device struct {
	cfg      *Config
	dev      switchd.Device
	base     string // scheme://host:port
	hostport string
	client   *http.Client
	addrErr  error

	mu      sync.Mutex
	version string // "vLLM 0.9.2" once read; the server does not change it while up
}

var (
	_ pool.Device       = (*Device)(nil)
	_ pool.Capabilities = (*Device)(nil)
)

// NewDevice returns the device at dev.Addr.
func NewDevice(cfg *Config, dev switchd.Device) pool.Device {
	d := &Device{cfg: cfg, dev: dev, client: httpexec.NewClient()}
	d.base, d.hostport, d.addrErr = httpexec.BaseURL(dev.Addr, cfg.Scheme, cfg.Port)
	if d.addrErr != nil {
		d.addrErr = switchd.Permanent(d.addrErr)
	}
	return d
}

// Addr implements pool.Device.
func (d *Device) Addr() string { return d.dev.Addr }

// Supports implements pool.Capabilities.
func (d *Device) Supports() []string {
	if d.cfg.OffAction == OffStop {
		return []string{"stop", "start"}
	}
	return []string{"sleep", "wake_up"}
}

// Observe implements pool.Device. A sleeping engine is off; an awake one
// is in inference, with a fault until its readiness check passes. With
// off_action stop, a refused connection is off (the server is stopped).
func (d *Device) Observe(ctx context.Context) (pool.Observation, error) {
	if d.addrErr != nil {
		return pool.Observation{}, d.addrErr
	}
	token, err := d.cfg.Password(d.dev)
	if err != nil {
		return pool.Observation{}, err
	}
	r, err := httpexec.Do(ctx, d.client, http.MethodGet, d.base+"/is_sleeping", token, "", nil)
	if err != nil {
		if d.cfg.OffAction == OffStop && httpexec.Refused(err) {
			return pool.Observation{Mode: switchd.ModeOff, Known: true, Detail: "not listening"}, nil
		}
		return pool.Observation{}, err
	}
	switch {
	case r.Status == http.StatusNotFound && d.cfg.OffAction == OffStop:
		// No sleep routes: the server is awake if it answers.
	case r.Status == http.StatusNotFound:
		return pool.Observation{}, switchd.Permanent(fmt.Errorf("GET /is_sleeping: status 404: %s", sleepModeHint))
	default:
		if err := httpexec.StatusError("GET /is_sleeping", r); err != nil {
			return pool.Observation{}, err
		}
		sleeping, err := ParseIsSleeping(r.Body)
		if err != nil {
			return pool.Observation{}, switchd.Retriable(fmt.Errorf("GET /is_sleeping: %w", err))
		}
		if sleeping {
			mode := switchd.ModeOff
			if d.cfg.sleepMode {
				mode = switchd.ModeSleep
			}
			return pool.Observation{Mode: mode, Known: true, Detail: "sleeping", Firmware: d.cachedVersion()}, nil
		}
	}
	obs, err := d.readiness(ctx, token)
	if err != nil {
		return pool.Observation{}, err
	}
	obs.Firmware = d.readVersion(ctx, token)
	return obs, nil
}

// readiness reads the readiness check of an awake server.
func (d *Device) readiness(ctx context.Context, token string) (pool.Observation, error) {
	what := "GET " + d.cfg.ReadyPath
	r, err := httpexec.Do(ctx, d.client, http.MethodGet, d.base+d.cfg.ReadyPath, token, "", nil)
	if err != nil {
		return pool.Observation{}, err
	}
	notReady := func(why string) pool.Observation {
		return pool.Observation{Mode: switchd.ModeInference, Known: true, Fault: true, Detail: "not ready: " + why}
	}
	switch {
	case r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden || r.Status == http.StatusNotFound:
		// Credentials refused (vLLM guards only /v1 routes with its API
		// key, so this is where a wrong token shows) or a wrong path.
		return pool.Observation{}, httpexec.StatusError(what, r)
	case r.Status < 200 || r.Status >= 300:
		return notReady(fmt.Sprintf("status %d", r.Status)), nil
	}
	obs := pool.Observation{Mode: switchd.ModeInference, Known: true}
	if strings.HasPrefix(d.cfg.ReadyPath, "/v1/models") {
		ids, err := httpexec.ParseModels(r.Body)
		if err != nil {
			return pool.Observation{}, switchd.Retriable(fmt.Errorf("%s: %w", what, err))
		}
		if len(ids) == 0 {
			return notReady("no model listed"), nil
		}
		obs.Model = ids[0]
	}
	return obs, nil
}

// cachedVersion is the server version read before, if any.
func (d *Device) cachedVersion() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.version
}

// readVersion returns the server version, read once: GET /version. It is
// informative, so failures are ignored.
func (d *Device) readVersion(ctx context.Context, token string) string {
	if v := d.cachedVersion(); v != "" {
		return v
	}
	r, err := httpexec.Do(ctx, d.client, http.MethodGet, d.base+"/version", token, "", nil)
	if err != nil || r.Status != http.StatusOK {
		return ""
	}
	v, err := ParseVersion(r.Body)
	if err != nil || v == "" {
		return ""
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.version = "vLLM " + v
	return d.version
}

// Set implements pool.Device. It returns once the server accepted the
// call (or the hook exited 0); Observe confirms the arrival.
func (d *Device) Set(ctx context.Context, mode switchd.Mode) error {
	if d.addrErr != nil {
		return d.addrErr
	}
	switch mode {
	case switchd.ModeInference, switchd.ModeOff:
	case switchd.ModeSleep:
		if !d.cfg.sleepMode {
			return switchd.Permanent(fmt.Errorf("mode sleep: the fleet declares no sleep mode"))
		}
	default:
		return switchd.Permanent(fmt.Errorf("mode %s: a GPU host is in inference or off", mode))
	}
	if d.cfg.sleepMode && d.awakeable(ctx, mode) {
		// A running server: sleep or wake it, as with off_action sleep.
		return d.sleepOrWake(ctx, mode)
	}
	if d.cfg.OffAction == OffStop {
		argv, key := d.cfg.StartCommand, "start_command"
		if mode == switchd.ModeOff {
			d.drain(ctx, "")
			argv, key = d.cfg.StopCommand, "stop_command"
		}
		if _, err := httpexec.Run(ctx, httpexec.Expand(argv, d.hostport), d.cfg.CommandTimeout); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		return nil
	}
	return d.sleepOrWake(ctx, mode)
}

// drain waits, at most DrainTimeout, until the server runs no request.
// A server without metrics, or one that does not answer, is not waited
// for: curtailment must not hang on a missing gauge.
func (d *Device) drain(ctx context.Context, token string) {
	if d.cfg.DrainTimeout <= 0 {
		return
	}
	if token == "" {
		token, _ = d.cfg.Password(d.dev) // a missing secret shows on the call that needs it
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.DrainTimeout)
	defer cancel()
	for {
		r, err := httpexec.Do(ctx, d.client, http.MethodGet, d.base+"/metrics", token, "", nil)
		if err != nil || r.Status != http.StatusOK {
			return
		}
		if n, ok := ParseRunning(r.Body); !ok || n <= 0 {
			return
		}
		t := time.NewTimer(d.cfg.DrainInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// ParseIsSleeping reads GET /is_sleeping: {"is_sleeping": bool}.
func ParseIsSleeping(body []byte) (bool, error) {
	var r struct {
		IsSleeping *bool `json:"is_sleeping"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return false, fmt.Errorf("is_sleeping reply: %w", err)
	}
	if r.IsSleeping == nil {
		return false, errors.New("is_sleeping reply: no is_sleeping field")
	}
	return *r.IsSleeping, nil
}

// ParseVersion reads GET /version: {"version": "0.9.2"}.
func ParseVersion(body []byte) (string, error) {
	var r struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return "", fmt.Errorf("version reply: %w", err)
	}
	return r.Version, nil
}

// runningMetric is vLLM's gauge of requests in execution batches.
const runningMetric = "vllm:num_requests_running"

// ParseRunning sums vllm:num_requests_running over its series (one per
// model and engine) in a Prometheus text exposition. ok is false when the
// metric is absent.
func ParseRunning(body []byte) (n float64, ok bool) {
	for line := range strings.Lines(string(body)) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, runningMetric) {
			continue
		}
		rest := line[len(runningMetric):]
		switch {
		case strings.HasPrefix(rest, "{"):
			// Label values may hold spaces; the value follows the last '}'.
			i := strings.LastIndexByte(rest, '}')
			if i < 0 {
				continue
			}
			rest = rest[i+1:]
		case strings.HasPrefix(rest, " "), strings.HasPrefix(rest, "\t"):
		default:
			continue // another metric with this prefix
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		n += v
		ok = true
	}
	return n, ok
}

// sleepOrWake puts a running server to sleep (off or sleep) or wakes it
// (inference): POST /sleep?level=N or POST /wake_up.
func (d *Device) sleepOrWake(ctx context.Context, mode switchd.Mode) error {
	token, err := d.cfg.Password(d.dev)
	if err != nil {
		return err
	}
	path := "/wake_up"
	if mode != switchd.ModeInference {
		d.drain(ctx, token)
		path = "/sleep?level=" + strconv.Itoa(d.cfg.SleepLevel)
	}
	r, err := httpexec.Do(ctx, d.client, http.MethodPost, d.base+path, token, "", nil)
	if err != nil {
		return err
	}
	if r.Status == http.StatusNotFound {
		return switchd.Permanent(fmt.Errorf("POST %s: status 404: %s", path, sleepModeHint))
	}
	return httpexec.StatusError("POST "+path, r)
}

// awakeable reports whether Set(mode) on a fleet with a sleep mode is a
// sleep or a wake of a running server: sleep when the server answers
// (a stopped one is started instead, comes up awake, and the pool's
// re-command puts it to sleep once its transition time is over), inference
// when the server answers that it sleeps. Off always stops the server.
func (d *Device) awakeable(ctx context.Context, mode switchd.Mode) bool {
	if mode == switchd.ModeOff {
		return false
	}
	token, err := d.cfg.Password(d.dev)
	if err != nil {
		return false
	}
	r, err := httpexec.Do(ctx, d.client, http.MethodGet, d.base+"/is_sleeping", token, "", nil)
	if err != nil || r.Status != http.StatusOK {
		return false
	}
	if mode == switchd.ModeSleep {
		return true
	}
	sleeping, err := ParseIsSleeping(r.Body)
	return err == nil && sleeping
}
