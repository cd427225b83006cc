package daemon

import (
	"crypto/rand"
	"encoding/hex"

	"github.com/switchd/switchd"

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
	mq.Password, mq.PasswordFile = randomHex(16), ""
	return mq, mqttio.BrokerOptions{ReservedClientID: mq.ClientID, ReservedUsername: mq.Username, ReservedPassword: mq.Password}
}

// ownsEmbedded reports whether switchd connects to the broker it embeds:
// no broker URL given (port 0: the daemon fills it), or the one the site
// file defaults to from the embedded address.
func ownsEmbedded(mq config.MQTTConfig) bool {
	return mq.Embedded != "" && (mq.Broker == "" || mq.Broker == "tcp://"+config.DialAddr(mq.Embedded))
}

// embeddedAuth fills the embedded broker's authentication from the site:
// the password file, anonymous access, and each user's rights as topics
// (the topics of the inputs it may publish, the state topic it may read).
func embeddedAuth(bo *mqttio.BrokerOptions, site *config.Site) {
	mq := site.Daemon.MQTT
	bo.PasswordFile, bo.AllowAnonymous = mq.UsersFile, mq.AllowAnonymous
	if len(mq.ACL) == 0 {
		return
	}
	bo.Accounts = make(map[string]mqttio.Account, len(mq.ACL))
	for user, acl := range mq.ACL {
		var a mqttio.Account
		for _, name := range acl.Publish {
			if name == config.ForecastKey {
				a.Publish = append(a.Publish, site.Daemon.Forecast.Topic)
				continue
			}
			if sig, err := switchd.ParseSignal(name); err == nil {
				a.Publish = append(a.Publish, site.Daemon.Signals[sig].Topic)
			}
		}
		if acl.ReadState {
			a.Read = []string{mq.StateTopic}
		}
		bo.Accounts[user] = a
	}
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}
