package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd/internal/mqtttest"
)

// TestRestartSendsNothingNew kills the built daemon with SIGKILL in each
// phase of a tick that sheds a fleet of fake LuxOS miners (decision
// journalled but nothing sent; commands sent but not acknowledged in the
// journal; acknowledged; and between ticks once steady), restarts it, and
// checks from what the miners themselves received that the restarted daemon
// sent no command the running one would not have sent: each miner is put to
// sleep exactly once and never woken while the price stays high.
func TestRestartSendsNothingNew(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildSwitchd(t)

	for i, phase := range []string{"decided", "sent", "acked", "steady"} {
		t.Run(phase, func(t *testing.T) {
			crashPhase(t, bin, phase, 10+i)
		})
	}
}

func crashPhase(t *testing.T, bin, phase string, octet int) {
	broker := mqtttest.Start(t)
	dir := t.TempDir()
	addrs, miner := luxosFakes(t, octet)

	hport := mqtttest.FreePort(t)
	site := fmt.Sprintf(`site: {name: crash, timezone: UTC, power_cap_kw: 1000}
policy: policy.yaml
tick: 1s
mqtt: {broker: "tcp://127.0.0.1:%d"}
signals:
  price: {max_age: 1h}
http: {listen: "127.0.0.1:%d"}
journal: {path: state/journal.log}
fleets:
  - name: luxos
    kind: asic
    devices: [%s]
    driver: luxos
    settings: {timeout: 2s, grace: 3s}
    modes: {off: {power_kw: 0.02}, mining: {power_kw: 2.76, hashrate_ths: 120}}
    transitions: {off->mining: 1s, mining->off: 1s}
`, broker.Port(), hport, strings.Join(addrs, ", "))
	policy := `fallbacks: {hashprice_usd_ph_day: 48}
fail_safe: {price: hold}
rules:
  - name: price-spike
    when: {price_above_usd_mwh: 1000}
    then: {force: {luxos: off}}
`
	cfg := filepath.Join(dir, "site.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(site), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(policy), 0o600))

	base := fmt.Sprintf("http://127.0.0.1:%d", hport)
	type state struct {
		Ready  bool `json:"ready"`
		Fleets []struct {
			Modes  map[string]int `json:"modes"`
			Moving int            `json:"moving"`
		} `json:"fleets"`
	}
	get := func() *state {
		resp, err := http.Get(base + "/api/v1/state")
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		var v state
		if json.NewDecoder(resp.Body).Decode(&v) != nil {
			return nil
		}
		return &v
	}
	start := func(crashAt string) (*exec.Cmd, *mqtttest.Buffer) {
		logs := &mqtttest.Buffer{}
		cmd := exec.Command(bin, "run", "--config", cfg, "--log-level", "debug")
		cmd.Env = append(os.Environ(), "SWITCHD_TEST_CRASH_AT="+crashAt)
		cmd.Stdout, cmd.Stderr = logs, logs
		require.NoError(t, cmd.Start())
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			if t.Failed() {
				t.Logf("daemon log (crash at %q):\n%s", crashAt, logs.String())
			}
		})
		return cmd, logs
	}
	// Retained, as a market-data bridge publishes: a restarted daemon
	// gets the latest price on subscribe.
	publish := func(price string) {
		broker.Pub("switchd/crash/signals/price", fmt.Sprintf(`{"ts":%q,"value":%s}`, time.Now().UTC().Format(time.RFC3339Nano), price), "-r")
	}
	asleep := func() int {
		n := 0
		for i := range addrs {
			if miner(i).Asleep() {
				n++
			}
		}
		return n
	}
	curtails := func() (total int) {
		for i := range addrs {
			total += miner(i).Count("curtail")
		}
		return total
	}
	steady := func(mining int) bool {
		v := get()
		return v != nil && v.Ready && len(v.Fleets) == 1 && v.Fleets[0].Modes["mining"] == mining && v.Fleets[0].Moving == 0
	}

	crashAt := phase
	if phase == "steady" {
		crashAt = ""
	}
	first, _ := start(crashAt)
	publish("30")
	require.Eventually(t, func() bool { return steady(6) }, 30*time.Second, 100*time.Millisecond, "mining on cheap power")
	require.Zero(t, curtails(), "nothing to command while mining pays")

	publish("5000")
	if phase == "steady" {
		require.Eventually(t, func() bool { return steady(0) }, 30*time.Second, 100*time.Millisecond, "shed at the spike")
		require.NoError(t, first.Process.Kill())
	}
	done := make(chan error, 1)
	go func() { done <- first.Wait() }()
	select {
	case err := <-done:
		require.Error(t, err, "killed")
	case <-time.After(30 * time.Second):
		t.Fatalf("the daemon did not crash at %q", phase)
	}
	before := curtails()
	switch phase {
	case "decided":
		require.Zero(t, before, "killed before sending")
	default:
		require.Equal(t, len(addrs), before, "every miner told to sleep once before the kill")
	}

	start("")
	require.Eventually(t, func() bool { return steady(0) && asleep() == len(addrs) }, 30*time.Second, 100*time.Millisecond, "shed after the restart")
	time.Sleep(2500 * time.Millisecond) // a few more ticks: nothing more may be sent
	for i := range addrs {
		require.Equal(t, 1, miner(i).Count("curtail"), "miner %d: put to sleep exactly once, never woken (phase %s)", i, phase)
		require.True(t, miner(i).Asleep())
	}
}
