package daemon_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd/daemon/web"
	"github.com/switchd/switchd/internal/mqtttest"
)

// TestCrashRecovery starts the built binary, lets it command devices, kills
// it with SIGKILL, checks the journal, starts it again and checks that no
// device is commanded again needlessly and nothing journalled was lost.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "switchd")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/switchd").CombinedOutput()
	require.NoError(t, err, string(out))

	mqttPort, httpPort := mqtttest.FreePort(t), mqtttest.FreePort(t)
	cfg := writeConfig(t, dir, fmt.Sprintf("  embedded: 127.0.0.1:%d", mqttPort))
	raw, err := os.ReadFile(cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(cfg, bytes.Replace(raw, []byte("listen: 127.0.0.1:0"), fmt.Appendf(nil, "listen: 127.0.0.1:%d", httpPort), 1), 0o644))
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	jpath := filepath.Join(dir, "state/journal.log")

	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "run", "--config", cfg, "--log-level", "debug")
		cmd.Env = append(os.Environ(), "SWITCHD_TEST_TOKEN="+testToken)
		var logs bytes.Buffer
		cmd.Stdout, cmd.Stderr = &logs, &logs
		require.NoError(t, cmd.Start())
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			if t.Failed() {
				t.Logf("daemon log:\n%s", logs.String())
			}
		})
		require.Eventually(t, func() bool {
			resp, err := http.Get(base + "/healthz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}, 20*time.Second, 50*time.Millisecond, "daemon up")
		return cmd
	}
	publish := func(v float64) {
		// A new connection each time: the daemon (and its embedded
		// broker) is a new process after the crash.
		sendPrice(t, base, pubWith(startPublisher(t, mqttPort)), v)
	}

	first := start()
	publish(30)
	waitMining(t, base, 100)
	before, err := os.ReadFile(jpath)
	require.NoError(t, err)
	kinds := journalKinds(t, jpath)
	require.Positive(t, kinds["command"])
	commands := kinds["command"]

	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	_ = first.Wait()

	out, err = exec.Command(bin, "journal", "verify", jpath).CombinedOutput()
	require.NoError(t, err, string(out))
	require.Contains(t, string(out), "chain intact")

	start()
	publish(30)
	// The fleet comes back where it was commanded, and stays there.
	var st web.StateView
	require.Eventually(t, func() bool {
		st = web.StateView{}
		getJSON(t, base+"/api/v1/state", &st)
		return st.Ready
	}, 15*time.Second, 50*time.Millisecond, "ready after restart")
	require.Equal(t, 100, fleet(st, "asics").Modes["mining"])
	require.Equal(t, 0, fleet(st, "asics").Moving)
	time.Sleep(1500 * time.Millisecond) // a tick or two at 1s
	kinds = journalKinds(t, jpath)
	require.Equal(t, commands, kinds["command"], "no device re-commanded after restart")
	require.Equal(t, 2, kinds["start"])

	after, err := os.ReadFile(jpath)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(after), string(before)), "everything journalled before the crash is still there")
	out, err = exec.Command(bin, "journal", "verify", jpath).CombinedOutput()
	require.NoError(t, err, string(out))
}
