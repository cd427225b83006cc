package sim

import (
	"context"
	"testing"
	"time"

	"github.com/switchd/switchd/trace"
)

// BenchmarkYearForecast replays a year of 15-minute SYNTHETIC intervals for a
// 10,000-device site without and with a synthetic price forecast (issued
// daily for 48 h): the forecast's cost per interval is the difference.
func BenchmarkYearForecast(b *testing.B) {
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.FixedZone("CST", -6*3600))
	const rows = 366 * 96
	series, err := trace.Collect(trace.SyntheticSource(start, 15*time.Minute, rows, 1))
	if err != nil {
		b.Fatal(err)
	}
	site, pol := benchSimSite(b, 10_000)
	for _, spec := range []string{"", "noisy:0.1"} {
		name := "forecast=none"
		if spec != "" {
			name = "forecast=" + spec
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var res *Result
			for b.Loop() {
				ro := RunOptions{Site: site, Policy: pol, Source: series.Source(), End: series.End()}
				if spec != "" {
					o, err := ParseForecastFlag(spec)
					if err != nil {
						b.Fatal(err)
					}
					if ro.Forecasts, err = NewForecastFeed(o, series, nil, site.Location); err != nil {
						b.Fatal(err)
					}
				}
				if res, err = Run(context.Background(), ro); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)*1e9/rows, "ns/interval")
			b.ReportMetric(float64(res.Ticks)/rows, "ticks/interval")
		})
	}
}
