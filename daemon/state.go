package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/controller"
	"github.com/switchd/switchd/controller/journal"
	"github.com/switchd/switchd/daemon/web"
	"github.com/switchd/switchd/policies"
	"go.uber.org/zap"
)

// maxDecisions is how many recent decisions the views keep.
const maxDecisions = 20

func sha256hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// instrumented wraps a fleet's driver: it bounds every call with a
// deadline and gives every driver the same timing and error series (fleet,
// driver and op labels), so no driver times or counts itself.
type instrumented struct {
	switchd.Driver
	fleet, driver string
	metrics       *web.Metrics

	// The outcome of the last calls. State and Apply may run on the
	// controller's goroutines (fleets in parallel, each fleet's calls one
	// at a time); the loop reads these only after Tick has returned.
	answered bool   // State has succeeded at least once
	stateOK  bool   // the last State call succeeded
	lastErr  error  // the last failed call's error
	lastOp   string // and which call it was
}

// driverCallTimeout bounds every driver call, so one unreachable fleet
// cannot stall the loop (and shutdown) for the others.
const driverCallTimeout = 10 * time.Second

// State polls the driver once, with a deadline.
func (in *instrumented) State(ctx context.Context) (switchd.FleetState, error) {
	ctx, cancel := context.WithTimeout(ctx, driverCallTimeout)
	defer cancel()
	start := time.Now()
	st, err := in.Driver.State(ctx)
	in.metrics.DriverRequest(in.fleet, in.driver, web.OpState, time.Since(start))
	in.stateOK = err == nil
	if err != nil {
		in.failed(web.OpState, err)
	} else {
		in.answered = true
	}
	return st, err
}

// Apply sends commands, with a deadline.
func (in *instrumented) Apply(ctx context.Context, cmds []switchd.Command) error {
	ctx, cancel := context.WithTimeout(ctx, driverCallTimeout)
	defer cancel()
	start := time.Now()
	err := in.Driver.Apply(ctx, cmds)
	took := time.Since(start)
	in.metrics.DriverRequest(in.fleet, in.driver, web.OpApply, took)
	in.metrics.CommandLatency(in.fleet, took)
	if err != nil {
		in.failed(web.OpApply, err)
	}
	return err
}

func (in *instrumented) failed(op string, err error) {
	in.lastErr, in.lastOp = err, op
	in.metrics.DriverError(in.fleet, in.driver, op, switchd.IsPermanent(err))
}

// errClass names a driver error's class, as the metrics label it.
func errClass(err error) string {
	if switchd.IsPermanent(err) {
		return "permanent"
	}
	return "retriable"
}

// parallel runs fn(0) … fn(n-1) on goroutines of their own and returns once
// all have returned: the controller's Parallel, so fleets are polled and
// commanded at the same time.
func parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { fn(i) })
	}
	wg.Wait()
}

// fleetHealth is what the HTTP side may know of a fleet's driver, copied
// under mu after each tick (the instrumented fields belong to the loop).
type fleetHealth struct {
	stateOK  bool
	lastErr  string
	unusable int
	reasons  map[string]int
}

// journalHealth remembers whether journal appends fail, and keeps the
// failure log to one line a minute plus one when appends work again. It has
// its own lock: appends happen under mu and, from the controller's
// Recorder calls, outside it.
type journalHealth struct {
	mu       sync.Mutex
	err      error
	since    time.Time
	lastLog  time.Time
	unlogged int // failures since the last log line
}

// journalLogEvery is the most a failing journal is logged.
const journalLogEvery = time.Minute

func (h *journalHealth) note(now time.Time, err error, log *zap.Logger) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		if h.err != nil {
			log.Info("journal appends work again", zap.Duration("failed_for", now.Sub(h.since).Round(time.Millisecond)), zap.Int("failures_not_logged", h.unlogged))
		}
		h.err, h.unlogged = nil, 0
		return
	}
	first := h.err == nil
	if first {
		h.since = now
	}
	h.err = err
	if !first && now.Sub(h.lastLog) < journalLogEvery {
		h.unlogged++
		return
	}
	log.Error("journal append failed: starts are held back, sheds still go out", zap.Error(err),
		zap.Time("failing_since", h.since), zap.Int("failures_not_logged", h.unlogged))
	h.lastLog, h.unlogged = now, 0
}

// failing returns since when the journal fails and its last error, or a
// nil error when it works.
func (h *journalHealth) failing() (time.Time, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.since, h.err
}

// appendJournal writes entries durably, if there is a journal.
func (d *daemon) appendJournal(entries ...journal.Entry) error {
	if d.journal == nil {
		return nil
	}
	// Entries that could not be journalled before go first (lateRecord).
	d.late.mu.Lock()
	defer d.late.mu.Unlock()
	all := entries
	if n := len(d.late.pending); n > 0 {
		all = append(append(make([]journal.Entry, 0, n+len(entries)), d.late.pending...), entries...)
		if d.late.dropped > 0 {
			all[0].Reason = fmt.Sprintf("(%d earlier entries were lost while the journal failed) %s", d.late.dropped, all[0].Reason)
		}
	}
	if len(all) == 0 {
		return nil
	}
	d.stampTerm(all)
	start := time.Now()
	err := d.journal.Append(all...)
	if errors.Is(err, journal.ErrStaleTerm) {
		// Not the disk: a deposed leader's entry (ha.go). Refused.
		d.log.Named("journal").Warn("entry of an older HA term refused", zap.Error(err))
		return err
	}
	d.metrics.JournalAppend(time.Since(start), err)
	d.jhealth.note(d.clock.Now(), err, d.log.Named("journal"))
	if err == nil && len(d.late.pending) > 0 {
		d.log.Named("journal").Info("journalled late what was sent while the journal failed", zap.Int("entries", len(d.late.pending)), zap.Int("lost", d.late.dropped))
		d.late.pending, d.late.dropped = nil, 0
	}
	return err
}

// Commands implements controller.Recorder: the decision, its commands and
// the resulting commanded state are durable before anything is sent.
func (d *daemon) Commands(now time.Time, dec *controller.Decision, cmds []controller.FleetCommands) error {
	if d.journal == nil {
		return nil
	}
	inputs := map[string]journal.Input{}
	snap := d.ctl.Snapshot()
	for _, s := range switchd.AllSignals {
		if snap.Have[s] {
			inputs[s.String()] = journal.Input{Value: snap.Value[s], Time: snap.At[s]}
		}
	}
	entries := []journal.Entry{{Time: now, Kind: "decision", Rules: append([]string(nil), dec.Eval.Fired...), Inputs: inputs, Reason: reason(dec)}}
	for _, fc := range cmds {
		for _, c := range fc.Commands {
			entries = append(entries, journal.Entry{Time: now, Kind: "command", Fleet: fc.Fleet, From: c.From.String(), To: c.To.String(), Count: c.Count})
		}
		fi := d.site.FleetIndex(fc.Fleet)
		spec := &d.site.Fleets[fi].Spec
		st := journal.Entry{Time: now, Kind: "state", Fleet: fc.Fleet, Counts: map[string]int{}, KW: map[string]float64{}}
		for _, m := range switchd.Modes {
			if m != switchd.ModeOff && !spec.Supports[m] {
				continue
			}
			st.Counts[m.String()] = fc.After[m]
			st.KW[m.String()] = float64(fc.After[m]) * spec.Modes[m].PowerKW
		}
		entries = append(entries, st)
	}
	if err := d.appendJournal(entries...); err != nil {
		d.late.failed(now, entries[0], cmds)
		return err
	}
	d.late.succeeded()
	d.crashPoint("decided")
	return nil
}

// Applied implements controller.Recorder.
func (d *daemon) Applied(now time.Time, fleet string, cmds []switchd.Command, err error) {
	e := journal.Entry{Time: now, Kind: "ack", Fleet: fleet}
	for _, c := range cmds {
		e.Count += c.Count
	}
	if err != nil {
		e.Err = err.Error()
	}
	d.logApplied(fleet, cmds, err)
	d.crashPoint("sent")
	if fi := d.site.FleetIndex(fleet); fi >= 0 && d.late.sent(now, e, cmds, func(c [switchd.NumModes]int) journal.Entry { return d.stateEntry(now, fi, c) }) {
		// Sheds sent although their batch could not be journalled: they
		// wait in d.late with the ack; journal them as soon as possible.
		_ = d.appendJournal()
		d.crashPoint("acked")
		return
	}
	// A failure is logged (at most once a minute) and shown by appendJournal.
	_ = d.appendJournal(e)
	d.crashPoint("acked")
}

// reason is a one-line why for a decision.
func reason(dec *controller.Decision) string {
	ev := &dec.Eval
	var parts []string
	if p, ok := ev.Values.Get(switchd.SignalPrice); ok {
		parts = append(parts, fmt.Sprintf("price %.2f USD/MWh", p))
	}
	if dec.ShedOnly {
		parts = append(parts, "startup hold: sheds only")
	}
	if ev.Curtail {
		parts = append(parts, "fail-safe curtail")
	} else if ev.Constraints.Hold {
		parts = append(parts, "fail-safe hold")
	}
	if len(ev.Stale) > 0 {
		var s []string
		for _, sig := range ev.Stale {
			s = append(s, sig.String())
		}
		parts = append(parts, "stale: "+strings.Join(s, ","))
	}
	if len(ev.Fired) > 0 {
		parts = append(parts, "rules: "+strings.Join(ev.Fired, ","))
	} else {
		parts = append(parts, "merit order")
	}
	return strings.Join(parts, "; ")
}

// noteDecision remembers the last tick's commands, sent and held, for the
// views.
func (d *daemon) noteDecision(now time.Time) {
	dec := d.ctl.Decision()
	dv := web.DecisionView{Time: now, Rules: append([]string{}, dec.Eval.Fired...), Reason: reason(dec)}
	for i, r := range d.ctl.Reports() {
		name := d.site.Fleets[i].Spec.Name
		for _, c := range r.Commands {
			dv.Commands = append(dv.Commands, web.CommandView{Fleet: name, From: c.From.String(), To: c.To.String(), Count: c.Count})
		}
		for _, c := range r.Held {
			dv.Held = append(dv.Held, web.CommandView{Fleet: name, From: c.From.String(), To: c.To.String(), Count: c.Count})
		}
	}
	d.decisions = append([]web.DecisionView{dv}, d.decisions...)
	if len(d.decisions) > maxDecisions {
		d.decisions = d.decisions[:maxDecisions]
	}
}

// refreshViews rebuilds the state and plan views from what the controller
// observed at its last tick and what the drivers know without I/O (under mu,
// on the loop's goroutine: never while Tick runs).
func (d *daemon) refreshViews(now time.Time, holdReason string) {
	site := d.site
	pol := d.ctl.Policy()
	snap := d.ctl.Snapshot()
	dec := d.ctl.Decision()
	ev := &dec.Eval

	v := web.StateView{Site: site.Name, Time: now, SiteCapKW: site.PowerCapKW, Policy: d.policyInfo, FailSafe: "none"}
	if d.evaluated {
		v.SiteCapKW = ev.Constraints.SiteCapKW
		v.FailSafe = failSafeOf(ev)
		for _, s := range ev.Stale {
			v.Stale = append(v.Stale, s.String())
		}
	}
	for _, s := range switchd.AllSignals {
		sv := web.SignalView{Name: s.String(), Topic: site.Daemon.Signals[s].Topic, MaxAge: site.MaxAge[s].String()}
		if snap.Have[s] {
			val, at := snap.Value[s], snap.At[s]
			age := now.Sub(at).Seconds()
			sv.Value, sv.At, sv.AgeSeconds = &val, &at, &age
			sv.Stale = site.MaxAge[s] > 0 && now.Sub(at) > site.MaxAge[s]
		}
		// A signal with a fail-safe that never arrived is stale too.
		for _, st := range v.Stale {
			if st == s.String() {
				sv.Stale = true
			}
		}
		if pol.HasFallback[s] {
			fb := pol.Fallbacks[s]
			sv.Fallback = &fb
		}
		v.Signals = append(v.Signals, sv)
	}
	for i := range site.Fleets {
		f := &site.Fleets[i]
		in := d.drivers[i]
		// Before the first tick nothing was observed: the counts stay at
		// zero rather than polling the driver from here.
		var obs *switchd.FleetState
		if in.answered {
			obs = d.ctl.Observed(i)
		}
		// Only the devices with a problem go into the view: a copy of a
		// 100,000-device fleet per tick would cost more than the tick.
		var devs []switchd.DeviceStatus
		problems := -1
		switch dr := in.Driver.(type) {
		case switchd.ProblemReporter:
			devs, problems = dr.ProblemDevices(web.MaxProblemDevices)
		case switchd.DeviceReporter:
			devs = dr.Devices()
		}
		fv := fleetView(f, obs, in.Driver, devs)
		if problems >= 0 {
			fv.ProblemsTotal = problems
		}
		fv.DriverUp = in.stateOK || !d.evaluated
		if in.lastErr != nil {
			fv.LastError, fv.LastErrorOp, fv.LastErrorClass = in.lastErr.Error(), in.lastOp, errClass(in.lastErr)
		}
		if d.evaluated && i < len(dec.Plan.Fleets) {
			for m := range fv.Modes {
				if mode, err := switchd.ParseMode(m); err == nil {
					fv.Target[m] = dec.Plan.Fleets[i].Count[mode]
				}
			}
		}
		d.health[i] = fleetHealth{stateOK: in.stateOK, lastErr: fv.LastError, unusable: fv.Unusable.Total, reasons: fv.Unusable.ByReason}
		v.PowerKW += fv.PowerKW
		v.Fleets = append(v.Fleets, fv)
	}
	// The history also keeps each fleet's own last decision, which the
	// bounded site list would lose.
	if d.evaluated {
		price, ok := ev.Values.Get(switchd.SignalPrice)
		d.hist.record(now, price, ok, &v, d.decisions)
	}
	for i := range v.Fleets {
		v.Fleets[i].LastDecision = d.hist.lastDecision(i)
	}
	for _, o := range d.overrides {
		v.Overrides = append(v.Overrides, overrideView(&o))
	}
	v.Decisions = append([]web.DecisionView{}, d.decisions...)
	if d.journal != nil {
		seq, hash := d.journal.Last()
		v.Journal = &web.JournalView{Path: d.site.Daemon.Journal.Path, Seq: seq, Hash: hash}
		if since, err := d.jhealth.failing(); err != nil {
			v.Journal.Error, v.Journal.ErrorSince = err.Error(), &since
		}
	}
	ok, why := d.readyLocked(now)
	if holdReason != "" {
		ok = false
		v.Waiting = append(v.Waiting, holdReason)
	} else if !ok && why != "" {
		v.Waiting = append(v.Waiting, why)
	}
	for _, f := range v.Fleets {
		if f.Moving > 0 {
			v.Waiting = append(v.Waiting, fmt.Sprintf("%d devices of %s to finish their transition", f.Moving, f.Name))
		}
	}
	if v.Journal != nil && v.Journal.Error != "" {
		v.Waiting = append(v.Waiting, "the journal to accept appends (starts are held back; sheds still go out)")
	}
	v.Ready = ok
	v.MQTT = d.mqttView()
	d.view = v

	p := web.PlanView{Time: now, Values: map[string]float64{}, Constraints: map[string]web.FleetLimitView{}, Plan: map[string]map[string]int{}}
	if d.evaluated {
		for _, s := range switchd.AllSignals {
			if val, ok := ev.Values.Get(s); ok {
				p.Values[s.String()] = val
			}
		}
		p.SiteCapKW = ev.Constraints.SiteCapKW
		p.Hold, p.Curtail = ev.Constraints.Hold, ev.Curtail
		p.Fired = append([]string{}, ev.Fired...)
		p.Stale = append([]string{}, v.Stale...)
		for i := range site.Fleets {
			spec := &site.Fleets[i].Spec
			lim := web.FleetLimitView{}
			if i < len(ev.Constraints.Fleets) {
				fc := &ev.Constraints.Fleets[i]
				for _, m := range switchd.Modes {
					if fc.Forbid[m] && spec.Supports[m] {
						lim.Forbid = append(lim.Forbid, m.String())
					}
					if fc.Discourage[m] && spec.Supports[m] {
						lim.Discourage = append(lim.Discourage, m.String())
					}
					if fc.Min[m] > 0 {
						if lim.Min == nil {
							lim.Min = map[string]int{}
						}
						lim.Min[m.String()] = fc.Min[m]
					}
					if fc.Max[m] < policies.Unlimited {
						if lim.Max == nil {
							lim.Max = map[string]int{}
						}
						lim.Max[m.String()] = fc.Max[m]
					}
				}
			}
			p.Constraints[spec.Name] = lim
			plan := map[string]int{}
			for _, m := range switchd.Modes {
				if (m == switchd.ModeOff || spec.Supports[m]) && i < len(dec.Plan.Fleets) {
					plan[m.String()] = dec.Plan.Fleets[i].Count[m]
				}
			}
			p.Plan[spec.Name] = plan
		}
	}
	d.plan = p
	d.metrics.Update(&d.view, &d.plan)
}

// fleetView builds a fleet's view from obs, what its driver reported at the
// last tick (nil when it never answered), from the driver's reports that
// need no I/O (power, transition times) and from devs, its devices' last
// status (nil when the driver does not report them). The caller fills in
// the plan, the driver's health and the last decision.
func fleetView(f *config.Fleet, obs *switchd.FleetState, drv switchd.Driver, devs []switchd.DeviceStatus) web.FleetView {
	spec := &f.Spec
	fv := web.FleetView{
		Name: spec.Name, Kind: spec.Kind.String(), Driver: f.Driver, Devices: spec.Count, Observed: obs != nil,
		Modes: map[string]int{}, Target: map[string]int{}, PowerByModeKW: map[string]float64{},
		MovingTo: map[string]int{}, MovingPowerByModeKW: map[string]float64{},
		Unusable: web.UnusableView{ByReason: map[string]int{}},
	}
	for _, r := range switchd.Problems {
		fv.Unusable.ByReason[r] = 0
	}
	var steady, arriving, unusable [switchd.NumModes]int
	var arrivingKW [switchd.NumModes]float64
	powerKW := 0.0
	if obs != nil {
		for _, co := range obs.Cohorts {
			// A device in transition draws the larger of its two modes.
			kw := float64(co.Count) * spec.TransitionPowerKW(co.Mode, co.Target)
			if co.Steady() {
				steady[co.Mode] += co.Count
			} else {
				arriving[co.Target] += co.Count
				arrivingKW[co.Target] += kw
			}
			powerKW += kw
		}
		unusable = obs.Unusable.ByMode
		fv.Unusable.Total = obs.Unusable.Total()
		for r, n := range obs.Unusable.ByReason {
			fv.Unusable.ByReason[r] = n
		}
		fv.Failed, fv.Drifted = obs.Failed, obs.Drifted
	}
	for _, m := range switchd.Modes {
		if m != switchd.ModeOff && !spec.Supports[m] {
			continue
		}
		fv.Modes[m.String()] = steady[m]
		fv.Moving += arriving[m]
		fv.MovingTo[m.String()] = arriving[m]
		fv.MovingPowerByModeKW[m.String()] = arrivingKW[m]
		// Unusable devices still draw power where they were last seen;
		// devices on their way to m are not in m yet.
		fv.PowerByModeKW[m.String()] = float64(steady[m]+unusable[m]) * spec.Modes[m].PowerKW
		powerKW += float64(unusable[m]) * spec.Modes[m].PowerKW
	}
	if p, ok := drv.(switchd.PowerReporter); ok {
		fv.PowerKW = p.PowerKW()
	} else {
		fv.PowerKW = powerKW
	}
	if tr, ok := drv.(switchd.TransitionReporter); ok {
		for _, ts := range tr.Transitions() {
			if fv.Transitions == nil {
				fv.Transitions = map[string]web.TransitionView{}
			}
			fv.Transitions[ts.From.String()+"->"+ts.To.String()] = web.TransitionView{
				Count: ts.Count, P50Seconds: ts.P50.Seconds(), P95Seconds: ts.P95.Seconds(),
			}
		}
	}
	for i := range devs {
		if devs[i].Problem == "" {
			continue
		}
		if len(fv.Problems) < web.MaxProblemDevices {
			fv.Problems = append(fv.Problems, devs[i])
		}
		fv.ProblemsTotal++
	}
	return fv
}

// publishState sends the retained state topics whenever what they say has
// changed (a command, a device landing in its mode, a stale input, a new
// price), and at least once a minute otherwise. The time field alone does
// not count as a change.
func (d *daemon) publishState() {
	if d.source == nil || !d.source.Connected() {
		return
	}
	topic := d.site.Daemon.MQTT.StateTopic
	site := struct {
		Site      string             `json:"site"`
		Time      time.Time          `json:"time"`
		PowerKW   float64            `json:"power_kw"`
		SiteCapKW float64            `json:"site_cap_kw"`
		FailSafe  string             `json:"fail_safe"`
		Ready     bool               `json:"ready"`
		Fleets    map[string]any     `json:"fleets"`
		Last      *web.DecisionView  `json:"last_decision,omitempty"`
		Values    map[string]float64 `json:"values"`
		Journal   *web.JournalView   `json:"journal,omitempty"`
	}{Journal: d.view.Journal, Site: d.view.Site, PowerKW: d.view.PowerKW, SiteCapKW: d.view.SiteCapKW,
		FailSafe: d.view.FailSafe, Ready: d.view.Ready, Fleets: map[string]any{}, Values: d.plan.Values}
	if len(d.decisions) > 0 {
		site.Last = &d.decisions[0]
	}
	for _, f := range d.view.Fleets {
		site.Fleets[f.Name] = map[string]any{"modes": f.Modes, "moving": f.Moving, "power_kw": f.PowerKW, "unusable": f.Unusable.Total}
	}
	now := time.Now()
	heartbeat := now.Sub(d.lastPublish) >= time.Minute
	if heartbeat {
		d.lastPublish = now
	}
	if d.published == nil {
		d.published = map[string]string{}
	}
	// A new connection may be to a broker that restarted without its
	// retained messages: send everything again rather than wait for the
	// heartbeat.
	if since := d.source.Status().Since; !since.Equal(d.publishedOn) {
		clear(d.published)
		d.publishedOn = since
	}
	// send publishes a payload whose content (compared without its time)
	// differs from the last one sent on the topic, or on the heartbeat.
	send := func(topic string, content []byte, payload func() ([]byte, error)) {
		if !heartbeat && d.published[topic] == string(content) {
			return
		}
		b, err := payload()
		if err != nil {
			return
		}
		if err := d.source.Publish(topic, b, true); err != nil {
			d.log.Warn("publish state", zap.String("topic", topic), zap.Error(err))
			return
		}
		d.published[topic] = string(content)
	}
	if content, err := json.Marshal(site); err == nil {
		site.Time = d.view.Time
		send(topic, content, func() ([]byte, error) { return json.Marshal(site) })
	}
	for _, f := range d.view.Fleets {
		if content, err := json.Marshal(f); err == nil {
			send(topic+"/fleets/"+f.Name, content, func() ([]byte, error) { return content, nil })
		}
	}
}

// mqttView is the broker connection as of now, or nil without a broker.
func (d *daemon) mqttView() *web.MQTTView {
	if d.source == nil {
		return nil
	}
	st := d.source.Status()
	return &web.MQTTView{Broker: st.Broker, Connected: st.Connected, Since: st.Since, Attempts: st.Attempts, LastError: st.LastError}
}

// State implements web.Backend.
func (d *daemon) State() web.StateView {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.clock.Now()
	v := d.view
	// Ages move on between ticks.
	for i := range v.Signals {
		if at := v.Signals[i].At; at != nil {
			age := now.Sub(*at).Seconds()
			v.Signals[i].AgeSeconds = &age
		}
	}
	v.Time = now
	v.MQTT = d.mqttView()
	v.HA = d.haView()
	return v
}

// Plan implements web.Backend.
func (d *daemon) Plan() web.PlanView {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.plan
}

// Ready implements web.Backend: signals with a fail-safe are fresh and every
// driver answered at the last tick. A fleet with unusable devices is ready
// (its driver answered; the controller plans without those devices), and
// the reason then names them.
func (d *daemon) Ready() (bool, string) {
	d.mu.Lock()
	ok, reason := d.readyLocked(d.clock.Now())
	d.mu.Unlock()
	// With HA, leader and follower are both ready; /readyz says which.
	if r := d.haReady(); r != "" {
		reason = strings.TrimSuffix(r+"; "+reason, "; ")
	}
	return ok, reason
}

func (d *daemon) readyLocked(now time.Time) (bool, string) {
	if !d.ticked {
		return false, "controller has not run yet (waiting for signals)"
	}
	pol := d.ctl.Policy()
	snap := d.ctl.Snapshot()
	for _, s := range switchd.AllSignals {
		if pol.FailSafe[s] == policies.FailSafeNone {
			continue
		}
		age, ok := snap.Age(s, now)
		if !ok {
			return false, "no " + s.String() + " signal yet"
		}
		if d.site.MaxAge[s] > 0 && age > d.site.MaxAge[s] {
			return false, fmt.Sprintf("%s signal is stale (%s old)", s, age.Round(time.Second))
		}
	}
	var notes []string
	// A failing journal leaves the daemon ready: it still sheds, and an
	// orchestrator that pulled it would stop that too. The note is the
	// alarm (also on the page, in /api/v1/state and switchd_journal_failing).
	if since, err := d.jhealth.failing(); err != nil {
		notes = append(notes, fmt.Sprintf("journal failing since %s (%v): starts are held back, sheds still go out",
			since.UTC().Format(time.RFC3339), err))
	}
	for i := range d.health {
		h := &d.health[i]
		name := d.site.Fleets[i].Spec.Name
		if !h.stateOK {
			return false, "driver of fleet " + name + " did not answer: " + h.lastErr
		}
		if h.unusable > 0 {
			var rs []string
			for _, r := range switchd.Problems {
				if n := h.reasons[r]; n > 0 {
					rs = append(rs, fmt.Sprintf("%s %d", r, n))
				}
			}
			notes = append(notes, fmt.Sprintf("fleet %s has %d unusable devices (%s)", name, h.unusable, strings.Join(rs, ", ")))
		}
	}
	return true, strings.Join(notes, "; ")
}

// Devices implements web.Backend from the devices' status as of the last
// view refresh; it does no I/O and never calls a driver.
func (d *daemon) Devices(q web.DevicesQuery) (web.DevicesView, error) {
	fi := d.site.FleetIndex(q.Fleet)
	if fi < 0 {
		return web.DevicesView{}, fmt.Errorf("fleet %q: %w", q.Fleet, web.ErrUnknownFleet)
	}
	// The driver answers from its last poll, under its own lock: no I/O,
	// and the daemon's lock is not needed.
	var devs []switchd.DeviceStatus
	if dr, ok := d.drivers[fi].Driver.(switchd.DeviceReporter); ok {
		devs = dr.Devices()
	}
	v := web.PageDevices(devs, q)
	v.Driver = d.site.Fleets[fi].Driver
	_, v.Reported = d.drivers[fi].Driver.(switchd.DeviceReporter)
	return v, nil
}

func overrideView(o *controller.Override) web.OverrideView {
	v := web.OverrideView{ID: o.ID, Fleet: o.Fleet, Until: o.Until, Reason: o.Reason, CreatedAt: o.CreatedAt}
	if o.HasMode {
		v.Mode = o.Mode.String()
	}
	if o.HasCap {
		c := o.SiteCapKW
		v.SiteCapKW = &c
	}
	return v
}

// SetOverride implements web.Backend.
func (d *daemon) SetOverride(ctx context.Context, req web.OverrideRequest) (web.OverrideView, error) {
	if err := d.haRefuse(); err != nil {
		return web.OverrideView{}, err
	}
	dur, err := time.ParseDuration(req.Duration)
	if err != nil || dur <= 0 {
		return web.OverrideView{}, &web.RequestError{Msg: fmt.Sprintf("duration: want a positive Go duration such as 30m or 2h (got %q)", req.Duration)}
	}
	if dur > 7*24*time.Hour {
		return web.OverrideView{}, &web.RequestError{Msg: "duration: at most 168h; renew it if the situation lasts"}
	}
	now := d.clock.Now()
	o := controller.Override{Until: now.Add(dur), Reason: req.Reason, CreatedAt: now}
	switch {
	case req.SiteCapKW != nil && (req.Fleet != "" || req.Mode != ""):
		return web.OverrideView{}, &web.RequestError{Msg: "give either fleet and mode, or site_cap_kw, not both"}
	case req.SiteCapKW != nil:
		o.HasCap, o.SiteCapKW = true, *req.SiteCapKW
	default:
		m, err := switchd.ParseMode(req.Mode)
		if err != nil {
			return web.OverrideView{}, &web.RequestError{Msg: err.Error()}
		}
		o.Fleet, o.HasMode, o.Mode = req.Fleet, true, m
	}
	// The cap, fleet and mode are checked against the site there.
	d.mu.Lock()
	if err := controller.CheckOverride(d.site, &o, d.overrides, now); err != nil {
		d.mu.Unlock()
		return web.OverrideView{}, &web.RequestError{Msg: err.Error()}
	}
	d.nextID++
	o.ID = fmt.Sprintf("ov-%d-%d", now.Unix(), d.nextID)
	view := overrideView(&o)
	raw, _ := json.Marshal(view)
	if err := d.appendJournal(journal.Entry{Time: now, Kind: "override", Fleet: o.Fleet, Reason: req.Reason, Override: raw}); err != nil {
		d.mu.Unlock()
		return web.OverrideView{}, fmt.Errorf("journal: %w", err)
	}
	d.overrides = append(d.overrides, o)
	d.mu.Unlock()
	// Logged once, by the API handler, with who asked.
	d.haSaveOverrides(ctx)
	d.poke()
	return view, nil
}

// ClearOverrides implements web.Backend.
func (d *daemon) ClearOverrides(ctx context.Context, fleet string) (int, error) {
	if err := d.haRefuse(); err != nil {
		return 0, err
	}
	now := d.clock.Now()
	d.mu.Lock()
	kept := d.overrides[:0]
	var removed []controller.Override
	for _, o := range d.overrides {
		match := fleet == "" || (fleet == "site-cap" && o.HasCap) || (o.HasMode && o.Fleet == fleet)
		if match {
			removed = append(removed, o)
		} else {
			kept = append(kept, o)
		}
	}
	d.overrides = kept
	var err error
	if len(removed) > 0 {
		var es []journal.Entry
		for _, o := range removed {
			raw, _ := json.Marshal(overrideView(&o))
			es = append(es, journal.Entry{Time: now, Kind: "override_clear", Fleet: o.Fleet, Override: raw})
		}
		err = d.appendJournal(es...)
	}
	d.mu.Unlock()
	if len(removed) > 0 {
		d.haSaveOverrides(ctx)
		d.poke()
	}
	return len(removed), err
}
