package mqttio

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/internal/mqtttest"
	"github.com/switchd/switchd/trace"
)

// testTrace returns a trace of rows 5 minutes apart from 2024-08-20 00:00
// CDT: price on every row, grid load on every third (empty cells between).
func testTrace(t *testing.T, rows int) (trace.Source, []switchd.Sample) {
	t.Helper()
	cdt := time.FixedZone("", -5*3600)
	start := time.Date(2024, 8, 20, 0, 0, 0, 0, cdt)
	var b strings.Builder
	b.WriteString("time,price_usd_mwh,grid_load_mw\n")
	var want []switchd.Sample
	for i := range rows {
		at := start.Add(time.Duration(i) * 5 * time.Minute)
		price := 20 + float64(i)*1.25
		want = append(want, switchd.Sample{Time: at, Signal: switchd.SignalPrice, Value: price})
		load := ""
		if i%3 == 0 {
			l := 60000 + float64(i)*10
			load = fmt.Sprint(l)
			want = append(want, switchd.Sample{Time: at, Signal: switchd.SignalGridLoad, Value: l})
		}
		fmt.Fprintf(&b, "%s,%v,%s\n", at.Format(time.RFC3339), price, load)
	}
	src, err := trace.NewReader(strings.NewReader(b.String()), "test.csv")
	require.NoError(t, err)
	return src, want
}

// bySignal splits samples per signal, keeping their order.
func bySignal(samples []switchd.Sample) map[switchd.Signal][]switchd.Sample {
	m := map[switchd.Signal][]switchd.Sample{}
	for _, s := range samples {
		m[s.Signal] = append(m[s.Signal], s)
	}
	return m
}

// TestReplay replays a 20-row trace through the embedded broker to a
// source: every sample arrives, in order, with its trace time.
func TestReplay(t *testing.T) {
	mqtttest.CheckNoLeaks(t)
	b := startTestBroker(t)
	src, want := testTrace(t, 20)
	// The source's clock is after the trace, so no ts is in its future.
	clock := &fakeClock{t: want[len(want)-1].Time.Add(time.Hour)}
	r := &recorder{}
	s := newTestSource(t, config.MQTTConfig{Embedded: b.Addr()}, "dc1/signals", clock, r)
	require.Eventually(t, s.Connected, waitMax, 5*time.Millisecond)
	p := newTestPublisher(t, b.Addr())

	// 5 trace minutes per 10 ms: 20 rows in about 190 ms.
	const speed = 300 / 0.010
	start := time.Now()
	rows, err := Replay(context.Background(), p, src, "dc1/signals/", speed, false)
	elapsed := time.Since(start)
	require.NoError(t, err)
	require.Equal(t, 20, rows)
	require.GreaterOrEqual(t, elapsed, 190*time.Millisecond, "paced by trace time / speed")

	got := r.waitSamples(t, len(want))
	require.Empty(t, r.Rejects())
	require.Len(t, got, len(want))
	gotBy, wantBy := bySignal(got), bySignal(want)
	require.Len(t, gotBy, 2)
	for sig, w := range wantBy {
		require.Len(t, gotBy[sig], len(w), "signal %s", sig)
		for i := range w {
			require.True(t, w[i].Time.Equal(gotBy[sig][i].Time), "signal %s sample %d: time %s, want %s", sig, i, gotBy[sig][i].Time, w[i].Time)
			require.Equal(t, w[i].Value, gotBy[sig][i].Value, "signal %s sample %d", sig, i)
		}
	}
}

// TestReplayRewrite replays as fast as possible, stamping messages with the
// wall clock, which a source on the wall clock accepts although the trace
// is years old. Every message arrives, in order, unpaced as it is.
func TestReplayRewrite(t *testing.T) {
	mqtttest.CheckNoLeaks(t)
	b := startTestBroker(t)
	r := &recorder{}
	s := newTestSource(t, config.MQTTConfig{Embedded: b.Addr()}, "dc1/signals", nil, r)
	require.Eventually(t, s.Connected, waitMax, 5*time.Millisecond)
	p := newTestPublisher(t, b.Addr())

	src, want := testTrace(t, 6)
	before := time.Now()
	rows, err := Replay(context.Background(), p, src, "dc1/signals", 0, true)
	require.NoError(t, err)
	require.Equal(t, 6, rows)
	got := r.waitSamples(t, len(want))
	after := time.Now()
	require.Empty(t, r.Rejects())
	require.Len(t, got, len(want))
	gotBy, wantBy := bySignal(got), bySignal(want)
	for sig, w := range wantBy {
		require.Len(t, gotBy[sig], len(w), "signal %s", sig)
		for i, g := range gotBy[sig] {
			require.False(t, g.Time.Before(before) || g.Time.After(after), "ts %s not in [%s, %s]", g.Time, before, after)
			require.Equal(t, w[i].Value, g.Value, "signal %s sample %d", sig, i)
			if i > 0 {
				require.True(t, g.Time.After(gotBy[sig][i-1].Time), "signal %s in order", sig)
			}
		}
	}
}

// TestReplayCarriedForward merges a daily hashprice into a 5-minute price
// trace: the hashprice carried forward by Merge is not published again.
func TestReplayCarriedForward(t *testing.T) {
	mqtttest.CheckNoLeaks(t)
	b := startTestBroker(t)
	r := &recorder{}
	clock := &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := newTestSource(t, config.MQTTConfig{Embedded: b.Addr()}, "dc1/signals", clock, r)
	require.Eventually(t, s.Connected, waitMax, 5*time.Millisecond)
	p := newTestPublisher(t, b.Addr())

	prices, _ := testTrace(t, 4)
	daily, err := trace.NewReader(strings.NewReader("time,hashprice_usd_ph_day\n2024-08-20T00:00:00-05:00,45.5\n"), "daily.csv")
	require.NoError(t, err)
	rows, err := Replay(context.Background(), p, trace.Merge(prices, daily), "dc1/signals", 0, false)
	require.NoError(t, err)
	require.Equal(t, 4, rows)
	got := r.waitSamples(t, 4+2+1) // 4 prices, 2 grid loads, 1 hashprice
	require.Len(t, bySignal(got)[switchd.SignalHashprice], 1)
	require.Never(t, func() bool { return len(r.Samples()) > 7 }, 100*time.Millisecond, 10*time.Millisecond)
}

func TestReplayStops(t *testing.T) {
	mqtttest.CheckNoLeaks(t)
	b := startTestBroker(t)
	p := newTestPublisher(t, b.Addr())

	t.Run("context cancelled while pacing", func(t *testing.T) {
		src, _ := testTrace(t, 5)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		rows, err := Replay(ctx, p, src, "dc1/signals", 1, false) // 5 real minutes per row
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, 1, rows)
		require.Less(t, time.Since(start), 5*time.Second)
	})
	t.Run("nan speed", func(t *testing.T) {
		src, _ := testTrace(t, 2)
		_, err := Replay(context.Background(), p, src, "dc1/signals", math.NaN(), false)
		require.ErrorContains(t, err, "speed is NaN")
	})
	t.Run("wildcard prefix", func(t *testing.T) {
		src, _ := testTrace(t, 2)
		_, err := Replay(context.Background(), p, src, "dc1/+", 0, false)
		require.ErrorContains(t, err, "wildcards")
	})
	t.Run("bad trace row", func(t *testing.T) {
		src, err := trace.NewReader(strings.NewReader("time,price_usd_mwh\n2024-08-20T00:00:00Z,1\n2024-08-19T00:00:00Z,2\n"), "bad.csv")
		require.NoError(t, err)
		rows, err := Replay(context.Background(), p, src, "dc1/signals", 0, false)
		require.ErrorContains(t, err, "bad.csv:3")
		require.Equal(t, 1, rows)
	})
}

func TestReplayNotConnected(t *testing.T) {
	p, err := NewPublisher(config.MQTTConfig{Broker: "tcp://127.0.0.1:1"})
	require.NoError(t, err)
	defer p.Close()
	src, _ := testTrace(t, 2)
	_, err = Replay(context.Background(), p, src, "dc1/signals", 0, false)
	require.ErrorContains(t, err, "not Connected")
}

func TestPublisherStartCancelled(t *testing.T) {
	mqtttest.CheckNoLeaks(t)
	p, err := NewPublisher(config.MQTTConfig{Broker: "tcp://127.0.0.1:" + fmt.Sprint(mqtttest.FreePort(t))})
	require.NoError(t, err)
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, p.Start(ctx), context.DeadlineExceeded)
	require.ErrorContains(t, p.Start(context.Background()), "started twice")
}
