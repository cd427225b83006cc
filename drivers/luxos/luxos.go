// Package luxos is the driver (YAML name "luxos") for miners running LuxOS,
// Luxor's firmware, through the LUXminer API on TCP 4028: a cgminer-style
// API with session-guarded writes. Mining is stopped with `curtail sleep`
// (hashboards and power supply off) and started with `curtail wakeup`; a
// power target picks the nearest built-in profile with `profileset`.
//
// Reads (config, summary, power, devs) need no session. Every write takes
// the miner's one session: logon, the command with the session ID as the
// first parameter, logoff; writes to one miner are serialised.
//
// A vendor folder holds only its commands and quirks: the wire is
// drivers/internal/cgrpc, the per-device bookkeeping drivers/internal/pool.
// It imports neither the controller nor the daemon.
package luxos

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/internal/cgrpc"
	"github.com/switchd/switchd/drivers/internal/pool"
)

// Sample is a commented settings block for a luxos fleet.
//
//go:embed sample.yaml
var Sample string

// Config is the driver's settings block.
type Config struct {
	pool.Settings `yaml:",inline"`
	// Port is used for devices listed without one (default 4028).
	Port int `yaml:"port"`
	// DialTimeout bounds connecting to a miner (default 3s, at most
	// timeout).
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// TakeSession lets a write kill another client's session when logon
	// is refused. Off by default: sessions are how LuxOS tools keep out
	// of each other's way, and killing one may break another tool's
	// change half-way.
	TakeSession bool `yaml:"take_session"`
}

// DefaultConfig is the configuration with every default filled in.
func DefaultConfig() Config {
	c := Config{Port: 4028, DialTimeout: 3 * time.Second}
	c.Settings.Defaults()
	return c
}

// ParseConfig decodes and validates a luxos settings block (strictly: an
// unknown key is an error). It does no I/O.
func ParseConfig(s switchd.Settings) (Config, error) {
	c := DefaultConfig()
	if err := s.Decode(&c); err != nil {
		return c, err
	}
	var errs []error
	errs = append(errs, c.Settings.Validate(s))
	c.Settings.Defaults()
	if c.Port <= 0 || c.Port > 65535 {
		errs = append(errs, s.Errorf("port", "must be between 1 and 65535 (got %d)", c.Port))
	}
	if c.DialTimeout <= 0 || c.DialTimeout > time.Minute {
		errs = append(errs, s.Errorf("dial_timeout", "must be between 0 and 1m, exclusive of 0 (got %s)", c.DialTimeout))
	}
	return c, errors.Join(errs...)
}

// New builds a luxos fleet driver: one device per listed address, under the
// shared pool.
func New(d pool.Deps) (switchd.Driver, error) {
	cfg, err := ParseConfig(d.Settings)
	if err != nil {
		return nil, err
	}
	devs := make([]pool.Device, len(d.Devices))
	for i, dev := range d.Devices {
		devs[i] = newDevice(&cfg, dev)
	}
	return pool.New(d, cfg.Settings, devs), nil
}

// Device is one LuxOS miner.
type Device struct {
	addr string
	cfg  *Config

	// noMulti is set once the miner refused a multi-command poll; it is
	// then read with one command per connection.
	noMulti atomic.Bool

	// mu serialises writes: LuxOS has one session per miner.
	mu sync.Mutex
	// leaked is a session this driver created and could not release
	// (logoff failed); it expires on the miner after a minute idle, and
	// until then the next write reuses it instead of reporting it as held
	// by another client. Under mu.
	leaked string
	// profiles is the miner's profile list, read once. Under mu.
	profiles []profile
}

var (
	_ pool.Device       = (*Device)(nil)
	_ pool.Capabilities = (*Device)(nil)
	_ pool.PowerSetter  = (*Device)(nil)
	_ pool.Closer       = (*Device)(nil)
)

// NewDevice returns the device for one listed miner (a *Device). cfg is
// shared by the fleet's devices and must not change afterwards.
func NewDevice(cfg *Config, dev switchd.Device) pool.Device { return newDevice(cfg, dev) }

func newDevice(cfg *Config, dev switchd.Device) *Device {
	return &Device{addr: cgrpc.WithPort(dev.Addr, strconv.Itoa(cfg.Port)), cfg: cfg}
}

// Addr implements pool.Device.
func (d *Device) Addr() string { return d.addr }

// Supports implements pool.Capabilities.
func (d *Device) Supports() []string {
	return []string{"curtail sleep", "curtail wakeup", "profileset"}
}

func (d *Device) opts() cgrpc.Options {
	return cgrpc.Options{DialTimeout: min(d.cfg.DialTimeout, d.cfg.Timeout), Timeout: d.cfg.Timeout}
}

// call sends one command and checks its STATUS.
func (d *Device) call(ctx context.Context, cmd, param string) (cgrpc.Reply, error) {
	return cgrpc.Call(ctx, d.addr, cmd, param, d.opts())
}

// pollCommands are read together in one multi-command request. devs is
// read only when it matters (see Observe).
var pollCommands = []string{"config", "summary", "power"}

const pollRequest = "config+summary+power"

// Observe implements pool.Device: one multi-command request
// (config+summary+power), or one request per command on firmware that
// refuses multi-commands. A miner that looks faulted (not curtailed, zero
// hashrate) is asked for devs too: a board that reports IsRamping is waking
// up, not broken. Keeping devs out of the ordinary poll halves its reply.
func (d *Device) Observe(ctx context.Context) (pool.Observation, error) {
	rs, err := d.poll(ctx)
	if err != nil {
		return pool.Observation{}, err
	}
	o, err := observe(rs)
	if err != nil || !o.Fault {
		return o, err
	}
	if r, err := d.call(ctx, "devs", ""); err == nil {
		rs.devs = r
		return observe(rs)
	}
	// devs unreadable: the fault stands, judged again on the next poll.
	return o, nil
}

// poll reads the poll commands' replies.
func (d *Device) poll(ctx context.Context) (replies, error) {
	if !d.noMulti.Load() {
		raw, err := cgrpc.Exchange(ctx, d.addr, cgrpc.Request(pollRequest, ""), d.opts())
		if err != nil {
			return replies{}, err
		}
		rs, err := splitMulti(raw)
		if !errors.Is(err, errNoMulti) {
			return rs, err
		}
		d.noMulti.Store(true)
	}
	var rs replies
	for _, cmd := range pollCommands {
		r, err := d.call(ctx, cmd, "")
		var se *cgrpc.StatusError
		switch {
		case errors.As(err, &se):
			// The miner refused this read; the others may still say.
			continue
		case err != nil:
			return replies{}, err
		}
		rs.set(cmd, r)
	}
	return rs, nil
}

// Set implements pool.Device: curtail sleep for off, curtail wakeup for
// mining. It returns once the miner acknowledged the command.
func (d *Device) Set(ctx context.Context, mode switchd.Mode) error {
	var action string
	switch mode {
	case switchd.ModeOff:
		action = "sleep"
	case switchd.ModeMining:
		action = "wakeup"
	default:
		return switchd.Permanent(fmt.Errorf("luxos %s: mode %s is not supported (off or mining)", d.addr, mode))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.write(ctx, "curtail", action)
}

// SetPowerPercent implements pool.PowerSetter: it selects the profile whose
// estimated power is nearest pct percent of the default profile's and
// applies it with profileset. The profile list is read once per device.
func (d *Device) SetPowerPercent(ctx context.Context, pct float64) error {
	if !(pct > 0 && pct <= 200) {
		return switchd.Permanent(fmt.Errorf("luxos %s: power target %v%% out of range (0, 200]", d.addr, pct))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.profiles == nil {
		r, err := d.call(ctx, "profiles", "")
		if err != nil {
			return fmt.Errorf("luxos %s: profiles: %w", d.addr, err)
		}
		ps, err := parseProfiles(r)
		if err != nil {
			return switchd.Permanent(fmt.Errorf("luxos %s: %w", d.addr, err))
		}
		d.profiles = ps
	}
	p, err := nearestProfile(d.profiles, pct)
	if err != nil {
		return switchd.Permanent(fmt.Errorf("luxos %s: %w", d.addr, err))
	}
	return d.write(ctx, "profileset", p.Name)
}

// Close implements pool.Closer: it releases a session left open by a
// failed logoff.
func (d *Device) Close(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.leaked == "" {
		return nil
	}
	if _, err := d.call(ctx, "logoff", d.leaked); err != nil && !refused(err) {
		return fmt.Errorf("luxos %s: logoff: %w", d.addr, err)
	}
	// Released, or refused because it had already expired.
	d.leaked = ""
	return nil
}

// write runs one session-guarded command: logon, cmd with the session ID
// as its first parameter, logoff. Under mu.
func (d *Device) write(ctx context.Context, cmd, arg string) error {
	sid, err := d.logon(ctx)
	if err != nil {
		return fmt.Errorf("luxos %s: %w", d.addr, err)
	}
	_, cerr := d.call(ctx, cmd, sid+","+arg)
	// Release the session even when the command failed, so that other
	// tools (and our next write) can log on. A failed logoff is not the
	// command's failure: the session expires on its own after a minute
	// idle, and until then the next write reuses it.
	// A refused logoff means the session is gone already (expired, killed).
	if _, err := d.call(ctx, "logoff", sid); err != nil && !refused(err) {
		d.leaked = sid
	} else {
		d.leaked = ""
	}
	if cerr != nil {
		return fmt.Errorf("luxos %s: %s %s: %w", d.addr, cmd, arg, cerr)
	}
	return nil
}

// logon returns a session ID for this driver. Under mu.
func (d *Device) logon(ctx context.Context) (string, error) {
	sid, err := d.tryLogon(ctx)
	if err == nil || !errors.Is(err, errSessionBusy) {
		return sid, err
	}
	// Refused: a session exists. It may be ours (a logoff that failed) or
	// may just have expired.
	cur, serr := d.currentSession(ctx)
	switch {
	case serr != nil:
		return "", serr
	case cur != "" && cur == d.leaked:
		return cur, nil
	case cur == "":
		if sid, err = d.tryLogon(ctx); !errors.Is(err, errSessionBusy) {
			return sid, err
		}
	}
	if d.cfg.TakeSession {
		if _, err := d.call(ctx, "kill", ""); err != nil {
			return "", fmt.Errorf("kill: %w", err)
		}
		if sid, err = d.tryLogon(ctx); !errors.Is(err, errSessionBusy) {
			return sid, err
		}
	}
	return "", switchd.AuthError(fmt.Errorf("logon refused: session held by another client "+
		"(LuxOS allows one session per miner; it expires after one minute idle; take_session: true kills it): %w", err))
}

// refused reports whether the miner answered err's command with an error
// STATUS (it understood and said no), as opposed to not answering.
func refused(err error) bool {
	var se *cgrpc.StatusError
	return errors.As(err, &se)
}

// errSessionBusy marks a logon the miner refused.
var errSessionBusy = errors.New("session busy")

// tryLogon sends logon once.
func (d *Device) tryLogon(ctx context.Context) (string, error) {
	r, err := d.call(ctx, "logon", "")
	if refused(err) {
		// LuxOS documents one reason to refuse a logon: another session
		// is active. The refusal's code and text are not documented.
		return "", fmt.Errorf("%w: %w", errSessionBusy, err)
	}
	if err != nil {
		return "", fmt.Errorf("logon: %w", err)
	}
	sid, err := sessionID(r)
	if err != nil {
		return "", switchd.Retriable(fmt.Errorf("logon: %w", err))
	}
	if sid == "" {
		return "", switchd.Retriable(errors.New("logon: reply has an empty SessionID"))
	}
	return sid, nil
}

// currentSession asks which session is active ("" none).
func (d *Device) currentSession(ctx context.Context) (string, error) {
	r, err := d.call(ctx, "session", "")
	if err != nil {
		return "", fmt.Errorf("session: %w", err)
	}
	sid, err := sessionID(r)
	if err != nil {
		return "", switchd.Retriable(fmt.Errorf("session: %w", err))
	}
	return sid, nil
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
