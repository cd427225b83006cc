package controller

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/policies"
)

// The demand planned for is the peak of the last hold plus the headroom;
// the peak expires hold after it was seen, and nextWake says when.
func TestAIWarmTrack(t *testing.T) {
	t0 := time.Date(2024, 11, 6, 9, 0, 0, 0, time.UTC)
	w := policies.AIWarm{Hold: time.Hour, HeadroomGPUs: 50}
	var tr aiWarmTrack
	for _, step := range []struct {
		min       int
		demand    float64
		want      float64
		wakeAfter time.Duration // 0: none
	}{
		{0, 100, 150, 0},
		{15, 400, 450, 0},
		{30, 200, 450, 45 * time.Minute}, // 400 seen at 9:15 expires at 10:15
		{45, 300, 450, 30 * time.Minute},
		{75, 100, 350, 30 * time.Minute}, // 400 gone; 300 (seen at 9:45) holds to 10:45
		{105, 50, 150, 0},                // 300 gone; 100 (seen at 10:15) holds to 11:15
		{200, 0, 50, 0},                  // headroom only
	} {
		now := t0.Add(time.Duration(step.min) * time.Minute)
		var v switchd.Values
		v.V[switchd.SignalAIDemand], v.Present[switchd.SignalAIDemand] = step.demand, true
		tr.apply(now, &v, w)
		require.Equal(t, step.want, v.V[switchd.SignalAIDemand], "at +%dm", step.min)
		wake := tr.nextWake(now, w.Hold)
		if step.wakeAfter == 0 {
			if step.min == 105 {
				require.Equal(t, t0.Add(135*time.Minute), wake, "100 from 10:15 expires at 11:15")
				continue
			}
			require.True(t, wake.IsZero(), "at +%dm: %s", step.min, wake)
			continue
		}
		require.Equal(t, now.Add(step.wakeAfter), wake, "at +%dm", step.min)
	}

	// Absent demand (unlimited) and a policy without ai_warm are left alone.
	var v switchd.Values
	tr.apply(t0, &v, w)
	require.False(t, v.Present[switchd.SignalAIDemand])
	v.V[switchd.SignalAIDemand], v.Present[switchd.SignalAIDemand] = 70, true
	tr.apply(t0, &v, policies.AIWarm{})
	require.Equal(t, 70.0, v.V[switchd.SignalAIDemand])
}
