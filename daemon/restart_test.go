package daemon_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd/daemon/web"
	"github.com/switchd/switchd/internal/mqtttest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
)

// aiSite writes a site whose GPUs serve inference up to ai_demand, with a
// policy fallback for ai_demand (20 GPUs) above the demand the feed sends.
func aiSite(t *testing.T, dir string, mqttPort int) string {
	t.Helper()
	site := fmt.Sprintf(`
site: {name: e2e, timezone: UTC, power_cap_kw: 1000}
policy: policy.yaml
tick: 1s
mqtt:
  embedded: 127.0.0.1:%d
  signal_prefix: e2e/signals
  state_topic: e2e/state
signals:
  price: {max_age: 1h}
  ai_demand: {max_age: 1h}
http:
  listen: 127.0.0.1:0
journal:
  path: state/journal.log
fleets:
  - name: gpus
    kind: gpu
    count: 20
    driver: sim
    modes:
      off: {power_kw: 0.2}
      inference: {power_kw: 1.275}
    transitions: {default: 200ms}
`, mqttPort)
	pol := `
fallbacks: {hashprice_usd_ph_day: 50, inference_usd_gpu_hour: 2.10, ai_demand_gpus: 20}
fail_safe: {price: hold}
rules:
  - name: price-spike
    when: {price_above_usd_mwh: 1000}
    then: {site_cap_kw: 5}
`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "site.yaml"), []byte(site), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(pol), 0o644))
	return filepath.Join(dir, "site.yaml")
}

// TestRestartDoesNotUseFallbackFirst: the running daemon serves an AI demand
// of 8 GPUs; after a restart the demand feed is silent for a while (its
// next sample is minutes away) and the policy's fallback says 20. The
// restarted daemon must keep 8 GPUs in inference, not start 12 more on the
// fallback and stop them again when the feed speaks.
func TestRestartDoesNotUseFallbackFirst(t *testing.T) {
	dir := t.TempDir()
	port := mqtttest.FreePort(t)
	cfg := aiSite(t, dir, port)
	jpath := filepath.Join(dir, "state/journal.log")

	base, stop := runDaemon(t, cfg, zaptest.NewLogger(t))
	pub := pubWith(startPublisher(t, port))
	sendPrice(t, base, pub, 30)
	pub(t, "e2e/signals/ai_demand", payload(8))
	gpusInference := func(n int) bool {
		var st web.StateView
		getJSON(t, base+"/api/v1/state", &st)
		f := fleet(st, "gpus")
		return f.Modes["inference"] == n && f.Moving == 0
	}
	require.Eventually(t, func() bool { return gpusInference(8) }, 15*time.Second, 50*time.Millisecond, "8 GPUs serve the demand")
	commands := journalKinds(t, jpath)["command"]
	stop()

	base, _ = runDaemon(t, cfg, zaptest.NewLogger(t))
	pub = pubWith(startPublisher(t, port))
	sendPrice(t, base, pub, 30) // the price feed speaks; ai_demand does not
	require.Eventually(t, func() bool {
		var st web.StateView
		getJSON(t, base+"/api/v1/state", &st)
		return st.Ready
	}, 15*time.Second, 50*time.Millisecond, "ready after the restart")
	time.Sleep(2500 * time.Millisecond) // a few ticks at 1s
	require.True(t, gpusInference(8), "still 8 GPUs in inference")
	require.Equal(t, commands, journalKinds(t, jpath)["command"], "no device commanded after the restart")
}

// TestLogTellsTheSpike: from the log alone, an operator can tell what the
// daemon decided at a price spike and why, and what became of the commands.
func TestLogTellsTheSpike(t *testing.T) {
	dir := t.TempDir()
	port := mqtttest.FreePort(t)
	cfg := writeConfig(t, dir, fmt.Sprintf("  embedded: 127.0.0.1:%d", port))
	core, logs := observer.New(zapcore.InfoLevel)
	t.Setenv("SWITCHD_TEST_TOKEN", testToken)
	base, _ := runDaemon(t, cfg, zap.New(core))
	pub := pubWith(startPublisher(t, port))
	sendPrice(t, base, pub, 30)
	waitMining(t, base, 100)
	sendPrice(t, base, pub, 1500)
	find := func(msg string, want map[string]string) bool {
		for _, e := range logs.FilterMessage(msg).AllUntimed() {
			ctx := e.ContextMap()
			ok := true
			for k, v := range want {
				s, _ := ctx[k].(string)
				if !strings.Contains(s, v) {
					ok = false
				}
			}
			if ok {
				return true
			}
		}
		return false
	}
	require.Eventually(t, func() bool {
		return find("rule fired", map[string]string{"rule": "price-spike", "inputs": "price=1500"}) &&
			find("decision", map[string]string{"commands": "asics mining→off", "why": "price 1500.00 USD/MWh; rules: price-spike"}) &&
			find("commands accepted", map[string]string{"fleet": "asics", "commands": "mining→off"})
	}, 15*time.Second, 50*time.Millisecond, "spike, decision and outcome in the log:\n%v", logs.All())
	// Read top to bottom, the log gives the cause first: the rule, then the
	// decision, then what became of its commands.
	var order []string
	for _, e := range logs.AllUntimed() {
		ctx := e.ContextMap()
		s := func(k string) string { v, _ := ctx[k].(string); return v }
		switch {
		case e.Message == "rule fired" && s("rule") == "price-spike",
			e.Message == "decision" && strings.Contains(s("why"), "price-spike"),
			e.Message == "commands accepted" && strings.Contains(s("commands"), "mining→off"):
			order = append(order, e.Message)
		}
	}
	require.Equal(t, []string{"rule fired", "decision", "commands accepted"}, order[:min(3, len(order))], "log order")
	// One line per event: the rule fired once, however many ticks followed.
	time.Sleep(2 * time.Second)
	require.Len(t, logs.FilterMessage("rule fired").AllUntimed(), 1)
}

// TestStateTopicFollowsLanding: the retained fleet state topic shows the
// devices landing in their new mode (a change with no command in that tick)
// within a tick or two of the API, not at the next minute's heartbeat.
func TestStateTopicFollowsLanding(t *testing.T) {
	dir := t.TempDir()
	port := mqtttest.FreePort(t)
	cfg := writeConfig(t, dir, fmt.Sprintf("  embedded: 127.0.0.1:%d", port))
	t.Setenv("SWITCHD_TEST_TOKEN", testToken)
	base, _ := runDaemon(t, cfg, zaptest.NewLogger(t))
	pub := pubWith(startPublisher(t, port))
	sendPrice(t, base, pub, 30)
	waitMining(t, base, 100)
	topic := newStateReader(t, fmt.Sprintf("tcp://127.0.0.1:%d", port), "e2e/state/fleets/asics")
	landed := func(payload string, mining int) bool {
		var f web.FleetView
		return json.Unmarshal([]byte(payload), &f) == nil && f.Modes["mining"] == mining && f.Moving == 0
	}
	require.Eventually(t, func() bool { return landed(topic(), 100) }, 5*time.Second, 20*time.Millisecond)
	sendPrice(t, base, pub, 1500) // the spike caps the site at 50 kW
	var st web.StateView
	require.Eventually(t, func() bool {
		st = web.StateView{}
		getJSON(t, base+"/api/v1/state", &st)
		return fleet(st, "asics").Modes["mining"] < 100 && fleet(st, "asics").Moving == 0
	}, 15*time.Second, 20*time.Millisecond, "landed in the API")
	n := fleet(st, "asics").Modes["mining"]
	require.Eventually(t, func() bool { return landed(topic(), n) }, 3*time.Second, 20*time.Millisecond,
		"the state topic shows mining=%d landed; it says %s", n, topic())
}
