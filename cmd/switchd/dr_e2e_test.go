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

// TestDREndToEnd runs the built binary with signals through a real
// Mosquitto, publishes a demand-response event with mosquitto_pub, and reads
// the event's compliance record back from the live journal with `switchd
// journal --events`.
func TestDREndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	mqtttest.RequireTool(t, "mosquitto_pub")
	broker := mqtttest.Start(t)
	dir := t.TempDir()
	hport := mqtttest.FreePort(t)
	site := fmt.Sprintf(`site: {name: e2e, timezone: UTC, power_cap_kw: 1000}
policy: policy.yaml
tick: 1s
mqtt: {broker: "tcp://127.0.0.1:%d", signal_prefix: e2e/signals}
http: {listen: "127.0.0.1:%d"}
journal: {path: state/journal.log}
fleets:
  - name: asics
    kind: asic
    count: 100
    driver: sim
    modes: {off: {power_kw: 0}, mining: {power_kw: 3.5, hashrate_ths: 200}}
    transitions: {off->mining: 200ms, mining->off: 100ms}
`, broker.Port(), hport)
	policy := "fallbacks: {hashprice_usd_ph_day: 50}\n"
	cfg := filepath.Join(dir, "site.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(site), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(policy), 0o600))
	bin := buildSwitchd(t)
	startProcess(t, bin, "run", "--config", cfg)
	require.Eventually(t, func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", hport))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	}, 30*time.Second, 50*time.Millisecond)

	pub := func(topic, msg string) {
		out, err := exec.Command("mosquitto_pub", "-h", "127.0.0.1", "-p", fmt.Sprint(broker.Port()), "-q", "1", "-t", topic, "-m", msg).CombinedOutput()
		require.NoError(t, err, string(out))
	}
	pub("e2e/signals/price", fmt.Sprintf(`{"ts":%q,"value":30}`, time.Now().UTC().Format(time.RFC3339Nano)))
	// Let the miners start (350 kW) before the notice, then ask for 70 kW.
	require.Eventually(t, func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/state", hport))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var st struct {
			PowerKW float64 `json:"power_kw"`
		}
		return json.NewDecoder(resp.Body).Decode(&st) == nil && st.PowerKW >= 349
	}, 30*time.Second, 50*time.Millisecond, "the miners never started")
	now := time.Now().UTC().Truncate(time.Millisecond)
	ts := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339Nano) }
	pub("e2e/signals/dr", fmt.Sprintf(`{"id":"mqtt-1","program":"ers","target_kw":70,"notice":%q,"start":%q,"deadline":%q,"end":%q,"interval":"1m"}`,
		ts(0), ts(time.Second), ts(3*time.Second), ts(5*time.Second)))

	journal := filepath.Join(dir, "state", "journal.log")
	var text string
	require.Eventually(t, func() bool {
		code, o, _ := runCmd("journal", "--events", journal)
		text = o
		return code == 0 && strings.Contains(o, "event mqtt-1") && strings.Contains(o, "final")
	}, 30*time.Second, 200*time.Millisecond, "no final record in the journal: %s", text)
	require.Contains(t, text, "target 70.0 kW")
	require.Contains(t, text, "cap 70.0 kW")
	require.Contains(t, text, "met by deadline yes")
	require.Contains(t, text, "alarm -")
	code, o, errOut := runCmd("journal", "verify", journal)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, o, "chain intact")
}
