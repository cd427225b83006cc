// Package all is the one explicit table of device drivers: a driver's YAML
// name to its factory, its single-device constructor (for `switchd probe`)
// and its sample settings. Adding a driver is adding one line here
// (TestOneLinePerDriver keeps it so).
package all

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/antminer"
	"github.com/switchd/switchd/drivers/bosminer"
	"github.com/switchd/switchd/drivers/cgminer"
	"github.com/switchd/switchd/drivers/httpexec"
	"github.com/switchd/switchd/drivers/internal/pool"
	"github.com/switchd/switchd/drivers/luxos"
	"github.com/switchd/switchd/drivers/mqttagent"
	"github.com/switchd/switchd/drivers/simdev"
	"github.com/switchd/switchd/drivers/vllm"
	"github.com/switchd/switchd/drivers/whatsminer"
)

// Deps is what a factory may use: the fleet's catalog entry, devices,
// settings, clock and logger. Factories validate their settings without
// I/O; connecting happens on first use.
type Deps = pool.Deps

// Factory builds a fleet's driver.
type Factory func(d Deps) (switchd.Driver, error)

// DeviceFunc builds one device of a driver, for probing it.
type DeviceFunc func(s switchd.Settings, dev switchd.Device) (pool.Device, error)

// Entry is one driver of the table.
type Entry struct {
	New    Factory
	Device DeviceFunc // nil for drivers without addressable devices (sim)
	Sample string     // a sample settings block, validated by a test
	// Devices says whether the driver needs a device list (devices: or
	// devices_file:) rather than a count.
	Devices bool
	// Extra lists the modes past off, mining and inference (power
	// targets, sleep) the driver can command. A fleet that declares one
	// it cannot do is refused when the site is validated.
	Extra []switchd.Mode
}

// reduced is the extra modes of drivers whose devices take a power target
// (pool.PowerSetter): mining_reduced, through the pool's adapter.
var reduced = []switchd.Mode{switchd.ModeMiningReduced}

// table is read-only.
var table = map[string]Entry{
	"sim":        {New: newSim, Sample: simdev.Sample, Extra: []switchd.Mode{switchd.ModeMiningReduced, switchd.ModeSleep}},
	"luxos":      {New: luxos.New, Device: luxos.OpenDevice, Sample: luxos.Sample, Devices: true, Extra: reduced},
	"bosminer":   {New: bosminer.New, Device: bosminer.OpenDevice, Sample: bosminer.Sample, Devices: true},
	"whatsminer": {New: whatsminer.New, Device: whatsminer.OpenDevice, Sample: whatsminer.Sample, Devices: true, Extra: reduced},
	"antminer":   {New: antminer.New, Device: antminer.OpenDevice, Sample: antminer.Sample, Devices: true},
	"cgminer":    {New: cgminer.New, Device: cgminer.OpenDevice, Sample: cgminer.Sample, Devices: true},
	"vllm":       {New: vllm.New, Device: vllm.OpenDevice, Sample: vllm.Sample, Devices: true, Extra: []switchd.Mode{switchd.ModeSleep}},
	"http":       {New: httpexec.New, Device: httpexec.OpenDevice, Sample: httpexec.Sample, Devices: true},
	"mqtt":       {New: mqttagent.New, Device: mqttagent.OpenDevice, Sample: mqttagent.Sample, Devices: true},
}

// newSim builds a fleet of simulated devices (the simulator's own driver).
func newSim(d Deps) (switchd.Driver, error) {
	cfg, err := simdev.ParseConfig(d.Settings)
	if err != nil {
		return nil, err
	}
	return simdev.New(d.Spec, cfg, d.Clock), nil
}

// Lookup returns the named driver's entry.
func Lookup(name string) (Entry, error) {
	e, ok := table[name]
	if !ok {
		return Entry{}, fmt.Errorf("unknown driver %q (known: %v)", name, Names())
	}
	return e, nil
}

// Build builds a fleet's driver: its settings are decoded strictly and
// checked, without I/O. A driver that needs devices refuses a bare count.
func Build(name string, d Deps) (switchd.Driver, error) {
	e, err := Lookup(name)
	if err != nil {
		return nil, err
	}
	if e.Devices && len(d.Devices) == 0 {
		return nil, fmt.Errorf("driver %s needs a device list (devices: or devices_file:), not a count", name)
	}
	if err := e.checkModes(name, &d.Spec); err != nil {
		return nil, err
	}
	return e.New(d)
}

// Probe reads one device of the named driver without changing it.
func Probe(ctx context.Context, name string, s switchd.Settings, dev switchd.Device) (switchd.ProbeResult, error) {
	e, err := Lookup(name)
	if err != nil {
		return switchd.ProbeResult{}, err
	}
	if e.Device == nil {
		return switchd.ProbeResult{}, fmt.Errorf("driver %s has no devices to probe", name)
	}
	d, err := e.Device(s, dev)
	if err != nil {
		return switchd.ProbeResult{}, err
	}
	r := pool.Probe(ctx, d)
	r.Driver = name
	if c, ok := d.(pool.Closer); ok {
		_ = c.Close(ctx)
	}
	return r, nil
}

// Names lists the known drivers, sorted.
func Names() []string {
	out := make([]string, 0, len(table))
	for n := range table {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ProbeNames lists the drivers whose devices can be probed, sorted.
func ProbeNames() []string {
	var out []string
	for n, e := range table {
		if e.Device != nil {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// checkModes refuses a fleet that declares a mode past off, mining and
// inference that the driver cannot command.
func (e *Entry) checkModes(name string, spec *switchd.FleetSpec) error {
	for _, m := range switchd.Modes[switchd.BaseModes:] {
		if spec.Supports[m] && !slices.Contains(e.Extra, m) {
			return fmt.Errorf("driver %s cannot command mode %s (fleet %q declares it); drivers that can: %v",
				name, m, spec.Name, namesWith(m))
		}
	}
	return nil
}

// namesWith lists the drivers that can command mode m, sorted.
func namesWith(m switchd.Mode) []string {
	var out []string
	for n, e := range table {
		if slices.Contains(e.Extra, m) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}
