package mqttio

import (
	"errors"
	"log/slog"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd/internal/mqtttest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
)

func TestStartBrokerAddress(t *testing.T) {
	tests := []struct {
		name string
		addr string
		want string // error text, "" when it starts
	}{
		{name: "ipv4 loopback port 0", addr: "127.0.0.1:0"},
		{name: "localhost", addr: "localhost:0"},
		{name: "all interfaces", addr: ":1883", want: "needs a password file"},
		{name: "any address", addr: "0.0.0.0:0", want: "needs a password file"},
		{name: "lan address", addr: "192.168.1.10:1883", want: "needs a password file"},
		{name: "no port", addr: "127.0.0.1", want: "missing port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mqtttest.CheckNoLeaks(t)
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
	mqtttest.CheckNoLeaks(t)
	b := startTestBroker(t)
	_, err := StartBroker(b.Addr(), zaptest.NewLogger(t))
	require.ErrorContains(t, err, "address already in use")
}

func TestZapHandler(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	log := slog.New(&zapHandler{log: zap.New(core)})
	log.Info("attached listener", "id", "tcp")
	log.Debug("noise")
	log.With("listener", "tcp").WithGroup("client").Warn("", "error", errors.New("read connection: EOF"), "id", "x")
	log.Error("client store quota reached", "client", "switchd")

	entries := logs.AllUntimed()
	require.Len(t, entries, 2, "info and debug are dropped")
	require.Equal(t, zapcore.WarnLevel, entries[0].Level)
	require.Equal(t, "broker warning", entries[0].Message)
	require.Equal(t, map[string]any{"listener": "tcp", "client.error": "read connection: EOF", "client.id": "x"}, entries[0].ContextMap())
	require.Equal(t, zapcore.ErrorLevel, entries[1].Level)
	require.Equal(t, "client store quota reached", entries[1].Message)
	require.Equal(t, map[string]any{"client": "switchd"}, entries[1].ContextMap())
}
