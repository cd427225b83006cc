package simdev

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/internal/pool/pooltest"
)

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

func miners(n int) switchd.FleetSpec {
	s := switchd.FleetSpec{Name: "asics", Count: n, MinDwell: 2 * time.Hour}
	s.Supports[switchd.ModeOff], s.Supports[switchd.ModeMining] = true, true
	s.Modes[switchd.ModeOff] = switchd.ModeSpec{PowerKW: 0.01}
	s.Modes[switchd.ModeMining] = switchd.ModeSpec{PowerKW: 3.5, HashrateTHs: 200, Revenue: switchd.RevenueHashprice}
	s.Transition[switchd.ModeOff][switchd.ModeMining] = 5 * time.Minute
	s.Transition[switchd.ModeMining][switchd.ModeOff] = 30 * time.Second
	return s
}

func TestEnergyIsIntegratedExactly(t *testing.T) {
	c := &clock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	d := New(miners(100), Config{}, c)
	ctx := context.Background()
	require.NoError(t, d.Apply(ctx, []switchd.Command{{From: switchd.ModeOff, To: switchd.ModeMining, Count: 100}}))
	c.t = c.t.Add(time.Hour)
	d.Settle(c.t)
	u := d.TakeUsage()
	// 5 minutes waking at 3.5 kW (no revenue), then 55 minutes mining.
	require.InDelta(t, 100*3.5*5/60.0, u.TransitionKWh, 1e-9)
	require.InDelta(t, 100*55/60.0, u.DeviceHours[switchd.ModeMining], 1e-9)
	require.InDelta(t, 100*3.5*55/60.0, u.EnergyKWh[switchd.ModeMining], 1e-9)
	require.Equal(t, 100, u.Switches)
	require.Zero(t, u.EarlyMoves)

	// Shedding right away is a move inside the dwell time, and counted so.
	require.NoError(t, d.Apply(ctx, []switchd.Command{{From: switchd.ModeMining, To: switchd.ModeOff, Count: 40}}))
	require.Equal(t, 40, d.TakeUsage().EarlyMoves)
	require.InDelta(t, 100*3.5, d.PowerKW(), 1e-9, "a shedding device draws until it is off")
	c.t = c.t.Add(time.Minute)
	st, err := d.State(ctx)
	require.NoError(t, err)
	steady, arriving := d.Counts()
	require.Equal(t, [switchd.NumModes]int{40, 60, 0}, steady)
	require.Equal(t, [switchd.NumModes]int{}, arriving)
	require.Zero(t, st.Failed)
	require.InDelta(t, 40*0.01+60*3.5, d.PowerKW(), 1e-9)
}

func TestApplyRejectsImpossibleCommands(t *testing.T) {
	c := &clock{t: time.Unix(0, 0)}
	d := New(miners(10), Config{}, c)
	ctx := context.Background()
	require.Error(t, d.Apply(ctx, []switchd.Command{{From: switchd.ModeMining, To: switchd.ModeOff, Count: 1}}), "nobody mines")
	require.Error(t, d.Apply(ctx, []switchd.Command{{From: switchd.ModeOff, To: switchd.ModeInference, Count: 1}}), "no inference mode")
	require.Error(t, d.Apply(ctx, []switchd.Command{{From: switchd.ModeOff, To: switchd.ModeMining, Count: 11}}))
	steady, _ := d.Counts()
	require.Equal(t, 10, steady[switchd.ModeOff], "nothing applied")
}

func TestInjectedFailuresFallBack(t *testing.T) {
	c := &clock{t: time.Unix(0, 0)}
	d := New(miners(1000), Config{FailureRate: 0.2, Seed: 3}, c)
	ctx := context.Background()
	require.NoError(t, d.Apply(ctx, []switchd.Command{{From: switchd.ModeOff, To: switchd.ModeMining, Count: 1000}}))
	c.t = c.t.Add(10 * time.Minute)
	st, err := d.State(ctx)
	require.NoError(t, err)
	steady, _ := d.Counts()
	require.Equal(t, 1000, steady[switchd.ModeOff]+steady[switchd.ModeMining])
	require.Equal(t, st.Failed, steady[switchd.ModeOff])
	require.InDelta(t, 200, st.Failed, 60, "about a fifth fail")
	st, err = d.State(ctx)
	require.NoError(t, err)
	require.Zero(t, st.Failed, "failures are reported once")
}

func TestRestore(t *testing.T) {
	c := &clock{t: time.Unix(0, 0)}
	d := New(miners(10), Config{}, c)
	require.NoError(t, d.Restore([switchd.NumModes]int{3, 7, 0}, c.t))
	steady, _ := d.Counts()
	require.Equal(t, [switchd.NumModes]int{3, 7, 0}, steady)
	require.Error(t, d.Restore([switchd.NumModes]int{3, 8, 0}, c.t), "counts must add up")
	require.Error(t, d.Restore([switchd.NumModes]int{0, 0, 10}, c.t), "unsupported mode")
}

func TestParseConfigIsStrict(t *testing.T) {
	parse := func(src string) (Config, error) {
		return ParseConfig(pooltest.Settings{YAML: src})
	}
	c, err := parse("failure_rate: 0.1\nseed: 4\ninitial: mining\n")
	require.NoError(t, err)
	require.Equal(t, Config{FailureRate: 0.1, Seed: 4, Initial: switchd.ModeMining}, c)
	_, err = parse("failure_rat: 0.1\n")
	require.ErrorContains(t, err, "failure_rat")
	_, err = parse("failure_rate: 1.5\n")
	require.ErrorContains(t, err, "failure_rate")
	_, err = parse("initial: sleeping\n")
	require.Error(t, err)
	c, err = parse("")
	require.NoError(t, err)
	require.Equal(t, Config{}, c)
}
