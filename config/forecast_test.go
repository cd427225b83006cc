package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSiteForecast(t *testing.T) {
	const mqtt = "mqtt: {broker: tcp://127.0.0.1:1883, signal_prefix: grid}\n"
	for _, tc := range []struct {
		name, yaml string
		check      func(t *testing.T, s *Site)
		err        string
	}{
		{"defaults", siteHead + mqtt + fleetYAML, func(t *testing.T, s *Site) {
			require.Zero(t, s.ForecastMaxAge, "the controller's default applies")
			require.Equal(t, SignalConfig{Topic: "grid/price_forecast", Min: -1000, Max: 20000, MaxFuture: DefaultMaxFuture}, s.Daemon.Forecast)
		}, ""},
		{"every key, bounds from price", siteHead + mqtt + "signals:\n  price: {min: -250, max: 5000}\n  price_forecast: {max_age: 36h, topic: ercot/da/hb_west, max_future: 10s}\n" + fleetYAML, func(t *testing.T, s *Site) {
			require.Equal(t, 36*time.Hour, s.ForecastMaxAge)
			require.Equal(t, SignalConfig{Topic: "ercot/da/hb_west", MaxAge: 36 * time.Hour, Min: -250, Max: 5000, MaxFuture: 10 * time.Second}, s.Daemon.Forecast)
		}, ""},
		{"no mqtt: max_age only", siteHead + "signals:\n  price_forecast: {max_age: 30h}\n" + fleetYAML, func(t *testing.T, s *Site) {
			require.Equal(t, 30*time.Hour, s.ForecastMaxAge)
		}, ""},
		{"bad max_age", siteHead + "signals:\n  price_forecast: {max_age: 0s}\n" + fleetYAML, nil,
			"site.yaml:3: signals.price_forecast.max_age: must be positive (got 0s)"},
		{"topic without mqtt", siteHead + "signals:\n  price_forecast: {topic: a/b}\n" + fleetYAML, nil,
			"site.yaml:3: signals.price_forecast.topic: needs an mqtt section"},
		{"topic of a signal", siteHead + mqtt + "signals:\n  price_forecast: {topic: grid/price}\n" + fleetYAML, nil,
			"signals.price_forecast.topic: \"grid/price\" is also the topic of signal price"},
		{"empty range", siteHead + mqtt + "signals:\n  price_forecast: {min: 10, max: 5}\n" + fleetYAML, nil,
			"signals.price_forecast.max: must be greater than min 10 (got 5)"},
		{"unknown key", siteHead + "signals:\n  price_forecast: {max_agee: 1h}\n" + fleetYAML, nil,
			"max_agee"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSite("site.yaml", []byte(tc.yaml))
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			tc.check(t, s)
		})
	}
}
