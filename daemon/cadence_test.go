package daemon

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestCadenceWatch(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	log := zap.New(core)
	var maxAge [switchd.NumSignals]time.Duration
	maxAge[switchd.SignalPrice] = 30 * time.Minute
	var c cadenceWatch
	t0 := time.Date(2024, 8, 20, 0, 0, 0, 0, time.UTC)
	feed := func(offsets ...time.Duration) {
		for _, o := range offsets {
			c.observe(switchd.Sample{Signal: switchd.SignalPrice, Time: t0.Add(o), Value: 20}, &maxAge, log)
		}
	}
	// 15-minute samples with one outage of an hour: no warning.
	feed(0, 15*time.Minute, 30*time.Minute, 90*time.Minute, 105*time.Minute, 105*time.Minute)
	require.Zero(t, logs.Len())
	// Then hourly: a warning, once.
	feed(165*time.Minute, 225*time.Minute, 285*time.Minute, 345*time.Minute)
	require.Equal(t, 1, logs.Len())
	e := logs.All()[0]
	require.Equal(t, "signal cadence exceeds max_age", e.Message)
	require.Equal(t, "price", e.ContextMap()["signal"])
	require.Equal(t, time.Hour, e.ContextMap()["interval"])
}
