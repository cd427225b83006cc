package web

import (
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchd/switchd"
)

// Metrics are the daemon's Prometheus series. Every method is safe for
// concurrent use and a no-op on a nil *Metrics, so a daemon without metrics
// passes nil.
type Metrics struct {
	// mu serialises Update, which deletes the label sets of the previous
	// snapshot that the new one no longer has.
	mu sync.Mutex

	sitePower      prometheus.Gauge
	siteCap        prometheus.Gauge
	fleetPower     *gaugeSet
	fleetDevices   *gaugeSet
	fleetMoving    *gaugeSet
	fleetFailed    *gaugeSet
	fleetTarget    *gaugeSet
	driverUp       *gaugeSet
	unusable       *gaugeSet
	transitionSec  *gaugeSet
	transitionN    *gaugeSet
	signalValue    *gaugeSet
	signalEff      *gaugeSet
	signalAge      *gaugeSet
	signalStale    *gaugeSet
	ready          prometheus.Gauge
	failSafe       prometheus.Gauge
	overrides      prometheus.Gauge
	rulesFired     prometheus.Gauge
	lastDecisionTS prometheus.Gauge

	decisions      *prometheus.CounterVec
	switches       *prometheus.CounterVec
	commandLatency *prometheus.HistogramVec
	driverErrors   *prometheus.CounterVec
	driverRequest  *prometheus.HistogramVec
	drifted        *prometheus.CounterVec
	signalAccepted *prometheus.CounterVec
	signalRejected *prometheus.CounterVec

	reloadOK   prometheus.Gauge
	reloadTS   prometheus.Gauge
	reloads    *prometheus.CounterVec
	configHash prometheus.Gauge

	journalLatency prometheus.Histogram
	journalErrors  prometheus.Counter
	journalFailing prometheus.Gauge
	mqttConnected  prometheus.Gauge
	overrideReqs   *prometheus.CounterVec

	dr drMetrics // demand response (drmetrics.go)
}

// NewMetrics creates the daemon's series, registers them on reg and sets
// switchd_build_info. It panics if reg already holds series of the same
// names (a second NewMetrics on one registry), a programming error found at
// startup.
func NewMetrics(reg prometheus.Registerer, version string) *Metrics {
	m := &Metrics{}
	var cs []prometheus.Collector
	gauge := func(name, help string) prometheus.Gauge {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
		cs = append(cs, g)
		return g
	}
	gaugeVec := func(name, help string, labels ...string) *gaugeSet {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
		cs = append(cs, v)
		return &gaugeSet{vec: v}
	}
	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		cs = append(cs, v)
		return v
	}
	histVec := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
		cs = append(cs, v)
		return v
	}

	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "switchd_build_info",
		Help:        "Always 1; the labels give the version of switchd and of Go it was built with.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	buildInfo.Set(1)
	cs = append(cs, buildInfo)

	m.sitePower = gauge("switchd_site_power_watts", "Power the whole site draws now, in watts.")
	m.siteCap = gauge("switchd_site_cap_watts", "Site power cap in force (interconnect, rule or override), in watts.")
	m.fleetPower = gaugeVec("switchd_fleet_power_watts",
		"Power a fleet draws per mode, in watts; devices in transition count under the mode they are heading to.", "fleet", "mode")
	m.fleetDevices = gaugeVec("switchd_fleet_devices", "Devices of a fleet steady in a mode (observed).", "fleet", "mode")
	m.fleetMoving = gaugeVec("switchd_fleet_devices_moving", "Devices of a fleet in transition between modes.", "fleet")
	m.fleetFailed = gaugeVec("switchd_fleet_devices_failed",
		"Devices of a fleet that failed to reach a commanded mode since the previous observation.", "fleet")
	m.fleetTarget = gaugeVec("switchd_fleet_target_devices", "Devices of a fleet the current plan wants in a mode.", "fleet", "mode")
	m.driverUp = gaugeVec("switchd_driver_up", "1 if the fleet's driver answered its last state request, else 0.", "fleet", "driver")
	m.unusable = gaugeVec("switchd_devices_unusable",
		"Devices of a fleet left out of its usable capacity until they recover, by reason (unreachable, auth, protocol, fault, stuck).",
		"fleet", "reason")
	m.transitionSec = gaugeVec("switchd_transition_seconds",
		"Measured time from command to observed arrival of a fleet's transitions, at a percentile (50 or 95) of the recent ones, in seconds.",
		"fleet", "from", "to", "percentile")
	m.transitionN = gaugeVec("switchd_transitions_measured",
		"Transitions of a fleet measured since the start (the percentiles cover the most recent ones).", "fleet", "from", "to")
	m.signalValue = gaugeVec("switchd_signal_value",
		"Latest accepted value of a signal in its own unit (price USD/MWh, grid_load MW, hashprice USD/PH/day, inference_price USD/GPU-hour, ai_demand GPUs, cp_alert probability 0-1); absent until one is received.",
		"signal")
	m.signalEff = gaugeVec("switchd_signal_effective_value",
		"Value of a signal the last evaluation used (received or fallback), in the signal's unit.", "signal")
	m.signalAge = gaugeVec("switchd_signal_age_seconds", "Age of a signal's latest accepted value, in seconds; absent until one is received.", "signal")
	m.signalStale = gaugeVec("switchd_signal_stale", "1 if a signal is stale (its latest value is older than its max_age), else 0.", "signal")
	m.ready = gauge("switchd_ready", "1 once signals are fresh and every driver answered, else 0.")
	m.failSafe = gauge("switchd_failsafe_active", "1 while stale signals impose a fail-safe (hold or curtail), else 0.")
	m.overrides = gauge("switchd_overrides_active", "Operator overrides in force.")
	m.rulesFired = gauge("switchd_rules_fired", "Rules and overrides that fired in the last evaluation.")
	m.lastDecisionTS = gauge("switchd_last_decision_timestamp_seconds",
		"Unix time of the latest decision that sent commands; 0 before the first one.")

	m.decisions = counterVec("switchd_decisions_total",
		"Controller ticks, by whether the decision sent commands (changed) or not (unchanged).", "result")
	m.switches = counterVec("switchd_device_switches_total", "Devices commanded into a mode, by fleet and target mode.", "fleet", "mode")
	m.commandLatency = histVec("switchd_command_duration_seconds",
		"Time a fleet's driver took to accept a batch of commands, in seconds.", prometheus.DefBuckets, "fleet")
	m.driverErrors = counterVec("switchd_driver_errors_total",
		"Failed driver calls, by fleet, driver, call (state or apply) and class (retriable or permanent).", "fleet", "driver", "op", "class")
	m.driverRequest = histVec("switchd_driver_request_duration_seconds",
		"Duration of driver calls, by fleet, driver and call (state or apply), in seconds.", prometheus.DefBuckets, "fleet", "driver", "op")
	m.drifted = counterVec("switchd_devices_drifted_total",
		"Devices found out of their commanded mode and commanded again, by fleet.", "fleet")
	m.signalAccepted = counterVec("switchd_signal_accepted_total", "Signal samples accepted.", "signal")
	m.signalRejected = counterVec("switchd_signal_rejected_total",
		"Signal payloads rejected (malformed, implausible, from the future), by signal and reason.", "signal", "reason")

	m.reloadOK = gauge("switchd_config_last_reload_successful", "1 if the last policy reload succeeded, else 0.")
	m.reloadTS = gauge("switchd_config_last_reload_success_timestamp_seconds", "Unix time of the last successful policy load.")
	m.reloads = counterVec("switchd_policy_reloads_total", "Policy loads and reloads, by result (success or failure).", "result")
	m.configHash = gauge("switchd_config_hash",
		"First 32 bits of the SHA-256 of the policy in force, as a number: it changes when the policy does.")

	m.journalLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "switchd_journal_append_duration_seconds",
		Help: "Time to append a record to the journal and make it durable, in seconds.",
		// fsync on a local disk: tenths of a millisecond to a second.
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 8),
	})
	m.journalErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "switchd_journal_append_errors_total",
		Help: "Journal appends that failed (while they fail, starts are held back; sheds are still sent).",
	})
	cs = append(cs, m.journalLatency, m.journalErrors)
	m.journalFailing = gauge("switchd_journal_failing",
		"1 while journal appends fail (starts are held back, sheds still go out), 0 once one succeeds again.")
	m.mqttConnected = gauge("switchd_mqtt_connected", "1 while the MQTT client is connected to its broker, else 0.")
	m.overrideReqs = counterVec("switchd_http_override_requests_total",
		"Requests to set or clear overrides, by result (created, cleared, bad_request, unauthorized, disabled, error).", "result")
	var drcs []prometheus.Collector
	m.dr, drcs = newDRMetrics()
	cs = append(cs, drcs...)

	reg.MustRegister(cs...)

	// Series with known label values exist from the start, so rate() and
	// absent() work before the first event.
	for _, r := range []string{"changed", "unchanged"} {
		m.decisions.WithLabelValues(r)
	}
	for _, r := range []string{"success", "failure"} {
		m.reloads.WithLabelValues(r)
	}
	for _, s := range switchd.AllSignals {
		m.signalAccepted.WithLabelValues(s.String())
	}
	for _, r := range []string{resultCreated, resultCleared, resultBadRequest, resultUnauthorized, resultDisabled, resultError} {
		m.overrideReqs.WithLabelValues(r)
	}
	return m
}

// Update sets the gauges from a state and plan snapshot; the daemon calls
// it after every tick. Either may be nil. Label sets of the previous
// snapshot that are gone (a signal no longer received, a mode no longer
// targeted) are removed.
func (m *Metrics) Update(s *StateView, p *PlanView) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s != nil {
		m.updateState(s)
	}
	if p != nil {
		m.updatePlan(p)
	}
	// The plan's targets are the source; a fleet's own copy stands in when
	// there is no plan yet.
	switch {
	case p != nil && p.Plan != nil:
		m.fleetTarget.begin()
		for fleet, modes := range p.Plan {
			for mode, n := range modes {
				m.fleetTarget.set(float64(n), fleet, mode)
			}
		}
		m.fleetTarget.end()
	case s != nil:
		m.fleetTarget.begin()
		for i := range s.Fleets {
			for mode, n := range s.Fleets[i].Target {
				m.fleetTarget.set(float64(n), s.Fleets[i].Name, mode)
			}
		}
		m.fleetTarget.end()
	}
}

func (m *Metrics) updateState(s *StateView) {
	m.sitePower.Set(s.PowerKW * 1000)
	m.siteCap.Set(s.SiteCapKW * 1000)
	m.ready.Set(b2f(s.Ready))
	m.failSafe.Set(b2f(s.FailSafe != "" && s.FailSafe != "none"))
	m.overrides.Set(float64(len(s.Overrides)))
	if len(s.Decisions) > 0 && !s.Decisions[0].Time.IsZero() {
		m.lastDecisionTS.Set(unixSeconds(s.Decisions[0].Time))
	}

	sets := []*gaugeSet{m.fleetPower, m.fleetDevices, m.fleetMoving, m.fleetFailed, m.driverUp, m.unusable,
		m.transitionSec, m.transitionN, m.signalValue, m.signalAge, m.signalStale}
	for _, g := range sets {
		g.begin()
	}
	for i := range s.Fleets {
		f := &s.Fleets[i]
		for mode, n := range f.Modes {
			m.fleetDevices.set(float64(n), f.Name, mode)
		}
		for mode, kw := range f.PowerByModeKW {
			m.fleetPower.set((kw+f.MovingPowerByModeKW[mode])*1000, f.Name, mode)
		}
		m.fleetMoving.set(float64(f.Moving), f.Name)
		m.fleetFailed.set(float64(f.Failed), f.Name)
		m.driverUp.set(b2f(f.DriverUp), f.Name, f.Driver)
		// Every reason, zeros included, so alerts need no absent().
		for _, reason := range switchd.Problems {
			m.unusable.set(float64(f.Unusable.ByReason[reason]), f.Name, reason)
		}
		for k, tv := range f.Transitions {
			from, to, ok := strings.Cut(k, "->")
			if !ok {
				continue
			}
			m.transitionSec.set(tv.P50Seconds, f.Name, from, to, "50")
			m.transitionSec.set(tv.P95Seconds, f.Name, from, to, "95")
			m.transitionN.set(float64(tv.Count), f.Name, from, to)
		}
	}
	for i := range s.Signals {
		sg := &s.Signals[i]
		if sg.Value != nil {
			m.signalValue.set(*sg.Value, sg.Name)
		}
		if sg.AgeSeconds != nil {
			m.signalAge.set(*sg.AgeSeconds, sg.Name)
		}
		m.signalStale.set(b2f(sg.Stale), sg.Name)
	}
	for _, g := range sets {
		g.end()
	}
}

func (m *Metrics) updatePlan(p *PlanView) {
	m.rulesFired.Set(float64(len(p.Fired)))
	m.signalEff.begin()
	for name, v := range p.Values {
		m.signalEff.set(v, name)
	}
	m.signalEff.end()
}

// Decision counts one controller tick: changed when it sent commands.
func (m *Metrics) Decision(changed bool) {
	if m == nil {
		return
	}
	r := "unchanged"
	if changed {
		r = "changed"
	}
	m.decisions.WithLabelValues(r).Inc()
}

// Switches counts n devices of a fleet commanded into mode (the target).
func (m *Metrics) Switches(fleet, mode string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.switches.WithLabelValues(label(fleet), label(mode)).Add(float64(n))
}

// CommandLatency records how long a fleet's driver took to accept commands.
func (m *Metrics) CommandLatency(fleet string, d time.Duration) {
	if m == nil {
		return
	}
	m.commandLatency.WithLabelValues(label(fleet)).Observe(seconds(d))
}

// Driver call names, the op label.
const (
	OpState = "state"
	OpApply = "apply"
)

// DriverError counts a failed driver call (op is OpState or OpApply):
// permanent when the driver marked the error so (switchd.IsPermanent),
// else retriable.
func (m *Metrics) DriverError(fleet, driver, op string, permanent bool) {
	if m == nil {
		return
	}
	class := "retriable"
	if permanent {
		class = "permanent"
	}
	m.driverErrors.WithLabelValues(label(fleet), label(driver), label(op), class).Inc()
}

// DriverRequest records the duration of one driver call (op is OpState or
// OpApply), whatever its outcome.
func (m *Metrics) DriverRequest(fleet, driver, op string, d time.Duration) {
	if m == nil {
		return
	}
	m.driverRequest.WithLabelValues(label(fleet), label(driver), label(op)).Observe(seconds(d))
}

// DriverSeries creates a fleet's driver series at zero (errors of both
// classes and calls, drifted devices), so rate() and increase() work from
// the start rather than from the first error.
func (m *Metrics) DriverSeries(fleet, driver string) {
	if m == nil {
		return
	}
	for _, op := range []string{OpState, OpApply} {
		for _, class := range []string{"retriable", "permanent"} {
			m.driverErrors.WithLabelValues(label(fleet), label(driver), op, class)
		}
	}
	m.drifted.WithLabelValues(label(fleet))
}

// Drifted counts n devices of a fleet found out of their commanded mode
// and commanded again.
func (m *Metrics) Drifted(fleet string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.drifted.WithLabelValues(label(fleet)).Add(float64(n))
}

// SignalAccepted counts an accepted sample of a signal.
func (m *Metrics) SignalAccepted(signal string) {
	if m == nil {
		return
	}
	m.signalAccepted.WithLabelValues(label(signal)).Inc()
}

// SignalRejected counts a rejected payload; reason must come from a small
// fixed set (e.g. "malformed", "out_of_range", "future"), never from the
// payload.
func (m *Metrics) SignalRejected(signal, reason string) {
	if m == nil {
		return
	}
	m.signalRejected.WithLabelValues(label(signal), label(reason)).Inc()
}

// Reload records a policy load or reload. On success sha256hex (the policy
// file's hash) and at become the hash gauge and the success timestamp; a
// failure keeps them, as the old policy stays in force.
func (m *Metrics) Reload(ok bool, sha256hex string, at time.Time) {
	if m == nil {
		return
	}
	if !ok {
		m.reloadOK.Set(0)
		m.reloads.WithLabelValues("failure").Inc()
		return
	}
	m.reloadOK.Set(1)
	m.reloadTS.Set(unixSeconds(at))
	m.reloads.WithLabelValues("success").Inc()
	if h, ok := hashGauge(sha256hex); ok {
		m.configHash.Set(h)
	}
}

// JournalAppend records one journal append and whether it failed.
func (m *Metrics) JournalAppend(d time.Duration, err error) {
	if m == nil {
		return
	}
	m.journalLatency.Observe(seconds(d))
	if err != nil {
		m.journalErrors.Inc()
		m.journalFailing.Set(1)
	} else {
		m.journalFailing.Set(0)
	}
}

// MQTTConnected records whether the MQTT client is connected.
func (m *Metrics) MQTTConnected(up bool) {
	if m == nil {
		return
	}
	m.mqttConnected.Set(b2f(up))
}

func (m *Metrics) overrideRequest(result string) {
	if m == nil {
		return
	}
	m.overrideReqs.WithLabelValues(result).Inc()
}

// hashGauge is the first 8 hex digits of a hash as a number: exact in a
// float64, and enough to see that two instances run the same policy.
func hashGauge(hexHash string) (float64, bool) {
	if len(hexHash) < 8 {
		return 0, false
	}
	v, err := strconv.ParseUint(hexHash[:8], 16, 32)
	if err != nil {
		return 0, false
	}
	return float64(v), true
}

// gaugeSet is a GaugeVec that remembers which label sets the last update
// set, so the next one can delete those it no longer has without a Reset
// (which would leave a scrape in between with no series at all).
type gaugeSet struct {
	vec  *prometheus.GaugeVec
	prev map[string][]string
	cur  map[string][]string
}

func (g *gaugeSet) begin() { g.cur = map[string][]string{} }

func (g *gaugeSet) set(v float64, lvs ...string) {
	for i := range lvs {
		lvs[i] = label(lvs[i])
	}
	g.vec.WithLabelValues(lvs...).Set(v)
	// The separator cannot occur in a label after label().
	g.cur[strings.Join(lvs, "\xff")] = lvs
}

func (g *gaugeSet) end() {
	for k, lvs := range g.prev {
		if _, ok := g.cur[k]; !ok {
			g.vec.DeleteLabelValues(lvs...)
		}
	}
	g.prev, g.cur = g.cur, nil
}

// label makes a label value valid UTF-8: client_golang panics on anything
// else, and label values come from config and views, not from code.
func label(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func seconds(d time.Duration) float64 { return max(d, 0).Seconds() }

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
