package controller

import (
	"math"
	"time"

	"github.com/switchd/switchd"
)

// HoldWindow is how far back the hold-time estimator looks at the price: a
// week holds every weekday and the weekend once, and forgets a season within
// days.
const HoldWindow = 7 * 24 * time.Hour

// HoldTimeOfDayWindow is how far apart in the day two spells may start
// and still be judged alike: prices keep a daily rhythm (an afternoon
// spike is over by night, a cheap night lasts until the morning ramp), so
// how long a spell lasts depends on when in the day it began. Chosen on
// August 2023 (±1 h to ±3 h all did about as well) and checked on 2024
// (bench/RESULTS.md).
const HoldTimeOfDayWindow = 2 * time.Hour

// holdMaxSamples bounds the estimator's memory for feeds faster than the
// window needs (a week of 5-minute prices is 2,016 samples); a faster feed
// shortens the window instead.
const holdMaxSamples = 4096

// holdEstimator keeps the price samples the controller saw over the
// trailing HoldWindow, to estimate how long a device switched now into a
// mode, or out of it, is likely to stay there: how long the price stays on
// its present side of the mode's breakeven, judged by how long it stayed on
// that side before (see hold). Each sample also carries which modes a rule
// kept out of reach while it was the latest (forbidden, capped, curtailed),
// because a rule that forces devices off ends a mode's stay as surely as
// the price does.
//
// It keeps samples, not spells, because breakevens move with hashprice and
// inference price: a holdTrack per mode folds the samples into spells
// against one breakeven, incrementally while the breakeven holds still, and
// starts again from the samples when it moves.
//
// It reads no clock: samples carry their own time and queries take now.
// Memory is a ring of at most holdMaxSamples samples, grown on demand.
type holdEstimator struct {
	atNs  []int64 // sample times, Unix ns, oldest at head
	price []float64
	// forced has bit holdBit(i, m) set when mode m of fleet i was out of
	// reach by a rule at some tick while the sample was the latest.
	forced []uint64
	head   int
	n      int
	seq0   int64  // sequence number of the oldest sample held (samples are numbered from 0)
	gen    uint64 // bumped when the newest sample's forced mask grows
	// loc is the zone whose clock spells' times of day are read in (the
	// site's); nil means UTC.
	loc *time.Location
}

// timeOfDay is the instant ns (Unix) as seconds since midnight in loc.
func timeOfDay(ns int64, loc *time.Location) int32 {
	if loc == nil {
		loc = time.UTC
	}
	h, m, s := time.Unix(0, ns).In(loc).Clock()
	return int32(h*3600 + m*60 + s)
}

// nearInDay reports whether two times of day (seconds since midnight) are
// within HoldTimeOfDayWindow of each other, across midnight too.
func nearInDay(a, b int32) bool {
	d := a - b
	if d < 0 {
		d = -d
	}
	d = min(d, 86400-d)
	return time.Duration(d)*time.Second <= HoldTimeOfDayWindow
}

// holdBit is the bit of fleet i's mode m in a forced mask; fleets beyond
// the mask's width get none (their modes are never seen as forced). The
// power-target modes share the bit of the mode they are a level of
// (mining_reduced mining's, sleep inference's), so that a mask still
// holds 21 fleets: a spell of one counts as forced when either was out of
// reach, which only leaves a few spells out of its hold estimate.
func holdBit(i int, m switchd.Mode) uint64 {
	switch m {
	case switchd.ModeMiningReduced:
		m = switchd.ModeMining
	case switchd.ModeSleep:
		m = switchd.ModeInference
	}
	k := i*switchd.BaseModes + int(m)
	if k >= 64 {
		return 0
	}
	return 1 << k
}

// observe records a price sample valid from at until the next one, with
// the modes a rule keeps out of reach now. A repeat of the newest sample
// (the normal case between price updates) only adds to its forced mask;
// older samples, and NaN or infinite prices, are ignored.
func (e *holdEstimator) observe(at time.Time, price float64, forced uint64) {
	if math.IsNaN(price) || math.IsInf(price, 0) {
		return
	}
	t := at.UnixNano()
	if e.n > 0 {
		newest := e.idx(e.n - 1)
		if t == e.atNs[newest] {
			if forced&^e.forced[newest] != 0 {
				e.forced[newest] |= forced
				e.gen++
			}
			return
		}
		if t < e.atNs[newest] {
			return
		}
	}
	if e.n == len(e.atNs) {
		if e.n < holdMaxSamples {
			e.grow()
		} else { // full: forget the oldest
			e.drop()
		}
	}
	k := e.idx(e.n)
	e.atNs[k], e.price[k], e.forced[k] = t, price, forced
	e.n++
	// Forget samples that ended before the window: a sample is needed while
	// its successor starts inside the window.
	cut := t - int64(HoldWindow)
	for e.n > 1 && e.atNs[e.idx(1)] <= cut {
		e.drop()
	}
}

// drop forgets the oldest sample.
func (e *holdEstimator) drop() {
	e.head = (e.head + 1) % len(e.atNs)
	e.n--
	e.seq0++
}

// grow doubles the ring (up to holdMaxSamples), keeping the samples in order.
func (e *holdEstimator) grow() {
	size := min(max(2*len(e.atNs), 64), holdMaxSamples)
	at, p, f := make([]int64, size), make([]float64, size), make([]uint64, size)
	for j := range e.n {
		k := e.idx(j)
		at[j], p[j], f[j] = e.atNs[k], e.price[k], e.forced[k]
	}
	e.atNs, e.price, e.forced, e.head = at, p, f, 0
}

// idx is the ring position of the j-th oldest sample.
func (e *holdEstimator) idx(j int) int { return (e.head + j) % len(e.atNs) }

// spell is a run of samples on one side of a breakeven.
type spell struct {
	start, end int64   // Unix ns; end is the next spell's start
	area       float64 // USD/MWh × h between price and breakeven
	tod        int32   // start's time of day, seconds since midnight in the site's zone
	gains      bool    // on the mode's gaining side
	forced     bool    // the mode was out of reach at some sample
}

// holdTrack is one mode's view of the estimator's samples: its spells
// against one breakeven, folded in as samples arrive. The zero value is
// empty; hold fills it.
type holdTrack struct {
	ok         bool
	started    bool // a sample has been folded in
	threshold  float64
	gainsAbove bool
	bit        uint64
	switchArea float64
	gen        uint64
	loc        *time.Location
	next       int64 // sequence number of the next sample to fold in

	done       []spell // ring of finished spells, oldest first
	head, n    int
	shareSum   [2]float64 // Σ back share of the finished spells, by gains (0 or 1)
	shareCount [2]int

	cur       spell // the present spell, its end unset and its newest sample's area not yet in
	lastAt    int64
	lastPrice float64
}

// b2i is 1 for true.
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// fold adds a sample to the track.
func (tr *holdTrack) fold(t int64, price float64, forced uint64) {
	f := forced&tr.bit != 0
	g := !f && (price <= tr.threshold) != tr.gainsAbove
	if !tr.started {
		tr.started = true
		tr.cur = spell{start: t, tod: timeOfDay(t, tr.loc), gains: g, forced: f}
		tr.lastAt, tr.lastPrice = t, price
		return
	}
	tr.cur.area += math.Abs(tr.lastPrice-tr.threshold) * float64(t-tr.lastAt) / float64(time.Hour)
	if g != tr.cur.gains {
		tr.cur.end = t
		tr.push(tr.cur)
		tr.cur = spell{start: t, tod: timeOfDay(t, tr.loc), gains: g}
	}
	tr.cur.forced = tr.cur.forced || f
	tr.lastAt, tr.lastPrice = t, price
}

// share is what a finished spell on the other side costs the end of a
// hold, in switches: one if the mode was forced out of reach, else its area
// over a switch's worth, at most one.
func (tr *holdTrack) share(s *spell) float64 {
	if s.forced || !(s.area < tr.switchArea) {
		return 1
	}
	return s.area / tr.switchArea
}

// push appends a finished spell.
func (tr *holdTrack) push(s spell) {
	if tr.n == len(tr.done) {
		size := max(2*len(tr.done), 16)
		done := make([]spell, size)
		for j := range tr.n {
			done[j] = tr.done[(tr.head+j)%len(tr.done)]
		}
		tr.done, tr.head = done, 0
	}
	tr.done[(tr.head+tr.n)%len(tr.done)] = s
	tr.n++
	tr.shareSum[b2i(s.gains)] += tr.share(&s)
	tr.shareCount[b2i(s.gains)]++
}

// pop forgets the oldest finished spell.
func (tr *holdTrack) pop() {
	s := &tr.done[tr.head]
	k := b2i(s.gains)
	tr.shareCount[k]--
	tr.shareSum[k] -= tr.share(s)
	if tr.shareCount[k] == 0 {
		tr.shareSum[k] = 0 // no drift left from the running sum
	}
	tr.head = (tr.head + 1) % len(tr.done)
	tr.n--
}

// reset empties the track for a new breakeven, keeping its buffer.
func (tr *holdTrack) reset(threshold float64, gainsAbove bool, bit uint64, switchArea float64, gen uint64, next int64, loc *time.Location) {
	*tr = holdTrack{ok: true, threshold: threshold, gainsAbove: gainsAbove, bit: bit, switchArea: switchArea,
		gen: gen, next: next, loc: loc, done: tr.done}
}

// sync folds in the samples the track has not seen, and forgets spells that
// ended before the oldest sample held. It starts again from the samples
// held when the breakeven or the switch's worth moved, when samples went by
// unseen, when the newest sample's forced mask grew, or when the site's
// zone changed.
func (e *holdEstimator) sync(tr *holdTrack, threshold float64, gainsAbove bool, bit uint64, switchArea float64) {
	if !tr.ok || tr.threshold != threshold || tr.gainsAbove != gainsAbove || tr.bit != bit ||
		tr.switchArea != switchArea || tr.gen != e.gen || tr.next < e.seq0 || tr.loc != e.loc {
		tr.reset(threshold, gainsAbove, bit, switchArea, e.gen, e.seq0, e.loc)
	}
	for ; tr.next < e.seq0+int64(e.n); tr.next++ {
		k := e.idx(int(tr.next - e.seq0))
		tr.fold(e.atNs[k], e.price[k], e.forced[k])
	}
	oldest := e.atNs[e.idx(0)]
	for tr.n > 0 && tr.done[tr.head].end <= oldest {
		tr.pop()
	}
}

// hold returns how long, from now, the present spell of fleet i's mode is
// expected to last, through tr (the mode's own track, kept between calls).
// A sample is on the gaining side when the mode is in reach (bit clear in
// its forced mask) and its price is at or below threshold (above it, when
// gainsAbove: a mode drawing less than off); a spell is a run of samples on
// one side.
//
// The estimate is the mean residual life of the present spell: over the
// past spells on the same side that began at about the same time of day
// (within HoldTimeOfDayWindow) and lasted longer than the present one has
// so far, the mean of what they lasted beyond that age. A price that has
// just crossed is judged by every such spell, flickers included; one that
// has stayed for hours only by the spells that lasted as long. Judging by
// the time of day is what tells a cheap night (it lasts until the morning)
// from a lull between two afternoon spikes (over within the hour). With no
// past spell on that side beginning near that time of day, every past
// spell on that side is used instead. With none that long the present one
// is the longest seen, and it is expected to last as long again (the
// median residual of a spell whose length is only known to exceed its age,
// for a heavy-tailed spell length). A spell
// that began before the oldest sample held counts from that sample. The
// estimate is never less than the newest sample's spacing from the one
// before (a sample stands for its interval), and zero when there is no
// history to judge by (fewer than two samples).
//
// back is the expected share of a second switch that the end of the
// present spell will cost: the next spell, on the other side, either is
// ridden through, costing its area between price and threshold (USD/MWh ×
// h, over switchArea, the area one switch is worth), or is worth a switch
// back, costing one; a spell in which the mode was forced out of reach
// costs one. It is the mean of that share over the past spells on the other
// side, and 0 with none. (A spell partly out of the window keeps the area
// it had when it was folded in whole; a track built afresh sees only the
// part held.)
//
// Once the track has caught up, a call folds in only the new samples and
// walks the past spells once; it does not allocate unless the track's
// spell buffer grows.
func (e *holdEstimator) hold(tr *holdTrack, now time.Time, threshold float64, gainsAbove bool, bit uint64, switchArea float64) (hold time.Duration, back float64) {
	if e.n < 2 || math.IsNaN(threshold) {
		return 0, 0
	}
	e.sync(tr, threshold, gainsAbove, bit, switchArea)
	// Spells are measured from the oldest sample held at the earliest, as
	// if the track had been built from the samples held now.
	oldest := e.atNs[e.idx(0)]
	age := max(now.UnixNano()-max(tr.cur.start, oldest), 0)
	// A spell that began before the oldest sample begins there, for its
	// time of day too.
	oldestTOD := int32(-1)
	todOf := func(s *spell) int32 {
		if s.start >= oldest {
			return s.tod
		}
		if oldestTOD < 0 {
			oldestTOD = timeOfDay(oldest, tr.loc)
		}
		return oldestTOD
	}
	curTOD := todOf(&tr.cur)
	var sum, sumNear float64
	var count, countNear, near int
	for j := range tr.n {
		s := &tr.done[(tr.head+j)%len(tr.done)]
		if s.gains != tr.cur.gains {
			continue
		}
		isNear := nearInDay(todOf(s), curTOD)
		if isNear {
			near++
		}
		if l := s.end - max(s.start, oldest); l > age {
			sum += float64(l - age)
			count++
			if isNear {
				sumNear += float64(l - age)
				countNear++
			}
		}
	}
	residual := float64(age)
	switch {
	case countNear > 0:
		residual = sumNear / float64(countNear)
	case near == 0 && count > 0: // nothing began near this time of day: judge by all
		residual = sum / float64(count)
	}
	if other := 1 - b2i(tr.cur.gains); tr.shareCount[other] > 0 {
		back = tr.shareSum[other] / float64(tr.shareCount[other])
	}
	spacing := float64(e.atNs[e.idx(e.n-1)] - e.atNs[e.idx(e.n-2)])
	return time.Duration(max(residual, spacing)), back
}
