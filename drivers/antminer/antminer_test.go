package antminer

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/antminer/antminerfake"
	"github.com/switchd/switchd/drivers/cgminer"
	"github.com/switchd/switchd/drivers/internal/cgrpc"
	"github.com/switchd/switchd/drivers/internal/pool"
	"github.com/switchd/switchd/drivers/internal/pool/pooltest"
	"go.uber.org/zap/zaptest"
)

var t0 = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)

func startFake(t *testing.T, o antminerfake.Options) (*antminerfake.Miner, *pooltest.Clock) {
	t.Helper()
	clk := pooltest.NewClock(t0)
	if o.Now == nil {
		o.Now = clk.Now
	}
	m := antminerfake.New(o)
	require.NoError(t, m.Start("127.0.0.1:0", "127.0.0.1:0"))
	t.Cleanup(m.Close)
	return m, clk
}

// device builds the driver's device for a fake; password is the one the
// driver sends (the fake's default is "root").
func device(t *testing.T, m *antminerfake.Miner, password string, extra string) *Device {
	t.Helper()
	t.Setenv("ANTMINER_TEST_PASSWORD", password)
	_, apiPort, err := net.SplitHostPort(m.APIAddr())
	require.NoError(t, err)
	cfg, err := ParseConfig(pooltest.Settings{YAML: "timeout: 2s\npassword_env: ANTMINER_TEST_PASSWORD\napi_port: " + apiPort + "\n" + extra})
	require.NoError(t, err)
	return NewDevice(&cfg, switchd.Device{Addr: m.WebAddr()}).(*Device)
}

func observe(t *testing.T, d pool.Device) pool.Observation {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	o, err := d.Observe(ctx)
	require.NoError(t, err)
	return o
}

func set(t *testing.T, d pool.Device, m switchd.Mode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, d.Set(ctx, m))
}

func TestObserveMining(t *testing.T) {
	m, _ := startFake(t, antminerfake.Options{NominalTHs: 110})
	d := device(t, m, "root", "")
	o := observe(t, d)
	require.True(t, o.Known)
	require.Equal(t, switchd.ModeMining, o.Mode)
	require.False(t, o.Fault)
	require.InDelta(t, 110, o.HashrateTHs, 1e-9)
	require.False(t, o.HasPower, "stock firmware does not report power")
	require.Equal(t, "Antminer S19 Pro", o.Model)
	require.Equal(t, "Mon Jun 1 20:27:44 CST 2020", o.Firmware)
	require.Equal(t, []string{"sleep", "normal"}, d.Supports())
}

func TestCurtailRestore(t *testing.T) {
	for _, c := range []struct {
		name    string
		key     string
		numeric bool
	}{
		{"bitmain-work-mode", "bitmain-work-mode", false},
		{"miner-mode numeric", "miner-mode", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, clk := startFake(t, antminerfake.Options{ModeKey: c.key, NumericMode: c.numeric, NominalTHs: 100, Ramp: 10 * time.Minute})
			d := device(t, m, "root", "")

			set(t, d, switchd.ModeOff)
			require.Equal(t, "1", m.WorkMode())
			o := observe(t, d)
			require.Equal(t, switchd.ModeOff, o.Mode)
			require.False(t, o.Fault)
			require.Zero(t, o.HashrateTHs)
			require.Equal(t, 20.0, m.PowerW())

			// Already asleep: not written again (a write restarts the
			// miner process).
			set(t, d, switchd.ModeOff)
			require.Equal(t, 1, m.Sets())

			set(t, d, switchd.ModeMining)
			require.Equal(t, "0", m.WorkMode())
			require.Equal(t, 2, m.Sets())
			o = observe(t, d)
			require.Equal(t, switchd.ModeMining, o.Mode)
			require.True(t, o.Fault, "waking: zero hashrate in normal mode reads as a fault")
			clk.Advance(5 * time.Minute)
			o = observe(t, d)
			require.False(t, o.Fault)
			require.InDelta(t, 50, o.HashrateTHs, 1e-9)
			clk.Advance(5 * time.Minute)
			require.InDelta(t, 100, observe(t, d).HashrateTHs, 1e-9)
		})
	}
}

// TestDrift: the work mode changed behind switchd's back; Observe sees it.
func TestDrift(t *testing.T) {
	m, clk := startFake(t, antminerfake.Options{Ramp: time.Minute})
	d := device(t, m, "root", "")
	require.Equal(t, switchd.ModeMining, observe(t, d).Mode)
	m.SetWorkMode("1")
	require.Equal(t, switchd.ModeOff, observe(t, d).Mode)
	m.SetWorkMode("0")
	clk.Advance(time.Minute)
	require.Equal(t, switchd.ModeMining, observe(t, d).Mode)
	m.SetBroken(true)
	o := observe(t, d)
	require.True(t, o.Fault)
	require.Contains(t, o.Detail, "zero hashrate")
}

func TestCredentials(t *testing.T) {
	t.Run("wrong password", func(t *testing.T) {
		m, _ := startFake(t, antminerfake.Options{Password: "s3cret"})
		d := device(t, m, "root", "")
		_, err := d.Observe(context.Background())
		require.ErrorIs(t, err, switchd.ErrAuth)
		require.True(t, switchd.IsPermanent(err))
		err = d.Set(context.Background(), switchd.ModeOff)
		require.ErrorIs(t, err, switchd.ErrAuth)
		require.Equal(t, "0", m.WorkMode())
		require.Zero(t, m.Sets())
	})
	t.Run("wrong user", func(t *testing.T) {
		m, _ := startFake(t, antminerfake.Options{})
		d := device(t, m, "root", "username: admin")
		_, err := d.Observe(context.Background())
		require.ErrorIs(t, err, switchd.ErrAuth)
	})
	t.Run("right password, stale nonce", func(t *testing.T) {
		m, _ := startFake(t, antminerfake.Options{Password: "s3cret"})
		d := device(t, m, "s3cret", "")
		observe(t, d)
		m.RotateNonce()
		observe(t, d)
		set(t, d, switchd.ModeOff)
		require.Equal(t, "1", m.WorkMode())
	})
	t.Run("per-device secret", func(t *testing.T) {
		m, _ := startFake(t, antminerfake.Options{Password: "mine"})
		dir := t.TempDir()
		f := filepath.Join(dir, "pw")
		require.NoError(t, os.WriteFile(f, []byte("mine\n"), 0o600))
		_, apiPort, _ := net.SplitHostPort(m.APIAddr())
		t.Setenv("ANTMINER_FLEET_PASSWORD", "fleet")
		cfg, err := ParseConfig(pooltest.Settings{YAML: "password_env: ANTMINER_FLEET_PASSWORD\napi_port: " + apiPort})
		require.NoError(t, err)
		d := NewDevice(&cfg, switchd.Device{Addr: m.WebAddr(), Secret: "file:" + f})
		require.Equal(t, switchd.ModeMining, observe(t, d).Mode)
		d = NewDevice(&cfg, switchd.Device{Addr: m.WebAddr()})
		_, err = d.Observe(context.Background())
		require.ErrorIs(t, err, switchd.ErrAuth)
	})
	t.Run("missing secret", func(t *testing.T) {
		m, _ := startFake(t, antminerfake.Options{})
		d := device(t, m, "root", "")
		d.dev.Secret = "env:ANTMINER_NOT_SET_ANYWHERE"
		_, err := d.Observe(context.Background())
		require.Error(t, err)
		require.True(t, switchd.IsPermanent(err))
	})
}

func TestFaults(t *testing.T) {
	cases := []struct {
		name        string
		fault       antminerfake.Fault
		unreachable bool
	}{
		{"refused", antminerfake.FaultRefuse, true},
		{"reset", antminerfake.FaultReset, true},
		{"timeout", antminerfake.FaultTimeout, true},
		{"garbage", antminerfake.FaultGarbage, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, _ := startFake(t, antminerfake.Options{})
			d := device(t, m, "root", "")
			observe(t, d) // a cached challenge, as in steady operation
			require.NoError(t, m.SetFault(c.fault))
			for _, op := range []string{"observe", "set"} {
				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				var err error
				if op == "observe" {
					_, err = d.Observe(ctx)
				} else {
					err = d.Set(ctx, switchd.ModeOff)
				}
				cancel()
				require.Error(t, err, op)
				require.ErrorIs(t, err, switchd.ErrRetriable, op)
				require.False(t, switchd.IsPermanent(err), "%s: %v", op, err)
				if c.unreachable {
					require.ErrorIs(t, err, switchd.ErrUnreachable, op)
				} else {
					require.NotErrorIs(t, err, switchd.ErrUnreachable, op)
				}
			}
			require.Equal(t, "0", m.WorkMode(), "never acted on")
			require.NoError(t, m.SetFault(antminerfake.FaultNone))
			require.Equal(t, switchd.ModeMining, observe(t, d).Mode)
		})
	}
}

// TestAPIDown: the web UI answers but the 4028 API does not; the
// observation fails rather than guessing the hashrate.
func TestAPIDown(t *testing.T) {
	m, _ := startFake(t, antminerfake.Options{})
	d := device(t, m, "root", "")
	d.api = "127.0.0.1:1"
	_, err := d.Observe(context.Background())
	require.ErrorIs(t, err, switchd.ErrUnreachable)
}

// TestRebootMidCommand: the unit drops the configuration write and
// reboots; it comes back in its stored (previous) work mode.
func TestRebootMidCommand(t *testing.T) {
	m, clk := startFake(t, antminerfake.Options{NominalTHs: 100, Ramp: time.Minute, RebootFor: time.Minute})
	d := device(t, m, "root", "")
	require.NoError(t, m.SetFault(antminerfake.FaultReboot))
	err := d.Set(context.Background(), switchd.ModeOff)
	require.ErrorIs(t, err, switchd.ErrUnreachable)
	require.Equal(t, "0", m.WorkMode())
	_, err = d.Observe(context.Background())
	require.ErrorIs(t, err, switchd.ErrUnreachable)

	clk.Advance(time.Minute)
	o := observe(t, d)
	require.Equal(t, switchd.ModeMining, o.Mode)
	require.True(t, o.Fault, "just rebooted, not hashing yet")
	clk.Advance(time.Minute)
	o = observe(t, d)
	require.False(t, o.Fault)
	// The command, sent again, goes through.
	set(t, d, switchd.ModeOff)
	require.Equal(t, switchd.ModeOff, observe(t, d).Mode)
}

func TestSetReplies(t *testing.T) {
	cases := []struct {
		reply     string
		ok        bool
		permanent bool
	}{
		{"ok", true, false},
		{"ok\nok\n", true, false},
		{`{"stats":"success","code":"M000","msg":"OK!"}`, true, false},
		{`{"stats":"error","code":"M001","msg":"Illegal"}`, false, true},
		{"<html>", false, false},
	}
	_, err := ParseMinerConf([]byte(`{"error":"not logged in"}`))
	require.Error(t, err, "not a configuration")
	c, err := ParseMinerConf([]byte(`{"pools":[]}`))
	require.NoError(t, err)
	_, err = c.With(WorkSleep)
	require.ErrorContains(t, err, "neither bitmain-work-mode nor miner-mode")
	for _, c := range cases {
		t.Run(c.reply, func(t *testing.T) {
			m, _ := startFake(t, antminerfake.Options{SetReply: c.reply})
			d := device(t, m, "root", "")
			err := d.Set(context.Background(), switchd.ModeOff)
			if c.ok {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Equal(t, c.permanent, switchd.IsPermanent(err))
		})
	}
}

// TestFixtures reads every recorded web UI reply, and the sleeping S19's
// stats with its configuration.
func TestFixtures(t *testing.T) {
	dir := pooltest.FixtureDir(t)
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		return b
	}
	confs := map[string]string{
		"get_miner_conf-s19-sleeping.bin":        WorkSleep,
		"get_miner_conf-s19pro.json":             WorkNormal,
		"get_miner_conf-s19pro-unconfigured.bin": "",
	}
	infos := map[string]SystemInfo{
		"get_system_info-l3plus.json": {"Antminer L3+", "Fri Aug 25 17:28:57 CST 2017"},
		"get_system_info-s19pro.json": {"Antminer S19 Pro", "Mon Jun 1 20:27:44 CST 2020"},
		"get_system_info-s21.json":    {"Antminer S21", "FR-1.12(251009-S21)"},
	}
	files, err := filepath.Glob(filepath.Join(dir, "antminer-web", "*"))
	require.NoError(t, err)
	require.Len(t, files, len(confs)+len(infos), "every fixture file must be checked")
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			b := read("antminer-web/" + name)
			if want, ok := infos[name]; ok {
				got, err := ParseSystemInfo(b)
				require.NoError(t, err)
				require.Equal(t, want, got)
				return
			}
			want, ok := confs[name]
			require.True(t, ok, "fixture %s is not checked", name)
			c, err := ParseMinerConf(b)
			require.NoError(t, err)
			require.Equal(t, []string{"bitmain-work-mode"}, c.Keys)
			require.Equal(t, want, c.Mode)
			// Written back with the other mode: valid JSON, only the work
			// mode changed, still a string.
			body, err := c.With(WorkSleep)
			require.NoError(t, err)
			var out map[string]any
			require.NoError(t, json.Unmarshal(body, &out))
			require.Equal(t, "1", out["bitmain-work-mode"])
			require.Len(t, out, len(c.Fields))
			require.Equal(t, c.Fields["pools"], out["pools"])
		})
	}

	pairs := []struct {
		name, conf, api string
		mode            switchd.Mode
		fault           bool
		ths             float64
	}{
		// The recorded sleeping S19: zero hashrate with work mode 1 is
		// asleep on purpose, not a fault.
		{"s19 sleeping", "get_miner_conf-s19-sleeping.bin", "bmminer/stats-s19-sleeping.json", switchd.ModeOff, false, 0},
		{"s19 pro mining", "get_miner_conf-s19pro.json", "bmminer/summary-s19pro.json", switchd.ModeMining, false, 110.56689},
		{"unconfigured, not hashing", "get_miner_conf-s19pro-unconfigured.bin", "bmminer/stats-s19-sleeping.json", switchd.ModeMining, true, 0},
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			c, err := ParseMinerConf(read("antminer-web/" + p.conf))
			require.NoError(t, err)
			r, err := cgrpc.Decode(read(p.api))
			require.NoError(t, err)
			ths, has := cgminer.Hashrate(r)
			o := Classify(c.Mode, ths, has)
			require.True(t, o.Known)
			require.Equal(t, p.mode, o.Mode)
			require.Equal(t, p.fault, o.Fault)
			require.InDelta(t, p.ths, o.HashrateTHs, 1e-6)
		})
	}
}

// TestWireFixtures serves the recorded sleeping S19 configuration over
// HTTP Digest and reads it through the driver.
func TestWireFixtures(t *testing.T) {
	dir := pooltest.FixtureDir(t)
	conf, err := os.ReadFile(filepath.Join(dir, "antminer-web", "get_miner_conf-s19-sleeping.bin"))
	require.NoError(t, err)
	info, err := os.ReadFile(filepath.Join(dir, "antminer-web", "get_system_info-s21.json"))
	require.NoError(t, err)
	m, _ := startFake(t, antminerfake.Options{RawConf: conf, RawSystemInfo: info, Mode: "1"})
	d := device(t, m, "root", "")
	o := observe(t, d)
	require.Equal(t, switchd.ModeOff, o.Mode)
	require.False(t, o.Fault)
	require.Equal(t, "Antminer S21", o.Model)
	require.Equal(t, "FR-1.12(251009-S21)", o.Firmware)
}

func TestClassify(t *testing.T) {
	cases := []struct {
		mode  string
		ths   float64
		has   bool
		known bool
		want  switchd.Mode
		fault bool
	}{
		{"0", 100, true, true, switchd.ModeMining, false},
		{"0", 0, true, true, switchd.ModeMining, true},
		{"1", 0, true, true, switchd.ModeOff, false},
		{"1", 0, false, true, switchd.ModeOff, false},
		{"1", 30, true, true, switchd.ModeMining, false}, // still ramping down
		{"3", 50, true, true, switchd.ModeMining, false},
		{"3", 0, true, true, switchd.ModeMining, true},
		{"", 0, true, true, switchd.ModeMining, true},
		{"0", 0, false, false, 0, false},
	}
	for _, c := range cases {
		t.Run(c.mode+"/"+strconv.FormatFloat(c.ths, 'f', -1, 64), func(t *testing.T) {
			o := Classify(c.mode, c.ths, c.has)
			require.Equal(t, c.known, o.Known)
			require.Equal(t, c.want, o.Mode)
			require.Equal(t, c.fault, o.Fault)
		})
	}
}

func TestAddresses(t *testing.T) {
	t.Setenv("P", "x")
	cfg, err := ParseConfig(pooltest.Settings{YAML: "password_env: P"})
	require.NoError(t, err)
	cases := []struct{ addr, web, api string }{
		{"10.0.0.5", "10.0.0.5:80", "10.0.0.5:4028"},
		{"10.0.0.5:8080", "10.0.0.5:8080", "10.0.0.5:4028"},
		{"10.0.0.5:4028", "10.0.0.5:80", "10.0.0.5:4028"}, // the API port names the unit
		{"miner-7.site.lan", "miner-7.site.lan:80", "miner-7.site.lan:4028"},
		{"fe80::1", "[fe80::1]:80", "[fe80::1]:4028"},
		{"[fe80::1]:8080", "[fe80::1]:8080", "[fe80::1]:4028"},
	}
	for _, c := range cases {
		d := NewDevice(&cfg, switchd.Device{Addr: c.addr}).(*Device)
		require.Equal(t, c.web, d.Addr(), c.addr)
		require.Equal(t, c.api, d.APIAddr(), c.addr)
	}
}

func TestParseConfig(t *testing.T) {
	cfg, err := ParseConfig(pooltest.Settings{YAML: Sample})
	require.NoError(t, err)
	require.Equal(t, 80, cfg.WebPort)
	require.Equal(t, 4028, cfg.APIPort)
	require.Equal(t, "http", cfg.Scheme)
	require.Equal(t, "root", cfg.Username)
	require.Equal(t, "ANTMINER_PASSWORD", cfg.PasswordEnv)

	cfg, err = ParseConfig(pooltest.Settings{})
	require.NoError(t, err)
	require.Equal(t, "root", cfg.Username)

	_, err = ParseConfig(pooltest.Settings{YAML: "scheme: ftp\nweb_port: 0\napi_port: 99999"})
	require.ErrorContains(t, err, "settings.scheme")
	require.ErrorContains(t, err, "settings.web_port")
	require.ErrorContains(t, err, "settings.api_port")
	_, err = ParseConfig(pooltest.Settings{YAML: "password_file: /nonexistent/pw\npassword_env: X"})
	require.ErrorContains(t, err, "password_file")
	_, err = ParseConfig(pooltest.Settings{YAML: "password_file: /nonexistent/pw"})
	require.ErrorContains(t, err, "password_file")
	_, err = ParseConfig(pooltest.Settings{YAML: "password: root"})
	require.Error(t, err, "never inline")

	// New wants a password for every device.
	_, err = New(pool.Deps{Devices: []switchd.Device{{Addr: "10.0.0.5"}}, Settings: pooltest.Settings{},
		Clock: pooltest.NewClock(t0), Logger: zaptest.NewLogger(t)})
	require.ErrorContains(t, err, "password_file")
	_, err = New(pool.Deps{Devices: []switchd.Device{{Addr: "10.0.0.5", Secret: "env:X"}}, Settings: pooltest.Settings{},
		Clock: pooltest.NewClock(t0), Logger: zaptest.NewLogger(t)})
	require.NoError(t, err)
}

// TestPool curtails and restores two fakes through the shared pool. The
// fakes sit on two loopback addresses with the same API port, as real
// units share api_port.
func TestPool(t *testing.T) {
	clk := pooltest.NewClock(t0)
	m1 := antminerfake.New(antminerfake.Options{Now: clk.Now, Ramp: time.Minute})
	require.NoError(t, m1.Start("127.0.0.1:0", "127.0.0.1:0"))
	t.Cleanup(m1.Close)
	_, apiPort, _ := net.SplitHostPort(m1.APIAddr())
	m2 := antminerfake.New(antminerfake.Options{Now: clk.Now, Ramp: time.Minute})
	if err := m2.Start("127.0.0.2:0", "127.0.0.2:"+apiPort); err != nil {
		t.Skipf("second loopback address unavailable: %v", err)
	}
	t.Cleanup(m2.Close)

	t.Setenv("ANTMINER_TEST_PASSWORD", "root")
	spec := switchd.FleetSpec{Name: "s19", Count: 2}
	spec.Supports[switchd.ModeMining] = true
	spec.Transition[switchd.ModeMining][switchd.ModeOff] = 30 * time.Second
	spec.Transition[switchd.ModeOff][switchd.ModeMining] = 2 * time.Minute
	drv, err := New(pool.Deps{
		Spec:     spec,
		Devices:  []switchd.Device{{Addr: m1.WebAddr()}, {Addr: m2.WebAddr()}},
		Settings: pooltest.Settings{YAML: "timeout: 2s\npassword_env: ANTMINER_TEST_PASSWORD\napi_port: " + apiPort},
		Clock:    clk,
		Logger:   zaptest.NewLogger(t),
	})
	require.NoError(t, err)
	ctx := context.Background()
	steady := func() [switchd.NumModes]int {
		st, err := drv.State(ctx)
		require.NoError(t, err)
		var n [switchd.NumModes]int
		for _, c := range st.Cohorts {
			if c.Steady() {
				n[c.Mode] += c.Count
			}
		}
		return n
	}
	require.Equal(t, 2, steady()[switchd.ModeMining])
	require.NoError(t, drv.Apply(ctx, []switchd.Command{{From: switchd.ModeMining, To: switchd.ModeOff, Count: 2}}))
	require.Equal(t, "1", m1.WorkMode())
	require.Equal(t, "1", m2.WorkMode())
	clk.Advance(30 * time.Second)
	require.Equal(t, 2, steady()[switchd.ModeOff])
	require.NoError(t, drv.Apply(ctx, []switchd.Command{{From: switchd.ModeOff, To: switchd.ModeMining, Count: 1}}))
	clk.Advance(2 * time.Minute)
	n := steady()
	require.Equal(t, 1, n[switchd.ModeMining])
	require.Equal(t, 1, n[switchd.ModeOff])
}
