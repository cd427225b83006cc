package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd/internal/mqtttest"
)

// lockedBuffer is a log sink the daemon writes while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSIGHUPReloadsPolicy: `switchd run` re-reads its policy on SIGHUP
// (systemctl reload switchd), and keeps the running one when the file has
// errors.
func TestSIGHUPReloadsPolicy(t *testing.T) {
	dir := t.TempDir()
	httpPort, mqttPort := mqtttest.FreePort(t), mqtttest.FreePort(t)
	site := fmt.Sprintf(`site: {name: hup, timezone: UTC, power_cap_kw: 100}
policy: policy.yaml
mqtt: {embedded: '127.0.0.1:%d'}
http: {listen: '127.0.0.1:%d'}
fleets:
  - name: gpus
    kind: gpu
    count: 4
    driver: sim
    modes:
      off: {power_kw: 0.1}
      inference: {power_kw: 1.0}
    transitions: {default: 1s}
`, mqttPort, httpPort)
	const policy = "fallbacks: {inference_usd_gpu_hour: 2.1, ai_demand_gpus: 4}\nhysteresis_usd_mwh: 5\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "site.yaml"), []byte(site), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(policy), 0o600))

	ctx, cancel := context.WithCancel(context.Background())
	var logs lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- cmdRun(ctx, []string{"--config", filepath.Join(dir, "site.yaml"), "--log-format", "json"}, &logs)
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(15 * time.Second):
			t.Error("switchd run did not stop")
		}
	}()
	// Up (SIGHUP is handled from before the daemon starts).
	require.Eventually(t, func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", httpPort))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 15*time.Second, 50*time.Millisecond, "daemon up:\n%s", logs.String())

	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), `"msg":"policy unchanged","trigger":"SIGHUP"`)
	}, 10*time.Second, 50*time.Millisecond, "SIGHUP re-read the policy:\n%s", logs.String())

	require.NoError(t, os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(policy+"ramp_up_kw_per_min: 0\n"), 0o600))
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), `"msg":"policy rejected, keeping the running one","trigger":"SIGHUP"`)
	}, 10*time.Second, 50*time.Millisecond, "SIGHUP refused the broken policy:\n%s", logs.String())
	require.Contains(t, logs.String(), "policy.yaml:3: ramp_up_kw_per_min: must be positive")
}
