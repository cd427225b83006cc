package vllm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/inferencefake"
	"github.com/switchd/switchd/drivers/internal/pool"
	"github.com/switchd/switchd/drivers/internal/pool/pooltest"
)

var t0 = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)

// startFake starts a fake vLLM on a free loopback port, closed at cleanup.
func startFake(t *testing.T, o inferencefake.Options) *inferencefake.Server {
	t.Helper()
	s := inferencefake.New(o)
	require.NoError(t, s.Start("127.0.0.1:0"))
	t.Cleanup(s.Close)
	return s
}

// newDevice builds a device at addr from settings YAML.
func newDevice(t *testing.T, yaml, addr string) *Device {
	t.Helper()
	cfg, err := ParseConfig(pooltest.Settings{YAML: yaml})
	require.NoError(t, err)
	return NewDevice(&cfg, switchd.Device{Addr: addr}).(*Device)
}

// ctxT is a context bounded like one pool call.
func ctxT(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func observe(t *testing.T, d *Device) pool.Observation {
	t.Helper()
	obs, err := d.Observe(ctxT(t, 5*time.Second))
	require.NoError(t, err)
	return obs
}

func TestParseConfig(t *testing.T) {
	cfg, err := ParseConfig(pooltest.Settings{})
	require.NoError(t, err)
	require.Equal(t, 8000, cfg.Port)
	require.Equal(t, OffSleep, cfg.OffAction)
	require.Equal(t, "/v1/models", cfg.ReadyPath)
	require.Equal(t, 30*time.Second, cfg.Timeout)
	require.Equal(t, 1, cfg.SleepLevel)

	_, err = ParseConfig(pooltest.Settings{YAML: Sample})
	require.NoError(t, err, "the sample must validate")

	for _, tc := range []struct{ yaml, want string }{
		{"off_action: nap\n", `off_action "nap": want sleep or stop`},
		{"off_action: stop\n", "settings.stop_command: required"},
		{"off_action: stop\nstop_command: [/bin/true]\nstart_command: ['/usr/bin/systemctl start vllm']\n", "settings.start_command: program"},
		{"stop_command: [/bin/true]\n", "settings.stop_command: only with off_action: stop"},
		{"sleep_level: 3\n", "settings.sleep_level: want 1 or 2"},
		{"port: 0\n", "settings.port"},
		{"scheme: ftp\n", "settings.scheme"},
		{"ready_path: health\n", "settings.ready_path"},
		{"drain_timeout: 30s\n", "settings.drain_timeout"},
		{"drain_interval: 1ms\n", "settings.drain_interval"},
		{"password_file: /nonexistent/key\n", "settings.password_file"},
		{"drain_timout: 1s\n", "field drain_timout not found"},
	} {
		t.Run(strings.Fields(tc.yaml)[0], func(t *testing.T) {
			_, err := ParseConfig(pooltest.Settings{YAML: tc.yaml})
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestObserveReady(t *testing.T) {
	f := startFake(t, inferencefake.Options{})
	d := newDevice(t, "", f.Addr())
	require.Equal(t, pool.Observation{Mode: switchd.ModeInference, Known: true, Model: "meta-llama/Llama-3.1-8B-Instruct", Firmware: "vLLM 0.9.2"}, observe(t, d))
	require.Equal(t, []string{"sleep", "wake_up"}, d.Supports())

	// Default port: an address without one gets 8000.
	d2 := newDevice(t, "", "127.0.0.1")
	require.Equal(t, "http://127.0.0.1:8000", d2.base)
}

// TestCurtailRestore sleeps the engine and wakes it; it counts as in
// inference only once the fake's warm-up (on a virtual clock) is over.
func TestCurtailRestore(t *testing.T) {
	for _, level := range []int{1, 2} {
		t.Run("level"+string(rune('0'+level)), func(t *testing.T) {
			clk := pooltest.NewClock(t0)
			f := startFake(t, inferencefake.Options{Now: clk.Now, ReadyDelay: 30 * time.Second})
			d := newDevice(t, "sleep_level: "+string(rune('0'+level))+"\n", f.Addr())
			require.Equal(t, switchd.ModeInference, observe(t, d).Mode)

			require.NoError(t, d.Set(ctxT(t, 5*time.Second), switchd.ModeOff))
			sleeping, got := f.Sleeping()
			require.True(t, sleeping)
			require.Equal(t, level, got)
			obs := observe(t, d)
			require.Equal(t, pool.Observation{Mode: switchd.ModeOff, Known: true, Detail: "sleeping", Firmware: "vLLM 0.9.2"}, obs)

			require.NoError(t, d.Set(ctxT(t, 5*time.Second), switchd.ModeInference))
			sleeping, _ = f.Sleeping()
			require.False(t, sleeping)
			obs = observe(t, d)
			require.Equal(t, switchd.ModeInference, obs.Mode)
			require.True(t, obs.Fault, "not ready during warm-up")
			require.Equal(t, "not ready: no model listed", obs.Detail)

			clk.Advance(30 * time.Second)
			obs = observe(t, d)
			require.Equal(t, switchd.ModeInference, obs.Mode)
			require.False(t, obs.Fault)
			require.Equal(t, 1, f.Calls("POST /sleep"))
			require.Equal(t, 1, f.Calls("POST /wake_up"))
		})
	}
}

// TestDrift sees the engine put to sleep and woken by someone else.
func TestDrift(t *testing.T) {
	f := startFake(t, inferencefake.Options{})
	d := newDevice(t, "", f.Addr())
	f.SetSleeping(true, 2)
	require.Equal(t, switchd.ModeOff, observe(t, d).Mode)
	f.SetSleeping(false, 0)
	require.Equal(t, switchd.ModeInference, observe(t, d).Mode)
}

func TestDrain(t *testing.T) {
	const settings = "drain_timeout: 3s\ndrain_interval: 10ms\n"
	t.Run("until idle", func(t *testing.T) {
		f := startFake(t, inferencefake.Options{})
		d := newDevice(t, settings, f.Addr())
		f.SetRunning(2)
		done := make(chan struct{})
		go func() {
			defer close(done)
			time.Sleep(100 * time.Millisecond)
			s, _ := f.Sleeping()
			if !s { // still draining: the requests finish now
				f.SetRunning(0)
			}
		}()
		start := time.Now()
		require.NoError(t, d.Set(ctxT(t, 5*time.Second), switchd.ModeOff))
		<-done
		require.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond, "slept before the requests finished")
		s, _ := f.Sleeping()
		require.True(t, s)
		require.Greater(t, f.Calls("GET /metrics"), 1)
	})
	t.Run("bounded", func(t *testing.T) {
		f := startFake(t, inferencefake.Options{})
		d := newDevice(t, "drain_timeout: 200ms\ndrain_interval: 10ms\n", f.Addr())
		f.SetRunning(3)
		start := time.Now()
		require.NoError(t, d.Set(ctxT(t, 5*time.Second), switchd.ModeOff))
		require.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond)
		s, _ := f.Sleeping()
		require.True(t, s, "slept once the drain timed out")
	})
	t.Run("no metrics", func(t *testing.T) {
		f := startFake(t, inferencefake.Options{NoMetrics: true})
		d := newDevice(t, settings, f.Addr())
		start := time.Now()
		require.NoError(t, d.Set(ctxT(t, 5*time.Second), switchd.ModeOff))
		require.Less(t, time.Since(start), 2*time.Second)
		require.Equal(t, 1, f.Calls("GET /metrics"))
		s, _ := f.Sleeping()
		require.True(t, s)
	})
}

// TestFaults: every failure is an error, classified, and never read as a
// mode.
func TestFaults(t *testing.T) {
	for _, tc := range []struct {
		name        string
		fault       inferencefake.Fault
		unreachable bool
		contains    string
	}{
		{"refused", inferencefake.FaultRefuse, true, "connection refused"},
		{"timeout", inferencefake.FaultHang, true, "deadline exceeded"},
		{"500", inferencefake.Fault500, false, "status 500"},
		{"garbage", inferencefake.FaultGarbage, false, "is_sleeping reply"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFake(t, inferencefake.Options{})
			d := newDevice(t, "", f.Addr())
			require.NoError(t, f.SetFault(tc.fault))
			_, err := d.Observe(ctxT(t, 300*time.Millisecond))
			require.Error(t, err)
			require.ErrorContains(t, err, tc.contains)
			require.Equal(t, tc.unreachable, errors.Is(err, switchd.ErrUnreachable), "%v", err)
			require.False(t, switchd.IsPermanent(err), "%v", err)
			if tc.fault != inferencefake.FaultGarbage {
				err = d.Set(ctxT(t, 300*time.Millisecond), switchd.ModeOff)
				require.Error(t, err)
				require.Equal(t, tc.unreachable, errors.Is(err, switchd.ErrUnreachable), "%v", err)
				require.False(t, switchd.IsPermanent(err), "%v", err)
			}
			// Cleared, the device answers again.
			require.NoError(t, f.SetFault(inferencefake.FaultNone))
			require.Equal(t, switchd.ModeInference, observe(t, d).Mode)
		})
	}
}

func TestToken(t *testing.T) {
	t.Setenv("VLLM_TEST_KEY", "s3cret")
	t.Setenv("VLLM_TEST_WRONG", "guess")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "key"), []byte("s3cret\n"), 0o600))

	f := startFake(t, inferencefake.Options{Token: "s3cret"})
	good := newDevice(t, "password_env: VLLM_TEST_KEY\n", f.Addr())
	require.Equal(t, switchd.ModeInference, observe(t, good).Mode)
	fromFile := newDevice(t, "password_file: "+filepath.Join(dir, "key")+"\n", f.Addr())
	require.Equal(t, switchd.ModeInference, observe(t, fromFile).Mode)

	for _, yaml := range []string{"password_env: VLLM_TEST_WRONG\n", ""} {
		bad := newDevice(t, yaml, f.Addr())
		_, err := bad.Observe(ctxT(t, 5*time.Second))
		require.ErrorIs(t, err, switchd.ErrAuth)
		require.True(t, switchd.IsPermanent(err))
		require.ErrorContains(t, err, "status 401")
	}

	// A per-device secret overrides the fleet's.
	cfg, err := ParseConfig(pooltest.Settings{YAML: "password_env: VLLM_TEST_WRONG\n"})
	require.NoError(t, err)
	dev := NewDevice(&cfg, switchd.Device{Addr: f.Addr(), Secret: "env:VLLM_TEST_KEY"})
	_, err = dev.Observe(ctxT(t, 5*time.Second))
	require.NoError(t, err)

	// Behind a proxy that guards every route, the sleep call fails too.
	g := startFake(t, inferencefake.Options{Token: "s3cret", ProtectAll: true})
	bad := newDevice(t, "password_env: VLLM_TEST_WRONG\n", g.Addr())
	require.ErrorIs(t, bad.Set(ctxT(t, 5*time.Second), switchd.ModeOff), switchd.ErrAuth)
	s, _ := g.Sleeping()
	require.False(t, s)
}

func TestNoSleepMode(t *testing.T) {
	f := startFake(t, inferencefake.Options{NoSleepMode: true})
	d := newDevice(t, "", f.Addr())
	_, err := d.Observe(ctxT(t, 5*time.Second))
	require.True(t, switchd.IsPermanent(err))
	require.ErrorContains(t, err, "--enable-sleep-mode")
	err = d.Set(ctxT(t, 5*time.Second), switchd.ModeOff)
	require.True(t, switchd.IsPermanent(err))
	require.ErrorContains(t, err, "--enable-sleep-mode")

	require.True(t, switchd.IsPermanent(d.Set(ctxT(t, time.Second), switchd.ModeMining)), "GPUs do not mine")
}

// TestStopStart drives the engine with exec hooks: a stopped server
// refuses connections and reads as off; a started one is not ready until
// its cold start is over.
func TestStopStart(t *testing.T) {
	clk := pooltest.NewClock(t0)
	f := startFake(t, inferencefake.Options{Now: clk.Now, ColdStart: 90 * time.Second, NoSleepMode: true})
	d := newDevice(t, "off_action: stop\nstop_command: [/bin/echo, stopping, '{addr}']\nstart_command: [/bin/true]\n", f.Addr())
	require.Equal(t, []string{"stop", "start"}, d.Supports())
	require.Equal(t, switchd.ModeInference, observe(t, d).Mode, "no sleep routes: awake when it answers")

	require.NoError(t, d.Set(ctxT(t, 5*time.Second), switchd.ModeOff))
	require.NoError(t, f.StopEngine()) // what systemctl stop would have done
	require.Equal(t, pool.Observation{Mode: switchd.ModeOff, Known: true, Detail: "not listening"}, observe(t, d))

	require.NoError(t, d.Set(ctxT(t, 5*time.Second), switchd.ModeInference))
	require.NoError(t, f.StartEngine())
	obs := observe(t, d)
	require.Equal(t, switchd.ModeInference, obs.Mode)
	require.True(t, obs.Fault)
	require.Equal(t, "not ready: status 503", obs.Detail)
	clk.Advance(90 * time.Second)
	obs = observe(t, d)
	require.False(t, obs.Fault)
	require.Equal(t, "meta-llama/Llama-3.1-8B-Instruct", obs.Model)
}

func TestHookErrors(t *testing.T) {
	f := startFake(t, inferencefake.Options{})
	for _, tc := range []struct {
		name, stop string
		permanent  bool
		contains   []string
	}{
		{"exit status", "[/bin/false]", false, []string{"stop_command: /bin/false: exit status 1 (no output)"}},
		{"output captured", "[/bin/ls, '/nonexistent-{port}']", false, []string{"exit status 2", "stderr: ", "/nonexistent-" + f.Addr()[strings.LastIndexByte(f.Addr(), ':')+1:]}},
		{"timeout", "[/bin/sleep, '10']", false, []string{"deadline exceeded"}},
		{"not found", "[/nonexistent/systemctl, stop]", true, []string{"exec /nonexistent/systemctl stop"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDevice(t, "off_action: stop\ncommand_timeout: 200ms\nstart_command: [/bin/true]\nstop_command: "+tc.stop+"\n", f.Addr())
			start := time.Now()
			err := d.Set(ctxT(t, 5*time.Second), switchd.ModeOff)
			require.Less(t, time.Since(start), 3*time.Second)
			require.Error(t, err)
			for _, c := range tc.contains {
				require.ErrorContains(t, err, c)
			}
			require.Equal(t, tc.permanent, switchd.IsPermanent(err), "%v", err)
		})
	}
}

// TestPool drives two hosts through the shared pool: curtail one, see it
// asleep, restore it.
func TestPool(t *testing.T) {
	clk := pooltest.NewClock(t0)
	fs := []*inferencefake.Server{startFake(t, inferencefake.Options{Now: clk.Now}), startFake(t, inferencefake.Options{Now: clk.Now})}
	spec := switchd.FleetSpec{Name: "gpus", Count: 2}
	spec.Supports[switchd.ModeOff], spec.Supports[switchd.ModeInference] = true, true
	spec.Transition[switchd.ModeInference][switchd.ModeOff] = 5 * time.Second
	spec.Transition[switchd.ModeOff][switchd.ModeInference] = 5 * time.Second
	drv, err := New(pool.Deps{
		Spec:     spec,
		Devices:  []switchd.Device{{Addr: fs[0].Addr()}, {Addr: fs[1].Addr()}},
		Settings: pooltest.Settings{YAML: "timeout: 5s\n"},
		Clock:    clk,
		Logger:   zaptest.NewLogger(t),
	})
	require.NoError(t, err)
	ctx := ctxT(t, 10*time.Second)
	st, err := drv.State(ctx)
	require.NoError(t, err)
	steady, _ := st.Count(switchd.ModeInference)
	require.Equal(t, 2, steady)

	require.NoError(t, drv.Apply(ctx, []switchd.Command{{From: switchd.ModeInference, To: switchd.ModeOff, Count: 1}}))
	clk.Advance(time.Second)
	st, err = drv.State(ctx)
	require.NoError(t, err)
	off, _ := st.Count(switchd.ModeOff)
	require.Equal(t, 1, off)
	s0, _ := fs[0].Sleeping()
	s1, _ := fs[1].Sleeping()
	require.True(t, s0 != s1, "exactly one host asleep")

	require.NoError(t, drv.Apply(ctx, []switchd.Command{{From: switchd.ModeOff, To: switchd.ModeInference, Count: 1}}))
	clk.Advance(time.Second)
	st, err = drv.State(ctx)
	require.NoError(t, err)
	steady, _ = st.Count(switchd.ModeInference)
	require.Equal(t, 2, steady)
}

func TestParseRunning(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "metrics.txt"))
	require.NoError(t, err)
	n, ok := ParseRunning(b)
	require.True(t, ok)
	require.Equal(t, 3.0, n, "summed over both engines")

	for _, tc := range []struct {
		in   string
		n    float64
		ok   bool
		name string
	}{
		{"vllm:num_requests_running 2\n", 2, true, "no labels"},
		{"vllm:num_requests_running{model_name=\"a b}\"} 1.0 1712345678000\n", 1, true, "brace in label and timestamp"},
		{"vllm:num_requests_running_total 5\n", 0, false, "other metric"},
		{"# vllm:num_requests_running 5\nvllm:num_requests_waiting 1\n", 0, false, "absent"},
		{"vllm:num_requests_running NaN\n", 0, false, "NaN"},
		{"", 0, false, "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, ok := ParseRunning([]byte(tc.in))
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.n, n)
		})
	}
}

func TestParseIsSleeping(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    bool
		wantErr bool
	}{
		{`{"is_sleeping": true}`, true, false},
		{`{"is_sleeping":false}`, false, false},
		{`{}`, false, true},
		{`{"is_sleeping": "yes"}`, false, true},
		{`<html>`, false, true},
	} {
		got, err := ParseIsSleeping([]byte(tc.in))
		require.Equal(t, tc.wantErr, err != nil, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
}

func FuzzParseIsSleeping(f *testing.F) {
	for _, s := range []string{`{"is_sleeping": true}`, `{"is_sleeping":false}`, `{}`, `null`, `[`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseIsSleeping(b)
		_, _ = ParseVersion(b)
	})
}

func FuzzParseRunning(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "metrics.txt")); err == nil {
		f.Add(b)
	}
	f.Add([]byte("vllm:num_requests_running{a=\"}\"} 1\n"))
	f.Add([]byte("vllm:num_requests_running{"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, ok := ParseRunning(b)
		if !ok && n != 0 {
			t.Fatalf("absent metric with value %v", n)
		}
	})
}
