package dr

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const okEvent = `{"id":"ev-1","program":"ers","shed_kw":500,"notice":"2026-07-01T14:00:00Z","start":"2026-07-01T14:30:00Z","end":"2026-07-01T15:30:00Z"}`

func TestParse(t *testing.T) {
	ev, reason, err := Parse([]byte(okEvent))
	require.NoError(t, err)
	require.Empty(t, reason)
	require.Equal(t, "ev-1", ev.ID)
	require.Equal(t, ev.Start, ev.DeadlineOrStart())
	require.Equal(t, DefaultInterval, ev.IntervalOrDefault())
	require.Equal(t, 1500.0, ev.CapKW(2000))
	require.Equal(t, 0.0, ev.CapKW(100))

	for _, tc := range []struct{ name, in, reason, msg string }{
		{"syntax", `{"id":`, ReasonSyntax, "unexpected EOF"},
		{"unknown field", strings.Replace(okEvent, `"shed_kw"`, `"shedkw"`, 1), ReasonSyntax, `unknown field "shedkw"`},
		{"trailing", okEvent + ` {}`, ReasonSyntax, "data after"},
		{"too large", okEvent + strings.Repeat(" ", MaxPayloadBytes), ReasonTooLarge, "more than 4096"},
		{"both", strings.Replace(okEvent, `"shed_kw":500`, `"shed_kw":500,"target_kw":3`, 1), ReasonInvalid, "exactly one of shed_kw and target_kw"},
		{"neither", strings.Replace(okEvent, `"shed_kw":500,`, ``, 1), ReasonInvalid, "exactly one"},
		{"negative", strings.Replace(okEvent, `500`, `-1`, 1), ReasonInvalid, "shed_kw must be a finite number ≥ 0"},
		{"notice after start", strings.Replace(okEvent, `14:00:00Z`, `14:45:00Z`, 1), ReasonInvalid, "notice 2026-07-01T14:45:00Z is after start"},
		{"end before start", strings.Replace(okEvent, `15:30:00Z`, `14:30:00Z`, 1), ReasonInvalid, "is not before end"},
		{"deadline outside", strings.Replace(okEvent, `"end"`, `"deadline":"2026-07-01T16:00:00Z","end"`, 1), ReasonInvalid, "deadline 2026-07-01T16:00:00Z is outside [start, end]"},
		{"bad id", strings.Replace(okEvent, `"ev-1"`, `"ev 1"`, 1), ReasonInvalid, `id "ev 1"`},
		{"no end", strings.Replace(okEvent, `,"end":"2026-07-01T15:30:00Z"`, ``, 1), ReasonInvalid, "end is required"},
		{"bad interval", strings.Replace(okEvent, `"end"`, `"interval":"90s","end"`, 1), ReasonInvalid, "interval 1m30s"},
		{"interval syntax", strings.Replace(okEvent, `"end"`, `"interval":"fifteen","end"`, 1), ReasonSyntax, "interval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, reason, err := Parse([]byte(tc.in))
			require.Error(t, err)
			require.Equal(t, tc.reason, reason)
			require.Contains(t, err.Error(), tc.msg)
		})
	}
}

func TestReadEventsNamesLines(t *testing.T) {
	in := "# a comment\n" + okEvent + "\n\n" + okEvent + "\n{\"id\":1}\n"
	_, err := readEvents("events.jsonl", strings.NewReader(in))
	require.Error(t, err)
	require.Contains(t, err.Error(), `events.jsonl:4: event "ev-1": id already used on line 2`)
	require.Contains(t, err.Error(), `events.jsonl:5: event:`)

	evs, err := readEvents("events.jsonl", strings.NewReader("# x\n"+okEvent+"\n"))
	require.NoError(t, err)
	require.Len(t, evs, 1)
}

var t0 = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)

func at(d string) time.Time {
	x, err := time.ParseDuration(d)
	if err != nil {
		panic(err)
	}
	return t0.Add(x)
}

func TestMeter(t *testing.T) {
	var m Meter
	m.Set(at("0s"), 100)
	m.Set(at("30m"), 100) // same level: merged
	m.Set(at("1h"), 40)
	m.Set(at("50m"), 999) // backwards: ignored
	m.Set(at("2h"), 40)
	kWh, over, known := m.Integrate(at("-1h"), at("3h"), 50)
	require.InDelta(t, 100+40, kWh, 1e-9)
	require.InDelta(t, 50, over, 1e-9)
	require.Equal(t, 2*time.Hour, known)
	kw, ok := m.At(at("90m"))
	require.True(t, ok)
	require.Equal(t, 40.0, kw)
	_, ok = m.At(at("3h"))
	require.False(t, ok)
	require.Equal(t, at("1h"), m.FirstAtOrBelow(at("0s"), at("3h"), 50))
	require.True(t, m.FirstAtOrBelow(at("0s"), at("3h"), 10).IsZero())
	require.Equal(t, at("2h"), m.FirstAtOrBelow(at("2h"), at("3h"), 50), "the latest level holds at its own instant")

	// History older than the horizon goes; the level in force at the
	// horizon (set at 1h) stays.
	m.Set(at("20h"), 7)
	from, _ := m.Known()
	require.Equal(t, at("1h"), from)
}

func shed(kw float64) *float64 { return &kw }

func TestRecordMetAndShortfall(t *testing.T) {
	var m Meter
	// Baseline: 1000 kW for 10 intervals before notice at 12:00+150m.
	m.Set(at("0s"), 1000)
	ev := Event{ID: "e", Program: "p", ShedKW: shed(600), Notice: at("150m"), Start: at("3h"), End: at("4h"), Deadline: at("3h10m")}
	require.NoError(t, ev.Validate())
	r := NewRecord(ev, at("150m"), 2*time.Minute)
	// The deadline minus the lead is after start: the cap holds from start.
	require.Equal(t, at("3h"), r.EffectiveFrom)
	m.Set(at("150m"), 1000)
	require.Empty(t, r.Update(at("150m"), &m, 1000))
	require.InDelta(t, 1000, r.BaselineKW, 1e-9)
	require.InDelta(t, 1, r.BaselineKnown, 1e-9)
	require.Equal(t, 400.0, r.CapKW)
	require.False(t, r.CapActive(at("2h59m")))
	require.True(t, r.CapActive(at("3h")))
	require.Equal(t, at("3h"), r.NextEdge(at("150m")))
	require.Equal(t, at("3h10m"), r.NextEdge(at("3h")))
	m.Set(at("3h"), 1000)
	require.Empty(t, r.Update(at("3h"), &m, 1000))
	require.Equal(t, PhaseActive, r.Phase)
	m.Set(at("3h9m"), 300)
	require.Empty(t, r.Update(at("3h9m"), &m, 300))
	require.Equal(t, at("3h9m"), r.MetAt)
	require.True(t, r.Met)
	m.Set(at("4h"), 300)
	require.Empty(t, r.Update(at("4h"), &m, 300))
	require.Equal(t, PhaseEnded, r.Phase)
	require.Len(t, r.Intervals, 4)
	require.InDelta(t, (9*1000.0+6*300)/15, r.Intervals[0].MeanKW, 1e-9)
	// Shortfall counts from the deadline only: none.
	require.Zero(t, r.ShortfallKWh)
	require.Empty(t, r.Alarm)
}

func TestRecordNotMet(t *testing.T) {
	var m Meter
	m.Set(at("0s"), 1000)
	tgt := 200.0
	ev := Event{ID: "e", Program: "p", TargetKW: &tgt, Notice: at("1h"), Start: at("1h"), End: at("2h")}
	r := NewRecord(ev, at("1h"), time.Minute)
	m.Set(at("1h"), 800)
	require.Equal(t, AlarmNotMet, r.Update(at("1h"), &m, 800))
	// The meter starts at 12:00, notice 13:00: 1 h of the 2.5 h window.
	require.InDelta(t, 0.4, r.BaselineKnown, 1e-9)
	require.InDelta(t, 1000, r.BaselineKW, 1e-9)
	require.Equal(t, at("1h"), r.EffectiveFrom, "never before notice")
	m.Set(at("2h"), 800)
	require.Empty(t, r.Update(at("2h"), &m, 800), "an alarm is raised once")
	require.InDelta(t, 600, r.ShortfallKWh, 1e-9)
	require.InDelta(t, 600, r.MaxOverKW, 1e-9)
	require.False(t, r.Met)
}

func TestRecordLead(t *testing.T) {
	ev := Event{ID: "e", Program: "p", ShedKW: shed(1), Notice: at("0s"), Start: at("1h"), End: at("2h")}
	require.Equal(t, at("55m"), NewRecord(ev, at("0s"), 5*time.Minute).EffectiveFrom, "sheds land by the start")
	require.Equal(t, at("0s"), NewRecord(ev, at("0s"), 3*time.Hour).EffectiveFrom, "never before notice")
}

// TestResume: a record journalled mid-event and resumed ends as the
// original does, given the same load afterwards.
func TestResume(t *testing.T) {
	var m Meter
	m.Set(at("0s"), 1000)
	ev := Event{ID: "e", Program: "p", ShedKW: shed(700), Notice: at("3h"), Start: at("3h10m"), End: at("4h10m")}
	r := NewRecord(ev, at("3h"), time.Minute)
	for _, s := range []struct {
		at string
		kw float64
	}{{"3h", 1000}, {"3h9m", 1000}, {"3h10m", 250}, {"3h30m", 250}} {
		m.Set(at(s.at), s.kw)
		r.Update(at(s.at), &m, s.kw)
	}
	raw, err := json.Marshal(r)
	require.NoError(t, err)
	var back Record
	require.NoError(t, json.Unmarshal(raw, &back))
	res := Resume(back)
	for _, s := range []struct {
		at string
		kw float64
	}{{"3h40m", 400}, {"3h50m", 250}, {"4h10m", 250}} {
		m.Set(at(s.at), s.kw)
		r.Update(at(s.at), &m, s.kw)
		res.Update(at(s.at), &m, s.kw)
	}
	require.Equal(t, PhaseEnded, res.Phase)
	require.Equal(t, r.Intervals, res.Intervals)
	require.InDelta(t, r.ShortfallKWh, res.ShortfallKWh, 1e-9)
	require.InDelta(t, 100.0/6, res.ShortfallKWh, 1e-9, "100 kW over the 300 kW cap for 10 minutes")
	require.Equal(t, AlarmLost, res.Alarm)
	require.Equal(t, r.MaxOverKW, res.MaxOverKW)
}

// FuzzParse: no input panics Parse, and what it accepts is valid and
// survives a round trip through JSON.
func FuzzParse(f *testing.F) {
	f.Add([]byte(okEvent))
	f.Add([]byte(`{"id":"a","program":"b","target_kw":0,"notice":"2026-01-01T00:00:00Z","start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:01:00Z","deadline":"2026-01-01T00:01:00Z","interval":"1m"}`))
	f.Add([]byte(`{"id":"a","shed_kw":1e309}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, reason, err := Parse(data)
		if err != nil {
			require.NotEmpty(t, reason)
			return
		}
		require.NoError(t, ev.Validate())
		raw, err := json.Marshal(ev)
		require.NoError(t, err)
		back, _, err := Parse(raw)
		require.NoError(t, err)
		require.True(t, back.Same(&ev))
	})
}
