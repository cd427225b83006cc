package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchd/switchd/controller/journal"
)

// readJournal reads every entry of a journal file.
func readJournal(t *testing.T, path string) []journal.Entry {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []journal.Entry
	for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		var e journal.Entry
		require.NoError(t, json.Unmarshal(line, &e))
		out = append(out, e)
	}
	return out
}

// TestJournalFullDiskShedsAndRecovers runs the daemon's tick with its
// journal on a 64 KiB tmpfs that fills up: a shed still goes out, starts
// are held, the alarm shows on /readyz, /api/v1/state and the metric, and
// all of it clears by itself once space is freed (before, the journal's
// failure was sticky until a restart).
func TestJournalFullDiskShedsAndRecovers(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })

	d, reg, clk := newTestDaemon(t, nil)
	require.NoError(t, d.journal.Close())
	j, _, err := journal.Open(filepath.Join(dir, "journal.log"), d.log)
	require.NoError(t, err)
	d.journal = j
	t.Cleanup(func() { _ = j.Close() })

	// Cheap power: the ASICs start and land.
	observePrice(d, clk, 30)
	d.tick(t.Context())
	clk.advance(5 * time.Second)
	observePrice(d, clk, 30)
	d.tick(t.Context())
	require.Equal(t, 100, viewFleet(d.State(), "asics").Modes["mining"])

	// The disk fills up.
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	require.NoError(t, err)
	chunk := bytes.Repeat([]byte("x"), 1024)
	for {
		if _, err := f.Write(chunk); err != nil {
			require.True(t, errors.Is(err, syscall.ENOSPC), "%v", err)
			break
		}
	}
	require.NoError(t, f.Close())
	// The journal's last page may still have room: append until it fails.
	for i := 0; ; i++ {
		require.Less(t, i, 200, "the journal never failed on a full disk")
		if d.appendJournal(journal.Entry{Time: clk.Now(), Kind: journal.KindStart, Reason: "filling the last page"}) != nil {
			break
		}
	}

	// A price spike: the shed goes out although nothing can be journalled.
	clk.advance(time.Second)
	observePrice(d, clk, 400)
	d.tick(t.Context())
	clk.advance(5 * time.Second)
	observePrice(d, clk, 400)
	d.tick(t.Context())
	v := d.State()
	require.Zero(t, viewFleet(v, "asics").Modes["mining"], "shed despite the failing journal: %+v", viewFleet(v, "asics"))
	require.NotNil(t, v.Journal)
	require.NotEmpty(t, v.Journal.Error)
	ready, why := d.Ready()
	require.True(t, ready, "a failing journal leaves the daemon ready: it still sheds")
	require.Contains(t, why, "journal failing")
	require.InDelta(t, 1, metricValue(t, reg, "switchd_journal_failing", nil), 0)

	// Cheap again: starts are held while the journal fails.
	clk.advance(time.Second)
	observePrice(d, clk, 30)
	d.tick(t.Context())
	v = d.State()
	require.Zero(t, viewFleet(v, "asics").Modes["mining"]+viewFleet(v, "asics").Moving, "no start without a journal")
	require.NotEmpty(t, v.Decisions[0].Held)

	// Space is back: the next tick journals, the alarm clears, starts go.
	require.NoError(t, os.Remove(filler))
	clk.advance(time.Second)
	observePrice(d, clk, 30)
	d.tick(t.Context())
	v = d.State()
	require.Empty(t, v.Journal.Error)
	_, why = d.Ready()
	require.NotContains(t, why, "journal")
	require.InDelta(t, 0, metricValue(t, reg, "switchd_journal_failing", nil), 0)
	// What was sent while the journal failed is recorded now: the shed
	// commands, their acknowledgement and the state they left, so that a
	// restart resumes from the truth.
	entries := readJournal(t, filepath.Join(dir, "journal.log"))
	var shed, acked bool
	var shedState *journal.Entry
	for _, e := range entries {
		switch {
		case e.Kind == journal.KindCommand && e.Fleet == "asics" && e.From == "mining" && e.To == "off":
			shed = true
		case e.Kind == journal.KindAck && e.Fleet == "asics" && shed:
			acked = true
		case e.Kind == journal.KindState && e.Fleet == "asics" && shed && shedState == nil:
			shedState = &e
		}
	}
	require.True(t, shed, "the shed sent while failing is journalled")
	require.True(t, acked)
	require.NotNil(t, shedState)
	require.Zero(t, shedState.Counts["mining"], "the state the shed left is journalled: %+v", shedState)
	// Starts resume (after the policy's own dwell and hysteresis).
	for i := 0; viewFleet(v, "asics").Modes["mining"]+viewFleet(v, "asics").Moving == 0; i++ {
		require.Less(t, i, 60, "starts never resumed: %+v", v.Decisions[0])
		clk.advance(time.Minute)
		observePrice(d, clk, 30)
		d.tick(t.Context())
		v = d.State()
	}
	require.Empty(t, v.Journal.Error)
}

// TestLateRecordBounded keeps at most maxLateEntries entries for a journal
// that never recovers, counting those dropped.
func TestLateRecordBounded(t *testing.T) {
	var l lateRecord
	for i := range maxLateEntries + 10 {
		l.add(journal.Entry{Seq: uint64(i), Kind: journal.KindAck})
	}
	require.Len(t, l.pending, maxLateEntries)
	require.Equal(t, 10, l.dropped)
	require.Equal(t, uint64(10), l.pending[0].Seq, "the oldest are dropped")
}
