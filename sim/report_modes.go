package sim

import "fmt"

// powerTargetRows adds the text report's rows for the power-target modes
// (mining_reduced, sleep), only when some run used one: reports of sites
// without them are unchanged.
func (r *Report) powerTargetRows(line func(string, func(*RunReport) string, string)) {
	runs := []*RunReport{&r.RunReport, &r.Baselines.AlwaysOn, &r.Baselines.ThresholdDebounce}
	used := func(f func(*RunReport) float64) bool {
		for _, rr := range runs {
			if f(rr) != 0 {
				return true
			}
		}
		return false
	}
	reduced := func(rr *RunReport) float64 { return rr.EnergyMWh.MiningReduced }
	sleep := func(rr *RunReport) float64 { return rr.EnergyMWh.Sleep }
	revReduced := func(rr *RunReport) float64 { return rr.RevenueUSD.MiningReduced }
	if used(reduced) || used(revReduced) {
		line("energy mining_reduced (MWh)", func(rr *RunReport) string { return fmt.Sprintf("%.1f", reduced(rr)) }, "")
		line("revenue mining_reduced (USD)", func(rr *RunReport) string { return fmt.Sprintf("%.0f", revReduced(rr)) }, "")
	}
	if used(sleep) {
		line("energy sleep (MWh)", func(rr *RunReport) string { return fmt.Sprintf("%.1f", sleep(rr)) }, "")
	}
}
