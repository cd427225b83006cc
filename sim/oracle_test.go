package sim

import (
	"encoding/csv"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/internal/testenv"
	"github.com/switchd/switchd/policies"
	"github.com/switchd/switchd/sim/oracle"
)

// oracleRowHours is the length of the test traces' rows: a quarter-hour.
const oracleRowHours = 0.25

// oracleASIC is one fleet of 200 TH/s, 3.5 kW miners: at a hashprice of 50
// one earns 0.41667 USD/h, breakeven 119 USD/MWh.
func oracleASIC(count int) switchd.FleetSpec {
	f := switchd.FleetSpec{Name: "asics", Kind: switchd.KindASIC, Count: count}
	f.Supports[switchd.ModeOff] = true
	f.Supports[switchd.ModeMining] = true
	f.Modes[switchd.ModeMining] = switchd.ModeSpec{PowerKW: 3.5, HashrateTHs: 200, Revenue: switchd.RevenueHashprice}
	return f
}

// oracleGPU is one fleet of GPUs serving inference at 0.7 kW, or mining at
// 1 kW and 60 TH/s when demand is short.
func oracleGPU(count int) switchd.FleetSpec {
	f := switchd.FleetSpec{Name: "gpus", Kind: switchd.KindGPU, Count: count}
	f.Supports = [switchd.NumModes]bool{true, true, true}
	f.Modes[switchd.ModeMining] = switchd.ModeSpec{PowerKW: 1, HashrateTHs: 60, Revenue: switchd.RevenueHashprice}
	f.Modes[switchd.ModeInference] = switchd.ModeSpec{PowerKW: 0.7, Revenue: switchd.RevenueInference}
	return f
}

// oracleValues are signal values; a negative demand means none is present.
func oracleValues(price, hashprice, inference, demand float64) switchd.Values {
	var v switchd.Values
	v.V[switchd.SignalPrice], v.Present[switchd.SignalPrice] = price, true
	v.V[switchd.SignalHashprice], v.Present[switchd.SignalHashprice] = hashprice, true
	v.V[switchd.SignalInferencePrice], v.Present[switchd.SignalInferencePrice] = inference, true
	if demand >= 0 {
		v.V[switchd.SignalAIDemand], v.Present[switchd.SignalAIDemand] = demand, true
	}
	return v
}

// oracleTrace is quarter-hours at the given prices and a hashprice of 50.
func oracleTrace(prices ...float64) []oracle.Interval {
	iv := make([]oracle.Interval, len(prices))
	for i, p := range prices {
		iv[i] = oracle.Interval{Hours: oracleRowHours, Values: oracleValues(p, 50, 0, -1)}
	}
	return iv
}

// oracleMine is one test ASIC's value over a quarter-hour at price p.
func oracleMine(p float64) float64 {
	return oracleRowHours * (0.2*50/24 - 3.5*p/1000)
}

// oracleSumMine is oracleMine summed over the rows.
func oracleSumMine(prices ...float64) float64 {
	s := 0.0
	for _, p := range prices {
		s += oracleMine(p)
	}
	return s
}

func TestOracleSingleDevice(t *testing.T) {
	rev := 0.2 * 50 / 24 // USD/h of one mining ASIC
	low := []float64{20, 30, 10, 50, 0, 80}
	spike := []float64{20, 20, 20, 300, 20, 20, 20, 20}
	spikeNoPeak := []float64{20, 20, 20, 20, 20, 20, 20}
	longSpike := []float64{20, 20, 300, 300, 300, 300, 20, 20, 20, 20}
	withTransitions := func(f *switchd.FleetSpec) {
		f.Transition[switchd.ModeOff][switchd.ModeMining] = 5 * time.Minute
		f.Transition[switchd.ModeMining][switchd.ModeOff] = 5 * time.Minute
	}
	tests := []struct {
		name    string
		fleet   func(*switchd.FleetSpec)
		iv      []oracle.Interval
		initial []switchd.Mode
		want    float64
	}{
		{
			name: "always profitable mining earns every interval's value",
			iv:   oracleTrace(low...),
			want: oracleSumMine(low...),
		},
		{
			name:  "the start from off is one switch",
			fleet: func(f *switchd.FleetSpec) { f.SwitchCostUSD = 0.3 },
			iv:    oracleTrace(low...),
			want:  oracleSumMine(low...) - 0.3,
		},
		{
			name:    "a device already mining pays no start",
			fleet:   func(f *switchd.FleetSpec) { f.SwitchCostUSD = 0.3 },
			iv:      oracleTrace(low...),
			initial: []switchd.Mode{switchd.ModeMining},
			want:    oracleSumMine(low...),
		},
		{
			// Curtailing the spike saves 0.158 USD but costs two switches of 0.10.
			name:  "a spike worth less than two switches is ridden through",
			fleet: func(f *switchd.FleetSpec) { f.SwitchCostUSD = 0.1; f.MinDwell = 30 * time.Minute },
			iv:    oracleTrace(spike...),
			want:  oracleSumMine(spike...) - 0.1,
		},
		{
			name:  "a spike worth more than two switches is curtailed",
			fleet: func(f *switchd.FleetSpec) { f.SwitchCostUSD = 0.05; f.MinDwell = 30 * time.Minute },
			iv:    oracleTrace(spike...),
			want:  oracleSumMine(spikeNoPeak...) - 3*0.05,
		},
		{
			// 75 minutes of dwell on 15-minute rows holds off for 4 rows:
			// curtailing one spike row would give up 3 good rows.
			name:  "a spike shorter than the dwell is ridden through even when switching is free",
			fleet: func(f *switchd.FleetSpec) { f.MinDwell = 75 * time.Minute },
			iv:    oracleTrace(append(append([]float64{}, spike...), 20, 20)...),
			want:  oracleSumMine(append(append([]float64{}, spike...), 20, 20)...),
		},
		{
			name:  "a spike as long as the dwell is curtailed",
			fleet: func(f *switchd.FleetSpec) { f.MinDwell = 75 * time.Minute },
			iv:    oracleTrace(longSpike...),
			want:  oracleSumMine(20, 20, 20, 20, 20, 20),
		},
		{
			name: "switching cost is charged for each switch",
			fleet: func(f *switchd.FleetSpec) {
				f.SwitchCostUSD = 0.01
			},
			iv:   oracleTrace(20, 20, 900, 900, 20, 20, 900, 900),
			want: oracleSumMine(20, 20, 20, 20) - 4*0.01,
		},
		{
			name:  "a start loses the revenue of its transition",
			fleet: withTransitions,
			iv:    oracleTrace(20, 20, 20, 20),
			want:  oracleSumMine(20, 20, 20, 20) - rev*5.0/60,
		},
		{
			name:  "a stop loses the mining revenue before it",
			fleet: withTransitions,
			iv:    oracleTrace(20, 20, 20, 20, 900, 900, 900, 900),
			want:  oracleSumMine(20, 20, 20, 20) - 2*rev*5.0/60,
		},
		{
			name: "a transition longer than the next row loses only that row's length",
			fleet: func(f *switchd.FleetSpec) {
				f.Transition[switchd.ModeOff][switchd.ModeMining] = time.Hour
			},
			iv:   oracleTrace(20, 20, 20),
			want: oracleSumMine(20, 20, 20) - rev*oracleRowHours,
		},
		{
			name: "negative prices pay for mining",
			iv:   oracleTrace(-50, -20, -80),
			want: oracleSumMine(-50, -20, -80),
		},
		{
			name: "off power is paid when nothing runs",
			fleet: func(f *switchd.FleetSpec) {
				f.Modes[switchd.ModeOff].PowerKW = 0.05
				f.Modes[switchd.ModeMining].HashrateTHs = 0
			},
			iv:   oracleTrace(40, 60, 10),
			want: -oracleRowHours * 0.05 * (40 + 60 + 10) / 1000,
		},
		{
			name: "at a negative price drawing more earns more",
			fleet: func(f *switchd.FleetSpec) {
				f.Modes[switchd.ModeOff].PowerKW = 0.05
				f.Modes[switchd.ModeMining].HashrateTHs = 0
			},
			iv:   oracleTrace(-30, -30),
			want: 2 * oracleRowHours * 3.5 * 30 / 1000,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := oracleASIC(1)
			if tt.fleet != nil {
				tt.fleet(&f)
			}
			got := oracle.Bound([]switchd.FleetSpec{f}, 1e6, tt.iv, oracle.Options{Initial: tt.initial})
			require.InDelta(t, tt.want, got.ProfitUSD, 1e-9)
			require.True(t, got.Exact)
			require.Equal(t, "per-fleet DP (exact)", got.Method)
			require.InDelta(t, tt.want, got.FleetProfitUSD[0], 1e-9)
		})
	}
}

func TestOracleDwellScope(t *testing.T) {
	// A 75-minute dwell on 15-minute rows holds a stay for 4 rows.
	dip := []float64{900, 900, 900, 900, 20, 900, 900, 900, 900, 900}
	spike := []float64{20, 20, 20, 300, 20, 20, 20, 20, 20, 20}
	spikeless := []float64{20, 20, 20, 20, 20, 20, 20, 20, 20}
	f := oracleASIC(1)
	f.MinDwell = 75 * time.Minute
	tests := []struct {
		name   string
		prices []float64
		dwell  oracle.DwellScope
		want   float64
	}{
		{name: "off only: a forced stop may cut a run of mining short", prices: dip, want: oracleMine(20)},
		{name: "all modes: a start mines for the dwell, so the dip is not worth it", prices: dip, dwell: oracle.DwellAllModes, want: 0},
		{name: "none: the dip is taken", prices: dip, dwell: oracle.DwellNone, want: oracleMine(20)},
		{name: "off only: a stop lasts the dwell, so the spike is ridden through", prices: spike, want: oracleSumMine(spike...)},
		{name: "all modes: the spike is ridden through", prices: spike, dwell: oracle.DwellAllModes, want: oracleSumMine(spike...)},
		{name: "none: the spike is curtailed", prices: spike, dwell: oracle.DwellNone, want: oracleSumMine(spikeless...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := oracle.Bound([]switchd.FleetSpec{f}, 1e6, oracleTrace(tt.prices...), oracle.Options{Dwell: tt.dwell})
			require.InDelta(t, tt.want, got.ProfitUSD, 1e-9)
			require.True(t, got.Exact)
		})
	}
}

func TestDwellScopeFor(t *testing.T) {
	capKW := 100.0
	constrained := func(edit func(*policies.FleetConstraint)) policies.Effect {
		fc := policies.NoFleetConstraint()
		edit(&fc)
		return policies.Effect{Fleets: []policies.FleetConstraint{policies.NoFleetConstraint(), fc}}
	}
	tests := []struct {
		name     string
		policy   policies.Policy
		want     oracle.DwellScope
		wantName string
	}{
		{name: "no rules", want: oracle.DwellAllModes, wantName: "all modes"},
		{
			name:   "a rule that only sets minimums",
			policy: policies.Policy{Rules: []policies.Rule{{Then: constrained(func(fc *policies.FleetConstraint) { fc.Min[switchd.ModeMining] = 5 })}}},
			want:   oracle.DwellAllModes, wantName: "all modes",
		},
		{
			name:   "a site cap rule",
			policy: policies.Policy{Rules: []policies.Rule{{Then: policies.Effect{SiteCapKW: &capKW}}}},
			want:   oracle.DwellOffOnly, wantName: "off only",
		},
		{
			name:   "a forbidden mode",
			policy: policies.Policy{Rules: []policies.Rule{{Then: constrained(func(fc *policies.FleetConstraint) { fc.Forbid[switchd.ModeMining] = true })}}},
			want:   oracle.DwellOffOnly, wantName: "off only",
		},
		{
			name:   "a discouraged mode (its exits skip the dwell)",
			policy: policies.Policy{Rules: []policies.Rule{{Then: constrained(func(fc *policies.FleetConstraint) { fc.Discourage[switchd.ModeMining] = true })}}},
			want:   oracle.DwellOffOnly, wantName: "off only",
		},
		{
			name:   "a maximum on inference",
			policy: policies.Policy{Rules: []policies.Rule{{Then: constrained(func(fc *policies.FleetConstraint) { fc.Max[switchd.ModeInference] = 3 })}}},
			want:   oracle.DwellOffOnly, wantName: "off only",
		},
		{
			name: "a curtail fail-safe",
			policy: func() policies.Policy {
				var p policies.Policy
				p.FailSafe[switchd.SignalPrice] = policies.FailSafeCurtail
				return p
			}(),
			want: oracle.DwellOffOnly, wantName: "off only",
		},
		{
			name: "a maximum on off",
			policy: policies.Policy{Rules: []policies.Rule{
				{Then: policies.Effect{SiteCapKW: &capKW}},
				{Then: constrained(func(fc *policies.FleetConstraint) { fc.Max[switchd.ModeOff] = 10 })},
			}},
			want: oracle.DwellNone, wantName: "none",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := oracle.DwellScopeFor(&tt.policy)
			require.Equal(t, tt.want, got)
			require.Equal(t, tt.wantName, got.String())
		})
	}
}

func TestOracleCoupling(t *testing.T) {
	prices := []float64{20, 40, 150, 900, 60, 10, -5, 30, 200, 25, 25, 25}
	iv := make([]oracle.Interval, len(prices))
	for i, p := range prices {
		iv[i] = oracle.Interval{Hours: oracleRowHours, Values: oracleValues(p, 50, 2.1, -1)}
	}
	withDemand := func(iv []oracle.Interval, d float64) []oracle.Interval {
		out := append([]oracle.Interval(nil), iv...)
		for i := range out {
			out[i].Values.V[switchd.SignalAIDemand], out[i].Values.Present[switchd.SignalAIDemand] = d, true
		}
		return out
	}
	asics, gpus := oracleASIC(10), oracleGPU(5)
	asics.SwitchCostUSD, gpus.SwitchCostUSD = 0.02, 0.05
	asics.MinDwell, gpus.MinDwell = 30*time.Minute, 45*time.Minute
	asics.Transition[switchd.ModeOff][switchd.ModeMining] = 5 * time.Minute
	gpus.Transition[switchd.ModeOff][switchd.ModeInference] = 10 * time.Minute
	alone := func(f switchd.FleetSpec, iv []oracle.Interval) float64 {
		r := oracle.Bound([]switchd.FleetSpec{f}, math.Inf(1), iv, oracle.Options{})
		require.True(t, r.Exact)
		return r.ProfitUSD
	}
	fewer := func(f switchd.FleetSpec, n int) switchd.FleetSpec { f.Count = n; return f }
	noInference := gpus
	noInference.Supports[switchd.ModeInference] = false
	uncapped := alone(asics, iv) + alone(gpus, iv)

	tests := []struct {
		name      string
		capKW     float64
		iv        []oracle.Interval
		wantExact bool
		method    string
		// feasible is what a schedule honouring every constraint earns.
		feasible float64
		// most is what the bound may not exceed.
		most float64
	}{
		{
			name: "a huge cap binds nothing", capKW: 1e6, iv: iv,
			wantExact: true, method: "per-fleet DP (exact)", feasible: uncapped, most: uncapped,
		},
		{
			name: "no cap binds nothing", capKW: math.Inf(1), iv: iv,
			wantExact: true, method: "per-fleet DP (exact)", feasible: uncapped, most: uncapped,
		},
		{
			// 4 ASICs (14 kW) and every GPU (≤ 5 kW) fit under 20 kW.
			name: "a binding cap", capKW: 20, iv: iv,
			method:   "Lagrangian dual of site cap",
			feasible: alone(fewer(asics, 4), iv) + alone(gpus, iv), most: uncapped,
		},
		{
			// Two GPUs serve inference, the other three mine.
			name: "demand below the fleet", capKW: 1e6, iv: withDemand(iv, 2),
			method:   "Lagrangian dual of AI demand",
			feasible: alone(asics, iv) + alone(fewer(gpus, 2), iv) + alone(fewer(noInference, 3), iv),
			most:     uncapped,
		},
		{
			name: "demand and cap", capKW: 20, iv: withDemand(iv, 2),
			method:   "Lagrangian dual of site cap and AI demand",
			feasible: alone(fewer(asics, 3), iv) + alone(fewer(gpus, 2), iv) + alone(fewer(noInference, 3), iv),
			most:     uncapped,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := oracle.Bound([]switchd.FleetSpec{asics, gpus}, tt.capKW, tt.iv, oracle.Options{})
			require.Equal(t, tt.wantExact, got.Exact)
			require.Contains(t, got.Method, tt.method)
			require.GreaterOrEqual(t, got.ProfitUSD, tt.feasible-1e-9)
			require.LessOrEqual(t, got.ProfitUSD, tt.most+1e-9)
			require.Len(t, got.FleetProfitUSD, 2)
			if tt.wantExact {
				require.InDelta(t, tt.feasible, got.ProfitUSD, 1e-9)
				require.InDelta(t, got.ProfitUSD, got.FleetProfitUSD[0]+got.FleetProfitUSD[1], 1e-9)
			}
		})
	}
}

func TestOracleDegenerateInput(t *testing.T) {
	tests := []struct {
		name    string
		fleets  []switchd.FleetSpec
		capKW   float64
		iv      []oracle.Interval
		want    float64
		inexact bool
	}{
		{name: "no intervals", fleets: []switchd.FleetSpec{oracleASIC(3)}, capKW: 10, want: 0},
		{name: "no fleets", capKW: 10, iv: oracleTrace(20, 30), want: 0},
		{name: "an empty fleet", fleets: []switchd.FleetSpec{oracleASIC(0)}, capKW: 10, iv: oracleTrace(20), want: 0},
		{
			name: "zero and negative lengths hold no time", fleets: []switchd.FleetSpec{oracleASIC(1)}, capKW: 10,
			iv:   append(oracleTrace(20), oracle.Interval{Hours: 0, Values: oracleValues(20, 50, 0, -1)}, oracle.Interval{Hours: -1}),
			want: oracleMine(20),
		},
		{name: "a NaN cap is no cap", fleets: []switchd.FleetSpec{oracleASIC(2)}, capKW: math.NaN(), iv: oracleTrace(20), want: 2 * oracleMine(20)},
		{name: "a cap below the all-off draw leaves devices off", fleets: []switchd.FleetSpec{oracleASIC(2)}, capKW: -5, iv: oracleTrace(20), want: 0, inexact: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := oracle.Bound(tt.fleets, tt.capKW, tt.iv, oracle.Options{})
			require.InDelta(t, tt.want, got.ProfitUSD, 1e-6)
			require.GreaterOrEqual(t, got.ProfitUSD, tt.want)
			require.Equal(t, !tt.inexact, got.Exact)
			require.Len(t, got.FleetProfitUSD, len(tt.fleets))
		})
	}
}

// oracleInstance is a tiny random site and trace.
type oracleInstance struct {
	fleets  []switchd.FleetSpec
	capKW   float64
	iv      []oracle.Interval
	initial []switchd.Mode
	dwell   oracle.DwellScope
}

func newOracleInstance(rng *rand.Rand, maxIntervals, maxCount int) oracleInstance {
	var in oracleInstance
	nf := 1 + rng.IntN(2)
	maxKW := 0.0
	for i := range nf {
		f := switchd.FleetSpec{Name: fmt.Sprintf("f%d", i), Count: 1 + rng.IntN(maxCount)}
		f.Supports[switchd.ModeOff] = true
		f.Supports[switchd.ModeMining] = true
		f.Supports[switchd.ModeInference] = rng.IntN(2) == 0
		if rng.IntN(3) == 0 {
			f.Modes[switchd.ModeOff].PowerKW = 0.1 * rng.Float64()
		}
		f.Modes[switchd.ModeMining] = switchd.ModeSpec{PowerKW: 0.5 + 3*rng.Float64(), HashrateTHs: 50 + 150*rng.Float64(), Revenue: switchd.RevenueHashprice}
		f.Modes[switchd.ModeInference] = switchd.ModeSpec{PowerKW: 0.3 + 2*rng.Float64(), Revenue: switchd.RevenueInference}
		if rng.IntN(4) == 0 {
			f.Modes[switchd.ModeMining] = switchd.ModeSpec{PowerKW: 0.5 + 3*rng.Float64(), FixedUSDPerHour: rng.Float64(), Revenue: switchd.RevenueFixed}
		}
		for a := range switchd.NumModes {
			for b := range switchd.NumModes {
				if a != b && rng.IntN(2) == 0 {
					f.Transition[a][b] = time.Duration(rng.IntN(25)) * time.Minute
				}
			}
		}
		f.MinDwell = time.Duration(rng.IntN(60)) * time.Minute
		f.SwitchCostUSD = []float64{0, 0.01, 0.05, 0.2}[rng.IntN(4)]
		in.fleets = append(in.fleets, f)
		in.initial = append(in.initial, []switchd.Mode{switchd.ModeOff, switchd.ModeOff, switchd.ModeMining}[rng.IntN(3)])
		maxKW += float64(f.Count) * max(f.Modes[switchd.ModeMining].PowerKW, f.Modes[switchd.ModeInference].PowerKW)
	}
	in.capKW = maxKW * (0.2 + 0.9*rng.Float64())
	in.dwell = oracle.DwellScope(rng.IntN(3))
	T := 2 + rng.IntN(maxIntervals-1)
	withDemand := rng.IntN(2) == 0
	for range T {
		h := oracleRowHours
		if rng.IntN(3) == 0 {
			h = 0.05 + 0.4*rng.Float64()
		}
		d := -1.0
		if withDemand {
			d = float64(rng.IntN(4))
		}
		v := oracleValues(-60+500*rng.Float64()*rng.Float64(), 30+40*rng.Float64(), 3*rng.Float64(), d)
		in.iv = append(in.iv, oracle.Interval{Hours: h, Values: v})
	}
	return in
}

func (in *oracleInstance) options() oracle.Options {
	return oracle.Options{Initial: in.initial, Dwell: in.dwell}
}

// oracleBruteForce is the optimum of the oracle's interval model, written from
// its rules without sharing the oracle's code: every device picks a mode per
// interval, runs held to the dwell last ⌊MinDwell/Δmax⌋ − 1 intervals, a
// change pays the switching cost and the least revenue its transition can
// lose, draw stays under the cap and inference is paid up to demand. It
// searches every joint pick sequence (memoised on the devices' states).
func oracleBruteForce(in *oracleInstance) float64 {
	type device struct {
		f     *switchd.FleetSpec
		modes []switchd.Mode
		k     map[switchd.Mode]int
	}
	maxH := 0.0
	for _, x := range in.iv {
		maxH = max(maxH, x.Hours)
	}
	var devs []device
	var start []uint8 // per device: mode<<4 | run
	for fi := range in.fleets {
		f := &in.fleets[fi]
		d := device{f: f, k: map[switchd.Mode]int{}}
		for _, m := range switchd.Modes {
			if m == switchd.ModeOff || f.Supports[m] {
				d.modes = append(d.modes, m)
				k := 1
				if in.dwell == oracle.DwellAllModes || in.dwell == oracle.DwellOffOnly && m == switchd.ModeOff {
					k = max(1, int(math.Floor(f.MinDwell.Hours()/maxH*(1+1e-9)))-1)
				}
				d.k[m] = min(k, 15)
			}
		}
		for range f.Count {
			devs = append(devs, d)
			initial := in.initial[fi]
			if !f.Supports[initial] {
				initial = switchd.ModeOff
			}
			start = append(start, uint8(initial)<<4|uint8(d.k[initial]))
		}
	}
	rev := func(f *switchd.FleetSpec, m switchd.Mode, t int) float64 {
		return max(f.RevenuePerHour(m, &in.iv[t].Values), 0)
	}
	T := len(in.iv)
	loss := func(f *switchd.FleetSpec, c, b switchd.Mode, t int) float64 {
		tau := f.Transition[c][b].Hours()
		least := math.Inf(1)
		if f.Modes[b].PowerKW >= f.Modes[c].PowerKW {
			if t+1 < T {
				tau = min(tau, in.iv[t+1].Hours)
			} else {
				tau = 0
			}
			for j := max(t-1, 0); j <= min(t+1, T-1); j++ {
				least = min(least, rev(f, b, j))
			}
			return tau * least
		}
		if t >= 2 {
			tau = min(tau, in.iv[t-2].Hours)
		}
		for j := max(t-2, 0); j <= t; j++ {
			least = min(least, rev(f, c, j))
		}
		return tau * least
	}
	charge := func(d *device, a, b switchd.Mode, t int) float64 {
		l := loss(d.f, a, b, t)
		for _, c := range d.modes {
			if c != a && c != b {
				l = min(l, d.f.SwitchCostUSD+loss(d.f, c, b, t))
			}
		}
		return d.f.SwitchCostUSD + l
	}
	capKW := in.capKW + 1e-6*max(1, math.Abs(in.capKW))

	memo := map[string]float64{}
	var best func(t int, st []uint8) float64
	best = func(t int, st []uint8) float64 {
		if t == T {
			return 0
		}
		key := string(append([]byte{byte(t)}, st...))
		if v, ok := memo[key]; ok {
			return v
		}
		result := math.Inf(-1)
		next := make([]uint8, len(devs))
		var try func(i int, value, powerKW, paid float64)
		try = func(i int, value, powerKW, paid float64) {
			if powerKW > capKW {
				return
			}
			if i == len(devs) {
				x := in.iv[t]
				if d, ok := x.Values.Get(switchd.SignalAIDemand); ok && paid > d {
					value -= (paid - max(d, 0)) * x.Hours * max(x.Values.V[switchd.SignalInferencePrice], 0)
				}
				result = max(result, value+best(t+1, next))
				return
			}
			d := &devs[i]
			mode, run := switchd.Mode(st[i]>>4), int(st[i]&15)
			x := &in.iv[t]
			for _, b := range d.modes {
				v := x.Hours * (rev(d.f, b, t) - d.f.Modes[b].PowerKW*x.Values.V[switchd.SignalPrice]/1000)
				switch {
				case b == mode:
					next[i] = uint8(b)<<4 | uint8(min(run+1, d.k[b]))
				case run < d.k[mode]:
					continue
				default:
					v -= charge(d, mode, b, t)
					next[i] = uint8(b)<<4 | 1
				}
				p := paid
				if d.f.Modes[b].Revenue == switchd.RevenueInference && rev(d.f, b, t) > 0 {
					p++
				}
				try(i+1, value+v, powerKW+d.f.Modes[b].PowerKW, p)
			}
			next[i] = st[i]
		}
		try(0, 0, 0, 0)
		memo[key] = result
		return result
	}
	return best(0, start)
}

func TestOracleBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	exact := 0
	for i := range 300 {
		in := newOracleInstance(rng, 7, 2)
		t.Run(fmt.Sprintf("instance %d", i), func(t *testing.T) {
			want := oracleBruteForce(&in)
			got := oracle.Bound(in.fleets, in.capKW, in.iv, in.options())
			tol := 1e-9 * max(1, math.Abs(want))
			require.GreaterOrEqual(t, got.ProfitUSD, want-tol, "bound below the optimum of its own model: %+v", in)
			if got.Exact {
				exact++
				require.InDelta(t, want, got.ProfitUSD, tol)
			}
		})
	}
	require.Positive(t, exact, "some instances should be exact")
}

// ctSegment is a span of one device's life: steady in Mode when Mode ==
// Target, else in transition from Mode to Target.
type ctSegment struct {
	from, to     float64 // hours since the start of the trace
	mode, target switchd.Mode
}

// ctDevice is Weight identical devices following one continuous-time
// schedule.
type ctDevice struct {
	fleet    int
	weight   float64
	segments []ctSegment
	switches int
}

// ctProfit is what a controller earns with these schedules, by the rules of
// the simulated devices: exact integrals over the pieces between every
// interval and segment boundary. ok is false when the site draw ever
// exceeds capKW.
func ctProfit(fleets []switchd.FleetSpec, capKW float64, iv []oracle.Interval, devs []ctDevice) (profit float64, ok bool) {
	ends := make([]float64, len(iv))
	cuts := []float64{0}
	for t, x := range iv {
		ends[t] = cuts[len(cuts)-1] + x.Hours
		cuts = append(cuts, ends[t])
	}
	for _, d := range devs {
		profit -= d.weight * float64(d.switches) * fleets[d.fleet].SwitchCostUSD
		for _, s := range d.segments {
			cuts = append(cuts, s.from, s.to)
		}
	}
	sort.Float64s(cuts)
	cursor := make([]int, len(devs))
	t := 0
	for j := 0; j+1 < len(cuts) && t < len(iv); j++ {
		a, b := cuts[j], cuts[j+1]
		if !(b > a) || a < 0 {
			continue
		}
		mid := (a + b) / 2
		for t < len(iv) && ends[t] <= mid {
			t++
		}
		if t == len(iv) {
			break
		}
		x := &iv[t]
		powerKW, inference, rev := 0.0, 0.0, 0.0
		for i := range devs {
			d := &devs[i]
			for cursor[i] < len(d.segments)-1 && d.segments[cursor[i]].to <= mid {
				cursor[i]++
			}
			s := d.segments[cursor[i]]
			spec := &fleets[d.fleet]
			if s.mode != s.target {
				powerKW += d.weight * spec.TransitionPowerKW(s.mode, s.target)
				continue
			}
			powerKW += d.weight * spec.Modes[s.mode].PowerKW
			if spec.Modes[s.mode].Revenue == switchd.RevenueInference {
				inference += d.weight
				continue
			}
			rev += d.weight * spec.RevenuePerHour(s.mode, &x.Values)
		}
		if powerKW > capKW+1e-9 {
			return 0, false
		}
		if dem, has := x.Values.Get(switchd.SignalAIDemand); has {
			inference = min(inference, max(dem, 0))
		}
		rev += inference * x.Values.V[switchd.SignalInferencePrice]
		profit += (rev - powerKW*x.Values.V[switchd.SignalPrice]/1000) * (b - a)
	}
	return profit, true
}

// gridStep is the time grid of the controller adversary: 5 minutes, in
// hours.
const gridStep = 5.0 / 60

// newGridInstance is a tiny random instance whose rows, transitions and
// dwell times are whole grid steps, with one or two devices in all.
func newGridInstance(rng *rand.Rand) oracleInstance {
	in := newOracleInstance(rng, 8, 1)
	if len(in.fleets) == 1 {
		in.fleets[0].Count = 1 + rng.IntN(2)
	}
	for i := range in.fleets {
		f := &in.fleets[i]
		f.MinDwell = time.Duration(rng.IntN(13)) * 5 * time.Minute
		for a := range f.Transition {
			for b := range f.Transition[a] {
				if a != b {
					f.Transition[a][b] = time.Duration(rng.IntN(5)) * 5 * time.Minute
				}
			}
		}
	}
	for t := range in.iv {
		in.iv[t].Hours = gridStep * float64([]int{3, 3, 3, 1, 2, 4, 6}[rng.IntN(7)])
	}
	return in
}

// gridState is what one device does during a grid step: steady in mode for
// age whole steps before this one (capped at the dwell), or in transition
// to target with left steps to go, this one included.
type gridState struct {
	mode, target switchd.Mode
	age, left    int
}

// gridOptimum is the most a controller can earn on instance in when it
// acts only at grid instants (mid-row included): devices follow the rules
// of the simulated devices exactly (transitions take their time at the
// larger draw and earn nothing, MinDwell after arriving before leaving a
// mode, except where the instance's dwell scope lets a constraint force a
// device out at once), the draw stays under the cap at every
// instant and inference is paid up to demand. It searches every joint
// schedule of the (at most two) devices.
func gridOptimum(in *oracleInstance) float64 {
	type device struct {
		f       *switchd.FleetSpec
		dwell   int
		initial gridState
	}
	var devs []device
	for fi := range in.fleets {
		f := &in.fleets[fi]
		initial := in.initial[fi]
		if !f.Supports[initial] {
			initial = switchd.ModeOff
		}
		dwell := int(math.Round(f.MinDwell.Hours() / gridStep))
		for range f.Count {
			devs = append(devs, device{f: f, dwell: dwell, initial: gridState{mode: initial, target: initial, age: dwell}})
		}
	}
	// next lists the states a device may occupy in the step after s, with
	// the switches that takes.
	next := func(d *device, s gridState) (out []gridState, switches []int) {
		if s.mode != s.target {
			if s.left > 1 {
				return []gridState{{mode: s.mode, target: s.target, left: s.left - 1}}, []int{0}
			}
			return []gridState{{mode: s.target, target: s.target}}, []int{0}
		}
		out = append(out, gridState{mode: s.mode, target: s.mode, age: min(s.age+1, d.dwell)})
		switches = append(switches, 0)
		if s.age+1 < d.dwell && (in.dwell == oracle.DwellAllModes || in.dwell == oracle.DwellOffOnly && s.mode == switchd.ModeOff) {
			return out, switches
		}
		for _, b := range switchd.Modes {
			if b == s.mode || b != switchd.ModeOff && !d.f.Supports[b] {
				continue
			}
			tau := int(math.Round(d.f.Transition[s.mode][b].Hours() / gridStep))
			if tau == 0 {
				out = append(out, gridState{mode: b, target: b})
			} else {
				out = append(out, gridState{mode: s.mode, target: b, left: tau})
			}
			switches = append(switches, 1)
		}
		return out, switches
	}
	capKW := in.capKW + 1e-9
	type joint [2]gridState
	start := joint{}
	for i := range devs {
		// The state "before" the first step: one step younger, so the
		// first step sees it free to leave.
		start[i] = devs[i].initial
		start[i].age = max(devs[i].dwell-1, 0)
	}
	values := map[joint]float64{start: 0}
	for _, x := range in.iv {
		steps := int(math.Round(x.Hours / gridStep))
		price := x.Values.V[switchd.SignalPrice]
		for range steps {
			nextValues := map[joint]float64{}
			for js, v := range values {
				var options [2][]gridState
				var switches [2][]int
				for i := range devs {
					options[i], switches[i] = next(&devs[i], js[i])
				}
				if len(devs) == 1 {
					options[1], switches[1] = []gridState{{}}, []int{0}
				}
				for a, sa := range options[0] {
					for b, sb := range options[1] {
						ns := joint{sa, sb}
						made := [2]int{switches[0][a], switches[1][b]}
						value := v
						powerKW, inference := 0.0, 0.0
						for i := range devs {
							d, s := &devs[i], ns[i]
							value -= float64(made[i]) * d.f.SwitchCostUSD
							if s.mode != s.target {
								powerKW += d.f.TransitionPowerKW(s.mode, s.target)
								continue
							}
							powerKW += d.f.Modes[s.mode].PowerKW
							if d.f.Modes[s.mode].Revenue == switchd.RevenueInference {
								inference++
								continue
							}
							value += gridStep * d.f.RevenuePerHour(s.mode, &x.Values)
						}
						if powerKW > capKW {
							continue
						}
						if dem, ok := x.Values.Get(switchd.SignalAIDemand); ok {
							inference = min(inference, max(dem, 0))
						}
						value += gridStep * (inference*x.Values.V[switchd.SignalInferencePrice] - powerKW*price/1000)
						if old, ok := nextValues[ns]; !ok || value > old {
							nextValues[ns] = value
						}
					}
				}
			}
			values = nextValues
		}
	}
	best := math.Inf(-1)
	for _, v := range values {
		best = max(best, v)
	}
	return best
}

// newEdgeInstance is one device, no cap, rows of 5 to 15 minutes, long
// transitions and prices that are often negative: where transitions pay
// and the interval model's charges for them are tested hardest.
func newEdgeInstance(rng *rand.Rand) oracleInstance {
	f := switchd.FleetSpec{Name: "f", Count: 1}
	f.Supports = [switchd.NumModes]bool{true, true, rng.IntN(2) == 0}
	if rng.IntN(3) == 0 {
		f.Modes[switchd.ModeOff].PowerKW = 0.2 * rng.Float64()
	}
	f.Modes[switchd.ModeMining] = switchd.ModeSpec{PowerKW: 0.5 + 3*rng.Float64(), HashrateTHs: 50 + 150*rng.Float64(), Revenue: switchd.RevenueHashprice}
	f.Modes[switchd.ModeInference] = switchd.ModeSpec{PowerKW: 0.3 + 3*rng.Float64(), Revenue: switchd.RevenueInference}
	for a := range f.Transition {
		for b := range f.Transition[a] {
			if a != b {
				f.Transition[a][b] = time.Duration(rng.IntN(13)) * 5 * time.Minute
			}
		}
	}
	f.MinDwell = time.Duration(rng.IntN(13)) * 5 * time.Minute
	f.SwitchCostUSD = []float64{0, 0, 0.01, 0.05}[rng.IntN(4)]
	in := oracleInstance{fleets: []switchd.FleetSpec{f}, capKW: 1e6, dwell: oracle.DwellScope(rng.IntN(3)),
		initial: []switchd.Mode{switchd.Modes[rng.IntN(switchd.NumModes)]}}
	for range 2 + rng.IntN(7) {
		price := -300 * rng.Float64()
		if rng.IntN(2) == 0 {
			price = 3000 * math.Pow(rng.Float64(), 3)
		}
		v := oracleValues(price, 80*rng.Float64(), 3*rng.Float64(), -1)
		in.iv = append(in.iv, oracle.Interval{Hours: gridStep * float64(1+rng.IntN(3)), Values: v})
	}
	return in
}

// TestOracleBoundsGridController checks the bound against the best
// controller acting every 5 minutes, mid-row included, with the simulated
// devices' exact rules: it pins the soundness of the interval model itself
// (transitions, dwell, picks), not only of the dual. Dropping any of the
// transition charge's safeguards (the windows, the caps on τ, counting a
// transition in its higher-draw mode) makes some instance fail.
func TestOracleBoundsGridController(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	check := func(t *testing.T, in *oracleInstance) {
		controller := gridOptimum(in)
		got := oracle.Bound(in.fleets, in.capKW, in.iv, in.options())
		require.GreaterOrEqual(t, got.ProfitUSD, controller-1e-9, "a controller beats the bound: %+v", *in)
	}
	for i := range 150 {
		in := newGridInstance(rng)
		t.Run(fmt.Sprintf("coupled %d", i), func(t *testing.T) { check(t, &in) })
	}
	rng = rand.New(rand.NewPCG(5, 6))
	for i := range 800 {
		in := newEdgeInstance(rng)
		t.Run(fmt.Sprintf("edge %d", i), func(t *testing.T) { check(t, &in) })
	}
}

// TestOracleBoundsCraftedControllers pins the edges of the interval model
// with schedules a controller can really follow, each worth exactly what a
// looser charge would miss.
func TestOracleBoundsCraftedControllers(t *testing.T) {
	gpuLike := oracleASIC(1)
	gpuLike.Supports[switchd.ModeInference] = true
	gpuLike.Modes[switchd.ModeInference] = switchd.ModeSpec{PowerKW: 0.7, Revenue: switchd.RevenueInference}
	gpuLike.Transition[switchd.ModeOff][switchd.ModeMining] = time.Hour
	longStop := oracleASIC(1)
	longStop.Transition[switchd.ModeMining][switchd.ModeOff] = time.Hour
	longStart := oracleASIC(1)
	longStart.Transition[switchd.ModeOff][switchd.ModeMining] = time.Hour
	dwell := oracleASIC(1)
	dwell.MinDwell = 75 * time.Minute
	rows := func(hashprice float64, prices ...float64) []oracle.Interval {
		iv := oracleTrace(prices...)
		for i := range iv {
			iv[i].Values.V[switchd.SignalHashprice] = hashprice
		}
		return iv
	}
	tests := []struct {
		name    string
		fleet   switchd.FleetSpec
		iv      []oracle.Interval
		initial switchd.Mode
		// schedule is what the intended schedule earns; the grid search
		// must find at least that.
		schedule float64
	}{
		{
			// Started at once, the hour-long start outlasts the trace: the
			// device draws 3.5 kW at −100 USD/MWh for half an hour.
			name: "a start cut short by the end of the trace", fleet: longStart,
			iv: oracleTrace(-100, -100), schedule: 3.5 * 0.1 * 0.5,
		},
		{
			// To be off for the spike the hour-long stop must start at once,
			// through two rows with no hashprice: it loses less than an
			// hour of revenue.
			name: "a stop through rows of low revenue", fleet: longStop, initial: switchd.ModeMining,
			iv:       append(rows(0, -200, -200), oracleTrace(-200, -200, 3000, 3000)...),
			schedule: 3.5 * 0.2 * 1,
		},
		{
			// Through inference, which is instant both ways, mining starts
			// after one grid step instead of an hour.
			name: "a detour through a fast mode", fleet: gpuLike,
			iv:       oracleTrace(20, 20, 20, 20),
			schedule: oracleSumMine(20, 20, 20, 20) - gridStep*(0.2*50/24-3.5*0.02) - gridStep*0.7*0.02,
		},
		{
			name: "a forced stop cuts a run of mining short", fleet: dwell,
			iv:       oracleTrace(900, 900, 900, 900, 20, 900, 900, 900, 900, 900),
			schedule: oracleMine(20),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := oracleInstance{fleets: []switchd.FleetSpec{tt.fleet}, capKW: 1e6, iv: tt.iv, initial: []switchd.Mode{tt.initial}}
			controller := gridOptimum(&in)
			require.GreaterOrEqual(t, controller, tt.schedule-1e-9)
			got := oracle.Bound(in.fleets, in.capKW, in.iv, in.options())
			require.GreaterOrEqual(t, got.ProfitUSD, controller-1e-9)
		})
	}
}

// readOracleTrace reads a trace's prices and hashprice (50 USD/PH/day when it
// has none), for the tests that use the real traces in $SWITCHD_TRACES.
func readOracleTrace(t *testing.T, name string) []oracle.Interval {
	fh, err := os.Open(testenv.TraceFile(t, name))
	require.NoError(t, err)
	defer fh.Close()
	rows, err := csv.NewReader(fh).ReadAll()
	require.NoError(t, err)
	col := map[string]int{}
	for i, c := range rows[0] {
		col[c] = i
	}
	var iv []oracle.Interval
	var times []time.Time
	for _, r := range rows[1:] {
		at, err := time.Parse(time.RFC3339, r[0])
		require.NoError(t, err)
		price, err := strconv.ParseFloat(r[col["price_usd_mwh"]], 64)
		require.NoError(t, err)
		hp := 0.05 // USD/TH/day, when the trace has no hashprice
		if c, ok := col["hashprice_usd_th_day"]; ok {
			hp, err = strconv.ParseFloat(r[c], 64)
			require.NoError(t, err)
		}
		times = append(times, at)
		iv = append(iv, oracle.Interval{Values: oracleValues(price, hp*1000, 2.1, -1)})
	}
	for i := range iv {
		if i+1 < len(iv) {
			iv[i].Hours = times[i+1].Sub(times[i]).Hours()
		} else {
			iv[i].Hours = iv[i-1].Hours
		}
	}
	return iv
}

// TestOracleRealTrace checks the bound against a threshold policy (mine
// below breakeven, else off, under the cap with a 1-hour dwell) over the
// August 2023 Houston heat wave and the 2024 hub average, negative prices
// included.
func TestOracleRealTrace(t *testing.T) {
	asics := oracleASIC(1000)
	asics.Modes[switchd.ModeMining].PowerKW = 3.25
	asics.Modes[switchd.ModeMining].HashrateTHs = 110
	asics.Transition[switchd.ModeOff][switchd.ModeMining] = 5 * time.Minute
	asics.Transition[switchd.ModeMining][switchd.ModeOff] = 2 * time.Minute
	asics.MinDwell = time.Hour
	asics.SwitchCostUSD = 0.02
	gpus := oracleGPU(100)
	gpus.Supports[switchd.ModeMining] = false
	fleets := []switchd.FleetSpec{asics, gpus}
	const capKW = 3000
	miners := math.Floor((capKW - 70) / 3.25)

	// The policy: GPUs serve inference throughout; 901 ASICs mine whenever
	// the row's price is under breakeven and their dwell allows.
	policy := func(t *testing.T, iv []oracle.Interval) float64 {
		gpuLife := ctDevice{fleet: 1, weight: 100, switches: 1, segments: []ctSegment{
			{from: 0, to: 0, mode: switchd.ModeOff, target: switchd.ModeInference},
			{from: 0, to: math.Inf(1), mode: switchd.ModeInference, target: switchd.ModeInference},
		}}
		asicLife := ctDevice{fleet: 0, weight: miners}
		mode, since, free, at := switchd.ModeOff, 0.0, 0.0, 0.0
		for _, x := range iv {
			want := switchd.ModeOff
			if asics.ValuePerHour(switchd.ModeMining, &x.Values) > 0 {
				want = switchd.ModeMining
			}
			if want != mode && at >= free {
				arrive := at + asics.Transition[mode][want].Hours()
				asicLife.segments = append(asicLife.segments,
					ctSegment{from: since, to: at, mode: mode, target: mode},
					ctSegment{from: at, to: arrive, mode: mode, target: want})
				asicLife.switches++
				mode, since, free = want, arrive, arrive+asics.MinDwell.Hours()
			}
			at += x.Hours
		}
		asicLife.segments = append(asicLife.segments, ctSegment{from: since, to: math.Inf(1), mode: mode, target: mode})
		profit, ok := ctProfit(fleets, capKW, iv, []ctDevice{asicLife, gpuLife})
		require.True(t, ok)
		return profit
	}

	for _, trace := range []string{"ercot_lz_houston_rt15_2023-08.csv", "ercot_hb_hubavg_rt15_2024.csv"} {
		t.Run(trace, func(t *testing.T) {
			iv := readOracleTrace(t, trace)
			policy := policy(t, iv)
			tests := []struct {
				name  string
				capKW float64
				opt   oracle.Options
				exact bool
			}{
				{name: "binding cap", capKW: capKW},
				{name: "binding cap, dwell in all modes", capKW: capKW, opt: oracle.Options{Dwell: oracle.DwellAllModes}},
				{name: "no cap", capKW: math.Inf(1), exact: true},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					start := time.Now()
					got := oracle.Bound(fleets, tt.capKW, iv, tt.opt)
					t.Logf("policy %.0f USD, oracle %.0f USD (%s) in %v", policy, got.ProfitUSD, got.Method, time.Since(start))
					require.GreaterOrEqual(t, got.ProfitUSD, policy)
					require.Equal(t, tt.exact, got.Exact)
				})
			}
		})
	}
}
