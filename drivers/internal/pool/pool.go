package pool

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/switchd/switchd"
	"go.uber.org/zap"
)

// Pool drives a fleet of real devices. It implements switchd.Driver:
// State and Apply are never called concurrently (the controller's
// contract), while Devices, Transitions and PowerKW may be called from
// other goroutines at any time (they read the last poll under a lock).
type Pool struct {
	spec  switchd.FleetSpec
	set   Settings
	clock switchd.Clock
	log   *zap.Logger

	mu   sync.Mutex // guards recs' fields and stats against the readers
	recs []rec

	failedNew int // devices newly marked stuck since the last State
	stats     map[[2]switchd.Mode]*ring
	cohorts   []switchd.Cohort // State's reused result
	start     int              // where the last poll began
	standby   bool             // SetStandby: observe only (standby.go)
}

// rec is the pool's memory of one device.
type rec struct {
	dev Device

	// Observed.
	seen  bool // answered at least once
	obs   Observation
	mode  switchd.Mode // observed mode (when seen and obs.Known)
	since time.Time    // observed in mode since

	// Commanded.
	want     switchd.Mode
	hasWant  bool
	cmdAt    time.Time // last command sent; zero when none is pending
	cmdFrom  switchd.Mode
	attempts int  // commands sent for the current want without arrival
	warming  bool // in the commanded mode but not working yet, within its transition time

	// Health.
	misses    int    // polls in a row without an answer
	problem   string // a switchd.Problem* reason; empty when usable
	problemAt time.Time
	lastErr   string
}

var (
	_ switchd.Driver             = (*Pool)(nil)
	_ switchd.DeviceReporter     = (*Pool)(nil)
	_ switchd.ProblemReporter    = (*Pool)(nil)
	_ switchd.TransitionReporter = (*Pool)(nil)
	_ switchd.PowerReporter      = (*Pool)(nil)
	_ switchd.PowerTargeter      = (*Pool)(nil)
	_ switchd.Stopper            = (*Pool)(nil)
)

// New returns a pool over devs; s is defaulted here.
func New(d Deps, s Settings, devs []Device) *Pool {
	s.Defaults()
	log := d.Logger
	if log == nil {
		log = zap.NewNop()
	}
	devs = append([]Device(nil), devs...)
	wrapPowerTargets(&d.Spec, devs)
	p := &Pool{spec: d.Spec, set: s, clock: d.Clock, log: log, recs: make([]rec, len(devs)), stats: map[[2]switchd.Mode]*ring{}}
	for i, dv := range devs {
		p.recs[i].dev = dv
	}
	return p
}

// Len is the number of devices.
func (p *Pool) Len() int { return len(p.recs) }

// each runs fn for the given device indices with at most Concurrency calls
// in flight, each bounded by the call timeout, and waits for all of them.
func (p *Pool) each(ctx context.Context, idx []int, fn func(ctx context.Context, i int)) {
	if len(idx) == 0 {
		return
	}
	workers := min(p.set.Concurrency, len(idx))
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if ctx.Err() != nil {
					continue // out of time: the rest are not called
				}
				cctx, cancel := context.WithTimeout(ctx, p.set.Timeout)
				fn(cctx, i)
				cancel()
			}
		}()
	}
	for _, i := range idx {
		next <- i
	}
	close(next)
	wg.Wait()
}

// order returns the indices of every device, starting one place further on
// each poll, so that a poll cut short by its deadline does not always leave
// out the same devices.
func (p *Pool) order() []int {
	n := len(p.recs)
	idx := make([]int, n)
	if n == 0 {
		return idx
	}
	p.start = (p.start + 1 + n) % n
	for i := range idx {
		idx[i] = (p.start + i) % n
	}
	return idx
}

// errNotSent stands for a command the call's deadline came before: the next
// poll sends it again.
var errNotSent = switchd.Retriable(errors.New("not sent: the call ran out of time"))

type result struct {
	obs    Observation
	err    error
	polled bool // false when the poll's deadline came first
}

// State polls every device once, with bounded concurrency, re-commands the
// ones that drifted from their commanded mode, and returns the fleet as the
// devices reported it.
func (p *Pool) State(ctx context.Context) (switchd.FleetState, error) {
	res := make([]result, len(p.recs))
	order := p.order()
	defer func() {
		// The next poll begins with the first device this one missed.
		for _, i := range order {
			if !res[i].polled {
				p.start = i - 1
				break
			}
		}
	}()
	p.each(ctx, order, func(cctx context.Context, i int) {
		o, err := p.recs[i].dev.Observe(cctx)
		if err != nil && ctx.Err() != nil {
			return // cut short by the poll's deadline, not the device's fault
		}
		res[i] = result{o, err, true}
	})
	if err := ctx.Err(); err != nil && allFailed(res) {
		return switchd.FleetState{}, switchd.Retriable(fmt.Errorf("poll: %w", err))
	}
	now := p.clock.Now()

	p.mu.Lock()
	var redo []int
	shedOnly := switchd.ShedOnlyFrom(ctx)
	for i := range p.recs {
		if p.note(now, &p.recs[i], res[i]) {
			if r := &p.recs[i]; shedOnly && p.spec.Modes[r.want].PowerKW >= p.spec.Modes[r.mode].PowerKW {
				// A shed-only tick (the startup hold): a drifted
				// device is sent back only where that lowers its
				// draw; the rest wait for the first full tick.
				continue
			}
			redo = append(redo, i)
		}
	}
	p.mu.Unlock()

	// Drifted devices are commanded again, outside the lock.
	errs := make([]error, len(p.recs))
	for _, i := range redo {
		errs[i] = errNotSent
	}
	p.each(ctx, redo, func(ctx context.Context, i int) {
		errs[i] = p.recs[i].dev.Set(ctx, p.recs[i].want)
	})

	p.mu.Lock()
	defer p.mu.Unlock()
	for _, i := range redo {
		p.sent(now, &p.recs[i], errs[i])
	}
	st := switchd.FleetState{Drifted: len(redo), Failed: p.failedNew}
	p.failedNew = 0
	st.Unusable.ByReason = map[string]int{}
	p.cohorts = p.cohorts[:0]
	for i := range p.recs {
		r := &p.recs[i]
		if r.problem != "" {
			m := r.mode
			if !r.seen || !r.obs.Known {
				m = r.want // the best guess of what it draws
			}
			st.Unusable.ByMode[m]++
			st.Unusable.ByReason[r.problem]++
			continue
		}
		c := switchd.Cohort{Mode: r.mode, Target: r.want, Since: r.since, Count: 1}
		switch {
		case r.warming:
			c.Mode, c.Since = r.cmdFrom, r.cmdAt
		case r.mode != r.want:
			c.Since = r.cmdAt
		}
		p.cohorts = append(p.cohorts, c)
	}
	st.Cohorts = mergeCohorts(p.cohorts)
	return st, nil
}

func allFailed(res []result) bool {
	for _, r := range res {
		if r.polled && r.err == nil {
			return false
		}
	}
	return true
}

// note records one poll result; it reports whether the device must be
// commanded again. Under mu.
func (p *Pool) note(now time.Time, r *rec, res result) (recommand bool) {
	if !res.polled {
		// Not read this time (the poll ran out of time before its turn):
		// its last observation stands, and it is no miss of its own.
		return false
	}
	if res.err != nil {
		r.misses++
		r.lastErr = res.err.Error()
		p.log.Debug("device poll failed", zap.String("device", r.dev.Addr()), zap.Error(res.err))
		switch {
		case !r.seen:
			// Never answered: nothing to count on.
			p.mark(now, r, switchd.ProblemOf(res.err))
		case switchd.IsPermanent(res.err) || r.misses >= p.set.FailAfter:
			p.mark(now, r, switchd.ProblemOf(res.err))
		}
		// Otherwise one missed poll keeps the last observation.
		return false
	}
	obs := res.obs
	r.misses = 0
	first := !r.seen
	r.seen, r.obs = true, obs
	if !obs.Known {
		r.lastErr = "mode unknown: " + obs.Detail
		p.mark(now, r, switchd.ProblemProtocol)
		return false
	}
	if first || obs.Mode != r.mode {
		r.mode = obs.Mode
		r.since = now
		if first {
			// Found in its mode at start: it has been there long enough
			// for an economic switch, as a simulated fleet starts.
			r.since = now.Add(-p.spec.MinDwell)
		}
	}
	if !r.hasWant {
		r.want, r.hasWant = obs.Mode, true
	}
	if p.standby {
		// A standby only watches: what the device does is what is wanted,
		// so nothing is commanded back, now or after a takeover.
		r.want, r.cmdAt, r.attempts = obs.Mode, time.Time{}, 0
	}
	// Problems that an answer clears.
	switch r.problem {
	case switchd.ProblemUnreachable, switchd.ProblemProtocol, switchd.ProblemFault:
		r.problem = ""
	case switchd.ProblemStuck:
		// It got there after all, or it is time to try again.
		if obs.Mode == r.want || now.Sub(r.problemAt) >= p.set.Recheck {
			r.problem, r.attempts = "", 0
		}
	case switchd.ProblemAuth:
		// Reads work without a login: only the recheck tells.
		if now.Sub(r.problemAt) >= p.set.Recheck {
			r.problem, r.attempts = "", 0
		}
	}
	r.warming = false
	if obs.Mode == r.want && obs.Fault && !r.cmdAt.IsZero() && now.Before(r.cmdAt.Add(p.spec.Transition[r.cmdFrom][r.want]+p.set.Grace)) {
		// Just commanded into a working mode and not working yet: a miner
		// ramping up after wake, an engine loading. Still on its way.
		r.warming = true
		return false
	}
	if obs.Mode == r.want {
		if !r.cmdAt.IsZero() {
			p.record(r.cmdFrom, r.want, now.Sub(r.cmdAt))
			r.cmdAt = time.Time{}
		}
		r.attempts = 0
		if obs.Fault {
			r.lastErr = "fault: " + obs.Detail
			p.mark(now, r, switchd.ProblemFault)
		}
		return false
	}
	if r.problem != "" {
		return false // failed devices wait for the recheck
	}
	// Out of its commanded mode: on its way, or drifted.
	if !r.cmdAt.IsZero() && now.Before(r.cmdAt.Add(p.spec.Transition[r.cmdFrom][r.want]+p.set.Grace)) {
		return false
	}
	if r.attempts >= p.set.MaxAttempts {
		r.lastErr = fmt.Sprintf("still %s after %d commands to %s", obs.Mode, r.attempts, r.want)
		p.mark(now, r, switchd.ProblemStuck)
		p.failedNew++
		return false
	}
	p.log.Debug("device drifted", zap.String("device", r.dev.Addr()), zap.Stringer("mode", obs.Mode), zap.Stringer("want", r.want))
	return true
}

// mark sets a device's problem.
func (p *Pool) mark(now time.Time, r *rec, problem string) {
	if r.problem != problem {
		r.problem, r.problemAt = problem, now
	}
}

// sent records that a command was sent to r (err is its outcome). Under mu.
func (p *Pool) sent(now time.Time, r *rec, err error) {
	r.attempts++
	r.cmdFrom = r.mode
	if err == nil {
		r.cmdAt = now
		return
	}
	r.lastErr = err.Error()
	p.log.Debug("device command failed", zap.String("device", r.dev.Addr()), zap.Stringer("want", r.want), zap.Error(err))
	if switchd.IsPermanent(err) {
		// It will not move: it stays where it is, out of the usable
		// capacity, until the recheck.
		p.mark(now, r, switchd.ProblemOf(err))
		r.want = r.mode
		r.cmdAt = time.Time{}
		return
	}
	// Not accepted: the next poll commands it again at once.
	r.cmdAt = time.Time{}
}

// Apply moves devices: for each command, Count usable devices steady in
// From, those longest there first, are commanded to To (with bounded
// concurrency). It returns nil once the devices accepted; devices that did
// not are commanded again on the next poll or marked failed. It fails when
// no device accepted, or when fewer devices were steady in From than asked.
func (p *Pool) Apply(ctx context.Context, cmds []switchd.Command) error {
	now := p.clock.Now()
	p.mu.Lock()
	var chosen []int
	var short []error
	taken := make(map[int]bool)
	for _, c := range cmds {
		var cand []int
		for i := range p.recs {
			r := &p.recs[i]
			// Steady in From exactly as State reported it: devices still
			// warming up count as on their way, not as steady.
			if !taken[i] && r.seen && r.problem == "" && !r.warming && r.mode == c.From && r.want == c.From {
				cand = append(cand, i)
			}
		}
		slices.SortStableFunc(cand, func(a, b int) int { return p.recs[a].since.Compare(p.recs[b].since) })
		n := min(c.Count, len(cand))
		if n < c.Count {
			short = append(short, fmt.Errorf("%d of %d devices steady in %s to move to %s", n, c.Count, c.From, c.To))
		}
		for _, i := range cand[:n] {
			taken[i] = true
			p.recs[i].want = c.To
			p.recs[i].attempts = 0
			chosen = append(chosen, i)
		}
	}
	p.mu.Unlock()

	errs := make([]error, len(p.recs))
	for _, i := range chosen {
		errs[i] = errNotSent
	}
	p.each(ctx, chosen, func(ctx context.Context, i int) {
		errs[i] = p.recs[i].dev.Set(ctx, p.recs[i].want)
	})

	p.mu.Lock()
	defer p.mu.Unlock()
	failed := 0
	var first error
	for _, i := range chosen {
		p.sent(now, &p.recs[i], errs[i])
		if errs[i] != nil {
			failed++
			if first == nil {
				first = fmt.Errorf("%s: %w", p.recs[i].dev.Addr(), errs[i])
			}
		}
	}
	var err error
	if len(chosen) > 0 && failed == len(chosen) {
		err = fmt.Errorf("no device accepted the command (%d tried): %w", failed, first)
	}
	if len(short) > 0 {
		err = errors.Join(append([]error{err}, short...)...)
		err = switchd.Retriable(err)
	}
	return err
}

// SetPowerPercent implements switchd.PowerTargeter for devices that have a
// power target: n devices steady in mining are set to pct.
func (p *Pool) SetPowerPercent(ctx context.Context, n int, pct float64) error {
	p.mu.Lock()
	var idx []int
	for i := range p.recs {
		r := &p.recs[i]
		if _, ok := r.dev.(PowerSetter); ok && len(idx) < n && r.problem == "" && r.mode == switchd.ModeMining && r.want == switchd.ModeMining {
			idx = append(idx, i)
		}
	}
	p.mu.Unlock()
	if len(idx) == 0 && n > 0 {
		return switchd.Permanent(errors.New("no device with a power target is mining"))
	}
	errs := make([]error, len(p.recs))
	p.each(ctx, idx, func(ctx context.Context, i int) {
		errs[i] = p.recs[i].dev.(PowerSetter).SetPowerPercent(ctx, pct)
	})
	return errors.Join(errs...)
}

// Stop releases what devices hold (sessions), bounded by the call timeout.
func (p *Pool) Stop() {
	var idx []int
	for i := range p.recs {
		if _, ok := p.recs[i].dev.(Closer); ok {
			idx = append(idx, i)
		}
	}
	p.each(context.Background(), idx, func(ctx context.Context, i int) {
		_ = p.recs[i].dev.(Closer).Close(ctx)
	})
}

// Devices implements switchd.DeviceReporter from the last poll.
func (p *Pool) Devices() []switchd.DeviceStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]switchd.DeviceStatus, len(p.recs))
	for i := range p.recs {
		out[i] = p.status(&p.recs[i])
	}
	return out
}

// ProblemDevices implements switchd.ProblemReporter from the last poll.
func (p *Pool) ProblemDevices(max int) ([]switchd.DeviceStatus, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []switchd.DeviceStatus
	total := 0
	for i := range p.recs {
		if p.recs[i].problem == "" {
			continue
		}
		total++
		if len(out) < max {
			out = append(out, p.status(&p.recs[i]))
		}
	}
	return out, total
}

// status is one device's status. Under mu.
func (p *Pool) status(r *rec) switchd.DeviceStatus {
	d := switchd.DeviceStatus{Addr: r.dev.Addr(), Mode: "unknown", Problem: r.problem, LastError: r.lastErr,
		HashrateTHs: r.obs.HashrateTHs, Model: r.obs.Model, Firmware: r.obs.Firmware}
	if r.seen && r.obs.Known {
		d.Mode, d.Since = r.mode.String(), r.since
	}
	if r.hasWant {
		d.Commanded = r.want.String()
	}
	if r.obs.HasPower {
		w := r.obs.PowerW
		d.PowerW = &w
	}
	return d
}

// PowerKW implements switchd.PowerReporter: the sum of what devices report,
// or their catalog power in their observed mode when they do not say.
func (p *Pool) PowerKW() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	kw := 0.0
	for i := range p.recs {
		r := &p.recs[i]
		switch {
		case r.obs.HasPower:
			kw += r.obs.PowerW / 1000
		case r.seen && r.obs.Known:
			kw += p.spec.TransitionPowerKW(r.mode, r.want)
		}
	}
	return kw
}

// record adds one measured transition. Under mu.
func (p *Pool) record(from, to switchd.Mode, d time.Duration) {
	k := [2]switchd.Mode{from, to}
	rg := p.stats[k]
	if rg == nil {
		rg = &ring{}
		p.stats[k] = rg
	}
	rg.add(d)
}

// Transitions implements switchd.TransitionReporter: command-to-observed
// durations of the last transitions, per kind.
func (p *Pool) Transitions() []switchd.TransitionStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []switchd.TransitionStats
	for k, rg := range p.stats {
		s := rg.sorted()
		out = append(out, switchd.TransitionStats{From: k[0], To: k[1], Count: rg.total, P50: quantile(s, 0.5), P95: quantile(s, 0.95)})
	}
	slices.SortFunc(out, func(a, b switchd.TransitionStats) int {
		if a.From != b.From {
			return int(a.From) - int(b.From)
		}
		return int(a.To) - int(b.To)
	})
	return out
}

// ring keeps the last ringSize durations.
type ring struct {
	buf   [ringSize]time.Duration
	n     int // filled
	next  int
	total int
}

const ringSize = 512

func (r *ring) add(d time.Duration) {
	r.buf[r.next] = d
	r.next = (r.next + 1) % ringSize
	r.n = min(r.n+1, ringSize)
	r.total++
}

func (r *ring) sorted() []time.Duration {
	s := slices.Clone(r.buf[:r.n])
	slices.Sort(s)
	return s
}

// quantile of sorted s by the nearest-rank method.
func quantile(s []time.Duration, q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	i := int(q*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// mergeCohorts sorts cohorts by (mode, target, since) and merges equal ones,
// in place.
func mergeCohorts(cs []switchd.Cohort) []switchd.Cohort {
	slices.SortFunc(cs, func(a, b switchd.Cohort) int {
		if a.Mode != b.Mode {
			return int(a.Mode) - int(b.Mode)
		}
		if a.Target != b.Target {
			return int(a.Target) - int(b.Target)
		}
		return a.Since.Compare(b.Since)
	})
	out := cs[:0]
	for _, c := range cs {
		if n := len(out); n > 0 && out[n-1].Mode == c.Mode && out[n-1].Target == c.Target && out[n-1].Since.Equal(c.Since) {
			out[n-1].Count += c.Count
			continue
		}
		out = append(out, c)
	}
	return out
}
