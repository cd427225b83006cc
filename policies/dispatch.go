package policies

import (
	"math"

	"github.com/switchd/switchd"
)

// DispatchInput is everything the dispatcher needs. Fleets and
// Constraints.Fleets are indexed alike; a fleet without an entry in
// Constraints.Fleets is unconstrained.
type DispatchInput struct {
	Fleets []switchd.FleetSpec
	// Values are the effective signal values. Present[SignalAIDemand] ==
	// false means unlimited AI demand.
	Values      switchd.Values
	Constraints Constraints
	// Current[i][m] is how many devices of fleet i are now in mode m or on
	// their way to it (their target mode). Incumbents of a mode get the
	// hysteresis band in their favour and pay no switching cost. nil means
	// no incumbents (e.g. a baseline); a missing row counts as zeros.
	Current             [][switchd.NumModes]int
	HysteresisUSDPerMWh float64
	// HoldHours[i][m] is how long, in hours, the price is expected to stay
	// on its present side of fleet i's breakeven for mode m (against off):
	// how long a device switched into m now, or out of it, is likely to
	// stay where it went. The controller's planner estimates it from the
	// recent price history. +Inf means indefinitely (a switch costs nothing
	// per hour); a missing row or an entry that is not > 0 means no
	// estimate, and the switch cost is then spread over the fleet's minimum
	// dwell, at least an hour. The dwell is always a floor.
	HoldHours [][switchd.NumModes]float64
	// BackShare[i][m], in [0, 1], is the expected share of a second switch
	// that the end of that hold will cost: a switch back, or a loss ridden
	// through that is worth part of one. A switch pays when its gain over
	// the hold exceeds SwitchCostUSD × (1 + BackShare). Missing means 0.
	BackShare [][switchd.NumModes]float64
	// IncumbentPrice[i][m], when OK, is the price incumbents of fleet i's
	// mode m are valued at instead of Values' price (the hysteresis band
	// still applies), and the hold their switching cost is spread over:
	// the planner sets it from a price forecast to the price where a shed
	// decided now would land. Missing means Values' price and HoldHours.
	IncumbentPrice [][switchd.NumModes]LeadPrice
}

// LeadPrice is an optional price (USD/MWh) with the expected hold at it,
// as in HoldHours and BackShare (a hold that is not > 0 means HoldHours').
type LeadPrice struct {
	USDPerMWh float64
	HoldHours float64
	BackShare float64
	OK        bool
}

// blocksPerFleet is the number of candidate blocks of one fleet: every mode
// but off, once for its incumbents and once for newcomers.
const blocksPerFleet = (switchd.NumModes - 1) * 2

// stackFleets is how many fleets DispatchInto handles in stack buffers;
// larger sites cost one allocation per call. The buffers are zeroed on every
// call, so they are sized for a handful of fleets, not for the largest site.
const stackFleets = 16

// capEpsilonKW absorbs float rounding when blocks fill the cap exactly (the
// room left is a running difference of products of per-device draws); a
// milliwatt is far below any meter's resolution.
const capEpsilonKW = 1e-6

// maxUpgradeMoves bounds the per-fleet upgrade loop. Each move exhausts a
// block or a limit, so a handful suffices; the bound only guards against
// float surprises.
const maxUpgradeMoves = 4 * blocksPerFleet

// block is a group of devices of one fleet that would move from off to one
// mode and share the same value per device: the incumbents of that mode, or
// the newcomers to it.
type block struct {
	fleet     int
	mode      switchd.Mode
	incumbent bool
	ok        bool // a candidate: mode supported and allowed, value and power finite
	demand    bool // earns inference revenue, so counts against ai_demand
	size      int  // devices that may join the block
	taken     int
	dv        float64 // USD per device-hour over staying off, band and switching cost included
	dPKW      float64 // kW per device over staying off
	// Sort key: blocks that cost no cap come first (by dv), then the rest by
	// dv per kW, both descending.
	costsCap bool
	key      float64
}

// Dispatch returns the target plan for in. See DispatchInto.
func Dispatch(in *DispatchInput) switchd.Plan {
	var p switchd.Plan
	DispatchInto(in, &p)
	return p
}

// DispatchInto writes the target plan for in into plan, reusing its slice:
// once plan is sized it does not allocate (for sites of up to 16 fleets).
//
// The plan follows design.md's merit order: each device-hour in a mode is
// worth its revenue minus its energy cost, over what the device would be
// worth off. A switch pays when its gain over the time the new mode is
// likely to be held exceeds its cost, so the switching cost is spread over
// HoldHours (the dwell at least): newcomers to a mode pay it per hour, and
// incumbents are credited it per hour, since leaving costs a switch as well.
// Newcomers are valued at price + hysteresis, incumbents at
// price − hysteresis. Forced minimums are placed first (even at a loss, as
// far as the site cap allows), then blocks with positive value are filled
// by value per kW under the cap, inference only up to AI demand. Last,
// devices move within their fleet to a mode worth more per device when the
// cap has room. Devices not placed are off; if the site cannot fit even with
// every device off, everything is off. Constraints.Hold is ignored: holding
// is the reconciler's business.
//
// Constraints on off: Min[off] keeps that many devices off; Forbid[off] and
// Max[off] are ignored, because off is the safe state the cap relies on.
// Conflicts resolve toward restriction: Forbid and Max win over Min, and the
// cap wins over everything.
func DispatchInto(in *DispatchInput, plan *switchd.Plan) {
	n := len(in.Fleets)
	if cap(plan.Fleets) < n {
		plan.Fleets = make([]switchd.FleetPlan, n)
	}
	plan.Fleets = plan.Fleets[:n]

	baseKW := 0.0
	for i := range in.Fleets {
		spec := &in.Fleets[i]
		fp := &plan.Fleets[i]
		fp.Fleet = spec.Name
		fp.Count = [switchd.NumModes]int{}
		fp.Count[switchd.ModeOff] = max(spec.Count, 0)
		baseKW += float64(fp.Count[switchd.ModeOff]) * spec.Modes[switchd.ModeOff].PowerKW
	}
	roomKW := in.Constraints.SiteCapKW - baseKW
	if !(roomKW >= 0) { // also catches a NaN cap or power
		return
	}

	var blockBuf [stackFleets * blocksPerFleet]block
	var orderBuf [stackFleets * blocksPerFleet]int32
	blocks, order := blockBuf[:], orderBuf[:]
	if nb := n * blocksPerFleet; nb > len(blockBuf) {
		blocks, order = make([]block, nb), make([]int32, nb)
	}
	d := dispatcher{
		in:     in,
		plan:   plan,
		blocks: blocks[:n*blocksPerFleet],
		order:  order[:n*blocksPerFleet],
		roomKW: roomKW,
		demand: aiDemand(&in.Values),
		open:   NoFleetConstraint(),
	}
	d.build()
	d.sort()

	// Forced minimums, in merit order so that a cap too small for all of
	// them keeps those worth most per kW. They ignore demand but use it up.
	for _, bi := range d.order {
		b := &d.blocks[bi]
		if !b.ok {
			continue
		}
		need := d.constraint(b.fleet).Min[b.mode] - plan.Fleets[b.fleet].Count[b.mode]
		if need > 0 {
			d.place(b, d.fit(min(need, d.room(b, false)), b.dPKW))
		}
	}
	// The merit order proper: only value-adding blocks; dv == 0 stays off.
	for _, bi := range d.order {
		b := &d.blocks[bi]
		if b.ok && b.dv > 0 {
			d.place(b, d.fit(d.room(b, true), b.dPKW))
		}
	}
	for i := range n {
		d.upgrade(i)
	}
}

// dispatcher is the scratch state of one DispatchInto call. It lives on the
// caller's stack.
type dispatcher struct {
	in     *DispatchInput
	plan   *switchd.Plan
	blocks []block // blocksPerFleet per fleet, at blockIndex
	order  []int32 // indices into blocks, in merit order
	roomKW float64 // cap left above what is already placed and all-off draw
	demand int     // inference devices still wanted
	open   FleetConstraint
}

// aiDemand returns how many inference devices are wanted, rounded down;
// absent demand is unlimited and a NaN or negative one is none.
func aiDemand(v *switchd.Values) int {
	x, ok := v.Get(switchd.SignalAIDemand)
	switch {
	case !ok:
		return math.MaxInt
	case !(x > 0):
		return 0
	case x >= math.MaxInt:
		return math.MaxInt
	}
	return int(x)
}

// blockIndex is where fleet i's block for mode m (m != off) lives.
func blockIndex(i int, m switchd.Mode, incumbent bool) int {
	j := i*blocksPerFleet + (int(m)-1)*2
	if !incumbent {
		j++
	}
	return j
}

// constraint returns fleet i's constraint, or one that allows everything.
func (d *dispatcher) constraint(i int) *FleetConstraint {
	if i < len(d.in.Constraints.Fleets) {
		return &d.in.Constraints.Fleets[i]
	}
	return &d.open
}

// current returns how many devices of fleet i are incumbents of m.
func (d *dispatcher) current(i int, m switchd.Mode) int {
	if i < len(d.in.Current) {
		return d.in.Current[i][m]
	}
	return 0
}

// build fills the blocks of every fleet, in fleet and mode order, so that a
// stable sort breaks ties by fleet index, then mode, then incumbents first.
func (d *dispatcher) build() {
	h := d.in.HysteresisUSDPerMWh
	if !(h > 0) {
		h = 0
	}
	// The band: incumbents see the price moved in their favour by h,
	// newcomers against them.
	low, high := d.in.Values, d.in.Values
	low.V[switchd.SignalPrice] -= h
	high.V[switchd.SignalPrice] += h

	for i := range d.in.Fleets {
		spec := &d.in.Fleets[i]
		c := d.constraint(i)
		count := d.plan.Fleets[i].Count[switchd.ModeOff]
		for m := switchd.ModeOff + 1; m < switchd.NumModes; m++ {
			switchUSDPerHour := d.switchUSDPerHour(i, m)
			dPKW := spec.Modes[m].PowerKW - spec.Modes[switchd.ModeOff].PowerKW
			// A mode drawing less than off gains from a higher price, so
			// the band's direction flips to keep it in the incumbents' favour.
			favour, against := &low, &high
			if dPKW < 0 {
				favour, against = &high, &low
			}
			allowed := spec.Supports[m] && !c.Forbid[m] && c.Max[m] > 0 &&
				!math.IsNaN(dPKW) && !math.IsInf(dPKW, 0)
			inc := min(max(d.current(i, m), 0), count)
			for _, incumbent := range [2]bool{true, false} {
				b := &d.blocks[blockIndex(i, m, incumbent)]
				*b = block{fleet: i, mode: m, incumbent: incumbent, dPKW: dPKW,
					demand: spec.Modes[m].Revenue == switchd.RevenueInference}
				if incumbent {
					b.size = inc
					fv, su := favour, switchUSDPerHour
					if lp := d.incumbentPrice(i, m); lp.OK {
						led := *favour
						led.V[switchd.SignalPrice] += lp.USDPerMWh - d.in.Values.V[switchd.SignalPrice]
						fv = &led
						if lp.HoldHours > 0 {
							su = d.switchUSDPerHourOver(i, lp.HoldHours, lp.BackShare)
						}
					}
					b.dv = modeValue(spec, c, m, fv) - spec.ValuePerHour(switchd.ModeOff, fv) + su
				} else {
					b.size = count - inc
					b.dv = modeValue(spec, c, m, against) - spec.ValuePerHour(switchd.ModeOff, against) -
						switchUSDPerHour
				}
				b.ok = allowed && b.size > 0 && !math.IsNaN(b.dv) && !math.IsInf(b.dv, 0)
				b.costsCap = dPKW > 0
				b.key = b.dv
				if b.costsCap {
					b.key = b.dv / dPKW
				}
			}
		}
	}
}

// modeValue is one device-hour's margin in mode m at the values v, with no
// revenue when a rule discourages m (its energy still costs).
func modeValue(spec *switchd.FleetSpec, c *FleetConstraint, m switchd.Mode, v *switchd.Values) float64 {
	if c.Discourage[m] {
		return -spec.EnergyCostPerHour(m, v)
	}
	return spec.ValuePerHour(m, v)
}

// incumbentPrice is IncumbentPrice[i][m], or none when missing.
func (d *dispatcher) incumbentPrice(i int, m switchd.Mode) LeadPrice {
	if i < len(d.in.IncumbentPrice) {
		return d.in.IncumbentPrice[i][m]
	}
	return LeadPrice{}
}

// maxSwitchUSDPerHour keeps an infinite switching cost finite per hour, so
// that incumbents stay candidates (credited it) while newcomers never pay.
const maxSwitchUSDPerHour = 1e15

// switchUSDPerHour is fleet i's switching cost for mode m spread over the
// expected hold, with the expected share of a switch back added: what a
// newcomer pays and an incumbent is credited per device-hour.
func (d *dispatcher) switchUSDPerHour(i int, m switchd.Mode) float64 {
	if !(d.in.Fleets[i].SwitchCostUSD > 0) {
		return 0
	}
	return d.switchUSDPerHourOver(i, d.holdHours(i, m), d.backShare(i, m))
}

// switchUSDPerHourOver is fleet i's switching cost, with back (in [0, 1])
// of a switch back added, spread over a hold of h hours (the dwell at
// least).
func (d *dispatcher) switchUSDPerHourOver(i int, h, back float64) float64 {
	c := d.in.Fleets[i].SwitchCostUSD
	if !(c > 0) {
		return 0
	}
	x := c * (1 + min(max(back, 0), 1)) / max(h, d.in.Fleets[i].MinDwell.Hours())
	if math.IsNaN(x) { // an infinite cost over an infinite hold
		return 0
	}
	return min(x, maxSwitchUSDPerHour)
}

// holdHours is how long a device switched into or out of fleet i's mode m
// now is expected to stay there, in hours: the caller's estimate, or with
// none the minimum dwell but at least an hour; never less than the dwell,
// which the reconciler enforces for economic moves. It is > 0 and may be
// +Inf.
func (d *dispatcher) holdHours(i int, m switchd.Mode) float64 {
	dwell := d.in.Fleets[i].MinDwell.Hours()
	h := 0.0
	if i < len(d.in.HoldHours) {
		h = d.in.HoldHours[i][m]
	}
	if !(h > 0) { // also NaN
		h = max(dwell, 1)
	}
	return max(h, dwell)
}

// backShare is BackShare[i][m] clamped to [0, 1]; 0 when missing or NaN.
func (d *dispatcher) backShare(i int, m switchd.Mode) float64 {
	if i >= len(d.in.BackShare) {
		return 0
	}
	q := d.in.BackShare[i][m]
	if !(q > 0) {
		return 0
	}
	return min(q, 1)
}

// before reports whether block a comes before block b in merit order.
func before(a, b *block) bool {
	if a.costsCap != b.costsCap {
		return !a.costsCap
	}
	return a.key > b.key
}

// sort orders d.order by merit with a stable insertion sort: a site has a
// handful of fleets, and sort.Slice would allocate.
func (d *dispatcher) sort() {
	for j := range d.order {
		d.order[j] = int32(j)
	}
	for j := 1; j < len(d.order); j++ {
		x := d.order[j]
		k := j
		for ; k > 0 && before(&d.blocks[x], &d.blocks[d.order[k-1]]); k-- {
			d.order[k] = d.order[k-1]
		}
		d.order[k] = x
	}
}

// room returns how many devices block b may still take before the cap is
// considered: its own size, the fleet's devices still off (less those Min
// keeps off), Max, and, when demand is set, AI demand.
func (d *dispatcher) room(b *block, demand bool) int {
	c := d.constraint(b.fleet)
	fp := &d.plan.Fleets[b.fleet]
	spare := fp.Count[switchd.ModeOff] - max(c.Min[switchd.ModeOff], 0)
	k := min(b.size-b.taken, spare, c.Max[b.mode]-fp.Count[b.mode])
	if demand && b.demand {
		k = min(k, d.demand)
	}
	return max(k, 0)
}

// fit returns how many of want devices, each adding dPKW, fit under the cap.
func (d *dispatcher) fit(want int, dPKW float64) int {
	if want <= 0 {
		return 0
	}
	if dPKW <= 0 || float64(want)*dPKW <= d.roomKW+capEpsilonKW {
		return want
	}
	// Fewer than want fit, so the quotient is finite and below want.
	return min(max(int((d.roomKW+capEpsilonKW)/dPKW), 0), want)
}

// place moves k devices of b's fleet from off into b.
func (d *dispatcher) place(b *block, k int) {
	if k <= 0 {
		return
	}
	fp := &d.plan.Fleets[b.fleet]
	b.taken += k
	fp.Count[b.mode] += k
	fp.Count[switchd.ModeOff] -= k
	d.roomKW -= float64(k) * b.dPKW
	if b.demand {
		d.demand = max(d.demand-k, 0)
	}
}

// upgrade moves devices of fleet i from one mode to another that is worth
// more per device, as far as the cap's leftover room, Max, Min and demand
// allow. The merit order ranks by value per kW, which is right for sharing
// a binding cap but can leave a device in a mode worth less per device when
// the cap has room; leftover room is of no use to any other block, so the
// move takes nothing from anyone.
func (d *dispatcher) upgrade(i int) {
	fp := &d.plan.Fleets[i]
	for range maxUpgradeMoves {
		var src, dst *block
		k, gain := 0, 0.0
		for from := switchd.ModeOff + 1; from < switchd.NumModes; from++ {
			s := d.cheapestTaken(i, from)
			if s == nil {
				continue
			}
			for to := switchd.ModeOff + 1; to < switchd.NumModes; to++ {
				t := d.bestOpen(i, to)
				if to == from || t == nil || !(t.dv > 0) || !(t.dv-s.dv > gain) {
					continue
				}
				if n := d.movable(s, t); n > 0 {
					src, dst, k, gain = s, t, n, t.dv-s.dv
				}
			}
		}
		if src == nil {
			return
		}
		src.taken -= k
		dst.taken += k
		fp.Count[src.mode] -= k
		fp.Count[dst.mode] += k
		d.roomKW -= float64(k) * (dst.dPKW - src.dPKW)
		if src.demand && !dst.demand && d.demand != math.MaxInt {
			d.demand += k
		}
		if dst.demand && !src.demand {
			d.demand = max(d.demand-k, 0)
		}
	}
}

// movable returns how many devices may move from block src to block dst of
// the same fleet: what src holds above Min, what dst can take under Max and
// demand, and what the cap's room allows for the difference in draw.
func (d *dispatcher) movable(src, dst *block) int {
	c := d.constraint(src.fleet)
	fp := &d.plan.Fleets[src.fleet]
	k := min(src.taken, fp.Count[src.mode]-max(c.Min[src.mode], 0),
		dst.size-dst.taken, c.Max[dst.mode]-fp.Count[dst.mode])
	if dst.demand && !src.demand {
		k = min(k, d.demand)
	}
	return d.fit(k, dst.dPKW-src.dPKW)
}

// cheapestTaken returns fleet i's block in mode m that holds devices and is
// worth least per device, or nil.
func (d *dispatcher) cheapestTaken(i int, m switchd.Mode) *block {
	var best *block
	for _, incumbent := range [2]bool{true, false} {
		b := &d.blocks[blockIndex(i, m, incumbent)]
		if b.taken > 0 && (best == nil || b.dv < best.dv) {
			best = b
		}
	}
	return best
}

// bestOpen returns fleet i's candidate block in mode m that can take more
// devices and is worth most per device, or nil.
func (d *dispatcher) bestOpen(i int, m switchd.Mode) *block {
	var best *block
	for _, incumbent := range [2]bool{true, false} {
		b := &d.blocks[blockIndex(i, m, incumbent)]
		if b.ok && b.taken < b.size && (best == nil || b.dv > best.dv) {
			best = b
		}
	}
	return best
}
