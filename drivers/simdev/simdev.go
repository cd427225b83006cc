// Package simdev is the simulated device driver (YAML name "sim"): a fleet of
// identical devices with transition delays, power draw during transitions and
// optional injected failures. It keeps devices as cohorts (groups that entered
// a mode or a transition at the same instant), so a 100,000-device fleet costs
// no more to simulate than a 10-device one, and it integrates energy and
// device-hours exactly between events for the simulator's accounting.
//
// It imports only the root package.
package simdev

import (
	"context"
	_ "embed"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/switchd/switchd"
)

// Sample is a commented settings block, validated by drivers/all's tests.
//
//go:embed sample.yaml
var Sample string

// Config is the driver's settings block in the site file.
type Config struct {
	// FailureRate is the probability that a commanded device does not reach
	// its target mode (it falls back, after the transition time, to the mode
	// it was leaving). 0 ≤ FailureRate < 1.
	FailureRate float64 `yaml:"failure_rate"`
	// Seed makes injected failures reproducible.
	Seed uint64 `yaml:"seed"`
	// Initial is the mode every device starts in (default off).
	Initial switchd.Mode `yaml:"initial"`
}

// ParseConfig decodes and validates the settings strictly (an unknown key
// is an error naming its line). An absent or empty block gives the
// defaults.
func ParseConfig(set switchd.Settings) (Config, error) {
	var c Config
	if err := set.Decode(&c); err != nil {
		return c, err
	}
	if c.FailureRate < 0 || c.FailureRate >= 1 || math.IsNaN(c.FailureRate) {
		return c, set.Errorf("failure_rate", "must be in [0, 1) (got %v)", c.FailureRate)
	}
	return c, nil
}

// group is a number of devices steady in a mode since one instant.
type group struct {
	since time.Time
	count int
}

// transit is a number of devices moving between two modes.
type transit struct {
	from, to   switchd.Mode
	start, end time.Time
	count      int
	fail       int // of count, how many will fall back to from
}

// Usage is what the fleet consumed and did over a span of time. Energy and
// device-hours are exact integrals of piecewise-constant power.
type Usage struct {
	DeviceHours           [switchd.NumModes]float64 // steady devices × hours, per mode
	EnergyKWh             [switchd.NumModes]float64 // energy of steady devices, per mode
	TransitionDeviceHours float64                   // devices in transition × hours (earning nothing)
	TransitionKWh         float64                   // energy drawn by devices in transition
	Switches              int                       // devices commanded to change mode
	Failures              int                       // devices that did not reach a commanded mode
	EarlyMoves            int                       // devices commanded before their min dwell was up
}

// Add adds o to u.
func (u *Usage) Add(o *Usage) {
	for m := range u.DeviceHours {
		u.DeviceHours[m] += o.DeviceHours[m]
		u.EnergyKWh[m] += o.EnergyKWh[m]
	}
	u.TransitionDeviceHours += o.TransitionDeviceHours
	u.TransitionKWh += o.TransitionKWh
	u.Switches += o.Switches
	u.Failures += o.Failures
	u.EarlyMoves += o.EarlyMoves
}

// Driver simulates one fleet. It is not safe for concurrent use, like every
// switchd.Driver.
type Driver struct {
	spec  switchd.FleetSpec
	clock switchd.Clock
	rng   *rand.Rand
	cfg   Config

	// steady[m] is a queue of groups ordered by since, oldest first.
	steady      [switchd.NumModes][]group
	steadyCount [switchd.NumModes]int
	moving      []transit // ordered by end
	movingKW    float64   // draw of all devices in transition

	last      time.Time // usage integrated up to here
	usage     Usage
	failedNew int // failures since the last State call

	out []switchd.Cohort // State's reused result
}

var _ switchd.Driver = (*Driver)(nil)

// New returns a simulated fleet with every device steady in cfg.Initial since
// the clock's current time.
func New(spec switchd.FleetSpec, cfg Config, clock switchd.Clock) *Driver {
	now := clock.Now()
	d := &Driver{
		spec:  spec,
		clock: clock,
		cfg:   cfg,
		rng:   rand.New(rand.NewPCG(cfg.Seed, uint64(len(spec.Name))+0x5157)),
		last:  now,
	}
	if spec.Count > 0 {
		// Devices that start in a mode have been there "forever": their dwell
		// is satisfied from the first tick.
		d.steady[cfg.Initial] = []group{{since: now.Add(-spec.MinDwell), count: spec.Count}}
		d.steadyCount[cfg.Initial] = spec.Count
	}
	return d
}

// Restore puts the fleet in a known state: counts[m] devices steady in m
// since the given instant. The daemon uses it on restart to resume from the
// journalled state, as real devices would still be where they were
// commanded. Counts must add up to the fleet size.
func (d *Driver) Restore(counts [switchd.NumModes]int, since time.Time) error {
	total := 0
	for m, n := range counts {
		if n < 0 || (n > 0 && switchd.Mode(m) != switchd.ModeOff && !d.spec.Supports[m]) {
			return fmt.Errorf("sim: fleet %q: cannot restore %d devices in %s", d.spec.Name, n, switchd.Mode(m))
		}
		total += n
	}
	if total != d.spec.Count {
		return fmt.Errorf("sim: fleet %q: restored counts add up to %d, fleet has %d", d.spec.Name, total, d.spec.Count)
	}
	d.moving = d.moving[:0]
	d.movingKW = 0
	for m, n := range counts {
		d.steady[m] = d.steady[m][:0]
		d.steadyCount[m] = n
		if n > 0 {
			d.steady[m] = append(d.steady[m], group{since: since, count: n})
		}
	}
	return nil
}

// Spec returns the fleet the driver simulates.
func (d *Driver) Spec() *switchd.FleetSpec { return &d.spec }

// State returns the observed cohorts, after completing every transition due
// by now. The returned slice is reused by the next call.
func (d *Driver) State(ctx context.Context) (switchd.FleetState, error) {
	now := d.clock.Now()
	d.Settle(now)
	d.compact(now)
	out := d.out[:0]
	for m := range d.steady {
		for _, g := range d.steady[m] {
			out = append(out, switchd.Cohort{Mode: switchd.Mode(m), Target: switchd.Mode(m), Since: g.since, Count: g.count})
		}
	}
	for _, t := range d.moving {
		out = append(out, switchd.Cohort{Mode: t.from, Target: t.to, Since: t.start, Count: t.count})
	}
	d.out = out
	failed := d.failedNew
	d.failedNew = 0
	return switchd.FleetState{Cohorts: out, Failed: failed}, nil
}

// Apply starts the commanded transitions now. A command for more devices
// than are steady in its From mode is an error and nothing is applied.
func (d *Driver) Apply(ctx context.Context, cmds []switchd.Command) error {
	now := d.clock.Now()
	d.Settle(now)
	need := [switchd.NumModes]int{}
	for _, c := range cmds {
		if c.Count < 0 || int(c.From) >= switchd.NumModes || int(c.To) >= switchd.NumModes {
			return fmt.Errorf("sim: bad command %+v", c)
		}
		if c.To != switchd.ModeOff && !d.spec.Supports[c.To] {
			return fmt.Errorf("sim: fleet %q does not support mode %s", d.spec.Name, c.To)
		}
		need[c.From] += c.Count
	}
	for m, n := range need {
		if n > d.steadyCount[m] {
			return fmt.Errorf("sim: fleet %q: %d devices commanded out of %s, %d steady there", d.spec.Name, n, switchd.Mode(m), d.steadyCount[m])
		}
	}
	for _, c := range cmds {
		if c.Count == 0 || c.From == c.To {
			continue
		}
		d.take(c.From, c.Count, now)
		fail := d.failures(c.Count)
		dur := d.spec.Transition[c.From][c.To]
		t := transit{from: c.From, to: c.To, start: now, end: now.Add(dur), count: c.Count, fail: fail}
		d.movingKW += float64(c.Count) * d.spec.TransitionPowerKW(c.From, c.To)
		d.usage.Switches += c.Count
		if dur <= 0 {
			d.complete(t)
			continue
		}
		// Keep moving ordered by end; transitions of one length arrive in order,
		// so this is an append in the common case.
		i := sort.Search(len(d.moving), func(i int) bool { return d.moving[i].end.After(t.end) })
		d.moving = append(d.moving, transit{})
		copy(d.moving[i+1:], d.moving[i:])
		d.moving[i] = t
	}
	return nil
}

// take removes n devices from the oldest groups steady in m, counting those
// still inside their dwell time.
func (d *Driver) take(m switchd.Mode, n int, now time.Time) {
	d.steadyCount[m] -= n
	q := d.steady[m]
	cut := now.Add(-d.spec.MinDwell)
	i := 0
	for n > 0 {
		if q[i].since.After(cut) {
			d.usage.EarlyMoves += min(q[i].count, n)
		}
		if q[i].count <= n {
			n -= q[i].count
			i++
			continue
		}
		q[i].count -= n
		n = 0
	}
	d.steady[m] = append(q[:0], q[i:]...)
}

// failures draws how many of n commanded devices will fail.
func (d *Driver) failures(n int) int {
	p := d.cfg.FailureRate
	if p <= 0 || n == 0 {
		return 0
	}
	if n <= 64 {
		f := 0
		for range n {
			if d.rng.Float64() < p {
				f++
			}
		}
		return f
	}
	// Normal approximation of the binomial for large groups.
	mean := float64(n) * p
	sd := math.Sqrt(mean * (1 - p))
	f := int(math.Round(mean + sd*d.rng.NormFloat64()))
	return min(max(f, 0), n)
}

// complete lands a transition: its devices become steady in to (or, for the
// failed ones, back in from).
func (d *Driver) complete(t transit) {
	d.movingKW -= float64(t.count) * d.spec.TransitionPowerKW(t.from, t.to)
	if d.movingKW < 1e-9 {
		d.movingKW = 0 // float drift when nothing moves any more
	}
	d.arrive(t.to, t.end, t.count-t.fail)
	if t.fail > 0 {
		d.arrive(t.from, t.end, t.fail)
		d.usage.Failures += t.fail
		d.failedNew += t.fail
	}
}

func (d *Driver) arrive(m switchd.Mode, at time.Time, n int) {
	if n == 0 {
		return
	}
	d.steadyCount[m] += n
	q := d.steady[m]
	if k := len(q); k > 0 && q[k-1].since.Equal(at) {
		q[k-1].count += n
		return
	}
	d.steady[m] = append(q, group{since: at, count: n})
}

// compact merges the groups of each mode that are past their dwell time:
// once dwell no longer matters their exact arrival times do not either, and
// the newest arrival time stands for them all (still past dwell).
func (d *Driver) compact(now time.Time) {
	cut := now.Add(-d.spec.MinDwell)
	for m := range d.steady {
		q := d.steady[m]
		k := 0
		for k+1 < len(q) && !q[k+1].since.After(cut) {
			k++
		}
		if k == 0 {
			continue
		}
		total := 0
		for _, g := range q[:k+1] {
			total += g.count
		}
		q[k].count = total
		d.steady[m] = append(q[:0], q[k:]...)
	}
}

// Settle integrates usage up to now, landing every transition due by then in
// order. The simulator calls it at the end of each accounting step.
func (d *Driver) Settle(now time.Time) {
	for len(d.moving) > 0 && !d.moving[0].end.After(now) {
		t := d.moving[0]
		d.integrate(t.end)
		// Shift rather than reslice so the backing array is reused.
		d.moving = d.moving[:copy(d.moving, d.moving[1:])]
		d.complete(t)
	}
	d.integrate(now)
}

func (d *Driver) integrate(to time.Time) {
	h := to.Sub(d.last).Hours()
	if h <= 0 {
		return
	}
	for m, n := range d.steadyCount {
		if n == 0 {
			continue
		}
		dh := float64(n) * h
		d.usage.DeviceHours[m] += dh
		d.usage.EnergyKWh[m] += dh * d.spec.Modes[m].PowerKW
	}
	moving := 0
	for _, t := range d.moving {
		moving += t.count
	}
	d.usage.TransitionDeviceHours += float64(moving) * h
	d.usage.TransitionKWh += d.movingKW * h
	d.last = to
}

// TakeUsage returns the usage accumulated since the previous call (call
// Settle first to bring it up to an instant) and resets it.
func (d *Driver) TakeUsage() Usage {
	u := d.usage
	d.usage = Usage{}
	return u
}

// PowerKW is the fleet's draw right now (as of the last Settle).
func (d *Driver) PowerKW() float64 {
	p := d.movingKW
	for m, n := range d.steadyCount {
		p += float64(n) * d.spec.Modes[m].PowerKW
	}
	return p
}

// Counts returns the devices steady in each mode and those in transition
// towards each mode (as of the last Settle).
func (d *Driver) Counts() (steady, arriving [switchd.NumModes]int) {
	for _, t := range d.moving {
		arriving[t.to] += t.count
	}
	return d.steadyCount, arriving
}

// NextEvent is the end of the earliest transition in flight, or the zero
// time when nothing is moving.
func (d *Driver) NextEvent() time.Time {
	if len(d.moving) == 0 {
		return time.Time{}
	}
	return d.moving[0].end
}
