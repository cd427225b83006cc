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
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/fakes"
	"github.com/switchd/switchd/drivers/luxos/luxosfake"
	"github.com/switchd/switchd/drivers/whatsminer/whatsminerfake"
	"github.com/switchd/switchd/internal/mqtttest"
)

// startProcess runs a program until the test ends, keeping its output for
// a failure report.
func startProcess(t *testing.T, name string, args ...string) *mqtttest.Buffer {
	t.Helper()
	out := &mqtttest.Buffer{}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(name), out.String())
		}
	})
	return out
}

// TestDevicesEndToEnd runs the built binary against fake miners that speak
// the real LuxOS and Whatsminer protocols on their own loopback addresses,
// with signals through a real Mosquitto: a price spike published with
// mosquitto_pub ends with every fake miner asleep, and cheap power wakes
// them again.
func TestDevicesEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	// A real broker on a free loopback port.
	broker := mqtttest.Start(t)
	mport := broker.Port()
	dir := t.TempDir()

	// Fake miners, mining, each on its own loopback address (port 4028, as
	// on a LAN). The third octet is random so that parallel runs do not
	// collide.
	oct := 100 + os.Getpid()%100
	var lux, wm []switchd.Device
	for i := 1; i <= 12; i++ {
		lux = append(lux, switchd.Device{Addr: fmt.Sprintf("127.%d.1.%d", oct, i)})
	}
	for i := 1; i <= 6; i++ {
		wm = append(wm, switchd.Device{Addr: fmt.Sprintf("127.%d.2.%d", oct, i)})
	}
	set, err := fakes.Start([]fakes.Fleet{
		{Driver: "luxos", Devices: lux, Running: true, Ramp: 2 * time.Second},
		{Driver: "whatsminer", Devices: wm, Password: "e2e-admin", Running: true, Ramp: 2 * time.Second},
	})
	if err != nil && strings.Contains(err.Error(), "cannot assign") {
		t.Skipf("loopback addresses beyond 127.0.0.1 not available: %v", err)
	}
	require.NoError(t, err)
	t.Cleanup(set.Close)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "wm.pass"), []byte("e2e-admin\n"), 0o600))
	var devs = func(ds []switchd.Device) string {
		var s []string
		for _, d := range ds {
			s = append(s, d.Addr)
		}
		return "[" + strings.Join(s, ", ") + "]"
	}
	hport := mqtttest.FreePort(t)
	site := fmt.Sprintf(`site: {name: e2e, timezone: UTC, power_cap_kw: 1000}
policy: policy.yaml
tick: 1s
mqtt: {broker: "tcp://127.0.0.1:%d"}
http: {listen: "127.0.0.1:%d"}
journal: {path: state/journal.log}
fleets:
  - name: luxos
    kind: asic
    devices: %s
    driver: luxos
    settings: {timeout: 2s, grace: 5s}
    modes: {off: {power_kw: 0.02}, mining: {power_kw: 2.76, hashrate_ths: 120}}
    transitions: {off->mining: 5s, mining->off: 2s}
  - name: whatsminer
    kind: asic
    devices: %s
    driver: whatsminer
    settings: {password_file: wm.pass, timeout: 2s, grace: 5s, warmup: 5s}
    modes: {off: {power_kw: 0.015}, mining: {power_kw: 3.4, hashrate_ths: 100}}
    transitions: {off->mining: 5s, mining->off: 2s}
`, mport, hport, devs(lux), devs(wm))
	policy := `fallbacks: {hashprice_usd_ph_day: 48}
fail_safe: {price: hold}
rules:
  - name: price-spike
    when: {price_above_usd_mwh: 1000}
    then: {force: {luxos: off, whatsminer: off}}
`
	cfg := filepath.Join(dir, "site.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(site), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(policy), 0o600))

	bin := buildSwitchd(t)
	code, _, errOut := runCmd("validate", "--config", cfg)
	require.Equal(t, 0, code, errOut)
	startProcess(t, bin, "run", "--config", cfg, "--log-level", "debug")

	base := fmt.Sprintf("http://127.0.0.1:%d", hport)
	state := func() map[string]any {
		resp, err := http.Get(base + "/api/v1/state")
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		var v map[string]any
		if json.NewDecoder(resp.Body).Decode(&v) != nil {
			return nil
		}
		return v
	}
	publish := func(price string) { broker.Pub("switchd/e2e/signals/price", price) }
	luxAsleep := func(want bool) bool {
		for _, d := range lux {
			if set.Get(d.Addr).(*luxosfake.Miner).Asleep() != want {
				return false
			}
		}
		return true
	}
	wmMode := func(want switchd.Mode) bool {
		for _, d := range wm {
			if set.Get(d.Addr).(*whatsminerfake.Miner).Mode() != want {
				return false
			}
		}
		return true
	}

	require.Eventually(t, func() bool { return state() != nil }, 30*time.Second, 100*time.Millisecond, "daemon up")
	publish("30")
	require.Eventually(t, func() bool {
		v := state()
		return v != nil && v["ready"] == true
	}, 20*time.Second, 100*time.Millisecond, "ready once the price arrived and every fleet answered")
	require.True(t, luxAsleep(false) && wmMode(switchd.ModeMining), "cheap power: still mining")

	// The spike: every fake miner ends asleep, by command, confirmed by
	// what the devices report.
	publish("5000")
	require.Eventually(t, func() bool { return luxAsleep(true) && wmMode(switchd.ModeOff) }, 20*time.Second, 100*time.Millisecond, "every fake miner asleep")
	require.Eventually(t, func() bool {
		v := state()
		if v == nil {
			return false
		}
		for _, f := range v["fleets"].([]any) {
			modes := f.(map[string]any)["modes"].(map[string]any)
			if modes["mining"].(float64) != 0 {
				return false
			}
		}
		return true
	}, 20*time.Second, 100*time.Millisecond, "the state API shows what the devices report")

	// Cheap again: they wake (min dwell is 0 here).
	publish("25")
	require.Eventually(t, func() bool { return luxAsleep(false) && wmMode(switchd.ModeMining) }, 30*time.Second, 100*time.Millisecond, "every fake miner awake again")

	// The journal holds the decisions and verifies.
	code, jout, jerr := runCmd("journal", "verify", filepath.Join(dir, "state/journal.log"))
	require.Equal(t, 0, code, jerr)
	require.Contains(t, jout, "chain intact")
}
