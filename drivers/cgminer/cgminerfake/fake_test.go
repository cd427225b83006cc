package cgminerfake

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// send writes one request on a new connection and reads the reply to EOF.
// It uses only the standard library: the fake shares nothing with the
// driver's wire code.
func send(t *testing.T, addr, req string) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = c.Write([]byte(req))
	require.NoError(t, err)
	b, err := io.ReadAll(c)
	require.NoError(t, err)
	return b
}

func TestWire(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := New(Options{Flavor: BMMiner, Now: func() time.Time { return now }})
	require.NoError(t, m.Start("127.0.0.1:0"))
	defer m.Close()

	b := send(t, m.Addr(), `{"command":"summary"}`)
	require.Equal(t, byte(0), b[len(b)-1], "NUL terminator")
	var r map[string]any
	require.NoError(t, json.Unmarshal(b[:len(b)-1], &r))
	require.Equal(t, "90000.00", r["SUMMARY"].([]any)[0].(map[string]any)["GHS 5s"], "GHS 5s as a string")

	// bmminer stats: objects concatenated without a comma.
	b = send(t, m.Addr(), "stats|")
	require.True(t, bytes.Contains(b, []byte("}{")))
	require.False(t, json.Valid(b[:len(b)-1]))

	b = send(t, m.Addr(), `{"command":"nonsense"}`)
	require.Contains(t, string(b), `"STATUS":"E"`)
	b = send(t, m.Addr(), `{"comm`)
	require.Contains(t, string(b), "Invalid JSON")
}

func TestNoNULAndSoftOff(t *testing.T) {
	m := New(Options{NoNUL: true})
	require.NoError(t, m.Start("127.0.0.1:0"))
	defer m.Close()
	b := send(t, m.Addr(), `{"command":"ascset","parameter":"0,softoff,1:1"}`)
	require.True(t, json.Valid(b), "%q", b)
	require.True(t, m.Idle())
	require.Zero(t, m.HashrateTHs())
	require.Contains(t, string(send(t, m.Addr(), `{"command":"stats"}`)), "SoftOFF[4]")
	send(t, m.Addr(), `{"command":"ascset","parameter":"0,softon,1:1"}`)
	require.False(t, m.Idle())
}

func TestRefuseAndBack(t *testing.T) {
	m := New(Options{})
	require.NoError(t, m.Start("127.0.0.1:0"))
	defer m.Close()
	addr := m.Addr()
	require.NoError(t, m.SetFault(FaultRefuse))
	_, err := net.DialTimeout("tcp", addr, time.Second)
	require.Error(t, err)
	require.NoError(t, m.SetFault(FaultNone))
	require.Equal(t, addr, m.Addr())
	require.NotEmpty(t, send(t, addr, `{"command":"version"}`))
}
