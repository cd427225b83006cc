package mqttio

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/controller"
	"github.com/switchd/switchd/internal/mqtttest"
)

var forecastCfg = config.SignalConfig{Topic: "dc1/signals/price_forecast", MaxAge: 48 * time.Hour, Min: -250, Max: 5000, MaxFuture: time.Minute}

func TestParseForecast(t *testing.T) {
	now := time.Date(2024, 8, 19, 18, 30, 0, 0, time.UTC)
	f, reason, err := ParseForecast([]byte(` {"ts":"2024-08-19T13:30:00-05:00","start":"2024-08-20T00:00:00-05:00","interval":"1h","prices":[31.5,-20,4999]} `),
		forecastCfg, now, time.Time{})
	require.NoError(t, err)
	require.Empty(t, reason)
	require.True(t, f.Issued.Equal(now))
	require.True(t, f.Start.Equal(time.Date(2024, 8, 20, 5, 0, 0, 0, time.UTC)))
	require.Equal(t, time.Hour, f.Interval)
	require.Equal(t, []float64{31.5, -20, 4999}, f.PricesUSDPerMWh)

	f, _, err = ParseForecast([]byte(`{"ts":"2024-08-19T18:00:00Z","start":"2024-08-19T18:00:00Z","interval":900,"prices":[1]}`), forecastCfg, now, time.Time{})
	require.NoError(t, err)
	require.Equal(t, 15*time.Minute, f.Interval, "a number is seconds")

	const ok = `"ts":"2024-08-19T18:00:00Z","start":"2024-08-19T18:00:00Z","interval":"15m"`
	many := "[" + strings.TrimSuffix(strings.Repeat("1,", controller.MaxForecastIntervals+1), ",") + "]"
	for _, tc := range []struct {
		name, payload, reason, err string
	}{
		{"bare array", `[1,2,3]`, ReasonMalformed, "want a JSON object"},
		{"empty", ``, ReasonMalformed, "want a JSON object"},
		{"bad json", `{"ts":`, ReasonMalformed, "decode json"},
		{"unknown field", `{` + ok + `,"prices":[1],"price":[2]}`, ReasonMalformed, `unknown field "price"`},
		{"trailing data", `{` + ok + `,"prices":[1]} {}`, ReasonMalformed, "data after"},
		{"no ts", `{"start":"2024-08-19T18:00:00Z","interval":"15m","prices":[1]}`, ReasonMalformed, `missing "ts"`},
		{"ts not a string", `{"ts":17,"start":"2024-08-19T18:00:00Z","interval":"15m","prices":[1]}`, ReasonMalformed, "ts: want an RFC 3339 string"},
		{"start without offset", `{"ts":"2024-08-19T18:00:00Z","start":"2024-08-19T18:00:00","interval":"15m","prices":[1]}`, ReasonMalformed, "start: want RFC 3339"},
		{"no interval", `{"ts":"2024-08-19T18:00:00Z","start":"2024-08-19T18:00:00Z","prices":[1]}`, ReasonMalformed, `missing "interval"`},
		{"bad interval", `{"ts":"2024-08-19T18:00:00Z","start":"2024-08-19T18:00:00Z","interval":"soon","prices":[1]}`, ReasonMalformed, "interval:"},
		{"interval too short", `{"ts":"2024-08-19T18:00:00Z","start":"2024-08-19T18:00:00Z","interval":"5s","prices":[1]}`, ReasonMalformed, "interval 5s is outside"},
		{"negative seconds", `{"ts":"2024-08-19T18:00:00Z","start":"2024-08-19T18:00:00Z","interval":-60,"prices":[1]}`, ReasonMalformed, "outside"},
		{"no prices", `{` + ok + `}`, ReasonMalformed, `missing "prices"`},
		{"empty prices", `{` + ok + `,"prices":[]}`, ReasonMalformed, `"prices" is empty`},
		{"too many", `{` + ok + `,"prices":` + many + `}`, ReasonMalformed, "2017 prices, want at most 2016"},
		{"a string price", `{` + ok + `,"prices":[1,"2"]}`, ReasonNotANumber, "prices[1]"},
		{"a null price", `{` + ok + `,"prices":[null]}`, ReasonNotANumber, "prices[0]"},
		{"overflow", `{` + ok + `,"prices":[1e400]}`, ReasonNonFinite, "prices[0]"},
		{"out of range", `{` + ok + `,"prices":[10, 9000]}`, ReasonOutOfRange, "prices[1] = 9000 is outside [-250, 5000]"},
		{"from the future", `{"ts":"2024-08-19T19:00:00Z","start":"2024-08-19T18:00:00Z","interval":"15m","prices":[1]}`, ReasonFuture, "ahead of the local clock"},
		{"too long", `{` + ok + `,"prices":[` + strings.Repeat(" ", MaxForecastPayloadBytes) + `1]}`, ReasonMalformed, "bytes, want at most"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, reason, err := ParseForecast([]byte(tc.payload), forecastCfg, now, time.Time{})
			require.Nil(t, f)
			require.Equal(t, tc.reason, reason)
			require.ErrorContains(t, err, tc.err)
		})
	}
	_, reason, err = ParseForecast([]byte(`{`+ok+`,"prices":[1]}`), forecastCfg, now, now)
	require.Equal(t, ReasonOutOfOrder, reason)
	require.ErrorContains(t, err, "before the last accepted")
}

// TestForecastMosquitto publishes forecasts with mosquitto_pub through a
// real Mosquitto: a good one is delivered, bad ones are rejected with the
// price_forecast label and logged at most once per interval, and the
// source keeps running.
func TestForecastMosquitto(t *testing.T) {
	mqtttest.CheckNoLeaks(t)
	m := mqtttest.Start(t)
	now := time.Date(2024, 8, 19, 18, 30, 0, 0, time.UTC)
	r := &recorder{}
	var mu sync.Mutex
	var got []*controller.Forecast
	core, logs := observer.New(zap.WarnLevel)
	s, err := NewSource(SourceOptions{
		MQTT: config.MQTTConfig{Broker: "tcp://" + m.Addr(), ClientID: "switchd-fc"}, Signals: testSignals("dc1/signals"),
		Clock: &fakeClock{t: now}, Logger: zap.New(core), OnSample: r.sample, OnReject: r.reject,
		Forecast: forecastCfg,
		OnForecast: func(f *controller.Forecast) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, f)
		},
	})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	require.NoError(t, s.Start(context.Background()))
	require.Eventually(t, s.Connected, waitMax, 5*time.Millisecond)

	m.Pub(forecastCfg.Topic, `[40, 41]`)
	m.Pub(forecastCfg.Topic, `{"ts":"2024-08-19T18:00:00Z","start":"2024-08-19T18:00:00Z","interval":"15m","prices":[40, 9999]}`)
	require.Equal(t, []rejection{{ForecastSignal, ReasonMalformed}, {ForecastSignal, ReasonOutOfRange}}, r.waitRejects(t, 2))
	m.Pub(forecastCfg.Topic, `{"ts":"2024-08-19T18:00:00Z","start":"2024-08-19T18:00:00Z","interval":"15m","prices":[40, 3000, 45]}`)
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 }, waitMax, 5*time.Millisecond)
	mu.Lock()
	require.Equal(t, []float64{40, 3000, 45}, got[0].PricesUSDPerMWh)
	require.Equal(t, forecastCfg.Topic, got[0].Source)
	mu.Unlock()
	// Signals still flow beside it.
	m.Pub("dc1/signals/price", "40")
	r.waitSamples(t, 1)
	// Two rejections within the log interval: one line.
	lines := logs.FilterMessage("signal payload rejected").All()
	require.Len(t, lines, 1)
	require.Equal(t, "price_forecast", lines[0].ContextMap()["signal"])
}

func TestSourceForecastOptions(t *testing.T) {
	_, err := NewSource(SourceOptions{MQTT: config.MQTTConfig{Broker: "tcp://127.0.0.1:1"}, Forecast: forecastCfg})
	require.ErrorContains(t, err, "no OnForecast callback")
	sigs := testSignals("dc1/signals")
	_, err = NewSource(SourceOptions{MQTT: config.MQTTConfig{Broker: "tcp://127.0.0.1:1"}, Signals: sigs, OnSample: func(switchd.Sample) {},
		Forecast: config.SignalConfig{Topic: "dc1/signals/price", Max: 1}, OnForecast: func(*controller.Forecast) {}})
	require.ErrorContains(t, err, `topic "dc1/signals/price" is already the topic of price`)
}

// FuzzParseForecast: any payload is accepted as a valid forecast or
// rejected with a known reason; never a panic.
func FuzzParseForecast(f *testing.F) {
	f.Add([]byte(`{"ts":"2024-08-19T18:00:00Z","start":"2024-08-19T18:00:00Z","interval":"15m","prices":[40,3000]}`))
	f.Add([]byte(`{"ts":"2024-08-19T18:00:00Z","start":"2024-08-19T18:00:00Z","interval":900,"prices":[1e400]}`))
	f.Add([]byte(`[1,2]`))
	now := time.Date(2024, 8, 19, 18, 30, 0, 0, time.UTC)
	known := map[string]bool{}
	for _, r := range Reasons {
		known[r] = true
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fc, reason, err := ParseForecast(data, forecastCfg, now, time.Time{})
		if err != nil {
			require.Nil(t, fc)
			require.True(t, known[reason], "reason %q", reason)
			return
		}
		require.NoError(t, fc.Validate(forecastCfg.Min, forecastCfg.Max))
	})
}
