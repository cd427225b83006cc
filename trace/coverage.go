package trace

import (
	"slices"
	"time"

	"github.com/switchd/switchd"
)

// GapKind says where in a series a gap lies.
type GapKind uint8

// Gap kinds.
const (
	GapBetween     GapKind = iota // between two samples, later than the cadence
	GapBeforeFirst                // from the trace's start to the signal's first sample
	GapAfterLast                  // after the signal's last sample ran out, to the trace's end
	GapNoSample                   // the whole trace: the signal has no sample at all
)

// String names the kind for reports.
func (k GapKind) String() string {
	switch k {
	case GapBeforeFirst:
		return "before first sample"
	case GapAfterLast:
		return "after last sample"
	case GapNoSample:
		return "no sample"
	}
	return "between samples"
}

// Gap is a span of a trace in which a signal has no sample of its own: a
// merged source carries its last value through it, but nothing was
// measured there. Start is inclusive, End exclusive.
type Gap struct {
	Start, End time.Time
	Kind       GapKind
}

// Duration is the gap's length.
func (g Gap) Duration() time.Duration { return g.End.Sub(g.Start) }

// Contains reports whether t lies in the gap.
func (g Gap) Contains(t time.Time) bool { return !t.Before(g.Start) && t.Before(g.End) }

// Coverage describes how one signal of a Series was sampled.
type Coverage struct {
	Signal  switchd.Signal
	Samples int // samples taken in the trace's span (plus one held from before it)
	// Cadence is the typical spacing of the samples: the median interval
	// between consecutive ones. With fewer than two samples it is the
	// median step of the series' rows.
	Cadence     time.Duration
	First, Last time.Time // first and last sample; zero without samples
	// Gaps lists, in time order, every span of [Start, End) of the series
	// where the signal has no sample of its own. A sample is taken to last
	// one cadence, or up to the next sample if that comes within one and a
	// half cadences (so jitter is not a gap); past that, the time until the
	// next sample (or the trace's end) is a gap.
	Gaps []Gap
	// Span is the series' length, End() − Time(0).
	Span time.Duration
}

// Covered is the share of the series' span (0 to 1) outside gaps.
func (c *Coverage) Covered() float64 {
	if c.Span <= 0 {
		return 0
	}
	return 1 - c.GapTime().Seconds()/c.Span.Seconds()
}

// GapTime is the total length of the gaps.
func (c *Coverage) GapTime() time.Duration {
	var d time.Duration
	for _, g := range c.Gaps {
		d += g.Duration()
	}
	return d
}

// Step returns the median spacing of the series' rows (15 minutes for a
// one-row series).
func (s *Series) Step() time.Duration {
	if len(s.unixNano) < 2 {
		return seriesDefaultStep
	}
	d := make([]int64, len(s.unixNano)-1)
	for i := range d {
		d[i] = s.unixNano[i+1] - s.unixNano[i]
	}
	return time.Duration(median(d))
}

// SampleTimes returns when sig was sampled, in order: the rows where its
// value is fresh, preceded by the time of a value held from before the
// first row.
func (s *Series) SampleTimes(sig switchd.Signal) []time.Time {
	if int(sig) >= switchd.NumSignals || s.values[sig] == nil {
		return nil
	}
	var out []time.Time
	if at := s.firstAt[sig]; !at.IsZero() {
		out = append(out, at)
	}
	for i := range s.unixNano {
		if s.isFresh(int(sig), i) {
			out = append(out, s.Time(i))
		}
	}
	return out
}

// Coverage returns how sig was sampled over the series: cadence, first and
// last sample, and its gaps.
func (s *Series) Coverage(sig switchd.Signal) Coverage {
	c := Coverage{Signal: sig}
	if len(s.unixNano) == 0 {
		return c
	}
	start, end := s.Time(0), s.End()
	c.Span = end.Sub(start)
	times := s.SampleTimes(sig)
	c.Samples = len(times)
	if len(times) == 0 {
		c.Cadence = s.Step()
		c.Gaps = []Gap{{Start: start, End: end, Kind: GapNoSample}}
		return c
	}
	c.First, c.Last = times[0], times[len(times)-1]
	if len(times) < 2 {
		c.Cadence = s.Step()
	} else {
		d := make([]int64, len(times)-1)
		for i := range d {
			d[i] = int64(times[i+1].Sub(times[i]))
		}
		c.Cadence = time.Duration(median(d))
	}
	if c.First.After(start) {
		c.Gaps = append(c.Gaps, Gap{Start: start, End: c.First, Kind: GapBeforeFirst})
	}
	tolerance := c.Cadence + c.Cadence/2
	for i := 0; i+1 < len(times); i++ {
		if times[i+1].Sub(times[i]) <= tolerance {
			continue
		}
		g := Gap{Start: times[i].Add(c.Cadence), End: times[i+1], Kind: GapBetween}
		// A held sample from before the trace: only the part inside it.
		if g.Start.Before(start) {
			g.Start = start
		}
		if g.End.After(g.Start) {
			c.Gaps = append(c.Gaps, g)
		}
	}
	if over := c.Last.Add(c.Cadence); over.Before(end) {
		c.Gaps = append(c.Gaps, Gap{Start: maxTime(over, start), End: end, Kind: GapAfterLast})
	}
	return c
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// median returns the median of d (the lower middle for an even count); d
// is reordered.
func median(d []int64) int64 {
	slices.Sort(d)
	return d[(len(d)-1)/2]
}

// Fresh reports whether row i's value of sig was sampled at row i (rather
// than carried forward from an earlier sample).
func (s *Series) Fresh(i int, sig switchd.Signal) bool {
	return int(sig) < switchd.NumSignals && s.isFresh(int(sig), i)
}

// FirstSampledAt returns when row 0's value of sig was sampled if that was
// before row 0 (a merged sample from before the timeline), else zero.
func (s *Series) FirstSampledAt(sig switchd.Signal) time.Time {
	if int(sig) >= switchd.NumSignals {
		return time.Time{}
	}
	return s.firstAt[sig]
}

// Column returns the CSV column that carries sig (the one WriteCSV writes),
// for messages such as "give a trace with a grid_load_mw column".
func Column(sig switchd.Signal) string {
	if int(sig) >= switchd.NumSignals {
		return ""
	}
	return traceCanonicalColumn[sig]
}
