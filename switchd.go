// Package switchd is the shared vocabulary of the site daemon: modes, signals,
// fleet specifications, plans, commands, the Driver and Clock interfaces, and
// the economics every other package agrees on (value of a device-hour in a
// mode).
//
// It imports the standard library only; every other package of the project
// may import it.
package switchd

import (
	"context"
	"fmt"
	"math"
	"time"
)

var inf = math.Inf(1)

// Clock tells the time. The daemon passes the wall clock; the simulator a
// virtual clock it advances through a trace. Decision code reads time only
// through a Clock (or a now argument), never from package time directly.
type Clock interface {
	Now() time.Time
}

// Mode is what a device is doing. The zero value, ModeOff, is the safe state.
type Mode uint8

// The modes a device can be in.
const (
	ModeOff Mode = iota
	ModeMining
	ModeInference
	// ModeMiningReduced is mining at a reduced power target (a LuxOS or
	// Braiins profile, a Whatsminer power percentage): less draw, less
	// hashrate. A fleet declares its power and hashrate, if it has one.
	ModeMiningReduced
	// ModeSleep is an inference engine asleep (vLLM's sleep mode): the
	// model is unloaded from the GPU, which draws little, and wakes in well
	// under a second instead of reloading for tens of seconds. It earns
	// nothing by itself.
	ModeSleep
	NumModes = 5
)

// BaseModes is how many modes every site had before the power-target
// modes: off, mining and inference. A fleet that declares none of the
// others behaves exactly as before.
const BaseModes = 3

var modeNames = [NumModes]string{"off", "mining", "inference", "mining_reduced", "sleep"}

// Modes lists every mode in a fixed order.
var Modes = [NumModes]Mode{ModeOff, ModeMining, ModeInference, ModeMiningReduced, ModeSleep}

// String returns the mode's YAML name.
func (m Mode) String() string {
	if int(m) < NumModes {
		return modeNames[m]
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// ParseMode parses a mode's YAML name.
func ParseMode(s string) (Mode, error) {
	for i, n := range modeNames {
		if n == s {
			return Mode(i), nil
		}
	}
	return 0, fmt.Errorf("unknown mode %q (want off, mining, inference, mining_reduced or sleep)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (m Mode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; unknown names are errors.
func (m *Mode) UnmarshalText(b []byte) error {
	v, err := ParseMode(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// Kind is the kind of hardware in a fleet.
type Kind uint8

// The kinds of fleet.
const (
	KindASIC Kind = iota
	KindGPU
)

// String returns the kind's YAML name.
func (k Kind) String() string {
	switch k {
	case KindASIC:
		return "asic"
	case KindGPU:
		return "gpu"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// UnmarshalText implements encoding.TextUnmarshaler; unknown names are errors.
func (k *Kind) UnmarshalText(b []byte) error {
	switch string(b) {
	case "asic":
		*k = KindASIC
	case "gpu":
		*k = KindGPU
	default:
		return fmt.Errorf("unknown kind %q (want asic or gpu)", string(b))
	}
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Signal names a scalar input series.
type Signal uint8

// The signals switchd knows, with their units.
const (
	SignalPrice          Signal = iota // USD/MWh, real-time energy price
	SignalGridLoad                     // MW, system-wide load
	SignalHashprice                    // USD per PH/s per day
	SignalInferencePrice               // USD per GPU-hour
	SignalAIDemand                     // GPUs wanted by AI customers
	// SignalCPAlert is a probability (0 to 1) that today holds a
	// coincident peak (a 4CP interval), as sites buy it from forecasting
	// services.
	SignalCPAlert
	NumSignals = 6
)

var signalNames = [NumSignals]string{"price", "grid_load", "hashprice", "inference_price", "ai_demand", "cp_alert"}

// AllSignals lists every signal in a fixed order.
var AllSignals = [NumSignals]Signal{SignalPrice, SignalGridLoad, SignalHashprice, SignalInferencePrice, SignalAIDemand, SignalCPAlert}

// String returns the signal's name as used in YAML and metrics.
func (s Signal) String() string {
	if int(s) < NumSignals {
		return signalNames[s]
	}
	return fmt.Sprintf("signal(%d)", uint8(s))
}

// ParseSignal parses a signal name.
func ParseSignal(s string) (Signal, error) {
	for i, n := range signalNames {
		if n == s {
			return Signal(i), nil
		}
	}
	return 0, fmt.Errorf("unknown signal %q (want price, grid_load, hashprice, inference_price, ai_demand or cp_alert)", s)
}

// UnmarshalText implements encoding.TextUnmarshaler; unknown names are errors.
func (s *Signal) UnmarshalText(b []byte) error {
	v, err := ParseSignal(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (s Signal) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Sample is one value of one signal, valid from Time until the next sample of
// the same signal.
type Sample struct {
	Time   time.Time
	Signal Signal
	Value  float64
}

// Snapshot is the latest accepted value of every signal and when it was
// sampled. Have[s] is false for a signal never received.
//
// MonthPeakGridLoad is the highest grid load received in the calendar month
// (in the site's time zone) of the latest grid-load sample, and PeakMonth
// that month as year×12+month (0 when none): coincident-peak rules compare
// the load with it.
type Snapshot struct {
	Value [NumSignals]float64
	At    [NumSignals]time.Time
	Have  [NumSignals]bool

	MonthPeakGridLoad float64
	PeakMonth         int
}

// NotePeak folds a grid-load sample taken at t (in the site's location)
// into the month's running peak.
func (s *Snapshot) NotePeak(t time.Time, loadMW float64) {
	month := t.Year()*12 + int(t.Month())
	switch {
	case month > s.PeakMonth:
		s.PeakMonth, s.MonthPeakGridLoad = month, loadMW
	case month == s.PeakMonth && loadMW > s.MonthPeakGridLoad:
		s.MonthPeakGridLoad = loadMW
	}
	// A sample of an earlier month leaves this month's peak alone.
}

// Set stores a sample as the latest value of its signal.
func (s *Snapshot) Set(x Sample) {
	s.Value[x.Signal] = x.Value
	s.At[x.Signal] = x.Time
	s.Have[x.Signal] = true
}

// Age is how old the signal's value is at now; ok is false if never received.
func (s *Snapshot) Age(sig Signal, now time.Time) (age time.Duration, ok bool) {
	if !s.Have[sig] {
		return 0, false
	}
	return now.Sub(s.At[sig]), true
}

// Values are effective signal values (received or fallback) used for
// economics. Present[s] is false when there is neither a value nor a
// fallback; for ai_demand that means "unlimited".
type Values struct {
	V       [NumSignals]float64
	Present [NumSignals]bool
	// MonthPeakGridLoad is the month's highest grid load so far (MW),
	// when HasMonthPeak.
	MonthPeakGridLoad float64
	HasMonthPeak      bool
}

// Get returns the value of a signal and whether it is present.
func (v *Values) Get(s Signal) (float64, bool) { return v.V[s], v.Present[s] }

// RevenueSource says where a mode's revenue comes from.
type RevenueSource uint8

// Revenue sources.
const (
	RevenueNone      RevenueSource = iota // earns nothing (off)
	RevenueHashprice                      // hashrate × hashprice
	RevenueInference                      // inference_price per device-hour, up to ai_demand
	RevenueFixed                          // a fixed USD per device-hour
)

// String returns the revenue source's YAML name.
func (r RevenueSource) String() string {
	switch r {
	case RevenueNone:
		return "none"
	case RevenueHashprice:
		return "hashprice"
	case RevenueInference:
		return "inference_price"
	case RevenueFixed:
		return "fixed"
	}
	return fmt.Sprintf("revenue(%d)", uint8(r))
}

// ModeSpec is what one device of a fleet draws and earns in one mode.
type ModeSpec struct {
	PowerKW         float64       // draw of one device, kW
	HashrateTHs     float64       // TH/s of one device (RevenueHashprice)
	Revenue         RevenueSource // where revenue comes from
	FixedUSDPerHour float64       // USD per device-hour (RevenueFixed)
}

// FleetSpec is the catalog entry of one fleet: identical devices, the modes
// they support and what moving between modes costs.
type FleetSpec struct {
	Name     string
	Kind     Kind
	Count    int
	Supports [NumModes]bool     // ModeOff is always supported
	Modes    [NumModes]ModeSpec // indexed by Mode
	// Transition[from][to] is how long a device takes to reach to from from.
	// During a transition it draws the larger of the two modes' power and
	// earns nothing.
	Transition    [NumModes][NumModes]time.Duration
	MinDwell      time.Duration // least time in a mode before an economic switch
	SwitchCostUSD float64       // cost of one device switching mode (wear, lost output)
}

// TransitionPowerKW is what one device draws while moving from one mode to another.
func (f *FleetSpec) TransitionPowerKW(from, to Mode) float64 {
	return max(f.Modes[from].PowerKW, f.Modes[to].PowerKW)
}

// RevenuePerHour is what one device earns per hour in mode m at values v,
// before energy cost. It ignores the AI-demand cap, which applies to a count
// of devices, not to one.
func (f *FleetSpec) RevenuePerHour(m Mode, v *Values) float64 {
	ms := &f.Modes[m]
	switch ms.Revenue {
	case RevenueHashprice:
		// hashprice is USD per PH/s per day; hashrate is TH/s.
		return ms.HashrateTHs / 1000 * v.V[SignalHashprice] / 24
	case RevenueInference:
		return v.V[SignalInferencePrice]
	case RevenueFixed:
		return ms.FixedUSDPerHour
	}
	return 0
}

// EnergyCostPerHour is what one device's energy costs per hour in mode m at
// the price in v (USD/MWh). Negative prices make it negative.
func (f *FleetSpec) EnergyCostPerHour(m Mode, v *Values) float64 {
	return f.Modes[m].PowerKW / 1000 * v.V[SignalPrice]
}

// ValuePerHour is the margin of one device-hour in mode m: revenue minus
// energy cost.
func (f *FleetSpec) ValuePerHour(m Mode, v *Values) float64 {
	return f.RevenuePerHour(m, v) - f.EnergyCostPerHour(m, v)
}

// BreakevenUSDPerMWh is the energy price at which mode m earns exactly its
// energy cost. It is +Inf for a mode that draws no power.
func (f *FleetSpec) BreakevenUSDPerMWh(m Mode, v *Values) float64 {
	kw := f.Modes[m].PowerKW
	if kw <= 0 {
		return inf
	}
	return f.RevenuePerHour(m, v) / (kw / 1000)
}

// Plan is the target number of devices of each fleet in each mode, in the
// order of the site's fleets.
type Plan struct {
	Fleets []FleetPlan
}

// FleetPlan is one fleet's target.
type FleetPlan struct {
	Fleet string
	Count [NumModes]int
}

// Cohort is a group of devices of one fleet in the same observed state. A
// steady cohort has Target == Mode and Since is when it reached Mode; a
// transitioning cohort is leaving Mode for Target and Since is when the
// transition started.
type Cohort struct {
	Mode   Mode
	Target Mode
	Since  time.Time
	Count  int
}

// Steady reports whether the cohort is not in a transition.
func (c Cohort) Steady() bool { return c.Mode == c.Target }

// Problem reasons: why a device is left out of a fleet's usable capacity.
// A small fixed set, so that they can label metrics.
const (
	ProblemUnreachable = "unreachable" // no answer, timeouts, refused connections
	ProblemAuth        = "auth"        // credentials refused, session held elsewhere
	ProblemProtocol    = "protocol"    // replies that cannot be read
	ProblemFault       = "fault"       // stopped working without being told
	ProblemStuck       = "stuck"       // does not reach the commanded mode
)

// Problems lists the problem reasons in a fixed order.
var Problems = [...]string{ProblemUnreachable, ProblemAuth, ProblemProtocol, ProblemFault, ProblemStuck}

// Unusable counts a fleet's devices that the controller must not count on,
// by the mode they were last seen in (for power accounting) and by reason.
type Unusable struct {
	ByMode   [NumModes]int
	ByReason map[string]int
}

// Total is the number of unusable devices.
func (u *Unusable) Total() int {
	n := 0
	for _, c := range u.ByMode {
		n += c
	}
	return n
}

// FleetState is the observed state of a fleet's devices. Failed counts the
// devices that failed to reach a commanded mode since the previous State
// call; they are back, steady, in the mode they were leaving (and counted in
// its cohort), and the controller backs off before commanding them again.
//
// Unusable devices (unreachable, faulted, refusing commands, stuck) are not
// in any cohort: the controller does not count on them or command them
// until they recover. Drifted counts devices found out of their commanded
// mode by this poll and commanded again.
type FleetState struct {
	Cohorts  []Cohort
	Failed   int
	Unusable Unusable
	Drifted  int
}

// Count returns the devices steady in m plus those on their way to m.
func (s *FleetState) Count(m Mode) (steady, arriving int) {
	for _, c := range s.Cohorts {
		if c.Target != m {
			continue
		}
		if c.Steady() {
			steady += c.Count
		} else {
			arriving += c.Count
		}
	}
	return steady, arriving
}

// Command asks a driver to move Count devices that are steady in From to To.
// The driver picks which devices: those longest in From first, so the ones
// past their dwell time go before those that just arrived.
type Command struct {
	From, To Mode
	Count    int
}

// Driver controls one fleet. Methods are never called concurrently.
type Driver interface {
	// State returns the observed (not the last commanded) state.
	State(ctx context.Context) (FleetState, error)
	// Apply sends commands; it returns when they are accepted, not when the
	// devices have reached their modes.
	Apply(ctx context.Context, cmds []Command) error
}
