package daemon_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/controller/journal"
	"github.com/switchd/switchd/controller/mqttio"
	"github.com/switchd/switchd/daemon"
	"github.com/switchd/switchd/daemon/web"
	"github.com/switchd/switchd/internal/mqtttest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

const testToken = "s3cret-token-for-tests"

// testSite is what the tests vary of the small site writeConfig writes.
type testSite struct {
	mqtt         string  // the mqtt section's broker line(s), indented
	capKW        float64 // interconnect cap; 1000 when zero
	asicsInitial string  // the sim driver's initial mode for the ASICs, when the journal has none
	failSafe     string  // the price fail-safe; curtail when empty
}

// writeConfig writes a small site (100 miners at 3.5 kW, 20 GPUs) and its
// policy: hashprice 50 USD/PH/day gives a mining breakeven of 119 USD/MWh.
func writeConfig(t *testing.T, dir, mqtt string) string {
	t.Helper()
	return writeSite(t, dir, testSite{mqtt: mqtt})
}

// writeSite is writeConfig with the cap, the ASICs' initial mode and the
// price fail-safe given.
func writeSite(t *testing.T, dir string, c testSite) string {
	t.Helper()
	if c.capKW == 0 {
		c.capKW = 1000
	}
	if c.failSafe == "" {
		c.failSafe = "curtail"
	}
	settings := ""
	if c.asicsInitial != "" {
		settings = "\n    settings: {initial: " + c.asicsInitial + "}"
	}
	site := fmt.Sprintf(`
site: {name: e2e, timezone: America/Chicago, power_cap_kw: %v}
policy: policy.yaml
tick: 1s
mqtt:
%s
  signal_prefix: e2e/signals
  state_topic: e2e/state
signals:
  price: {max_age: 1h}
http:
  listen: 127.0.0.1:0
  token_env: SWITCHD_TEST_TOKEN
journal:
  path: state/journal.log
fleets:
  - name: asics
    kind: asic
    count: 100
    driver: sim%s
    modes:
      off: {power_kw: 0.01}
      mining: {power_kw: 3.5, hashrate_ths: 200}
    transitions: {off->mining: 200ms, mining->off: 100ms}
  - name: gpus
    kind: gpu
    count: 20
    driver: sim
    modes:
      off: {power_kw: 0.2}
      inference: {power_kw: 1.275}
    transitions: {default: 200ms}
`, c.capKW, c.mqtt, settings)
	pol := fmt.Sprintf(`
fallbacks: {hashprice_usd_ph_day: 50, inference_usd_gpu_hour: 2.10, ai_demand_gpus: 20}
fail_safe: {price: %s}
rules:
  - name: price-spike
    when: {price_above_usd_mwh: 1000}
    then: {site_cap_kw: 50, discourage: {asics: [mining]}}
`, c.failSafe)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "site.yaml"), []byte(site), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(pol), 0o644))
	return filepath.Join(dir, "site.yaml")
}

// startDaemon runs the daemon in-process, with the test token, and returns
// its HTTP base URL.
func startDaemon(t *testing.T, config string) string {
	t.Helper()
	t.Setenv("SWITCHD_TEST_TOKEN", testToken)
	base, _ := runDaemon(t, config, zaptest.NewLogger(t))
	return base
}

// runDaemon runs the daemon in-process with the given logger until stop is
// called; it returns the HTTP base URL.
func runDaemon(t *testing.T, cfg string, log *zap.Logger) (base string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Options{ConfigPath: cfg, Logger: log, Version: "test",
			Ready: func(addr string) { ready <- addr }})
	}()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err, "graceful shutdown")
		case <-time.After(15 * time.Second):
			t.Error("daemon did not stop within 15s")
		}
	}
	t.Cleanup(stop)
	select {
	case addr := <-ready:
		return "http://" + addr, stop
	case err := <-done:
		stopped = true
		t.Fatalf("daemon exited: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("daemon not ready within 15s")
	}
	return "", stop
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}

func getText(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func fleet(s web.StateView, name string) web.FleetView {
	for _, f := range s.Fleets {
		if f.Name == name {
			return f
		}
	}
	return web.FleetView{}
}

// waitMining waits until the asics fleet has n devices steady mining.
func waitMining(t *testing.T, base string, n int) web.StateView {
	t.Helper()
	var st web.StateView
	require.Eventually(t, func() bool {
		st = web.StateView{}
		getJSON(t, base+"/api/v1/state", &st)
		return fleet(st, "asics").Modes["mining"] == n && fleet(st, "asics").Moving == 0
	}, 15*time.Second, 50*time.Millisecond, "asics mining=%d", n)
	return st
}

// publisher publishes signals the way a market-data bridge would.
type publisher func(t *testing.T, topic, payload string)

// startPublisher connects a test publisher (the real paho client) to the
// broker on port; it is closed when the test ends.
func startPublisher(t testing.TB, port int) *mqttio.Publisher {
	t.Helper()
	p, err := mqttio.NewPublisher(config.MQTTConfig{Broker: fmt.Sprintf("tcp://127.0.0.1:%d", port), ClientID: fmt.Sprintf("test-pub-%d", time.Now().UnixNano())})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, p.Start(ctx))
	t.Cleanup(p.Close)
	return p
}

func pubWith(p *mqttio.Publisher) publisher {
	return func(t *testing.T, topic, msg string) {
		require.NoError(t, p.Publish(context.Background(), topic, []byte(msg)))
	}
}

// sendPrice publishes a price until the daemon shows it: a subscription
// made moments ago may not be in place yet, and a bridge re-publishes
// anyway.
func sendPrice(t *testing.T, base string, pub publisher, v float64) {
	t.Helper()
	require.Eventually(t, func() bool {
		pub(t, "e2e/signals/price", payload(v))
		deadline := time.Now().Add(300 * time.Millisecond)
		for time.Now().Before(deadline) {
			var st web.StateView
			getJSON(t, base+"/api/v1/state", &st)
			for _, s := range st.Signals {
				if s.Name == "price" && s.Value != nil && *s.Value == v {
					return true
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		return false
	}, 15*time.Second, time.Millisecond, "price %v never arrived", v)
}

func payload(v float64) string {
	return fmt.Sprintf(`{"ts":%q,"value":%g}`, time.Now().UTC().Format(time.RFC3339Nano), v)
}

// scenario is the end-to-end story, run against either broker: cheap power
// → miners run; a spike → curtailed, visible in the API, /metrics and the
// retained state topic; garbage → rejected and counted, daemon serving.
func scenario(t *testing.T, base string, pub publisher, stateTopic func() string) {
	sendPrice(t, base, pub, 30)
	st := waitMining(t, base, 100)
	require.Equal(t, 20, fleet(st, "gpus").Modes["inference"])

	code, body := getText(t, base+"/readyz")
	require.Equal(t, http.StatusOK, code, body)

	sendPrice(t, base, pub, 2500)
	st = waitMining(t, base, 0)
	require.Equal(t, 100, fleet(st, "asics").Modes["off"])
	require.NotEmpty(t, st.Decisions)
	require.Contains(t, st.Decisions[0].Rules, "price-spike")
	require.NotNil(t, st.Journal, "the journal head is published")
	require.Positive(t, st.Journal.Seq)
	require.Len(t, st.Journal.Hash, 64)
	var plan web.PlanView
	getJSON(t, base+"/api/v1/plan", &plan)
	require.InDelta(t, 50, plan.SiteCapKW, 1e-9)
	require.Equal(t, []string{"mining"}, plan.Constraints["asics"].Discourage, "a rule's discourage shows in the plan")

	_, metrics := getText(t, base+"/metrics")
	require.Contains(t, metrics, `switchd_fleet_devices{fleet="asics",mode="off"} 100`)
	require.Contains(t, metrics, `switchd_signal_value{signal="price"} 2500`)
	// Device health by fleet and reason (zeros for the simulated fleet),
	// driver calls by op, never a device label.
	require.Contains(t, metrics, `switchd_devices_unusable{fleet="asics",reason="unreachable"} 0`)
	require.Contains(t, metrics, `switchd_driver_up{driver="sim",fleet="gpus"} 1`)
	require.Contains(t, metrics, `switchd_driver_request_duration_seconds_count{driver="sim",fleet="asics",op="state"}`)
	require.Contains(t, metrics, `switchd_driver_errors_total{class="permanent",driver="sim",fleet="asics",op="apply"} 0`)
	require.True(t, fleet(st, "asics").Observed)
	require.Equal(t, 0, fleet(st, "asics").Unusable.Total)
	var devs web.DevicesView
	getJSON(t, base+"/api/v1/devices?fleet=asics", &devs)
	require.False(t, devs.Reported, "the simulated fleet does not list devices")

	require.Eventually(t, func() bool {
		s := stateTopic()
		return strings.Contains(s, `"site":"e2e"`) && strings.Contains(s, `"price-spike"`)
	}, 10*time.Second, 200*time.Millisecond, "retained state topic shows the curtailment")

	// Garbage of every kind: rejected, counted, nothing changes.
	for _, bad := range []string{"abc", "NaN", `{"value":"x"}`, `{"ts":"2020-01-01T00:00:00Z","value":20}`,
		fmt.Sprintf(`{"ts":%q,"value":20}`, time.Now().Add(time.Hour).UTC().Format(time.RFC3339)), "1e9", "-5000", ""} {
		pub(t, "e2e/signals/price", bad)
	}
	require.Eventually(t, func() bool {
		_, m := getText(t, base+"/metrics")
		return strings.Contains(m, `switchd_signal_rejected_total{reason="out_of_range",signal="price"}`) &&
			strings.Contains(m, `switchd_signal_rejected_total{reason="future",signal="price"}`) &&
			strings.Contains(m, `switchd_signal_rejected_total{reason="out_of_order",signal="price"}`) &&
			strings.Contains(m, `switchd_signal_rejected_total{reason="not_a_number",signal="price"}`)
	}, 10*time.Second, 100*time.Millisecond)
	code, _ = getText(t, base+"/healthz")
	require.Equal(t, http.StatusOK, code)
	getJSON(t, base+"/api/v1/state", &st)
	require.Equal(t, 0, fleet(st, "asics").Modes["mining"], "garbage changed nothing")

	sendPrice(t, base, pub, 25)
	waitMining(t, base, 100)
}

// startEmbedded runs a daemon with its embedded broker on a free port and
// connects a test publisher to it.
func startEmbedded(t *testing.T) (dir, base string, port int, p *mqttio.Publisher) {
	t.Helper()
	dir = t.TempDir()
	port = mqtttest.FreePort(t)
	base = startDaemon(t, writeConfig(t, dir, fmt.Sprintf("  embedded: 127.0.0.1:%d", port)))
	return dir, base, port, startPublisher(t, port)
}

// mosquittoPub publishes with the mosquitto_pub client, an external
// publisher as a site's market-data bridge would be.
func mosquittoPub(port int) publisher {
	return func(t *testing.T, topic, msg string) {
		out, err := exec.Command("mosquitto_pub", "-h", "127.0.0.1", "-p", fmt.Sprint(port), "-q", "1", "-t", topic, "-m", msg).CombinedOutput()
		require.NoError(t, err, string(out))
	}
}

func TestEndToEndEmbeddedBroker(t *testing.T) {
	_, base, port, p := startEmbedded(t)
	sub := newStateReader(t, fmt.Sprintf("tcp://127.0.0.1:%d", port), "e2e/state")
	scenario(t, base, pubWith(p), sub)
}

// TestEndToEndMosquitto runs the same story against a real Mosquitto, with
// mosquitto_pub as the external publisher and mosquitto_sub reading the
// retained state topic.
func TestEndToEndMosquitto(t *testing.T) {
	port := startMosquitto(t)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf("  broker: tcp://127.0.0.1:%d", port))
	base := startDaemon(t, cfg)
	pub := mosquittoPub(port)
	state := func() string {
		out, _ := exec.Command("mosquitto_sub", "-h", "127.0.0.1", "-p", fmt.Sprint(port), "-t", "e2e/state", "-C", "1", "-W", "3").Output()
		return string(out)
	}
	scenario(t, base, pub, state)
}

// startMosquitto starts a real Mosquitto on a free loopback port.
func startMosquitto(t testing.TB) int {
	t.Helper()
	port, _ := startMosquittoRestartable(t)
	return port
}

// startMosquittoRestartable starts a real Mosquitto on a free loopback port
// and returns a function that kills it and starts it again on that port.
func startMosquittoRestartable(t testing.TB) (int, func()) {
	t.Helper()
	mqtttest.RequireTool(t, "mosquitto_pub")
	m := mqtttest.Start(t, "max_queued_messages 1000000")
	return m.Port(), func() {
		m.Stop()
		m.Restart()
	}
}

// TestBrokerRestart: Mosquitto goes away mid-run and comes back; switchd
// reconnects, resubscribes and acts on fresh signals.
func TestBrokerRestart(t *testing.T) {
	port, restart := startMosquittoRestartable(t)
	dir := t.TempDir()
	base := startDaemon(t, writeConfig(t, dir, fmt.Sprintf("  broker: tcp://127.0.0.1:%d", port)))
	pub := mosquittoPub(port)
	sendPrice(t, base, pub, 30)
	waitMining(t, base, 100)

	restart()
	require.Eventually(t, func() bool {
		_, m := getText(t, base+"/metrics")
		return strings.Contains(m, "switchd_mqtt_connected 1")
	}, 20*time.Second, 100*time.Millisecond, "reconnected")
	sendPrice(t, base, pub, 2500)
	waitMining(t, base, 0)
}

func TestOverrides(t *testing.T) {
	dir, base, _, p := startEmbedded(t)
	sendPrice(t, base, pubWith(p), 30)
	waitMining(t, base, 100)

	post := func(token, body string) (int, string) {
		req, err := http.NewRequest(http.MethodPost, base+"/api/v1/override", strings.NewReader(body))
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	body := `{"fleet":"asics","mode":"off","duration":"2s","reason":"maintenance"}`
	code, _ := post("", body)
	require.Equal(t, http.StatusUnauthorized, code)
	code, _ = post("wrong", body)
	require.Equal(t, http.StatusUnauthorized, code)
	code, msg := post(testToken, `{"fleet":"nope","mode":"off","duration":"2s"}`)
	require.Equal(t, http.StatusBadRequest, code, msg)
	code, msg = post(testToken, body)
	require.Equal(t, http.StatusCreated, code, msg)

	// Applied, then it expires and the miners come back by themselves.
	st := waitMining(t, base, 0)
	require.Len(t, st.Overrides, 1)
	st = waitMining(t, base, 100)
	require.Empty(t, st.Overrides)

	// Journalled: set and expiry.
	kinds := journalKinds(t, filepath.Join(dir, "state/journal.log"))
	require.Contains(t, kinds, "override")
	require.Contains(t, kinds, "override_clear")
}

func journalKinds(t *testing.T, path string) map[string]int {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	kinds := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e journal.Entry
		require.NoError(t, json.Unmarshal(sc.Bytes(), &e))
		kinds[e.Kind]++
	}
	return kinds
}

func TestPolicyHotReload(t *testing.T) {
	dir, base, _, p := startEmbedded(t)
	sendPrice(t, base, pubWith(p), 100)
	waitMining(t, base, 100)

	// An invalid edit is rejected and counted; the old policy keeps running.
	polPath := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(polPath, []byte("hysteresis_usd_mhw: 5\n"), 0o644))
	require.Eventually(t, func() bool {
		_, m := getText(t, base+"/metrics")
		return strings.Contains(m, `switchd_config_last_reload_successful 0`)
	}, 10*time.Second, 100*time.Millisecond)
	waitMining(t, base, 100)

	// A valid edit takes effect: hashprice 20 puts breakeven at 48 USD/MWh,
	// so at 100 USD/MWh the miners stop.
	require.NoError(t, os.WriteFile(polPath, []byte("fallbacks: {hashprice_usd_ph_day: 20, inference_usd_gpu_hour: 2.1}\n"), 0o644))
	waitMining(t, base, 0)
	_, m := getText(t, base+"/metrics")
	require.Contains(t, m, `switchd_config_last_reload_successful 1`)
}
