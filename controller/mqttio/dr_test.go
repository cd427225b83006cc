package mqttio

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/dr"
	"github.com/switchd/switchd/internal/mqtttest"
)

// TestSourceDRMosquitto: events published with mosquitto_pub through a real
// Mosquitto reach OnDR; malformed ones are rejected with a reason and the
// source keeps receiving.
func TestSourceDRMosquitto(t *testing.T) {
	mqtttest.CheckNoLeaks(t)
	m := mqtttest.Start(t)
	r := &recorder{}
	s, err := NewSource(SourceOptions{
		MQTT:       config.MQTTConfig{Broker: "tcp://" + m.Addr(), ClientID: "switchd-dr"},
		Signals:    testSignals("dc1/signals"),
		Logger:     zaptest.NewLogger(t),
		OnSample:   r.sample,
		OnReject:   r.reject,
		DRTopic:    "dc1/signals/dr",
		OnDR:       r.dr,
		OnDRReject: r.drReject,
	})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	require.NoError(t, s.Start(context.Background()))
	require.Eventually(t, s.Connected, waitMax, 5*time.Millisecond)

	ev := `{"id":"ers-1","program":"ers","target_kw":900,"notice":"2024-08-20T14:00:00Z","start":"2024-08-20T14:30:00Z","end":"2024-08-20T15:30:00Z"}`
	m.Pub("dc1/signals/dr", "not json")
	m.Pub("dc1/signals/dr", strings.Replace(ev, `"target_kw":900`, `"target_kw":900,"shed_kw":1`, 1))
	m.Pub("dc1/signals/dr", strings.Repeat("x", dr.MaxPayloadBytes+1))
	m.Pub("dc1/signals/dr", ev)
	m.Pub("dc1/signals/price", "40")
	r.waitSamples(t, 1)
	require.Eventually(t, func() bool {
		events, reasons := r.DR()
		return len(events) == 1 && len(reasons) == 3
	}, waitMax, 5*time.Millisecond)
	events, reasons := r.DR()
	require.Equal(t, []string{dr.ReasonSyntax, dr.ReasonInvalid, dr.ReasonTooLarge}, reasons)
	require.Equal(t, "ers-1", events[0].ID)
	require.Equal(t, 900.0, *events[0].TargetKW)
	require.Empty(t, r.Rejects(), "nothing counted against a signal")
}

func TestSourceDROptions(t *testing.T) {
	_, err := NewSource(SourceOptions{MQTT: config.MQTTConfig{Broker: "tcp://127.0.0.1:1"}, DRTopic: "a/dr"})
	require.ErrorContains(t, err, "demand response: no OnDR callback")
	sigs := testSignals("a")
	_, err = NewSource(SourceOptions{MQTT: config.MQTTConfig{Broker: "tcp://127.0.0.1:1"}, Signals: sigs, OnSample: func(switchd.Sample) {}, DRTopic: "a/price", OnDR: func(dr.Event) {}})
	require.ErrorContains(t, err, `demand response: topic "a/price" is already the topic of price`)
}
