package bosminer

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/bosminer/bosminerfake"
	"github.com/switchd/switchd/drivers/cgminer"
	"github.com/switchd/switchd/drivers/cgminer/cgminerfake"
	"github.com/switchd/switchd/drivers/internal/cgrpc"
	"github.com/switchd/switchd/drivers/internal/pool"
	"github.com/switchd/switchd/drivers/internal/pool/pooltest"
	"go.uber.org/zap/zaptest"
)

var t0 = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)

func startFake(t *testing.T, o bosminerfake.Options) (*bosminerfake.Miner, *pooltest.Clock) {
	t.Helper()
	clk := pooltest.NewClock(t0)
	o.Now = clk.Now
	m := bosminerfake.New(o)
	require.NoError(t, m.Start("127.0.0.1:0"))
	t.Cleanup(m.Close)
	return m, clk
}

func device(t *testing.T, addr string) *Device {
	t.Helper()
	cfg, err := ParseConfig(pooltest.Settings{YAML: "timeout: 2s"})
	require.NoError(t, err)
	return NewDevice(&cfg, switchd.Device{Addr: addr}).(*Device)
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

// TestFixtures reads every recorded bosminer reply.
func TestFixtures(t *testing.T) {
	dir := pooltest.FixtureDir(t)
	checks := map[string]func(t *testing.T, r cgrpc.Reply){
		"summary-s9-bosplus.json": func(t *testing.T, r cgrpc.Reply) {
			ths, ok := cgminer.Hashrate(r)
			require.True(t, ok)
			require.InDelta(t, 15.740915842676325, ths, 1e-9)
			st, _ := r.Status()
			require.Equal(t, "BOSminer+ 0.2.0-36c56a9363", st.Description)
		},
		"devs-s9-bosplus.json": func(t *testing.T, r cgrpc.Reply) {
			ths, ok := DevsHashrate(r)
			require.True(t, ok)
			require.InDelta(t, 4.68307074742169+4.687913424447901+4.213098705765925, ths, 1e-9)
		},
		"tunerstatus-s9.json": func(t *testing.T, r cgrpc.Reply) {
			w, ok := TunerPower(r)
			require.True(t, ok)
			require.Equal(t, 1419.0, w)
		},
		"devdetails-s9.json": func(t *testing.T, r cgrpc.Reply) {
			model, unavailable := Devdetails(r, nil)
			require.Equal(t, "Bitmain Antminer S9", model)
			require.False(t, unavailable)
		},
		"pause-s17.json": func(t *testing.T, r cgrpc.Reply) {
			changed, err := Ack(r, "PAUSE")
			require.NoError(t, err)
			require.True(t, changed)
		},
		"resume-s17.json": func(t *testing.T, r cgrpc.Reply) {
			changed, err := Ack(r, "RESUME")
			require.NoError(t, err)
			require.True(t, changed)
			_, err = Ack(r, "PAUSE")
			require.Error(t, err, "a resume reply is no pause ack")
		},
		"version-s9-bosplus.json": func(t *testing.T, r cgrpc.Reply) {
			st, _ := r.Status()
			require.Equal(t, "BOSminer+ 0.2.0-36c56a9363", st.Description)
		},
		"pools-s9-bosplus.json": func(t *testing.T, r cgrpc.Reply) {
			_, ok := cgminer.Hashrate(r)
			require.False(t, ok)
		},
		"temps-s9-bosplus.json": func(t *testing.T, r cgrpc.Reply) {
			_, ok := TunerPower(r)
			require.False(t, ok)
		},
	}
	files, err := filepath.Glob(filepath.Join(dir, "bosminer", "*"))
	require.NoError(t, err)
	sort.Strings(files)
	require.Len(t, files, len(checks), "every fixture file must be checked")
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			check, ok := checks[name]
			require.True(t, ok, "fixture %s is not checked", name)
			raw, err := os.ReadFile(f)
			require.NoError(t, err)
			// On the wire the reply ends in a NUL the sources stripped.
			r, err := cgrpc.Check(name, append(raw, 0))
			require.NoError(t, err)
			check(t, r)
		})
	}
}

// TestWireFixtures serves the recorded replies of one unit and drives the
// device through them.
func TestWireFixtures(t *testing.T) {
	dir := pooltest.FixtureDir(t)
	files := map[string]string{
		"summary": "summary-s9-bosplus.json", "devs": "devs-s9-bosplus.json",
		"tunerstatus": "tunerstatus-s9.json", "devdetails": "devdetails-s9.json",
		"pause": "pause-s17.json", "resume": "resume-s17.json", "version": "version-s9-bosplus.json",
	}
	srv := &cgminerfake.Server{Handle: func(r cgminerfake.Request) []byte {
		b, err := os.ReadFile(filepath.Join(dir, "bosminer", files[r.Command]))
		if err != nil {
			return cgminerfake.ErrorReply(14, "Invalid command", "")
		}
		return b
	}}
	require.NoError(t, srv.Start("127.0.0.1:0"))
	t.Cleanup(srv.Close)
	d := device(t, srv.Addr())
	o := observe(t, d)
	require.Equal(t, switchd.ModeMining, o.Mode)
	require.False(t, o.Fault)
	require.InDelta(t, 15.7409, o.HashrateTHs, 1e-4)
	require.True(t, o.HasPower)
	require.Equal(t, 1419.0, o.PowerW)
	require.Equal(t, "Bitmain Antminer S9", o.Model)
	require.Equal(t, "BOSminer+ 0.2.0-36c56a9363", o.Firmware)
	set(t, d, switchd.ModeOff)
	require.Equal(t, NotePaused, d.Note())
	set(t, d, switchd.ModeMining)
	require.Equal(t, NoteResumed, d.Note())
}

func TestClassify(t *testing.T) {
	cases := []struct {
		name        string
		ths         float64
		has         bool
		note        Note
		unavailable bool
		known       bool
		mode        switchd.Mode
		fault       bool
	}{
		{"hashing", 13, true, NoteUnknown, false, true, switchd.ModeMining, false},
		{"hashing after pause ack", 13, true, NotePaused, false, true, switchd.ModeMining, false},
		{"paused by us", 0, true, NotePaused, false, true, switchd.ModeOff, false},
		{"paused by someone else", 0, true, NoteResumed, true, true, switchd.ModeOff, false},
		{"paused before restart", 0, true, NoteUnknown, true, true, switchd.ModeOff, false},
		{"stopped after resume", 0, true, NoteResumed, false, true, switchd.ModeMining, true},
		{"stopped, never told", 0, true, NoteUnknown, false, true, switchd.ModeMining, true},
		{"no hashrate field", 0, false, NotePaused, false, false, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := Classify(c.ths, c.has, c.note, c.unavailable)
			require.Equal(t, c.known, o.Known)
			require.Equal(t, c.mode, o.Mode)
			require.Equal(t, c.fault, o.Fault)
			if c.fault || !c.known || c.mode == switchd.ModeOff {
				require.NotEmpty(t, o.Detail, "say why")
			}
		})
	}
}

func TestCurtailRestore(t *testing.T) {
	m, clk := startFake(t, bosminerfake.Options{NominalTHs: 13.5, Ramp: 2 * time.Minute, StopAfter: 5 * time.Second})
	d := device(t, m.Addr())
	o := observe(t, d)
	require.Equal(t, switchd.ModeMining, o.Mode)
	require.InDelta(t, 13.5, o.HashrateTHs, 1e-9)
	require.Equal(t, 1419.0, o.PowerW)
	require.Equal(t, "Bitmain Antminer S9", o.Model)
	require.Equal(t, []string{"pause", "resume"}, d.Supports())

	// Curtail: acknowledged at once, off once the hashrate is gone.
	set(t, d, switchd.ModeOff)
	require.True(t, m.Paused())
	o = observe(t, d)
	require.Equal(t, switchd.ModeMining, o.Mode, "still ramping down")
	clk.Advance(5 * time.Second)
	o = observe(t, d)
	require.Equal(t, switchd.ModeOff, o.Mode)
	require.False(t, o.Fault)
	require.False(t, o.HasPower, "the tuner's estimate is not a reading while paused")

	// Restore: the hashrate ramps up.
	set(t, d, switchd.ModeMining)
	require.False(t, m.Paused())
	o = observe(t, d)
	require.Equal(t, switchd.ModeMining, o.Mode)
	require.True(t, o.Fault, "zero hashrate right after resume reads as a fault")
	clk.Advance(time.Minute)
	o = observe(t, d)
	require.False(t, o.Fault)
	require.InDelta(t, 6.75, o.HashrateTHs, 1e-9)
	clk.Advance(time.Minute)
	require.InDelta(t, 13.5, observe(t, d).HashrateTHs, 1e-9)
	pauses, resumes := m.Commands()
	require.Equal(t, 1, pauses)
	require.Equal(t, 1, resumes)
}

// TestDrift: another client pauses the unit; the device tells it from a
// fault by devdetails "Unavailable" when the firmware gives it, and reads
// a fault when it does not.
func TestDrift(t *testing.T) {
	t.Run("devdetails unavailable", func(t *testing.T) {
		m, _ := startFake(t, bosminerfake.Options{})
		d := device(t, m.Addr())
		set(t, d, switchd.ModeMining)
		m.SetPaused(true)
		o := observe(t, d)
		require.Equal(t, switchd.ModeOff, o.Mode)
		require.False(t, o.Fault)
		m.SetPaused(false)
		require.Equal(t, switchd.ModeMining, observe(t, d).Mode)
	})
	t.Run("no hint", func(t *testing.T) {
		m, _ := startFake(t, bosminerfake.Options{NoUnavailable: true})
		d := device(t, m.Addr())
		set(t, d, switchd.ModeMining)
		m.SetPaused(true)
		o := observe(t, d)
		require.Equal(t, switchd.ModeMining, o.Mode)
		require.True(t, o.Fault, o.Detail)
	})
	t.Run("broken", func(t *testing.T) {
		m, _ := startFake(t, bosminerfake.Options{})
		d := device(t, m.Addr())
		m.SetBroken(true)
		o := observe(t, d)
		require.Equal(t, switchd.ModeMining, o.Mode)
		require.True(t, o.Fault)
		require.Contains(t, o.Detail, "zero hashrate while not paused")
	})
}

func TestFaults(t *testing.T) {
	cases := []struct {
		name        string
		fault       bosminerfake.Fault
		unreachable bool
	}{
		{"refused", bosminerfake.FaultRefuse, true},
		{"reset", bosminerfake.FaultReset, true},
		{"timeout", bosminerfake.FaultTimeout, true},
		{"garbage", bosminerfake.FaultGarbage, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, _ := startFake(t, bosminerfake.Options{})
			d := device(t, m.Addr())
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
				require.False(t, switchd.IsPermanent(err), op)
				if c.unreachable {
					require.ErrorIs(t, err, switchd.ErrUnreachable, op)
				} else {
					require.NotErrorIs(t, err, switchd.ErrUnreachable, op)
				}
			}
			require.Equal(t, NoteUnknown, d.Note(), "a failed command leaves no note")
			require.False(t, m.Paused(), "never acted on")
			require.NoError(t, m.SetFault(bosminerfake.FaultNone))
			require.Equal(t, switchd.ModeMining, observe(t, d).Mode)
		})
	}
}

// TestRebootMidCommand: the unit drops the pause command's connection and
// reboots; it comes back mining (a pause does not survive a reboot).
func TestRebootMidCommand(t *testing.T) {
	m, clk := startFake(t, bosminerfake.Options{NominalTHs: 13.5, Ramp: time.Minute, RebootFor: 30 * time.Second})
	d := device(t, m.Addr())
	set(t, d, switchd.ModeMining)
	require.NoError(t, m.SetFault(bosminerfake.FaultReboot))
	err := d.Set(context.Background(), switchd.ModeOff)
	require.ErrorIs(t, err, switchd.ErrUnreachable)
	require.Equal(t, NoteResumed, d.Note())
	_, err = d.Observe(context.Background())
	require.ErrorIs(t, err, switchd.ErrUnreachable)

	clk.Advance(30 * time.Second)
	o := observe(t, d)
	require.Equal(t, switchd.ModeMining, o.Mode)
	clk.Advance(time.Minute)
	o = observe(t, d)
	require.False(t, o.Fault)
	require.InDelta(t, 13.5, o.HashrateTHs, 1e-9)
	// The retried command goes through.
	set(t, d, switchd.ModeOff)
	require.Equal(t, switchd.ModeOff, observe(t, d).Mode)
}

// TestNotBosminer: a plain cgminer refuses pause; the error is permanent.
func TestNotBosminer(t *testing.T) {
	m := cgminerfake.New(cgminerfake.Options{})
	require.NoError(t, m.Start("127.0.0.1:0"))
	t.Cleanup(m.Close)
	d := device(t, m.Addr())
	err := d.Set(context.Background(), switchd.ModeOff)
	require.Error(t, err)
	require.True(t, switchd.IsPermanent(err))
	var se *cgrpc.StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, NoteUnknown, d.Note())
	require.Error(t, d.Set(context.Background(), switchd.ModeInference))
}

func TestAck(t *testing.T) {
	cases := []struct {
		name, reply string
		changed     bool
		permanent   bool
		ok          bool
	}{
		{"true", `{"STATUS":[{"STATUS":"S"}],"PAUSE":[true]}`, true, false, true},
		{"false (already paused)", `{"STATUS":[{"STATUS":"S"}],"PAUSE":[false]}`, false, false, true},
		{"string", `{"STATUS":[{"STATUS":"S"}],"PAUSE":["true"]}`, true, false, true},
		{"missing", `{"STATUS":[{"STATUS":"S"}]}`, false, true, false},
		{"empty", `{"STATUS":[{"STATUS":"S"}],"PAUSE":[]}`, false, true, false},
		{"odd", `{"STATUS":[{"STATUS":"S"}],"PAUSE":[{"a":1}]}`, false, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := cgrpc.Decode([]byte(c.reply))
			require.NoError(t, err)
			changed, err := Ack(r, "PAUSE")
			if c.ok {
				require.NoError(t, err)
				require.Equal(t, c.changed, changed)
				return
			}
			require.Error(t, err)
			require.Equal(t, c.permanent, switchd.IsPermanent(err))
		})
	}
}

func TestParseConfig(t *testing.T) {
	cfg, err := ParseConfig(pooltest.Settings{YAML: Sample})
	require.NoError(t, err)
	require.Equal(t, 4028, cfg.Port)
	_, err = ParseConfig(pooltest.Settings{YAML: "port: 70000\nconcurrency: -1"})
	require.ErrorContains(t, err, "settings.port")
	require.ErrorContains(t, err, "settings.concurrency")
	_, err = ParseConfig(pooltest.Settings{YAML: "power_target: 1000"})
	require.Error(t, err, "no such setting")
	require.Equal(t, "[::1]:4028", NewDevice(&cfg, switchd.Device{Addr: "::1"}).Addr())
}

// TestPool curtails two of three fakes through the shared pool and
// restores them.
func TestPool(t *testing.T) {
	clk := pooltest.NewClock(t0)
	var fakes []*bosminerfake.Miner
	var devs []switchd.Device
	for range 3 {
		m := bosminerfake.New(bosminerfake.Options{Now: clk.Now, Ramp: time.Minute})
		require.NoError(t, m.Start("127.0.0.1:0"))
		t.Cleanup(m.Close)
		fakes = append(fakes, m)
		devs = append(devs, switchd.Device{Addr: m.Addr()})
	}
	spec := switchd.FleetSpec{Name: "s9", Count: 3}
	spec.Supports[switchd.ModeMining] = true
	spec.Transition[switchd.ModeMining][switchd.ModeOff] = 10 * time.Second
	spec.Transition[switchd.ModeOff][switchd.ModeMining] = 2 * time.Minute
	drv, err := New(pool.Deps{Spec: spec, Devices: devs, Settings: pooltest.Settings{YAML: "timeout: 2s"},
		Clock: clk, Logger: zaptest.NewLogger(t)})
	require.NoError(t, err)
	ctx := context.Background()
	count := func() [switchd.NumModes]int {
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
	require.Equal(t, 3, count()[switchd.ModeMining])
	require.NoError(t, drv.Apply(ctx, []switchd.Command{{From: switchd.ModeMining, To: switchd.ModeOff, Count: 2}}))
	clk.Advance(10 * time.Second)
	n := count()
	require.Equal(t, 2, n[switchd.ModeOff])
	require.Equal(t, 1, n[switchd.ModeMining])
	paused := 0
	for _, m := range fakes {
		if m.Paused() {
			paused++
		}
	}
	require.Equal(t, 2, paused)

	require.NoError(t, drv.Apply(ctx, []switchd.Command{{From: switchd.ModeOff, To: switchd.ModeMining, Count: 2}}))
	clk.Advance(2 * time.Minute)
	require.Equal(t, 3, count()[switchd.ModeMining])
}

// FuzzReaders feeds arbitrary replies to every reader: none may panic.
func FuzzReaders(f *testing.F) {
	for _, s := range []string{
		`{"STATUS":[{"STATUS":"S"}],"PAUSE":[true]}`,
		`{"STATUS":[{"STATUS":"E","Msg":"Unavailable"}]}`,
		`{"TUNERSTATUS":[{"ApproximateMinerPowerConsumption":"nan"}]}`,
		`{"DEVS":[{"MHS 5s":1},{"MHS 5s":"x"},2]}`,
		`{"DEVDETAILS":[{"Model":1}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := cgrpc.Check("x", b)
		if r == nil {
			return
		}
		_, _ = Ack(r, "PAUSE")
		_, _ = Ack(r, "RESUME")
		_, _ = DevsHashrate(r)
		_, _ = Devdetails(r, err)
		if w, ok := TunerPower(r); ok && w <= 0 {
			t.Fatalf("power %v", w)
		}
		ths, has := cgminer.Hashrate(r)
		_ = Classify(ths, has, NoteUnknown, false)
	})
}

// TestWritesDenied is this API's "wrong credentials": the legacy API has no
// login, but a host without write access gets pause and resume refused
// (STATUS E, code 45). That is an authentication problem, permanent, and
// the unit is left as it was.
func TestWritesDenied(t *testing.T) {
	m, _ := startFake(t, bosminerfake.Options{DenyWrites: true})
	d := device(t, m.Addr())
	for _, mode := range []switchd.Mode{switchd.ModeOff, switchd.ModeMining} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := d.Set(ctx, mode)
		cancel()
		require.Error(t, err)
		require.ErrorIs(t, err, switchd.ErrAuth, mode.String())
		require.True(t, switchd.IsPermanent(err))
		require.Equal(t, switchd.ProblemAuth, switchd.ProblemOf(err))
		require.Contains(t, err.Error(), "Access denied")
		require.Contains(t, err.Error(), "write access")
	}
	require.False(t, m.Paused())
	pauses, resumes := m.Commands()
	require.Zero(t, pauses+resumes)
	// Reading still works: the unit is observed as it is.
	require.Equal(t, switchd.ModeMining, observe(t, d).Mode)
}
