package mqttio

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/internal/mqtttest"
)

func TestNewSourceErrors(t *testing.T) {
	valid := testSignals("site")
	tests := []struct {
		name   string
		mutate func(o *SourceOptions)
		want   string
	}{
		{name: "no broker", mutate: func(o *SourceOptions) { o.MQTT = config.MQTTConfig{} }, want: "no broker"},
		{name: "broker without scheme", mutate: func(o *SourceOptions) { o.MQTT.Broker = "127.0.0.1:1883" }, want: "want a URL"},
		{name: "broker bad scheme", mutate: func(o *SourceOptions) { o.MQTT.Broker = "http://127.0.0.1:1883" }, want: "unsupported scheme"},
		{name: "tls files on tcp", mutate: func(o *SourceOptions) { o.MQTT.CAFile = "ca.pem" }, want: "not tls"},
		{name: "missing ca file", mutate: func(o *SourceOptions) {
			o.MQTT.Broker, o.MQTT.CAFile = "ssl://127.0.0.1:8883", "/nonexistent/ca.pem"
		}, want: "ca file"},
		{name: "cert without key", mutate: func(o *SourceOptions) {
			o.MQTT.Broker, o.MQTT.CertFile = "ssl://127.0.0.1:8883", "/nonexistent/cert.pem"
		}, want: "both cert file and key file"},
		{name: "wildcard topic", mutate: func(o *SourceOptions) { o.Signals[switchd.SignalPrice].Topic = "site/+/price" }, want: "signal price: topic"},
		{name: "duplicate topic", mutate: func(o *SourceOptions) {
			o.Signals[switchd.SignalGridLoad].Topic = o.Signals[switchd.SignalPrice].Topic
		}, want: "already the topic of price"},
		{name: "min above max", mutate: func(o *SourceOptions) { o.Signals[switchd.SignalHashprice].Min = 2e6 }, want: "signal hashprice: bad plausible range"},
		{name: "negative max future", mutate: func(o *SourceOptions) { o.Signals[switchd.SignalAIDemand].MaxFuture = -time.Second }, want: "negative max future"},
		{name: "no callback", mutate: func(o *SourceOptions) { o.OnSample = nil }, want: "no OnSample callback"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := SourceOptions{
				MQTT:     config.MQTTConfig{Broker: "tcp://127.0.0.1:1883"},
				Signals:  valid,
				OnSample: func(switchd.Sample) {},
			}
			tt.mutate(&o)
			_, err := NewSource(o)
			require.ErrorContains(t, err, tt.want)
			require.ErrorContains(t, err, "mqtt source: ")
		})
	}
	t.Run("embedded default and no topics", func(t *testing.T) {
		s, err := NewSource(SourceOptions{MQTT: config.MQTTConfig{Embedded: "127.0.0.1:1883"}})
		require.NoError(t, err)
		s.Close() // without Start
		require.False(t, s.Connected())
		require.ErrorContains(t, s.Start(context.Background()), "start after close")
	})
}

// TestSourceEmbedded sends good and bad payloads through the embedded
// broker, published by the Publisher.
func TestSourceEmbedded(t *testing.T) {
	mqtttest.CheckNoLeaks(t)
	b := startTestBroker(t)
	now := time.Date(2024, 8, 20, 19, 30, 0, 0, time.UTC)
	clock := &fakeClock{t: now}
	r := &recorder{}
	s := newTestSource(t, config.MQTTConfig{Embedded: b.Addr()}, "site/signals", clock, r)
	require.Eventually(t, s.Connected, waitMax, 5*time.Millisecond)
	require.Equal(t, []bool{true}, r.Conns())
	p := newTestPublisher(t, b.Addr())

	ctx := context.Background()
	pub := func(sig switchd.Signal, payload string) {
		t.Helper()
		require.NoError(t, p.Publish(ctx, "site/signals/"+sig.String(), []byte(payload)))
	}
	pub(switchd.SignalPrice, `{"ts":"2024-08-20T19:29:00Z","value":55.5}`)
	pub(switchd.SignalGridLoad, "71234")
	got := r.waitSamples(t, 2)
	require.ElementsMatch(t, []switchd.Sample{
		{Time: now.Add(-time.Minute), Signal: switchd.SignalPrice, Value: 55.5},
		{Time: now, Signal: switchd.SignalGridLoad, Value: 71234},
	}, got)

	// Each bad payload after the previous one was counted, so the order of
	// rejections is known.
	bad := []struct {
		sig     switchd.Signal
		payload string
		reason  string
	}{
		{switchd.SignalPrice, "{broken", ReasonMalformed},
		{switchd.SignalPrice, `{"ts":"2024-08-20T19:29:30Z","value":"high"}`, ReasonNotANumber},
		{switchd.SignalPrice, "NaN", ReasonNonFinite},
		{switchd.SignalPrice, "20000", ReasonOutOfRange},
		{switchd.SignalPrice, `{"ts":"2024-08-20T19:40:00Z","value":50}`, ReasonFuture},
		{switchd.SignalPrice, `{"ts":"2024-08-20T19:28:00Z","value":50}`, ReasonOutOfOrder},
		{switchd.SignalAIDemand, "-1", ReasonOutOfRange},
	}
	for i, c := range bad {
		pub(c.sig, c.payload)
		rej := r.waitRejects(t, i+1)
		require.Equal(t, rejection{c.sig, c.reason}, rej[i], "payload %q", c.payload)
	}
	require.Len(t, r.Samples(), 2, "no bad payload was accepted")

	// The source keeps receiving after rejections.
	pub(switchd.SignalPrice, `{"ts":"2024-08-20T19:30:00Z","value":61}`)
	got = r.waitSamples(t, 3)
	require.Equal(t, switchd.Sample{Time: now, Signal: switchd.SignalPrice, Value: 61}, got[2])

	s.Close()
	require.False(t, s.Connected())
	pub(switchd.SignalPrice, "62")
	// Nothing is delivered after Close; give a stray delivery time to show.
	require.Never(t, func() bool { return len(r.Samples()) > 3 }, 200*time.Millisecond, 10*time.Millisecond)
}

// TestSourcePublish publishes retained state through the source's
// connection and reads it back with a separate client.
func TestSourcePublish(t *testing.T) {
	mqtttest.CheckNoLeaks(t)
	b := startTestBroker(t)
	r := &recorder{}
	s := newTestSource(t, config.MQTTConfig{Broker: "tcp://" + b.Addr(), ClientID: "switchd-test"}, "site/signals", nil, r)
	require.Eventually(t, s.Connected, waitMax, 5*time.Millisecond)
	require.NoError(t, s.Publish("site/state", []byte(`{"mode":"mining"}`), true))
	require.ErrorContains(t, s.Publish("site/#", nil, false), "wildcards")

	// A client subscribing afterwards gets the retained state.
	got := make(chan string, 1)
	o := mqtt.NewClientOptions().AddBroker("tcp://" + b.Addr()).SetClientID("reader")
	c := mqtt.NewClient(o)
	tk := c.Connect()
	require.True(t, tk.WaitTimeout(waitMax))
	require.NoError(t, tk.Error())
	defer c.Disconnect(100)
	tk = c.Subscribe("site/state", 1, func(_ mqtt.Client, m mqtt.Message) {
		select {
		case got <- string(m.Payload()) + " retained=" + map[bool]string{true: "yes", false: "no"}[m.Retained()]:
		default:
		}
	})
	require.True(t, tk.WaitTimeout(waitMax))
	require.NoError(t, tk.Error())
	select {
	case msg := <-got:
		require.Equal(t, `{"mode":"mining"} retained=yes`, msg)
	case <-time.After(waitMax):
		t.Fatal("retained state not received")
	}
}

func TestSourcePublishDisconnected(t *testing.T) {
	s, err := NewSource(SourceOptions{MQTT: config.MQTTConfig{Broker: "tcp://127.0.0.1:1"}})
	require.NoError(t, err)
	defer s.Close()
	require.ErrorIs(t, s.Publish("site/state", []byte("x"), true), mqtt.ErrNotConnected)
}

// TestSourceRejectLogRateLimit feeds messages straight to the handler: at
// most one log line per signal per 10 s, the next one counting the
// suppressed.
func TestSourceRejectLogRateLimit(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	start := time.Date(2024, 8, 20, 19, 30, 0, 0, time.UTC)
	clock := &fakeClock{t: start}
	var rejects atomic.Int64
	var unknown atomic.Int64
	s, err := NewSource(SourceOptions{
		MQTT:     config.MQTTConfig{Broker: "tcp://127.0.0.1:1"},
		Signals:  testSignals("site"),
		Clock:    clock,
		Logger:   zap.New(core),
		OnSample: func(switchd.Sample) {},
		OnReject: func(sig switchd.Signal, reason string) {
			rejects.Add(1)
			if sig == NoSignal && reason == ReasonUnknownTopic {
				unknown.Add(1)
			}
		},
	})
	require.NoError(t, err)
	defer s.Close()

	for range 5 {
		s.handle("site/price", []byte("garbage"))
	}
	s.handle("site/grid_load", []byte("-1")) // another signal has its own limit
	clock.Set(start.Add(9 * time.Second))
	s.handle("site/price", []byte("garbage"))
	clock.Set(start.Add(10 * time.Second))
	s.handle("site/price", []byte("NaN"))
	s.handle("other/topic", []byte("1"))

	require.EqualValues(t, 9, rejects.Load(), "every rejection is counted")
	require.EqualValues(t, 1, unknown.Load())
	entries := logs.All()
	require.Len(t, entries, 4)
	type line struct {
		signal, reason string
		suppressed     int64
	}
	var lines []line
	for _, e := range entries {
		require.Equal(t, "signal payload rejected", e.Message)
		f := e.ContextMap()
		lines = append(lines, line{f["signal"].(string), f["reason"].(string), f["suppressed"].(int64)})
	}
	require.Equal(t, []line{
		{"price", ReasonNotANumber, 0},
		{"grid_load", ReasonOutOfRange, 0},
		{"price", ReasonNonFinite, 5}, // 4 in the first second, 1 at 9 s
		{"unknown", ReasonUnknownTopic, 0},
	}, lines)
}

// denyHook lets everyone connect but only read topics ending in "/price".
type denyHook struct{ auth.AllowHook }

func (h *denyHook) OnACLCheck(_ *mochi.Client, topic string, write bool) bool {
	return write || strings.HasSuffix(topic, "/price")
}

// TestSourceSubscriptionRefused runs a broker whose ACL lets the source
// read only the price topic: each refusal is logged as an error and the
// source does not report itself connected, so readiness shows it.
func TestSourceSubscriptionRefused(t *testing.T) {
	mqtttest.CheckNoLeaks(t)
	server := mochi.New(&mochi.Options{Logger: slog.New(&zapHandler{log: zaptest.NewLogger(t)})})
	require.NoError(t, server.AddHook(new(denyHook), nil))
	tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: "127.0.0.1:0"})
	require.NoError(t, server.AddListener(tcp))
	require.NoError(t, server.Serve())
	t.Cleanup(func() { require.NoError(t, server.Close()) })

	core, logs := observer.New(zapcore.ErrorLevel)
	r := &recorder{}
	s, err := NewSource(SourceOptions{
		MQTT:         config.MQTTConfig{Broker: "tcp://" + tcp.Address()},
		Signals:      testSignals("dc1/signals"),
		Logger:       zap.New(core),
		OnSample:     r.sample,
		OnConnection: r.connection,
	})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	require.NoError(t, s.Start(context.Background()))
	refusals := func() *observer.ObservedLogs { return logs.FilterMessage("subscription refused by broker") }
	require.Eventually(t, func() bool { return refusals().Len() == 5 }, waitMax, 5*time.Millisecond)
	var refused []string
	for _, e := range refusals().All() {
		refused = append(refused, e.ContextMap()["signal"].(string))
	}
	require.ElementsMatch(t, []string{"grid_load", "hashprice", "inference_price", "ai_demand", "cp_alert"}, refused)
	require.False(t, s.Connected())
	require.Empty(t, r.Conns())
}
