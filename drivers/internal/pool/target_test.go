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

// pctDev is a fake miner with a power target (as LuxOS profiles or
// Whatsminer set_power_pct): it reports the power it draws, 3.5 kW at
// 100%, unless noPower.
type pctDev struct {
	mu      sync.Mutex
	addr    string
	mining  bool
	pct     float64
	noPower bool
	calls   []string
}

func (d *pctDev) Addr() string { return d.addr }

func (d *pctDev) Observe(context.Context) (Observation, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	o := Observation{Mode: switchd.ModeOff, Known: true, PowerW: 20, HasPower: !d.noPower}
	if d.mining {
		o.Mode, o.PowerW = switchd.ModeMining, 3500*d.pct/100
	}
	return o, nil
}

func (d *pctDev) Set(_ context.Context, m switchd.Mode) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, "set "+m.String())
	switch m {
	case switchd.ModeOff:
		d.mining = false
	case switchd.ModeMining:
		d.mining = true
	default:
		return switchd.Permanent(fmt.Errorf("mode %s not supported", m))
	}
	return nil
}

func (d *pctDev) SetPowerPercent(_ context.Context, pct float64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, fmt.Sprintf("pct %.0f", pct))
	d.pct = pct
	return nil
}

func (d *pctDev) takeCalls() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.calls
	d.calls = nil
	return c
}

// reducedSpec is spec(n) with a 70% power target: 2.45 kW, 160 TH/s.
func reducedSpec(n int) switchd.FleetSpec {
	s := spec(n)
	s.Supports[switchd.ModeMiningReduced] = true
	s.Modes[switchd.ModeMiningReduced] = switchd.ModeSpec{PowerKW: 2.45, HashrateTHs: 160, Revenue: switchd.RevenueHashprice}
	return s
}

func TestPowerTargetMode(t *testing.T) {
	clk := &clock{t: time.Date(2024, 8, 1, 12, 0, 0, 0, time.UTC)}
	devs := []*pctDev{{addr: "a", mining: true, pct: 100}, {addr: "b", mining: true, pct: 100}, {addr: "c", mining: true, pct: 100, noPower: true}}
	ds := make([]Device, len(devs))
	for i, d := range devs {
		ds[i] = d
	}
	p := New(Deps{Spec: reducedSpec(len(devs)), Clock: clk}, Settings{Concurrency: 2}, ds)
	ctx := context.Background()
	state := func() [switchd.NumModes]int {
		clk.t = clk.t.Add(time.Minute)
		st, err := p.State(ctx)
		require.NoError(t, err)
		require.Zero(t, st.Drifted)
		s, a := counts(st)
		require.Equal(t, [switchd.NumModes]int{}, a)
		return s
	}
	require.Equal(t, 3, state()[switchd.ModeMining])

	// Down to the target: a running miner gets only the power target.
	require.NoError(t, p.Apply(ctx, []switchd.Command{{From: switchd.ModeMining, To: switchd.ModeMiningReduced, Count: 3}}))
	for _, d := range devs {
		require.Equal(t, []string{"pct 70"}, d.takeCalls())
	}
	s := state()
	require.Equal(t, 3, s[switchd.ModeMiningReduced], "a and b read at 2.45 kW; c reports no power and keeps the level it accepted")
	require.Zero(t, s[switchd.ModeMining])

	// Off, then back to full power: woken, then set back to 100%.
	require.NoError(t, p.Apply(ctx, []switchd.Command{{From: switchd.ModeMiningReduced, To: switchd.ModeOff, Count: 3}}))
	for _, d := range devs {
		require.Equal(t, []string{"set off"}, d.takeCalls())
	}
	require.Equal(t, 3, state()[switchd.ModeOff])
	require.NoError(t, p.Apply(ctx, []switchd.Command{{From: switchd.ModeOff, To: switchd.ModeMining, Count: 3}}))
	for _, d := range devs {
		require.Equal(t, []string{"set mining", "pct 100"}, d.takeCalls())
	}
	require.Equal(t, 3, state()[switchd.ModeMining])

	// Someone else sets a's target (an operator, ATM): the read shows it,
	// and the pool commands it back to the mode it wants.
	devs[0].mu.Lock()
	devs[0].pct = 70
	devs[0].mu.Unlock()
	clk.t = clk.t.Add(time.Minute)
	st, err := p.State(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, st.Drifted)
	require.Equal(t, []string{"pct 100"}, devs[0].takeCalls())
}
