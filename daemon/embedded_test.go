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
