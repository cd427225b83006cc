package trace

import (
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"time"

	"github.com/switchd/switchd"
)

// seriesDefaultStep is the length given to the last interval of a one-row
// series, which has no step to repeat: the settlement interval of ERCOT's
// real-time market.
const seriesDefaultStep = 15 * time.Minute

// The instants a Series can hold: those with a nanosecond Unix time in an
// int64, years 1678 to 2262.
var (
	seriesMinTime = time.Unix(0, math.MinInt64)
	seriesMaxTime = time.Unix(0, math.MaxInt64)
)

// Series is a compact columnar copy of a trace (usually merged), for
// replaying it several times: policy, baselines, oracle. It stores each time
// as Unix nanoseconds plus a run of locations (offsets change only at DST),
// and each signal as one float64 per row with NaN for unknown, allocated
// only for signals that have a value, plus one bit per row saying whether
// the value was sampled at that row (so Source restores Row.At). Memory is
// about 8 bytes × (1 + signals) × rows. A Series is immutable once
// collected and safe for concurrent reads.
type Series struct {
	unixNano []int64
	zones    []seriesZone
	values   [switchd.NumSignals][]float64 // nil for a signal with no value
	// fresh[s] bit i is set when row i's value of s was sampled at row i's
	// time; a clear bit with a value means it carries an earlier sample.
	fresh [switchd.NumSignals][]uint64
	// firstAt[s] is when row 0's value of s was sampled, if before row 0.
	firstAt [switchd.NumSignals]time.Time
	signals []switchd.Signal
}

// seriesZone says that rows from index from on are in loc, up to the next
// seriesZone.
type seriesZone struct {
	from int
	loc  *time.Location
}

// Collect reads src to the end into a Series. It is an error if src yields
// no row, times that do not strictly increase, a time outside years 1678 to
// 2262, a NaN it claims to have, or a sample time (Row.At) that is neither
// the row's time nor the previous row's sample time (for the first row: any
// earlier time), which no Reader, Merge or Series yields.
func Collect(src Source) (*Series, error) {
	s := &Series{}
	var prev time.Time
	var lastAt [switchd.NumSignals]time.Time // sample time of the previous row's values
	for {
		row, err := src.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("collect trace: %w", err)
		}
		n := len(s.unixNano)
		t := row.Time
		if n > 0 && !t.After(prev) {
			return nil, fmt.Errorf("collect trace: row %d: time %s is not after %s",
				n+1, t.Format(time.RFC3339Nano), prev.Format(time.RFC3339Nano))
		}
		if t.Before(seriesMinTime) || t.After(seriesMaxTime) {
			return nil, fmt.Errorf("collect trace: row %d: time %s is outside years 1678 to 2262",
				n+1, t.Format(time.RFC3339Nano))
		}
		prev = t
		s.unixNano = append(s.unixNano, t.UnixNano())
		if loc := t.Location(); len(s.zones) == 0 || s.zones[len(s.zones)-1].loc != loc {
			s.zones = append(s.zones, seriesZone{from: n, loc: loc})
		}
		for sig := range switchd.NumSignals {
			col := s.values[sig]
			if !row.Has[sig] {
				if col != nil {
					s.values[sig] = append(col, math.NaN())
				}
				lastAt[sig] = time.Time{}
				continue
			}
			v := row.Values[sig]
			if math.IsNaN(v) {
				return nil, fmt.Errorf("collect trace: row %d: %s is NaN", n+1, switchd.Signal(sig))
			}
			switch at := row.sampledAt(sig); {
			case at.Equal(t):
				s.setFresh(sig, n)
			case n == 0 && at.Before(t):
				s.firstAt[sig] = at
			case !lastAt[sig].IsZero() && at.Equal(lastAt[sig]):
				// Carried forward from the previous row.
			default:
				return nil, fmt.Errorf("collect trace: row %d: %s sampled at %s, neither at the row's time %s nor with the previous row's value",
					n+1, switchd.Signal(sig), at.Format(time.RFC3339Nano), t.Format(time.RFC3339Nano))
			}
			lastAt[sig] = row.sampledAt(sig)
			if col == nil {
				// The first value of this signal: earlier rows had none.
				col = make([]float64, n, cap(s.unixNano))
				for i := range col {
					col[i] = math.NaN()
				}
			}
			s.values[sig] = append(col, v)
		}
	}
	if len(s.unixNano) == 0 {
		return nil, errors.New("collect trace: no rows")
	}
	for _, sig := range switchd.AllSignals {
		if s.values[sig] != nil {
			s.signals = append(s.signals, sig)
		}
	}
	return s, nil
}

// setFresh marks row i's value of sig as sampled at row i.
func (s *Series) setFresh(sig, i int) {
	b := s.fresh[sig]
	for len(b) <= i/64 {
		b = append(b, 0)
	}
	b[i/64] |= 1 << (i % 64)
	s.fresh[sig] = b
}

// isFresh reports whether row i's value of sig was sampled at row i.
func (s *Series) isFresh(sig, i int) bool {
	b := s.fresh[sig]
	return i/64 < len(b) && b[i/64]&(1<<(i%64)) != 0
}

// Len returns the number of rows.
func (s *Series) Len() int { return len(s.unixNano) }

// Time returns the start of interval i, in the location its row had.
func (s *Series) Time(i int) time.Time {
	return time.Unix(0, s.unixNano[i]).In(s.zoneAt(i))
}

// zoneAt returns the location of row i.
func (s *Series) zoneAt(i int) *time.Location {
	// The first run starting after i; i is in the run before it.
	k := sort.Search(len(s.zones), func(k int) bool { return s.zones[k].from > i })
	return s.zones[k-1].loc
}

// Value returns signal sig at row i and whether it is known there.
func (s *Series) Value(i int, sig switchd.Signal) (float64, bool) {
	if int(sig) >= switchd.NumSignals {
		return 0, false
	}
	col := s.values[sig]
	if col == nil || math.IsNaN(col[i]) {
		return 0, false
	}
	return col[i], true
}

// End returns the end of the last interval: the last time plus the step
// between the last two rows, or plus 15 minutes for a one-row series. It is
// the zero time for an empty Series. Interval i lasts Time(i+1) − Time(i),
// the last one End() − Time(Len()−1).
func (s *Series) End() time.Time {
	n := len(s.unixNano)
	switch n {
	case 0:
		return time.Time{}
	case 1:
		return s.Time(0).Add(seriesDefaultStep)
	}
	step := time.Duration(s.unixNano[n-1] - s.unixNano[n-2])
	return s.Time(n - 1).Add(step)
}

// Signals returns the signals that have at least one value, in signal order.
func (s *Series) Signals() []switchd.Signal { return s.signals }

// Source returns a new iterator over the rows. A row's Has[s] is true where
// the value is not NaN, At[s] is as collected, and Line is 0 (a Series keeps
// no line numbers).
func (s *Series) Source() Source { return &seriesSource{s: s} }

// seriesSource is the Source Series.Source returns.
type seriesSource struct {
	s      *Series
	i      int
	zone   int                           // index in s.zones of row i's run
	lastAt [switchd.NumSignals]time.Time // sample time of the previous row's values
}

// Next returns the next row or io.EOF.
func (it *seriesSource) Next() (Row, error) {
	s := it.s
	if it.i >= len(s.unixNano) {
		return Row{}, io.EOF
	}
	for it.zone+1 < len(s.zones) && s.zones[it.zone+1].from <= it.i {
		it.zone++
	}
	row := Row{Time: time.Unix(0, s.unixNano[it.i]).In(s.zones[it.zone].loc)}
	for sig, col := range s.values {
		if col == nil || math.IsNaN(col[it.i]) {
			continue
		}
		at := it.lastAt[sig]
		switch {
		case s.isFresh(sig, it.i):
			at = row.Time
		case it.i == 0:
			at = s.firstAt[sig]
		}
		row.Values[sig], row.Has[sig], row.At[sig] = col[it.i], true, at
		it.lastAt[sig] = at
	}
	it.i++
	return row, nil
}

// Signals returns the series' signals, so WriteCSV can stream it.
func (it *seriesSource) Signals() []switchd.Signal { return it.s.Signals() }
