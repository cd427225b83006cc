package vllm

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/inferencefake"
	"github.com/switchd/switchd/drivers/internal/pool"
	"github.com/switchd/switchd/drivers/internal/pool/pooltest"
)

const stopHooks = "off_action: stop\nstop_command: [/bin/true]\nstart_command: [/bin/true]\n"

// TestSleepMode drives a fleet that declares sleep (off_action stop) through
// a fake vLLM with sleep mode: sleep and wake are POST /sleep and
// /wake_up, off stops the server, and sleep from off starts it first (it
// comes up awake; a second command puts it to sleep).
func TestSleepMode(t *testing.T) {
	clk := pooltest.NewClock(t0)
	f := startFake(t, inferencefake.Options{Now: clk.Now, ColdStart: 60 * time.Second})
	d := newDevice(t, stopHooks, f.Addr())
	d.cfg.sleepMode = true
	require.Equal(t, switchd.ModeInference, observe(t, d).Mode)

	require.NoError(t, d.Set(ctxT(t, 5*time.Second), switchd.ModeSleep))
	s, level := f.Sleeping()
	require.True(t, s)
	require.Equal(t, 1, level)
	obs := observe(t, d)
	require.Equal(t, switchd.ModeSleep, obs.Mode)
	require.Equal(t, "sleeping", obs.Detail)

	require.NoError(t, d.Set(ctxT(t, 5*time.Second), switchd.ModeInference))
	s, _ = f.Sleeping()
	require.False(t, s, "woken with /wake_up, not restarted")
	require.False(t, f.Stopped())
	require.Equal(t, switchd.ModeInference, observe(t, d).Mode)

	require.NoError(t, d.Set(ctxT(t, 5*time.Second), switchd.ModeOff))
	require.NoError(t, f.StopEngine()) // what stop_command would have done
	require.Equal(t, switchd.ModeOff, observe(t, d).Mode)

	// Sleep from off: the server is started (start_command) ...
	require.NoError(t, d.Set(ctxT(t, 5*time.Second), switchd.ModeSleep))
	require.NoError(t, f.StartEngine()) // what start_command would have done
	obs = observe(t, d)
	require.Equal(t, switchd.ModeInference, obs.Mode)
	require.True(t, obs.Fault, "cold start")
	// ... and the pool's next command puts it to sleep.
	require.NoError(t, d.Set(ctxT(t, 5*time.Second), switchd.ModeSleep))
	require.Equal(t, switchd.ModeSleep, observe(t, d).Mode)
}

// TestSleepModeNeedsStop checks that the factory refuses a declared sleep
// mode with off_action sleep (off already is vLLM's sleep), and that a
// fleet without one refuses the mode.
func TestSleepModeNeedsStop(t *testing.T) {
	spec := switchd.FleetSpec{Name: "gpus", Count: 1}
	spec.Supports[switchd.ModeOff], spec.Supports[switchd.ModeInference], spec.Supports[switchd.ModeSleep] = true, true, true
	deps := pool.Deps{Spec: spec, Devices: []switchd.Device{{Addr: "127.0.0.1"}}, Settings: pooltest.Settings{YAML: ""}, Clock: pooltest.NewClock(t0)}
	_, err := New(deps)
	require.ErrorContains(t, err, `off_action: fleet "gpus" declares a sleep mode`)
	deps.Settings = pooltest.Settings{YAML: stopHooks}
	_, err = New(deps)
	require.NoError(t, err)

	d := newDevice(t, stopHooks, "127.0.0.1:1")
	require.True(t, switchd.IsPermanent(d.Set(ctxT(t, time.Second), switchd.ModeSleep)))
}
