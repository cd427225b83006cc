package daemon_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/policies"
	"github.com/switchd/switchd/trace"
)

// TestDemoShowsASpikeEarly: `switchd run --config examples/demo.yaml` must
// show something within its first two minutes: cheap power first (the
// fleet starts), then a price above the demo policy's spike rule (the fleet
// sheds), at the demo's replay speed. Its inputs fit the site: the AI
// demand never asks for more GPUs than the site has. The trace is the
// project's own, labelled SYNTHETIC.
func TestDemoShowsASpikeEarly(t *testing.T) {
	site, err := config.LoadSite("../examples/demo.yaml")
	require.NoError(t, err)
	data, err := os.ReadFile(site.Daemon.PolicyPath)
	require.NoError(t, err)
	pol, err := policies.ParsePolicy(site.Daemon.PolicyPath, data, site)
	require.NoError(t, err)
	demo := site.Daemon.Demo
	require.NotNil(t, demo)
	require.Contains(t, filepath.Base(demo.Trace), "SYNTHETIC")
	require.Positive(t, demo.Speed)

	spike := 0.0
	for _, r := range pol.Rules {
		if r.When.PriceAbove != nil && (spike == 0 || *r.When.PriceAbove < spike) {
			spike = *r.When.PriceAbove
		}
	}
	require.Positive(t, spike, "the demo policy has a price-spike rule")
	gpus := 0
	for _, f := range site.Fleets {
		if f.Spec.Kind == switchd.KindGPU {
			gpus += f.Spec.Count
		}
	}
	require.Positive(t, gpus)

	src, _, closer, err := trace.Open([]string{demo.Trace})
	require.NoError(t, err)
	defer closer.Close()
	// Two minutes of wall time is this much of the trace.
	window := time.Duration(float64(2*time.Minute) * demo.Speed)
	var start, spikeAt time.Time
	var firstPrice float64
	rows := 0
	for {
		row, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if rows == 0 {
			start = row.Time
		}
		rows++
		if row.Has[switchd.SignalAIDemand] {
			require.LessOrEqual(t, row.Values[switchd.SignalAIDemand], float64(gpus), "%s: AI demand beyond the site's %d GPUs", row.Time, gpus)
		}
		if !row.Has[switchd.SignalPrice] {
			continue
		}
		p := row.Values[switchd.SignalPrice]
		if firstPrice == 0 {
			firstPrice = p
		}
		if spikeAt.IsZero() && p > spike {
			spikeAt = row.Time
		}
	}
	require.Positive(t, rows)
	require.Less(t, firstPrice, spike, "the demo starts on cheap power, so the fleet has something to shed")
	require.False(t, spikeAt.IsZero(), "no price above %v USD/MWh in the demo trace", spike)
	wall := time.Duration(float64(spikeAt.Sub(start)) / demo.Speed)
	require.LessOrEqual(t, spikeAt.Sub(start), window,
		"the first price above %v USD/MWh comes %s into the replay (%s of trace): a newcomer waits too long", spike, wall.Round(time.Second), spikeAt.Sub(start))
	require.GreaterOrEqual(t, wall, 30*time.Second, "the fleet needs time to start before the spike sheds it")
}
