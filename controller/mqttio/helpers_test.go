package mqttio

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/dr"
)

// waitMax bounds every wait on the network in these tests.
const waitMax = 15 * time.Second

// fakeClock is a settable Clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// rejection is one OnReject call.
type rejection struct {
	Signal switchd.Signal
	Reason string
}

// recorder collects what a Source reports.
type recorder struct {
	mu        sync.Mutex
	samples   []switchd.Sample
	rejects   []rejection
	conns     []bool
	drEvents  []dr.Event
	drRejects []string
}

func (r *recorder) dr(ev dr.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.drEvents = append(r.drEvents, ev)
}

func (r *recorder) drReject(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.drRejects = append(r.drRejects, reason)
}

// DR returns the demand-response events and rejection reasons so far.
func (r *recorder) DR() ([]dr.Event, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]dr.Event(nil), r.drEvents...), append([]string(nil), r.drRejects...)
}

func (r *recorder) sample(s switchd.Sample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples = append(r.samples, s)
}

func (r *recorder) reject(sig switchd.Signal, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rejects = append(r.rejects, rejection{sig, reason})
}

func (r *recorder) connection(up bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.conns = append(r.conns, up)
}

func (r *recorder) Samples() []switchd.Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]switchd.Sample(nil), r.samples...)
}

func (r *recorder) Rejects() []rejection {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]rejection(nil), r.rejects...)
}

func (r *recorder) Conns() []bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bool(nil), r.conns...)
}

// waitSamples waits until n samples arrived and returns them.
func (r *recorder) waitSamples(t *testing.T, n int) []switchd.Sample {
	t.Helper()
	require.Eventually(t, func() bool { return len(r.Samples()) >= n }, waitMax, 5*time.Millisecond,
		"want %d samples", n)
	return r.Samples()
}

// waitRejects waits until n rejections arrived and returns them.
func (r *recorder) waitRejects(t *testing.T, n int) []rejection {
	t.Helper()
	require.Eventually(t, func() bool { return len(r.Rejects()) >= n }, waitMax, 5*time.Millisecond,
		"want %d rejections", n)
	return r.Rejects()
}

// testSignals returns signal settings with topics under prefix: price in
// [-1000, 10000] USD/MWh, grid load in [0, 200000] MW, one minute of
// tolerated clock skew.
func testSignals(prefix string) [switchd.NumSignals]config.SignalConfig {
	var cfg [switchd.NumSignals]config.SignalConfig
	for _, sig := range switchd.AllSignals {
		cfg[sig] = config.SignalConfig{
			Topic:     prefix + "/" + sig.String(),
			MaxAge:    15 * time.Minute,
			Min:       0,
			Max:       1e6,
			MaxFuture: time.Minute,
		}
	}
	cfg[switchd.SignalPrice].Min, cfg[switchd.SignalPrice].Max = -1000, 10000
	cfg[switchd.SignalGridLoad].Max = 200000
	return cfg
}

// newTestSource builds and starts a Source reporting to r, closed at
// cleanup.
func newTestSource(t *testing.T, mc config.MQTTConfig, prefix string, clock switchd.Clock, r *recorder) *Source {
	t.Helper()
	s, err := NewSource(SourceOptions{
		MQTT:         mc,
		Signals:      testSignals(prefix),
		Clock:        clock,
		Logger:       zaptest.NewLogger(t),
		OnSample:     r.sample,
		OnReject:     r.reject,
		OnConnection: r.connection,
	})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	require.NoError(t, s.Start(context.Background()))
	return s
}

// startTestBroker starts an embedded broker on a free loopback port.
func startTestBroker(t *testing.T) *Broker {
	t.Helper()
	b, err := StartBroker("127.0.0.1:0", zaptest.NewLogger(t))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	return b
}

// newTestPublisher connects a Publisher to addr, closed at cleanup.
func newTestPublisher(t *testing.T, addr string) *Publisher {
	t.Helper()
	p, err := NewPublisher(config.MQTTConfig{Broker: "tcp://" + addr, ClientID: "test"})
	require.NoError(t, err)
	t.Cleanup(p.Close)
	ctx, cancel := context.WithTimeout(context.Background(), waitMax)
	defer cancel()
	require.NoError(t, p.Start(ctx))
	return p
}
