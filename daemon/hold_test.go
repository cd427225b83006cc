package daemon_test

import (
	"bufio"
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
	"github.com/switchd/switchd/controller/journal"
	"github.com/switchd/switchd/daemon/web"
	"github.com/switchd/switchd/internal/mqtttest"
	"go.uber.org/zap/zaptest"
)

// holdSite writes the test site with the given interconnect cap, ASICs
// starting in asicsInitial (the sim driver's initial mode, when the journal
// has no state for them), and a price fail-safe.
func holdSite(t *testing.T, dir string, port int, capKW float64, asicsInitial, failSafe string) string {
	t.Helper()
	return writeSite(t, dir, testSite{mqtt: fmt.Sprintf("  embedded: 127.0.0.1:%d", port), capKW: capKW, asicsInitial: asicsInitial, failSafe: failSafe})
}

// commandsSinceStart returns the command entries journalled since the last
// "start" entry (this run's).
func commandsSinceStart(t *testing.T, path string) []journal.Entry {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []journal.Entry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e journal.Entry
		require.NoError(t, json.Unmarshal(sc.Bytes(), &e))
		switch e.Kind {
		case "start":
			out = out[:0]
		case "command":
			out = append(out, e)
		}
	}
	require.NoError(t, sc.Err())
	return out
}

// requireShedsOnly checks that every command is a move to off.
func requireShedsOnly(t *testing.T, cmds []journal.Entry) {
	t.Helper()
	for _, c := range cmds {
		require.Equal(t, "off", c.To, "only sheds during the startup hold: %+v", c)
	}
}

func stateOf(t *testing.T, base string) web.StateView {
	t.Helper()
	var st web.StateView
	getJSON(t, base+"/api/v1/state", &st)
	return st
}

// observed reports whether the state shows every device of both fleets
// (the drivers have been read).
func observed(st web.StateView) bool {
	return fleet(st, "asics").Modes["mining"]+fleet(st, "asics").Modes["off"] == 100 &&
		fleet(st, "gpus").Modes["inference"]+fleet(st, "gpus").Modes["off"] == 20
}

// waitingForPrice reports whether the state says the startup hold waits
// for the first price.
func waitingForPrice(st web.StateView) bool {
	for _, w := range st.Waiting {
		if strings.Contains(w, "the first price signal since the start") {
			return !st.Ready
		}
	}
	return false
}

// TestStartupHoldShedsForLoweredCap: the site's cap is lowered across a
// restart, with the fleet resumed from the journal above the new cap and
// the last decision's price too old to resume. The restarted daemon waits
// for a price before acting on the economics (the startup hold), but the
// cap holds from its first ticks: sheds go out before any price arrives,
// and nothing else is commanded.
func TestStartupHoldShedsForLoweredCap(t *testing.T) {
	dir := t.TempDir()
	port := mqtttest.FreePort(t)
	cfg := holdSite(t, dir, port, 1000, "off", "hold")
	jpath := filepath.Join(dir, "state/journal.log")
	t.Setenv("SWITCHD_TEST_TOKEN", testToken)

	// A price sampled 1h-8s ago: fresh enough to mine on for 8 s, too old
	// to resume after the restart.
	base, stop := runDaemon(t, cfg, zaptest.NewLogger(t))
	pub := pubWith(startPublisher(t, port))
	sampled := time.Now().Add(-time.Hour + 8*time.Second)
	require.Eventually(t, func() bool {
		pub(t, "e2e/signals/price", fmt.Sprintf(`{"ts":%q,"value":30}`, sampled.UTC().Format(time.RFC3339Nano)))
		time.Sleep(100 * time.Millisecond)
		for _, s := range stateOf(t, base).Signals {
			if s.Name == "price" && s.Value != nil {
				return true
			}
		}
		return false
	}, 5*time.Second, time.Millisecond, "price arrived")
	waitMining(t, base, 100)
	time.Sleep(time.Until(sampled.Add(time.Hour + time.Second))) // past its max_age
	stop()

	// The operator lowers the cap to 200 kW (the site draws 100 × 3.5 kW
	// and the GPUs) and restarts.
	cfg = holdSite(t, dir, port, 200, "off", "hold")
	base, _ = runDaemon(t, cfg, zaptest.NewLogger(t))
	var st web.StateView
	require.Eventually(t, func() bool {
		st = stateOf(t, base)
		return observed(st) && st.PowerKW <= 200 && fleet(st, "asics").Moving == 0 && fleet(st, "gpus").Moving == 0
	}, 10*time.Second, 50*time.Millisecond, "shed under the lowered cap before any price: %+v", st.Fleets)
	require.True(t, waitingForPrice(st), "still in the startup hold: %v", st.Waiting)
	sheds := commandsSinceStart(t, jpath)
	require.NotEmpty(t, sheds)
	requireShedsOnly(t, sheds)

	// A few more held ticks: nothing else moves.
	time.Sleep(2500 * time.Millisecond)
	st = stateOf(t, base)
	require.True(t, waitingForPrice(st), "still in the startup hold: %v", st.Waiting)
	require.Equal(t, sheds, commandsSinceStart(t, jpath), "no command after the sheds")
}

// TestStartupHoldShedsForOverride: a fresh start finds the miners mining
// (they rebooted into it) under the cap, with no price: nothing at all is
// commanded (the price fail-safe, curtail, does not act on a price that has
// not arrived yet). An operator's cap override set during the hold sheds
// at once; the GPUs, which the fallbacks would start, stay off.
func TestStartupHoldShedsForOverride(t *testing.T) {
	dir := t.TempDir()
	port := mqtttest.FreePort(t)
	cfg := holdSite(t, dir, port, 1000, "mining", "curtail")
	jpath := filepath.Join(dir, "state/journal.log")
	t.Setenv("SWITCHD_TEST_TOKEN", testToken)
	base, _ := runDaemon(t, cfg, zaptest.NewLogger(t))

	var st web.StateView
	require.Eventually(t, func() bool {
		st = stateOf(t, base)
		return fleet(st, "asics").Modes["mining"] == 100 && waitingForPrice(st)
	}, 10*time.Second, 50*time.Millisecond, "held, miners seen mining")
	time.Sleep(2500 * time.Millisecond) // a few held ticks at 1s
	require.Empty(t, commandsSinceStart(t, jpath), "nothing commanded within the cap")
	require.Equal(t, 100, fleet(stateOf(t, base), "asics").Modes["mining"])

	req, err := http.NewRequest(http.MethodPost, base+"/api/v1/override",
		strings.NewReader(`{"site_cap_kw":100,"duration":"10m","reason":"feeder work"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(body))

	require.Eventually(t, func() bool {
		st = stateOf(t, base)
		return observed(st) && st.PowerKW <= 100 && fleet(st, "asics").Moving == 0
	}, 10*time.Second, 50*time.Millisecond, "shed under the override's cap: %+v", st.Fleets)
	require.True(t, waitingForPrice(st), "still in the startup hold: %v", st.Waiting)
	require.Zero(t, fleet(st, "gpus").Modes["inference"], "no GPU started")
	sheds := commandsSinceStart(t, jpath)
	require.NotEmpty(t, sheds)
	requireShedsOnly(t, sheds)
}

// TestStartupHoldWaitsForFreshPrice: a retained bare-number price, of
// unknown age, counts as stale on arrival; it does not end the startup
// hold (the daemon would curtail every miner on it), a fresh price does.
func TestStartupHoldWaitsForFreshPrice(t *testing.T) {
	port := startMosquitto(t)
	out, err := exec.Command("mosquitto_pub", "-h", "127.0.0.1", "-p", fmt.Sprint(port), "-q", "1", "-r", "-t", "e2e/signals/price", "-m", "30").CombinedOutput()
	require.NoError(t, err, string(out))
	dir := t.TempDir()
	cfg := writeSite(t, dir, testSite{mqtt: fmt.Sprintf("  broker: tcp://127.0.0.1:%d", port), asicsInitial: "mining"})
	jpath := filepath.Join(dir, "state/journal.log")
	t.Setenv("SWITCHD_TEST_TOKEN", testToken)
	base, _ := runDaemon(t, cfg, zaptest.NewLogger(t))

	var st web.StateView
	require.Eventually(t, func() bool {
		st = stateOf(t, base)
		for _, s := range st.Signals {
			if s.Name == "price" && s.Value != nil && s.Stale {
				return observed(st) && waitingForPrice(st)
			}
		}
		return false
	}, 10*time.Second, 50*time.Millisecond, "the retained price shown stale, the hold on: %v", st.Waiting)
	time.Sleep(2500 * time.Millisecond) // a few held ticks at 1s
	require.Empty(t, commandsSinceStart(t, jpath), "nothing commanded on a price of unknown age")
	require.Equal(t, 100, fleet(stateOf(t, base), "asics").Modes["mining"])

	sendPrice(t, base, mosquittoPub(port), 30)
	require.Eventually(t, func() bool {
		st = stateOf(t, base)
		return st.Ready && fleet(st, "gpus").Modes["inference"] == 20
	}, 15*time.Second, 50*time.Millisecond, "a fresh price ends the hold: %v", st.Waiting)
	require.Equal(t, 100, fleet(st, "asics").Modes["mining"], "mining pays at 30 USD/MWh")
}
