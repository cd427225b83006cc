package mqttio

import (
	"bytes"
	"context"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/internal/mqtttest"
)

// ingestMessages is how many messages one iteration of BenchmarkIngest
// sends: enough for a steady rate, few enough to finish in seconds.
const ingestMessages = 50_000

// ingestWindow is how many messages may be on their way to the source.
const ingestWindow = 4000

// BenchmarkIngest publishes JSON signal messages (QoS 1, timestamps
// increasing) through a broker to a Source and reports the rate of accepted
// messages, from the first publish to the last message handled, and the
// share rejected as out of order (0 while messages are handled in the order
// they arrive; see clientOptions).
//
//   - embedded: the Publisher's paho client, in this process, publishes
//     round-robin over the five signals with at most ingestWindow messages
//     in transit, since the embedded broker drops QoS 1 messages for a
//     subscriber more than 8192 behind;
//   - mosquitto: mosquitto_pub -l, in its own process as a real producer
//     would be, publishes every message on one topic; Mosquitto's per-client
//     queue and in-flight limits are lifted so none is dropped.
func BenchmarkIngest(b *testing.B) {
	b.Run("embedded", func(b *testing.B) {
		br, err := StartBroker("127.0.0.1:0", zap.NewNop())
		require.NoError(b, err)
		defer func() { require.NoError(b, br.Close()) }()
		p, err := NewPublisher(config.MQTTConfig{Broker: "tcp://" + br.Addr()})
		require.NoError(b, err)
		defer p.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		require.NoError(b, p.Start(ctx))
		benchmarkIngest(b, br.Addr(), func(payloads [][]byte, handled func() int64) {
			tokens := make([]mqtt.Token, 0, 500)
			for i, payload := range payloads {
				for int64(i)-handled() > ingestWindow {
					time.Sleep(20 * time.Microsecond)
				}
				topic := "bench/" + switchd.AllSignals[i%switchd.NumSignals].String()
				tokens = append(tokens, p.client.Publish(topic, 1, false, payload))
				// Acknowledgements are awaited in batches: no round trip
				// per message, and a bounded number of tokens.
				if len(tokens) == cap(tokens) {
					require.NoError(b, waitTokens(ctx, tokens...))
					tokens = tokens[:0]
				}
			}
			require.NoError(b, waitTokens(ctx, tokens...))
		})
	})
	b.Run("mosquitto", func(b *testing.B) {
		pub := mqtttest.RequireTool(b, "mosquitto_pub")
		m := mqtttest.Start(b, "max_queued_messages 0", "max_inflight_messages 0")
		benchmarkIngest(b, m.Addr(), func(payloads [][]byte, _ func() int64) {
			lines := bytes.Join(payloads, []byte("\n"))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, pub, "-h", "127.0.0.1", "-p", strconv.Itoa(m.Port()), "-q", "1", "-t", "bench/price", "-l")
			cmd.Stdin = bytes.NewReader(lines)
			out, err := cmd.CombinedOutput()
			require.NoError(b, err, "mosquitto_pub: %s", out)
		})
	})
}

// benchmarkIngest runs a Source against the broker at addr and, per
// iteration, has publish send ingestMessages payloads and waits until the
// source has handled them all.
func benchmarkIngest(b *testing.B, addr string, publish func(payloads [][]byte, handled func() int64)) {
	var accepted, rejected atomic.Int64
	handled := func() int64 { return accepted.Load() + rejected.Load() }
	ts := time.Date(2024, 8, 20, 0, 0, 0, 0, time.UTC)
	s, err := NewSource(SourceOptions{
		MQTT:     config.MQTTConfig{Broker: "tcp://" + addr},
		Signals:  testSignals("bench"),
		Clock:    &fakeClock{t: ts.Add(365 * 24 * time.Hour)},
		Logger:   zap.NewNop(),
		OnSample: func(switchd.Sample) { accepted.Add(1) },
		OnReject: func(switchd.Signal, string) { rejected.Add(1) },
	})
	require.NoError(b, err)
	defer s.Close()
	require.NoError(b, s.Start(context.Background()))
	require.Eventually(b, s.Connected, waitMax, 5*time.Millisecond)

	var elapsed time.Duration
	var totalAccepted, totalRejected int64
	payloads := make([][]byte, ingestMessages)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		for i := range payloads {
			ts = ts.Add(time.Millisecond)
			payloads[i] = appendPayload(payloads[i][:0], ts, float64(i%1000))
		}
		accepted.Store(0)
		rejected.Store(0)
		b.StartTimer()
		start := time.Now()
		publish(payloads, handled)
		require.Eventually(b, func() bool { return handled() >= ingestMessages }, time.Minute, time.Millisecond,
			"handled %d+%d of %d", accepted.Load(), rejected.Load(), ingestMessages)
		elapsed += time.Since(start)
		totalAccepted += accepted.Load()
		totalRejected += rejected.Load()
	}
	b.StopTimer()
	b.ReportMetric(float64(totalAccepted)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(100*float64(totalRejected)/float64(totalAccepted+totalRejected), "pct_out_of_order")
	b.ReportMetric(0, "ns/op") // an op is a batch of ingestMessages; msgs/s says it
}

// BenchmarkHandle measures the source's own work per message (parse, check,
// deliver), without the network.
func BenchmarkHandle(b *testing.B) {
	var accepted atomic.Int64
	start := time.Date(2024, 8, 20, 0, 0, 0, 0, time.UTC)
	s, err := NewSource(SourceOptions{
		MQTT:     config.MQTTConfig{Broker: "tcp://127.0.0.1:1"},
		Signals:  testSignals("bench"),
		Clock:    &fakeClock{t: start.Add(365 * 24 * time.Hour)},
		Logger:   zap.NewNop(),
		OnSample: func(switchd.Sample) { accepted.Add(1) },
	})
	require.NoError(b, err)
	defer s.Close()
	payloads := make([][]byte, 1000)
	for i := range payloads {
		payloads[i] = appendPayload(nil, start.Add(time.Duration(i)*time.Second), 40+float64(i)/8)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%len(payloads) == 0 {
			s.mu.Lock()
			s.last = [switchd.NumSignals]time.Time{} // start the timestamps over
			s.mu.Unlock()
		}
		s.handle("bench/price", payloads[i%len(payloads)])
	}
	require.Equal(b, int64(b.N), accepted.Load())
}
