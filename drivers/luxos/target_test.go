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

// TestPowerTargetThroughPool drives fake LuxOS miners over TCP through the
// pool with a fleet that declares mining_reduced at 70% of the fake's
// nominal 2.76 kW: the pool sets the nearest profile with profileset, reads
// the level back from the reported power, and returns to the default
// profile for full mining.
func TestPowerTargetThroughPool(t *testing.T) {
	clk := pooltest.NewClock(t0)
	var devs []switchd.Device
	var fakes []*luxosfake.Miner
	for range 2 {
		f := luxosfake.New(luxosfake.Options{Now: clk.Now, WakeRamp: time.Minute})
		require.NoError(t, f.Start("127.0.0.1:0"))
		t.Cleanup(func() { _ = f.Close() })
		fakes = append(fakes, f)
		devs = append(devs, switchd.Device{Addr: f.Addr()})
	}
	spec := switchd.FleetSpec{Name: "asics", Count: 2}
	spec.Supports[switchd.ModeOff], spec.Supports[switchd.ModeMining], spec.Supports[switchd.ModeMiningReduced] = true, true, true
	spec.Modes[switchd.ModeMining] = switchd.ModeSpec{PowerKW: 2.76, HashrateTHs: 100, Revenue: switchd.RevenueHashprice}
	spec.Modes[switchd.ModeMiningReduced] = switchd.ModeSpec{PowerKW: 0.7 * 2.76, HashrateTHs: 75, Revenue: switchd.RevenueHashprice}
	for _, a := range switchd.Modes {
		for _, b := range switchd.Modes {
			spec.Transition[a][b] = time.Minute
		}
	}
	drv, err := New(pool.Deps{Spec: spec, Devices: devs, Settings: pooltest.Settings{YAML: "timeout: 2s"}, Clock: clk, Logger: zaptest.NewLogger(t)})
	require.NoError(t, err)
	ctx := context.Background()
	steadyIn := func(m switchd.Mode) int {
		clk.Advance(2 * time.Minute)
		st, err := drv.State(ctx)
		require.NoError(t, err)
		require.Zero(t, st.Drifted)
		n, _ := st.Count(m)
		return n
	}
	require.Equal(t, 2, steadyIn(switchd.ModeMining))

	require.NoError(t, drv.Apply(ctx, []switchd.Command{{From: switchd.ModeMining, To: switchd.ModeMiningReduced, Count: 1}}))
	require.Equal(t, 1, steadyIn(switchd.ModeMiningReduced))
	require.Equal(t, 1, steadyIn(switchd.ModeMining))
	var reduced *luxosfake.Miner
	for _, f := range fakes {
		if f.Profile() != "default" {
			reduced = f
		}
	}
	require.NotNil(t, reduced, "one miner left the default profile")
	require.Zero(t, reduced.Count("curtail"), "a running miner only changes profile")

	require.NoError(t, drv.Apply(ctx, []switchd.Command{{From: switchd.ModeMiningReduced, To: switchd.ModeMining, Count: 1}}))
	require.Equal(t, 2, steadyIn(switchd.ModeMining))
	require.Equal(t, "default", reduced.Profile())
}
