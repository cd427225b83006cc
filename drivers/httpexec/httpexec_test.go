package httpexec

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

// triton is a settings block driving a Triton-style server over HTTP.
const triton = `
ready_path: /v2/health/ready
on: {path: /v2/repository/models/llama/load}
off: {path: /v2/repository/models/llama/unload, body: '{}'}
`

func startFake(t *testing.T, o inferencefake.Options) *inferencefake.Server {
	t.Helper()
	s := inferencefake.New(o)
	require.NoError(t, s.Start("127.0.0.1:0"))
	t.Cleanup(s.Close)
	return s
}

func newDevice(t *testing.T, yaml, addr string) *Device {
	t.Helper()
	cfg, err := ParseConfig(pooltest.Settings{YAML: yaml})
	require.NoError(t, err)
	return NewDevice(&cfg, switchd.Device{Addr: addr}).(*Device)
}

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
	cfg, err := ParseConfig(pooltest.Settings{YAML: "on_command: [/bin/true]\noff_command: [/bin/true]\n"})
	require.NoError(t, err)
	require.Equal(t, "/health", cfg.ReadyPath)
	require.Equal(t, 8000, cfg.Port)
	require.Equal(t, NotReadyOff, cfg.NotReady)

	cfg, err = ParseConfig(pooltest.Settings{YAML: triton})
	require.NoError(t, err)
	require.Equal(t, &Call{Method: "POST", Path: "/v2/repository/models/llama/unload", Body: "{}", ContentType: "application/json"}, cfg.Off)

	_, err = ParseConfig(pooltest.Settings{YAML: Sample})
	require.NoError(t, err, "the sample must validate")

	const hooks = "on_command: [/bin/true]\noff_command: [/bin/true]\n"
	for _, tc := range []struct{ name, yaml, want string }{
		{"no on", "off_command: [/bin/true]\n", "settings.on: required (or on_command)"},
		{"both", hooks + "on: {path: /x}\n", "settings.on: give on or on_command, not both"},
		{"shell string", "on_command: ['systemctl start tgi']\noff_command: [/bin/true]\n", "no shell runs the command"},
		{"empty argv", "on_command: []\noff_command: [/bin/true]\n", "settings.on_command: must name a program"},
		{"method", "on: {method: FETCH, path: /x}\noff_command: [/bin/true]\n", "settings.on.method"},
		{"path", "on: {path: x}\noff_command: [/bin/true]\n", "settings.on.path"},
		{"status and ready", hooks + "status_command: [/bin/true]\nready_path: /health\n", "not both"},
		{"ready_check", hooks + "ready_check: body\n", `ready_check "body"`},
		{"not_ready", hooks + "not_ready: maybe\n", `not_ready "maybe"`},
		{"unknown key", hooks + "ready_pth: /x\n", "field ready_pth not found"},
		{"timeout", hooks + "command_timeout: -1s\n", "settings.command_timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig(pooltest.Settings{YAML: tc.yaml})
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// TestTritonHTTP curtails and restores a Triton-style server through its
// model control calls; it is in inference only once ready.
func TestTritonHTTP(t *testing.T) {
	clk := pooltest.NewClock(t0)
	f := startFake(t, inferencefake.Options{Now: clk.Now, Model: "llama", ReadyDelay: 20 * time.Second})
	d := newDevice(t, triton, f.Addr())
	require.Equal(t, pool.Observation{Mode: switchd.ModeInference, Known: true}, observe(t, d))
	require.Equal(t, []string{"on: POST /v2/repository/models/llama/load", "off: POST /v2/repository/models/llama/unload"}, d.Supports())

	require.NoError(t, d.Set(ctxT(t, 5*time.Second), switchd.ModeOff))
	require.Equal(t, 1, f.Calls("POST /v2/repository/models/llama/unload"))
	require.Equal(t, pool.Observation{Mode: switchd.ModeOff, Known: true, Detail: "not ready: status 503"}, observe(t, d))

	require.NoError(t, d.Set(ctxT(t, 5*time.Second), switchd.ModeInference))
	require.Equal(t, switchd.ModeOff, observe(t, d).Mode, "loading: not yet in inference")
	clk.Advance(20 * time.Second)
	require.Equal(t, switchd.ModeInference, observe(t, d).Mode)

	// not_ready: fault reads the warm-up as a faulty inference instead.
	df := newDevice(t, triton+"not_ready: fault\n", f.Addr())
	f.SetSleeping(true, 2)
	obs := observe(t, df)
	require.Equal(t, switchd.ModeInference, obs.Mode)
	require.True(t, obs.Fault)

	require.True(t, switchd.IsPermanent(d.Set(ctxT(t, time.Second), switchd.ModeMining)))
}

// TestTGIHooks drives a TGI-style server with exec hooks; a stopped one
// refuses connections and reads as off.
func TestTGIHooks(t *testing.T) {
	clk := pooltest.NewClock(t0)
	f := startFake(t, inferencefake.Options{Now: clk.Now, Health: inferencefake.HealthTGI, ColdStart: time.Minute})
	d := newDevice(t, "on_command: [/bin/true]\noff_command: [/bin/echo, '{addr}']\n", f.Addr())
	require.Equal(t, switchd.ModeInference, observe(t, d).Mode)

	require.NoError(t, d.Set(ctxT(t, 5*time.Second), switchd.ModeOff))
	require.NoError(t, f.StopEngine())
	require.Equal(t, pool.Observation{Mode: switchd.ModeOff, Known: true, Detail: "not listening"}, observe(t, d))

	require.NoError(t, d.Set(ctxT(t, 5*time.Second), switchd.ModeInference))
	require.NoError(t, f.StartEngine())
	require.Equal(t, pool.Observation{Mode: switchd.ModeOff, Known: true, Detail: "not ready: status 503"}, observe(t, d))
	clk.Advance(time.Minute)
	require.Equal(t, switchd.ModeInference, observe(t, d).Mode)

	// A TGI /health also fails while the fake is asleep.
	f.SetSleeping(true, 1)
	require.Equal(t, switchd.ModeOff, observe(t, d).Mode)
}

func TestReadyModels(t *testing.T) {
	clk := pooltest.NewClock(t0)
	f := startFake(t, inferencefake.Options{Now: clk.Now, ReadyDelay: 10 * time.Second})
	d := newDevice(t, "ready_path: /v1/models\nready_check: models\non: {path: /wake_up}\noff: {path: /sleep}\n", f.Addr())
	require.Equal(t, pool.Observation{Mode: switchd.ModeInference, Known: true, Model: "meta-llama/Llama-3.1-8B-Instruct"}, observe(t, d))
	require.NoError(t, d.Set(ctxT(t, 5*time.Second), switchd.ModeOff))
	require.NoError(t, d.Set(ctxT(t, 5*time.Second), switchd.ModeInference))
	require.Equal(t, pool.Observation{Mode: switchd.ModeOff, Known: true, Detail: "not ready: no model loaded"}, observe(t, d))
	clk.Advance(10 * time.Second)
	require.Equal(t, switchd.ModeInference, observe(t, d).Mode)
}

func TestStatusCommand(t *testing.T) {
	for _, tc := range []struct {
		argv string
		want pool.Observation
	}{
		{"[/bin/echo, inference]", pool.Observation{Mode: switchd.ModeInference, Known: true}},
		{"[/bin/echo, inactive]", pool.Observation{Mode: switchd.ModeOff, Known: true, Detail: "inactive"}},
		{"[/bin/echo, activating]", pool.Observation{Mode: switchd.ModeInference, Known: true, Fault: true, Detail: "not ready: activating"}},
		{"[/bin/true]", pool.Observation{Mode: switchd.ModeInference, Known: true}},
		{"[/bin/false]", pool.Observation{Mode: switchd.ModeOff, Known: true, Detail: "status exit 1"}},
		{"[/bin/echo, '{addr}']", pool.Observation{Mode: switchd.ModeInference, Known: true}},
	} {
		t.Run(tc.argv, func(t *testing.T) {
			d := newDevice(t, "status_command: "+tc.argv+"\non_command: [/bin/true]\noff_command: [/bin/true]\n", "10.0.0.1")
			require.Equal(t, tc.want, observe(t, d))
		})
	}

	d := newDevice(t, "status_command: [/bin/sleep, '10']\ncommand_timeout: 100ms\non_command: [/bin/true]\noff_command: [/bin/true]\n", "10.0.0.1")
	_, err := d.Observe(ctxT(t, 5*time.Second))
	require.ErrorContains(t, err, "status_command: /bin/sleep 10: context deadline exceeded")
	require.False(t, switchd.IsPermanent(err))

	d = newDevice(t, "status_command: [/nonexistent/probe]\non_command: [/bin/true]\noff_command: [/bin/true]\n", "10.0.0.1")
	_, err = d.Observe(ctxT(t, 5*time.Second))
	require.True(t, switchd.IsPermanent(err), "%v", err)
}

func TestHookOutput(t *testing.T) {
	d := newDevice(t, "on_command: [/bin/ls, '/nonexistent-{host}-{port}']\noff_command: [/bin/true]\n", "10.0.0.7:9000")
	err := d.Set(ctxT(t, 5*time.Second), switchd.ModeInference)
	require.ErrorContains(t, err, "on_command: /bin/ls /nonexistent-10.0.0.7-9000: exit status 2: stderr: ")
	require.ErrorContains(t, err, "/nonexistent-10.0.0.7-9000")
	var ee *ExitError
	require.True(t, errors.As(err, &ee))
	require.Equal(t, 2, ee.Result.Exit)
	require.False(t, switchd.IsPermanent(err))

	res, err := Run(ctxT(t, 5*time.Second), []string{"/bin/echo", strings.Repeat("x", 10000)}, 0)
	require.NoError(t, err)
	require.Len(t, res.Stdout, maxOutput+len("…"), "output capped")
}

func TestFaults(t *testing.T) {
	for _, tc := range []struct {
		name        string
		fault       inferencefake.Fault
		unreachable bool
		contains    string
	}{
		{"timeout", inferencefake.FaultHang, true, "deadline exceeded"},
		{"500", inferencefake.Fault500, false, "status 500"},
		{"garbage", inferencefake.FaultGarbage, false, "model list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFake(t, inferencefake.Options{})
			d := newDevice(t, "ready_path: /v1/models\nready_check: models\non: {path: /wake_up}\noff: {path: /sleep}\n", f.Addr())
			require.NoError(t, f.SetFault(tc.fault))
			_, err := d.Observe(ctxT(t, 300*time.Millisecond))
			require.ErrorContains(t, err, tc.contains)
			require.Equal(t, tc.unreachable, errors.Is(err, switchd.ErrUnreachable), "%v", err)
			require.False(t, switchd.IsPermanent(err))
			if tc.fault != inferencefake.FaultGarbage {
				err = d.Set(ctxT(t, 300*time.Millisecond), switchd.ModeOff)
				require.Error(t, err)
				require.Equal(t, tc.unreachable, errors.Is(err, switchd.ErrUnreachable), "%v", err)
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		f := startFake(t, inferencefake.Options{})
		d := newDevice(t, triton, f.Addr())
		require.NoError(t, f.SetFault(inferencefake.FaultRefuse))
		require.Equal(t, switchd.ModeOff, observe(t, d).Mode, "nothing listening is off")
		require.ErrorIs(t, d.Set(ctxT(t, time.Second), switchd.ModeInference), switchd.ErrUnreachable)
	})
	t.Run("token", func(t *testing.T) {
		t.Setenv("HTTPEXEC_TEST_TOKEN", "wrong")
		f := startFake(t, inferencefake.Options{Model: "llama", Token: "right", ProtectAll: true})
		d := newDevice(t, triton+"password_env: HTTPEXEC_TEST_TOKEN\n", f.Addr())
		_, err := d.Observe(ctxT(t, time.Second))
		require.ErrorIs(t, err, switchd.ErrAuth)
		require.ErrorIs(t, d.Set(ctxT(t, time.Second), switchd.ModeOff), switchd.ErrAuth)
		t.Setenv("HTTPEXEC_TEST_TOKEN", "right")
		require.NoError(t, d.Set(ctxT(t, time.Second), switchd.ModeOff), "secrets are read at use")
	})
}

func TestBaseURL(t *testing.T) {
	for _, tc := range []struct{ addr, base, hostport, err string }{
		{"10.0.0.5", "http://10.0.0.5:8000", "10.0.0.5:8000", ""},
		{"gpu1:8080", "http://gpu1:8080", "gpu1:8080", ""},
		{"::1", "http://[::1]:8000", "[::1]:8000", ""},
		{"[fe80::1]", "http://[fe80::1]:8000", "[fe80::1]:8000", ""},
		{"https://gpu1:443", "https://gpu1:443", "gpu1:443", ""},
		{"https://gpu1", "https://gpu1:8000", "gpu1:8000", ""},
		{"ftp://gpu1", "", "", "scheme"},
		{"", "", "", "no host"},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			base, hp, err := BaseURL(tc.addr, "http", 8000)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.base, base)
			require.Equal(t, tc.hostport, hp)
		})
	}
	require.Equal(t, []string{"x", "h:1", "h", "1"}, Expand([]string{"x", "{addr}", "{host}", "{port}"}, "h:1"))
}

func TestPool(t *testing.T) {
	clk := pooltest.NewClock(t0)
	f := startFake(t, inferencefake.Options{Now: clk.Now, Model: "llama"})
	spec := switchd.FleetSpec{Name: "triton", Count: 1}
	spec.Supports[switchd.ModeOff], spec.Supports[switchd.ModeInference] = true, true
	drv, err := New(pool.Deps{Spec: spec, Devices: []switchd.Device{{Addr: f.Addr()}}, Settings: pooltest.Settings{YAML: triton}, Clock: clk, Logger: zaptest.NewLogger(t)})
	require.NoError(t, err)
	ctx := ctxT(t, 10*time.Second)
	_, err = drv.State(ctx)
	require.NoError(t, err)
	require.NoError(t, drv.Apply(ctx, []switchd.Command{{From: switchd.ModeInference, To: switchd.ModeOff, Count: 1}}))
	st, err := drv.State(ctx)
	require.NoError(t, err)
	off, _ := st.Count(switchd.ModeOff)
	require.Equal(t, 1, off)

	_, err = New(pool.Deps{Spec: spec, Devices: []switchd.Device{{Addr: "ftp://x"}}, Settings: pooltest.Settings{YAML: triton}, Clock: clk, Logger: zaptest.NewLogger(t)})
	require.ErrorContains(t, err, `device "ftp://x"`)
}

func TestParseStatus(t *testing.T) {
	require.Equal(t, pool.Observation{Mode: switchd.ModeOff, Known: true, Detail: "failed"}, ParseStatus("failed\n", 3))
	require.Equal(t, pool.Observation{Detail: "deactivating"}, ParseStatus("deactivating", 3))
	require.Equal(t, switchd.ModeInference, ParseStatus("  ACTIVE  \n", 0).Mode)
	require.Equal(t, switchd.ModeOff, ParseStatus("garbage", 7).Mode)
}

func FuzzParseStatus(f *testing.F) {
	for _, s := range []string{"active\n", "inactive", "", "\x00", "activating (start)"} {
		f.Add(s, 0)
	}
	f.Fuzz(func(t *testing.T, out string, exit int) {
		obs := ParseStatus(out, exit)
		if obs.Fault && obs.Mode != switchd.ModeInference {
			t.Fatalf("fault outside inference: %+v", obs)
		}
	})
}

func FuzzParseModels(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "models.json")); err == nil {
		f.Add(b)
	}
	for _, s := range []string{`{"object":"list","data":[]}`, `{"data":null}`, `{"data":[{"id":1}]}`, `[`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ids, err := ParseModels(b)
		if err != nil && ids != nil {
			t.Fatal("ids with an error")
		}
	})
}

func TestParseModels(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "models.json"))
	require.NoError(t, err)
	ids, err := ParseModels(b)
	require.NoError(t, err)
	require.Equal(t, []string{"meta-llama/Llama-3.1-8B-Instruct", "llama-lora"}, ids)
	_, err = ParseModels([]byte(`{"object":"list"}`))
	require.ErrorContains(t, err, "no data field")
}
