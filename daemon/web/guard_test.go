package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestHostCheck serves names and addresses of this machine and refuses a
// Host a DNS-rebinding page would send (its own domain, resolved to us).
func TestHostCheck(t *testing.T) {
	h := NewHandler(Options{Backend: newFakeBackend(), Hosts: AllowedHosts("0.0.0.0:8080", []string{"switchd.example.net"})})
	cases := []struct {
		host string
		want int
	}{
		{"localhost:8080", http.StatusOK},
		{"LOCALHOST", http.StatusOK},
		{"127.0.0.1:8080", http.StatusOK},
		{"[::1]:8080", http.StatusOK},
		{"10.1.2.3:8080", http.StatusOK}, // an address cannot be rebound
		{"switchd.example.net:8080", http.StatusOK},
		{"Switchd.Example.Net.", http.StatusOK},
		{"evil.example.com:8080", http.StatusMisdirectedRequest},
		{"localhost.evil.example.com", http.StatusMisdirectedRequest},
		{"", http.StatusMisdirectedRequest},
	}
	for _, c := range cases {
		for _, path := range []string{"/api/v1/state", "/metrics", "/healthz"} {
			r := httptest.NewRequest(http.MethodGet, path, nil)
			r.Host = c.host
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if c.want == http.StatusOK && path == "/metrics" {
				continue // no gatherer in this handler: 404, but not refused
			}
			require.Equal(t, c.want, w.Code, "Host %q %s: %s", c.host, path, w.Body.String())
			if c.want != http.StatusOK {
				require.NotContains(t, w.Body.String(), "asics", "no state leaks to a refused host")
			}
		}
	}
}

// TestAllowedHosts lists the listen host, the loopback names and the
// configured ones.
func TestAllowedHosts(t *testing.T) {
	got := AllowedHosts("switchd-01:8080", []string{"Ops.Example.Net"})
	for _, h := range []string{"switchd-01", "localhost", "127.0.0.1", "::1", "ops.example.net"} {
		require.Contains(t, got, h)
	}
}

// TestRejectedRequestsLogThrottled sends 500 overrides with a wrong token:
// one log line, not 500; the next line, after the interval, counts the
// ones not logged.
func TestRejectedRequestsLogThrottled(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	s := newTestServer(t, Options{Token: staticToken(testToken), Logger: zap.New(core), RejectLogInterval: 500 * time.Millisecond})
	client := &http.Client{Timeout: clientTimeout}
	send := func() {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.url+"/api/v1/override", strings.NewReader(`{"fleet":"asics","mode":"off","duration":"1h"}`))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer wrong-token-000")
		resp, err := client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	}
	start := time.Now()
	for range 500 {
		send()
	}
	if time.Since(start) >= 500*time.Millisecond {
		t.Skip("machine too slow to send 500 requests within the interval")
	}
	require.Equal(t, 1, logs.FilterMessage("override refused").Len(), "one line for a burst")
	time.Sleep(600 * time.Millisecond)
	send()
	lines := logs.FilterMessage("override refused").All()
	require.Len(t, lines, 2)
	require.Equal(t, int64(499), lines[1].ContextMap()["suppressed"])
	require.Equal(t, 501.0, testutil.ToFloat64(s.metrics.overrideReqs.WithLabelValues(resultUnauthorized)), "every refusal is still counted")
}
