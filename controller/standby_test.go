package controller_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/controller"
	"github.com/switchd/switchd/drivers/simdev"
)

// countingRecorder counts what it is asked to record.
type countingRecorder struct{ commands, applied int }

func (r *countingRecorder) Commands(time.Time, *controller.Decision, []controller.FleetCommands) error {
	r.commands++
	return nil
}
func (r *countingRecorder) Applied(time.Time, string, []switchd.Command, error) { r.applied++ }

// TestStandbyPlansButSendsNothing: a standby (HA follower) tick plans as
// usual (the plan is warm) but records and sends nothing; once active, the
// same controller commands at its next tick.
func TestStandbyPlansButSendsNothing(t *testing.T) {
	site, pol := load(t, oneFleet)
	clk := &clock{t: time.Date(2024, 7, 1, 12, 0, 0, 0, time.UTC)}
	drv := simdev.New(site.Fleets[0].Spec, simdev.Config{Initial: switchd.ModeMining}, clk)
	rec := &countingRecorder{}
	standby := true
	ctl, err := controller.New(controller.Options{Site: site, Policy: pol, Drivers: []switchd.Driver{drv}, Clock: clk, Recorder: rec, Standby: func() bool { return standby }})
	require.NoError(t, err)
	ctx := context.Background()

	ctl.Observe(switchd.Sample{Time: clk.t, Signal: switchd.SignalPrice, Value: 5000})
	require.NoError(t, ctl.Tick(ctx))
	require.Equal(t, 0, ctl.Decision().Plan.Fleets[0].Count[switchd.ModeMining], "the plan sheds")
	require.Empty(t, ctl.Reports()[0].Commands)
	require.Zero(t, rec.commands+rec.applied, "nothing recorded")
	st, err := drv.State(ctx)
	require.NoError(t, err)
	steady, arriving := st.Count(switchd.ModeMining)
	require.Equal(t, 10, steady+arriving, "nothing sent")

	standby = false
	clk.t = clk.t.Add(time.Second)
	require.NoError(t, ctl.Tick(ctx))
	require.Equal(t, []switchd.Command{{From: switchd.ModeMining, To: switchd.ModeOff, Count: 10}}, ctl.Reports()[0].Commands)
	require.Equal(t, 1, rec.commands)
}
