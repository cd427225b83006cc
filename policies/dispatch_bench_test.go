package policies

import (
	"testing"
	"time"

	"github.com/switchd/switchd"
)

// dispatchBenchInput is a three-fleet site under a binding cap: ASICs, GPUs
// that can also mine, and an older ASIC model, with incumbents in every mode.
func dispatchBenchInput() *DispatchInput {
	old := dispatchASIC("s19", 4000)
	old.Modes[mMining].PowerKW, old.Modes[mMining].HashrateTHs = 3.25, 95
	old.Modes[mOff].PowerKW = 0.01
	fleets := []switchd.FleetSpec{dispatchASIC("s21", 8000), dispatchGPU("h100", 2000, true), old}
	for i := range fleets {
		fleets[i].SwitchCostUSD, fleets[i].MinDwell = 0.05, 30*time.Minute
	}
	return &DispatchInput{
		Fleets:              fleets,
		Values:              withAIDemand(dispatchValues(45), 1500),
		Constraints:         openConstraints(30000, len(fleets)),
		Current:             [][switchd.NumModes]int{{2000, 6000, 0}, {100, 400, 1500}, {4000, 0, 0}},
		HysteresisUSDPerMWh: 5,
		HoldHours:           [][switchd.NumModes]float64{{0, 6.5, 0}, {0, 3, 40}, {0, 6.5, 0}},
		BackShare:           [][switchd.NumModes]float64{{0, 0.8, 0}, {0, 0.5, 0.1}, {0, 0.8, 0}},
	}
}

func BenchmarkDispatch(b *testing.B) {
	in := dispatchBenchInput()
	var plan switchd.Plan
	DispatchInto(in, &plan)
	prices := [...]float64{-20, 15, 45, 90, 118, 125, 300, 2500}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		in.Values.V[switchd.SignalPrice] = prices[i%len(prices)]
		DispatchInto(in, &plan)
		i++
	}
}
