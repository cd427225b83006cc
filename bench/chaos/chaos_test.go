package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd/internal/mqtttest"
)

// chaosDuration is how long the chaos tests run, from SWITCHD_CHAOS (a Go
// duration such as 60s); unset, they skip: they take minutes, so the
// ordinary test run leaves them out and .ci/run runs them by name.
func chaosDuration(t *testing.T) time.Duration {
	t.Helper()
	v := os.Getenv("SWITCHD_CHAOS")
	if v == "" {
		t.Skip("set SWITCHD_CHAOS=60s to run the chaos test (it takes that long)")
	}
	d, err := time.ParseDuration(v)
	require.NoError(t, err, "SWITCHD_CHAOS")
	mqtttest.RequireTool(t, "mosquitto")
	mqtttest.RequireTool(t, "mosquitto_pub")
	return d
}

// TestChaos runs switchd through every kind of fault for SWITCHD_CHAOS and
// requires every invariant to hold, each checked at least once.
func TestChaos(t *testing.T) {
	d := chaosDuration(t)
	var log bytes.Buffer
	rep, err := Run(Options{Duration: d, Seed: time.Now().UnixNano() % 1_000_000_007, Devices: 12, Log: &log})
	require.NoError(t, err, log.String())
	var out strings.Builder
	rep.Print(&out)
	t.Log("\n" + out.String())
	for _, k := range faultKinds {
		if k == "disk_full" && rep.DiskNotice != "" {
			continue
		}
		if d >= time.Minute {
			require.Positive(t, rep.Faults[k], "fault %s never injected in %s", k, d)
		}
	}
	for _, k := range invariantNames {
		if (k == invariantNames[3] && rep.Restarts == 0) || (k == invariantNames[6] && rep.DiskAlarmSeen == 0) ||
			(k == invariantNames[7] && rep.HoldAbove == 0) {
			continue
		}
		require.Positive(t, rep.Inv[k].checks, "invariant %q never checked", k)
	}
	require.Zero(t, rep.Violations(), "seed %d:\n%s\n%s", rep.Seed, out.String(), log.String())
	require.Positive(t, rep.CommandsApplied["sleep"]+rep.CommandsApplied["wakeup"], "no device was ever commanded")
	if rep.HoldAbove > 0 {
		require.Positive(t, rep.HoldDecisions, "a restart above the cap with no price was not shed in the startup hold")
	}
}

// TestChaosCatchesMiningAboveBreakeven checks the checker: a policy that
// forces the miners to mine whatever the price must be caught mining above
// breakeven, with no fault injected.
func TestChaosCatchesMiningAboveBreakeven(t *testing.T) {
	chaosDuration(t)
	var log bytes.Buffer
	rep, err := Run(Options{Duration: 40 * time.Second, Seed: 1, Devices: 4, NoFaults: true, Log: &log,
		PolicyExtra: "rules:\n  - name: always\n    when: {price_above_usd_mwh: -1000}\n    then: {force: {luxos: mining}}\n"})
	require.NoError(t, err, log.String())
	var out strings.Builder
	rep.Print(&out)
	t.Log("\n" + out.String())
	require.Positive(t, rep.Inv[invariantNames[1]].violations, "a fleet forced to mine through dear prices went unnoticed")
}
