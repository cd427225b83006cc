package sim

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/sim/oracle"
)

// withPowerTargets gives every fleet of in a mining_reduced mode (a power
// target between 40% and 90% of mining's draw, with more or fewer TH per kW
// than full power) and, at random, a sleep mode that draws little and earns
// nothing; their transitions are whole grid steps.
func withPowerTargets(rng *rand.Rand, in *oracleInstance) {
	for i := range in.fleets {
		f := &in.fleets[i]
		full := f.Modes[switchd.ModeMining]
		share := 0.4 + 0.5*rng.Float64()
		reduced := full
		reduced.PowerKW = full.PowerKW * share
		// Efficiency at the lower target: from 20% worse to 30% better
		// per kW than at full power.
		eff := share * (0.8 + 0.5*rng.Float64())
		reduced.HashrateTHs = full.HashrateTHs * eff
		reduced.FixedUSDPerHour = full.FixedUSDPerHour * eff
		f.Supports[switchd.ModeMiningReduced] = true
		f.Modes[switchd.ModeMiningReduced] = reduced
		if rng.IntN(2) == 0 {
			f.Supports[switchd.ModeSleep] = true
			f.Modes[switchd.ModeSleep] = switchd.ModeSpec{PowerKW: f.Modes[switchd.ModeOff].PowerKW + 0.1*rng.Float64()}
		}
		for _, a := range switchd.Modes {
			for _, b := range switchd.Modes {
				if a != b && (a >= switchd.BaseModes || b >= switchd.BaseModes) {
					f.Transition[a][b] = time.Duration(rng.IntN(3)) * 5 * time.Minute
				}
			}
		}
	}
}

// withoutPowerTargets is in with the power-target modes taken away.
func withoutPowerTargets(in oracleInstance) oracleInstance {
	out := in
	out.fleets = append([]switchd.FleetSpec(nil), in.fleets...)
	for i := range out.fleets {
		for _, m := range switchd.Modes[switchd.BaseModes:] {
			out.fleets[i].Supports[m] = false
		}
	}
	return out
}

// TestOracleBoundsPowerTargets checks that the oracle stays an upper bound
// when fleets have power-target and sleep modes: against the optimum of its
// own interval model (brute force) and against the best controller acting
// on a 5-minute grid with the simulated devices' rules. It also checks the
// instances are not vacuous: the power target must pay in some of them.
func TestOracleBoundsPowerTargets(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	gains := 0
	for i := range 120 {
		in := newGridInstance(rng)
		withPowerTargets(rng, &in)
		t.Run(fmt.Sprintf("grid %d", i), func(t *testing.T) {
			controller := gridOptimum(&in)
			got := oracle.Bound(in.fleets, in.capKW, in.iv, in.options())
			require.GreaterOrEqual(t, got.ProfitUSD, controller-1e-9, "a controller beats the bound: %+v", in)
			plain := withoutPowerTargets(in)
			without := gridOptimum(&plain)
			require.GreaterOrEqual(t, controller, without-1e-9, "more modes cannot earn less")
			if controller > without+1e-6 {
				gains++
			}
		})
	}
	require.Positive(t, gains, "a power target should beat all-or-nothing in some instances")

	rng = rand.New(rand.NewPCG(13, 14))
	for i := range 150 {
		in := newOracleInstance(rng, 5, 2)
		withPowerTargets(rng, &in)
		t.Run(fmt.Sprintf("brute force %d", i), func(t *testing.T) {
			want := oracleBruteForce(&in)
			got := oracle.Bound(in.fleets, in.capKW, in.iv, in.options())
			require.GreaterOrEqual(t, got.ProfitUSD, want-1e-9*max(1, want), "bound below the optimum of its own model: %+v", in)
		})
	}
}
