package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/controller/journal"
	"github.com/switchd/switchd/drivers/luxos/luxosfake"
)

// Options configure a run.
type Options struct {
	Duration time.Duration // how long faults are injected
	Seed     int64         // the schedule's seed
	Devices  int           // fake LuxOS miners
	Dir      string        // working directory ("" = temporary)
	Keep     bool          // keep the working directory
	Bin      string        // a built switchd ("" = built here)
	Log      io.Writer     // progress lines (nil = none)
	// NoFaults publishes prices and checks, injecting nothing.
	NoFaults bool
	// PolicyExtra is appended to the generated policy: the checker's own
	// test gives it a rule that mines whatever the price, and expects
	// violations.
	PolicyExtra string
}

// The site the run generates. Short times keep the run's windows short:
// what is checked is that switchd keeps to them, whatever they are.
const (
	tick       = time.Second
	priceAge   = 10 * time.Second // signals.price.max_age
	maxFuture  = 5 * time.Second  // signals.price.max_future
	hashprice  = 48.0             // policy fallback, USD/PH/day
	minerKW    = 2.76
	minerTHs   = 120.0
	devTimeout = 2 * time.Second // the driver's per-request timeout
	// faultGrace is how long a device that was faulted (timing out,
	// lying) stays out of the device invariants after the fault ends: the
	// daemon must first poll it again (a tick, a request timeout) and then
	// act on what it sees (a tick).
	faultGrace = 3*tick + 2*devTimeout
	// capAllow is how long real site power may stay above the cap: a
	// device the daemon has just learnt about is shed on the next tick
	// (mining->off takes 2 s here), plus a poll.
	capAllow = 3*tick + 2*time.Second + devTimeout
	// breakevenAllow is the price invariant's window: the price's max_age
	// and a tick (a price the daemon missed goes stale and the fail-safe
	// curtails), plus a second for the checker's own sampling.
	breakevenAllow = priceAge + tick + time.Second
)

// Fault kinds, in the report's order.
var faultKinds = []string{
	"broker_restart", "junk_payload", "oversized_payload", "future_far_payload", "future_near_payload",
	"duplicate_payload", "retained_stale_price", "sigkill_restart", "restart_above_cap", "disk_full", "device_timeout", "device_lie",
}

// Invariant names, in the report's order.
var invariantNames = []string{
	"site power <= cap (beyond the ramp window)",
	"no mining above breakeven (beyond max_age+tick)",
	"daemon never exits on its own",
	"daemon healthy again after each restart",
	"journal verify intact at the end",
	"every command that changed a device is journalled (at or before it)",
	"journal alarm clears by itself once the disk is freed",
	"only sheds commanded in a startup hold (journal)",
}

// invariant is one invariant's tally.
type invariant struct {
	checks     int
	violations int
	examples   []string
}

// Report is what a run injected and what held.
type Report struct {
	Seed       int64
	Duration   time.Duration
	Devices    int
	CapKW      float64
	Breakeven  float64
	DiskNotice string
	Faults     map[string]int
	Inv        map[string]*invariant
	// Figures.
	Prices      int           // prices published (delivered to the broker)
	Restarts    int           // daemon restarts after SIGKILL
	MaxRecover  time.Duration // longest SIGKILL -> healthy again
	DiskFullFor time.Duration // total time the journal's disk was full
	// Of the full-disk spells: those in which /readyz showed the journal
	// alarm (the daemon tried to append meanwhile), those where it had not
	// cleared 30 s after the disk was freed, and the slowest clear.
	DiskAlarmSeen, DiskAlarmStuck int
	MaxAlarmClear                 time.Duration
	MaxOverCap                    time.Duration // longest spell above the cap while the daemon ran (any, allowed or not)
	// Of the restart_above_cap faults: those that started the daemon with
	// the site above the cap, those of them where the devices were under
	// it before the feed spoke again (in the startup hold), and the
	// slowest start → under the cap; and the journal's decisions made in
	// the startup hold.
	HoldAbove, HoldShed int
	MaxHoldShed         time.Duration
	HoldDecisions       int
	MaxMiningAbove      time.Duration // longest a device mined above breakeven (window as checked)
	CommandsApplied     map[string]int
	CommandsLogged      map[string]int
	// CommandsRepeated counts commands a device applied that did not
	// change it (re-sent after a device lied): not counted as applied.
	CommandsRepeated int
	// CommandsAfterFault counts commands that changed a device just after
	// a fault on it (re-sent to enforce the journalled target).
	CommandsAfterFault int
	JournalEntries     int
	// Rejected is the daemon's own switchd_signal_rejected_total by
	// reason, read before each kill and at the end, summed.
	Rejected        map[string]float64
	JournalSegments int
}

// Violations is the total count of invariant violations.
func (r *Report) Violations() int {
	n := 0
	for _, v := range r.Inv {
		n += v.violations
	}
	return n
}

// Print writes the report's tables.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "chaos: seed %d, %s of faults, %d fake LuxOS miners, cap %.1f kW, breakeven %.2f USD/MWh\n",
		r.Seed, r.Duration, r.Devices, r.CapKW, r.Breakeven)
	if r.DiskNotice != "" {
		fmt.Fprintln(w, "notice:", r.DiskNotice)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "fault\tinjected\t")
	for _, k := range faultKinds {
		fmt.Fprintf(tw, "%s\t%d\t\n", k, r.Faults[k])
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "invariant\tchecks\tviolations\t")
	for _, k := range invariantNames {
		v := r.Inv[k]
		fmt.Fprintf(tw, "%s\t%d\t%d\t\n", k, v.checks, v.violations)
	}
	_ = tw.Flush()
	for _, k := range invariantNames {
		for _, e := range r.Inv[k].examples {
			fmt.Fprintf(w, "VIOLATION %s: %s\n", k, e)
		}
	}
	fmt.Fprintf(w, "\nfigures: %d prices published; %d SIGKILL restarts, slowest back to healthy %s; disk full for %s in all;\n",
		r.Prices, r.Restarts, r.MaxRecover.Round(time.Millisecond), r.DiskFullFor.Round(time.Second))
	var reasons []string
	for k, v := range r.Rejected {
		if v > 0 {
			reasons = append(reasons, fmt.Sprintf("%s %g", k, v))
		}
	}
	sort.Strings(reasons)
	fmt.Fprintf(w, "payloads the daemon rejected (its own counter, summed over restarts): %s;\n", strings.Join(reasons, ", "))
	if r.Faults["disk_full"] > 0 {
		fmt.Fprintf(w, "disk full %d times: the journal alarm showed on /readyz in %d (the others had no append to fail), cleared by itself in all but %d, slowest %s after space came back and a cheap price was published;\n",
			r.Faults["disk_full"], r.DiskAlarmSeen, r.DiskAlarmStuck, r.MaxAlarmClear.Round(time.Millisecond))
	}
	if n := r.Faults["restart_above_cap"]; n > 0 {
		fmt.Fprintf(w, "restarts with the feed silent %d: above the cap at the start in %d, under it before the feed spoke again (startup hold) in %d, slowest start → under the cap %s; %d decisions journalled in a startup hold;\n",
			n, r.HoldAbove, r.HoldShed, r.MaxHoldShed.Round(time.Millisecond), r.HoldDecisions)
	}
	fmt.Fprintf(w, "longest spell above the cap while the daemon ran %s (allowed %s); longest a checked device mined above breakeven %s (allowed %s);\n",
		r.MaxOverCap.Round(time.Millisecond), capAllow, r.MaxMiningAbove.Round(time.Millisecond), breakevenAllow)
	fmt.Fprintf(w, "commands that changed a device: sleep %d, wakeup %d (and %d re-sent to a device already there, %d re-sent after a fault on it, each agreeing with the journalled plan); journalled: to off %d, to mining %d; journal %d entries in %d segment(s)\n",
		r.CommandsApplied["sleep"], r.CommandsApplied["wakeup"], r.CommandsRepeated, r.CommandsAfterFault, r.CommandsLogged["sleep"], r.CommandsLogged["wakeup"],
		r.JournalEntries, r.JournalSegments)
}

func (r *Report) violate(name, format string, a ...any) {
	v := r.Inv[name]
	v.violations++
	if len(v.examples) < 5 {
		v.examples = append(v.examples, fmt.Sprintf(format, a...))
	}
}

// run is one chaos run's state.
type run struct {
	o      Options
	rng    *rand.Rand // the fault schedule's (the injecting goroutine's)
	prng   *rand.Rand // the publisher's prices
	round  []string   // fault kinds left in this round
	force  chan bool  // asks the publisher for a cheap (false) or dear (true) price now
	dir    string
	bin    string
	cfg    string
	jpath  string
	jdir   string
	mqport int
	hport  int
	topic  string
	logf   func(format string, a ...any)

	miners []*luxosfake.Miner
	addrs  []string

	mu  sync.Mutex
	rep *Report
	// The truth, as published: the last price delivered to the broker
	// and since when the price has been above breakeven (zero: it is not).
	price       float64
	lastPayload string
	aboveSince  time.Time
	delivered   time.Time // when the broker took the last price
	// The publisher publishes nothing before pauseUntil (a silent feed).
	pauseUntil time.Time
	// When the daemon last (re)started (in the future while the injector
	// keeps it down: nothing is asked of it meanwhile); device fault state.
	daemonStart time.Time
	devFault    []bool
	devClear    []time.Time
	faults      [][]span // per device
	// A grace window after which capacity changes are checked again.
	capReset time.Time
	applied  []appliedCmd

	broker *proc
	daemon *proc
	diskOK bool
}

type appliedCmd struct {
	at      time.Time
	dev     int
	action  string
	changed bool // the device was not in that state already
}

// span is when a device was faulted (end zero: still is).
type span struct{ start, end time.Time }

// proc is a child process and whether its exit was asked for.
type proc struct {
	cmd    *exec.Cmd
	done   chan struct{}
	killed atomic.Bool // its exit was asked for
	err    error
}

// Run runs the chaos test and returns its report; err is for a run that
// could not be set up (no broker, a build failure), not for violations.
func Run(o Options) (*Report, error) {
	if o.Devices <= 0 {
		o.Devices = 16
	}
	if o.Duration <= 0 {
		o.Duration = time.Minute
	}
	r := &run{o: o, force: make(chan bool, 1), rng: rand.New(rand.NewPCG(uint64(o.Seed), 0x5eed)), prng: rand.New(rand.NewPCG(uint64(o.Seed), 0x9a1ce))}
	var logMu sync.Mutex // goroutines (publisher, injector, checker) share o.Log
	r.logf = func(format string, a ...any) {
		if o.Log != nil {
			logMu.Lock()
			defer logMu.Unlock()
			fmt.Fprintf(o.Log, "%s "+format+"\n", append([]any{time.Now().UTC().Format("15:04:05.000")}, a...)...)
		}
	}
	r.rep = &Report{Seed: o.Seed, Duration: o.Duration, Devices: o.Devices, Faults: map[string]int{}, Inv: map[string]*invariant{},
		CommandsApplied: map[string]int{}, CommandsLogged: map[string]int{}, Rejected: map[string]float64{}}
	for _, k := range invariantNames {
		r.rep.Inv[k] = &invariant{}
	}
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "switchd-chaos-")
		if err != nil {
			return nil, err
		}
		dir = d
		if !o.Keep {
			defer os.RemoveAll(dir)
		}
	}
	r.dir = dir
	defer r.cleanup()
	if err := r.setup(); err != nil {
		return nil, err
	}
	r.loop()
	r.finish()
	return r.rep, nil
}

func (r *run) setup() error {
	var err error
	if r.bin = r.o.Bin; r.bin == "" {
		r.bin = filepath.Join(r.dir, "switchd")
		r.logf("building switchd")
		out, err := exec.Command("go", "build", "-o", r.bin, "github.com/switchd/switchd/cmd/switchd").CombinedOutput()
		if err != nil {
			return fmt.Errorf("go build: %v\n%s", err, out)
		}
	}
	if _, err := exec.LookPath("mosquitto_pub"); err != nil {
		return fmt.Errorf("mosquitto_pub not found (install mosquitto-clients): %w", err)
	}
	if r.mqport, err = freePort(); err != nil {
		return err
	}
	if r.hport, err = freePort(); err != nil {
		return err
	}
	if err := r.startBroker(); err != nil {
		return err
	}
	r.setupDisk()
	if err := r.startMiners(); err != nil {
		return err
	}
	if err := r.writeSite(); err != nil {
		return err
	}
	// The first price before the daemon starts: it decides on it at once.
	r.publishPrice(r.nextPrice(r.prng, false))
	return r.startDaemon()
}

// setupDisk mounts a small tmpfs for the journal, so that the disk can be
// filled; without root, the journal lives in the working directory and the
// full-disk fault is left out, with a notice.
func (r *run) setupDisk() {
	r.jdir = filepath.Join(r.dir, "jfs")
	_ = os.MkdirAll(r.jdir, 0o750)
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m,mode=0750", "tmpfs", r.jdir).CombinedOutput()
	if err != nil {
		r.rep.DiskNotice = fmt.Sprintf("full-disk fault skipped: cannot mount a tmpfs for the journal (%v: %s)", err, strings.TrimSpace(string(out)))
		r.logf("%s", r.rep.DiskNotice)
	} else {
		r.diskOK = true
	}
	r.jpath = filepath.Join(r.jdir, "journal.log")
}

func (r *run) cleanup() {
	for _, m := range r.miners {
		_ = m.Close()
	}
	if r.daemon != nil {
		r.daemon.kill(syscall.SIGKILL)
	}
	if r.broker != nil {
		r.broker.kill(syscall.SIGKILL)
	}
	if r.diskOK {
		_ = os.Remove(filepath.Join(r.jdir, "ballast"))
		if r.o.Keep {
			_ = exec.Command("sh", "-c", fmt.Sprintf("cp -a %s/. %s/journal-copy/ 2>/dev/null || (mkdir -p %s/journal-copy && cp -a %s/. %s/journal-copy/)",
				r.jdir, r.dir, r.dir, r.jdir, r.dir)).Run()
		}
		_ = exec.Command("umount", r.jdir).Run()
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitPort(port int, up bool, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
		}
		if (err == nil) == up {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func startProc(log string, name string, args ...string) (*proc, error) {
	f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// kill signals the process and waits for it to exit.
func (p *proc) kill(sig syscall.Signal) {
	p.killed.Store(true)
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (r *run) startBroker() error {
	conf := filepath.Join(r.dir, "mosquitto.conf")
	lines := []string{fmt.Sprintf("listener %d 127.0.0.1", r.mqport), "persistence false", "allow_anonymous true", "log_dest stderr"}
	if u, err := user.Current(); err == nil {
		lines = append(lines, "user "+u.Username)
	}
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/mosquitto"); serr != nil {
			return fmt.Errorf("mosquitto not found (install mosquitto): %w", err)
		}
		bin = "/usr/sbin/mosquitto"
	}
	p, err := startProc(filepath.Join(r.dir, "mosquitto.log"), bin, "-c", conf)
	if err != nil {
		return err
	}
	r.broker = p
	if !waitPort(r.mqport, true, 10*time.Second) {
		return errors.New("mosquitto did not listen within 10s (see mosquitto.log)")
	}
	return nil
}

func (r *run) startMiners() error {
	oct := 100 + os.Getpid()%100
	r.devFault = make([]bool, r.o.Devices)
	r.devClear = make([]time.Time, r.o.Devices)
	r.faults = make([][]span, r.o.Devices)
	for i := 0; i < r.o.Devices; i++ {
		addr := fmt.Sprintf("127.%d.177.%d", oct, i+1)
		m := luxosfake.New(luxosfake.Options{
			WakeRamp: time.Second, ProfileRamp: time.Second, RebootDelay: 5 * time.Second,
			OnCurtail: func(action string, changed bool) {
				// Called under the miner's lock; r.mu is never held
				// while calling into a miner.
				r.mu.Lock()
				r.applied = append(r.applied, appliedCmd{at: time.Now(), dev: i, action: action, changed: changed})
				r.mu.Unlock()
			},
		})
		if err := m.Start(addr + ":4028"); err != nil {
			return fmt.Errorf("fake miner at %s: %w (loopback addresses beyond 127.0.0.1 needed)", addr, err)
		}
		r.miners = append(r.miners, m)
		r.addrs = append(r.addrs, addr)
	}
	return nil
}

func (r *run) writeSite() error {
	// The cap binds: about 70% of the fleet may mine at once.
	capKW := math.Floor(float64(r.o.Devices)*minerKW*0.7*10) / 10
	site := fmt.Sprintf(`site: {name: chaos, timezone: UTC, power_cap_kw: %g}
policy: policy.yaml
tick: %s
mqtt: {broker: "tcp://127.0.0.1:%d", client_id: switchd-chaos}
signals:
  price: {max_age: %s, max_future: %s}
http: {listen: "127.0.0.1:%d"}
journal: {path: %s, max_segment_mb: 1}
fleets:
  - name: luxos
    kind: asic
    devices: [%s]
    driver: luxos
    settings: {timeout: %s, grace: 3s}
    modes: {off: {power_kw: 0.022}, mining: {power_kw: %g, hashrate_ths: %g}}
    transitions: {off->mining: 2s, mining->off: 2s}
`, capKW, tick, r.mqport, priceAge, maxFuture, r.hport, r.jpath, strings.Join(r.addrs, ", "), devTimeout, minerKW, minerTHs)
	policy := fmt.Sprintf(`fallbacks: {hashprice_usd_ph_day: %g}
hysteresis_usd_mwh: 0
fail_safe: {price: curtail}
`, hashprice) + r.o.PolicyExtra
	r.cfg = filepath.Join(r.dir, "site.yaml")
	if err := os.WriteFile(r.cfg, []byte(site), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(r.dir, "policy.yaml"), []byte(policy), 0o600); err != nil {
		return err
	}
	s, err := config.LoadSite(r.cfg)
	if err != nil {
		return err
	}
	var v switchd.Values
	v.V[switchd.SignalHashprice], v.Present[switchd.SignalHashprice] = hashprice, true
	r.rep.CapKW = s.PowerCapKW
	r.rep.Breakeven = s.Fleets[0].Spec.BreakevenUSDPerMWh(switchd.ModeMining, &v)
	r.topic = "switchd/chaos/signals/price"
	return nil
}

func (r *run) startDaemon() error {
	p, err := startProc(filepath.Join(r.dir, "switchd.log"), r.bin, "run", "--config", r.cfg, "--log-level", "debug")
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.daemon = p
	r.daemonStart = time.Now()
	// The cap window starts with the process: during its startup hold (no
	// price it may use yet) the daemon sends the sheds the cap requires
	// all the same, only nothing else.
	r.capReset = r.daemonStart
	r.mu.Unlock()
	if !r.waitHealthy(30 * time.Second) {
		return errors.New("switchd did not answer /healthz within 30s (see switchd.log)")
	}
	return nil
}

func (r *run) waitHealthy(within time.Duration) bool {
	c := http.Client{Timeout: time.Second}
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", r.hport))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// pub publishes one payload with mosquitto_pub (QoS 1): nil means the
// broker took it.
func (r *run) pub(topic, payload string, retain bool) error {
	args := []string{"-h", "127.0.0.1", "-p", fmt.Sprint(r.mqport), "-q", "1", "-t", topic, "-i", fmt.Sprintf("chaos-pub-%d", time.Now().UnixNano())}
	if retain {
		args = append(args, "-r")
	}
	// The client ID only has to be unique: the time will do (the
	// seeded sources stay the schedule's and the prices').
	if payload == "" {
		args = append(args, "-n") // a null message: retained, it clears the topic's
	} else {
		args = append(args, "-s") // payload on stdin: oversized ones too
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "mosquitto_pub", args...)
	cmd.Stdin = strings.NewReader(payload)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// nextPrice draws a price away from breakeven (a price within a few
// USD/MWh of it is a coin toss, not a test): cheap or dear, now and then a
// spike.
func (r *run) nextPrice(rng *rand.Rand, dear bool) float64 {
	be := r.rep.Breakeven
	if dear {
		if rng.Float64() < 0.1 {
			return math.Round(1500 + rng.Float64()*3000)
		}
		return math.Round(be + 15 + rng.Float64()*250)
	}
	return math.Round(5 + rng.Float64()*(be-20))
}

// publishPrice publishes a timestamped price and, once the broker took it,
// makes it the truth.
func (r *run) publishPrice(v float64) {
	payload := fmt.Sprintf(`{"ts": %q, "value": %g}`, time.Now().UTC().Format(time.RFC3339Nano), v)
	r.deliver(payload, v, false)
}

func (r *run) deliver(payload string, v float64, retain bool) {
	if err := r.pub(r.topic, payload, retain); err != nil {
		r.logf("publish %s: %v (the broker may be down; the truth is unchanged)", payload, err)
		return
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rep.Prices++
	r.price = v
	r.lastPayload = payload
	r.delivered = now
	if v > r.rep.Breakeven {
		if r.aboveSince.IsZero() {
			r.aboveSince = now
		}
	} else {
		r.aboveSince = time.Time{}
	}
}

// loop publishes prices, injects faults and checks invariants until the
// duration is over.
func (r *run) loop() {
	end := time.Now().Add(r.o.Duration)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.checker(stop) }()
	go func() { defer wg.Done(); r.publisher(stop) }()
	r.logf("faults for %s, seed %d", r.o.Duration, r.o.Seed)
	// A run injects every kind at least once, whatever its duration: a
	// first round that runs long (two slow disk-full spells, a slow
	// restart) is finished past the end rather than left out.
	for time.Now().Before(end) || (!r.o.NoFaults && r.firstRoundLeft()) {
		time.Sleep(time.Duration(1000+r.rngInt(2000)) * time.Millisecond)
		if time.Now().After(end) && (r.o.NoFaults || !r.firstRoundLeft()) {
			break
		}
		if !r.o.NoFaults {
			r.inject()
		}
	}
	// Let the last faults end and the daemon settle before the last checks.
	time.Sleep(faultGrace + 2*time.Second)
	close(stop)
	wg.Wait()
}

// publisher publishes a new price every one to four seconds, switching
// between cheap and dear now and then.
func (r *run) publisher(stop chan struct{}) {
	dear := false
	for {
		select {
		case <-stop:
			return
		case dear = <-r.force:
		case <-time.After(time.Duration(1000+r.prng.IntN(3000)) * time.Millisecond):
			if r.prng.Float64() < 0.12 {
				dear = !dear
			}
		}
		r.mu.Lock()
		silent := time.Now().Before(r.pauseUntil)
		r.mu.Unlock()
		if silent {
			continue
		}
		r.publishPrice(r.nextPrice(r.prng, dear))
	}
}

func (r *run) rngInt(n int) int { return r.rng.IntN(n) }

// firstRoundLeft reports whether a kind of fault this run can inject has
// not been injected yet.
func (r *run) firstRoundLeft() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range faultKinds {
		if r.rep.Faults[k] == 0 && (k != "disk_full" || r.diskOK) {
			return true
		}
	}
	return false
}

// junk payloads: none of them is a valid price.
var junk = []string{
	"", "abc", "{", "}", "[1,2]", `"42"`, "true", "null", "NaN", "Infinity", "1e999", "-1e999",
	`{"value": 42}`, `{"ts": "yesterday", "value": 42}`, `{"ts": "2024-01-01T00:00:00", "value": 42}`,
	`{"ts": 12, "value": 42}`, `{"value": "42", "ts": "2024-01-01T00:00:00Z"}`, "\x00\x01\x02\xff",
	"42 43", "0x2A", "{\"ts\": \"2024-01-01T00:00:00Z\", \"value\": }",
}

func (r *run) inject() {
	// Rounds of every kind once, in a random order: a short run sees
	// each kind, a long one a random mix.
	if len(r.round) == 0 {
		for _, i := range r.rng.Perm(len(faultKinds)) {
			if k := faultKinds[i]; k != "disk_full" || r.diskOK {
				r.round = append(r.round, k)
			}
		}
	}
	kind := r.round[0]
	r.round = r.round[1:]
	r.mu.Lock()
	r.rep.Faults[kind]++
	last := r.lastPayload
	r.mu.Unlock()
	r.logf("inject %s", kind)
	switch kind {
	case "broker_restart":
		r.broker.kill(syscall.SIGKILL)
		time.Sleep(time.Duration(500+r.rngInt(4000)) * time.Millisecond)
		if err := r.startBroker(); err != nil {
			r.logf("broker restart: %v", err)
		}
	case "junk_payload":
		for n := 1 + r.rngInt(5); n > 0; n-- {
			j := junk[r.rngInt(len(junk))]
			topic := r.topic
			if r.rngInt(4) == 0 {
				topic = "switchd/chaos/signals/no_such_signal"
			}
			_ = r.pub(topic, j, false)
		}
	case "oversized_payload":
		size := 8<<10 + r.rngInt(1<<20)
		_ = r.pub(r.topic, strings.Repeat("9", size), false)
	case "future_far_payload":
		// Far beyond max_future, and cheap: it must be refused.
		p := fmt.Sprintf(`{"ts": %q, "value": 1}`, time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano))
		_ = r.pub(r.topic, p, false)
	case "future_near_payload":
		// Inside max_future, with the current value (so the truth holds):
		// it must not block the next real price (the publisher's next).
		r.mu.Lock()
		v := r.price
		r.mu.Unlock()
		p := fmt.Sprintf(`{"ts": %q, "value": %g}`, time.Now().Add(maxFuture-time.Second).UTC().Format(time.RFC3339Nano), v)
		r.deliver(p, v, false)
	case "duplicate_payload":
		for n := 1 + r.rngInt(3); n > 0 && last != ""; n-- {
			_ = r.pub(r.topic, last, false)
		}
	case "retained_stale_price":
		// A cheap bare number, retained: live it is fresh (the truth),
		// but whoever subscribes later gets it retained, of unknown age.
		v := r.nextPrice(r.rng, false)
		r.deliver(fmt.Sprintf("%g", v), v, true)
	case "sigkill_restart":
		r.sigkill()
	case "restart_above_cap":
		r.restartAboveCap()
	case "disk_full":
		r.diskFull()
	case "device_timeout", "device_lie":
		f := luxosfake.FaultTimeout
		if kind == "device_lie" {
			f = luxosfake.FaultLie
		}
		r.deviceFault(f, 1+r.rngInt(3), time.Duration(3000+r.rngInt(12000))*time.Millisecond)
	}
}

func (r *run) sigkill() {
	start := time.Now()
	r.mu.Lock()
	d := r.daemon
	r.mu.Unlock()
	r.scrapeRejected()
	d.kill(syscall.SIGKILL)
	r.markDown()
	time.Sleep(time.Duration(200+r.rngInt(2500)) * time.Millisecond)
	r.mu.Lock()
	r.rep.Restarts++
	r.mu.Unlock()
	inv := invariantNames[3]
	r.mu.Lock()
	r.rep.Inv[inv].checks++
	r.mu.Unlock()
	if err := r.startDaemon(); err != nil {
		r.mu.Lock()
		r.rep.violate(inv, "restart at %s: %v", start.UTC().Format("15:04:05"), err)
		r.mu.Unlock()
		return
	}
	took := time.Since(start)
	r.mu.Lock()
	r.rep.MaxRecover = max(r.rep.MaxRecover, took)
	r.mu.Unlock()
}

// markDown records that the injector killed the daemon: until it starts
// again the device invariants ask nothing of it (startDaemon sets the real
// start).
func (r *run) markDown() {
	r.mu.Lock()
	r.daemonStart = time.Now().Add(24 * time.Hour)
	r.capReset = r.daemonStart
	r.mu.Unlock()
}

// restartAboveCap publishes a cheap price, silences the feed and kills the
// daemon; while it is down every sleeping miner is woken (as a power blip
// that reboots them into mining would), and it starts again once that
// price is older than its max_age (the journal's last decision has no
// price it may resume), to a feed silent for 7.5-9 s more: longer than the
// cap window, shorter than the max_age that ends the startup hold. So it
// comes up in its startup hold, above the cap, and the cap invariant (from
// the daemon's start) requires the shed before any price arrives. The
// price stays cheap throughout: this fault is about the cap. A retained
// price is cleared first (sigkill_restart restarts with whatever the broker
// retains).
func (r *run) restartAboveCap() {
	// No retained price either (an empty retained message clears it):
	// the restarted daemon has nothing but the journal.
	if err := r.pub(r.topic, "", true); err != nil {
		r.logf("clear the retained price: %v", err)
	}
	r.mu.Lock()
	r.pauseUntil = time.Now().Add(time.Hour) // lifted below
	r.mu.Unlock()
	// A last cheap price, taken by the daemon before it is killed (none
	// left queued at the broker for its session).
	r.publishPrice(r.nextPrice(r.rng, false))
	time.Sleep(2 * time.Second)
	r.mu.Lock()
	d := r.daemon
	r.mu.Unlock()
	r.scrapeRejected()
	d.kill(syscall.SIGKILL)
	r.markDown()
	r.mu.Lock()
	r.rep.Restarts++
	r.rep.Inv[invariantNames[3]].checks++
	faulted := append([]bool(nil), r.devFault...)
	last := r.delivered
	r.mu.Unlock()
	woken := 0
	for i, m := range r.miners {
		if !faulted[i] && m.Asleep() {
			m.SetAsleep(false)
			woken++
		}
	}
	time.Sleep(time.Until(last.Add(priceAge + time.Second)))
	above := r.sitePowerKW() > r.rep.CapKW+1e-6
	silence := time.Duration(7500+r.rngInt(1500)) * time.Millisecond
	start := time.Now()
	if err := r.startDaemon(); err != nil {
		r.mu.Lock()
		r.rep.violate(invariantNames[3], "restart at %s: %v", start.UTC().Format("15:04:05"), err)
		r.pauseUntil = time.Time{}
		r.mu.Unlock()
		return
	}
	r.mu.Lock()
	r.rep.MaxRecover = max(r.rep.MaxRecover, time.Since(start))
	r.mu.Unlock()
	// The devices' own draw until the site is under the cap (the checker
	// judges the window; this is the figure).
	under := time.Duration(-1)
	for deadline := start.Add(silence); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if r.sitePowerKW() <= r.rep.CapKW+1e-6 {
			under = time.Since(start)
			break
		}
	}
	time.Sleep(time.Until(start.Add(silence)))
	r.logf("restart above the cap: %d miners woken while down, above the cap at the start %v, under it %s after the start (-1: not within the silence)", woken, above, under)
	r.mu.Lock()
	if above {
		r.rep.HoldAbove++
		if under >= 0 {
			r.rep.HoldShed++
			r.rep.MaxHoldShed = max(r.rep.MaxHoldShed, under)
		}
	}
	r.pauseUntil = time.Time{}
	r.mu.Unlock()
	r.publishPrice(r.nextPrice(r.rng, false))
}

// sitePowerKW is the draw of the devices not faulted now, from their own
// state.
func (r *run) sitePowerKW() float64 {
	r.mu.Lock()
	faulted := append([]bool(nil), r.devFault...)
	r.mu.Unlock()
	kw := 0.0
	for i, m := range r.miners {
		if !faulted[i] {
			_, w := m.TrueLevels()
			kw += w / 1000
		}
	}
	return kw
}

// diskFull fills the journal's tmpfs with a ballast file, holds it full for
// a few seconds and frees it.
func (r *run) diskFull() {
	path := filepath.Join(r.jdir, "ballast")
	f, err := os.Create(path)
	if err != nil {
		r.logf("ballast: %v", err)
		return
	}
	// Down to the last page: tmpfs allocates whole pages.
	for _, size := range []int{64 << 10, 4 << 10, 1} {
		chunk := make([]byte, size)
		for {
			if _, err := f.Write(chunk); err != nil {
				break
			}
		}
	}
	_ = f.Sync()
	// The journal's last page still has room for a few entries: cheap
	// and dear prices by turns make the daemon decide (start, then shed)
	// until appends fail, and shed while they do.
	hold := time.Duration(12000+r.rngInt(12000)) * time.Millisecond
	end := time.Now().Add(hold)
	seen := false
	for dear := false; time.Now().Before(end); dear = !dear {
		select {
		case r.force <- dear:
		default:
		}
		seen = r.watchAlarm(minTime(end, time.Now().Add(3*time.Second)), true) || seen
	}
	_ = f.Close()
	_ = os.Remove(path)
	freed := time.Now()
	// The alarm clears by itself with the first append that succeeds:
	// a cheap price makes the daemon decide (start what was held back).
	select {
	case r.force <- false:
	default:
	}
	cleared := !seen || r.watchAlarm(freed.Add(30*time.Second), false)
	r.mu.Lock()
	r.rep.DiskFullFor += hold
	if seen {
		r.rep.DiskAlarmSeen++
		r.rep.Inv[invariantNames[6]].checks++
		if cleared {
			r.rep.MaxAlarmClear = max(r.rep.MaxAlarmClear, time.Since(freed))
		} else {
			r.rep.DiskAlarmStuck++
			r.rep.violate(invariantNames[6], "journal alarm still on /readyz 30 s after the disk was freed at %s", freed.UTC().Format("15:04:05"))
		}
	}
	r.mu.Unlock()
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// watchAlarm polls /readyz until the deadline; with want it reports
// whether the journal alarm showed at all, without it whether the alarm
// cleared (returning as soon as it has).
func (r *run) watchAlarm(deadline time.Time, want bool) bool {
	c := http.Client{Timeout: time.Second}
	seen := false
	for time.Now().Before(deadline) {
		resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", r.hport))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			on := strings.Contains(string(b), "journal failing")
			if want && on {
				seen = true
			}
			if !want && !on {
				return true
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	return seen
}

// deviceFault gives n devices (not already faulted) a fault for a while.
func (r *run) deviceFault(f luxosfake.Fault, n int, hold time.Duration) {
	var picked []int
	r.mu.Lock()
	for _, i := range r.rng.Perm(len(r.miners)) {
		if len(picked) < n && !r.devFault[i] {
			r.devFault[i] = true
			r.faults[i] = append(r.faults[i], span{start: time.Now()})
			picked = append(picked, i)
		}
	}
	r.mu.Unlock()
	for _, i := range picked {
		_ = r.miners[i].SetFault(f)
	}
	time.AfterFunc(hold, func() {
		for _, i := range picked {
			_ = r.miners[i].SetFault(luxosfake.FaultNone)
		}
		r.mu.Lock()
		for _, i := range picked {
			r.devFault[i] = false
			r.devClear[i] = time.Now()
			r.faults[i][len(r.faults[i])-1].end = r.devClear[i]
		}
		r.capReset = time.Now()
		r.mu.Unlock()
	})
}

// scrapeRejected adds the daemon's reject counters, by reason, to the
// report (its counters start at zero with each process).
func (r *run) scrapeRejected() {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", r.hport))
	if err != nil {
		r.logf("metrics: %v", err)
		return
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	r.mu.Lock()
	defer r.mu.Unlock()
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "switchd_signal_rejected_total{") {
			continue
		}
		_, rest, _ := strings.Cut(line, `reason="`)
		reason, _, _ := strings.Cut(rest, `"`)
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
			r.rep.Rejected[reason] += v
		}
	}
}

// faultedNear reports whether device i was faulted at t or within
// faultGrace before it.
func (r *run) faultedNear(i int, t time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, sp := range r.faults[i] {
		if !t.Before(sp.start) && (sp.end.IsZero() || t.Before(sp.end.Add(faultGrace))) {
			return true
		}
	}
	return false
}

// checker samples the devices' real state five times a second.
func (r *run) checker(stop chan struct{}) {
	capName, beName, exitName := invariantNames[0], invariantNames[1], invariantNames[2]
	var overSince time.Time
	overReported := false
	miningSince := make([]time.Time, len(r.miners))
	reported := make([]bool, len(r.miners))
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		// The devices' own state, read without r.mu held.
		asleep := make([]bool, len(r.miners))
		watts := make([]float64, len(r.miners))
		for i, m := range r.miners {
			asleep[i] = m.Asleep()
			_, watts[i] = m.TrueLevels()
		}
		now := time.Now()
		r.mu.Lock()
		// A device faulted now or lately is outside the daemon's
		// knowledge: it is left out of both device invariants.
		excluded := func(i int) bool {
			return r.devFault[i] || now.Sub(r.devClear[i]) < faultGrace
		}
		// Site power from the devices.
		kw := 0.0
		for i := range r.miners {
			if !excluded(i) {
				kw += watts[i] / 1000
			}
		}
		r.rep.Inv[capName].checks++
		if kw > r.rep.CapKW+1e-6 {
			start := overSince
			if start.IsZero() {
				overSince, start = now, now
			}
			if r.daemonStart.After(start) {
				start = r.daemonStart // down: nothing to ask of it
			}
			r.rep.MaxOverCap = max(r.rep.MaxOverCap, now.Sub(start))
			if r.capReset.After(start) {
				start = r.capReset
			}
			if now.Sub(start) > capAllow && !overReported {
				overReported = true
				r.rep.violate(capName, "%.1f kW > cap %.1f kW since %s (%s; %s of it counted, from the daemon's start or the last fault's end)", kw, r.rep.CapKW,
					overSince.UTC().Format("15:04:05.000"), now.Sub(overSince).Round(time.Millisecond), now.Sub(start).Round(time.Millisecond))
			}
		} else {
			if !overSince.IsZero() {
				up := overSince
				if r.daemonStart.After(up) {
					up = r.daemonStart
				}
				r.logf("site power back under the cap after %s above it (%s of it with the daemon up)", now.Sub(overSince).Round(time.Millisecond), now.Sub(up).Round(time.Millisecond))
			}
			overSince, overReported = time.Time{}, false
		}
		// Mining above breakeven.
		for i := range r.miners {
			if r.aboveSince.IsZero() || excluded(i) {
				miningSince[i], reported[i] = time.Time{}, false
				continue
			}
			r.rep.Inv[beName].checks++
			if asleep[i] {
				miningSince[i], reported[i] = time.Time{}, false
				continue
			}
			start := r.aboveSince
			if r.daemonStart.After(start) {
				start = r.daemonStart
			}
			if c := r.devClear[i].Add(faultGrace); c.After(start) {
				start = c
			}
			if miningSince[i].IsZero() || miningSince[i].Before(start) || miningSince[i].After(now) {
				miningSince[i] = start
			}
			d := now.Sub(miningSince[i])
			r.rep.MaxMiningAbove = max(r.rep.MaxMiningAbove, d)
			if d > breakevenAllow && !reported[i] {
				reported[i] = true
				r.rep.violate(beName, "%s mining at price %g > breakeven %.2f for %s", r.addrs[i], r.price, r.rep.Breakeven, d.Round(time.Millisecond))
			}
		}
		// The daemon never exits unless killed.
		r.rep.Inv[exitName].checks++
		if d := r.daemon; d != nil && !d.killed.Load() && d.exited() {
			r.rep.violate(exitName, "switchd exited by itself: %v (see switchd.log)", d.err)
			d.killed.Store(true)
		}
		r.mu.Unlock()
	}
}

// finish stops the daemon cleanly and checks the journal.
func (r *run) finish() {
	r.scrapeRejected()
	r.daemon.kill(syscall.SIGTERM)
	if r.daemon.err != nil {
		r.mu.Lock()
		r.rep.violate(invariantNames[2], "switchd did not exit 0 on SIGTERM: %v", r.daemon.err)
		r.mu.Unlock()
	}
	// The journal verifies, segments and all.
	inv := r.rep.Inv[invariantNames[4]]
	inv.checks++
	out, err := exec.Command(r.bin, "journal", "verify", r.jpath).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "chain intact") {
		r.rep.violate(invariantNames[4], "journal verify: %v: %s", err, strings.TrimSpace(string(out)))
	}
	r.checkCommands()
}

// checkCommands checks that every curtail command that changed a device is
// in the journal, recorded at or before the moment the device applied it:
// for each direction, by the time the k-th such command reached a device,
// the journal's command entries of that direction counted at least k
// devices. (The journal records the fleet's commands as decided; a driver
// re-sending one to a device that drifted from it, or that lied about its
// mode, is not a new entry: such re-sends that found the device already in
// the commanded state are counted apart.)
func (r *run) checkCommands() {
	name := invariantNames[5]
	f, err := journal.OpenChain(r.jpath)
	if err != nil {
		r.rep.violate(name, "open journal: %v", err)
		return
	}
	defer f.Close()
	segs, _ := filepath.Glob(r.jpath + ".*")
	r.rep.JournalSegments = 1 + len(segs)
	type logged struct {
		at    time.Time
		count int
	}
	byAction := map[string][]logged{}
	type plan struct {
		at     time.Time
		counts map[string]int
	}
	var plans []plan
	held := false // the last decision was made in a startup hold
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), journal.MaxLineBytes)
	for sc.Scan() {
		var e journal.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			r.rep.violate(name, "journal line %d: %v", r.rep.JournalEntries+1, err)
			return
		}
		r.rep.JournalEntries++
		if e.Kind == journal.KindDecision {
			held = strings.Contains(e.Reason, "startup hold")
			if held {
				r.rep.HoldDecisions++
			}
		}
		if held && e.Kind == journal.KindCommand {
			r.rep.Inv[invariantNames[7]].checks++
			if e.To != switchd.ModeOff.String() {
				r.rep.violate(invariantNames[7], "%s→%s ×%d at %s, in a startup hold", e.From, e.To, e.Count, e.Time.UTC().Format("15:04:05.000"))
			}
		}
		if e.Kind == journal.KindState && e.Fleet == "luxos" {
			plans = append(plans, plan{e.Time, e.Counts})
		}
		if e.Kind != journal.KindCommand || e.Fleet != "luxos" {
			continue
		}
		action := ""
		switch e.To {
		case switchd.ModeOff.String():
			action = "sleep"
		case switchd.ModeMining.String():
			action = "wakeup"
		default:
			continue
		}
		byAction[action] = append(byAction[action], logged{e.Time, e.Count})
		r.rep.CommandsLogged[action] += e.Count
	}
	if err := sc.Err(); err != nil {
		r.rep.violate(name, "read journal: %v", err)
		return
	}
	r.mu.Lock()
	applied := append([]appliedCmd(nil), r.applied...)
	r.mu.Unlock()
	for _, action := range []string{"sleep", "wakeup"} {
		var at []time.Time
		for _, a := range applied {
			if a.action != action {
				continue
			}
			if !a.changed {
				// A command re-sent to a device already in that state
				// (one that lied about it): the journalled decision it
				// repeats was counted when it first changed the device.
				r.rep.CommandsRepeated++
				continue
			}
			if r.faultedNear(a.dev, a.at) {
				// Re-sent to a device out of its commanded mode after a
				// fault (a lie that hid it, a timeout that swallowed
				// the first command): the driver enforces the fleet's
				// journalled target, which is not a new entry. It must
				// agree with that target.
				r.rep.CommandsAfterFault++
				r.rep.Inv[name].checks++
				mode := map[string]string{"sleep": "off", "wakeup": "mining"}[action]
				var last *plan
				for k := range plans {
					if !plans[k].at.After(a.at) {
						last = &plans[k]
					}
				}
				if last == nil || last.counts[mode] == 0 {
					r.rep.violate(name, "%s re-sent to %s at %s, but the journalled plan then had no device %s", action, r.addrs[a.dev], a.at.UTC().Format("15:04:05.000"), mode)
				}
				continue
			}
			at = append(at, a.at)
		}
		r.rep.CommandsApplied[action] = len(at)
		sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
		ls := byAction[action]
		sort.SliceStable(ls, func(i, j int) bool { return ls[i].at.Before(ls[j].at) })
		j, cum := 0, 0
		for k, t := range at {
			for j < len(ls) && !ls[j].at.After(t) {
				cum += ls[j].count
				j++
			}
			r.rep.Inv[name].checks++
			if cum < k+1 {
				r.rep.violate(name, "%s #%d applied at %s but the journal had recorded only %d by then", action, k+1, t.UTC().Format("15:04:05.000"), cum)
			}
		}
	}
}
