package trace

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/switchd/switchd"
)

// Resample returns src averaged into coarser intervals of length step,
// aligned to multiples of step in the rows' local time: whole local hours
// for 1h, local midnights for 24h. Steps shorter than a day last exactly
// step (the repeated hour of a DST fall-back is two intervals); steps of
// whole days follow the local calendar (a fall-back day lasts 25 hours).
// It streams: it holds one interval's sums and the next input row.
//
// Each output row starts an interval that holds at least one input row. A
// signal's value there is the interval-weighted mean of the samples taken
// inside it: each fresh sample (At equal to its row's time) weighs the
// length of its row's interval, clipped to the output interval; values an
// input row only carries forward weigh nothing. An interval with a sample is
// a fresh sample at the interval's start; one without carries the previous
// output value (so a daily hashprice stays daily, and a series that ends or
// has a gap still ends or has a gap: resampling never makes a sample up).
// The last input row's interval is as long as the step before it.
//
// An hourly price from 15-minute settlement prices is thus the mean of the
// four; grid load likewise. Resample only coarsens: with step shorter than
// the input's, rows pass through at their own times. step must be positive.
func Resample(src Source, step time.Duration) Source {
	return &resampler{src: src, step: step}
}

// resampler is the Source Resample returns.
type resampler struct {
	src     Source
	step    time.Duration
	next    Row  // the input row read ahead
	hasNext bool // next is valid
	started bool
	lastLen time.Duration // spacing of the last two input rows
	prev    Row           // the previous output row
	emitted bool          // prev is valid
	prevEnd time.Time     // end of the previous output interval
	err     error
}

// Signals returns the input's signals when it can tell (for WriteCSV).
func (r *resampler) Signals() []switchd.Signal {
	sigs, _ := traceSignals(r.src)
	return sigs
}

// Next returns the next resampled row or io.EOF.
func (r *resampler) Next() (Row, error) {
	if r.err != nil {
		return Row{}, r.err
	}
	row, err := r.nextRow()
	if err != nil {
		r.err = err
	}
	return row, err
}

func (r *resampler) read() error {
	row, err := r.src.Next()
	switch {
	case err == io.EOF:
		r.hasNext = false
		return nil
	case err != nil:
		return err
	}
	if r.hasNext {
		if !row.Time.After(r.next.Time) {
			return fmt.Errorf("resample trace: time %s is not after %s",
				row.Time.Format(time.RFC3339Nano), r.next.Time.Format(time.RFC3339Nano))
		}
		r.lastLen = row.Time.Sub(r.next.Time)
	}
	r.next, r.hasNext = row, true
	return nil
}

func (r *resampler) nextRow() (Row, error) {
	if r.step <= 0 {
		return Row{}, errors.New("resample trace: step must be positive")
	}
	if !r.started {
		r.started = true
		if err := r.read(); err != nil {
			return Row{}, err
		}
	}
	if !r.hasNext {
		return Row{}, io.EOF
	}
	first := r.next
	shift0 := zoneShift(first.Time)
	key := first.Time.Add(shift0).Truncate(r.step) // local wall clock, as UTC
	bucket := key.Add(-shift0)
	if r.emitted && bucket.Before(r.prevEnd) {
		bucket = r.prevEnd
	}
	days := r.step%(24*time.Hour) == 0
	// bucketEnd is when the interval ends as seen from a row with shift
	// sh: local calendar days end later after a fall-back.
	bucketEnd := func(sh time.Duration) time.Time {
		if days {
			return bucket.Add(r.step + shift0 - sh)
		}
		return bucket.Add(r.step)
	}
	inBucket := func(t time.Time) bool {
		sh := zoneShift(t)
		if !t.Add(sh).Truncate(r.step).Equal(key) {
			return false
		}
		return days || t.Before(bucketEnd(sh))
	}
	var end time.Time
	var sum, weight [switchd.NumSignals]float64
	var has [switchd.NumSignals]bool
	carried := first // for a value held from before the very first row
	for {
		cur := r.next
		if err := r.read(); err != nil {
			return Row{}, err
		}
		end = cur.Time.Add(r.lastLen)
		if r.hasNext {
			end = r.next.Time
		} else if r.lastLen <= 0 {
			end = cur.Time.Add(min(r.step, seriesDefaultStep))
		}
		if be := bucketEnd(zoneShift(cur.Time)); end.After(be) {
			end = be
		}
		w := end.Sub(cur.Time).Seconds()
		for s := range switchd.NumSignals {
			if !cur.Has[s] {
				continue
			}
			has[s] = true
			if cur.sampledAt(s).Equal(cur.Time) {
				sum[s] += cur.Values[s] * w
				weight[s] += w
			}
		}
		if !r.hasNext || !inBucket(r.next.Time) {
			break
		}
	}
	out := Row{Time: bucket}
	for s := range switchd.NumSignals {
		switch {
		case weight[s] > 0:
			out.Values[s], out.Has[s], out.At[s] = sum[s]/weight[s], true, bucket
		case !has[s]:
		case r.emitted && r.prev.Has[s]:
			out.Values[s], out.Has[s], out.At[s] = r.prev.Values[s], true, r.prev.At[s]
		case !r.emitted && carried.Has[s]:
			// The first row carries a sample from before the trace.
			at := carried.sampledAt(s)
			if at.After(bucket) {
				at = bucket // sampled inside the first interval, before its first row
			}
			out.Values[s], out.Has[s], out.At[s] = carried.Values[s], true, at
		}
	}
	r.prev, r.emitted, r.prevEnd = out, true, end
	return out, nil
}

// zoneShift is t's offset from UTC.
func zoneShift(t time.Time) time.Duration {
	_, off := t.Zone()
	return time.Duration(off) * time.Second
}
