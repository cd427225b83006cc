package pool

import (
	"context"
	"sync"

	"github.com/switchd/switchd"
)

// targetDevice puts a device with a power target (a PowerSetter) into the
// fleet's mining_reduced mode: mining at pct percent of nominal power, pct
// being the declared mining_reduced power over the mining power. Full
// mining sets the target back to 100%, so that a miner woken from off, or
// coming down from the reduced target, runs at nominal power.
//
// A read tells the two mining levels apart by the power the device reports:
// below the midpoint of the two declared draws is mining_reduced. A device
// that reports no power is taken to be at the level last accepted (it
// cannot say), which is the one thing here that is not observed.
type targetDevice struct {
	Device
	set   PowerSetter
	pct   float64 // mining_reduced power target, % of nominal
	midKW float64 // between the two declared mining draws

	mu       sync.Mutex
	reduced  bool         // the level last accepted is mining_reduced
	observed switchd.Mode // last observed mode (off until read)
}

// wrapPowerTargets wraps the devices that have a power target when the
// fleet declares mining_reduced; the others are left alone (a Set to
// mining_reduced then fails as unsupported).
func wrapPowerTargets(spec *switchd.FleetSpec, devs []Device) {
	full, red := spec.Modes[switchd.ModeMining].PowerKW, spec.Modes[switchd.ModeMiningReduced].PowerKW
	if !spec.Supports[switchd.ModeMiningReduced] || !spec.Supports[switchd.ModeMining] || !(full > 0) || !(red > 0) {
		return
	}
	for i, d := range devs {
		if s, ok := d.(PowerSetter); ok {
			devs[i] = &targetDevice{Device: d, set: s, pct: min(100*red/full, 100), midKW: (full + red) / 2}
		}
	}
}

// Observe implements Device.
func (t *targetDevice) Observe(ctx context.Context) (Observation, error) {
	o, err := t.Device.Observe(ctx)
	if err != nil || !o.Known {
		return o, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if o.Mode == switchd.ModeMining {
		low := t.reduced
		if o.HasPower {
			low = o.PowerW/1000 < t.midKW
		}
		if low {
			o.Mode = switchd.ModeMiningReduced
		}
	}
	t.observed = o.Mode
	return o, nil
}

// Set implements Device.
func (t *targetDevice) Set(ctx context.Context, mode switchd.Mode) error {
	t.mu.Lock()
	running := t.observed == switchd.ModeMining || t.observed == switchd.ModeMiningReduced
	t.mu.Unlock()
	pct := 100.0
	switch mode {
	case switchd.ModeMiningReduced:
		pct = t.pct
	case switchd.ModeMining:
	default:
		return t.Device.Set(ctx, mode)
	}
	if !running {
		if err := t.Device.Set(ctx, switchd.ModeMining); err != nil {
			return err
		}
	}
	if err := t.set.SetPowerPercent(ctx, pct); err != nil {
		return err
	}
	t.mu.Lock()
	t.reduced = mode == switchd.ModeMiningReduced
	t.mu.Unlock()
	return nil
}

// SetPowerPercent implements PowerSetter (the pool's own power target).
func (t *targetDevice) SetPowerPercent(ctx context.Context, pct float64) error {
	return t.set.SetPowerPercent(ctx, pct)
}

// Close implements Closer when the wrapped device has something to release.
func (t *targetDevice) Close(ctx context.Context) error {
	if c, ok := t.Device.(Closer); ok {
		return c.Close(ctx)
	}
	return nil
}
