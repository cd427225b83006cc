package daemon_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"
)

// newStateReader subscribes to a (retained) topic with the real paho client
// and returns a function giving the last payload received.
func newStateReader(t *testing.T, broker, topic string) func() string {
	t.Helper()
	var mu sync.Mutex
	last := ""
	opts := paho.NewClientOptions().AddBroker(broker).SetClientID(fmt.Sprintf("state-reader-%d", time.Now().UnixNano())).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(200 * time.Millisecond)
	opts.SetOnConnectHandler(func(c paho.Client) {
		c.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) {
			mu.Lock()
			last = string(m.Payload())
			mu.Unlock()
		})
	})
	c := paho.NewClient(opts)
	tok := c.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second), "connect state reader")
	require.NoError(t, tok.Error())
	t.Cleanup(func() { c.Disconnect(100) })
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
}
