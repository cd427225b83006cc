package mqttio

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/internal/mqtttest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestSourceReportsUnreachableBroker checks that a broker that cannot be
// reached shows in the log (with the reason, on a doubling schedule, not
// once per attempt) and in Status, and that the reconnection closes the
// story in one line.
func TestSourceReportsUnreachableBroker(t *testing.T) {
	port := mqtttest.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	core, logs := observer.New(zap.InfoLevel)
	r := &recorder{}
	s, err := NewSource(SourceOptions{
		MQTT: config.MQTTConfig{Broker: "tcp://" + addr}, Signals: testSignals("dc1/signals"),
		Logger: zap.New(core), OnSample: r.sample, OnConnection: r.connection,
	})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	const first = 100 * time.Millisecond
	s.health.nextLog = first
	start := time.Now()
	require.NoError(t, s.Start(context.Background()))

	unreachable := func() []observer.LoggedEntry {
		return logs.FilterMessageSnippet("mqtt broker unreachable").AllUntimed()
	}
	require.Eventually(t, func() bool { return len(unreachable()) >= 3 }, 10*time.Second, 20*time.Millisecond)
	e := unreachable()[0]
	require.Contains(t, e.ContextMap()["reason"], "connection refused")
	require.Equal(t, "tcp://"+addr, e.ContextMap()["broker"])
	for _, k := range []string{"down_for", "next_report_in"} {
		d, ok := e.ContextMap()[k].(time.Duration)
		require.True(t, ok, k)
		require.Zero(t, d%time.Second, "%s logged in whole seconds, not %v", k, d)
		require.GreaterOrEqual(t, d, time.Duration(0), k)
	}
	st := s.Status()
	require.False(t, st.Connected)
	require.Contains(t, st.LastError, "connection refused")

	// Doubling: after time T down, at most log2(T/first)+1 lines, however
	// many attempts paho made.
	elapsed := time.Since(start)
	n := len(unreachable())
	bound := 1
	for d := first; d <= elapsed; d *= 2 {
		bound++
	}
	require.LessOrEqual(t, n, bound, "%d lines in %v", n, elapsed)

	b, err := StartBroker(addr, zap.NewNop())
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	require.Eventually(t, s.Connected, 20*time.Second, 20*time.Millisecond)
	st = s.Status()
	require.True(t, st.Connected)
	require.Empty(t, st.LastError)
	conn := logs.FilterMessage("mqtt connected").AllUntimed()
	require.Len(t, conn, 1)
	require.Contains(t, conn[0].ContextMap(), "was_down_for")
	require.True(t, strings.HasPrefix(st.Broker, "tcp://"))
	s.Close() // before the broker: mochi's Close races a connection being established
}
