// Package dr is switchd's vocabulary for demand-response events: the Event
// a program operator or an aggregator sends (ERCOT Load Resource / ERS-style
// deployments, an OpenADR 2.0b gateway publishing to MQTT), its strict JSON
// parsing and validation, JSON-lines event files for the simulator, a meter
// of site load over time, and the compliance record of one event (baseline,
// measured load per interval, when the target was met, shortfall).
//
// The package is pure: it reads no clock (every instant is an argument) and
// does no I/O beyond parsing bytes and reading an events file. It imports
// the standard library only, so controller, sim, daemon and the MQTT source
// can all use it.
package dr

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strings"
	"time"
)

// MaxPayloadBytes bounds one event's JSON: a larger MQTT payload or events
// file line is rejected before it is parsed.
const MaxPayloadBytes = 4096

// DefaultInterval is a program's settlement interval when the event names
// none: 15 minutes, as ERCOT settles.
const DefaultInterval = 15 * time.Minute

// BaselineIntervals is how many intervals before notice the baseline
// averages ("average of the 10 intervals before notice").
const BaselineIntervals = 10

// Bounds of an event's interval and length, to keep a typo from making a
// record of millions of intervals.
const (
	MinInterval = time.Minute
	MaxInterval = time.Hour
	MaxDuration = 7 * 24 * time.Hour
)

// idPattern is what an event id and a program name may hold: they end up
// in logs, journal entries and the state API.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$`)

// Event is one demand-response event as the program sends it. Exactly one
// of ShedKW (shed that much below the baseline) and TargetKW (draw at most
// that much) is set. The site must be at or under its target by Deadline
// (Start when not given) and stay there until End.
type Event struct {
	ID      string `json:"id"`
	Program string `json:"program"`
	// ShedKW and TargetKW: exactly one is non-nil, kW, not negative.
	ShedKW   *float64 `json:"shed_kw,omitempty"`
	TargetKW *float64 `json:"target_kw,omitempty"`
	// Notice is when the program told the site; Notice ≤ Start < End.
	Notice time.Time `json:"notice"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	// Deadline is when the target must be reached, within [Start, End];
	// zero means Start.
	Deadline time.Time `json:"deadline,omitzero"`
	// Interval is the program's settlement interval (Go duration text in
	// JSON, "15m"); zero means DefaultInterval.
	Interval Duration `json:"interval,omitzero"`
}

// Duration is a time.Duration written as Go duration text ("15m") in JSON.
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("interval: %w", err)
	}
	*d = Duration(v)
	return nil
}

// DeadlineOrStart is when the target must be met.
func (e *Event) DeadlineOrStart() time.Time {
	if e.Deadline.IsZero() {
		return e.Start
	}
	return e.Deadline
}

// IntervalOrDefault is the program's settlement interval.
func (e *Event) IntervalOrDefault() time.Duration {
	if e.Interval == 0 {
		return DefaultInterval
	}
	return time.Duration(e.Interval)
}

// CapKW is the site draw the event allows, given the baseline: the target,
// or the baseline less the shed (never below 0).
func (e *Event) CapKW(baselineKW float64) float64 {
	if e.TargetKW != nil {
		return *e.TargetKW
	}
	return max(baselineKW-*e.ShedKW, 0)
}

// Same reports whether two events are the same instruction (a redelivered
// message).
func (e *Event) Same(o *Event) bool {
	eq := func(a, b *float64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	return e.ID == o.ID && e.Program == o.Program && eq(e.ShedKW, o.ShedKW) && eq(e.TargetKW, o.TargetKW) &&
		e.Notice.Equal(o.Notice) && e.Start.Equal(o.Start) && e.End.Equal(o.End) &&
		e.Deadline.Equal(o.Deadline) && e.Interval == o.Interval
}

// Validate returns every problem with the event at once.
func (e *Event) Validate() error {
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf(f, a...)) }
	if !idPattern.MatchString(e.ID) {
		bad("id %q: want 1-128 letters, digits and ._:/- starting with a letter or digit", e.ID)
	}
	if !idPattern.MatchString(e.Program) {
		bad("program %q: want 1-128 letters, digits and ._:/- starting with a letter or digit", e.Program)
	}
	switch {
	case (e.ShedKW == nil) == (e.TargetKW == nil):
		bad("want exactly one of shed_kw and target_kw")
	case e.ShedKW != nil:
		checkKW(&errs, "shed_kw", *e.ShedKW)
	default:
		checkKW(&errs, "target_kw", *e.TargetKW)
	}
	for _, t := range []struct {
		name string
		v    time.Time
	}{{"notice", e.Notice}, {"start", e.Start}, {"end", e.End}} {
		if t.v.IsZero() {
			bad("%s is required", t.name)
		}
	}
	if !e.Notice.IsZero() && !e.Start.IsZero() && e.Notice.After(e.Start) {
		bad("notice %s is after start %s", stamp(e.Notice), stamp(e.Start))
	}
	if !e.Start.IsZero() && !e.End.IsZero() {
		switch d := e.End.Sub(e.Start); {
		case d <= 0:
			bad("start %s is not before end %s", stamp(e.Start), stamp(e.End))
		case d > MaxDuration:
			bad("event lasts %s, more than %s", d, MaxDuration)
		}
	}
	if !e.Deadline.IsZero() && (e.Deadline.Before(e.Start) || e.Deadline.After(e.End)) {
		bad("deadline %s is outside [start, end]", stamp(e.Deadline))
	}
	if iv := time.Duration(e.Interval); iv != 0 && (iv < MinInterval || iv > MaxInterval || iv%time.Minute != 0) {
		bad("interval %s: want whole minutes from %s to %s", iv, MinInterval, MaxInterval)
	}
	return errors.Join(errs...)
}

func checkKW(errs *[]error, name string, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		*errs = append(*errs, fmt.Errorf("%s must be a finite number ≥ 0 (got %v)", name, v))
	}
}

func stamp(t time.Time) string { return t.Format(time.RFC3339) }

// Rejection reasons of Parse, small and fixed so they can label a metric.
const (
	ReasonTooLarge = "too_large"
	ReasonSyntax   = "bad_json"
	ReasonInvalid  = "invalid_event"
)

// Parse decodes and validates one event: a single JSON object, at most
// MaxPayloadBytes, no unknown fields, nothing after it. reason is one of
// the Reason constants when err is not nil.
func Parse(data []byte) (ev Event, reason string, err error) {
	if len(data) > MaxPayloadBytes {
		return Event{}, ReasonTooLarge, fmt.Errorf("event is %d bytes, more than %d", len(data), MaxPayloadBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		return Event{}, ReasonSyntax, fmt.Errorf("event: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Event{}, ReasonSyntax, errors.New("event: data after the JSON object")
	}
	if err := ev.Validate(); err != nil {
		return Event{}, ReasonInvalid, fmt.Errorf("event %q: %w", ev.ID, err)
	}
	return ev, "", nil
}

// ReadEvents reads a JSON-lines events file: one event per line; blank
// lines and lines starting with # are skipped. Errors name the file and
// line; ids must be unique within the file. The events come back in file
// order.
func ReadEvents(path string) ([]Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readEvents(path, f)
}

func readEvents(path string, r io.Reader) ([]Event, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1024), MaxPayloadBytes+1)
	var out []Event
	var errs []error
	seen := map[string]int{}
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ev, _, err := Parse([]byte(line))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %w", path, n, err))
			continue
		}
		if prev, dup := seen[ev.ID]; dup {
			errs = append(errs, fmt.Errorf("%s:%d: event %q: id already used on line %d", path, n, ev.ID, prev))
			continue
		}
		seen[ev.ID] = n
		out = append(out, ev)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("a line is longer than %d bytes", MaxPayloadBytes)
		}
		errs = append(errs, fmt.Errorf("%s: %w", path, err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}
