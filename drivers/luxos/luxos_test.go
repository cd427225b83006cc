package luxos

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/internal/pool"
	"github.com/switchd/switchd/drivers/internal/pool/pooltest"
	"github.com/switchd/switchd/drivers/luxos/luxosfake"
	"go.uber.org/zap/zaptest"
)

var t0 = time.Date(2026, 7, 1, 15, 0, 0, 0, time.UTC)

// rig is one fake miner on 127.0.0.1:0 and a device pointed at it.
type rig struct {
	fake *luxosfake.Miner
	dev  *Device
	clk  *pooltest.Clock
	cfg  *Config
}

func newRig(t *testing.T, o luxosfake.Options, tweak ...func(*Config)) *rig {
	t.Helper()
	clk := pooltest.NewClock(t0)
	o.Now = clk.Now
	f := luxosfake.New(o)
	require.NoError(t, f.Start("127.0.0.1:0"))
	t.Cleanup(func() { _ = f.Close() })
	cfg := DefaultConfig()
	cfg.Timeout, cfg.DialTimeout = 2*time.Second, time.Second
	for _, fn := range tweak {
		fn(&cfg)
	}
	return &rig{fake: f, dev: newDevice(&cfg, switchd.Device{Addr: f.Addr()}), clk: clk, cfg: &cfg}
}

func (r *rig) observe(t *testing.T) pool.Observation {
	t.Helper()
	o, err := r.dev.Observe(context.Background())
	require.NoError(t, err)
	return o
}

func TestObserve(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   luxosfake.Options
		fault  luxosfake.Fault
		mode   switchd.Mode
		fault2 bool
		ths    float64
		watts  float64
	}{
		{name: "mining", mode: switchd.ModeMining, ths: 120, watts: 2760},
		{name: "asleep", opts: luxosfake.Options{Asleep: true}, mode: switchd.ModeOff, watts: 22},
		{name: "boards dead", fault: luxosfake.FaultHashboards, mode: switchd.ModeMining, fault2: true, watts: 132},
		{name: "no NUL", opts: luxosfake.Options{NoNUL: true}, mode: switchd.ModeMining, ths: 120, watts: 2760},
		{name: "no multi-command", opts: luxosfake.Options{NoMulti: true}, mode: switchd.ModeMining, ths: 120, watts: 2760},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.opts)
			require.NoError(t, r.fake.SetFault(tc.fault))
			for range 2 { // the second poll of a no-multi miner goes straight to single commands
				o := r.observe(t)
				require.True(t, o.Known)
				require.Equal(t, tc.mode, o.Mode)
				require.Equal(t, tc.fault2, o.Fault, o.Detail)
				require.InDelta(t, tc.ths, o.HashrateTHs, 1e-6)
				require.True(t, o.HasPower)
				require.InDelta(t, tc.watts, o.PowerW, 0.5)
				require.Equal(t, "Antminer S19k Pro", o.Model)
				require.Contains(t, o.Firmware, "LUXminer ")
			}
			if !tc.fault2 {
				require.Zero(t, r.fake.Count("devs"), "devs is read only for a suspected fault")
			}
			if tc.opts.NoMulti {
				require.Equal(t, 1, r.fake.Count(pollRequest), "multi-command tried once")
				require.Equal(t, 2, r.fake.Count("config"))
			}
		})
	}
}

func TestCurtailAndRestore(t *testing.T) {
	r := newRig(t, luxosfake.Options{WakeRamp: 5 * time.Minute})
	ctx := context.Background()

	require.NoError(t, r.dev.Set(ctx, switchd.ModeOff))
	require.True(t, r.fake.Asleep())
	require.Empty(t, r.fake.Session(), "session released after the write")
	require.Equal(t, 1, r.fake.Count("logoff"))
	o := r.observe(t)
	require.Equal(t, switchd.ModeOff, o.Mode)
	require.Zero(t, o.HashrateTHs)

	// Sleep persists; sleeping again is accepted.
	require.NoError(t, r.dev.Set(ctx, switchd.ModeOff))
	require.True(t, r.fake.Asleep())

	require.NoError(t, r.dev.Set(ctx, switchd.ModeMining))
	require.False(t, r.fake.Asleep())
	// Waking: mining, nothing hashed yet, and not a fault.
	o = r.observe(t)
	require.Equal(t, switchd.ModeMining, o.Mode)
	require.False(t, o.Fault, o.Detail)
	require.Zero(t, o.HashrateTHs)
	require.Contains(t, o.Detail, "ramping")

	r.clk.Advance(150 * time.Second)
	o = r.observe(t)
	require.False(t, o.Fault)
	require.InDelta(t, 60, o.HashrateTHs, 0.1, "half way up the ramp")
	require.Greater(t, o.PowerW, 1000.0)

	r.clk.Advance(5 * time.Minute)
	o = r.observe(t)
	require.InDelta(t, 120, o.HashrateTHs, 1e-6)
	require.Empty(t, o.Detail)

	require.ErrorIs(t, r.dev.Set(ctx, switchd.ModeInference), switchd.ErrPermanent)
}

func TestDrift(t *testing.T) {
	r := newRig(t, luxosfake.Options{})
	require.Equal(t, switchd.ModeMining, r.observe(t).Mode)
	r.fake.SetAsleep(true) // someone else curtailed it
	require.Equal(t, switchd.ModeOff, r.observe(t).Mode)
	r.fake.SetAsleep(false)
	require.Equal(t, switchd.ModeMining, r.observe(t).Mode)
}

func TestPowerTarget(t *testing.T) {
	r := newRig(t, luxosfake.Options{ProfileRamp: time.Minute})
	ctx := context.Background()
	profiles := luxosfake.DefaultProfiles(120, 2760, 575, 13.4)
	for _, tc := range []struct {
		pct  float64
		want string
	}{{100, "default"}, {50, ""}, {75, ""}, {1, "175MHz"}, {200, "775MHz"}} {
		require.NoError(t, r.dev.SetPowerPercent(ctx, tc.pct))
		got := r.fake.Profile()
		if tc.want != "" {
			require.Equal(t, tc.want, got, "%v%%", tc.pct)
		}
		// The chosen profile is the nearest by power.
		target := 2760 * tc.pct / 100
		var gotW float64
		for _, p := range profiles {
			if p.Name == got {
				gotW = p.Watts
			}
		}
		for _, p := range profiles {
			require.LessOrEqual(t, abs(gotW-target), abs(p.Watts-target), "%v%%: %s is nearer than %s", tc.pct, p.Name, got)
		}
		r.clk.Advance(2 * time.Minute)
		o := r.observe(t)
		require.InDelta(t, gotW, o.PowerW, 0.5)
		require.False(t, o.Fault)
	}
	require.Equal(t, 1, r.fake.Count("profiles"), "profiles read once")
	require.Empty(t, r.fake.Session())
	for _, bad := range []float64{0, -5, 250} {
		require.ErrorIs(t, r.dev.SetPowerPercent(ctx, bad), switchd.ErrPermanent)
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestSession(t *testing.T) {
	ctx := context.Background()

	t.Run("held by another client", func(t *testing.T) {
		r := newRig(t, luxosfake.Options{})
		require.NoError(t, r.fake.SetFault(luxosfake.FaultSessionHeld))
		err := r.dev.Set(ctx, switchd.ModeOff)
		require.ErrorIs(t, err, switchd.ErrAuth)
		require.ErrorIs(t, err, switchd.ErrPermanent)
		require.Contains(t, err.Error(), "session held by another client")
		require.False(t, r.fake.Asleep())
		require.Zero(t, r.fake.Count("kill"), "never kills by default")
		require.Zero(t, r.fake.Count("curtail"))
		require.ErrorIs(t, r.dev.SetPowerPercent(ctx, 50), switchd.ErrAuth)
	})

	t.Run("take_session kills it", func(t *testing.T) {
		r := newRig(t, luxosfake.Options{}, func(c *Config) { c.TakeSession = true })
		require.NoError(t, r.fake.SetFault(luxosfake.FaultSessionHeld))
		require.NoError(t, r.dev.Set(ctx, switchd.ModeOff))
		require.True(t, r.fake.Asleep())
		require.Equal(t, 1, r.fake.Count("kill"))
		require.Empty(t, r.fake.Session())
	})

	t.Run("idle expiry frees it", func(t *testing.T) {
		r := newRig(t, luxosfake.Options{})
		require.NotEmpty(t, r.fake.Logon()) // a script logs on and goes away
		require.ErrorIs(t, r.dev.Set(ctx, switchd.ModeOff), switchd.ErrAuth)
		r.clk.Advance(59 * time.Second)
		require.ErrorIs(t, r.dev.Set(ctx, switchd.ModeOff), switchd.ErrAuth)
		r.clk.Advance(2 * time.Second)
		require.NoError(t, r.dev.Set(ctx, switchd.ModeOff))
		require.True(t, r.fake.Asleep())
	})

	t.Run("our own leaked session is reused", func(t *testing.T) {
		r := newRig(t, luxosfake.Options{})
		sid := r.fake.Logon()
		r.dev.leaked = sid // as after a logoff that failed
		require.NoError(t, r.dev.Set(ctx, switchd.ModeOff))
		require.True(t, r.fake.Asleep())
		require.Empty(t, r.dev.leaked)
		require.Empty(t, r.fake.Session())
	})

	t.Run("close releases a leaked session", func(t *testing.T) {
		r := newRig(t, luxosfake.Options{})
		r.dev.leaked = r.fake.Logon()
		require.NoError(t, r.dev.Close(ctx))
		require.Empty(t, r.fake.Session())
		require.NoError(t, r.dev.Close(ctx), "nothing to release")
	})
}

func TestFaults(t *testing.T) {
	ctx := context.Background()

	t.Run("refused", func(t *testing.T) {
		r := newRig(t, luxosfake.Options{})
		require.NoError(t, r.fake.SetFault(luxosfake.FaultRefuse))
		_, err := r.dev.Observe(ctx)
		require.ErrorIs(t, err, switchd.ErrUnreachable)
		require.ErrorIs(t, r.dev.Set(ctx, switchd.ModeOff), switchd.ErrUnreachable)
		require.NoError(t, r.fake.SetFault(luxosfake.FaultNone))
		require.Equal(t, switchd.ModeMining, r.observe(t).Mode)
	})

	t.Run("timeout", func(t *testing.T) {
		r := newRig(t, luxosfake.Options{})
		require.NoError(t, r.fake.SetFault(luxosfake.FaultTimeout))
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		_, err := r.dev.Observe(cctx)
		require.ErrorIs(t, err, switchd.ErrUnreachable)
		require.ErrorIs(t, err, switchd.ErrRetriable)
		cctx2, cancel2 := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel2()
		require.ErrorIs(t, r.dev.Set(cctx2, switchd.ModeOff), switchd.ErrUnreachable)
		require.False(t, r.fake.Asleep())
	})

	t.Run("garbage", func(t *testing.T) {
		r := newRig(t, luxosfake.Options{})
		require.NoError(t, r.fake.SetFault(luxosfake.FaultGarbage))
		_, err := r.dev.Observe(ctx)
		require.ErrorIs(t, err, switchd.ErrRetriable)
		require.NotErrorIs(t, err, switchd.ErrUnreachable)
		err = r.dev.Set(ctx, switchd.ModeOff)
		require.ErrorIs(t, err, switchd.ErrRetriable)
		require.False(t, switchd.IsPermanent(err))
		require.False(t, r.dev.noMulti.Load(), "garbage is not a refusal of multi-commands")
		require.NoError(t, r.fake.SetFault(luxosfake.FaultNone))
		require.False(t, r.fake.Asleep(), "nothing acted on")
	})

	t.Run("reboot mid-command", func(t *testing.T) {
		r := newRig(t, luxosfake.Options{RebootDelay: 2 * time.Minute, WakeRamp: 5 * time.Minute})
		require.NoError(t, r.fake.SetFault(luxosfake.FaultReboot))
		err := r.dev.Set(ctx, switchd.ModeOff)
		require.ErrorIs(t, err, switchd.ErrUnreachable)
		require.True(t, r.fake.Rebooting())
		_, err = r.dev.Observe(ctx)
		require.ErrorIs(t, err, switchd.ErrUnreachable)

		r.clk.Advance(2 * time.Minute)
		o := r.observe(t)
		require.Equal(t, switchd.ModeMining, o.Mode, "back in the state it was in")
		require.False(t, o.Fault, "ramping up after the reboot: %s", o.Detail)
		// The command was lost: sending it again works (the reboot dropped
		// the session, so logon succeeds).
		require.NoError(t, r.dev.Set(ctx, switchd.ModeOff))
		require.True(t, r.fake.Asleep())
	})

	t.Run("sleep persists across a reboot", func(t *testing.T) {
		r := newRig(t, luxosfake.Options{Asleep: true, RebootDelay: time.Minute})
		require.NoError(t, r.fake.SetFault(luxosfake.FaultReboot))
		require.ErrorIs(t, r.dev.Set(ctx, switchd.ModeMining), switchd.ErrUnreachable)
		r.clk.Advance(time.Minute)
		require.Equal(t, switchd.ModeOff, r.observe(t).Mode)
	})
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, err string
	}{
		{name: "empty"},
		{name: "sample", yaml: Sample},
		{name: "all keys", yaml: "port: 14028\ntake_session: true\ndial_timeout: 1s\nconcurrency: 64\ntimeout: 3s"},
		{name: "typo", yaml: "prot: 4028", err: "field prot not found"},
		{name: "port", yaml: "port: 70000", err: "settings.port"},
		{name: "dial timeout", yaml: "dial_timeout: 0s", err: "settings.dial_timeout"},
		{name: "pool key", yaml: "concurrency: -1", err: "settings.concurrency"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseConfig(pooltest.Settings{YAML: tc.yaml})
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Positive(t, cfg.Concurrency)
			require.Positive(t, cfg.Timeout)
		})
	}
	cfg := DefaultConfig()
	require.Equal(t, "10.0.0.5:4028", NewDevice(&cfg, switchd.Device{Addr: "10.0.0.5"}).Addr())
	require.Equal(t, "10.0.0.5:14028", NewDevice(&cfg, switchd.Device{Addr: "10.0.0.5:14028"}).Addr())
	require.Equal(t, []string{"curtail sleep", "curtail wakeup", "profileset"}, newDevice(&cfg, switchd.Device{Addr: "h"}).Supports())
}

// TestThroughPool drives three fakes through the shared pool, as the
// daemon does.
func TestThroughPool(t *testing.T) {
	clk := pooltest.NewClock(t0)
	var devs []switchd.Device
	var fakes []*luxosfake.Miner
	for range 3 {
		f := luxosfake.New(luxosfake.Options{Now: clk.Now, WakeRamp: 5 * time.Minute})
		require.NoError(t, f.Start("127.0.0.1:0"))
		t.Cleanup(func() { _ = f.Close() })
		fakes = append(fakes, f)
		devs = append(devs, switchd.Device{Addr: f.Addr()})
	}
	spec := switchd.FleetSpec{Name: "asics", Count: 3}
	spec.Supports[switchd.ModeOff], spec.Supports[switchd.ModeMining] = true, true
	spec.Transition[switchd.ModeOff][switchd.ModeMining] = 5 * time.Minute
	spec.Transition[switchd.ModeMining][switchd.ModeOff] = 30 * time.Second
	drv, err := New(pool.Deps{Spec: spec, Devices: devs, Settings: pooltest.Settings{YAML: "timeout: 2s"}, Clock: clk, Logger: zaptest.NewLogger(t)})
	require.NoError(t, err)
	ctx := context.Background()

	st, err := drv.State(ctx)
	require.NoError(t, err)
	steady, _ := st.Count(switchd.ModeMining)
	require.Equal(t, 3, steady)

	require.NoError(t, drv.Apply(ctx, []switchd.Command{{From: switchd.ModeMining, To: switchd.ModeOff, Count: 2}}))
	asleep := 0
	for _, f := range fakes {
		if f.Asleep() {
			asleep++
		}
	}
	require.Equal(t, 2, asleep)
	st, err = drv.State(ctx)
	require.NoError(t, err)
	off, _ := st.Count(switchd.ModeOff)
	require.Equal(t, 2, off)

	// One is woken by hand: drift, re-commanded to sleep by the next polls.
	for _, f := range fakes {
		if f.Asleep() {
			f.SetAsleep(false)
			break
		}
	}
	clk.Advance(2 * time.Minute)
	st, err = drv.State(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, st.Drifted)
	asleep = 0
	for _, f := range fakes {
		if f.Asleep() {
			asleep++
		}
	}
	require.Equal(t, 2, asleep)

	// A session held elsewhere marks the device unusable, with reason auth.
	for _, f := range fakes {
		if !f.Asleep() {
			require.NoError(t, f.SetFault(luxosfake.FaultSessionHeld))
		}
	}
	err = drv.Apply(ctx, []switchd.Command{{From: switchd.ModeMining, To: switchd.ModeOff, Count: 1}})
	require.ErrorIs(t, err, switchd.ErrAuth)
	rep, ok := drv.(switchd.DeviceReporter)
	require.True(t, ok)
	auth := 0
	for _, d := range rep.Devices() {
		require.NotNil(t, d.PowerW)
		require.Equal(t, "Antminer S19k Pro", d.Model)
		if d.Problem == switchd.ProblemAuth {
			auth++
			require.Contains(t, d.LastError, "session held by another client")
		}
	}
	require.Equal(t, 1, auth)
	if s, ok := drv.(switchd.Stopper); ok {
		s.Stop()
	}
}

func TestProbe(t *testing.T) {
	r := newRig(t, luxosfake.Options{Asleep: true})
	res := pool.Probe(context.Background(), NewDevice(r.cfg, switchd.Device{Addr: r.fake.Addr()}))
	require.True(t, res.Reachable)
	require.Equal(t, "off", res.Mode)
	require.NotNil(t, res.PowerW)
	require.Equal(t, []string{"curtail sleep", "curtail wakeup", "profileset"}, res.Supports)
	require.Zero(t, r.fake.Count("logon"), "probing never takes the session")

	require.NoError(t, r.fake.SetFault(luxosfake.FaultRefuse))
	res = pool.Probe(context.Background(), NewDevice(r.cfg, switchd.Device{Addr: r.fake.Addr()}))
	require.False(t, res.Reachable)
	require.Equal(t, "unknown", res.Mode)
}

func TestExpiredLeakedSession(t *testing.T) {
	r := newRig(t, luxosfake.Options{})
	r.dev.leaked = "gone1234" // expired on the miner long ago
	require.NoError(t, r.dev.Close(context.Background()), "a refused logoff of an expired session is not an error")
	require.Empty(t, r.dev.leaked)
}
