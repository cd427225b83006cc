package daemon

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/daemon/web"
)

// hungDriver is a fleet whose state poll never answers (a hung miner
// behind a driver without deadlines of its own): it returns only when its
// context ends.
type hungDriver struct {
	switchd.Driver
	once     sync.Once
	entered  chan struct{}
	deadline time.Duration // the time the call was given, measured at entry
	hasDL    bool
}

func (h *hungDriver) State(ctx context.Context) (switchd.FleetState, error) {
	dl, ok := ctx.Deadline()
	h.once.Do(func() {
		h.hasDL, h.deadline = ok, time.Until(dl)
		close(h.entered)
	})
	<-ctx.Done()
	return switchd.FleetState{}, ctx.Err()
}

// waitFor receives from ch, failing (rather than hanging the whole test
// binary) if nothing comes: a deadlock guard, not a speed target.
func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(time.Minute):
		t.Fatalf("%s: blocked", what)
		var zero T
		return zero
	}
}

// TestHungDriverBlocksNothing: one fleet's poll hangs. The poll is bounded
// by a deadline, the state API keeps answering from the last observation
// while it hangs, the other fleet is still polled, and shutdown (the
// loop's context ending) ends the tick at once.
func TestHungDriverBlocksNothing(t *testing.T) {
	hung := &hungDriver{entered: make(chan struct{})}
	counters := map[int]*countingDriver{}
	d, _, clk := newTestDaemon(t, func(i int, in *instrumented) {
		if i == 1 {
			hung.Driver, in.Driver = in.Driver, hung
			return
		}
		c := &countingDriver{Driver: in.Driver}
		counters[i], in.Driver = c, c
	})
	observePrice(d, clk, 30)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan struct{})
	go func() {
		d.tick(ctx)
		close(done)
	}()
	waitFor(t, hung.entered, "the hung poll never started")
	require.True(t, hung.hasDL, "a driver's state poll must carry a deadline")
	require.LessOrEqual(t, hung.deadline, driverCallTimeout)

	// While the poll hangs, the API answers (from what was observed).
	views := make(chan web.StateView, 1)
	go func() { views <- d.State() }()
	waitFor(t, views, "the state API waited for a hung driver")
	ready := make(chan bool, 1)
	go func() { ok, _ := d.Ready(); ready <- ok }()
	waitFor(t, ready, "the readiness check waited for a hung driver")

	// Shutdown ends the tick without waiting out the deadline.
	cancel()
	waitFor(t, done, "shutdown waited for a hung driver")
	require.Equal(t, 1, counters[0].states, "the other fleet was polled")
	d.mu.Lock()
	d.refreshViews(clk.Now(), "")
	d.mu.Unlock()
	v := d.State()
	require.False(t, viewFleet(v, "gpus").DriverUp, "the hung fleet's driver is reported down")
	require.Equal(t, web.OpState, viewFleet(v, "gpus").LastErrorOp)
}
