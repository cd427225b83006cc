package whatsminer

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/internal/pool"
	"github.com/switchd/switchd/drivers/internal/pool/pooltest"
	"github.com/switchd/switchd/drivers/whatsminer/whatsminerfake"
	"go.uber.org/zap/zaptest"
)

// TestPowerTargetThroughPool drives fake Whatsminers over TCP through the
// pool with a fleet that declares mining_reduced at 70% of the fake's
// 3.4 kW: set_power_pct 70 on the way down, read back from the reported
// power, set_power_pct 100 on the way up.
func TestPowerTargetThroughPool(t *testing.T) {
	clock := pooltest.NewClock(t0)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pw"), []byte("s3cret"), 0o600))
	var devs []switchd.Device
	var fakes []*whatsminerfake.Miner
	for range 2 {
		f := whatsminerfake.New(whatsminerfake.Options{Password: "s3cret", Now: clock.Now, Ramp: time.Minute})
		require.NoError(t, f.Start("127.0.0.1:0"))
		t.Cleanup(f.Close)
		fakes = append(fakes, f)
		devs = append(devs, switchd.Device{Addr: f.Addr()})
	}
	spec := switchd.FleetSpec{Name: "wm", Count: len(devs)}
	spec.Supports[switchd.ModeOff], spec.Supports[switchd.ModeMining], spec.Supports[switchd.ModeMiningReduced] = true, true, true
	spec.Modes[switchd.ModeMining] = switchd.ModeSpec{PowerKW: 3.4, HashrateTHs: 100, Revenue: switchd.RevenueHashprice}
	spec.Modes[switchd.ModeMiningReduced] = switchd.ModeSpec{PowerKW: 0.7 * 3.4, HashrateTHs: 70, Revenue: switchd.RevenueHashprice}
	for _, a := range switchd.Modes {
		for _, b := range switchd.Modes {
			spec.Transition[a][b] = time.Minute
		}
	}
	drv, err := New(pool.Deps{
		Spec: spec, Devices: devs, Clock: clock, Logger: zaptest.NewLogger(t),
		Settings: pooltest.Settings{YAML: "password_file: pw\ntimeout: 2s\n", Dir: dir},
	})
	require.NoError(t, err)
	ctx := ctxT(t)
	steadyIn := func(m switchd.Mode) int {
		clock.Advance(2 * time.Minute)
		st, err := drv.State(ctx)
		require.NoError(t, err)
		require.Zero(t, st.Drifted)
		return count(st, m)
	}
	require.Equal(t, 2, steadyIn(switchd.ModeMining))

	require.NoError(t, drv.Apply(ctx, []switchd.Command{{From: switchd.ModeMining, To: switchd.ModeMiningReduced, Count: 1}}))
	require.Equal(t, 1, steadyIn(switchd.ModeMiningReduced))
	require.Equal(t, 1, steadyIn(switchd.ModeMining))
	pcts := []int{fakes[0].PowerPercent(), fakes[1].PowerPercent()}
	require.ElementsMatch(t, []int{70, 100}, pcts)

	require.NoError(t, drv.Apply(ctx, []switchd.Command{{From: switchd.ModeMiningReduced, To: switchd.ModeMining, Count: 1}}))
	require.Equal(t, 2, steadyIn(switchd.ModeMining))
	require.Equal(t, 100, fakes[0].PowerPercent())
	require.Equal(t, 100, fakes[1].PowerPercent())
}
