package whatsminer

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/internal/pool"
	"github.com/switchd/switchd/drivers/internal/pool/pooltest"
	"github.com/switchd/switchd/drivers/whatsminer/whatsminerfake"
	"go.uber.org/zap/zaptest"
)

var t0 = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)

// rig is one fake miner and a driver Device pointed at it, on a shared
// virtual clock.
type rig struct {
	fake  *whatsminerfake.Miner
	dev   *Device
	clock *pooltest.Clock
}

// newRig starts a fake with opt (its clock replaced by the rig's) and a
// device whose admin password is pw.
func newRig(t *testing.T, opt whatsminerfake.Options, pw string) *rig {
	t.Helper()
	clock := pooltest.NewClock(t0)
	opt.Now = clock.Now
	if opt.Password == "" {
		opt.Password = "s3cret"
	}
	f := whatsminerfake.New(opt)
	require.NoError(t, f.Start("127.0.0.1:0"))
	t.Cleanup(f.Close)
	cfg := testConfig(t, pw, "")
	return &rig{fake: f, dev: NewDevice(&cfg, switchd.Device{Addr: f.Addr()}, clock.Now).(*Device), clock: clock}
}

// testConfig parses settings with the password in a temporary file.
func testConfig(t *testing.T, pw, extra string) Config {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pw"), []byte(pw+"\n"), 0o600))
	cfg, err := ParseConfig(pooltest.Settings{YAML: "password_file: pw\ntimeout: 2s\n" + extra, Dir: dir})
	require.NoError(t, err)
	return cfg
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestObserveCurtailRestore(t *testing.T) {
	r := newRig(t, whatsminerfake.Options{HashrateTHs: 200, PowerW: 3600, Ramp: 4 * time.Minute}, "s3cret")
	ctx := ctxT(t)

	o, err := r.dev.Observe(ctx)
	require.NoError(t, err)
	require.True(t, o.Known)
	require.Equal(t, switchd.ModeMining, o.Mode)
	require.False(t, o.Fault)
	require.InDelta(t, 200, o.HashrateTHs, 0.01)
	require.True(t, o.HasPower)
	require.InDelta(t, 3600, o.PowerW, 1)
	require.Equal(t, "M30S+V40", o.Model)
	require.Equal(t, "20210322.22.REL", o.Firmware)

	// Curtail.
	require.NoError(t, r.dev.Set(ctx, switchd.ModeOff))
	require.Equal(t, switchd.ModeOff, r.fake.Mode())
	o, err = r.dev.Observe(ctx)
	require.NoError(t, err)
	require.Equal(t, switchd.ModeOff, o.Mode)
	require.False(t, o.Fault, "asleep on purpose")
	require.Zero(t, o.HashrateTHs, "MHS av stays up after a stop; HS RT is read")
	require.InDelta(t, 15, o.PowerW, 1)

	// Restore: the wake ramp, on the virtual clock.
	require.NoError(t, r.dev.Set(ctx, switchd.ModeMining))
	require.Equal(t, switchd.ModeMining, r.fake.Mode())
	o, err = r.dev.Observe(ctx)
	require.NoError(t, err)
	require.Equal(t, switchd.ModeMining, o.Mode)
	require.Zero(t, o.HashrateTHs)
	require.False(t, o.Fault, "waking up within warmup is not a fault")
	require.Contains(t, o.Detail, "warming up")

	r.clock.Advance(2 * time.Minute)
	o, err = r.dev.Observe(ctx)
	require.NoError(t, err)
	require.InDelta(t, 100, o.HashrateTHs, 0.01, "half way up the ramp")
	require.Greater(t, o.PowerW, 1700.0)

	r.clock.Advance(3 * time.Minute)
	o, err = r.dev.Observe(ctx)
	require.NoError(t, err)
	require.InDelta(t, 200, o.HashrateTHs, 0.01)
	require.Equal(t, []string{"power_off", "power_on"}, r.fake.Writes())
	require.Equal(t, 1, r.fake.Tokens(), "one token reused for both writes")
}

func TestPowerPercent(t *testing.T) {
	r := newRig(t, whatsminerfake.Options{HashrateTHs: 100, PowerW: 3015, IdleW: 15}, "s3cret")
	ctx := ctxT(t)
	require.NoError(t, r.dev.SetPowerPercent(ctx, 60.4))
	require.Equal(t, 60, r.fake.PowerPercent())
	o, err := r.dev.Observe(ctx)
	require.NoError(t, err)
	require.InDelta(t, 60, o.HashrateTHs, 0.01)
	require.InDelta(t, 15+0.6*3000, o.PowerW, 1)

	err = r.dev.SetPowerPercent(ctx, 120)
	require.True(t, switchd.IsPermanent(err))
	require.Equal(t, []string{"set_power_pct"}, r.fake.Writes(), "never adjust_power_limit")
}

func TestDriftAndFault(t *testing.T) {
	r := newRig(t, whatsminerfake.Options{}, "s3cret")
	ctx := ctxT(t)

	r.fake.SetMode(switchd.ModeOff) // someone else turned it off
	o, err := r.dev.Observe(ctx)
	require.NoError(t, err)
	require.Equal(t, switchd.ModeOff, o.Mode)

	r.fake.SetMode(switchd.ModeMining)
	r.clock.Advance(time.Hour)
	r.fake.SetHashFault(true)
	o, err = r.dev.Observe(ctx)
	require.NoError(t, err)
	require.Equal(t, switchd.ModeMining, o.Mode)
	require.True(t, o.Fault, "mining, not asleep, zero hashrate")
}

func TestWrongPassword(t *testing.T) {
	r := newRig(t, whatsminerfake.Options{Password: "right"}, "wrong")
	ctx := ctxT(t)
	_, err := r.dev.Observe(ctx)
	require.NoError(t, err, "reads need no password")

	err = r.dev.Set(ctx, switchd.ModeOff)
	require.Error(t, err)
	require.ErrorIs(t, err, switchd.ErrAuth)
	require.True(t, switchd.IsPermanent(err))
	require.Equal(t, switchd.ModeMining, r.fake.Mode())
	require.Empty(t, r.fake.Writes())
}

func TestTokenRefresh(t *testing.T) {
	r := newRig(t, whatsminerfake.Options{}, "s3cret")
	ctx := ctxT(t)
	require.NoError(t, r.dev.Set(ctx, switchd.ModeOff))

	// The unit forgot the token (expiry on its clock): one refresh.
	r.fake.ExpireTokens()
	require.NoError(t, r.dev.Set(ctx, switchd.ModeMining))
	require.Equal(t, switchd.ModeMining, r.fake.Mode())

	// The driver renews before the firmware's 30 min.
	r.clock.Advance(tokenTTL + time.Second)
	require.NoError(t, r.dev.Set(ctx, switchd.ModeOff))
	require.Equal(t, 2, r.fake.Tokens(), "a new token, the old one still alive on the unit")
	require.Equal(t, []string{"power_off", "power_on", "power_off"}, r.fake.Writes())
}

func TestTokenLimit(t *testing.T) {
	r := newRig(t, whatsminerfake.Options{}, "s3cret")
	r.fake.SetFault(whatsminerfake.FaultTokenLimit)
	err := r.dev.Set(ctxT(t), switchd.ModeOff)
	require.Error(t, err)
	require.False(t, switchd.IsPermanent(err), "the token budget comes back: %v", err)
	require.NotErrorIs(t, err, switchd.ErrAuth)
	require.Equal(t, switchd.ModeMining, r.fake.Mode())

	// The real limit, without the fault: one live token at most.
	r = newRig(t, whatsminerfake.Options{MaxTokens: 1}, "s3cret")
	ctx := ctxT(t)
	require.NoError(t, r.dev.Set(ctx, switchd.ModeOff))
	r.clock.Advance(tokenTTL + time.Second) // the driver renews; the unit still holds the old one
	err = r.dev.Set(ctx, switchd.ModeOff)
	require.Error(t, err)
	require.False(t, switchd.IsPermanent(err), "%v", err)
	r.clock.Advance(5 * time.Minute) // the old token expires on the unit
	require.NoError(t, r.dev.Set(ctx, switchd.ModeMining))
	require.Equal(t, switchd.ModeMining, r.fake.Mode())
}

func TestGarbage(t *testing.T) {
	r := newRig(t, whatsminerfake.Options{}, "s3cret")
	r.fake.SetFault(whatsminerfake.FaultGarbage)
	ctx := ctxT(t)
	_, err := r.dev.Observe(ctx)
	require.Error(t, err)
	require.ErrorIs(t, err, switchd.ErrRetriable)
	require.False(t, switchd.IsPermanent(err))

	err = r.dev.Set(ctx, switchd.ModeOff)
	require.Error(t, err)
	require.False(t, switchd.IsPermanent(err))
	require.Equal(t, switchd.ModeMining, r.fake.Mode())
}

func TestTimeout(t *testing.T) {
	r := newRig(t, whatsminerfake.Options{}, "s3cret")
	r.fake.SetFault(whatsminerfake.FaultTimeout)
	for _, op := range []struct {
		name string
		fn   func(ctx context.Context) error
	}{
		{"observe", func(ctx context.Context) error { _, err := r.dev.Observe(ctx); return err }},
		{"set", func(ctx context.Context) error { return r.dev.Set(ctx, switchd.ModeOff) }},
	} {
		t.Run(op.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := op.fn(ctx)
			require.ErrorIs(t, err, switchd.ErrUnreachable)
			require.Less(t, time.Since(start), 3*time.Second)
		})
	}
}

func TestRefused(t *testing.T) {
	// Nothing listening.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	cfg := testConfig(t, "x", "")
	d := NewDevice(&cfg, switchd.Device{Addr: addr}, time.Now)
	_, err = d.Observe(ctxT(t))
	require.ErrorIs(t, err, switchd.ErrUnreachable)
	require.ErrorIs(t, d.Set(ctxT(t), switchd.ModeOff), switchd.ErrUnreachable)

	// A unit that resets every connection.
	r := newRig(t, whatsminerfake.Options{}, "s3cret")
	r.fake.SetFault(whatsminerfake.FaultRefuse)
	_, err = r.dev.Observe(ctxT(t))
	require.ErrorIs(t, err, switchd.ErrUnreachable)
}

func TestRebootMidCommand(t *testing.T) {
	r := newRig(t, whatsminerfake.Options{RebootDelay: 2 * time.Minute, Ramp: 4 * time.Minute}, "s3cret")
	ctx := ctxT(t)
	_, err := r.dev.Observe(ctx)
	require.NoError(t, err)
	require.NoError(t, r.dev.SetPowerPercent(ctx, 80)) // takes a token

	r.fake.SetFault(whatsminerfake.FaultReboot)
	err = r.dev.Set(ctx, switchd.ModeOff)
	require.Error(t, err)
	require.False(t, switchd.IsPermanent(err), "a dropped connection is retried: %v", err)
	require.True(t, r.fake.Rebooting())

	_, err = r.dev.Observe(ctx)
	require.ErrorIs(t, err, switchd.ErrUnreachable, "rebooting")

	r.clock.Advance(3 * time.Minute)
	o, err := r.dev.Observe(ctx)
	require.NoError(t, err)
	require.Equal(t, switchd.ModeMining, o.Mode, "back in its previous mode: the command was lost")
	require.InDelta(t, 25, o.HashrateTHs, 0.01, "ramping up again")
	require.Equal(t, 100, r.fake.PowerPercent())

	// The reboot dropped the token: one refresh and the command goes through.
	require.NoError(t, r.dev.Set(ctx, switchd.ModeOff))
	require.Equal(t, switchd.ModeOff, r.fake.Mode())
	require.Equal(t, []string{"set_power_pct", "power_off"}, r.fake.Writes())
}

func TestFirmwareVariants(t *testing.T) {
	for _, c := range []struct {
		name    string
		opt     whatsminerfake.Options
		wantKey string
	}{
		{"quirks", whatsminerfake.Options{EscapeQuirk: true, TrailingComma: true}, ""},
		{"wants command", whatsminerfake.Options{Keys: whatsminerfake.KeysCommand}, "command"},
		{"wants cmd", whatsminerfake.Options{Keys: whatsminerfake.KeysCmd}, "cmd"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, c.opt, "s3cret")
			ctx := ctxT(t)
			o, err := r.dev.Observe(ctx)
			require.NoError(t, err)
			require.Equal(t, switchd.ModeMining, o.Mode)
			require.InDelta(t, 100, o.HashrateTHs, 0.01)
			require.Equal(t, "20210322.22.REL", o.Firmware)
			require.NoError(t, r.dev.Set(ctx, switchd.ModeOff))
			require.Equal(t, switchd.ModeOff, r.fake.Mode())
			o, err = r.dev.Observe(ctx)
			require.NoError(t, err)
			require.Equal(t, switchd.ModeOff, o.Mode)
			require.Equal(t, c.wantKey, r.dev.key)
		})
	}
}

func TestNoStatusCommand(t *testing.T) {
	r := newRig(t, whatsminerfake.Options{NoStatus: true}, "s3cret")
	ctx := ctxT(t)
	o, err := r.dev.Observe(ctx)
	require.NoError(t, err)
	require.True(t, o.Known)
	require.Equal(t, switchd.ModeMining, o.Mode, "hashing: mining")

	r.fake.SetMode(switchd.ModeOff)
	o, err = r.dev.Observe(ctx)
	require.NoError(t, err)
	require.False(t, o.Known, "zero hashrate without status: asleep or faulted is not known")
}

func TestSetInference(t *testing.T) {
	r := newRig(t, whatsminerfake.Options{}, "s3cret")
	err := r.dev.Set(ctxT(t), switchd.ModeInference)
	require.True(t, switchd.IsPermanent(err))
}

func TestParseConfig(t *testing.T) {
	for _, c := range []struct {
		name, yaml, err string
	}{
		{"defaults", "password_env: X\n", ""},
		{"v3 needs no password", "api: v3\n", ""},
		{"v2 needs a password", "timeout: 3s\n", "password_file"},
		{"unknown api", "api: v4\npassword_env: X\n", "v4"},
		{"typo", "pasword_env: X\n", "pasword_env"},
		{"port", "port: 70000\npassword_env: X\n", "settings.port"},
		{"user", "username: root\npassword_env: X\n", "settings.username"},
		{"warmup", "warmup: -1s\npassword_env: X\n", "settings.warmup"},
		{"missing file", "password_file: /nonexistent/pw\n", "settings.password_file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := ParseConfig(pooltest.Settings{YAML: c.yaml})
			if c.err != "" {
				require.ErrorContains(t, err, c.err)
				return
			}
			require.NoError(t, err)
			if cfg.API == APIv3 {
				require.Equal(t, portV3, cfg.Port)
			} else {
				require.Equal(t, portV2, cfg.Port)
			}
		})
	}

	cfg, err := ParseConfig(pooltest.Settings{YAML: Sample})
	require.NoError(t, err, "the sample settings block is valid")
	require.Equal(t, APIv2, cfg.API)
	d := NewDevice(&cfg, switchd.Device{Addr: "10.0.0.5"}, time.Now).(*Device)
	require.Equal(t, "10.0.0.5:4028", d.Addr())
	require.Equal(t, []string{"power_off", "power_on", "set_power_pct"}, d.Supports())
}

// TestPool drives fake miners through pool.New: curtail, confirmation by
// observation, restore.
func TestPool(t *testing.T) {
	clock := pooltest.NewClock(t0)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pw"), []byte("s3cret"), 0o600))
	var devs []switchd.Device
	var fakes []*whatsminerfake.Miner
	for range 4 {
		f := whatsminerfake.New(whatsminerfake.Options{Password: "s3cret", Now: clock.Now, Ramp: time.Minute})
		require.NoError(t, f.Start("127.0.0.1:0"))
		t.Cleanup(f.Close)
		fakes = append(fakes, f)
		devs = append(devs, switchd.Device{Addr: f.Addr()})
	}
	spec := switchd.FleetSpec{Name: "wm", Count: len(devs)}
	spec.Supports[switchd.ModeMining] = true
	drv, err := New(pool.Deps{
		Spec: spec, Devices: devs, Clock: clock, Logger: zaptest.NewLogger(t),
		Settings: pooltest.Settings{YAML: "password_file: pw\ntimeout: 2s\n", Dir: dir},
	})
	require.NoError(t, err)
	ctx := ctxT(t)

	st, err := drv.State(ctx)
	require.NoError(t, err)
	require.Equal(t, 4, count(st, switchd.ModeMining))

	require.NoError(t, drv.Apply(ctx, []switchd.Command{{From: switchd.ModeMining, To: switchd.ModeOff, Count: 3}}))
	off := 0
	for _, f := range fakes {
		if f.Mode() == switchd.ModeOff {
			off++
		}
	}
	require.Equal(t, 3, off)
	clock.Advance(10 * time.Second)
	st, err = drv.State(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, count(st, switchd.ModeOff))
	require.Equal(t, 1, count(st, switchd.ModeMining))
}

// count is the fleet's devices steady in m.
func count(st switchd.FleetState, m switchd.Mode) int {
	n, _ := st.Count(m)
	return n
}

// TestV3Identify serves the recorded v3 get.device.info reply with the
// v3 framing (a 4-byte little-endian length) and probes it. get.miner.status
// has no recording: this server answers it with a HAND-MADE summary in the
// documented shape.
func TestV3Identify(t *testing.T) {
	reply := readFixture(t, "get_device_info-m60svk40-apiv3.json")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	got := make(chan string, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			var hdr [4]byte
			if _, err := io.ReadFull(c, hdr[:]); err != nil {
				_ = c.Close()
				continue
			}
			req := make([]byte, binary.LittleEndian.Uint32(hdr[:]))
			if _, err := io.ReadFull(c, req); err != nil {
				_ = c.Close()
				continue
			}
			got <- string(req)
			out := reply
			if strings.Contains(string(req), "get.miner.status") {
				out = []byte(`{"code":0,"when":1773869571,"msg":{"summary":{"elapsed":1074,"hash-realtime":61.2,"power-realtime":3268}},"desc":"get.miner.status"}`)
			}
			binary.LittleEndian.PutUint32(hdr[:], uint32(len(out)))
			_, _ = c.Write(append(hdr[:], out...))
			_ = c.Close()
		}
	}()

	cfg, err := ParseConfig(pooltest.Settings{YAML: "api: v3\n"})
	require.NoError(t, err)
	d := NewDevice(&cfg, switchd.Device{Addr: ln.Addr().String()}, time.Now)
	res := pool.Probe(ctxT(t), d)
	require.Equal(t, `{"cmd":"get.device.info"}`, <-got)
	require.Equal(t, `{"cmd":"get.miner.status","param":"summary"}`, <-got)
	require.True(t, res.Reachable, res.Error)
	require.Equal(t, "M60S_VK40", res.Model)
	require.Equal(t, "20251209.16.Rel2", res.Firmware)
	require.Equal(t, "mining", res.Mode)
	require.InDelta(t, 61.2, res.HashrateTHs, 1e-9)
	require.Equal(t, []string{"set.miner.service stop", "set.miner.service start"}, res.Supports)

	// No password configured: a write is refused before anything is sent.
	err = d.Set(ctxT(t), switchd.ModeOff)
	require.ErrorIs(t, err, switchd.ErrAuth)
	require.Empty(t, got)
}

// v3Rig is a device of an api: v3 fleet against whatsminerfake serving v3.
func v3Rig(t *testing.T, opt whatsminerfake.Options, pw string) *rig {
	t.Helper()
	clock := pooltest.NewClock(t0)
	opt.Now, opt.V3 = clock.Now, true
	if opt.Password == "" {
		opt.Password = "s3cret"
	}
	f := whatsminerfake.New(opt)
	require.NoError(t, f.Start("127.0.0.1:0"))
	t.Cleanup(f.Close)
	cfg := testConfig(t, pw, "api: v3\n")
	return &rig{fake: f, dev: NewDevice(&cfg, switchd.Device{Addr: f.Addr()}, clock.Now).(*Device), clock: clock}
}

// TestV3CurtailRestore: set.miner.service stop / start, signed, confirmed
// by what the unit then reports.
func TestV3CurtailRestore(t *testing.T) {
	r := v3Rig(t, whatsminerfake.Options{HashrateTHs: 200, PowerW: 3600, Ramp: 4 * time.Minute}, "s3cret")
	ctx := ctxT(t)
	o, err := r.dev.Observe(ctx)
	require.NoError(t, err)
	require.True(t, o.Known)
	require.Equal(t, switchd.ModeMining, o.Mode)
	require.InDelta(t, 200, o.HashrateTHs, 0.01)
	require.InDelta(t, 3600, o.PowerW, 1)
	require.Equal(t, "M30S+V40", o.Model)

	require.NoError(t, r.dev.Set(ctx, switchd.ModeOff))
	require.Equal(t, switchd.ModeOff, r.fake.Mode())
	o, err = r.dev.Observe(ctx)
	require.NoError(t, err)
	require.Equal(t, switchd.ModeOff, o.Mode)
	require.False(t, o.Fault)

	require.NoError(t, r.dev.Set(ctx, switchd.ModeMining))
	o, err = r.dev.Observe(ctx)
	require.NoError(t, err)
	require.Equal(t, switchd.ModeMining, o.Mode)
	require.False(t, o.Fault, "warming up: zero hashrate just after start is not a fault")
	r.clock.Advance(2 * time.Minute)
	o, err = r.dev.Observe(ctx)
	require.NoError(t, err)
	require.InDelta(t, 100, o.HashrateTHs, 1, "half way up the 4-minute ramp")
	require.Equal(t, []string{"set.miner.service stop", "set.miner.service start"}, r.fake.Writes())

	// Drift and fault: stopped behind switchd's back, then broken boards.
	r.fake.SetMode(switchd.ModeOff)
	o, err = r.dev.Observe(ctx)
	require.NoError(t, err)
	require.Equal(t, switchd.ModeOff, o.Mode)
	r.fake.SetMode(switchd.ModeMining)
	r.fake.SetHashFault(true)
	r.clock.Advance(10 * time.Minute)
	o, err = r.dev.Observe(ctx)
	require.NoError(t, err)
	require.Equal(t, switchd.ModeMining, o.Mode)
	require.True(t, o.Fault, o.Detail)
}

// TestV3Faults: wrong password, refused, timeout, garbage, reboot
// mid-command; nothing is acted on.
func TestV3Faults(t *testing.T) {
	t.Run("wrong password", func(t *testing.T) {
		r := v3Rig(t, whatsminerfake.Options{Password: "right"}, "wrong")
		err := r.dev.Set(ctxT(t), switchd.ModeOff)
		require.ErrorIs(t, err, switchd.ErrAuth)
		require.True(t, switchd.IsPermanent(err))
		require.Contains(t, err.Error(), "code -4")
		require.Equal(t, switchd.ModeMining, r.fake.Mode())
		require.Empty(t, r.fake.Writes())
	})
	for _, c := range []struct {
		name        string
		fault       whatsminerfake.Fault
		unreachable bool
	}{
		{"refused", whatsminerfake.FaultRefuse, true},
		{"timeout", whatsminerfake.FaultTimeout, true},
		{"garbage", whatsminerfake.FaultGarbage, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := v3Rig(t, whatsminerfake.Options{}, "s3cret")
			r.fake.SetFault(c.fault)
			for _, op := range []string{"observe", "set"} {
				ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
				var err error
				if op == "observe" {
					_, err = r.dev.Observe(ctx)
				} else {
					err = r.dev.Set(ctx, switchd.ModeOff)
				}
				cancel()
				require.Error(t, err, op)
				require.False(t, switchd.IsPermanent(err), op)
				require.Equal(t, c.unreachable, errors.Is(err, switchd.ErrUnreachable), "%s: %v", op, err)
			}
			require.Equal(t, switchd.ModeMining, r.fake.Mode(), "never acted on")
		})
	}
	t.Run("reboot mid-command", func(t *testing.T) {
		r := v3Rig(t, whatsminerfake.Options{RebootDelay: 2 * time.Minute, Ramp: 4 * time.Minute}, "s3cret")
		// The reboot takes the salt read; the write's connection is then
		// refused while the unit is down.
		r.fake.SetFault(whatsminerfake.FaultReboot)
		err := r.dev.Set(ctxT(t), switchd.ModeOff)
		require.Error(t, err)
		require.False(t, switchd.IsPermanent(err))
		require.Equal(t, switchd.ModeMining, r.fake.Mode(), "the command had no effect")
		r.clock.Advance(3 * time.Minute)
		o, err := r.dev.Observe(ctxT(t))
		require.NoError(t, err)
		require.Equal(t, switchd.ModeMining, o.Mode, "back in its mode after the reboot")
		require.NoError(t, r.dev.Set(ctxT(t), switchd.ModeOff), "commanded again, it obeys")
		require.Equal(t, switchd.ModeOff, r.fake.Mode())
	})
}

// TestV3Pool drives an api: v3 fleet through the pool; a v3 fleet needs a
// password and cannot take a power target.
func TestV3Pool(t *testing.T) {
	clock := pooltest.NewClock(t0)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pw"), []byte("s3cret"), 0o600))
	var devs []switchd.Device
	var fakes []*whatsminerfake.Miner
	for range 3 {
		f := whatsminerfake.New(whatsminerfake.Options{Password: "s3cret", Now: clock.Now, Ramp: time.Minute, V3: true})
		require.NoError(t, f.Start("127.0.0.1:0"))
		t.Cleanup(f.Close)
		fakes = append(fakes, f)
		devs = append(devs, switchd.Device{Addr: f.Addr()})
	}
	spec := switchd.FleetSpec{Name: "wm3", Count: len(devs)}
	spec.Supports[switchd.ModeMining] = true
	deps := pool.Deps{Spec: spec, Devices: devs, Clock: clock, Logger: zaptest.NewLogger(t),
		Settings: pooltest.Settings{YAML: "api: v3\npassword_file: pw\ntimeout: 2s\n", Dir: dir}}
	drv, err := New(deps)
	require.NoError(t, err)
	ctx := ctxT(t)
	st, err := drv.State(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, count(st, switchd.ModeMining))
	require.NoError(t, drv.Apply(ctx, []switchd.Command{{From: switchd.ModeMining, To: switchd.ModeOff, Count: 2}}))
	clock.Advance(10 * time.Second)
	st, err = drv.State(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, count(st, switchd.ModeOff))
	require.Equal(t, 1, count(st, switchd.ModeMining))

	noPw := deps
	noPw.Settings = pooltest.Settings{YAML: "api: v3\n"}
	_, err = New(noPw)
	require.ErrorContains(t, err, "settings.password_file")
	reduced := deps
	reduced.Spec.Supports[switchd.ModeMiningReduced] = true
	_, err = New(reduced)
	require.ErrorContains(t, err, "settings.api")
}
