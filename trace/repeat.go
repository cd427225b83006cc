package trace

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"time"

	"github.com/switchd/switchd"
)

// Repeat says how a trace file shorter than the timeline is tiled over it.
type Repeat uint8

// Repeat modes. The zero value leaves a file as it is.
const (
	RepeatNone Repeat = iota
	// RepeatWeekly tiles the file by whole weeks: each row is repeated
	// every 7 days at the same weekday and wall-clock time in the site's
	// time zone, forwards and backwards, across the whole timeline. The
	// file must span less than a week. Days of the week the file does not
	// cover stay missing (a 5-day file leaves 2 days of every week without
	// a sample): nothing is made up, and the simulator reports them as the
	// signal's gaps, where the policy's fail-safe or fallback applies as
	// live when a feed stops.
	RepeatWeekly
)

// String returns the flag form of the mode.
func (r Repeat) String() string {
	switch r {
	case RepeatNone:
		return "none"
	case RepeatWeekly:
		return "weekly"
	}
	return fmt.Sprintf("repeat(%d)", uint8(r))
}

// ParseRepeat parses a --repeat value.
func ParseRepeat(s string) (Repeat, error) {
	switch s {
	case "none", "":
		return RepeatNone, nil
	case "weekly":
		return RepeatWeekly, nil
	}
	return 0, fmt.Errorf("unknown repeat %q (want weekly or none)", s)
}

// weekDays is the tiling period of TileWeekly, in calendar days.
const weekDays = 7

// TileWeekly returns a Source that yields the rows' values every week at the
// same weekday and wall-clock time in loc, starting with the copy that holds
// the last row at or before from (so the value in force at from is known)
// and without end: merge it behind a source that sets the timeline (Merge
// stops with its first source). rows must be strictly increasing and span
// less than a week in loc's wall clock. A wall-clock time that does not
// exist in a copy's week (the hour skipped when DST starts) is dropped; one
// that exists twice (the hour repeated when DST ends) is yielded at both
// instants, so the tiled signal has no gap there.
func TileWeekly(rows []Row, loc *time.Location, from time.Time, name string) (Source, error) {
	if len(rows) == 0 {
		return nil, fmt.Errorf("%s: --repeat weekly: no rows", name)
	}
	if loc == nil {
		loc = time.UTC
	}
	first, last := rows[0].Time.In(loc), rows[len(rows)-1].Time.In(loc)
	if !wallClock(first).AddDate(0, 0, weekDays).After(wallClock(last)) {
		return nil, fmt.Errorf("%s: --repeat weekly: the file spans %s to %s, a week or more: it must span less than a week to tile by weeks",
			name, first.Format(time.RFC3339), last.Format(time.RFC3339))
	}
	var sigs [switchd.NumSignals]bool
	local := make([]Row, len(rows))
	for i, r := range rows {
		r.Time = r.Time.In(loc)
		local[i] = r
		for s, h := range r.Has {
			sigs[s] = sigs[s] || h
		}
	}
	rs := &repeatSource{rows: local, loc: loc}
	for _, s := range switchd.AllSignals {
		if sigs[s] {
			rs.signals = append(rs.signals, s)
		}
	}
	// The whole number of weeks from the file's first row back to the week
	// holding from, in calendar days so that DST does not shift it.
	weeks := math.Floor(wallClock(from.In(loc)).Sub(wallClock(first)).Hours() / 24 / weekDays)
	rs.week = int(weeks) - 1 // one copy early: its last rows hold at from
	return rs, nil
}

// wallClock is t's wall-clock reading as a UTC instant, for day arithmetic
// free of DST.
func wallClock(t time.Time) time.Time {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	return time.Date(y, mo, d, h, mi, s, t.Nanosecond(), time.UTC)
}

// repeatSource is the Source TileWeekly returns.
type repeatSource struct {
	rows    []Row
	loc     *time.Location
	signals []switchd.Signal
	week    int       // the next copy to build, in weeks from the file's own
	pending []Row     // rows of the current copy still to yield
	prev    time.Time // the last time yielded
}

// Signals returns the signals the file carries.
func (rs *repeatSource) Signals() []switchd.Signal { return rs.signals }

// Next implements Source; it never returns io.EOF.
func (rs *repeatSource) Next() (Row, error) {
	for {
		if len(rs.pending) == 0 {
			rs.pending = rs.copyOf(rs.week)
			rs.week++
			continue
		}
		r := rs.pending[0]
		rs.pending = rs.pending[1:]
		if !rs.prev.IsZero() && !r.Time.After(rs.prev) {
			continue // cannot happen for a file spanning less than a week
		}
		rs.prev = r.Time
		return r, nil
	}
}

// copyOf returns the file's rows moved by the given number of weeks in
// wall-clock time, in time order. A time that does not exist in that week
// (skipped by DST) is dropped; one that exists twice is yielded at both
// instants, so the repeated hour of a DST end interleaves with the first.
func (rs *repeatSource) copyOf(weeks int) []Row {
	out := make([]Row, 0, len(rs.rows)+8)
	for _, r := range rs.rows {
		y, mo, d := r.Time.Date()
		h, mi, s := r.Time.Clock()
		t := time.Date(y, mo, d+weekDays*weeks, h, mi, s, r.Time.Nanosecond(), rs.loc)
		if th, tm, _ := t.Clock(); th != h || tm != mi {
			continue // skipped by a DST change
		}
		// time.Date may pick either instant of a repeated wall-clock time.
		for _, c := range [...]time.Time{t.Add(-time.Hour), t, t.Add(time.Hour)} {
			if ch, cm, _ := c.Clock(); ch == h && cm == mi && c.Day() == t.Day() {
				out = append(out, rs.row(r, c))
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Row) int { return a.Time.Compare(b.Time) })
	return out
}

// row is r at time t, every value freshly sampled there.
func (rs *repeatSource) row(r Row, t time.Time) Row {
	r.Time = t
	for s := range r.At {
		r.At[s] = time.Time{}
		if r.Has[s] {
			r.At[s] = t
		}
	}
	return r
}

// readAll reads every row of a trace file.
func readAll(path string) ([]Row, []string, []switchd.Signal, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open trace: %w", err)
	}
	defer f.Close()
	rd, err := NewReader(bufio.NewReaderSize(f, 64<<10), path)
	if err != nil {
		return nil, nil, nil, err
	}
	var rows []Row
	for {
		r, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, nil, err
		}
		rows = append(rows, r)
	}
	return rows, rd.Notices(), rd.Signals(), nil
}

// firstTime returns the time of a trace file's first row.
func firstTime(path string) (time.Time, error) {
	f, err := os.Open(path)
	if err != nil {
		return time.Time{}, fmt.Errorf("open trace: %w", err)
	}
	defer f.Close()
	rd, err := NewReader(bufio.NewReaderSize(f, 64<<10), path)
	if err != nil {
		return time.Time{}, err
	}
	r, err := rd.Next()
	if errors.Is(err, io.EOF) {
		return time.Time{}, fmt.Errorf("%s: no rows", path)
	}
	return r.Time, err
}

// OpenRepeat is Open with a repeat mode per path (repeat[i] for paths[i];
// missing entries are RepeatNone) and the site's location, in which weekly
// tiling keeps weekday and time of day. The first path sets the timeline
// and cannot be repeated.
func OpenRepeat(paths []string, repeat []Repeat, loc *time.Location) (Source, []string, io.Closer, error) {
	repeated := false
	for _, r := range repeat {
		repeated = repeated || r != RepeatNone
	}
	if !repeated {
		return Open(paths)
	}
	if len(paths) == 0 {
		return nil, nil, nil, errors.New("open traces: no trace file given")
	}
	if len(repeat) > 0 && repeat[0] != RepeatNone {
		return nil, nil, nil, fmt.Errorf("trace %s: --repeat cannot apply to the first --trace, which sets the timeline", paths[0])
	}
	start, err := firstTime(paths[0])
	if err != nil {
		return nil, nil, nil, err
	}
	files := make(traceClosers, 0, len(paths))
	srcs := make([]Source, 0, len(paths))
	var notices []string
	var from [switchd.NumSignals]string
	fail := func(err error) (Source, []string, io.Closer, error) {
		_ = files.Close() // read-only files: nothing to lose on close
		return nil, nil, nil, err
	}
	for i, p := range paths {
		var src Source
		var sigs []switchd.Signal
		if i < len(repeat) && repeat[i] == RepeatWeekly {
			rows, ns, ss, err := readAll(p)
			if err != nil {
				return fail(err)
			}
			if src, err = TileWeekly(rows, loc, start, p); err != nil {
				return fail(err)
			}
			notices = append(notices, ns...)
			notices = append(notices, fmt.Sprintf("trace %s: repeated weekly (same weekday and time of day in %s) across the timeline; days of the week it lacks are missing", p, loc))
			sigs = ss
		} else {
			f, err := os.Open(p)
			if err != nil {
				return fail(fmt.Errorf("open trace: %w", err))
			}
			files = append(files, f)
			rd, err := NewReader(bufio.NewReaderSize(f, 64<<10), p)
			if err != nil {
				return fail(err)
			}
			notices = append(notices, rd.Notices()...)
			src, sigs = rd, rd.Signals()
		}
		for _, s := range sigs {
			if from[s] != "" {
				notices = append(notices, fmt.Sprintf("trace %s: %s is also in %s, which wins where both have a value", p, s, from[s]))
				continue
			}
			from[s] = p
		}
		srcs = append(srcs, src)
	}
	return Merge(srcs...), notices, files, nil
}
