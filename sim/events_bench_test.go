package sim

import (
	"context"
	"testing"
	"time"

	"github.com/switchd/switchd/trace"
)

// BenchmarkYearDR replays a year of 5-minute SYNTHETIC intervals for a
// 10,000-device site with no demand-response event and with up to 52 on the
// highest prices at least a week apart (sim.PeakEvents places 39 on this
// trace; an hour each, a target of a fifth of the interconnect): the cost
// of tracking events (compliance records, the sheds and restores they
// cause) next to a plain replay, which meters the load all the same.
func BenchmarkYearDR(b *testing.B) {
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.FixedZone("CST", -6*3600))
	const step, rows = 5 * time.Minute, 366 * 288
	site, pol := benchSimSite(b, 10_000)
	series, err := trace.Collect(trace.SyntheticSource(start, step, rows, 1))
	if err != nil {
		b.Fatal(err)
	}
	evs := PeakEvents(series, PeakEventOptions{N: 52, Gap: 7 * 24 * time.Hour, Notice: 10 * time.Minute,
		Duration: time.Hour, Program: "bench", TargetKW: site.PowerCapKW / 5})
	for _, c := range []struct {
		name   string
		events int
	}{{"events=0", 0}, {"events=52", len(evs)}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var res *Result
			for b.Loop() {
				res, err = Run(context.Background(), RunOptions{
					Site: site, Policy: pol, Source: series.Source(), Events: evs[:c.events],
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			met := 0
			for _, r := range res.DR {
				if r.Met {
					met++
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N)/rows, "ns/interval")
			b.ReportMetric(float64(met), "events-met")
			b.ReportMetric(float64(len(res.DR)), "events")
		})
	}
}
