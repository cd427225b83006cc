package daemon

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchd/switchd/config"
)

// TestEmbeddedIdentity reserves the configured client ID with a fresh
// random password on each start.
func TestEmbeddedIdentity(t *testing.T) {
	mq, bo := embeddedIdentity(config.MQTTConfig{ClientID: "switchd-e2e"})
	require.Equal(t, "switchd-e2e", bo.ReservedClientID)
	require.Equal(t, "switchd-e2e", mq.ClientID)
	require.Len(t, mq.Password, 32)
	require.Equal(t, mq.Password, bo.ReservedPassword)
	require.NotEmpty(t, mq.Username, "MQTT 3.1.1 sends a password only with a user name")
	mq2, _ := embeddedIdentity(config.MQTTConfig{ClientID: "switchd-e2e"})
	require.NotEqual(t, mq.Password, mq2.Password)

	mq3, bo3 := embeddedIdentity(config.MQTTConfig{})
	require.NotEmpty(t, mq3.ClientID)
	require.Equal(t, mq3.ClientID, bo3.ReservedClientID)
}

// TestOwnsEmbedded tells switchd's connection to its own embedded broker
// (whose identity it reserves) from a connection to another broker.
func TestOwnsEmbedded(t *testing.T) {
	for _, tc := range []struct {
		mq   config.MQTTConfig
		want bool
	}{
		{config.MQTTConfig{Embedded: "127.0.0.1:1883", Broker: "tcp://127.0.0.1:1883"}, true},
		{config.MQTTConfig{Embedded: "127.0.0.1:0"}, true},
		{config.MQTTConfig{Embedded: "0.0.0.0:1883", Broker: "tcp://127.0.0.1:1883"}, true},
		{config.MQTTConfig{Embedded: "127.0.0.1:1883", Broker: "ssl://mqtt.example.com:8883"}, false},
		{config.MQTTConfig{Broker: "tcp://127.0.0.1:1883"}, false},
	} {
		require.Equal(t, tc.want, ownsEmbedded(tc.mq), "%+v", tc.mq)
	}
}
