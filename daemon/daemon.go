// Package daemon is `switchd run`: the controller on the wall clock, fed by
// MQTT signals, journalled, observable over HTTP, Prometheus and MQTT state
// topics, hot-reloading its policy, and shutting down gracefully. It is the
// only place that wires the I/O packages (mqttio, journal, web) to the
// controller core; the core itself never sees them.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/controller"
	"github.com/switchd/switchd/controller/journal"
	"github.com/switchd/switchd/controller/mqttio"
	"github.com/switchd/switchd/daemon/web"
	"github.com/switchd/switchd/drivers/all"
	"github.com/switchd/switchd/policies"
	"go.uber.org/zap"
)

// WallClock is the real clock.
type WallClock struct{}

// Now implements switchd.Clock.
func (WallClock) Now() time.Time { return time.Now() }

// Options configure the daemon.
type Options struct {
	ConfigPath string
	Logger     *zap.Logger
	Registry   *prometheus.Registry // nil: a fresh one
	Version    string
	// Reload receives a value for each SIGHUP (a one-slot channel, so a
	// burst is one reload).
	Reload <-chan struct{}
	// ShutdownTimeout bounds the graceful shutdown (default 10s).
	ShutdownTimeout time.Duration
	// Ready, when set, is called once the daemon serves (HTTP address
	// bound, broker up), with the HTTP address; for tests.
	Ready func(httpAddr string)
	// Ticked, when set, is called after every tick with the number of
	// devices commanded (the drivers have accepted the commands); for
	// latency benchmarks.
	Ticked func(devicesCommanded int)
	// CrashAt, for crash tests only, kills the process with SIGKILL at one
	// point of the first tick that commands devices: "decided" (decision
	// journalled, nothing sent), "sent" (a fleet's driver accepted its
	// commands, the ack not yet journalled) or "acked" (ack journalled).
	// `switchd run` takes it from SWITCHD_TEST_CRASH_AT.
	CrashAt string
}

// Validate checks the options.
func (o *Options) Validate() error {
	if o.ConfigPath == "" {
		return errors.New("no config file")
	}
	if o.Logger == nil {
		return errors.New("no logger")
	}
	switch o.CrashAt {
	case "", "decided", "sent", "acked":
	default:
		return fmt.Errorf("crash point %q: want decided, sent or acked", o.CrashAt)
	}
	return nil
}

// Run loads the configuration and runs the daemon until ctx is done, then
// shuts down gracefully. It returns nil after a clean shutdown.
func Run(ctx context.Context, o Options) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 10 * time.Second
	}
	site, err := LoadSite(o.ConfigPath)
	if err != nil {
		return err
	}
	for _, w := range site.Warnings {
		o.Logger.Warn("config warning", zap.String("warning", w))
	}
	if site.Daemon.PolicyPath == "" {
		return fmt.Errorf("%s: no policy: set `policy: FILE` in the site file", o.ConfigPath)
	}
	pol, polHash, err := loadPolicy(site)
	if err != nil {
		return err
	}
	d := &daemon{
		o:       o,
		log:     o.Logger,
		site:    site,
		clock:   WallClock{},
		metrics: web.NewMetrics(o.Registry, o.Version),
		wake:    make(chan struct{}, 1),
		samples: make(chan switchd.Sample, 4096),
		started: time.Now(),
	}
	d.policyInfo = web.PolicyView{Source: pol.Source, SHA256: polHash, LoadedAt: d.started, Summary: pol.Summary()}
	d.metrics.Reload(true, polHash, d.started)
	d.initDR()
	return d.run(ctx, pol)
}

// daemon is one running switchd.
type daemon struct {
	o       Options
	log     *zap.Logger
	site    *config.Site
	clock   switchd.Clock
	metrics *web.Metrics
	started time.Time

	journal *journal.Journal
	jhealth journalHealth
	late    lateRecord // sent while the journal failed, journalled when it works
	broker  *mqttio.Broker
	source  *mqttio.Source
	drivers []*instrumented

	// mu guards the controller and everything the loop shares with the
	// HTTP handlers and MQTT callbacks below it.
	mu          sync.Mutex
	ctl         *controller.Controller
	overrides   []controller.Override
	nextID      int
	policyInfo  web.PolicyView
	view        web.StateView
	hist        history // the recent past for the charts; each fleet's own last decision
	plan        web.PlanView
	decisions   []web.DecisionView // newest first, bounded
	ticked      bool               // the controller has run at least once out of the startup hold
	evaluated   bool               // the controller has run at least once (shed-only during the hold)
	holdLogged  bool               // the startup hold's start has been logged (its end is logged once)
	lastPublish time.Time          // of the retained state topics' heartbeat
	published   map[string]string  // state topic → content last sent (without its time)
	publishedOn time.Time          // the broker connection (its Status.Since) published is for
	health      []fleetHealth      // per fleet, as of the last refresh
	heldLog     time.Time          // last log line about commands held back

	wake    chan struct{}       // a tick is wanted now (override, reload)
	samples chan switchd.Sample // accepted signals, from MQTT callbacks
	cadence cadenceWatch        // the loop's: warns of feeds slower than max_age
	logs    logState            // the loop's: what the log last said

	// forecasts holds the latest price forecast from MQTT until the loop
	// hands it to the controller (forecast.go).
	forecasts forecastInbox
	dr        daemonDR // demand-response events (dr.go)
	ha        daemonHA // high availability (ha.go)
}

// LoadPolicy loads the policy the site file names, as run does at start
// and on reload (switchd validate uses it).
func LoadPolicy(site *config.Site) (*policies.Policy, error) {
	pol, _, err := loadPolicy(site)
	return pol, err
}

func loadPolicy(site *config.Site) (*policies.Policy, string, error) {
	data, err := os.ReadFile(site.Daemon.PolicyPath)
	if err != nil {
		// The line to fix is the site file's policy key.
		return nil, "", &config.ConfigError{File: site.Source, Line: site.Daemon.PolicyLine, Path: "policy", Msg: err.Error()}
	}
	pol, err := policies.ParsePolicy(site.Daemon.PolicyPath, data, site)
	if err != nil {
		return nil, "", err
	}
	return pol, sha256hex(data), nil
}

func (d *daemon) run(ctx context.Context, pol *policies.Policy) (err error) {
	site := d.site
	log := d.log

	// Journal first: resume from the last commanded state.
	var rec journal.Recovery
	if p := site.Daemon.Journal.Path; p != "" {
		d.journal, rec, err = journal.OpenWith(p, log.Named("journal"), journal.Options{MaxSegmentBytes: site.Daemon.Journal.MaxSegmentBytes})
		if err != nil {
			return err
		}
		defer func() {
			if cerr := d.journal.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("journal: %w", cerr)
			}
		}()
		log.Info("journal opened", zap.String("path", p), zap.Int("entries", rec.Entries), zap.Int64("torn_bytes", rec.TornBytes))

	} else {
		log.Warn("no journal configured: decisions are not recorded and a restart starts from the drivers' state")
	}

	// Drivers. Their background work (Starter) lives until the loop has
	// ended, not just until ctx is cancelled: the last tick still polls.
	dctx, stopDrivers := context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		stopDrivers()
		d.stopDrivers()
	}()
	if err := d.startDrivers(dctx, &rec); err != nil {
		return err
	}
	leaveHA, err := d.startHA()
	if err != nil {
		return err
	}
	defer leaveHA()
	d.ctl, err = controller.New(controller.Options{Site: site, Policy: pol, Drivers: d.haDrivers(d.ifaces()), Clock: d.clock, Recorder: d, Parallel: parallel, Standby: d.standbyFunc()})
	if err != nil {
		return err
	}
	d.resume(rec.LastDecision)
	d.resumeDR(site.Daemon.Journal.Path)
	if err := d.appendJournal(journal.Entry{Time: d.clock.Now(), Kind: "start", Reason: "switchd " + d.o.Version}); err != nil {
		return err
	}

	// Embedded broker, then the signal source.
	mq := site.Daemon.MQTT
	if mq.Embedded != "" {
		var bo mqttio.BrokerOptions
		if ownsEmbedded(mq) {
			// switchd's own connection: reserve its client ID (see
			// embeddedIdentity).
			mq, bo = embeddedIdentity(mq)
		}
		embeddedAuth(&bo, site)
		d.broker, err = mqttio.StartBrokerWith(mq.Embedded, log, bo)
		if err != nil {
			return fmt.Errorf("embedded broker: %w", err)
		}
		defer d.broker.Close()
		log.Info("embedded mqtt broker listening", zap.String("addr", d.broker.Addr()))
		if mq.Broker == "" {
			mq.Broker = "tcp://" + config.DialAddr(d.broker.Addr())
		}
	}
	if mq.Broker != "" {
		so := mqttio.SourceOptions{
			MQTT: mq, Signals: site.Daemon.Signals, Clock: d.clock, Logger: log.Named("mqtt"),
			OnSample: d.onSample,
			Forecast: site.Daemon.Forecast, OnForecast: d.onForecast,
			OnReject: func(s switchd.Signal, reason string) {
				name := "unknown"
				if s < switchd.NumSignals {
					name = s.String()
				} else if s == mqttio.ForecastSignal {
					name = config.ForecastKey
				}
				d.metrics.SignalRejected(name, reason)
			},
			// The source logs connections and losses itself.
			OnConnection: d.metrics.MQTTConnected,
		}
		d.drSourceOptions(&so)
		d.source, err = mqttio.NewSource(so)
		if err != nil {
			return fmt.Errorf("mqtt: %w", err)
		}
		if err := d.source.Start(ctx); err != nil {
			return fmt.Errorf("mqtt: %w", err)
		}
		defer d.source.Close()
	} else {
		log.Warn("no mqtt broker configured: no signals will arrive")
	}

	// HTTP.
	var httpAddr string
	if l := site.Daemon.HTTP.Listen; l != "" {
		ln, err := net.Listen("tcp", l)
		if err != nil {
			return fmt.Errorf("http: %w", err)
		}
		httpAddr = ln.Addr().String()
		var srv *http.Server
		srv, ln = newHTTPServer(web.NewHandler(web.Options{
			Backend: d, Gatherer: d.o.Registry, Token: d.token, Metrics: d.metrics, Logger: log.Named("http"), Version: d.o.Version,
			Hosts: servedHosts(l, site.Daemon.HTTP.Hosts),
		}), ln, defaultHTTPLimits(), log.Named("http"))
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(ln) }()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), d.o.ShutdownTimeout)
			defer cancel()
			_ = srv.Shutdown(sctx)
			if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
				err = fmt.Errorf("http: %w", serr)
			}
		}()
		log.Info("http listening", zap.String("addr", httpAddr), zap.String("status_page", "http://"+httpAddr+"/"))
	}

	// The policy watcher and the demo replay run beside the loop.
	var wg sync.WaitGroup
	wctx, stopWorkers := context.WithCancel(ctx)
	defer func() {
		stopWorkers()
		wg.Wait()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.watchPolicy(wctx)
	}()
	if demo := site.Daemon.Demo; demo != nil && mq.Broker != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.runDemo(wctx, mq, demo)
		}()
	}

	if d.o.Ready != nil {
		d.o.Ready(httpAddr)
	}
	log.Info("switchd running", zap.String("site", site.Name), zap.Int("fleets", len(site.Fleets)), zap.String("policy", pol.Source))
	d.loop(ctx)

	// Graceful shutdown: no more signals; the loop has finished its tick,
	// so no command is in flight; journal the stop and flush.
	log.Info("shutting down")
	if err := d.appendJournal(journal.Entry{Time: d.clock.Now(), Kind: "stop", Reason: "signal"}); err != nil {
		log.Error("journal stop entry", zap.Error(err))
	}
	return nil
}

// startDrivers builds each fleet's driver, restores the journalled state
// into those that take it, and starts those with background work (ctx bounds
// that work). Drivers built before an error are in d.drivers, for
// stopDrivers.
func (d *daemon) startDrivers(ctx context.Context, rec *journal.Recovery) error {
	site, log := d.site, d.log
	for i := range site.Fleets {
		f := &site.Fleets[i]
		drv, err := all.Build(f.Driver, all.Deps{Spec: f.Spec, Devices: f.Devices, Settings: site.DriverSettings(i), Clock: d.clock, Logger: log.Named("driver").With(zap.String("fleet", f.Spec.Name))})
		if err != nil {
			return fmt.Errorf("fleet %q: driver %s: %w", f.Spec.Name, f.Driver, err)
		}
		d.drivers = append(d.drivers, &instrumented{Driver: drv, fleet: f.Spec.Name, driver: f.Driver, metrics: d.metrics})
		d.metrics.DriverSeries(f.Spec.Name, f.Driver)
		if st, ok := rec.LastState[f.Spec.Name]; ok {
			if r, ok := drv.(switchd.Restorer); ok {
				var counts [switchd.NumModes]int
				for m, n := range st.Counts {
					if mode, err := switchd.ParseMode(m); err == nil {
						counts[mode] = n
					}
				}
				if err := r.Restore(counts, st.Time); err != nil {
					log.Warn("cannot restore journalled state", zap.String("fleet", f.Spec.Name), zap.Error(err))
				} else {
					log.Info("fleet resumed from journal", zap.String("fleet", f.Spec.Name), zap.Any("counts", st.Counts))
				}
			}
		}
		if s, ok := drv.(switchd.Starter); ok {
			if err := s.Start(ctx); err != nil {
				return fmt.Errorf("fleet %q: driver %s: start: %w", f.Spec.Name, f.Driver, err)
			}
		}
	}
	d.health = make([]fleetHealth, len(site.Fleets))
	return nil
}

// ifaces returns the wrapped drivers, as the controller takes them.
func (d *daemon) ifaces() []switchd.Driver {
	out := make([]switchd.Driver, len(d.drivers))
	for i, in := range d.drivers {
		out[i] = in
	}
	return out
}

// stopDrivers releases the drivers' resources, once the loop has ended.
func (d *daemon) stopDrivers() {
	for _, in := range d.drivers {
		if s, ok := in.Driver.(switchd.Stopper); ok {
			s.Stop()
		}
	}
}

// loop ticks the controller on signal changes, on its own wake-ups and on
// the configured tick, until ctx is done.
func (d *daemon) loop(ctx context.Context) {
	tickEvery := d.site.Daemon.Tick
	if tickEvery <= 0 {
		tickEvery = 10 * time.Second
	}
	ticker := time.NewTicker(tickEvery)
	defer ticker.Stop()
	wakeTimer := time.NewTimer(time.Hour)
	defer wakeTimer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-d.samples:
			d.mu.Lock()
			d.ctl.Observe(s)
			d.cadence.observe(s, &d.site.MaxAge, d.log)
			// Coalesce a burst of samples into one evaluation.
			for drained := false; !drained; {
				select {
				case s := <-d.samples:
					d.ctl.Observe(s)
					d.cadence.observe(s, &d.site.MaxAge, d.log)
				default:
					drained = true
				}
			}
			d.mu.Unlock()
		case ev := <-d.dr.in:
			d.addDR(ev)
		case <-ticker.C:
		case <-wakeTimer.C:
		case <-d.wake:
		}
		d.takeForecast()
		// A tick under way when shutdown starts finishes its commands
		// (each driver call bounded by driverCallTimeout) rather than
		// being cut off half-sent.
		next := d.tick(context.WithoutCancel(ctx))
		wakeTimer.Reset(next)
	}
}

// onSample is the MQTT callback: hand the sample to the loop.
func (d *daemon) onSample(s switchd.Sample) {
	select {
	case d.samples <- s:
		d.metrics.SignalAccepted(s.Signal.String())
	default:
		// The loop is far behind; a newer sample will follow. Count it as
		// rejected rather than block the MQTT client.
		d.metrics.SignalRejected(s.Signal.String(), "overload")
	}
}

// poke asks the loop for a tick now.
func (d *daemon) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// tick runs one controller cycle and updates the views, metrics and state
// topics. It returns how long until the controller next wants to run.
// During the startup hold (startupHold) the cycle is shed-only: the cap, the
// rules' forbids and the operator's overrides are kept from the first tick,
// but nothing starts or switches on a missing input.
//
// The driver calls (each bounded by driverCallTimeout, fleets in parallel)
// happen outside mu, so the HTTP handlers keep serving the last views while
// a slow fleet is polled. Only this goroutine touches the controller while
// Tick runs; the handlers read the views, the policy pointer (atomic) and
// the signal snapshot (written only by this goroutine, between ticks).
func (d *daemon) tick(ctx context.Context) time.Duration {
	d.mu.Lock()
	now := d.clock.Now()
	hold, why := d.startupHold(now)
	given := append([]controller.Override(nil), d.overrides...)
	d.ctl.SetOverrides(given)
	d.mu.Unlock()

	err := d.ctl.TickWith(ctx, controller.TickOptions{ShedOnly: hold > 0})

	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		return time.Second
	}
	d.evaluated = true
	d.logHold(now, hold, why)
	if hold == 0 {
		d.ticked = true
	}
	d.expireOverrides(now, given)
	changed, held, commanded := false, 0, 0
	// Driver errors only: the controller reports journal failures through
	// RecordErr, and the wrapper has counted these.
	d.logDriverErrors(now, d.ctl.Reports())
	d.logEvaluation()
	for i, r := range d.ctl.Reports() {
		in := d.drivers[i]
		if in.stateOK {
			d.metrics.Drifted(in.fleet, d.ctl.Observed(i).Drifted)
		}
		for _, c := range r.Commands {
			d.metrics.Switches(in.fleet, c.To.String(), c.Count)
			changed = true
			commanded += c.Count
		}
		for _, c := range r.Held {
			held += c.Count
		}
	}
	if held > 0 && now.Sub(d.heldLog) >= journalLogEvery {
		d.heldLog = now
		d.log.Warn("commands held back: the journal cannot record them", zap.Int("devices", held), zap.Error(d.ctl.RecordErr()))
	}
	d.metrics.Decision(changed)
	if d.o.Ticked != nil {
		d.o.Ticked(commanded)
	}
	if changed || held > 0 {
		d.noteDecision(now)
		d.logDecision()
	}
	d.refreshViews(now, why)
	d.refreshDR()
	d.publishState()
	next := time.Minute
	if w := d.ctl.NextWake(); !w.IsZero() {
		next = max(w.Sub(d.clock.Now()), time.Millisecond)
	}
	if hold > 0 {
		next = min(next, hold)
	}
	return next
}

// resume gives the controller the inputs the journal's last decision was
// made on, with their sample times, where they are still within their
// max_age: the restarted daemon then decides on what the running one
// decided on (a value is never made to look fresher than it is), and not on
// a fallback in the seconds before the feed's next sample arrives.
func (d *daemon) resume(last journal.Entry) {
	now := d.clock.Now()
	var resumed []zap.Field
	for name, in := range last.Inputs {
		s, err := switchd.ParseSignal(name)
		if err != nil || in.Time.After(now) || now.Sub(in.Time) >= d.site.MaxAge[s] {
			continue
		}
		d.ctl.Observe(switchd.Sample{Signal: s, Value: in.Value, Time: in.Time})
		resumed = append(resumed, zap.Float64(name, in.Value), zap.Duration(name+"_age", now.Sub(in.Time).Round(time.Second)))
	}
	if len(resumed) > 0 {
		d.log.Info("inputs resumed from the journal's last decision", resumed...)
	}
}

// startupHold keeps the controller to shed-only ticks right after a start
// until the signals it depends on (those with a fail-safe) have arrived, or
// until the longest of their max ages has passed: a restart must not flip
// every device to off just because no price has arrived yet in the first
// second, nor start any. Sheds the cap, a rule's forbid, a demand-response
// event or an override requires go out all the same (controller.TickOptions).
// Inputs the last decision had are resumed from the journal (resume), so
// this waits only for those it has no fresh value of (none, or a stale one
// such as a retained bare number, which comes dated past max_age). It
// returns how long the hold may last yet and what it waits for, or zero.
func (d *daemon) startupHold(now time.Time) (time.Duration, string) {
	if d.ticked {
		return 0, ""
	}
	pol := d.ctl.Policy()
	snap := d.ctl.Snapshot()
	var wait time.Duration
	var missing []string
	for _, s := range switchd.AllSignals {
		if pol.FailSafe[s] == policies.FailSafeNone {
			continue
		}
		// A value counts once it is fresh: a retained bare number, dated
		// past max_age on arrival (mqttio.RetainedUntimed), is no better
		// than none.
		if age, ok := snap.Age(s, now); ok && (d.site.MaxAge[s] <= 0 || age <= d.site.MaxAge[s]) {
			continue
		}
		left := d.started.Add(d.site.MaxAge[s]).Sub(now)
		if left <= 0 {
			continue // given up on: its fail-safe applies
		}
		wait = max(wait, left)
		missing = append(missing, s.String())
	}
	if len(missing) == 0 {
		return 0, ""
	}
	return wait, "the first " + strings.Join(missing, ", ") + " signal since the start (at most its max_age; until then only sheds the cap requires go out)"
}

// logHold says once when the startup hold begins (what it waits for, for
// how long at most) and once when it ends, so an operator watching the log
// after a restart knows why nothing but sheds moved.
func (d *daemon) logHold(now time.Time, hold time.Duration, why string) {
	switch {
	case hold > 0 && !d.holdLogged:
		d.holdLogged = true
		d.log.Info("startup hold: only sheds the cap requires go out", zap.String("waiting_for", why),
			zap.Duration("at_most", hold.Round(time.Second)))
	case hold == 0 && d.holdLogged && !d.ticked:
		d.log.Info("startup hold over: deciding on the inputs", zap.Duration("held", now.Sub(d.started).Round(time.Second)))
	}
}

// crashPoint kills the process if the crash test asked for this point.
func (d *daemon) crashPoint(at string) {
	if d.o.CrashAt == at {
		d.log.Warn("crash test: killing the process", zap.String("at", at))
		_ = d.log.Sync()
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}

// token returns the override bearer token from the configured file or
// environment variable, read per request so a rotated file works; a file
// emptied or cut short since the start is an error, never "overrides off".
func (d *daemon) token() (string, error) {
	return d.site.Daemon.HTTP.Token()
}
