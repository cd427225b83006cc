package sim

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/sim/oracle"
)

// oracleBenchSite is three fleets under a 4 MW cap they would exceed by 1.25 MW:
// new and old ASICs and GPUs that serve inference up to a demand that
// follows the day, or mine.
func oracleBenchSite() ([]switchd.FleetSpec, float64) {
	newASIC := oracleASIC(1000)
	newASIC.Name = "s21"
	newASIC.Transition[switchd.ModeOff][switchd.ModeMining] = 5 * time.Minute
	newASIC.Transition[switchd.ModeMining][switchd.ModeOff] = 2 * time.Minute
	newASIC.MinDwell, newASIC.SwitchCostUSD = time.Hour, 0.05

	oldASIC := oracleASIC(500)
	oldASIC.Name = "s19"
	oldASIC.Modes[switchd.ModeMining].PowerKW = 3.3
	oldASIC.Modes[switchd.ModeMining].HashrateTHs = 100
	oldASIC.Transition = newASIC.Transition
	oldASIC.MinDwell, oldASIC.SwitchCostUSD = 30*time.Minute, 0.02

	gpus := oracleGPU(100)
	gpus.Modes[switchd.ModeOff].PowerKW = 0.05
	gpus.Transition[switchd.ModeOff][switchd.ModeInference] = 10 * time.Minute
	gpus.Transition[switchd.ModeMining][switchd.ModeInference] = 10 * time.Minute
	gpus.MinDwell, gpus.SwitchCostUSD = 2*time.Hour, 0.5
	return []switchd.FleetSpec{newASIC, oldASIC, gpus}, 4000
}

// oracleBenchYear is a leap year of quarter-hours with a daily price shape,
// noise, clustered spikes up to 3,000 USD/MWh and some negative hours; a
// daily hashprice random walk; AI demand between 40 and 100 GPUs.
func oracleBenchYear() []oracle.Interval {
	const rows = 366 * 96
	rng := rand.New(rand.NewPCG(7, 11))
	iv := make([]oracle.Interval, rows)
	hashprice, spike := 50.0, 0
	for i := range iv {
		day, hour := i/96, float64(i%96)/4
		if i%96 == 0 {
			hashprice = min(max(hashprice+rng.NormFloat64()*1.5, 30), 80)
		}
		season := 10 * math.Sin(2*math.Pi*float64(day)/366)
		price := 35 + season + 25*math.Sin(2*math.Pi*(hour-10)/24) + 8*rng.NormFloat64()
		switch {
		case spike > 0:
			spike--
			price = 300 + 2700*rng.Float64()
		case rng.Float64() < 0.001:
			spike = 2 + rng.IntN(10)
		case rng.Float64() < 0.02:
			price = -10 - 30*rng.Float64()
		}
		demand := 70 + 30*math.Sin(2*math.Pi*(hour-8)/24)
		iv[i] = oracle.Interval{Hours: oracleRowHours, Values: oracleValues(price, hashprice, 2.1, demand)}
	}
	return iv
}

func BenchmarkOracle(b *testing.B) {
	fleets, capKW := oracleBenchSite()
	iv := oracleBenchYear()
	b.ReportAllocs()
	var res oracle.Result
	for b.Loop() {
		res = oracle.Bound(fleets, capKW, iv, oracle.Options{})
	}
	b.ReportMetric(res.ProfitUSD, "usd")
	b.ReportMetric(float64(res.Iterations), "iterations")
}
