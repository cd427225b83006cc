// Package cgminer is the read-only driver (YAML name "cgminer") for any
// miner that speaks the cgminer API on TCP 4028: upstream cgminer (Canaan
// Avalon), stock Bitmain bmminer reads, and anything else of the family.
// It observes hashrate and an idle-on-purpose state; it never changes a
// device: Set fails with a permanent error, so the pool leaves such devices
// out of any command.
//
// Its readers (Hashrate, Idle, Version) are exported for the other drivers
// of the family. It imports the root, the shared wire (internal/cgrpc) and
// the device pool; never the controller.
package cgminer

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/internal/cgrpc"
	"github.com/switchd/switchd/drivers/internal/pool"
)

// Sample is a commented settings block, validated by drivers/all's tests.
//
//go:embed sample.yaml
var Sample string

// Config is the driver's settings block in the site file.
type Config struct {
	pool.Settings `yaml:",inline"`
	// Port is the API port for device addresses that give none (default
	// 4028).
	Port int `yaml:"port"`
}

// ParseConfig decodes the settings strictly and validates them, without
// I/O.
func ParseConfig(s switchd.Settings) (Config, error) {
	cfg := Config{Port: 4028}
	if err := s.Decode(&cfg); err != nil {
		return Config{}, err
	}
	var errs []error
	errs = append(errs, cfg.Settings.Validate(s))
	if cfg.Port < 1 || cfg.Port > 65535 {
		errs = append(errs, s.Errorf("port", "must be between 1 and 65535 (got %d)", cfg.Port))
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	cfg.Settings.Defaults()
	return cfg, nil
}

// New builds the fleet's driver: one read-only device per listed address.
func New(d pool.Deps) (switchd.Driver, error) {
	cfg, err := ParseConfig(d.Settings)
	if err != nil {
		return nil, err
	}
	devs := make([]pool.Device, len(d.Devices))
	for i, dv := range d.Devices {
		devs[i] = NewDevice(&cfg, dv)
	}
	return pool.New(d, cfg.Settings, devs), nil
}

// ErrReadOnly is what Set returns (wrapped permanent).
var ErrReadOnly = errors.New("cgminer driver is read-only")

// Device is one miner read over the cgminer API.
type Device struct {
	addr string
	opts cgrpc.Options

	// Read once from version; the pool never calls one device's methods
	// concurrently, so these need no lock.
	model, firmware string
	versionDone     bool
}

var (
	_ pool.Device       = (*Device)(nil)
	_ pool.Capabilities = (*Device)(nil)
)

// NewDevice returns the device at dev.Addr (host or host:port; the
// configured port is added when none is given).
func NewDevice(cfg *Config, dev switchd.Device) pool.Device {
	return &Device{
		addr: cgrpc.WithPort(dev.Addr, strconv.Itoa(cfg.Port)),
		opts: cgrpc.Options{Timeout: cfg.Timeout},
	}
}

// Addr implements pool.Device.
func (d *Device) Addr() string { return d.addr }

// Supports implements pool.Capabilities: no control command.
func (d *Device) Supports() []string { return []string{} }

// Set implements pool.Device: the driver never changes a device.
func (d *Device) Set(ctx context.Context, mode switchd.Mode) error {
	return switchd.Permanent(fmt.Errorf("set %s: %w", mode, ErrReadOnly))
}

// Observe implements pool.Device. It reads summary (hashrate); when the
// hashrate is zero, stats (an Avalon soft-off shows there); and version
// once (model and firmware).
func (d *Device) Observe(ctx context.Context) (pool.Observation, error) {
	sum, err := call(ctx, d.addr, "summary", d.opts)
	if err != nil {
		return pool.Observation{}, err
	}
	if !d.versionDone {
		d.readVersion(ctx)
	}
	h, ok := Hashrate(sum)
	if !ok {
		return d.obs(pool.Observation{Detail: "summary has no hashrate field"}), nil
	}
	if h > 0 {
		return d.obs(pool.Observation{Mode: switchd.ModeMining, Known: true, HashrateTHs: h}), nil
	}
	st, err := call(ctx, d.addr, "stats", d.opts)
	switch {
	case err == nil:
		return d.obs(Classify(h, st)), nil
	case switchd.IsPermanent(err):
		// Stats refused (API group rules): idle cannot be told.
		o := Classify(h, nil)
		o.Detail += " (stats refused: " + err.Error() + ")"
		return d.obs(o), nil
	default:
		return pool.Observation{}, err
	}
}

// Classify turns a hashrate and a stats reply (nil when none) into an
// observation: hashing is mining; zero hashrate on a unit that reports
// itself idle (Avalon soft-off) is off on purpose; zero hashrate otherwise
// is a fault (mining mode, not mining).
func Classify(ths float64, stats cgrpc.Reply) pool.Observation {
	if ths > 0 {
		return pool.Observation{Mode: switchd.ModeMining, Known: true, HashrateTHs: ths}
	}
	if stats != nil {
		if idle, detail := Idle(stats); idle {
			return pool.Observation{Mode: switchd.ModeOff, Known: true, Detail: detail}
		}
	}
	return pool.Observation{Mode: switchd.ModeMining, Known: true, Fault: true,
		Detail: "zero hashrate and no idle state reported"}
}

func (d *Device) obs(o pool.Observation) pool.Observation {
	o.Model, o.Firmware = d.model, d.firmware
	return o
}

// readVersion reads model and firmware. A failure leaves them empty and is
// tried again next time, unless the device refused the command.
func (d *Device) readVersion(ctx context.Context) {
	r, err := call(ctx, d.addr, "version", d.opts)
	if err != nil {
		d.versionDone = switchd.IsPermanent(err)
		return
	}
	d.model, d.firmware = Version(r)
	d.versionDone = true
}

// call sends one command and checks its reply's STATUS.
func call(ctx context.Context, addr, cmd string, o cgrpc.Options) (cgrpc.Reply, error) {
	raw, err := cgrpc.Exchange(ctx, addr, cgrpc.Request(cmd, ""), o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	return cgrpc.Check(cmd, raw)
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
