package cgminer

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/cgminer/cgminerfake"
	"github.com/switchd/switchd/drivers/internal/cgrpc"
	"github.com/switchd/switchd/drivers/internal/pool"
	"github.com/switchd/switchd/drivers/internal/pool/pooltest"
	"go.uber.org/zap/zaptest"
)

var t0 = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)

func startFake(t *testing.T, o cgminerfake.Options) (*cgminerfake.Miner, *pooltest.Clock) {
	t.Helper()
	clk := pooltest.NewClock(t0)
	o.Now = clk.Now
	m := cgminerfake.New(o)
	require.NoError(t, m.Start("127.0.0.1:0"))
	t.Cleanup(m.Close)
	return m, clk
}

func device(t *testing.T, addr string) pool.Device {
	t.Helper()
	cfg, err := ParseConfig(pooltest.Settings{YAML: "timeout: 2s"})
	require.NoError(t, err)
	return NewDevice(&cfg, switchd.Device{Addr: addr})
}

func observe(t *testing.T, d pool.Device) pool.Observation {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	o, err := d.Observe(ctx)
	require.NoError(t, err)
	return o
}

func TestObserve(t *testing.T) {
	cases := []struct {
		name   string
		flavor cgminerfake.Flavor
		idle   bool
		broken bool
		mode   switchd.Mode
		fault  bool
		model  string
	}{
		{"avalon mining", cgminerfake.Avalon, false, false, switchd.ModeMining, false, "Avalon Q"},
		{"avalon soft-off", cgminerfake.Avalon, true, false, switchd.ModeOff, false, "Avalon Q"},
		{"avalon broken", cgminerfake.Avalon, false, true, switchd.ModeMining, true, "Avalon Q"},
		{"bmminer mining", cgminerfake.BMMiner, false, false, switchd.ModeMining, false, "Antminer S19"},
		// The 4028 API of stock firmware cannot tell a sleeping unit from
		// a faulted one: both read as a fault here.
		{"bmminer asleep", cgminerfake.BMMiner, true, false, switchd.ModeMining, true, "Antminer S19"},
		{"bmminer broken", cgminerfake.BMMiner, false, true, switchd.ModeMining, true, "Antminer S19"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, _ := startFake(t, cgminerfake.Options{Flavor: c.flavor, NominalTHs: 100})
			m.SetIdle(c.idle)
			m.SetBroken(c.broken)
			o := observe(t, device(t, m.Addr()))
			require.True(t, o.Known)
			require.Equal(t, c.mode, o.Mode)
			require.Equal(t, c.fault, o.Fault, o.Detail)
			require.Equal(t, c.model, o.Model)
			require.NotEmpty(t, o.Firmware)
			require.False(t, o.HasPower)
			if c.mode == switchd.ModeMining && !c.fault {
				require.InDelta(t, 100, o.HashrateTHs, 0.01)
			} else {
				require.Zero(t, o.HashrateTHs)
			}
		})
	}
}

// TestDriftAndRamp: an operator soft-offs and wakes a unit; Observe follows
// it, and the hashrate ramps up on the fake's virtual clock.
func TestDriftAndRamp(t *testing.T) {
	m, clk := startFake(t, cgminerfake.Options{NominalTHs: 100, Ramp: 10 * time.Minute})
	d := device(t, m.Addr())
	require.Equal(t, switchd.ModeMining, observe(t, d).Mode)

	m.SetIdle(true)
	o := observe(t, d)
	require.Equal(t, switchd.ModeOff, o.Mode)
	require.False(t, o.Fault)
	require.Contains(t, o.Detail, "SoftOFF[4]")

	m.SetIdle(false)
	clk.Advance(5 * time.Minute)
	o = observe(t, d)
	require.Equal(t, switchd.ModeMining, o.Mode)
	require.InDelta(t, 50, o.HashrateTHs, 0.01)
	clk.Advance(time.Hour)
	require.InDelta(t, 100, observe(t, d).HashrateTHs, 0.01)
}

func TestReadOnly(t *testing.T) {
	m, _ := startFake(t, cgminerfake.Options{})
	d := device(t, m.Addr())
	for _, mode := range []switchd.Mode{switchd.ModeOff, switchd.ModeMining} {
		err := d.Set(context.Background(), mode)
		require.Error(t, err)
		require.True(t, switchd.IsPermanent(err))
		require.ErrorIs(t, err, ErrReadOnly)
		require.Contains(t, err.Error(), "cgminer driver is read-only")
	}
	require.Empty(t, d.(pool.Capabilities).Supports())
	require.False(t, m.Idle(), "Set must not touch the device")
}

func TestFaults(t *testing.T) {
	cases := []struct {
		name        string
		fault       cgminerfake.Fault
		unreachable bool
	}{
		{"refused", cgminerfake.FaultRefuse, true},
		{"reset", cgminerfake.FaultReset, true},
		{"timeout", cgminerfake.FaultTimeout, true},
		{"garbage", cgminerfake.FaultGarbage, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, _ := startFake(t, cgminerfake.Options{})
			d := device(t, m.Addr())
			require.NoError(t, m.SetFault(c.fault))
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			_, err := d.Observe(ctx)
			require.Error(t, err)
			require.False(t, switchd.IsPermanent(err), "%v", err)
			require.ErrorIs(t, err, switchd.ErrRetriable)
			if c.unreachable {
				require.ErrorIs(t, err, switchd.ErrUnreachable)
			} else {
				require.NotErrorIs(t, err, switchd.ErrUnreachable)
			}
			// Cleared, it answers again.
			require.NoError(t, m.SetFault(cgminerfake.FaultNone))
			require.Equal(t, switchd.ModeMining, observe(t, d).Mode)
		})
	}
}

// TestReboot: another client's write reboots the unit mid-command; this
// driver sees it unreachable, then back and ramping up.
func TestReboot(t *testing.T) {
	m, clk := startFake(t, cgminerfake.Options{NominalTHs: 100, Ramp: time.Minute, RebootFor: 30 * time.Second})
	d := device(t, m.Addr())
	require.NoError(t, m.SetFault(cgminerfake.FaultReboot))
	ctx := context.Background()
	_, err := cgrpc.Exchange(ctx, m.Addr(), cgrpc.Request("ascset", "0,softoff,1:1"), cgrpc.Options{})
	require.ErrorIs(t, err, switchd.ErrUnreachable, "the write's connection is dropped")
	require.False(t, m.Idle(), "the write was not applied")

	_, err = d.Observe(ctx)
	require.ErrorIs(t, err, switchd.ErrUnreachable)

	clk.Advance(30 * time.Second)
	o := observe(t, d)
	require.Equal(t, switchd.ModeMining, o.Mode)
	require.True(t, o.Fault, "just rebooted: not hashing yet")
	clk.Advance(time.Minute)
	o = observe(t, d)
	require.False(t, o.Fault)
	require.InDelta(t, 100, o.HashrateTHs, 0.01)
}

// TestWireFixtures serves recorded replies (with the NUL the sources
// stripped) and observes them through the driver.
func TestWireFixtures(t *testing.T) {
	dir := pooltest.FixtureDir(t)
	cases := []struct {
		name, summary, stats, version string
		mode                          switchd.Mode
		fault                         bool
		ths                           float64
		model                         string
	}{
		{"avalon q soft-off", "cgminer/summary-avalon-q.json", "cgminer/stats-avalon-q.json", "cgminer/version-avalon-q.json", switchd.ModeOff, false, 0, "Avalon Q"},
		{"s19 pro", "bmminer/summary-s19pro.json", "bmminer/stats-s19pro.json", "bmminer/version-s19pro.json", switchd.ModeMining, false, 110.56689, "Antminer S19 Pro"},
		{"s19 sleeping", "bmminer/stats-s19-sleeping.json", "bmminer/stats-s19-sleeping.json", "bmminer/version-s19pro.json", switchd.ModeMining, true, 0, "Antminer S19 Pro"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			replies := map[string]string{"summary": c.summary, "stats": c.stats, "version": c.version}
			addr := serveFiles(t, dir, replies)
			o := observe(t, device(t, addr))
			require.True(t, o.Known)
			require.Equal(t, c.mode, o.Mode)
			require.Equal(t, c.fault, o.Fault)
			require.InDelta(t, c.ths, o.HashrateTHs, 1e-6)
			require.Equal(t, c.model, o.Model)
		})
	}
}

// serveFiles answers each command with a fixture file and a NUL.
func serveFiles(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	srv := &cgminerfake.Server{Handle: func(r cgminerfake.Request) []byte {
		name, ok := files[r.Command]
		if !ok {
			return cgminerfake.ErrorReply(14, "Invalid command", "")
		}
		b, err := readFixture(dir, name)
		if err != nil {
			return []byte("unreadable fixture")
		}
		return b
	}}
	require.NoError(t, srv.Start("127.0.0.1:0"))
	t.Cleanup(srv.Close)
	return srv.Addr()
}

func TestParseConfig(t *testing.T) {
	cfg, err := ParseConfig(pooltest.Settings{YAML: Sample})
	require.NoError(t, err)
	require.Equal(t, 4028, cfg.Port)
	require.Equal(t, 5*time.Second, cfg.Timeout)

	_, err = ParseConfig(pooltest.Settings{YAML: "port: 0"})
	require.ErrorContains(t, err, "settings.port")
	_, err = ParseConfig(pooltest.Settings{YAML: "prot: 4028"})
	require.Error(t, err)

	d := NewDevice(&cfg, switchd.Device{Addr: "10.0.0.5"})
	require.Equal(t, "10.0.0.5:4028", d.Addr())
	d = NewDevice(&cfg, switchd.Device{Addr: "10.0.0.5:4029"})
	require.Equal(t, "10.0.0.5:4029", d.Addr())
}

// TestPool drives two fakes through the shared pool: State reads them,
// Apply cannot move them.
func TestPool(t *testing.T) {
	m1, clk := startFake(t, cgminerfake.Options{})
	m2 := cgminerfake.New(cgminerfake.Options{Now: clk.Now})
	require.NoError(t, m2.Start("127.0.0.1:0"))
	t.Cleanup(m2.Close)
	m2.SetIdle(true)

	spec := switchd.FleetSpec{Name: "avalons", Count: 2}
	spec.Supports[switchd.ModeMining] = true
	drv, err := New(pool.Deps{
		Spec:     spec,
		Devices:  []switchd.Device{{Addr: m1.Addr()}, {Addr: m2.Addr()}},
		Settings: pooltest.Settings{YAML: "timeout: 2s"},
		Clock:    clk,
		Logger:   zaptest.NewLogger(t),
	})
	require.NoError(t, err)
	ctx := context.Background()
	st, err := drv.State(ctx)
	require.NoError(t, err)
	var counts [switchd.NumModes]int
	for _, c := range st.Cohorts {
		counts[c.Mode] += c.Count
	}
	require.Equal(t, 1, counts[switchd.ModeMining])
	require.Equal(t, 1, counts[switchd.ModeOff])

	err = drv.Apply(ctx, []switchd.Command{{From: switchd.ModeMining, To: switchd.ModeOff, Count: 1}})
	require.Error(t, err)
	require.False(t, m1.Idle())
}

func readFixture(dir, name string) ([]byte, error) {
	return os.ReadFile(filepath.Join(dir, name))
}
