package main

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/switchd/switchd/controller/journal"
	"github.com/switchd/switchd/dr"
)

// TestJournalEvents writes an event's moments as the daemon journals them
// and prints them back with `switchd journal --events` and `journal events
// --format json`.
func TestJournalEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.log")
	j, _, err := journal.Open(path, zaptest.NewLogger(t))
	require.NoError(t, err)
	t0 := time.Date(2024, 8, 20, 19, 0, 0, 0, time.UTC)
	tgt := 100.0
	ev := dr.Event{ID: "ers-7", Program: "ers", TargetKW: &tgt, Notice: t0, Start: t0.Add(10 * time.Minute), End: t0.Add(40 * time.Minute)}
	var m dr.Meter
	m.Set(t0.Add(-3*time.Hour), 400)
	rec := dr.NewRecord(ev, t0, time.Minute)
	add := func(at time.Time, moment string) {
		raw, err := json.Marshal(rec)
		require.NoError(t, err)
		require.NoError(t, j.Append(journal.Entry{Time: at, Kind: journal.KindDR, Reason: moment, DR: raw}))
	}
	add(t0, "received")
	// Unrelated entries between are skipped.
	require.NoError(t, j.Append(journal.Entry{Time: t0, Kind: journal.KindStart}))
	for _, step := range []struct {
		at time.Duration
		kw float64
	}{{0, 400}, {9 * time.Minute, 400}, {10 * time.Minute, 90}, {40 * time.Minute, 90}} {
		m.Set(t0.Add(step.at), step.kw)
		rec.Update(t0.Add(step.at), &m, step.kw)
		if step.at == 10*time.Minute {
			add(t0.Add(step.at), "started")
		}
	}
	add(t0.Add(40*time.Minute), "ended")
	require.NoError(t, j.Close())

	code, out, errOut := runCmd("journal", "--events", path)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "event ers-7")
	require.Contains(t, out, "target 100.0 kW")
	require.Contains(t, out, "final")
	require.Contains(t, out, "baseline 400.0 kW (100% measured)")
	require.Contains(t, out, "met by deadline yes at 2024-08-20T19:10:00Z")
	require.Contains(t, out, "shortfall 0.000 kWh  alarm -")
	require.Contains(t, out, "interval 2024-08-20T19:25:00Z")

	code, out, errOut = runCmd("journal", "events", path, "--format", "json")
	require.Equal(t, 0, code, errOut)
	var got []struct {
		Record  dr.Record `json:"record"`
		Final   bool      `json:"final"`
		Moments []struct {
			Moment string `json:"moment"`
		} `json:"moments"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	require.Len(t, got, 1)
	require.True(t, got[0].Final)
	require.Len(t, got[0].Moments, 3)
	require.Equal(t, dr.PhaseEnded, got[0].Record.Phase)
	require.Len(t, got[0].Record.Intervals, 2)

	code, _, errOut = runCmd("journal", "events", path, "--format", "yaml")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "--format must be text or json")
}

// TestSimEventsExample replays the example events file over the example
// trace: every event is met, in text and in the JSON block.
func TestSimEventsExample(t *testing.T) {
	args := []string{"sim", "--config", "../../examples/site.yaml", "--policy", "../../examples/policies/price-only.yaml",
		"--trace", "../../examples/traces/SYNTHETIC-sample-2024-01.csv", "--events", "../../examples/SYNTHETIC-dr-events.jsonl"}
	code, out, errOut := runCmd(args...)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "SIMULATED demand-response compliance: 3 met by deadline, 0 not met")
	code, out, errOut = runCmd(append(args, "--format", "json")...)
	require.Equal(t, 0, code, errOut)
	var rep struct {
		DR struct {
			Simulated bool `json:"simulated"`
			Met       int  `json:"met"`
			Events    []struct {
				ID string `json:"id"`
			} `json:"events"`
		} `json:"dr"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.True(t, rep.DR.Simulated)
	require.Equal(t, 3, rep.DR.Met)
	require.Len(t, rep.DR.Events, 3)

	code, _, errOut = runCmd("sim", "--config", "../../examples/site.yaml", "--policy", "../../examples/policies/price-only.yaml",
		"--trace", "../../examples/traces/SYNTHETIC-sample-2024-01.csv", "--events", "../../examples/site.yaml")
	require.NotZero(t, code)
	require.Contains(t, errOut, "site.yaml:11: event: invalid character", "a bad events file names the line")
}
