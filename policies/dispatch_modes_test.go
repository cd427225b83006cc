package policies

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
)

const mReduced = switchd.ModeMiningReduced

// dispatchReducedASIC is dispatchASIC with a 70% power target (2.45 kW)
// keeping hashrateTHs.
func dispatchReducedASIC(name string, count int, hashrateTHs float64) switchd.FleetSpec {
	f := dispatchASIC(name, count)
	f.Supports[mReduced] = true
	f.Modes[mReduced] = switchd.ModeSpec{PowerKW: 2.45, HashrateTHs: hashrateTHs, Revenue: switchd.RevenueHashprice}
	return f
}

// hashrateOf is the plan's hashrate, TH/s.
func hashrateOf(fleets []switchd.FleetSpec, p switchd.Plan) float64 {
	ths := 0.0
	for i, fp := range p.Fleets {
		for _, m := range switchd.Modes {
			ths += float64(fp.Count[m]) * fleets[i].Modes[m].HashrateTHs
		}
	}
	return ths
}

func TestDispatchPowerTargets(t *testing.T) {
	tests := []struct {
		name   string
		fleets []switchd.FleetSpec
		capKW  float64
		forbid bool // forbid mining_reduced
		want   [][switchd.NumModes]int
		ths    float64
	}{
		{
			// Uncapped, a miner is worth more at full power.
			name: "no cap: full power", fleets: []switchd.FleetSpec{dispatchReducedASIC("a", 100, 160)}, capKW: 1e6,
			want: [][switchd.NumModes]int{{0, 100, 0, 0, 0}}, ths: 20000,
		},
		{
			// 250 kW: all at the target (245 kW) keeps 16,000 TH/s, and the
			// 5 kW left take 4 back to full power; stopping 29 would keep
			// 14,200.
			name: "cap: power target beats a stop", fleets: []switchd.FleetSpec{dispatchReducedASIC("a", 100, 160)}, capKW: 250,
			want: [][switchd.NumModes]int{{0, 4, 0, 96, 0}}, ths: 16160,
		},
		{
			name: "cap: a poor power target loses to a stop", fleets: []switchd.FleetSpec{dispatchReducedASIC("a", 100, 120)}, capKW: 250,
			want: [][switchd.NumModes]int{{29, 71, 0, 0, 0}}, ths: 14200,
		},
		{
			name: "cap: power target forbidden by a rule", fleets: []switchd.FleetSpec{dispatchReducedASIC("a", 100, 160)}, capKW: 250, forbid: true,
			want: [][switchd.NumModes]int{{29, 71, 0, 0, 0}}, ths: 14200,
		},
		{
			// Two fleets under 400 kW: the one whose power target loses
			// least per kW shed turns down; the other runs flat out.
			name:   "cap: the cheapest kW is shed first",
			fleets: []switchd.FleetSpec{dispatchReducedASIC("poor", 100, 120), dispatchReducedASIC("good", 100, 160)},
			capKW:  400,
			// poor: 100 x 3.5 = 350 kW is worth more per kW at full power;
			// good at the target takes 245 kW first (best per kW), poor's
			// full power fills 155 kW (44 miners), then 1 kW is left.
			want: [][switchd.NumModes]int{{56, 44, 0, 0, 0}, {0, 0, 0, 100, 0}}, ths: 44*200 + 100*160,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := DispatchInput{Fleets: tt.fleets, Values: dispatchValues(40), Constraints: openConstraints(tt.capKW, len(tt.fleets))}
			for i := range in.Constraints.Fleets {
				in.Constraints.Fleets[i].Forbid[mReduced] = tt.forbid
			}
			p := Dispatch(&in)
			require.Equal(t, tt.want, planCounts(p))
			require.InDelta(t, tt.ths, hashrateOf(tt.fleets, p), 1e-9)
			require.LessOrEqual(t, planDrawKW(tt.fleets, p), tt.capKW+1e-9)
		})
	}
}

// TestDispatchPowerTargetsAbsentUnchanged checks that a fleet without the
// power-target modes gets the same plan whatever their (unused) specs say.
func TestDispatchPowerTargetsAbsentUnchanged(t *testing.T) {
	plain := dispatchASIC("a", 100)
	ghost := plain
	ghost.Modes[mReduced] = switchd.ModeSpec{PowerKW: 1, HashrateTHs: 1000, Revenue: switchd.RevenueHashprice}
	for _, capKW := range []float64{100, 250, 1e6} {
		a := Dispatch(&DispatchInput{Fleets: []switchd.FleetSpec{plain}, Values: dispatchValues(40), Constraints: openConstraints(capKW, 1)})
		b := Dispatch(&DispatchInput{Fleets: []switchd.FleetSpec{ghost}, Values: dispatchValues(40), Constraints: openConstraints(capKW, 1)})
		require.Equal(t, planCounts(a), planCounts(b))
		require.Zero(t, b.Fleets[0].Count[mReduced])
	}
}
