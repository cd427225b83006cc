package policies

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
)

func TestCommitFloor(t *testing.T) {
	fast := func(name string, count int, kw, ths float64, shed time.Duration) switchd.FleetSpec {
		f := switchd.FleetSpec{Name: name, Kind: switchd.KindASIC, Count: count}
		f.Supports[switchd.ModeMining] = true
		f.Modes[switchd.ModeMining] = switchd.ModeSpec{PowerKW: kw, HashrateTHs: ths, Revenue: switchd.RevenueHashprice}
		f.Transition[switchd.ModeMining][switchd.ModeOff] = shed
		return f
	}
	// s19: worse per kW than s21; both shed in 30 s. Old: sheds in 5 min.
	fleets := []switchd.FleetSpec{
		fast("s19", 100, 3.25, 95, 30*time.Second),
		fast("s21", 100, 3.5, 200, 30*time.Second),
		fast("old", 100, 1.5, 14, 5*time.Minute),
	}
	v := switchd.Values{}
	v.V[switchd.SignalPrice], v.V[switchd.SignalHashprice] = 300, 50
	newCons := func() *Constraints {
		c := &Constraints{SiteCapKW: 1e9, Fleets: make([]FleetConstraint, len(fleets))}
		for i := range c.Fleets {
			c.Fleets[i] = NoFleetConstraint()
		}
		return c
	}
	mins := func(c *Constraints) []int {
		out := make([]int, len(c.Fleets))
		for i := range c.Fleets {
			out[i] = c.Fleets[i].Min[switchd.ModeMining]
		}
		return out
	}

	t.Run("least loss per kW first", func(t *testing.T) {
		c := newCons()
		require.True(t, CommitFloor(fleets, c, []config.Program{{Name: "p", CommittedKW: 400, Within: time.Minute}}, &v))
		// s21 loses least per kW: 400/3.5 → 115, capped at its 100
		// devices (350 kW); s19 holds the remaining 50 kW (16 devices).
		require.Equal(t, []int{16, 100, 0}, mins(c))
	})
	t.Run("slow fleets count for slow programs only", func(t *testing.T) {
		c := newCons()
		c.Fleets[1].Forbid[switchd.ModeMining] = true // a rule wins over a commitment
		CommitFloor(fleets, c, []config.Program{
			{Name: "fast", CommittedKW: 65, Within: 30 * time.Second},
			{Name: "slow", CommittedKW: 30, Within: 10 * time.Minute},
		}, &v)
		// fast: 65 kW in s19 (20 devices); slow adds 30 kW: old fleet or
		// s19, whichever loses less per kW (old: 14 TH/s at 1.5 kW, worse).
		require.Equal(t, []int{30, 0, 0}, mins(c))
	})
	t.Run("existing minimums count", func(t *testing.T) {
		c := newCons()
		c.Fleets[1].Min[switchd.ModeMining] = 50
		require.False(t, CommitFloor(fleets, c, []config.Program{{Name: "p", CommittedKW: 175, Within: time.Minute}}, &v))
		require.Equal(t, []int{0, 50, 0}, mins(c))
	})
}
