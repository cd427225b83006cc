package pool

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
)

// TestStandbyNeverRecommands sheds devices, then moves one behind the
// pool's back (another instance woke it): a standby pool takes the new mode
// as wanted and sends nothing, and, active again, does not command it back
// either; an active pool would have (TestDriftIsRecommandedThenStuck).
func TestStandbyNeverRecommands(t *testing.T) {
	p, devs, clk, _ := shedPool(t, 2, 2)
	ctx := context.Background()

	p.SetStandby(true)
	devs[1].mu.Lock()
	devs[1].mode, devs[1].target = switchd.ModeMining, switchd.ModeMining
	devs[1].mu.Unlock()
	st, err := p.State(ctx)
	require.NoError(t, err)
	require.Zero(t, st.Drifted)
	s, _ := counts(st)
	require.Equal(t, 1, s[switchd.ModeMining], "observed as it is")

	p.SetStandby(false)
	clk.t = clk.t.Add(time.Minute)
	st, err = p.State(ctx)
	require.NoError(t, err)
	require.Zero(t, st.Drifted)
	devs[1].mu.Lock()
	defer devs[1].mu.Unlock()
	require.Equal(t, 1, devs[1].sets, "only the shed: never commanded back")
}
