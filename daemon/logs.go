package daemon

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/controller"
	"github.com/switchd/switchd/policies"
	"go.uber.org/zap"
)

// What the log says, and how often. At info it has one line per event: a
// decision that moves devices (what, why, under which cap), each fleet's
// command outcome, a rule that starts or stops firing, an input that goes
// stale or comes back, the fail-safe engaging or lifting, and the MQTT
// connection (mqttio logs that). At debug it adds every evaluation. A
// condition that persists (a driver failing every tick) is one line when it
// starts, one a minute at most while it lasts (with how many it stood for)
// and one when it ends: an hour of trouble is a few lines, not thousands.

// repeatEvery is the least time between two lines about one persisting
// condition.
const repeatEvery = time.Minute

// logState is what the log last said: changes are logged, not states.
type logState struct {
	fired    []string // rules that fired, in policy order
	stale    [switchd.NumSignals]bool
	failSafe string
	repeats  map[string]*repeated // by condition key, e.g. "driver/asics"
	// applied holds the command outcome lines of the tick under way: the
	// controller reports them while it sends, before the tick's rules and
	// decision are logged, and the log reads cause first (rule fired,
	// decision, then each fleet's outcome).
	applied []func()
}

// flushApplied writes the command outcome lines held back this tick.
func (l *logState) flushApplied() {
	for _, write := range l.applied {
		write()
	}
	clear(l.applied)
	l.applied = l.applied[:0]
}

// repeated is one persisting condition's log rate limit.
type repeated struct {
	last       time.Time
	suppressed int
}

// limit reports whether a line about the condition key may be written now,
// and how many lines were held back since the last one.
func (l *logState) limit(key string, now time.Time) (ok bool, suppressed int) {
	if l.repeats == nil {
		l.repeats = map[string]*repeated{}
	}
	r := l.repeats[key]
	if r == nil {
		l.repeats[key] = &repeated{last: now}
		return true, 0
	}
	if now.Sub(r.last) < repeatEvery {
		r.suppressed++
		return false, 0
	}
	n := r.suppressed
	r.last, r.suppressed = now, 0
	return true, n
}

// ended forgets the condition key and reports whether it was active.
func (l *logState) ended(key string) (was bool, suppressed int) {
	r := l.repeats[key]
	if r == nil {
		return false, 0
	}
	delete(l.repeats, key)
	return true, r.suppressed
}

// logEvaluation logs what changed in the last evaluation: rules, stale
// inputs, the fail-safe; and, at debug, the evaluation itself.
func (d *daemon) logEvaluation() {
	dec := d.ctl.Decision()
	ev := &dec.Eval
	pol := d.ctl.Policy()
	snap := d.ctl.Snapshot()
	now := d.clock.Now()
	l := &d.logs

	if ce := d.log.Check(zap.DebugLevel, "evaluated"); ce != nil {
		ce.Write(zap.String("values", valuesString(&ev.Values)), zap.Strings("rules", ev.Fired),
			zap.Float64("cap_kw", ev.Constraints.SiteCapKW), zap.String("plan", planString(&dec.Plan)))
	}

	for _, r := range ev.Fired {
		if !slices.Contains(l.fired, r) {
			d.log.Info("rule fired", zap.String("rule", r), zap.String("inputs", valuesString(&ev.Values)))
		}
	}
	for _, r := range l.fired {
		if !slices.Contains(ev.Fired, r) {
			d.log.Info("rule no longer fires", zap.String("rule", r), zap.String("inputs", valuesString(&ev.Values)))
		}
	}
	l.fired = append(l.fired[:0], ev.Fired...)

	var stale [switchd.NumSignals]bool
	for _, s := range ev.Stale {
		stale[s] = true
	}
	for _, s := range switchd.AllSignals {
		switch {
		case stale[s] && !l.stale[s]:
			f := []zap.Field{zap.String("input", s.String()), zap.Duration("max_age", d.site.MaxAge[s]),
				zap.String("fail_safe", pol.FailSafe[s].String())}
			if snap.Have[s] {
				f = append(f, zap.Float64("last_value", snap.Value[s]), zap.Duration("age", now.Sub(snap.At[s]).Round(time.Second)))
			} else {
				f = append(f, zap.String("last_value", "never received"))
			}
			if pol.HasFallback[s] {
				f = append(f, zap.Float64("fallback", pol.Fallbacks[s]))
			}
			d.log.Warn("input stale", f...)
		case !stale[s] && l.stale[s]:
			d.log.Info("input fresh again", zap.String("input", s.String()), zap.Float64("value", snap.Value[s]))
		}
	}
	l.stale = stale

	fs := failSafeOf(ev)
	if was := cmp.Or(l.failSafe, "none"); fs != was {
		if fs == "none" {
			d.log.Info("fail-safe lifted", zap.String("was", was))
		} else {
			d.log.Warn("fail-safe engaged: stale inputs decide", zap.String("fail_safe", fs), zap.Stringers("stale", ev.Stale))
		}
	}
	l.failSafe = fs

	// Without a decision line to follow (every apply failed, so no fleet
	// reports commands), the outcomes are written now.
	decision := false
	for _, r := range d.ctl.Reports() {
		decision = decision || len(r.Commands) > 0 || len(r.Held) > 0
	}
	if !decision {
		l.flushApplied()
	}
}

// failSafeOf names the fail-safe an evaluation imposes: none, hold or
// curtail.
func failSafeOf(ev *policies.Evaluation) string {
	switch {
	case ev.Curtail:
		return "curtail"
	case ev.Constraints.Hold:
		return "hold"
	}
	return "none"
}

// logDecision logs a decision that commanded or held back devices: one line
// with every fleet's moves, the reason and the cap in force.
func (d *daemon) logDecision() {
	dec := d.ctl.Decision()
	var moves, held []string
	for i, r := range d.ctl.Reports() {
		name := d.site.Fleets[i].Spec.Name
		for _, c := range r.Commands {
			moves = append(moves, fmt.Sprintf("%s %s→%s ×%d", name, c.From, c.To, c.Count))
		}
		for _, c := range r.Held {
			held = append(held, fmt.Sprintf("%s %s→%s ×%d", name, c.From, c.To, c.Count))
		}
	}
	f := []zap.Field{zap.String("why", reason(dec)), zap.Float64("cap_kw", dec.Eval.Constraints.SiteCapKW)}
	if len(moves) > 0 {
		f = append([]zap.Field{zap.String("commands", strings.Join(moves, "; "))}, f...)
	}
	if len(held) > 0 {
		f = append(f, zap.String("held_back", strings.Join(held, "; ")))
	}
	d.log.Info("decision", f...)
	d.logs.flushApplied()
}

// logApplied logs a fleet's command outcome (Recorder.Applied) after the
// tick's decision line (logDecision, or logEvaluation when none follows).
func (d *daemon) logApplied(fleet string, cmds []switchd.Command, err error) {
	var parts []string
	for _, c := range cmds {
		parts = append(parts, fmt.Sprintf("%s→%s ×%d", c.From, c.To, c.Count))
	}
	f := []zap.Field{zap.String("fleet", fleet), zap.String("commands", strings.Join(parts, "; "))}
	if err != nil {
		f = append(f, zap.String("class", errClass(err)), zap.Error(err))
		d.logs.applied = append(d.logs.applied, func() { d.log.Warn("commands failed", f...) })
		return
	}
	d.logs.applied = append(d.logs.applied, func() { d.log.Info("commands accepted", f...) })
}

// logDriverErrors logs each fleet's state errors of the last tick, a
// persisting error at most once a minute, and its end. (A failed apply is
// logged with its commands by logApplied.)
func (d *daemon) logDriverErrors(now time.Time, reports []controller.FleetReport) {
	for i, r := range reports {
		in := d.drivers[i]
		key := "driver/" + in.fleet
		if r.Op == "apply" {
			continue
		}
		if r.Err == nil {
			if was, n := d.logs.ended(key); was {
				d.log.Info("driver answers again", zap.String("fleet", in.fleet), zap.String("driver", in.driver), zap.Int("errors_not_logged", n))
			}
			continue
		}
		if ok, n := d.logs.limit(key, now); ok {
			d.log.Warn("driver error", zap.String("fleet", in.fleet), zap.String("driver", in.driver),
				zap.String("op", r.Op), zap.String("class", errClass(r.Err)), zap.Error(r.Err), zap.Int("errors_not_logged", n))
		}
	}
}

// valuesString is the effective inputs, compactly: "price=31.2 hashprice=48".
func valuesString(v *switchd.Values) string {
	var b strings.Builder
	for _, s := range switchd.AllSignals {
		if x, ok := v.Get(s); ok {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%s=%.4g", s, x)
		}
	}
	return b.String()
}

// planString is the plan's target per fleet: "asics mining=316 off=684".
func planString(p *switchd.Plan) string {
	var parts []string
	for _, f := range p.Fleets {
		var modes []string
		for _, m := range switchd.Modes {
			if n := f.Count[m]; n > 0 {
				modes = append(modes, fmt.Sprintf("%s=%d", m, n))
			}
		}
		parts = append(parts, f.Fleet+" "+strings.Join(modes, " "))
	}
	return strings.Join(parts, "; ")
}
