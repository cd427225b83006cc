package trace

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
)

func TestSyntheticSourceWith(t *testing.T) {
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, trCST)
	const n = 7 * 96

	t.Run("zero options are SyntheticSource", func(t *testing.T) {
		plain, err := trReadAll(SyntheticSource(start, 15*time.Minute, n, 1))
		require.NoError(t, err)
		with, err := trReadAll(SyntheticSourceWith(start, 15*time.Minute, n, 1, SyntheticOptions{}))
		require.NoError(t, err)
		require.Equal(t, plain, with)
	})

	t.Run("a spike where asked and the AI demand given", func(t *testing.T) {
		rows, err := trReadAll(SyntheticSourceWith(start, 15*time.Minute, n, 1, SyntheticOptions{AIDemandGPUs: 250, SpikeAt: 14 * time.Hour}))
		require.NoError(t, err)
		require.Len(t, rows, n)
		for i, r := range rows {
			require.Equal(t, 250.0, r.Values[switchd.SignalAIDemand])
			p := r.Values[switchd.SignalPrice]
			at := r.Time.Sub(start)
			switch {
			case at >= 14*time.Hour && at < 14*time.Hour+synthForcedSpike:
				require.Greater(t, p, 600.0, "row %d (%s) is in the spike", i, at)
			case at == 14*time.Hour+synthForcedSpike:
				require.Less(t, p, 200.0, "the spike lasts 90 minutes")
			}
		}
		// Seed 1 has no random spike in its first day: the forced one
		// comes first.
		for _, r := range rows {
			if r.Values[switchd.SignalPrice] > 200 {
				require.Equal(t, start.Add(14*time.Hour), r.Time)
				break
			}
		}
	})

	t.Run("a spike asked for between rows starts at the next one", func(t *testing.T) {
		rows, err := trReadAll(SyntheticSourceWith(start, time.Hour, 48, 3, SyntheticOptions{SpikeAt: 90 * time.Minute}))
		require.NoError(t, err)
		require.Less(t, rows[1].Values[switchd.SignalPrice], 200.0)
		require.Greater(t, rows[2].Values[switchd.SignalPrice], 600.0)
	})
}

// A daily AI demand: a tenth of the peak at 03:00, the peak at 15:00, and
// the same prices as without it.
func TestSyntheticDailyAIDemand(t *testing.T) {
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, trCST)
	plain, err := trReadAll(SyntheticSourceWith(start, 15*time.Minute, 2*96, 1, SyntheticOptions{AIDemandGPUs: 300}))
	require.NoError(t, err)
	daily, err := trReadAll(SyntheticSourceWith(start, 15*time.Minute, 2*96, 1, SyntheticOptions{AIDemandGPUs: 300, AIDemandDaily: true}))
	require.NoError(t, err)
	for i, r := range daily {
		require.Equal(t, plain[i].Values[switchd.SignalPrice], r.Values[switchd.SignalPrice])
		d := r.Values[switchd.SignalAIDemand]
		require.GreaterOrEqual(t, d, 30.0)
		require.LessOrEqual(t, d, 300.0)
		switch h, m, _ := r.Time.Clock(); {
		case h == 3 && m == 0:
			require.Equal(t, 30.0, d)
		case h == 15 && m == 0:
			require.Equal(t, 300.0, d)
		}
	}
}
