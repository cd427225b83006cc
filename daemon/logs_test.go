package daemon_test

import (
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd/internal/mqtttest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestLogTellsStaleInputs: a price feed that falls silent past its max_age
// is one "input stale" line and one "fail-safe engaged" line however many
// ticks it stays silent, and its return one line each too; /metrics shows
// the input's age and the broker connection meanwhile.
func TestLogTellsStaleInputs(t *testing.T) {
	dir := t.TempDir()
	port := mqtttest.FreePort(t)
	cfg := writeConfig(t, dir, fmt.Sprintf("  embedded: 127.0.0.1:%d", port))
	data, err := os.ReadFile(cfg)
	require.NoError(t, err)
	require.Contains(t, string(data), "price: {max_age: 1h}")
	require.NoError(t, os.WriteFile(cfg, []byte(strings.Replace(string(data), "price: {max_age: 1h}", "price: {max_age: 2s}", 1)), 0o644))

	core, logs := observer.New(zapcore.InfoLevel)
	t.Setenv("SWITCHD_TEST_TOKEN", testToken)
	base, _ := runDaemon(t, cfg, zap.New(core))
	pub := pubWith(startPublisher(t, port))
	sendPrice(t, base, pub, 30)
	waitMining(t, base, 100)

	count := func(msg string) int { return logs.FilterMessage(msg).Len() }
	require.Eventually(t, func() bool { return count("input stale") == 1 && count("fail-safe engaged: stale inputs decide") == 1 },
		10*time.Second, 50*time.Millisecond, "stale price in the log:\n%v", logs.All())
	stale := logs.FilterMessage("input stale").AllUntimed()[0].ContextMap()
	require.Equal(t, "price", stale["input"])
	require.Equal(t, 30.0, stale["last_value"])
	require.Equal(t, "curtail", stale["fail_safe"])

	// The age keeps growing on /metrics while the feed is silent, and the
	// broker is connected.
	age := regexp.MustCompile(`(?m)^switchd_signal_age_seconds\{signal="price"\} ([0-9.e+]+)$`)
	var first string
	require.Eventually(t, func() bool {
		_, m := getText(t, base+"/metrics")
		if !strings.Contains(m, "\nswitchd_mqtt_connected 1\n") {
			return false
		}
		a := age.FindStringSubmatch(m)
		if a == nil {
			return false
		}
		if first == "" {
			first = a[1]
		}
		return a[1] != first
	}, 10*time.Second, 100*time.Millisecond, "switchd_signal_age_seconds{signal=\"price\"} and switchd_mqtt_connected 1 on /metrics")

	time.Sleep(2500 * time.Millisecond) // a few more ticks (1s) while stale
	require.Equal(t, 1, count("input stale"), "one line however many ticks")
	require.Equal(t, 1, count("fail-safe engaged: stale inputs decide"))

	sendPrice(t, base, pub, 31)
	require.Eventually(t, func() bool { return count("input fresh again") == 1 && count("fail-safe lifted") == 1 },
		10*time.Second, 50*time.Millisecond, "fresh price in the log:\n%v", logs.All())
	require.Equal(t, 31.0, logs.FilterMessage("input fresh again").AllUntimed()[0].ContextMap()["value"])
}

// TestOverrideLoggedOnce: setting and clearing an override through the API
// is one log line each (the API's, naming who asked), not one from the API
// and another from the daemon.
func TestOverrideLoggedOnce(t *testing.T) {
	dir := t.TempDir()
	port := mqtttest.FreePort(t)
	cfg := writeConfig(t, dir, fmt.Sprintf("  embedded: 127.0.0.1:%d", port))
	core, logs := observer.New(zapcore.InfoLevel)
	t.Setenv("SWITCHD_TEST_TOKEN", testToken)
	base, _ := runDaemon(t, cfg, zap.New(core))

	do := func(method, body string) int {
		req, err := http.NewRequest(method, base+"/api/v1/override", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusCreated, do(http.MethodPost, `{"fleet":"asics","mode":"off","duration":"1h","reason":"maintenance"}`))
	require.Equal(t, http.StatusOK, do(http.MethodDelete, ""))

	set := logs.FilterMessage("override set").AllUntimed()
	require.Len(t, set, 1, "override set:\n%v", set)
	require.Equal(t, "asics", set[0].ContextMap()["fleet"])
	require.Equal(t, "maintenance", set[0].ContextMap()["reason"])
	require.Contains(t, set[0].ContextMap(), "remote")
	require.Len(t, logs.FilterMessage("overrides cleared").AllUntimed(), 1)
}

// TestStateRepublishedAfterBrokerRestart: a broker that restarts without
// persistence loses the retained state topics; switchd publishes them
// again as soon as it reconnects, not at the next minute's heartbeat.
func TestStateRepublishedAfterBrokerRestart(t *testing.T) {
	port, restart := startMosquittoRestartable(t)
	dir := t.TempDir()
	base := startDaemon(t, writeConfig(t, dir, fmt.Sprintf("  broker: tcp://127.0.0.1:%d", port)))
	broker := fmt.Sprintf("tcp://127.0.0.1:%d", port)
	sendPrice(t, base, mosquittoPub(port), 30)
	waitMining(t, base, 100)
	before := newStateReader(t, broker, "e2e/state/fleets/asics")
	require.Eventually(t, func() bool { return before() != "" }, 5*time.Second, 20*time.Millisecond, "retained fleet state before the restart")

	restart()
	require.Eventually(t, func() bool {
		_, m := getText(t, base+"/metrics")
		return strings.Contains(m, "switchd_mqtt_connected 1")
	}, 20*time.Second, 100*time.Millisecond, "reconnected")
	after := newStateReader(t, broker, "e2e/state/fleets/asics")
	require.Eventually(t, func() bool { return strings.Contains(after(), `"name":"asics"`) }, 10*time.Second, 50*time.Millisecond,
		"the retained fleet state is back on the restarted broker")
}

// TestLogTellsStartupHold: a start with no price yet is one line saying
// the daemon holds (sheds only) and what it waits for, however many ticks
// it holds, and one line when the first price ends the hold.
func TestLogTellsStartupHold(t *testing.T) {
	dir := t.TempDir()
	port := mqtttest.FreePort(t)
	cfg := writeConfig(t, dir, fmt.Sprintf("  embedded: 127.0.0.1:%d", port))

	core, logs := observer.New(zapcore.InfoLevel)
	t.Setenv("SWITCHD_TEST_TOKEN", testToken)
	base, _ := runDaemon(t, cfg, zap.New(core))
	count := func(msg string) int { return logs.FilterMessage(msg).Len() }
	const held, over = "startup hold: only sheds the cap requires go out", "startup hold over: deciding on the inputs"
	require.Eventually(t, func() bool { return count(held) == 1 }, 10*time.Second, 50*time.Millisecond, "hold in the log:\n%v", logs.All())
	require.Contains(t, logs.FilterMessage(held).AllUntimed()[0].ContextMap()["waiting_for"], "price")

	time.Sleep(2500 * time.Millisecond) // a few more ticks (1s) in the hold
	require.Equal(t, 1, count(held), "one line however many ticks")
	require.Zero(t, count(over))

	pub := pubWith(startPublisher(t, port))
	sendPrice(t, base, pub, 30)
	require.Eventually(t, func() bool { return count(over) == 1 }, 10*time.Second, 50*time.Millisecond, "end of the hold in the log:\n%v", logs.All())
	waitMining(t, base, 100)
	require.Equal(t, 1, count(held))
	require.Equal(t, 1, count(over))
}
