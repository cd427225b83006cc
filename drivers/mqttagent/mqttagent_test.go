package mqttagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/internal/pool"
	"github.com/switchd/switchd/drivers/internal/pool/pooltest"
	"github.com/switchd/switchd/internal/mqtttest"
)

var t0 = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)

// agent is a fake device agent speaking MQTT: it follows the commands it
// receives on switchd/devices/+/set and reports each device's mode and
// power, retained, on its state topic.
type agent struct {
	t     *testing.T
	cli   mqtt.Client
	clock *pooltest.Clock
	plain bool // answer with a plain mode name

	mu       sync.Mutex
	modes    map[string]string
	commands []string         // "id payload" in arrival order
	silent   bool             // stop answering
	terms    map[string]int64 // newest term seen per device
	refused  int              // commands refused for an older term
}

// startAgent connects an agent for devices, all in mode, and publishes
// their states.
func startAgent(t *testing.T, broker string, clock *pooltest.Clock, plain bool, mode string, devices ...string) *agent {
	t.Helper()
	a := &agent{t: t, clock: clock, plain: plain, modes: map[string]string{}, terms: map[string]int64{}}
	o := mqtt.NewClientOptions().AddBroker("tcp://" + broker).SetClientID("fake-agent-" + t.Name()).SetCleanSession(true)
	a.cli = mqtt.NewClient(o)
	tok := a.cli.Connect()
	require.True(t, tok.WaitTimeout(waitMax))
	require.NoError(t, tok.Error())
	t.Cleanup(func() { a.cli.Disconnect(100) })
	sub := a.cli.Subscribe("switchd/devices/+/set", 1, a.onCommand)
	require.True(t, sub.WaitTimeout(waitMax))
	require.NoError(t, sub.Error())
	for _, d := range devices {
		a.set(d, mode)
	}
	return a
}

func (a *agent) onCommand(_ mqtt.Client, m mqtt.Message) {
	id := strings.Split(m.Topic(), "/")[2]
	payload := string(m.Payload())
	mode := payload
	var j struct {
		Mode string
		Term int64
	}
	if json.Unmarshal(m.Payload(), &j) == nil {
		mode = j.Mode
	}
	a.mu.Lock()
	a.commands = append(a.commands, id+" "+payload)
	silent := a.silent
	// High availability: a command of an older term than the newest seen
	// is a deposed leader's; refused.
	if j.Term > 0 && j.Term < a.terms[id] {
		a.refused++
		silent = true
	}
	a.terms[id] = max(a.terms[id], j.Term)
	a.mu.Unlock()
	if !silent {
		a.set(id, mode)
	}
}

// set puts a device in mode and publishes its state, as the agent does
// when the device changes on its own.
func (a *agent) set(id, mode string) {
	a.mu.Lock()
	a.modes[id] = mode
	a.mu.Unlock()
	payload := mode
	if !a.plain {
		power, hashrate := 20.0, 0.0
		if mode == "mining" {
			power, hashrate = 3400, 200
		}
		payload = fmt.Sprintf(`{"mode":%q,"power_w":%v,"hashrate_ths":%v,"ts":%q}`, mode, power, hashrate, a.clock.Now().Format(time.RFC3339))
	}
	a.publish("switchd/devices/"+id+"/state", payload)
}

func (a *agent) publish(topic, payload string) {
	tok := a.cli.Publish(topic, 1, true, payload)
	require.True(a.t, tok.WaitTimeout(waitMax))
	require.NoError(a.t, tok.Error())
}

func (a *agent) Commands() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.commands...)
}

func (a *agent) setSilent(s bool) {
	a.mu.Lock()
	a.silent = s
	a.mu.Unlock()
}

// newConn parses settings for broker and returns a connection with
// devices on it, closed at cleanup.
func newConn(t *testing.T, yaml string, clock switchd.Clock, ids ...string) (*Conn, map[string]*Device) {
	t.Helper()
	cfg, err := ParseConfig(pooltest.Settings{YAML: yaml})
	require.NoError(t, err)
	c := NewConn(&cfg, clock)
	devs := map[string]*Device{}
	for _, id := range ids {
		d := NewDevice(c, switchd.Device{Addr: id}).(*Device)
		devs[id] = d
		t.Cleanup(func() { _ = d.Close(context.Background()) })
	}
	return c, devs
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// eventually waits until d observes mode.
func eventually(t *testing.T, d *Device, mode switchd.Mode) pool.Observation {
	t.Helper()
	var obs pool.Observation
	require.Eventually(t, func() bool {
		var err error
		obs, err = d.Observe(ctxT(t, waitMax))
		return err == nil && obs.Known && obs.Mode == mode
	}, waitMax, 5*time.Millisecond, "want %s, last %+v", mode, obs)
	return obs
}

func TestParseConfig(t *testing.T) {
	cfg, err := ParseConfig(pooltest.Settings{YAML: "broker: tcp://127.0.0.1:1883\n"})
	require.NoError(t, err)
	require.Equal(t, "switchd/devices/{device}/set", cfg.CommandTopic)
	require.Equal(t, 2*time.Minute, cfg.MaxAge)
	require.Equal(t, PayloadJSON, cfg.CommandPayload)

	_, err = ParseConfig(pooltest.Settings{YAML: Sample})
	require.NoError(t, err, "the sample must validate")

	const b = "broker: tcp://h:1883\n"
	for _, tc := range []struct{ name, yaml, want string }{
		{"no broker", "", "settings.broker: required"},
		{"scheme", "broker: http://h\n", "unsupported scheme"},
		{"not a url", "broker: h:1883\n", "want a URL"},
		{"no device", b + "command_topic: a/b\n", "settings.command_topic"},
		{"twice", b + "command_topic: a/{device}/{device}\n", "exactly once"},
		{"wildcard", b + "state_topic: a/+/{device}\n", "wildcards"},
		{"part level", b + "state_topic: a/dev-{device}/state\n", "whole topic level"},
		{"payload", b + "command_payload: xml\n", `command_payload "xml"`},
		{"max_age", b + "max_age: 0s\n", "settings.max_age"},
		{"client id", b + "client_id: a/b\n", "settings.client_id"},
		{"unknown", b + "state_topc: x\n", "field state_topc not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig(pooltest.Settings{YAML: tc.yaml})
			require.ErrorContains(t, err, tc.want)
		})
	}

	// A part-level command topic is fine: it is published to, not
	// subscribed to.
	_, err = ParseConfig(pooltest.Settings{YAML: b + "command_topic: ha/switch/miner_{device}/set\n"})
	require.NoError(t, err)
}

// TestCurtailRestore commands a device through a real Mosquitto and a
// fake agent, and confirms it from the agent's state.
func TestCurtailRestore(t *testing.T) {
	mqtttest.CheckNoLeaks(t)
	m := mqtttest.Start(t)
	clk := pooltest.NewClock(t0)
	a := startAgent(t, m.Addr(), clk, false, "mining", "m1", "m2")
	_, devs := newConn(t, "broker: tcp://"+m.Addr()+"\n", clk, "m1", "m2")

	obs := eventually(t, devs["m1"], switchd.ModeMining)
	require.Equal(t, pool.Observation{Mode: switchd.ModeMining, Known: true, PowerW: 3400, HasPower: true, HashrateTHs: 200}, obs)

	require.NoError(t, devs["m1"].Set(ctxT(t, waitMax), switchd.ModeOff))
	obs = eventually(t, devs["m1"], switchd.ModeOff)
	require.Equal(t, 20.0, obs.PowerW)
	require.Equal(t, switchd.ModeMining, eventually(t, devs["m2"], switchd.ModeMining).Mode, "the other device untouched")
	require.Equal(t, []string{`m1 {"mode":"off"}`}, a.Commands())

	require.NoError(t, devs["m1"].Set(ctxT(t, waitMax), switchd.ModeMining))
	eventually(t, devs["m1"], switchd.ModeMining)

	// The command is retained: an agent that restarts finds it.
	got := make(chan string, 1)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + m.Addr()).SetClientID("late"))
	require.True(t, c.Connect().WaitTimeout(waitMax))
	defer c.Disconnect(100)
	c.Subscribe("switchd/devices/m1/set", 1, func(_ mqtt.Client, msg mqtt.Message) {
		if msg.Retained() {
			select {
			case got <- string(msg.Payload()):
			default:
			}
		}
	})
	select {
	case p := <-got:
		require.Equal(t, `{"mode":"mining"}`, p)
	case <-time.After(waitMax):
		t.Fatal("no retained command")
	}

	// Drift: the device changes on its own; Observe sees it.
	a.set("m2", "off")
	eventually(t, devs["m2"], switchd.ModeOff)
}

func TestPlainPayloads(t *testing.T) {
	mqtttest.CheckNoLeaks(t)
	m := mqtttest.Start(t)
	clk := pooltest.NewClock(t0)
	a := startAgent(t, m.Addr(), clk, true, "inference", "g1")
	_, devs := newConn(t, "broker: tcp://"+m.Addr()+"\ncommand_payload: plain\n", clk, "g1")
	require.Equal(t, pool.Observation{Mode: switchd.ModeInference, Known: true}, eventually(t, devs["g1"], switchd.ModeInference))
	require.NoError(t, devs["g1"].Set(ctxT(t, waitMax), switchd.ModeOff))
	eventually(t, devs["g1"], switchd.ModeOff)
	require.Equal(t, []string{"g1 off"}, a.Commands())
}

// TestStateProblems: a missing, stale or unreadable state is an error,
// never a mode.
func TestStateProblems(t *testing.T) {
	mqtttest.CheckNoLeaks(t)
	m := mqtttest.Start(t)
	clk := pooltest.NewClock(t0)
	a := startAgent(t, m.Addr(), clk, false, "mining", "m1")
	_, devs := newConn(t, "broker: tcp://"+m.Addr()+"\nmax_age: 2m\n", clk, "m1", "ghost", "bad")
	eventually(t, devs["m1"], switchd.ModeMining)

	_, err := devs["ghost"].Observe(ctxT(t, waitMax))
	require.ErrorIs(t, err, switchd.ErrUnreachable)
	require.ErrorContains(t, err, "no state received on switchd/devices/ghost/state")

	clk.Advance(3 * time.Minute)
	_, err = devs["m1"].Observe(ctxT(t, waitMax))
	require.ErrorIs(t, err, switchd.ErrUnreachable)
	require.ErrorContains(t, err, "no state for 3m0s")

	// A silent agent: the command is acknowledged by the broker, the
	// state stays stale.
	a.setSilent(true)
	require.NoError(t, devs["m1"].Set(ctxT(t, waitMax), switchd.ModeOff))
	_, err = devs["m1"].Observe(ctxT(t, waitMax))
	require.ErrorIs(t, err, switchd.ErrUnreachable)

	a.publish("switchd/devices/bad/state", `{"mode":"mining","power_w":"lots"`)
	require.Eventually(t, func() bool {
		_, err = devs["bad"].Observe(ctxT(t, waitMax))
		return err != nil && !errors.Is(err, switchd.ErrUnreachable)
	}, waitMax, 5*time.Millisecond)
	require.ErrorContains(t, err, "state on switchd/devices/bad/state")
	require.False(t, switchd.IsPermanent(err))

	a.publish("switchd/devices/bad/state", `{"mode":"charging"}`)
	require.Eventually(t, func() bool {
		obs, err := devs["bad"].Observe(ctxT(t, waitMax))
		return err == nil && !obs.Known && obs.Detail == `unknown mode "charging"`
	}, waitMax, 5*time.Millisecond)
}

func TestBrokerDown(t *testing.T) {
	mqtttest.CheckNoLeaks(t)
	// Nothing listens: refused at once.
	_, devs := newConn(t, fmt.Sprintf("broker: tcp://127.0.0.1:%d\n", mqtttest.FreePort(t)), pooltest.NewClock(t0), "m1")
	_, err := devs["m1"].Observe(ctxT(t, waitMax))
	require.ErrorIs(t, err, switchd.ErrUnreachable)
	require.ErrorContains(t, err, "connection refused")
	require.ErrorIs(t, devs["m1"].Set(ctxT(t, waitMax), switchd.ModeOff), switchd.ErrUnreachable)

	// A broker that goes away under a connected driver.
	m := mqtttest.Start(t)
	clk := pooltest.NewClock(t0)
	startAgent(t, m.Addr(), clk, false, "mining", "m1")
	_, devs = newConn(t, "broker: tcp://"+m.Addr()+"\n", clk, "m1")
	eventually(t, devs["m1"], switchd.ModeMining)
	m.Stop()
	require.Eventually(t, func() bool {
		_, err := devs["m1"].Observe(ctxT(t, time.Second))
		return errors.Is(err, switchd.ErrUnreachable)
	}, waitMax, 10*time.Millisecond)
	require.ErrorIs(t, devs["m1"].Set(ctxT(t, time.Second), switchd.ModeOff), switchd.ErrUnreachable)
}

func TestBrokerAuth(t *testing.T) {
	mqtttest.CheckNoLeaks(t)
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	out, err := exec.Command(mqtttest.RequireTool(t, "mosquitto_passwd"), "-b", "-c", pw, "switchd", "s3cret").CombinedOutput()
	require.NoError(t, err, "%s", out)
	m := mqtttest.Start(t, "allow_anonymous false", "password_file "+pw)
	t.Setenv("MQTTAGENT_TEST_PW", "wrong")

	_, devs := newConn(t, "broker: tcp://"+m.Addr()+"\nusername: switchd\npassword_env: MQTTAGENT_TEST_PW\n", pooltest.NewClock(t0), "m1")
	_, err = devs["m1"].Observe(ctxT(t, waitMax))
	require.ErrorIs(t, err, switchd.ErrAuth)
	require.True(t, switchd.IsPermanent(err))

	// The failure is reported to every caller for a moment, without a
	// new attempt each.
	_, err = devs["m1"].Observe(ctxT(t, waitMax))
	require.ErrorIs(t, err, switchd.ErrAuth)

	// Secrets are read when connecting: the fixed one works next time.
	t.Setenv("MQTTAGENT_TEST_PW", "s3cret")
	require.Eventually(t, func() bool {
		return devs["m1"].Set(ctxT(t, waitMax), switchd.ModeOff) == nil
	}, waitMax, 50*time.Millisecond)

	f := filepath.Join(dir, "pw")
	require.NoError(t, os.WriteFile(f, []byte("s3cret\n"), 0o600))
	_, devs = newConn(t, "broker: tcp://"+m.Addr()+"\nusername: switchd\npassword_file: "+f+"\n", pooltest.NewClock(t0), "m2")
	require.NoError(t, devs["m2"].Set(ctxT(t, waitMax), switchd.ModeOff))
}

// TestPool drives a fleet through the shared pool: the pool's Stop closes
// the shared connection (checkNoLeaks).
func TestPool(t *testing.T) {
	mqtttest.CheckNoLeaks(t)
	m := mqtttest.Start(t)
	clk := pooltest.NewClock(t0)
	startAgent(t, m.Addr(), clk, false, "mining", "m1", "m2", "m3")
	spec := switchd.FleetSpec{Name: "hall", Count: 3}
	spec.Supports[switchd.ModeOff], spec.Supports[switchd.ModeMining] = true, true
	spec.Transition[switchd.ModeMining][switchd.ModeOff] = 30 * time.Second
	drv, err := New(pool.Deps{
		Spec:     spec,
		Devices:  []switchd.Device{{Addr: "m1"}, {Addr: "m2"}, {Addr: "m3"}},
		Settings: pooltest.Settings{YAML: "broker: tcp://" + m.Addr() + "\ntimeout: 5s\n"},
		Clock:    clk,
		Logger:   zaptest.NewLogger(t),
	})
	require.NoError(t, err)
	defer drv.(switchd.Stopper).Stop()
	ctx := ctxT(t, waitMax)
	st, err := drv.State(ctx)
	require.NoError(t, err)
	mining, _ := st.Count(switchd.ModeMining)
	require.Equal(t, 3, mining)

	require.NoError(t, drv.Apply(ctx, []switchd.Command{{From: switchd.ModeMining, To: switchd.ModeOff, Count: 2}}))
	require.Eventually(t, func() bool {
		clk.Advance(time.Second)
		st, err := drv.State(ctx)
		off, _ := st.Count(switchd.ModeOff)
		return err == nil && off == 2
	}, waitMax, 20*time.Millisecond)

	_, err = New(pool.Deps{Spec: spec, Devices: []switchd.Device{{Addr: "a/b"}}, Settings: pooltest.Settings{YAML: "broker: tcp://h:1\n"}, Clock: clk, Logger: zaptest.NewLogger(t)})
	require.ErrorContains(t, err, `device "a/b"`)
}

func TestParseState(t *testing.T) {
	for _, tc := range []struct {
		in   string
		obs  pool.Observation
		ts   time.Time
		err  string
		name string
	}{
		{`{"mode":"mining","power_w":3400,"hashrate_ths":200,"ts":"2026-07-01T12:00:00Z"}`, pool.Observation{Mode: switchd.ModeMining, Known: true, PowerW: 3400, HasPower: true, HashrateTHs: 200}, t0, "", "full"},
		{`{"mode":"off"}`, pool.Observation{Mode: switchd.ModeOff, Known: true}, time.Time{}, "", "mode only"},
		{` Inference `, pool.Observation{Mode: switchd.ModeInference, Known: true}, time.Time{}, "", "plain"},
		{`{"mode":"mining","hashrate_ths":0,"fault":true,"detail":"fans","model":"S21","firmware":"x"}`, pool.Observation{Mode: switchd.ModeMining, Known: true, Fault: true, Detail: "fans", Model: "S21", Firmware: "x"}, time.Time{}, "", "fault"},
		{`{"power_w":10}`, pool.Observation{Detail: "state without mode", PowerW: 10, HasPower: true}, time.Time{}, "", "no mode"},
		{`{"mode":"off","ts":"yesterday"}`, pool.Observation{}, time.Time{}, "want RFC 3339", "bad ts"},
		{`{"mode":"off","power_w":-1}`, pool.Observation{}, time.Time{}, "out of range", "negative power"},
		{`{"mode":`, pool.Observation{}, time.Time{}, "state:", "truncated"},
		{``, pool.Observation{}, time.Time{}, "empty", "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs, ts, err := ParseState([]byte(tc.in))
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.obs, obs)
			require.True(t, tc.ts.Equal(ts), "ts %s", ts)
		})
	}
}

func FuzzParseState(f *testing.F) {
	for _, s := range []string{
		`{"mode":"mining","power_w":3400,"hashrate_ths":200,"ts":"2026-07-01T12:00:00Z"}`,
		`off`, `{"mode":null}`, `{"power_w":1e400}`, `{`, "\x00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		obs, _, err := ParseState(b)
		if err == nil && obs.HasPower && obs.PowerW < 0 {
			t.Fatalf("negative power %v", obs.PowerW)
		}
	})
}

// TestTermTravels: with high availability the command carries the
// leader's term, and an agent that keeps the newest term it has seen (as
// the fake here does) refuses a deposed leader's older one.
func TestTermTravels(t *testing.T) {
	mqtttest.CheckNoLeaks(t)
	m := mqtttest.Start(t)
	clk := pooltest.NewClock(t0)
	a := startAgent(t, m.Addr(), clk, false, "mining", "m1")
	_, devs := newConn(t, "broker: tcp://"+m.Addr()+"\n", clk, "m1")
	eventually(t, devs["m1"], switchd.ModeMining)

	require.NoError(t, devs["m1"].Set(switchd.WithTerm(ctxT(t, waitMax), 12), switchd.ModeOff))
	eventually(t, devs["m1"], switchd.ModeOff)
	// The old leader, term 9, wakes and wants the miner back: refused.
	require.NoError(t, devs["m1"].Set(switchd.WithTerm(ctxT(t, waitMax), 9), switchd.ModeMining))
	require.Eventually(t, func() bool { return len(a.Commands()) == 2 }, waitMax, 5*time.Millisecond)
	a.mu.Lock()
	refused := a.refused
	a.mu.Unlock()
	require.Equal(t, 1, refused)
	require.Equal(t, switchd.ModeOff, eventually(t, devs["m1"], switchd.ModeOff).Mode)
	require.Equal(t, []string{`m1 {"mode":"off","term":12}`, `m1 {"mode":"mining","term":9}`}, a.Commands())
}
