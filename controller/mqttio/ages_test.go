package mqttio

import (
	"context"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/internal/mqtttest"
)

// TestRetainedAgesMosquitto subscribes to retained messages left on a real
// Mosquitto, as after a restart of switchd: a bare number, which carries no
// time, arrives already stale (older than max_age) instead of fresh; a
// timestamped one keeps its own time; a live bare number is fresh.
func TestRetainedAgesMosquitto(t *testing.T) {
	mqtttest.CheckNoLeaks(t)
	m := mqtttest.Start(t)
	now := time.Date(2024, 8, 20, 19, 30, 0, 0, time.UTC)
	maxAge := testSignals("x")[switchd.SignalPrice].MaxAge

	m.Pub("dc1/signals/price", "42", "-r")
	m.Pub("dc1/signals/grid_load", `{"ts":"2024-08-20T19:29:18Z","value":71000}`, "-r")

	r := &recorder{}
	s := newTestSource(t, config.MQTTConfig{Broker: "tcp://" + m.Addr(), ClientID: "switchd-ages"}, "dc1/signals", &fakeClock{t: now}, r)
	require.Eventually(t, s.Connected, waitMax, 5*time.Millisecond)
	got := bySignal(r.waitSamples(t, 2))
	require.Len(t, got[switchd.SignalPrice], 1)
	price := got[switchd.SignalPrice][0]
	require.Equal(t, 42.0, price.Value, "the retained bare number is shown")
	require.Greater(t, now.Sub(price.Time), maxAge, "a retained bare number is stale on arrival, not %v old", now.Sub(price.Time))
	require.Equal(t, now.Add(-42*time.Second), got[switchd.SignalGridLoad][0].Time, "a timestamped retained value keeps its age")

	// A live bare number is stamped with its arrival and replaces the stale one.
	m.Pub("dc1/signals/price", "55")
	all := r.waitSamples(t, 3)
	require.Equal(t, switchd.Sample{Time: now, Signal: switchd.SignalPrice, Value: 55}, all[2])
	require.Empty(t, r.Rejects())
}

// TestFutureStampDoesNotBlock sends a price stamped 20 s ahead (inside
// max_future), then a real spike stamped with the current time: the first
// is clamped to its arrival, so the spike is accepted at once instead of
// being refused as out of order until the clock passes the false stamp.
func TestFutureStampDoesNotBlock(t *testing.T) {
	mqtttest.CheckNoLeaks(t)
	b := startTestBroker(t)
	now := time.Date(2024, 8, 20, 19, 30, 0, 0, time.UTC)
	clock := &fakeClock{t: now}
	r := &recorder{}
	s := newTestSource(t, config.MQTTConfig{Embedded: b.Addr()}, "site/signals", clock, r)
	require.Eventually(t, s.Connected, waitMax, 5*time.Millisecond)
	p := newTestPublisher(t, b.Addr())
	ctx := context.Background()

	require.NoError(t, p.Publish(ctx, "site/signals/price", []byte(`{"ts":"2024-08-20T19:30:20Z","value":30}`)))
	got := r.waitSamples(t, 1)
	require.Equal(t, switchd.Sample{Time: now, Signal: switchd.SignalPrice, Value: 30}, got[0], "clamped to arrival")

	clock.Set(now.Add(time.Second))
	require.NoError(t, p.Publish(ctx, "site/signals/price", []byte(`{"ts":"2024-08-20T19:30:01Z","value":400}`)))
	got = r.waitSamples(t, 2)
	require.Equal(t, switchd.Sample{Time: now.Add(time.Second), Signal: switchd.SignalPrice, Value: 400}, got[1])
	require.Empty(t, r.Rejects())
}

// TestBrokerReservesClientID connects switchd's source to the embedded
// broker with its reserved client ID, then another client with the same
// ID: the intruder is refused and switchd stays connected (before, mochi
// took the session over and knocked switchd off).
func TestBrokerReservesClientID(t *testing.T) {
	mqtttest.CheckNoLeaks(t)
	b, err := StartBrokerWith("127.0.0.1:0", zaptest.NewLogger(t), BrokerOptions{
		ReservedClientID: "switchd-site", ReservedPassword: "s3cret",
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })

	r := &recorder{}
	s := newTestSource(t, config.MQTTConfig{Embedded: b.Addr(), ClientID: "switchd-site", Username: "switchd", Password: "s3cret"}, "site/signals", nil, r)
	require.Eventually(t, s.Connected, waitMax, 5*time.Millisecond)

	for _, pw := range []string{"", "wrong"} {
		co := mqtt.NewClientOptions().AddBroker("tcp://" + b.Addr()).SetClientID("switchd-site").
			SetUsername("switchd").SetPassword(pw).SetConnectRetry(false).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
		c := mqtt.NewClient(co)
		tk := c.Connect()
		require.True(t, tk.WaitTimeout(waitMax))
		require.Error(t, tk.Error(), "a client taking switchd's ID with password %q is refused", pw)
		c.Disconnect(0)
	}
	// Other IDs are still let in.
	other := newTestPublisher(t, b.Addr())
	require.NoError(t, other.Publish(context.Background(), "site/signals/price", []byte("40")))
	r.waitSamples(t, 1)
	require.True(t, s.Connected())
	require.Equal(t, []bool{true}, r.Conns(), "switchd was never disconnected")
}

// TestRetainedUntimed dates a retained bare number just past max_age, and
// keeps the arrival for a signal that is never stale.
func TestRetainedUntimed(t *testing.T) {
	now := time.Date(2024, 8, 20, 19, 30, 0, 0, time.UTC)
	require.Equal(t, now.Add(-90*time.Second-time.Nanosecond), RetainedUntimed(now, 90*time.Second))
	require.Equal(t, now, RetainedUntimed(now, 0))
	require.True(t, HasTimestamp([]byte(` {"ts":"x"}`)))
	require.False(t, HasTimestamp([]byte(" 42")))
	require.Equal(t, now, ClampFuture(now.Add(time.Second), now))
	require.Equal(t, now.Add(-time.Second), ClampFuture(now.Add(-time.Second), now))
}
