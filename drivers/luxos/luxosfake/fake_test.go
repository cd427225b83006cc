package luxosfake

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// clock is a settable clock, safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// roundTrip sends one raw request and returns the raw reply.
func roundTrip(t *testing.T, addr, req string) []byte {
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

// call sends a JSON request and decodes the reply (after checking its NUL).
func call(t *testing.T, addr, cmd, param string) map[string]any {
	t.Helper()
	req, _ := json.Marshal(map[string]string{"command": cmd, "parameter": param})
	b := roundTrip(t, addr, string(req))
	require.True(t, bytes.HasSuffix(b, []byte{0}), "reply ends in NUL")
	var out map[string]any
	require.NoError(t, json.Unmarshal(b[:len(b)-1], &out))
	return out
}

func status(r map[string]any) string {
	return r["STATUS"].([]any)[0].(map[string]any)["STATUS"].(string)
}

func TestWire(t *testing.T) {
	clk := &clock{t: time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)}
	m := New(Options{Now: clk.Now})
	require.NoError(t, m.Start("127.0.0.1:0"))
	defer m.Close()
	addr := m.Addr()

	// Text requests, as cgminer takes them.
	b := roundTrip(t, addr, "summary|")
	require.Contains(t, string(b), `"GHS 5s":120000`)

	// One session at a time; it expires after a minute idle.
	r := call(t, addr, "logon", "")
	require.Equal(t, "S", status(r))
	sid := r["SESSION"].([]any)[0].(map[string]any)["SessionID"].(string)
	require.Len(t, sid, 8)
	require.Equal(t, "E", status(call(t, addr, "logon", "")))
	require.Equal(t, "E", status(call(t, addr, "curtail", "wrongsid,sleep")))
	require.False(t, m.Asleep())
	require.Equal(t, "S", status(call(t, addr, "curtail", sid+",sleep")))
	require.True(t, m.Asleep())
	clk.Advance(59 * time.Second)
	require.Equal(t, sid, m.Session(), "refreshed by the curtail")
	clk.Advance(time.Minute)
	require.Empty(t, m.Session())
	require.Equal(t, "S", status(call(t, addr, "logon", "")))
	require.Equal(t, "S", status(call(t, addr, "kill", "")))
	require.Empty(t, m.Session())

	// Multi-command: each part nested under its name.
	r = call(t, addr, "config+summary+logon", "")
	cfg := r["config"].([]any)[0].(map[string]any)
	require.Equal(t, "S", status(cfg))
	require.Equal(t, "Sleep", cfg["CONFIG"].([]any)[0].(map[string]any)["CurtailMode"])
	require.Equal(t, "E", status(r["logon"].([]any)[0].(map[string]any)), "writes are not report commands")

	require.Equal(t, "E", status(call(t, addr, "nosuchcommand", "")))
}

func TestWakeRamp(t *testing.T) {
	clk := &clock{t: time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)}
	m := New(Options{Now: clk.Now, Asleep: true, WakeRamp: 4 * time.Minute})
	ths, w := m.Levels()
	require.Zero(t, ths)
	require.InDelta(t, 22, w, 0)
	m.SetAsleep(false)
	clk.Advance(time.Minute)
	ths, _ = m.Levels()
	require.InDelta(t, 30, ths, 1e-9)
	clk.Advance(time.Hour)
	ths, w = m.Levels()
	require.InDelta(t, 120, ths, 1e-9)
	require.InDelta(t, 2760, w, 0)
}

func TestDefaultProfiles(t *testing.T) {
	ps := DefaultProfiles(120, 2760, 575, 13.4)
	require.Len(t, ps, 25)
	require.Equal(t, "default", ps[16].Name)
	for i := 1; i < len(ps); i++ {
		require.Greater(t, ps[i].Watts, ps[i-1].Watts)
	}
}
