package mqttio

import (
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
)

func TestStartBrokerAddress(t *testing.T) {
	tests := []struct {
		name string
		addr string
		want string // error text, "" when it starts
	}{
		{name: "ipv4 loopback port 0", addr: "127.0.0.1:0"},
		{name: "localhost", addr: "localhost:0"},
		{name: "all interfaces", addr: ":1883", want: "loopback only"},
		{name: "any address", addr: "0.0.0.0:0", want: "loopback only"},
		{name: "lan address", addr: "192.168.1.10:1883", want: "loopback only"},
		{name: "no port", addr: "127.0.0.1", want: "missing port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkNoLeaks(t)
			b, err := StartBroker(tt.addr, zaptest.NewLogger(t))
			if tt.want != "" {
				require.ErrorContains(t, err, tt.want)
				return
			}
			require.NoError(t, err)
			_, port, err := net.SplitHostPort(b.Addr())
			require.NoError(t, err)
			require.NotEqual(t, "0", port, "Addr reports the bound port")
			require.NoError(t, b.Close())
			require.NoError(t, b.Close(), "second Close")
		})
	}
}

func TestStartBrokerPortInUse(t *testing.T) {
	checkNoLeaks(t)
	b := startTestBroker(t)
	_, err := StartBroker(b.Addr(), zaptest.NewLogger(t))
	require.ErrorContains(t, err, "address already in use")
}
