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
	"go.uber.org/zap/zaptest"

	"github.com/switchd/switchd/controller/journal"
	"github.com/switchd/switchd/daemon/web"
	"github.com/switchd/switchd/dr"
)

// TestDREndToEndMosquitto publishes a demand-response event with
// mosquitto_pub through a real Mosquitto to the daemon, watches the site
// shed for it in the state API, and reads the compliance record back from
// the journal. A malformed event is rejected and counted on the way.
func TestDREndToEndMosquitto(t *testing.T) {
	port := startMosquitto(t)
	dir := t.TempDir()
	base := startDaemon(t, writeConfig(t, dir, fmt.Sprintf("  broker: tcp://127.0.0.1:%d", port)))
	pub := mosquittoPub(port)
	sendPrice(t, base, pub, 30)
	waitMining(t, base, 100)

	pub(t, "e2e/signals/dr", `{"id":"bad","program":"ers","target_kw":-5}`)
	// 20 GPUs serving inference draw 25.5 kW and 100 idle miners 1 kW:
	// under 100 kW, at most 21 miners may run. The deadline leaves the
	// sheds (100 ms here) time to land even on a loaded machine.
	now := time.Now().UTC().Truncate(time.Millisecond)
	ts := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339Nano) }
	pub(t, "e2e/signals/dr", fmt.Sprintf(`{"id":"e2e-1","program":"ers","target_kw":100,"notice":%q,"start":%q,"deadline":%q,"end":%q,"interval":"1m"}`,
		ts(0), ts(2*time.Second), ts(4*time.Second), ts(6*time.Second)))

	var rec dr.Record
	sawActive, mining := false, 0
	require.Eventually(t, func() bool {
		var st web.StateView
		getJSON(t, base+"/api/v1/state", &st)
		for _, r := range st.DR {
			if r.Event.ID != "e2e-1" {
				continue
			}
			if r.Phase == dr.PhaseActive && !r.MetAt.IsZero() {
				sawActive = true
				mining = max(mining, fleet(st, "asics").Modes["mining"])
			}
			rec = r
			return r.Phase == dr.PhaseEnded
		}
		return false
	}, 20*time.Second, 50*time.Millisecond, "the event never ended in the state API")
	require.True(t, sawActive)
	require.LessOrEqual(t, mining, 21, "shed under the event's cap while it was met")
	require.True(t, rec.Met, "met by its deadline: %+v", rec)
	require.Empty(t, rec.Alarm)
	require.Equal(t, 100.0, rec.CapKW)
	require.Zero(t, rec.ShortfallKWh)
	require.Len(t, rec.Intervals, 1, "one (short) interval of 1m")

	_, metrics := getText(t, base+"/metrics")
	require.Contains(t, metrics, `switchd_signal_rejected_total{reason="invalid_event",signal="dr"} 1`)
	require.Contains(t, metrics, `switchd_dr_events_received_total 1`)
	require.Contains(t, metrics, `switchd_dr_alarms_total 0`)

	// The journal holds the event's moments, the last one its compliance.
	f, err := os.Open(filepath.Join(dir, "state", "journal.log"))
	require.NoError(t, err)
	defer f.Close()
	entries, err := journal.DREntries(f)
	require.NoError(t, err)
	var moments []string
	for _, e := range entries {
		moments = append(moments, e.Reason)
	}
	require.Equal(t, []string{"received", "started", "ended"}, moments)
	var final dr.Record
	require.NoError(t, json.Unmarshal(entries[len(entries)-1].DR, &final))
	require.Equal(t, "e2e-1", final.Event.ID)
	require.True(t, final.Met)
	require.False(t, final.MetAt.After(final.Event.DeadlineOrStart()))
	require.Equal(t, dr.PhaseEnded, final.Phase)
	require.NotEmpty(t, final.Intervals)
	require.LessOrEqual(t, final.Intervals[0].MeanKW, 400.0)
	require.False(t, strings.Contains(string(entries[0].DR), "\n"), "stored compacted")
}

// TestDRResumedAfterRestart: a daemon restarted in the middle of an event
// takes it back from the journal with its baseline and cap, and keeps the
// site under the cap.
func TestDRResumedAfterRestart(t *testing.T) {
	port := startMosquitto(t)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf("  broker: tcp://127.0.0.1:%d", port))
	t.Setenv("SWITCHD_TEST_TOKEN", testToken)
	base, stop := runDaemon(t, cfg, zaptest.NewLogger(t))
	pub := mosquittoPub(port)
	sendPrice(t, base, pub, 30)
	waitMining(t, base, 100)
	now := time.Now().UTC().Truncate(time.Millisecond)
	ts := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339Nano) }
	pub(t, "e2e/signals/dr", fmt.Sprintf(`{"id":"long","program":"ers","target_kw":100,"notice":%q,"start":%q,"end":%q,"interval":"1m"}`,
		ts(0), ts(time.Second), ts(10*time.Minute)))
	active := func(base string) (dr.Record, bool) {
		var st web.StateView
		getJSON(t, base+"/api/v1/state", &st)
		for _, r := range st.DR {
			if r.Event.ID == "long" && r.Phase == dr.PhaseActive && r.Met {
				return r, fleet(st, "asics").Modes["mining"] <= 21
			}
		}
		return dr.Record{}, false
	}
	var before dr.Record
	require.Eventually(t, func() bool {
		var ok bool
		before, ok = active(base)
		return ok
	}, 20*time.Second, 50*time.Millisecond)
	stop()

	base, _ = runDaemon(t, cfg, zaptest.NewLogger(t))
	var after dr.Record
	require.Eventually(t, func() bool {
		var ok bool
		after, ok = active(base)
		return ok
	}, 20*time.Second, 50*time.Millisecond, "the restarted daemon holds the event's cap")
	require.Equal(t, before.BaselineKW, after.BaselineKW)
	require.Equal(t, before.CapKW, after.CapKW)
	require.Equal(t, before.MetAt, after.MetAt)
}
