package pool

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
)

// gate holds every device call until the test lets it go, and records how
// many were in flight at once.
type gate struct {
	mu       sync.Mutex
	inflight int
	max      int
	entered  chan struct{}
	release  chan struct{}
}

func (g *gate) pass() {
	g.mu.Lock()
	g.inflight++
	g.max = max(g.max, g.inflight)
	g.mu.Unlock()
	g.entered <- struct{}{}
	<-g.release
	g.mu.Lock()
	g.inflight--
	g.mu.Unlock()
}

type gatedDev struct {
	addr string
	g    *gate
	mode switchd.Mode
	mu   sync.Mutex
}

func (d *gatedDev) Addr() string { return d.addr }

func (d *gatedDev) Observe(ctx context.Context) (Observation, error) {
	d.g.pass()
	d.mu.Lock()
	defer d.mu.Unlock()
	return Observation{Mode: d.mode, Known: true, HashrateTHs: 1}, nil
}

func (d *gatedDev) Set(ctx context.Context, m switchd.Mode) error {
	d.g.pass()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mode = m
	return nil
}

// drive lets n gated calls through one at a time, each only once `bound`
// calls (or all those left) are waiting: a pool that ran them one by one
// would never get there, and one without a bound would exceed it.
func drive(t *testing.T, g *gate, n, bound int, done <-chan error) {
	t.Helper()
	waiting := 0
	for released := 0; released < n; released++ {
		for waiting < min(bound, n-released) {
			select {
			case <-g.entered:
				waiting++
			case err := <-done:
				t.Fatalf("finished with %d of %d calls let through: %v", released, n, err)
			case <-time.After(time.Minute): // a deadlock guard, not a speed target
				t.Fatalf("only %d calls in flight at once, want %d", waiting, min(bound, n-released))
			}
		}
		g.release <- struct{}{}
		waiting--
	}
	require.NoError(t, <-done)
}

// TestBoundedConcurrency: the pool polls and commands devices in parallel,
// never more than Concurrency at once.
func TestBoundedConcurrency(t *testing.T) {
	const n, bound = 20, 3
	g := &gate{entered: make(chan struct{}, n), release: make(chan struct{})}
	clk := &clock{t: time.Date(2024, 8, 1, 12, 0, 0, 0, time.UTC)}
	ds := make([]Device, n)
	for i := range ds {
		ds[i] = &gatedDev{addr: fmt.Sprintf("10.0.0.%d:4028", i), g: g, mode: switchd.ModeMining}
	}
	p := New(Deps{Spec: spec(n), Clock: clk}, Settings{Concurrency: bound}, ds)
	ctx := context.Background()

	done := make(chan error, 1)
	go func() { _, err := p.State(ctx); done <- err }()
	drive(t, g, n, bound, done)
	require.Equal(t, bound, g.max, "state poll")

	g.mu.Lock()
	g.max = 0
	g.mu.Unlock()
	go func() {
		done <- p.Apply(ctx, []switchd.Command{{From: switchd.ModeMining, To: switchd.ModeOff, Count: n}})
	}()
	drive(t, g, n, bound, done)
	require.Equal(t, bound, g.max, "commands")
}
