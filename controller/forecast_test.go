package controller

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var fcT0 = time.Date(2024, 7, 1, 12, 0, 0, 0, time.UTC)

func TestForecastValidate(t *testing.T) {
	ok := Forecast{Issued: fcT0, Start: fcT0, Interval: 15 * time.Minute, PricesUSDPerMWh: []float64{10, 20}}
	require.NoError(t, ok.Validate(-250, 5000))
	cases := []struct {
		name string
		edit func(f *Forecast)
		want string
	}{
		{"no start", func(f *Forecast) { f.Start = time.Time{} }, "no start"},
		{"interval too short", func(f *Forecast) { f.Interval = time.Second }, "interval 1s is outside 1m0s to 24h0m0s"},
		{"no prices", func(f *Forecast) { f.PricesUSDPerMWh = nil }, "no prices"},
		{"too many", func(f *Forecast) { f.PricesUSDPerMWh = make([]float64, MaxForecastIntervals+1) }, "2017 prices, more than the 2016 allowed"},
		{"NaN", func(f *Forecast) { f.PricesUSDPerMWh = []float64{1, math.NaN()} }, "prices[1] = NaN is outside"},
		{"above max", func(f *Forecast) { f.PricesUSDPerMWh = []float64{6000} }, "prices[0] = 6000 is outside the price range -250 to 5000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := ok
			f.PricesUSDPerMWh = append([]float64(nil), ok.PricesUSDPerMWh...)
			c.edit(&f)
			require.ErrorContains(t, f.Validate(-250, 5000), c.want)
		})
	}
}

func TestForecastFresh(t *testing.T) {
	f := Forecast{Issued: fcT0, Start: fcT0, Interval: time.Hour, PricesUSDPerMWh: []float64{1, 2, 3}}
	require.True(t, f.Fresh(fcT0, time.Hour))
	require.True(t, f.Fresh(fcT0.Add(time.Hour), time.Hour))
	require.False(t, f.Fresh(fcT0.Add(time.Hour+time.Nanosecond), time.Hour), "older than max age")
	require.False(t, f.Fresh(fcT0.Add(-time.Second), time.Hour), "issued in the future")
	require.False(t, f.Fresh(fcT0.Add(3*time.Hour), 10*time.Hour), "past its end")
	p, ok := f.PriceAt(fcT0.Add(90 * time.Minute))
	require.True(t, ok)
	require.Equal(t, 2.0, p)
	_, ok = f.PriceAt(fcT0.Add(3 * time.Hour))
	require.False(t, ok)
}

func TestForecastHold(t *testing.T) {
	q := 15 * time.Minute
	fc := func(start time.Time, prices ...float64) *Forecast {
		return &Forecast{Issued: fcT0, Start: start, Interval: q, PricesUSDPerMWh: prices}
	}
	cases := []struct {
		name       string
		f          *Forecast
		now        time.Time
		live       float64
		hold       time.Duration
		back       float64
		turned     bool
		gainsAbove bool
	}{
		// Threshold 100, switchArea 10 USD/MWh·h.
		{name: "turn then back within", f: fc(fcT0, 50, 50, 120, 50), now: fcT0, live: 50,
			hold: 30 * time.Minute, back: 0.5, turned: true}, // area 20 × 0.25 h = 5
		{name: "turn past the end", f: fc(fcT0, 50, 300), now: fcT0, live: 50,
			hold: 15 * time.Minute, back: 1, turned: true},
		{name: "no turn", f: fc(fcT0, 50, 50, 50), now: fcT0.Add(5 * time.Minute), live: 50,
			hold: 40 * time.Minute},
		{name: "live rules the interval holding now", f: fc(fcT0, 300, 300, 50), now: fcT0.Add(time.Minute), live: 50,
			hold: 14 * time.Minute, back: 1, turned: true},
		{name: "forecast ahead of now", f: fc(fcT0.Add(time.Hour), 50, 200), now: fcT0, live: 50,
			hold: 75 * time.Minute, back: 1, turned: true},
		{name: "gains above", f: fc(fcT0, 200, 50), now: fcT0, live: 200, gainsAbove: true,
			hold: 15 * time.Minute, back: 1, turned: true},
		{name: "past the end", f: fc(fcT0, 50), now: fcT0.Add(time.Hour), live: 50},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hold, back, turned := forecastHold(c.f, c.now, c.live, 100, c.gainsAbove, 10)
			require.Equal(t, c.hold, hold)
			require.InDelta(t, c.back, back, 1e-12)
			require.Equal(t, c.turned, turned)
		})
	}
}
