package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/controller"
	"github.com/switchd/switchd/controller/journal"
	"github.com/switchd/switchd/daemon/web"
	"go.uber.org/zap/zaptest"
)

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeDriver reports a canned state and counts its calls. It implements
// the reporters that need no I/O, as the device pool does.
type fakeDriver struct {
	state   switchd.FleetState
	err     error
	devs    []switchd.DeviceStatus
	trans   []switchd.TransitionStats
	states  int
	applies int
}

var (
	_ switchd.Driver             = (*fakeDriver)(nil)
	_ switchd.DeviceReporter     = (*fakeDriver)(nil)
	_ switchd.TransitionReporter = (*fakeDriver)(nil)
)

func (f *fakeDriver) State(context.Context) (switchd.FleetState, error) {
	f.states++
	return f.state, f.err
}

func (f *fakeDriver) Apply(context.Context, []switchd.Command) error {
	f.applies++
	return nil
}

func (f *fakeDriver) Devices() []switchd.DeviceStatus { return f.devs }

func (f *fakeDriver) Transitions() []switchd.TransitionStats { return f.trans }

// countingDriver counts the State calls of the driver it wraps.
type countingDriver struct {
	switchd.Driver
	states int
}

func (c *countingDriver) State(ctx context.Context) (switchd.FleetState, error) {
	c.states++
	return c.Driver.State(ctx)
}

// testSite is two simulated fleets, a journal and no MQTT or HTTP.
const testSite = `
site: {name: unit, timezone: America/Chicago, power_cap_kw: 1000}
policy: policy.yaml
tick: 1s
signals:
  price: {max_age: 1h}
journal:
  path: state/journal.log
fleets:
  - name: asics
    kind: asic
    count: 100
    driver: sim
    modes:
      off: {power_kw: 0.01}
      mining: {power_kw: 3.5, hashrate_ths: 200}
    transitions: {off->mining: 2s, mining->off: 1s}
  - name: gpus
    kind: gpu
    count: 20
    driver: sim
    modes:
      off: {power_kw: 0.2}
      inference: {power_kw: 1.275}
    transitions: {default: 2s}
`

const testPolicy = `
fallbacks: {hashprice_usd_ph_day: 50, inference_usd_gpu_hour: 2.10, ai_demand_gpus: 20}
fail_safe: {price: curtail}
`

// newTestDaemon builds a daemon as Run does, up to its loop, on a settable
// clock. swap, when set, may replace fleet i's driver before the
// controller is built.
func newTestDaemon(t *testing.T, swap func(i int, in *instrumented)) (*daemon, *prometheus.Registry, *testClock) {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "site.yaml"), []byte(testSite), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(testPolicy), 0o644))
	site, err := config.LoadSite(filepath.Join(dir, "site.yaml"))
	require.NoError(t, err)
	pol, hash, err := loadPolicy(site)
	require.NoError(t, err)
	clk := &testClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	reg := prometheus.NewRegistry()
	log := zaptest.NewLogger(t)
	d := &daemon{
		o: Options{Logger: log}, log: log, site: site, clock: clk, metrics: web.NewMetrics(reg, "test"),
		wake: make(chan struct{}, 1), samples: make(chan switchd.Sample, 16), started: clk.Now(),
	}
	d.policyInfo = web.PolicyView{Source: pol.Source, SHA256: hash}
	var rec journal.Recovery
	d.journal, rec, err = journal.Open(site.Daemon.Journal.Path, log)
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.journal.Close() })
	require.NoError(t, d.startDrivers(t.Context(), &rec))
	t.Cleanup(d.stopDrivers)
	for i, in := range d.drivers {
		if swap != nil {
			swap(i, in)
		}
	}
	d.ctl, err = controller.New(controller.Options{Site: site, Policy: pol, Drivers: d.ifaces(), Clock: clk, Recorder: d, Parallel: parallel})
	require.NoError(t, err)
	return d, reg, clk
}

// observePrice hands the controller a fresh price, as the loop does.
func observePrice(d *daemon, clk *testClock, v float64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ctl.Observe(switchd.Sample{Time: clk.Now(), Signal: switchd.SignalPrice, Value: v})
}

func viewFleet(v web.StateView, name string) web.FleetView {
	for _, f := range v.Fleets {
		if f.Name == name {
			return f
		}
	}
	return web.FleetView{}
}

// metricValue reads one sample of the registry, or fails.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			switch {
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	t.Fatalf("no sample %s%v", name, labels)
	return 0
}

func TestStatePolledOncePerTick(t *testing.T) {
	counters := map[int]*countingDriver{}
	d, reg, clk := newTestDaemon(t, func(i int, in *instrumented) {
		c := &countingDriver{Driver: in.Driver}
		counters[i], in.Driver = c, c
	})

	// Before the first tick the views show nothing observed, and do not
	// poll to find out.
	d.mu.Lock()
	d.refreshViews(clk.Now(), "waiting")
	d.mu.Unlock()
	v := d.State()
	require.False(t, viewFleet(v, "asics").Observed)
	require.Equal(t, 0, viewFleet(v, "asics").Modes["off"])
	require.Equal(t, 0, counters[0].states)

	observePrice(d, clk, 30) // cheap: mine and serve
	const ticks = 6
	for range ticks {
		d.tick(t.Context())
		// Everything the HTTP side serves comes from the last tick.
		_ = d.State()
		_, _ = d.Ready()
		_ = d.Plan()
		_, err := d.Devices(web.DevicesQuery{Fleet: "asics"})
		require.NoError(t, err)
		clk.advance(time.Second)
	}
	for i, c := range counters {
		require.Equal(t, ticks, c.states, "fleet %d: one State call per tick", i)
		require.InDelta(t, ticks, metricValue(t, reg, "switchd_driver_request_duration_seconds",
			map[string]string{"fleet": d.site.Fleets[i].Spec.Name, "op": "state"}), 0)
	}

	// The view shows what the controller observed at its last tick.
	v = d.State()
	for i := range d.site.Fleets {
		fv := viewFleet(v, d.site.Fleets[i].Spec.Name)
		require.True(t, fv.Observed)
		obs := d.ctl.Observed(i)
		for m, n := range fv.Modes {
			mode, err := switchd.ParseMode(m)
			require.NoError(t, err)
			steady, _ := obs.Count(mode)
			require.Equal(t, steady, n, "%s %s", fv.Name, m)
		}
		total := fv.Moving
		for _, n := range fv.Modes {
			total += n
		}
		require.Equal(t, d.site.Fleets[i].Spec.Count, total, fv.Name)
	}
	require.Positive(t, viewFleet(v, "asics").Modes["mining"], "cheap power: the asics mine")
	ready, why := d.Ready()
	require.True(t, ready, why)
}

func TestFleetViewFromObservation(t *testing.T) {
	d, _, _ := newTestDaemon(t, nil)
	f := &d.site.Fleets[0] // asics: off 0.01 kW, mining 3.5 kW
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	obs := &switchd.FleetState{
		Cohorts: []switchd.Cohort{
			{Mode: switchd.ModeMining, Target: switchd.ModeMining, Since: now, Count: 60},
			{Mode: switchd.ModeOff, Target: switchd.ModeOff, Since: now, Count: 20},
			{Mode: switchd.ModeOff, Target: switchd.ModeMining, Since: now, Count: 8},
		},
		Failed:  1,
		Drifted: 2,
		Unusable: switchd.Unusable{
			ByMode:   [switchd.NumModes]int{switchd.ModeOff: 4, switchd.ModeMining: 8},
			ByReason: map[string]int{switchd.ProblemUnreachable: 9, switchd.ProblemFault: 3},
		},
	}
	drv := &fakeDriver{trans: []switchd.TransitionStats{
		{From: switchd.ModeOff, To: switchd.ModeMining, Count: 12, P50: 41200 * time.Millisecond, P95: 55 * time.Second},
	}}
	var devs []switchd.DeviceStatus
	for i := range 130 {
		ds := switchd.DeviceStatus{Addr: fmt.Sprintf("10.0.%d.%d:4028", i/250, i%250), Mode: "mining"}
		if i%10 != 0 {
			ds.Problem, ds.LastError = switchd.ProblemUnreachable, "dial: i/o timeout"
		}
		devs = append(devs, ds)
	}

	fv := fleetView(f, obs, drv, devs)
	require.True(t, fv.Observed)
	require.Equal(t, map[string]int{"off": 20, "mining": 60}, fv.Modes)
	require.Equal(t, 8, fv.Moving)
	require.Equal(t, 1, fv.Failed)
	require.Equal(t, 2, fv.Drifted)
	require.Equal(t, web.UnusableView{Total: 12, ByReason: map[string]int{
		"unreachable": 9, "auth": 0, "protocol": 0, "fault": 3, "stuck": 0,
	}}, fv.Unusable)
	require.Equal(t, map[string]web.TransitionView{"off->mining": {Count: 12, P50Seconds: 41.2, P95Seconds: 55}}, fv.Transitions)
	require.Len(t, fv.Problems, web.MaxProblemDevices)
	require.Equal(t, 117, fv.ProblemsTotal)
	// No power reporter: catalog power, moving devices at the larger of
	// their two modes, unusable ones where they were last seen.
	want := 60*3.5 + 20*0.01 + 8*f.Spec.TransitionPowerKW(switchd.ModeOff, switchd.ModeMining) + 4*0.01 + 8*3.5
	require.InDelta(t, want, fv.PowerKW, 1e-9)

	// Never observed: zeros, every reason present, nothing guessed.
	fv = fleetView(f, nil, &fakeDriver{}, nil)
	require.False(t, fv.Observed)
	require.Equal(t, map[string]int{"off": 0, "mining": 0}, fv.Modes)
	require.Len(t, fv.Unusable.ByReason, len(switchd.Problems))
	require.Zero(t, fv.PowerKW)
	require.Nil(t, fv.Transitions)
}

func TestUnusableDevicesReportedAndStillReady(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	fake := &fakeDriver{state: switchd.FleetState{
		Cohorts: []switchd.Cohort{{Mode: switchd.ModeOff, Target: switchd.ModeOff, Since: now.Add(-time.Hour), Count: 90}},
		Drifted: 2,
		Unusable: switchd.Unusable{
			ByMode:   [switchd.NumModes]int{switchd.ModeOff: 10},
			ByReason: map[string]int{switchd.ProblemUnreachable: 7, switchd.ProblemAuth: 3},
		},
	}}
	for i := range 100 {
		ds := switchd.DeviceStatus{Addr: fmt.Sprintf("10.0.0.%d:4028", i+1), Mode: "off"}
		switch {
		case i < 7:
			ds.Mode, ds.Problem, ds.LastError = "unknown", switchd.ProblemUnreachable, "dial: connection refused"
		case i < 10:
			ds.Problem, ds.LastError = switchd.ProblemAuth, "logon: session held by another client"
		}
		fake.devs = append(fake.devs, ds)
	}
	d, reg, clk := newTestDaemon(t, func(i int, in *instrumented) {
		if i == 0 {
			in.Driver = fake
		}
	})
	observePrice(d, clk, 30)
	d.tick(t.Context())
	clk.advance(time.Second)
	d.tick(t.Context())

	ready, why := d.Ready()
	require.True(t, ready, "a driver that answered is ready, unusable devices or not")
	require.Contains(t, why, "fleet asics has 10 unusable devices (unreachable 7, auth 3)")

	fv := viewFleet(d.State(), "asics")
	require.True(t, fv.DriverUp)
	require.Equal(t, 10, fv.Unusable.Total)
	require.Equal(t, 7, fv.Unusable.ByReason["unreachable"])
	require.Equal(t, 10, fv.ProblemsTotal)
	require.Len(t, fv.Problems, 10)
	require.Equal(t, 2, fv.Drifted)

	require.InDelta(t, 7, metricValue(t, reg, "switchd_devices_unusable", map[string]string{"fleet": "asics", "reason": "unreachable"}), 0)
	require.InDelta(t, 0, metricValue(t, reg, "switchd_devices_unusable", map[string]string{"fleet": "asics", "reason": "stuck"}), 0)
	require.InDelta(t, 0, metricValue(t, reg, "switchd_devices_unusable", map[string]string{"fleet": "gpus", "reason": "fault"}), 0)
	require.InDelta(t, 4, metricValue(t, reg, "switchd_devices_drifted_total", map[string]string{"fleet": "asics"}), 0, "2 per tick")
	require.InDelta(t, 1, metricValue(t, reg, "switchd_driver_up", map[string]string{"fleet": "asics", "driver": "sim"}), 0)
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)

	// The devices API pages through the last report, problems first
	// selected when asked.
	page, err := d.Devices(web.DevicesQuery{Fleet: "asics", ProblemOnly: true, Offset: 5, Limit: 3})
	require.NoError(t, err)
	require.True(t, page.Reported)
	require.Equal(t, 100, page.Total)
	require.Equal(t, 10, page.Matched)
	require.Equal(t, []string{"10.0.0.6:4028", "10.0.0.7:4028", "10.0.0.8:4028"},
		[]string{page.Devices[0].Addr, page.Devices[1].Addr, page.Devices[2].Addr})
	page, err = d.Devices(web.DevicesQuery{Fleet: "gpus", Limit: 10})
	require.NoError(t, err)
	require.False(t, page.Reported, "the simulated fleet does not list devices")
	require.Empty(t, page.Devices)
	_, err = d.Devices(web.DevicesQuery{Fleet: "nope"})
	require.ErrorIs(t, err, web.ErrUnknownFleet)
}

func TestFailedStateCallIsNotReady(t *testing.T) {
	fake := &fakeDriver{err: switchd.AuthError(errors.New("logon: wrong password"))}
	d, reg, clk := newTestDaemon(t, func(i int, in *instrumented) {
		if i == 1 {
			in.Driver = fake
		}
	})
	observePrice(d, clk, 30)
	d.tick(t.Context())

	ready, why := d.Ready()
	require.False(t, ready)
	require.Contains(t, why, "driver of fleet gpus did not answer")
	fv := viewFleet(d.State(), "gpus")
	require.False(t, fv.DriverUp)
	require.False(t, fv.Observed)
	require.Equal(t, "state", fv.LastErrorOp)
	require.Equal(t, "permanent", fv.LastErrorClass)
	require.InDelta(t, 1, metricValue(t, reg, "switchd_driver_errors_total",
		map[string]string{"fleet": "gpus", "driver": "sim", "op": "state", "class": "permanent"}), 0)
	require.InDelta(t, 0, metricValue(t, reg, "switchd_driver_errors_total",
		map[string]string{"fleet": "gpus", "driver": "sim", "op": "state", "class": "retriable"}), 0)
	require.InDelta(t, 0, metricValue(t, reg, "switchd_driver_up", map[string]string{"fleet": "gpus"}), 0)
	require.True(t, viewFleet(d.State(), "asics").DriverUp)
}

func TestJournalFailureIsNotADriverError(t *testing.T) {
	d, reg, clk := newTestDaemon(t, nil)
	require.NoError(t, d.journal.Close()) // every append fails from now on
	observePrice(d, clk, 30)              // cheap: starts wanted
	d.tick(t.Context())

	require.Error(t, d.ctl.RecordErr())
	for _, f := range d.site.Fleets {
		for _, op := range []string{"state", "apply"} {
			for _, class := range []string{"retriable", "permanent"} {
				require.InDelta(t, 0, metricValue(t, reg, "switchd_driver_errors_total",
					map[string]string{"fleet": f.Spec.Name, "op": op, "class": class}), 0, "%s %s %s", f.Spec.Name, op, class)
			}
		}
	}
	require.GreaterOrEqual(t, metricValue(t, reg, "switchd_journal_append_errors_total", nil), 1.0)

	v := d.State()
	require.NotNil(t, v.Journal)
	require.Contains(t, v.Journal.Error, "closed")
	require.NotNil(t, v.Journal.ErrorSince)
	for _, fv := range v.Fleets {
		require.True(t, fv.DriverUp, fv.Name)
		require.Empty(t, fv.LastError, fv.Name)
	}
	ready, why := d.Ready()
	require.True(t, ready, why)
	// The starts were held back, and the decision says so.
	require.NotEmpty(t, v.Decisions)
	require.NotEmpty(t, v.Decisions[0].Held)
	require.Empty(t, v.Decisions[0].Commands)
	require.Zero(t, viewFleet(v, "asics").Moving)
	require.True(t, strings.HasPrefix(v.Decisions[0].Held[0].From, "off"))
}

func TestJournalHealthRateLimitsLogs(t *testing.T) {
	var h journalHealth
	log := zaptest.NewLogger(t)
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	boom := errors.New("disk full")
	h.note(t0, boom, log)
	require.Equal(t, t0, h.lastLog)
	h.note(t0.Add(10*time.Second), boom, log)
	h.note(t0.Add(20*time.Second), boom, log)
	require.Equal(t, t0, h.lastLog, "at most one line a minute")
	require.Equal(t, 2, h.unlogged)
	h.note(t0.Add(61*time.Second), boom, log)
	require.Equal(t, t0.Add(61*time.Second), h.lastLog)
	require.Zero(t, h.unlogged)
	since, err := h.failing()
	require.Equal(t, t0, since)
	require.ErrorIs(t, err, boom)
	h.note(t0.Add(90*time.Second), nil, log)
	_, err = h.failing()
	require.NoError(t, err)
}
