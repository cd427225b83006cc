package daemon

import (
	"crypto/rand"
	"encoding/hex"

	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/controller/mqttio"
)

// embeddedIdentity returns the MQTT settings with which switchd connects to
// its embedded broker, and the broker options that reserve that identity.
// The client ID (the configured one, which defaults to "switchd-<site>",
// so anyone can guess it) is reserved with a random password made at each
// start: another client taking the ID would disconnect switchd and make it
// resubscribe, and the embedded broker has no other authentication.
func embeddedIdentity(mq config.MQTTConfig) (config.MQTTConfig, mqttio.BrokerOptions) {
	if mq.ClientID == "" {
		mq.ClientID = "switchd-" + randomHex(4)
	}
	if mq.Username == "" {
		// MQTT 3.1.1 sends a password only with a user name.
		mq.Username = mq.ClientID
	}
	mq.Password = randomHex(16)
	return mq, mqttio.BrokerOptions{ReservedClientID: mq.ClientID, ReservedPassword: mq.Password}
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}
