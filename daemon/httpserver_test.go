package daemon

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// okHandler answers every request with "ok".
var okHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })

// serveTest serves h on a loopback port with limits lim and returns its
// address.
func serveTest(t *testing.T, h http.Handler, lim httpLimits, log *zap.Logger) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv, ln := newHTTPServer(h, ln, lim, log)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return ln.Addr().String()
}

// keepAlive opens a connection, sends one keep-alive request, reads the
// answer and leaves the connection open and idle.
func keepAlive(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	_, err = fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
	require.NoError(t, err)
	br := bufio.NewReader(c)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return c, br
}

// TestHTTPIdleConnectionsClosed leaves a keep-alive connection idle: the
// server closes it after the idle timeout (before, never).
func TestHTTPIdleConnectionsClosed(t *testing.T) {
	lim := defaultHTTPLimits()
	lim.IdleTimeout = 200 * time.Millisecond
	addr := serveTest(t, okHandler, lim, zap.NewNop())
	c, br := keepAlive(t, addr)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	start := time.Now()
	_, err := br.ReadByte()
	require.ErrorIs(t, err, io.EOF, "the server closed the idle connection")
	require.Less(t, time.Since(start), 3*time.Second)
}

// TestHTTPConnectionCap fills the connection cap with idle keep-alive
// connections: /healthz still answers on a new one (the oldest idle
// connection makes room), and the server never holds more than the cap.
func TestHTTPConnectionCap(t *testing.T) {
	lim := defaultHTTPLimits()
	lim.MaxConns = 8
	addr := serveTest(t, okHandler, lim, zap.NewNop())
	type conn struct {
		c  net.Conn
		br *bufio.Reader
	}
	var conns []conn
	for range 2 * lim.MaxConns {
		c, br := keepAlive(t, addr)
		conns = append(conns, conn{c, br})
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + addr + "/healthz")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, "ok", string(body))
	// The connections beyond the cap each evicted an older idle one.
	closed := 0
	for _, c := range conns {
		require.NoError(t, c.c.SetReadDeadline(time.Now().Add(100*time.Millisecond)))
		if _, err := c.br.Peek(1); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			closed++
		}
	}
	require.GreaterOrEqual(t, closed, lim.MaxConns, "idle connections closed to stay within the cap")
}

// TestHTTPErrorLogThroughZap sends a malformed request line: net/http's own
// complaint goes to zap at warn level, not as plain text to stderr.
func TestHTTPErrorLogThroughZap(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	addr := serveTest(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }), defaultHTTPLimits(), zap.New(core))
	resp, err := http.Get("http://" + addr + "/")
	if err == nil {
		resp.Body.Close()
	}
	require.Eventually(t, func() bool {
		for _, e := range logs.All() {
			if strings.Contains(e.Message, "boom") {
				return true
			}
		}
		return false
	}, 5*time.Second, 10*time.Millisecond)
}
