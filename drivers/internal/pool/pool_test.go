package pool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
)

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

// dev is an in-memory device for the pool's own tests: it takes the
// commanded mode after a delay, unless told to fail.
type dev struct {
	mu       sync.Mutex
	addr     string
	clk      *clock
	mode     switchd.Mode
	target   switchd.Mode
	at       time.Time // when target is reached
	delay    time.Duration
	obsErr   error
	setErr   error
	ignore   bool // accepts commands but never moves
	fault    bool
	sets     int
	unknown  bool
	hashrate float64
}

func (d *dev) Addr() string { return d.addr }

func (d *dev) Observe(ctx context.Context) (Observation, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.obsErr != nil {
		return Observation{}, d.obsErr
	}
	if d.target != d.mode && !d.clk.t.Before(d.at) {
		d.mode = d.target
	}
	return Observation{Mode: d.mode, Known: !d.unknown, Fault: d.fault, HashrateTHs: d.hashrate}, nil
}

func (d *dev) Set(ctx context.Context, m switchd.Mode) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sets++
	if d.setErr != nil {
		return d.setErr
	}
	if !d.ignore {
		d.target, d.at = m, d.clk.t.Add(d.delay)
	}
	return nil
}

func spec(n int) switchd.FleetSpec {
	s := switchd.FleetSpec{Name: "asics", Count: n, MinDwell: 10 * time.Minute}
	s.Supports[switchd.ModeOff], s.Supports[switchd.ModeMining] = true, true
	s.Modes[switchd.ModeOff] = switchd.ModeSpec{PowerKW: 0.02}
	s.Modes[switchd.ModeMining] = switchd.ModeSpec{PowerKW: 3.5, HashrateTHs: 200, Revenue: switchd.RevenueHashprice}
	s.Transition[switchd.ModeOff][switchd.ModeMining] = 5 * time.Minute
	s.Transition[switchd.ModeMining][switchd.ModeOff] = 30 * time.Second
	return s
}

func newPool(t *testing.T, n int, mode switchd.Mode) (*Pool, []*dev, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2024, 8, 1, 12, 0, 0, 0, time.UTC)}
	devs := make([]*dev, n)
	ds := make([]Device, n)
	for i := range devs {
		devs[i] = &dev{addr: fmt.Sprintf("10.0.0.%d:4028", i), clk: clk, mode: mode, target: mode, delay: 20 * time.Second}
		ds[i] = devs[i]
	}
	p := New(Deps{Spec: spec(n), Clock: clk}, Settings{Concurrency: 4}, ds)
	return p, devs, clk
}

func counts(st switchd.FleetState) (steady, arriving [switchd.NumModes]int) {
	for _, c := range st.Cohorts {
		if c.Steady() {
			steady[c.Mode] += c.Count
		} else {
			arriving[c.Target] += c.Count
		}
	}
	return
}

func TestStateIsObservedNotCommanded(t *testing.T) {
	p, devs, clk := newPool(t, 5, switchd.ModeMining)
	ctx := context.Background()
	st, err := p.State(ctx)
	require.NoError(t, err)
	s, _ := counts(st)
	require.Equal(t, 5, s[switchd.ModeMining])

	require.NoError(t, p.Apply(ctx, []switchd.Command{{From: switchd.ModeMining, To: switchd.ModeOff, Count: 3}}))
	st, err = p.State(ctx)
	require.NoError(t, err)
	s, a := counts(st)
	require.Equal(t, 2, s[switchd.ModeMining], "commanded is not observed: 3 are on their way")
	require.Equal(t, 3, a[switchd.ModeOff])
	require.Zero(t, s[switchd.ModeOff])

	clk.t = clk.t.Add(20 * time.Second)
	st, err = p.State(ctx)
	require.NoError(t, err)
	s, a = counts(st)
	require.Equal(t, 2, s[switchd.ModeMining])
	require.Equal(t, 3, s[switchd.ModeOff])
	require.Zero(t, a[switchd.ModeOff])
	n := 0
	for _, d := range devs {
		n += d.sets
	}
	require.Equal(t, 3, n)
	tr := p.Transitions()
	require.Len(t, tr, 1)
	require.Equal(t, 3, tr[0].Count)
	require.Equal(t, 20*time.Second, tr[0].P95)
}

func TestApplyMovesLongestInModeFirst(t *testing.T) {
	p, devs, clk := newPool(t, 3, switchd.ModeOff)
	ctx := context.Background()
	_, err := p.State(ctx)
	require.NoError(t, err)
	// Device 0 goes mining and comes back: it is now the newest in off.
	require.NoError(t, p.Apply(ctx, []switchd.Command{{From: switchd.ModeOff, To: switchd.ModeMining, Count: 1}}))
	require.Equal(t, 1, devs[0].sets)
	clk.t = clk.t.Add(time.Minute)
	_, err = p.State(ctx)
	require.NoError(t, err)
	require.NoError(t, p.Apply(ctx, []switchd.Command{{From: switchd.ModeMining, To: switchd.ModeOff, Count: 1}}))
	clk.t = clk.t.Add(time.Minute)
	_, err = p.State(ctx)
	require.NoError(t, err)
	require.NoError(t, p.Apply(ctx, []switchd.Command{{From: switchd.ModeOff, To: switchd.ModeMining, Count: 2}}))
	require.Equal(t, 2, devs[0].sets, "device 0 arrived in off last: it moves last")
	require.Equal(t, 1, devs[1].sets)
	require.Equal(t, 1, devs[2].sets)
}

// shedPool is newPool with n mining devices, shed of them commanded off
// and a minute passed, with the first poll after it.
func shedPool(t *testing.T, n, shed int) (*Pool, []*dev, *clock, switchd.FleetState) {
	t.Helper()
	p, devs, clk := newPool(t, n, switchd.ModeMining)
	ctx := context.Background()
	_, err := p.State(ctx)
	require.NoError(t, err)
	require.NoError(t, p.Apply(ctx, []switchd.Command{{From: switchd.ModeMining, To: switchd.ModeOff, Count: shed}}))
	clk.t = clk.t.Add(time.Minute)
	st, err := p.State(ctx)
	require.NoError(t, err)
	return p, devs, clk, st
}

func TestDriftIsRecommandedThenStuck(t *testing.T) {
	p, devs, clk, st := shedPool(t, 2, 2)
	ctx := context.Background()
	s, _ := counts(st)
	require.Equal(t, 2, s[switchd.ModeOff])

	// Device 1 wakes by itself (a reboot): it is commanded again at once.
	devs[1].mu.Lock()
	devs[1].mode, devs[1].target = switchd.ModeMining, switchd.ModeMining
	devs[1].mu.Unlock()
	st, err := p.State(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, st.Drifted)
	require.Equal(t, 2, devs[1].sets)

	// A device that accepts commands but never moves is marked stuck
	// after max_attempts and left out of the usable capacity.
	devs[1].mu.Lock()
	devs[1].mode, devs[1].target, devs[1].ignore = switchd.ModeMining, switchd.ModeMining, true
	devs[1].mu.Unlock()
	failed := 0
	for range 5 {
		clk.t = clk.t.Add(2 * time.Minute)
		st, err = p.State(ctx)
		require.NoError(t, err)
		failed += st.Failed
	}
	require.Equal(t, 1, failed)
	require.Equal(t, 1, st.Unusable.Total())
	require.Equal(t, 1, st.Unusable.ByMode[switchd.ModeMining], "counted where it draws power")
	require.Equal(t, 1, st.Unusable.ByReason[switchd.ProblemStuck])
	require.Equal(t, 4, devs[1].sets, "the first command, then max_attempts (3) after the drift")
	s, _ = counts(st)
	require.Equal(t, 1, s[switchd.ModeOff])
}

func TestUnreachableAndRecovery(t *testing.T) {
	p, devs, _ := newPool(t, 3, switchd.ModeMining)
	ctx := context.Background()
	_, err := p.State(ctx)
	require.NoError(t, err)
	devs[2].obsErr = switchd.Unreachable(errors.New("dial: connection refused"))
	for i := range 3 {
		st, err := p.State(ctx)
		require.NoError(t, err)
		if i < 2 {
			require.Zero(t, st.Unusable.Total(), "a missed poll keeps the last observation")
		} else {
			require.Equal(t, 1, st.Unusable.ByReason[switchd.ProblemUnreachable])
		}
	}
	require.Equal(t, "unreachable", p.Devices()[2].Problem)
	devs[2].obsErr = nil
	st, err := p.State(ctx)
	require.NoError(t, err)
	require.Zero(t, st.Unusable.Total())
	s, _ := counts(st)
	require.Equal(t, 3, s[switchd.ModeMining])
}

func TestFaultIsNotSleep(t *testing.T) {
	p, devs, _ := newPool(t, 2, switchd.ModeMining)
	devs[0].fault = true
	st, err := p.State(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, st.Unusable.ByReason[switchd.ProblemFault])
	s, _ := counts(st)
	require.Equal(t, 1, s[switchd.ModeMining])
}

func TestPermanentCommandErrorMarksDevice(t *testing.T) {
	p, devs, clk := newPool(t, 2, switchd.ModeMining)
	ctx := context.Background()
	_, err := p.State(ctx)
	require.NoError(t, err)
	devs[0].setErr = switchd.AuthError(errors.New("session held by another client"))
	require.NoError(t, p.Apply(ctx, []switchd.Command{{From: switchd.ModeMining, To: switchd.ModeOff, Count: 2}}), "one device accepted")
	clk.t = clk.t.Add(time.Minute)
	st, err := p.State(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, st.Unusable.ByReason[switchd.ProblemAuth])

	devs[1].setErr = switchd.Retriable(errors.New("timeout"))
	devs[0].setErr = nil
	err = p.Apply(ctx, []switchd.Command{{From: switchd.ModeOff, To: switchd.ModeMining, Count: 1}})
	require.ErrorContains(t, err, "no device accepted", "every chosen device failed")
	// A retriable failure is commanded again on the next poll.
	devs[1].setErr = nil
	st, err = p.State(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, st.Drifted)
}

func TestUnknownModeIsUnusable(t *testing.T) {
	p, devs, _ := newPool(t, 1, switchd.ModeMining)
	devs[0].unknown = true
	st, err := p.State(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, st.Unusable.ByReason[switchd.ProblemProtocol])
	require.Empty(t, st.Cohorts)
}

func TestWarmingUpIsNotAFault(t *testing.T) {
	p, devs, clk := newPool(t, 1, switchd.ModeOff)
	ctx := context.Background()
	_, err := p.State(ctx)
	require.NoError(t, err)
	require.NoError(t, p.Apply(ctx, []switchd.Command{{From: switchd.ModeOff, To: switchd.ModeMining, Count: 1}}))
	// Awake at once but not hashing yet: on its way, not faulted.
	devs[0].delay = 0
	devs[0].mu.Lock()
	devs[0].mode, devs[0].fault = switchd.ModeMining, true
	devs[0].mu.Unlock()
	clk.t = clk.t.Add(time.Minute)
	st, err := p.State(ctx)
	require.NoError(t, err)
	require.Zero(t, st.Unusable.Total())
	_, a := counts(st)
	require.Equal(t, 1, a[switchd.ModeMining])
	// Still not hashing past the transition time and grace: a fault.
	clk.t = clk.t.Add(10 * time.Minute)
	st, err = p.State(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, st.Unusable.ByReason[switchd.ProblemFault])
}

// slowDev answers after a delay, honouring ctx.
type slowDev struct {
	dev
	wait time.Duration
}

func (d *slowDev) Observe(ctx context.Context) (Observation, error) {
	select {
	case <-time.After(d.wait):
	case <-ctx.Done():
		return Observation{}, switchd.Unreachable(ctx.Err())
	}
	return d.dev.Observe(ctx)
}

// TestPollDeadline: devices the poll's deadline comes before keep their
// last observation and are not counted as missed.
func TestPollDeadline(t *testing.T) {
	clk := &clock{t: time.Date(2024, 8, 1, 12, 0, 0, 0, time.UTC)}
	ds := make([]Device, 8)
	for i := range ds {
		ds[i] = &slowDev{dev: dev{addr: fmt.Sprint(i), clk: clk, mode: switchd.ModeMining, target: switchd.ModeMining}}
	}
	p := New(Deps{Spec: spec(8), Clock: clk}, Settings{Concurrency: 1}, ds)
	st, err := p.State(context.Background())
	require.NoError(t, err)
	s, _ := counts(st)
	require.Equal(t, 8, s[switchd.ModeMining])
	for _, d := range ds {
		d.(*slowDev).wait = 20 * time.Millisecond
	}
	for range 4 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		st, err = p.State(ctx)
		cancel()
		require.NoError(t, err)
	}
	require.Zero(t, st.Unusable.ByReason[switchd.ProblemUnreachable], "not reached is not unreachable")
	s, _ = counts(st)
	require.Equal(t, 8, s[switchd.ModeMining])
}

// TestShedOnlyRecommandsOnlyDownwards: in a shed-only tick (the daemon's
// startup hold) a drifted device is sent back only where that lowers its
// draw; one that fell out of mining by itself waits for the first full tick.
func TestShedOnlyRecommandsOnlyDownwards(t *testing.T) {
	p, devs, _, _ := shedPool(t, 2, 1)
	ctx := context.Background()
	off := 0
	if devs[1].mode == switchd.ModeOff {
		off = 1
	}
	on := 1 - off
	require.Equal(t, switchd.ModeOff, devs[off].mode)
	require.Equal(t, 1, devs[off].sets)
	require.Equal(t, 0, devs[on].sets)

	// Both drift: the one told off wakes (a reboot), the one left mining
	// stops by itself.
	devs[off].mu.Lock()
	devs[off].mode, devs[off].target = switchd.ModeMining, switchd.ModeMining
	devs[off].mu.Unlock()
	devs[on].mu.Lock()
	devs[on].mode, devs[on].target = switchd.ModeOff, switchd.ModeOff
	devs[on].mu.Unlock()

	st, err := p.State(switchd.WithShedOnly(ctx))
	require.NoError(t, err)
	require.Equal(t, 1, st.Drifted)
	require.Equal(t, 2, devs[off].sets, "sent back off: a shed")
	require.Equal(t, 0, devs[on].sets, "not started in a shed-only tick")

	st, err = p.State(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, st.Drifted)
	require.Equal(t, 1, devs[on].sets, "started again at the first full tick")
}
