package policies

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
)

const (
	mOff       = switchd.ModeOff
	mMining    = switchd.ModeMining
	mInference = switchd.ModeInference
)

// dispatchASIC is design.md's example ASIC: 200 TH/s at 3.5 kW, nothing off.
func dispatchASIC(name string, count int) switchd.FleetSpec {
	var f switchd.FleetSpec
	f.Name, f.Kind, f.Count = name, switchd.KindASIC, count
	f.Supports[mOff], f.Supports[mMining] = true, true
	f.Modes[mMining] = switchd.ModeSpec{PowerKW: 3.5, HashrateTHs: 200, Revenue: switchd.RevenueHashprice}
	return f
}

// dispatchGPU is a GPU fleet serving inference at 1.275 kW; with mine set it
// can also mine at 1.0 kW for 60 TH/s (0.125 USD/h at hashprice 50,
// breakeven 125 USD/MWh).
func dispatchGPU(name string, count int, mine bool) switchd.FleetSpec {
	var f switchd.FleetSpec
	f.Name, f.Kind, f.Count = name, switchd.KindGPU, count
	f.Supports[mOff], f.Supports[mInference] = true, true
	f.Modes[mInference] = switchd.ModeSpec{PowerKW: 1.275, Revenue: switchd.RevenueInference}
	if mine {
		f.Supports[mMining] = true
		f.Modes[mMining] = switchd.ModeSpec{PowerKW: 1.0, HashrateTHs: 60, Revenue: switchd.RevenueHashprice}
	}
	return f
}

// dispatchValues returns values at price, hashprice 50 and inference 2.10
// USD/GPU-hour, with AI demand absent (unlimited).
func dispatchValues(price float64) switchd.Values {
	var v switchd.Values
	for _, s := range []struct {
		sig switchd.Signal
		x   float64
	}{{switchd.SignalPrice, price}, {switchd.SignalHashprice, 50}, {switchd.SignalInferencePrice, 2.10}} {
		v.V[s.sig], v.Present[s.sig] = s.x, true
	}
	return v
}

// withAIDemand returns v with AI demand set to gpus.
func withAIDemand(v switchd.Values, gpus float64) switchd.Values {
	v.V[switchd.SignalAIDemand], v.Present[switchd.SignalAIDemand] = gpus, true
	return v
}

// openConstraints returns constraints with a site cap and no per-fleet limits.
func openConstraints(capKW float64, fleets int) Constraints {
	c := Constraints{SiteCapKW: capKW, Fleets: make([]FleetConstraint, fleets)}
	for i := range c.Fleets {
		c.Fleets[i] = NoFleetConstraint()
	}
	return c
}

// planCounts returns each fleet's Count in plan order.
func planCounts(p switchd.Plan) [][switchd.NumModes]int {
	out := make([][switchd.NumModes]int, len(p.Fleets))
	for i := range p.Fleets {
		out[i] = p.Fleets[i].Count
	}
	return out
}

// planDrawKW is the site draw of a plan once every device has arrived.
func planDrawKW(specs []switchd.FleetSpec, p switchd.Plan) float64 {
	kw := 0.0
	for i := range p.Fleets {
		for m, n := range p.Fleets[i].Count {
			kw += float64(n) * specs[i].Modes[m].PowerKW
		}
	}
	return kw
}

func TestBreakevenExample(t *testing.T) {
	spec := dispatchASIC("asics", 1)
	v := dispatchValues(0)
	require.InDelta(t, 0.41667, spec.RevenuePerHour(mMining, &v), 1e-5)
	require.InDelta(t, 119.05, spec.BreakevenUSDPerMWh(mMining, &v), 0.005)
}

func TestDispatchBreakeven(t *testing.T) {
	tests := []struct {
		name           string
		priceUSDPerMWh float64
		hysteresis     float64
		incumbents     int // of 10 devices, currently mining
		switchCostUSD  float64
		minDwell       time.Duration
		hashprice      float64
		wantMining     int
	}{
		{name: "no band, off device starts below breakeven", priceUSDPerMWh: 118, hashprice: 50, wantMining: 10},
		{name: "no band, off device stays off above breakeven", priceUSDPerMWh: 120, hashprice: 50, wantMining: 0},
		{name: "no band, miner keeps mining below breakeven", priceUSDPerMWh: 118, incumbents: 10, hashprice: 50, wantMining: 10},
		{name: "no band, miner stops above breakeven", priceUSDPerMWh: 120, incumbents: 10, hashprice: 50, wantMining: 0},
		{name: "band 5, miner keeps mining at 123", priceUSDPerMWh: 123, hysteresis: 5, incumbents: 10, hashprice: 50, wantMining: 10},
		{name: "band 5, miner stops at 125", priceUSDPerMWh: 125, hysteresis: 5, incumbents: 10, hashprice: 50, wantMining: 0},
		{name: "band 5, off device starts at 113", priceUSDPerMWh: 113, hysteresis: 5, hashprice: 50, wantMining: 10},
		{name: "band 5, off device stays off at 115", priceUSDPerMWh: 115, hysteresis: 5, hashprice: 50, wantMining: 0},
		{name: "band 5, inside the band only incumbents mine", priceUSDPerMWh: 117, hysteresis: 5, incumbents: 4, hashprice: 50, wantMining: 4},
		// 0.14 USD over a 2 h dwell is 0.07 USD/h: newcomers break even at (0.41667-0.07)/0.0035 = 99.05.
		{name: "switching cost, off device starts at 98", priceUSDPerMWh: 98, switchCostUSD: 0.14, minDwell: 2 * time.Hour, hashprice: 50, wantMining: 10},
		{name: "switching cost, off device stays off at 100", priceUSDPerMWh: 100, switchCostUSD: 0.14, minDwell: 2 * time.Hour, hashprice: 50, wantMining: 0},
		{name: "switching cost, miner pays nothing to stay", priceUSDPerMWh: 118, switchCostUSD: 0.14, minDwell: 2 * time.Hour, incumbents: 10, hashprice: 50, wantMining: 10},
		// With no hold estimate (HoldHours nil) a dwell shorter than an hour
		// still amortises over an hour.
		{name: "switching cost with a 1 min dwell amortised over an hour, starts at 98", priceUSDPerMWh: 98, switchCostUSD: 0.07, minDwell: time.Minute, hashprice: 50, wantMining: 10},
		{name: "switching cost with a 1 min dwell amortised over an hour, off at 100", priceUSDPerMWh: 100, switchCostUSD: 0.07, minDwell: time.Minute, hashprice: 50, wantMining: 0},
		{name: "switching cost without dwell amortised over an hour, starts at 98", priceUSDPerMWh: 98, switchCostUSD: 0.07, hashprice: 50, wantMining: 10},
		{name: "switching cost without dwell amortised over an hour, off at 100", priceUSDPerMWh: 100, switchCostUSD: 0.07, hashprice: 50, wantMining: 0},
		{name: "zero value stays off", priceUSDPerMWh: 0, hashprice: 0, wantMining: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := dispatchASIC("asics", 10)
			spec.SwitchCostUSD, spec.MinDwell = tt.switchCostUSD, tt.minDwell
			v := dispatchValues(tt.priceUSDPerMWh)
			v.V[switchd.SignalHashprice] = tt.hashprice
			in := &DispatchInput{
				Fleets:              []switchd.FleetSpec{spec},
				Values:              v,
				Constraints:         openConstraints(1e6, 1),
				Current:             [][switchd.NumModes]int{{10 - tt.incumbents, tt.incumbents, 0}},
				HysteresisUSDPerMWh: tt.hysteresis,
			}
			p := Dispatch(in)
			require.Equal(t, [][switchd.NumModes]int{{10 - tt.wantMining, tt.wantMining, 0}}, planCounts(p))
			require.Equal(t, "asics", p.Fleets[0].Fleet)
		})
	}
}

func TestDispatchSwitchCost(t *testing.T) {
	// One S21-like ASIC (0.41667 USD/h at hashprice 50, breakeven 119.05
	// USD/MWh): at 98 USD/MWh mining gains 0.0737 USD/h, at 100 0.0667, at
	// 125 it loses 0.0208.
	nan, inf := math.NaN(), math.Inf(1)
	tests := []struct {
		name       string
		price      float64
		incumbents int
		cost       float64
		dwell      time.Duration
		hold, back float64 // HoldHours and BackShare of mining; no rows when both are 0
		wantMining int
	}{
		{name: "0.14 over a 2 h hold is 0.07 per hour: starts at 98", price: 98, cost: 0.14, hold: 2, wantMining: 10},
		{name: "0.14 over a 1.5 h hold is 0.093 per hour: stays off at 98", price: 98, cost: 0.14, hold: 1.5, wantMining: 0},
		{name: "a long hold makes a dear switch pay", price: 118, cost: 5, hold: 2000, wantMining: 10},
		{name: "a switch back doubles the cost: stays off at 98", price: 98, cost: 0.14, hold: 2, back: 1, wantMining: 0},
		{name: "half a switch back: starts at 98", price: 98, cost: 0.07, hold: 3, back: 0.5, wantMining: 10},
		{name: "a back share above one counts as one", price: 98, cost: 0.07, hold: 2, back: 7, wantMining: 10},
		{name: "a back share above one counts as one, off at 100", price: 100, cost: 0.07, hold: 2, back: 7, wantMining: 0},
		{name: "a NaN back share counts as none", price: 98, cost: 0.14, hold: 2, back: nan, wantMining: 10},
		{name: "an infinite hold costs nothing per hour", price: 119, cost: 1000, hold: inf, wantMining: 10},
		{name: "the dwell is a floor: 0.14 over 2 h of dwell", price: 98, cost: 0.14, dwell: 2 * time.Hour, hold: 0.25, wantMining: 10},
		{name: "no estimate: the dwell but at least an hour, starts at 98", price: 98, cost: 0.07, hold: nan, wantMining: 10},
		{name: "no estimate: the dwell but at least an hour, off at 100", price: 100, cost: 0.07, hold: -1, wantMining: 0},
		// Leaving costs a switch too: incumbents are credited it per hour of
		// the expected hold, so a loss shorter-lived than the switch is
		// ridden through.
		{name: "incumbents ride a short loss", price: 125, incumbents: 10, cost: 0.14, hold: 2, wantMining: 10},
		{name: "incumbents leave a long loss", price: 125, incumbents: 10, cost: 0.14, hold: 10, wantMining: 0},
		{name: "incumbents leave a short deep loss", price: 500, incumbents: 10, cost: 0.14, hold: 2, wantMining: 0},
		{name: "only incumbents are credited", price: 125, incumbents: 4, cost: 0.14, hold: 2, wantMining: 4},
		{name: "an infinite cost: newcomers never start", price: 0, cost: inf, hold: 2, wantMining: 0},
		{name: "an infinite cost: incumbents never leave", price: 2500, incumbents: 10, cost: inf, hold: 2, wantMining: 10},
		{name: "an infinite cost over an infinite hold is nothing per hour", price: 125, incumbents: 10, cost: inf, hold: inf, wantMining: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := dispatchASIC("asics", 10)
			spec.SwitchCostUSD, spec.MinDwell = tt.cost, tt.dwell
			in := &DispatchInput{
				Fleets:      []switchd.FleetSpec{spec},
				Values:      dispatchValues(tt.price),
				Constraints: openConstraints(1e6, 1),
				Current:     [][switchd.NumModes]int{{10 - tt.incumbents, tt.incumbents, 0}},
			}
			if tt.hold != 0 || tt.back != 0 {
				in.HoldHours = [][switchd.NumModes]float64{{0, tt.hold, 0}}
				in.BackShare = [][switchd.NumModes]float64{{0, tt.back, 0}}
			}
			require.Equal(t, [][switchd.NumModes]int{{10 - tt.wantMining, tt.wantMining, 0}}, planCounts(Dispatch(in)))
		})
	}
}

// TestDispatchDiscourage: a discouraged mode earns nothing in the
// dispatcher's reckoning (its energy still costs), so nobody enters it, and
// its incumbents leave unless the switching cost spread over the expected
// hold is worth more than the energy they burn meanwhile.
func TestDispatchDiscourage(t *testing.T) {
	// One S21-like ASIC at hashprice 50 earns 0.4167 USD/h; at 100 USD/MWh
	// it pays 0.35 USD/h for energy (a gain of 0.067 USD/h, but nothing
	// when discouraged), at 300 USD/MWh 1.05 USD/h.
	tests := []struct {
		name       string
		price      float64
		incumbents int
		cost, hold float64
		discourage bool
		wantMining int
	}{
		{name: "mining pays at 100", price: 100, wantMining: 10},
		{name: "discouraged: nobody starts, even where it pays", price: 100, discourage: true, wantMining: 0},
		{name: "discouraged: incumbents leave at once with no switching cost", price: 100, incumbents: 10, discourage: true, wantMining: 0},
		{name: "discouraged: a short spell is ridden through when a switch out and back costs more",
			price: 300, incumbents: 10, cost: 5, hold: 2, discourage: true, wantMining: 10},
		{name: "discouraged: a long spell is left", price: 300, incumbents: 10, cost: 5, hold: 20, discourage: true, wantMining: 0},
		{name: "discouraged: at a negative price drawing power still pays", price: -10, cost: 0.01, hold: 100, discourage: true, wantMining: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := dispatchASIC("asics", 10)
			spec.SwitchCostUSD = tt.cost
			in := &DispatchInput{
				Fleets:      []switchd.FleetSpec{spec},
				Values:      dispatchValues(tt.price),
				Constraints: openConstraints(1e6, 1),
				Current:     [][switchd.NumModes]int{{10 - tt.incumbents, tt.incumbents, 0}},
				HoldHours:   [][switchd.NumModes]float64{{0, tt.hold, 0}},
				BackShare:   [][switchd.NumModes]float64{{0, 1, 0}},
			}
			in.Constraints.Fleets[0].Discourage[mMining] = tt.discourage
			require.Equal(t, [][switchd.NumModes]int{{10 - tt.wantMining, tt.wantMining, 0}}, planCounts(Dispatch(in)))
		})
	}
}

func TestDispatchMeritOrder(t *testing.T) {
	tests := []struct {
		name   string
		fleets []switchd.FleetSpec
		values switchd.Values
		capKW  float64
		want   [][switchd.NumModes]int
	}{
		{
			// GPU inference earns 2.049 USD/h on 1.275 kW (1.61/kW), ASICs 0.277 on 3.5 kW (0.079/kW):
			// GPUs first, then floor((1879.25-127.5)/3.5) = 500 ASICs.
			name:   "gpus before asics, partial asic count",
			fleets: []switchd.FleetSpec{dispatchASIC("asics", 1000), dispatchGPU("gpus", 100, false)},
			values: dispatchValues(40),
			capKW:  100*1.275 + 500.5*3.5,
			want:   [][switchd.NumModes]int{{500, 500, 0}, {0, 0, 100}},
		},
		{
			name:   "cap below the gpus, floor(50/1.275) = 39 and no room for an asic",
			fleets: []switchd.FleetSpec{dispatchASIC("asics", 1000), dispatchGPU("gpus", 100, false)},
			values: dispatchValues(40),
			capKW:  50,
			want:   [][switchd.NumModes]int{{1000, 0, 0}, {61, 0, 39}},
		},
		{
			// GPU mining earns 0.085/kW at 40 USD/MWh, ahead of the ASICs' 0.079/kW.
			name:   "inference up to demand, surplus gpus mine before asics",
			fleets: []switchd.FleetSpec{dispatchASIC("asics", 1000), dispatchGPU("gpus", 100, true)},
			values: withAIDemand(dispatchValues(40), 60),
			capKW:  60*1.275 + 40*1.0 + 300.5*3.5,
			want:   [][switchd.NumModes]int{{700, 300, 0}, {0, 40, 60}},
		},
		{
			name:   "surplus gpus go off when mining does not pay",
			fleets: []switchd.FleetSpec{dispatchASIC("asics", 1000), dispatchGPU("gpus", 100, true)},
			values: withAIDemand(dispatchValues(130), 60),
			capKW:  1e6,
			want:   [][switchd.NumModes]int{{1000, 0, 0}, {40, 0, 60}},
		},
		{
			name:   "demand is site-wide, ties go to the first fleet",
			fleets: []switchd.FleetSpec{dispatchGPU("gpus-a", 100, false), dispatchGPU("gpus-b", 100, false)},
			values: withAIDemand(dispatchValues(40), 150),
			capKW:  1e6,
			want:   [][switchd.NumModes]int{{0, 0, 100}, {50, 0, 50}},
		},
		{
			name:   "equal fleets under a cap, ties go to the first fleet",
			fleets: []switchd.FleetSpec{dispatchASIC("a", 10), dispatchASIC("b", 10)},
			values: dispatchValues(40),
			capKW:  15 * 3.5,
			want:   [][switchd.NumModes]int{{0, 10, 0}, {5, 5, 0}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &DispatchInput{Fleets: tt.fleets, Values: tt.values, Constraints: openConstraints(tt.capKW, len(tt.fleets))}
			p := Dispatch(in)
			require.Equal(t, tt.want, planCounts(p))
			require.LessOrEqual(t, planDrawKW(tt.fleets, p), tt.capKW+1e-6)
		})
	}
}

func TestDispatchAIDemand(t *testing.T) {
	tests := []struct {
		name   string
		values switchd.Values
		want   int
	}{
		{name: "absent is unlimited", values: dispatchValues(40), want: 100},
		{name: "present bounds inference", values: withAIDemand(dispatchValues(40), 60), want: 60},
		{name: "fractional demand rounds down", values: withAIDemand(dispatchValues(40), 59.9), want: 59},
		{name: "zero demand", values: withAIDemand(dispatchValues(40), 0), want: 0},
		{name: "negative demand is none", values: withAIDemand(dispatchValues(40), -3), want: 0},
		{name: "nan demand is none", values: withAIDemand(dispatchValues(40), math.NaN()), want: 0},
		{name: "demand above the fleet", values: withAIDemand(dispatchValues(40), 1e30), want: 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &DispatchInput{
				Fleets:      []switchd.FleetSpec{dispatchGPU("gpus", 100, false)},
				Values:      tt.values,
				Constraints: openConstraints(1e6, 1),
			}
			require.Equal(t, [][switchd.NumModes]int{{100 - tt.want, 0, tt.want}}, planCounts(Dispatch(in)))
		})
	}
}

func TestDispatchPowerAndPrice(t *testing.T) {
	// offDraw is an ASIC whose control board draws 0.5 kW even when off, so
	// mining adds 3.0 kW and breaks even at 0.41667/0.003 = 138.9 USD/MWh.
	offDraw := dispatchASIC("asics", 10)
	offDraw.Modes[mOff].PowerKW = 0.5
	tests := []struct {
		name   string
		fleets []switchd.FleetSpec
		values switchd.Values
		capKW  float64
		want   [][switchd.NumModes]int
	}{
		{
			name:   "negative price: mining pays with a tiny hashprice",
			fleets: []switchd.FleetSpec{dispatchASIC("asics", 10)},
			values: func() switchd.Values { v := dispatchValues(-20); v.V[switchd.SignalHashprice] = 0.01; return v }(),
			capKW:  1e6,
			want:   [][switchd.NumModes]int{{0, 10, 0}},
		},
		{
			name:   "negative price: inference still bounded by demand",
			fleets: []switchd.FleetSpec{dispatchGPU("gpus", 10, false)},
			values: withAIDemand(dispatchValues(-20), 0),
			capKW:  1e6,
			want:   [][switchd.NumModes]int{{10, 0, 0}},
		},
		{
			name:   "off draw is paid anyway: mining at 130 beats the 119 absolute breakeven",
			fleets: []switchd.FleetSpec{offDraw},
			values: dispatchValues(130),
			capKW:  1e6,
			want:   [][switchd.NumModes]int{{0, 10, 0}},
		},
		{
			name:   "off draw is paid anyway: off above the marginal breakeven",
			fleets: []switchd.FleetSpec{offDraw},
			values: dispatchValues(140),
			capKW:  1e6,
			want:   [][switchd.NumModes]int{{10, 0, 0}},
		},
		{
			name:   "off draw uses the cap first, the rest fits per added kW",
			fleets: []switchd.FleetSpec{offDraw},
			values: dispatchValues(40),
			capKW:  10*0.5 + 3*3.0,
			want:   [][switchd.NumModes]int{{7, 3, 0}},
		},
		{
			name:   "cap below all-off: all off",
			fleets: []switchd.FleetSpec{offDraw, dispatchGPU("gpus", 10, false)},
			values: dispatchValues(40),
			capKW:  4,
			want:   [][switchd.NumModes]int{{10, 0, 0}, {10, 0, 0}},
		},
		{
			name:   "nan price: all off",
			fleets: []switchd.FleetSpec{dispatchASIC("asics", 10)},
			values: dispatchValues(math.NaN()),
			capKW:  1e6,
			want:   [][switchd.NumModes]int{{10, 0, 0}},
		},
		{
			name:   "nan cap: all off",
			fleets: []switchd.FleetSpec{dispatchASIC("asics", 10)},
			values: dispatchValues(40),
			capKW:  math.NaN(),
			want:   [][switchd.NumModes]int{{10, 0, 0}},
		},
		{
			name:   "infinite cap: everything that pays",
			fleets: []switchd.FleetSpec{dispatchASIC("asics", 10), dispatchGPU("gpus", 10, false)},
			values: dispatchValues(40),
			capKW:  math.Inf(1),
			want:   [][switchd.NumModes]int{{0, 10, 0}, {0, 0, 10}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &DispatchInput{Fleets: tt.fleets, Values: tt.values, Constraints: openConstraints(tt.capKW, len(tt.fleets))}
			require.Equal(t, tt.want, planCounts(Dispatch(in)))
		})
	}
}

func TestDispatchConstraints(t *testing.T) {
	asics := dispatchASIC("asics", 10)
	gpus := dispatchGPU("gpus", 100, true)
	offDraw := dispatchASIC("asics", 10)
	offDraw.Modes[mOff].PowerKW = 0.5
	with := func(f func(*FleetConstraint)) []FleetConstraint {
		c := NoFleetConstraint()
		f(&c)
		return []FleetConstraint{c}
	}
	tests := []struct {
		name   string
		fleet  switchd.FleetSpec
		values switchd.Values
		capKW  float64
		cons   []FleetConstraint
		hold   bool
		want   [switchd.NumModes]int
	}{
		{name: "forbid mining", fleet: asics, values: dispatchValues(40), capKW: 1e6,
			cons: with(func(c *FleetConstraint) { c.Forbid[mMining] = true }), want: [switchd.NumModes]int{10, 0, 0}},
		{name: "forbid inference, gpus mine instead", fleet: gpus, values: dispatchValues(40), capKW: 1e6,
			cons: with(func(c *FleetConstraint) { c.Forbid[mInference] = true }), want: [switchd.NumModes]int{0, 100, 0}},
		{name: "force inference ignores demand", fleet: gpus, values: withAIDemand(dispatchValues(40), 10), capKW: 1e6,
			cons: with(func(c *FleetConstraint) { c.Min[mInference], c.Forbid[mMining] = 100, true }), want: [switchd.NumModes]int{0, 0, 100}},
		{name: "forced inference uses up demand", fleet: gpus, values: withAIDemand(dispatchValues(40), 50), capKW: 1e6,
			cons: with(func(c *FleetConstraint) { c.Min[mInference] = 30 }), want: [switchd.NumModes]int{0, 50, 50}},
		{name: "min at a loss", fleet: asics, values: dispatchValues(200), capKW: 1e6,
			cons: with(func(c *FleetConstraint) { c.Min[mMining] = 4 }), want: [switchd.NumModes]int{6, 4, 0}},
		{name: "min bounded by the cap", fleet: asics, values: dispatchValues(200), capKW: 10,
			cons: with(func(c *FleetConstraint) { c.Min[mMining] = 10 }), want: [switchd.NumModes]int{8, 2, 0}},
		{name: "min above the fleet size", fleet: asics, values: dispatchValues(200), capKW: 1e6,
			cons: with(func(c *FleetConstraint) { c.Min[mMining] = 20 }), want: [switchd.NumModes]int{0, 10, 0}},
		{name: "forbid wins over min", fleet: asics, values: dispatchValues(40), capKW: 1e6,
			cons: with(func(c *FleetConstraint) { c.Min[mMining], c.Forbid[mMining] = 5, true }), want: [switchd.NumModes]int{10, 0, 0}},
		{name: "max wins over min", fleet: asics, values: dispatchValues(200), capKW: 1e6,
			cons: with(func(c *FleetConstraint) { c.Min[mMining], c.Max[mMining] = 8, 3 }), want: [switchd.NumModes]int{7, 3, 0}},
		{name: "max", fleet: asics, values: dispatchValues(40), capKW: 1e6,
			cons: with(func(c *FleetConstraint) { c.Max[mMining] = 3 }), want: [switchd.NumModes]int{7, 3, 0}},
		{name: "max zero", fleet: asics, values: dispatchValues(40), capKW: 1e6,
			cons: with(func(c *FleetConstraint) { c.Max[mMining] = 0 }), want: [switchd.NumModes]int{10, 0, 0}},
		{name: "max on inference sends the rest mining", fleet: gpus, values: dispatchValues(40), capKW: 1e6,
			cons: with(func(c *FleetConstraint) { c.Max[mInference] = 30 }), want: [switchd.NumModes]int{0, 70, 30}},
		{name: "min off keeps devices off", fleet: asics, values: dispatchValues(40), capKW: 1e6,
			cons: with(func(c *FleetConstraint) { c.Min[mOff] = 4 }), want: [switchd.NumModes]int{4, 6, 0}},
		{name: "forbid off is ignored", fleet: asics, values: dispatchValues(200), capKW: 1e6,
			cons: with(func(c *FleetConstraint) { c.Forbid[mOff] = true }), want: [switchd.NumModes]int{10, 0, 0}},
		{name: "cap below all-off wins over min", fleet: offDraw, values: dispatchValues(40), capKW: 4,
			cons: with(func(c *FleetConstraint) { c.Min[mMining] = 10 }), want: [switchd.NumModes]int{10, 0, 0}},
		{name: "no per-fleet constraints is unconstrained", fleet: asics, values: dispatchValues(40), capKW: 1e6,
			cons: nil, want: [switchd.NumModes]int{0, 10, 0}},
		{name: "hold is not the dispatcher's business", fleet: asics, values: dispatchValues(40), capKW: 1e6,
			cons: with(func(*FleetConstraint) {}), hold: true, want: [switchd.NumModes]int{0, 10, 0}},
		{name: "unsupported mode is never used even if forced", fleet: asics, values: dispatchValues(40), capKW: 1e6,
			cons: with(func(c *FleetConstraint) { c.Min[mInference] = 10 }), want: [switchd.NumModes]int{0, 10, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &DispatchInput{
				Fleets:      []switchd.FleetSpec{tt.fleet},
				Values:      tt.values,
				Constraints: Constraints{SiteCapKW: tt.capKW, Fleets: tt.cons, Hold: tt.hold},
			}
			require.Equal(t, [][switchd.NumModes]int{tt.want}, planCounts(Dispatch(in)))
		})
	}
}

func TestDispatchUpgrade(t *testing.T) {
	// cheap mines at 0.5 kW for 0.125 USD/h (0.21 USD/kWh net at 40 USD/MWh)
	// and serves inference at 1.275 kW for 0.30 USD/h (0.195 net per kW):
	// mining wins per kW, inference per device.
	cheap := dispatchGPU("gpus", 100, true)
	cheap.Modes[mMining].PowerKW = 0.5
	priced := func(v switchd.Values) switchd.Values { v.V[switchd.SignalInferencePrice] = 0.30; return v }
	allMining := [][switchd.NumModes]int{{0, 100, 0}}
	tests := []struct {
		name       string
		values     switchd.Values
		capKW      float64
		current    [][switchd.NumModes]int
		hysteresis float64
		want       [switchd.NumModes]int
	}{
		{name: "room: every device to the mode worth more per device", values: priced(dispatchValues(40)), capKW: 1e6,
			want: [switchd.NumModes]int{0, 0, 100}},
		// 100 × 0.5 kW mining, then floor(10 / 0.775) = 12 devices upgraded.
		{name: "little room: as many upgrades as fit", values: priced(dispatchValues(40)), capKW: 100*0.5 + 10,
			want: [switchd.NumModes]int{0, 88, 12}},
		{name: "demand bounds upgrades", values: withAIDemand(priced(dispatchValues(40)), 30), capKW: 1e6,
			want: [switchd.NumModes]int{0, 70, 30}},
		{name: "no band: current miners upgrade", values: priced(dispatchValues(40)), capKW: 1e6, current: allMining,
			want: [switchd.NumModes]int{0, 0, 100}},
		// With h = 100 incumbent miners are worth 0.155 USD/h, inference newcomers 0.1215.
		{name: "wide band: current miners stay", values: priced(dispatchValues(40)), capKW: 1e6, current: allMining, hysteresis: 100,
			want: [switchd.NumModes]int{0, 100, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &DispatchInput{
				Fleets:              []switchd.FleetSpec{cheap},
				Values:              tt.values,
				Constraints:         openConstraints(tt.capKW, 1),
				Current:             tt.current,
				HysteresisUSDPerMWh: tt.hysteresis,
			}
			require.Equal(t, [][switchd.NumModes]int{tt.want}, planCounts(Dispatch(in)))
		})
	}
}

func TestDispatchOddInputs(t *testing.T) {
	tests := []struct {
		name string
		in   DispatchInput
		want [][switchd.NumModes]int
	}{
		{
			name: "zero-count fleet",
			in:   DispatchInput{Fleets: []switchd.FleetSpec{dispatchASIC("empty", 0), dispatchASIC("asics", 2)}, Values: dispatchValues(40), Constraints: openConstraints(1e6, 2)},
			want: [][switchd.NumModes]int{{0, 0, 0}, {0, 2, 0}},
		},
		{
			name: "negative count is empty",
			in:   DispatchInput{Fleets: []switchd.FleetSpec{dispatchASIC("bad", -3)}, Values: dispatchValues(40), Constraints: openConstraints(1e6, 1)},
			want: [][switchd.NumModes]int{{0, 0, 0}},
		},
		{
			name: "no fleets",
			in:   DispatchInput{Values: dispatchValues(40), Constraints: openConstraints(1e6, 0)},
			want: [][switchd.NumModes]int{},
		},
		{
			name: "current rows missing or out of range",
			in: DispatchInput{
				Fleets:              []switchd.FleetSpec{dispatchASIC("a", 4), dispatchASIC("b", 4)},
				Values:              dispatchValues(117),
				Constraints:         openConstraints(1e6, 2),
				Current:             [][switchd.NumModes]int{{-5, 99, -1}},
				HysteresisUSDPerMWh: 5,
			},
			want: [][switchd.NumModes]int{{0, 4, 0}, {4, 0, 0}},
		},
		{
			name: "negative hysteresis is none",
			in: DispatchInput{
				Fleets: []switchd.FleetSpec{dispatchASIC("a", 4)}, Values: dispatchValues(118), Constraints: openConstraints(1e6, 1),
				HysteresisUSDPerMWh: -50,
			},
			want: [][switchd.NumModes]int{{0, 4, 0}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, planCounts(Dispatch(&tt.in)))
		})
	}
}

// TestDispatchManyFleets covers sites too large for the stack buffers.
func TestDispatchManyFleets(t *testing.T) {
	const n = stackFleets + 6
	in := &DispatchInput{Values: dispatchValues(40), Constraints: openConstraints(25*3.5+1, n)}
	for range n {
		in.Fleets = append(in.Fleets, dispatchASIC("asics", 10))
	}
	p := Dispatch(in)
	require.Len(t, p.Fleets, n)
	require.Equal(t, [switchd.NumModes]int{0, 10, 0}, p.Fleets[1].Count)
	require.Equal(t, [switchd.NumModes]int{5, 5, 0}, p.Fleets[2].Count)
	require.Equal(t, [switchd.NumModes]int{10, 0, 0}, p.Fleets[n-1].Count)
}

func TestDispatchIntoReuse(t *testing.T) {
	in := dispatchBenchInput()
	want := Dispatch(in)

	// A plan left over from a larger site is cut to size and overwritten.
	plan := switchd.Plan{Fleets: make([]switchd.FleetPlan, 5)}
	for i := range plan.Fleets {
		plan.Fleets[i] = switchd.FleetPlan{Fleet: "stale", Count: [switchd.NumModes]int{7, 7, 7}}
	}
	DispatchInto(in, &plan)
	require.Equal(t, want, plan)

	allocs := testing.AllocsPerRun(100, func() { DispatchInto(in, &plan) })
	require.Zero(t, allocs)
}

// TestDispatchInvariants checks, over random sites, what every plan must
// satisfy whatever the economics: device counts add up, the cap holds,
// forbidden modes are empty, Max holds, and inference stays within demand
// unless a rule forced it.
func TestDispatchInvariants(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := range 2000 {
		n := 1 + rng.IntN(5)
		in := &DispatchInput{HysteresisUSDPerMWh: rng.Float64() * 20}
		in.Values = dispatchValues(rng.Float64()*400 - 50)
		if rng.IntN(2) == 0 {
			in.Values = withAIDemand(in.Values, float64(rng.IntN(300)))
		}
		in.Constraints = Constraints{SiteCapKW: rng.Float64() * 2000}
		forcedInference := false
		for range n {
			var f switchd.FleetSpec
			if rng.IntN(2) == 0 {
				f = dispatchASIC("asics", rng.IntN(200))
			} else {
				f = dispatchGPU("gpus", rng.IntN(200), rng.IntN(2) == 0)
			}
			f.Modes[mOff].PowerKW = rng.Float64() * 0.2
			f.SwitchCostUSD = rng.Float64() * 0.1
			f.MinDwell = time.Duration(rng.IntN(60)) * time.Minute
			in.Fleets = append(in.Fleets, f)

			c := NoFleetConstraint()
			for m := range switchd.NumModes {
				switch rng.IntN(6) {
				case 0:
					c.Forbid[m] = true
				case 1:
					c.Min[m] = rng.IntN(150)
				case 2:
					c.Max[m] = rng.IntN(150)
				}
			}
			forcedInference = forcedInference || (c.Min[mInference] > 0 && f.Supports[mInference])
			in.Constraints.Fleets = append(in.Constraints.Fleets, c)

			var cur [switchd.NumModes]int
			left := f.Count
			for m := range switchd.NumModes {
				cur[m] = rng.IntN(left + 1)
				left -= cur[m]
			}
			in.Current = append(in.Current, cur)
		}

		p := Dispatch(in)
		require.Len(t, p.Fleets, n, "iteration %d", iter)
		baseKW, inferenceDevices := 0.0, 0
		for i, f := range in.Fleets {
			c := &in.Constraints.Fleets[i]
			sum := 0
			for m, k := range p.Fleets[i].Count {
				require.GreaterOrEqual(t, k, 0, "iteration %d fleet %d mode %d", iter, i, m)
				sum += k
				if m != int(mOff) {
					require.False(t, k > 0 && (c.Forbid[m] || !f.Supports[m]), "iteration %d fleet %d mode %d", iter, i, m)
					require.LessOrEqual(t, k, c.Max[m], "iteration %d fleet %d mode %d", iter, i, m)
				}
			}
			require.Equal(t, f.Count, sum, "iteration %d fleet %d", iter, i)
			baseKW += float64(f.Count) * f.Modes[mOff].PowerKW
			inferenceDevices += p.Fleets[i].Count[mInference]
		}
		if baseKW <= in.Constraints.SiteCapKW {
			require.LessOrEqual(t, planDrawKW(in.Fleets, p), in.Constraints.SiteCapKW+1e-6, "iteration %d", iter)
		}
		if d, ok := in.Values.Get(switchd.SignalAIDemand); ok && !forcedInference {
			require.LessOrEqual(t, float64(inferenceDevices), d, "iteration %d", iter)
		}
		require.Equal(t, p, Dispatch(in), "iteration %d: not deterministic", iter)
	}
}
