// Package oracle computes the perfect-foresight bound a simulation is
// measured against: an upper bound on the profit any controller could have
// made over a trace, with the same interconnect cap, AI demand, dwell,
// transition times and switching costs (the argument is at Bound). It is a
// separate algorithm from the simulator that uses it: it imports the root
// and policies only, never sim or trace.
package oracle

import (
	"fmt"
	"math"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/policies"
)

// Interval is one trace interval as the oracle sees it: its length and the
// effective signal values (fallbacks applied; Values.Present[SignalAIDemand]
// == false means unlimited demand).
type Interval struct {
	Hours  float64
	Values switchd.Values
}

// Options tunes Bound.
type Options struct {
	// MaxIterations bounds the subgradient steps on the dual; 0 means 60.
	MaxIterations int
	// Dwell says which stays the bound may hold to MinDwell; see
	// DwellScopeFor.
	Dwell DwellScope
	// Initial is, per fleet in input order, the mode its devices start in
	// (steady, dwell satisfied); missing entries and unsupported modes are
	// off.
	Initial []switchd.Mode
}

// DwellScope says which of a device's stays last at least its fleet's
// MinDwell. The controller honours the dwell only for economic moves: a
// constraint (a forbidden mode, a device maximum, a lowered cap, a curtail
// fail-safe) moves devices at once, and a bound must allow what it allows.
type DwellScope uint8

// Dwell scopes. The zero value holds stays in off only.
const (
	// DwellOffOnly holds stays in off: nothing but a maximum on off forces
	// a device out of off.
	DwellOffOnly DwellScope = iota
	// DwellNone holds no stay, for policies that cap the devices in off.
	DwellNone
	// DwellAllModes holds every stay, for policies that never force a move.
	DwellAllModes
)

// String returns the scope's name.
func (d DwellScope) String() string {
	switch d {
	case DwellOffOnly:
		return "off only"
	case DwellNone:
		return "none"
	case DwellAllModes:
		return "all modes"
	}
	return fmt.Sprintf("dwell(%d)", uint8(d))
}

// DwellScopeFor returns the widest dwell scope the controller keeps under
// policy p: none when a rule limits the devices in off, off only when a rule
// caps the site, forbids, discourages (its exits skip the dwell) or limits
// devices in a mode, or a fail-safe curtails, else every mode.
func DwellScopeFor(p *policies.Policy) DwellScope {
	scope := DwellAllModes
	for _, fs := range p.FailSafe {
		if fs == policies.FailSafeCurtail {
			scope = DwellOffOnly
		}
	}
	for i := range p.Rules {
		e := &p.Rules[i].Then
		if e.SiteCapKW != nil {
			scope = DwellOffOnly
		}
		for j := range e.Fleets {
			fc := &e.Fleets[j]
			if fc.Max[switchd.ModeOff] < policies.Unlimited {
				return DwellNone
			}
			for m := switchd.ModeOff + 1; m < switchd.NumModes; m++ {
				if fc.Forbid[m] || fc.Max[m] < policies.Unlimited || fc.Discourage[m] {
					scope = DwellOffOnly
				}
			}
		}
	}
	return scope
}

// Result is the perfect-foresight bound over a trace.
type Result struct {
	// ProfitUSD is the bound: no controller run over the same intervals can
	// earn more.
	ProfitUSD float64
	// Exact is true when ProfitUSD is also the optimum of the interval model
	// the bound is computed in: the fleets' optimal paths together respect
	// the site cap and AI demand, so no coupling constraint was relaxed.
	Exact bool
	// Method says how the bound was obtained, for the report.
	Method string
	// Iterations is the number of multiplier vectors tried after the
	// uncoupled solution (0 when that one was already exact).
	Iterations int
	// FleetProfitUSD is, per fleet in input order, what all its devices
	// earn on the fleet's optimal path at the multipliers of the returned
	// bound, priced at the real signals and before AI demand is shared out.
	// It is informative: it sums to ProfitUSD only when Exact.
	FleetProfitUSD []float64
}

const (
	defaultOracleIterations = 60
	// oracleCapSlackKW is added to the site cap as the dispatcher tolerates
	// float rounding of a full cap (policies.capEpsilonKW); a bound must
	// allow whatever the controller may draw.
	oracleCapSlackKW = 1e-6
	// oracleRelTol is the relative gap under which a feasible solution
	// certifies the bound as exact; sums of 10^5 float terms differ by far
	// less.
	oracleRelTol = 1e-9
	// dwellRatioTol absorbs float rounding of MinDwell / interval length
	// (1h over 5 minutes is 11.999999999999998): interval lengths come from
	// whole-second timestamps, so a true ratio never sits this close below
	// an integer.
	dwellRatioTol = 1e-9
	// noPred marks a DP state with no predecessor.
	noPred = 3
	// promoted marks a full-run state reached from a shorter run (or from a
	// switch when the minimum run is one interval).
	promoted = 4
)

// Bound returns an upper bound on the profit of any controller over iv:
// the best any schedule could earn with perfect foresight, honouring each
// fleet's dwell, transition times and switching cost, the site cap and AI
// demand. Devices start steady in opt.Initial (off by default) with their
// dwell satisfied. A cap that is NaN or +Inf means no cap. The bound assumes
// the controller never draws more than siteCapKW (or the all-off draw, when
// that is larger), keeps devices in a mode for MinDwell after they get there
// as far as opt.Dwell says, and is paid for at most ai_demand device-hours
// per hour in modes earning RevenueInference; that SwitchCostUSD ≥ 0, as the
// site loader guarantees; and that moves do not fail (a simulated failure
// toward a larger draw at a deeply negative price can earn more than the
// switch it costs).
//
// Why it is a bound (for any multipliers λ, μ ≥ 0 below):
//
//  1. Transitions. Count a transition c→b as time in whichever of c and b
//     draws more (b on ties): power is then exact at every instant, and the
//     device loses exactly that mode's revenue rate for τ = Transition[c][b]
//     (always counting it in b would miss what the extra draw earns at a
//     negative price). The relaxed stay in b starts no later and ends no
//     earlier than the real one, so it still lasts MinDwell.
//  2. Picks. Per device and interval, pick the relaxed mode it occupied that
//     is worth most per hour at the multipliers: the interval's value is
//     linear in the modes' time shares, so the pick earns at least as much.
//     A pick change a→b at interval t matches a distinct relaxed switch into
//     b between the chosen instants of t−1 and t, so changes never exceed
//     switches, each costing SwitchCostUSD. That switch's transition c→b
//     spends at least min(τ, h[t+1]) inside intervals t−1..t+1 (counted in b)
//     or min(τ, h[t−2]) inside t−2..t (counted in c), losing at least that
//     times the least revenue rate there; if c ≠ a, one more switch was made.
//     A stay held to the dwell starts inside t−1 or t and covers every
//     interval wholly inside MinDwell from there, so its run of picks lasts
//     at least k = max(1, ⌊MinDwell/Δmax⌋ − 1) intervals, unless the trace
//     ends.
//  3. Coupling. The site cap and AI demand are the only links between
//     devices. Adding λ_t·(cap − power) and μ_t·(demand − paid devices)
//     (λ in USD/kWh, μ in USD per device-hour), both ≥ 0 for the controller
//     over each interval, and letting every device pick freely gives
//     L(λ, μ) = Σ_t (λ_t·cap + μ_t·D_t)·h_t + Σ_f N_f·DP_f(price + 1000·λ,
//     inference revenue − μ), where DP_f is one device's best pick sequence
//     under rules 1-2 (a demand-limited device may also run unpaid, so its
//     revenue is max(0, R − μ)).
//
// Every L is a bound (weak duality); Bound returns the least it finds: at
// λ = μ = 0, and, when the fleets' paths there break the cap or exceed
// demand, along projected subgradient steps from the per-interval merit
// order's multipliers. Revenue rates below zero are counted as zero, which
// only raises the bound.
func Bound(fleets []switchd.FleetSpec, siteCapKW float64, iv []Interval, opt Options) Result {
	p := newOracleProblem(fleets, siteCapKW, iv, &opt)
	maxIter := opt.MaxIterations
	if maxIter <= 0 {
		maxIter = defaultOracleIterations
	}
	s := newOracleSearch(p)

	lag := s.evaluate(nil, nil)
	res := Result{ProfitUSD: lag, FleetProfitUSD: make([]float64, len(fleets))}
	if s.certify(lag) {
		res.Exact = true
		res.Method = "per-fleet DP (exact)"
		s.fleetProfits(res.FleetProfitUSD)
		return res
	}
	s.fleetProfits(res.FleetProfitUSD)

	var lam, mu []float64
	T := len(p.hours)
	if p.capped {
		lam = make([]float64, T)
	}
	if p.hasDemand {
		mu = make([]float64, T)
	}
	p.staticDual(lam, mu)
	steps := newOracleSteps(p, lam, mu)

	for res.Iterations < maxIter {
		res.Iterations++
		lag = s.evaluate(lam, mu)
		if lag < res.ProfitUSD {
			res.ProfitUSD = lag
			s.fleetProfits(res.FleetProfitUSD)
		}
		if s.certify(lag) {
			res.ProfitUSD = min(res.ProfitUSD, lag)
			s.fleetProfits(res.FleetProfitUSD)
			res.Exact = true
			break
		}
		if !steps.update(s.powerKW, s.paid, lam, mu) {
			break
		}
	}
	res.Method = fmt.Sprintf("Lagrangian dual of %s, %d subgradient steps", p.coupling(), res.Iterations)
	if res.Exact {
		res.Method = fmt.Sprintf("Lagrangian dual of %s, exact after %d subgradient steps", p.coupling(), res.Iterations)
	}
	return res
}

// oracleProblem is the trace and the fleets in the form the DP reads.
type oracleProblem struct {
	hours            []float64 // interval lengths, all > 0
	priceUSDPerKWh   []float64 // energy price / 1000
	demand           []float64 // devices paid for inference; +Inf when absent
	capKW            float64   // site cap with slack; +Inf when uncapped
	capped           bool
	hasDemand        bool // some fleet earns inference revenue and some interval limits it
	fleets           []oracleFleet
	inferenceUSDPerH []float64 // inference revenue per device-hour, ≥ 0, for the warm start
}

// oracleFleet is one fleet's devices in DP form. DP mode indices refer to
// modes, off first.
type oracleFleet struct {
	index     int // in the caller's fleets
	count     float64
	modes     []switchd.Mode
	powerKW   [switchd.NumModes]float64
	demand    [switchd.NumModes]bool      // revenue counts against ai_demand
	revUSDPH  [switchd.NumModes][]float64 // revenue per device-hour, ≥ 0
	tauH      [switchd.NumModes][switchd.NumModes]float64
	lossInTo  [switchd.NumModes][switchd.NumModes]bool // transition c→b counted in b
	minRun    [switchd.NumModes]int                    // least run of picks, in intervals
	initial   int
	switchUSD float64
}

func newOracleProblem(fleets []switchd.FleetSpec, siteCapKW float64, iv []Interval, opt *Options) *oracleProblem {
	p := &oracleProblem{}
	kept := make([]int, 0, len(iv))
	maxH := 0.0
	for i := range iv {
		h := iv[i].Hours
		// A zero-length interval holds no time, so dropping it leaves the
		// time line (and the argument of Bound) unchanged.
		if !(h > 0) || math.IsInf(h, 1) {
			continue
		}
		kept = append(kept, i)
		maxH = max(maxH, h)
	}
	T := len(kept)
	p.hours = make([]float64, T)
	p.priceUSDPerKWh = make([]float64, T)
	p.demand = make([]float64, T)
	p.inferenceUSDPerH = make([]float64, T)
	for t, i := range kept {
		v := &iv[i].Values
		p.hours[t] = iv[i].Hours
		p.priceUSDPerKWh[t] = v.V[switchd.SignalPrice] / 1000
		p.inferenceUSDPerH[t] = max(v.V[switchd.SignalInferencePrice], 0)
		d, ok := v.Get(switchd.SignalAIDemand)
		switch {
		case !ok:
			p.demand[t] = math.Inf(1)
		case !(d > 0): // NaN or negative demand is none, as in the dispatcher
			p.demand[t] = 0
		default:
			p.demand[t] = d
		}
	}

	allOffKW, allOnKW, demandDevices := 0.0, 0.0, 0.0
	for fi := range fleets {
		spec := &fleets[fi]
		if spec.Count <= 0 {
			continue
		}
		f := oracleFleet{index: fi, count: float64(spec.Count), switchUSD: spec.SwitchCostUSD}
		for _, m := range switchd.Modes {
			if m == switchd.ModeOff || spec.Supports[m] {
				f.modes = append(f.modes, m)
			}
		}
		for a, ma := range f.modes {
			f.powerKW[a] = spec.Modes[ma].PowerKW
			f.demand[a] = spec.Modes[ma].Revenue == switchd.RevenueInference
			f.revUSDPH[a] = make([]float64, T)
			for t, i := range kept {
				f.revUSDPH[a][t] = max(spec.RevenuePerHour(ma, &iv[i].Values), 0)
			}
		}
		for c, mc := range f.modes {
			for b, mb := range f.modes {
				f.tauH[c][b] = max(spec.Transition[mc][mb].Hours(), 0)
				f.lossInTo[c][b] = f.powerKW[b] >= f.powerKW[c]
			}
		}
		k := 1
		if n := math.Floor(spec.MinDwell.Hours() / maxH * (1 + dwellRatioTol)); n-1 > 1 {
			k = int(min(n-1, float64(T+1)))
		}
		for m, mode := range f.modes {
			f.minRun[m] = 1
			if opt.Dwell == DwellAllModes || opt.Dwell == DwellOffOnly && mode == switchd.ModeOff {
				f.minRun[m] = k
			}
			if fi < len(opt.Initial) && opt.Initial[fi] == mode {
				f.initial = m
			}
		}
		allOffKW += f.count * f.powerKW[0]
		mostKW, demand := 0.0, false
		for m := range f.modes {
			mostKW = max(mostKW, f.powerKW[m])
			demand = demand || f.demand[m]
		}
		allOnKW += f.count * mostKW
		if demand {
			demandDevices += f.count
		}
		p.fleets = append(p.fleets, f)
	}

	p.capKW = math.Inf(1)
	if !math.IsNaN(siteCapKW) && !math.IsInf(siteCapKW, 1) {
		// When even all-off breaks the cap the dispatcher turns everything
		// off, so that draw is what the controller may reach.
		capKW := max(siteCapKW, allOffKW)
		// A cap above every device's largest draw never binds.
		if capKW < allOnKW {
			p.capKW = capKW + oracleCapSlackKW*max(1, math.Abs(capKW))
			p.capped = true
		}
	}
	for t := range p.demand {
		if p.demand[t] >= demandDevices {
			p.demand[t] = math.Inf(1)
		} else {
			p.hasDemand = true
		}
	}
	return p
}

// coupling names the relaxed constraints for the report.
func (p *oracleProblem) coupling() string {
	switch {
	case p.capped && p.hasDemand:
		return "site cap and AI demand"
	case p.hasDemand:
		return "AI demand"
	}
	return "site cap"
}

// rev is one device's revenue per hour in DP mode m at interval t when
// each paid inference device-hour costs mu.
func (f *oracleFleet) rev(m, t int, mu []float64) float64 {
	r := f.revUSDPH[m][t]
	if f.demand[m] && mu != nil {
		r = max(r-mu[t], 0)
	}
	return r
}

// switchCosts fills c[a][b], what the DP charges a device whose pick
// changes from a to b at interval t: the switching cost plus the least
// revenue its transition can lose (see Bound, rule 2).
func (p *oracleProblem) switchCosts(f *oracleFleet, t int, mu []float64, c *[switchd.NumModes][switchd.NumModes]float64) {
	T := len(p.hours)
	M := len(f.modes)
	hNext := 0.0 // a transition past the end of the trace loses nothing in it
	if t+1 < T {
		hNext = p.hours[t+1]
	}
	hPrev2 := math.Inf(1) // a transition cannot start before the trace
	if t >= 2 {
		hPrev2 = p.hours[t-2]
	}
	var around, before [switchd.NumModes]float64 // least revenue in t−1..t+1, t−2..t
	for m := range M {
		around[m] = f.rev(m, t, mu)
		if t >= 1 {
			around[m] = min(around[m], f.rev(m, t-1, mu))
		}
		before[m] = around[m]
		if t+1 < T {
			around[m] = min(around[m], f.rev(m, t+1, mu))
		}
		if t >= 2 {
			before[m] = min(before[m], f.rev(m, t-2, mu))
		}
	}
	var loss [switchd.NumModes][switchd.NumModes]float64
	for from := range M {
		for to := range M {
			if from == to {
				continue
			}
			if f.lossInTo[from][to] {
				loss[from][to] = min(f.tauH[from][to], hNext) * around[to]
			} else {
				loss[from][to] = min(f.tauH[from][to], hPrev2) * before[from]
			}
		}
	}
	for a := range M {
		for b := range M {
			if a == b {
				continue
			}
			l := loss[a][b]
			for via := range M {
				if via != a && via != b {
					l = min(l, f.switchUSD+loss[via][b])
				}
			}
			c[a][b] = f.switchUSD + l
		}
	}
}

// value is one device's value in DP mode m over interval t at the
// multipliers.
func (p *oracleProblem) value(f *oracleFleet, m, t int, lam, mu []float64) float64 {
	price := p.priceUSDPerKWh[t]
	if lam != nil {
		price += lam[t]
	}
	return p.hours[t] * (f.rev(m, t, mu) - f.powerKW[m]*price)
}

// oracleDP is the reusable scratch of solve.
type oracleDP struct {
	back []uint8 // per interval and mode: predecessor of a new run, | promoted
	ring [switchd.NumModes][]float64
}

// solve returns one device's best value for fleet f at the multipliers and
// writes its path (DP mode indices) into path.
//
// State (b, r): in b for r intervals, r = k_b meaning k_b or more (free to
// switch), where k_b = f.minRun[b]. Each mode keeps its shorter runs in a
// ring with a lazy offset, so a step costs O(modes²) whatever k_b is.
func (p *oracleProblem) solve(f *oracleFleet, lam, mu []float64, w *oracleDP, path []uint8) float64 {
	T := len(p.hours)
	M := len(f.modes)
	if cap(w.back) < T*M {
		w.back = make([]uint8, T*M)
	}
	back := w.back[:T*M]
	var free, offset [switchd.NumModes]float64
	var head [switchd.NumModes]int
	for b := range M {
		free[b] = math.Inf(-1)
		if n := f.minRun[b] - 1; n > 0 {
			if cap(w.ring[b]) < n {
				w.ring[b] = make([]float64, n)
			}
			w.ring[b] = w.ring[b][:n]
			for j := range w.ring[b] {
				w.ring[b][j] = math.Inf(-1)
			}
		}
	}
	free[f.initial] = 0 // dwell satisfied

	var cost [switchd.NumModes][switchd.NumModes]float64
	for t := range T {
		p.switchCosts(f, t, mu, &cost)
		var fresh [switchd.NumModes]float64
		var pred [switchd.NumModes]uint8
		for b := range M {
			fresh[b], pred[b] = math.Inf(-1), noPred
			for a := range M {
				if a != b {
					if v := free[a] - cost[a][b]; v > fresh[b] {
						fresh[b], pred[b] = v, uint8(a)
					}
				}
			}
		}
		for b := range M {
			v := p.value(f, b, t, lam, mu)
			cand := fresh[b]
			if n := f.minRun[b] - 1; n > 0 {
				// The slot of run length k_b−1 becomes that of length 1.
				r := w.ring[b]
				pos := (head[b] + n - 1) % n
				cand = r[pos] + offset[b]
				r[pos] = fresh[b] - offset[b]
				head[b] = pos
				offset[b] += v
			}
			flag := pred[b]
			if cand > free[b] {
				free[b] = cand
				flag |= promoted
			}
			free[b] += v
			back[t*M+b] = flag
		}
	}

	best, b, r := math.Inf(-1), f.initial, f.minRun[f.initial]
	for m := range M {
		k := f.minRun[m]
		if free[m] > best {
			best, b, r = free[m], m, k
		}
		for run := 1; run < k; run++ {
			if v := w.ring[m][(head[m]+run-1)%(k-1)] + offset[m]; v > best {
				best, b, r = v, m, run
			}
		}
	}

	for t := T - 1; t >= 0; {
		k := f.minRun[b]
		if r < k { // a run of r intervals that started with a switch
			start := max(t-r+1, 0)
			for j := start; j <= t; j++ {
				path[j] = uint8(b)
			}
			b = predOf(back[start*M+b], M)
			r, t = f.minRun[b], start-1
			continue
		}
		path[t] = uint8(b)
		flag := back[t*M+b]
		switch {
		case flag&promoted == 0:
		case k == 1:
			b = predOf(flag, M)
			r = f.minRun[b]
		default:
			r = k - 1
		}
		t--
	}
	return best
}

// predOf decodes a predecessor; a missing one (only after NaN input) is off.
func predOf(flag uint8, modes int) int {
	a := int(flag &^ promoted)
	if a >= modes {
		return 0
	}
	return a
}

// pathValue is one device's value on path, priced at the real signals, with
// the DP's switching charges.
func (p *oracleProblem) pathValue(f *oracleFleet, path []uint8) float64 {
	var cost [switchd.NumModes][switchd.NumModes]float64
	total, prev := 0.0, f.initial
	for t := range p.hours {
		b := int(path[t])
		if b != prev {
			p.switchCosts(f, t, nil, &cost)
			total -= cost[prev][b]
		}
		total += p.value(f, b, t, nil, nil)
		prev = b
	}
	return total
}

// oracleSearch evaluates the dual at multipliers and keeps the fleets'
// paths of the last evaluation.
type oracleSearch struct {
	p          *oracleProblem
	dp         oracleDP
	paths      [][]uint8
	powerKW    []float64 // site draw of the paths
	paid       []float64 // devices of the paths earning inference revenue
	values     []float64 // per fleet, all its devices' value on its path
	haveValues bool      // values are those of the current paths
}

func newOracleSearch(p *oracleProblem) *oracleSearch {
	T := len(p.hours)
	s := &oracleSearch{p: p, powerKW: make([]float64, T), paid: make([]float64, T), values: make([]float64, len(p.fleets))}
	s.paths = make([][]uint8, len(p.fleets))
	for i := range s.paths {
		s.paths[i] = make([]uint8, T)
	}
	return s
}

// pathValues returns, per fleet, what all its devices earn on the current
// path at the real signals.
func (s *oracleSearch) pathValues() []float64 {
	if !s.haveValues {
		for i := range s.p.fleets {
			f := &s.p.fleets[i]
			s.values[i] = f.count * s.p.pathValue(f, s.paths[i])
		}
		s.haveValues = true
	}
	return s.values
}

// evaluate returns L(lam, mu); nil multipliers are zero.
func (s *oracleSearch) evaluate(lam, mu []float64) float64 {
	p := s.p
	total := 0.0
	for t, h := range p.hours {
		if lam != nil {
			total += lam[t] * p.capKW * h
		}
		if mu != nil && !math.IsInf(p.demand[t], 1) {
			total += mu[t] * p.demand[t] * h
		}
		s.powerKW[t], s.paid[t] = 0, 0
	}
	s.haveValues = false
	for i := range p.fleets {
		f := &p.fleets[i]
		total += f.count * p.solve(f, lam, mu, &s.dp, s.paths[i])
		for t, m := range s.paths[i] {
			s.powerKW[t] += f.count * f.powerKW[m]
			if f.demand[m] && f.rev(int(m), t, mu) > 0 {
				s.paid[t] += f.count
			}
		}
	}
	return total
}

// certify reports whether the last evaluated paths are a feasible solution
// of the interval model worth the dual value lag, which is then its
// optimum.
func (s *oracleSearch) certify(lag float64) bool {
	p := s.p
	for t := range p.hours {
		if s.powerKW[t] > p.capKW {
			return false
		}
	}
	primal := 0.0
	for _, v := range s.pathValues() {
		primal += v
	}
	// Devices in inference beyond demand run unpaid.
	for t, h := range p.hours {
		n := 0.0
		for i := range p.fleets {
			f := &p.fleets[i]
			m := s.paths[i][t]
			if f.demand[m] && f.revUSDPH[m][t] > 0 {
				n += f.count
			}
		}
		if over := n - p.demand[t]; over > 0 {
			primal -= over * p.inferenceUSDPerH[t] * h
		}
	}
	return primal >= lag-oracleRelTol*max(1, math.Abs(lag))
}

// fleetProfits writes each fleet's profit on its last evaluated path.
func (s *oracleSearch) fleetProfits(out []float64) {
	for i := range out {
		out[i] = 0
	}
	for i, v := range s.pathValues() {
		out[s.p.fleets[i].index] = v
	}
}

// staticDual sets lam and mu (either may be nil) to the multipliers of each
// interval on its own, without dwell or switching: the prices at which the
// merit order fills the cap and demand exactly. They start the subgradient
// search near the answer, since dwell and switching only shift it a little.
func (p *oracleProblem) staticDual(lam, mu []float64) {
	if lam == nil && mu == nil {
		return
	}
	cands := make([]float64, 0, 16)
	for t := range p.hours {
		demandOK := mu != nil && !math.IsInf(p.demand[t], 1)
		l, m := 0.0, 0.0
		for round := 0; round < 2; round++ {
			if lam != nil {
				l = p.argminLambda(t, m, cands)
			}
			if demandOK {
				m = p.argminMu(t, l, cands)
			}
		}
		if lam != nil {
			lam[t] = l
		}
		if mu != nil {
			mu[t] = m
		}
	}
}

// staticLag is the dual of interval t on its own, per hour.
func (p *oracleProblem) staticLag(t int, lam, mu float64) float64 {
	g := 0.0
	if lam != 0 {
		g += lam * p.capKW
	}
	if mu != 0 {
		g += mu * p.demand[t]
	}
	price := p.priceUSDPerKWh[t] + lam
	for i := range p.fleets {
		f := &p.fleets[i]
		best := math.Inf(-1)
		for m := range f.modes {
			r := f.revUSDPH[m][t]
			if f.demand[m] {
				r = max(r-mu, 0)
			}
			best = max(best, r-f.powerKW[m]*price)
		}
		g += f.count * best
	}
	return g
}

// argminLambda minimises interval t's dual over the cap multiplier: it is
// convex and piecewise linear, so the minimum is at zero or where a fleet's
// best mode changes.
func (p *oracleProblem) argminLambda(t int, mu float64, cands []float64) float64 {
	cands = append(cands[:0], 0)
	price := p.priceUSDPerKWh[t]
	for i := range p.fleets {
		f := &p.fleets[i]
		for a := range f.modes {
			for b := range f.modes {
				if f.powerKW[a] <= f.powerKW[b] {
					continue
				}
				va := max(f.revUSDPH[a][t]-boolMu(f.demand[a], mu), 0) - f.powerKW[a]*price
				vb := max(f.revUSDPH[b][t]-boolMu(f.demand[b], mu), 0) - f.powerKW[b]*price
				if x := (va - vb) / (f.powerKW[a] - f.powerKW[b]); x > 0 && !math.IsInf(x, 1) {
					cands = append(cands, x)
				}
			}
		}
	}
	return p.argminOver(cands, func(x float64) float64 { return p.staticLag(t, x, mu) })
}

// argminMu minimises interval t's dual over the demand multiplier: the
// minimum is at zero, where paid inference stops paying, or where it ties
// with a fleet's best other mode.
func (p *oracleProblem) argminMu(t int, lam float64, cands []float64) float64 {
	cands = append(cands[:0], 0)
	price := p.priceUSDPerKWh[t] + lam
	for i := range p.fleets {
		f := &p.fleets[i]
		other := math.Inf(-1)
		for m := range f.modes {
			if !f.demand[m] {
				other = max(other, f.revUSDPH[m][t]-f.powerKW[m]*price)
			}
		}
		for m := range f.modes {
			if !f.demand[m] {
				continue
			}
			r := f.revUSDPH[m][t]
			cands = append(cands, r)
			// Unpaid, the device still draws power: it competes with the
			// other modes from r − μ down to zero revenue.
			other := max(other, -f.powerKW[m]*price)
			if x := r - f.powerKW[m]*price - other; x > 0 && x < r {
				cands = append(cands, x)
			}
		}
	}
	return p.argminOver(cands, func(x float64) float64 { return p.staticLag(t, lam, x) })
}

// argminOver returns the candidate where g is least, the smallest on ties.
func (p *oracleProblem) argminOver(cands []float64, g func(float64) float64) float64 {
	best, arg := math.Inf(1), 0.0
	for _, x := range cands {
		if v := g(x); v < best || v == best && x < arg {
			best, arg = v, x
		}
	}
	return arg
}

func boolMu(demand bool, mu float64) float64 {
	if demand {
		return mu
	}
	return 0
}

// oracleSteps is the projected subgradient search with a step per
// multiplier. The dual is nearly separable by interval (only dwell and
// switching link neighbours), so each multiplier seeks its own breakpoint:
// its step grows while the sign of its subgradient holds and halves when it
// flips (as in Rprop), which homes in far faster than one global step.
type oracleSteps struct {
	p               *oracleProblem
	lamStep, muStep []float64
	lamDir, muDir   []int8
}

const (
	stepGrow   = 1.2
	stepShrink = 0.5
)

func newOracleSteps(p *oracleProblem, lam, mu []float64) *oracleSteps {
	s := &oracleSteps{p: p}
	T := len(p.hours)
	if lam != nil {
		scale := meanPositive(lam)
		if scale == 0 {
			// Value per kWh of the most valuable draw, on average.
			for t := range T {
				best := 0.0
				for i := range p.fleets {
					f := &p.fleets[i]
					for m := range f.modes {
						if f.powerKW[m] > 0 {
							best = max(best, f.revUSDPH[m][t]/f.powerKW[m])
						}
					}
				}
				scale += best / float64(T)
			}
		}
		s.lamStep, s.lamDir = initSteps(lam, scale), make([]int8, T)
	}
	if mu != nil {
		scale := meanPositive(mu)
		if scale == 0 {
			scale = meanPositive(p.inferenceUSDPerH)
		}
		s.muStep, s.muDir = initSteps(mu, scale), make([]int8, T)
	}
	return s
}

func meanPositive(xs []float64) float64 {
	sum, n := 0.0, 0
	for _, x := range xs {
		if x > 0 {
			sum += x
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

func initSteps(x []float64, scale float64) []float64 {
	steps := make([]float64, len(x))
	for i := range x {
		steps[i] = max(0.25*x[i], 0.05*scale)
	}
	return steps
}

// update moves every multiplier against its subgradient, given the site
// draw and paid inference devices of the last evaluation. It reports
// whether any multiplier moved.
func (s *oracleSteps) update(powerKW, paid, lam, mu []float64) bool {
	moved := false
	for t := range s.p.hours {
		if lam != nil {
			moved = step(&lam[t], &s.lamStep[t], &s.lamDir[t], powerKW[t]-s.p.capKW) || moved
		}
		if mu != nil && !math.IsInf(s.p.demand[t], 1) {
			moved = step(&mu[t], &s.muStep[t], &s.muDir[t], paid[t]-s.p.demand[t]) || moved
		}
	}
	return moved
}

// step raises x when the constraint is broken (excess > 0) and lowers it
// toward zero when it has room, adapting the step size.
func step(x, size *float64, last *int8, excess float64) bool {
	var dir int8
	switch {
	case excess > 0:
		dir = 1
	case excess < 0 && *x > 0:
		dir = -1
	default:
		return false
	}
	switch {
	case dir == *last:
		*size *= stepGrow
	case dir == -*last:
		*size *= stepShrink
	}
	*last = dir
	*x = max(*x+float64(dir)**size, 0)
	return true
}
