// Package luxosfake is a fake LuxOS miner (LUXminer API on TCP 4028) for
// tests, benchmarks and the demo. It speaks the real wire protocol over real
// TCP: one JSON (or text "cmd|param") request per connection, one reply, a
// trailing NUL, then the server closes. It keeps LuxOS's session rule (one
// session at a time, expiring after a minute idle, refreshed on use), the
// curtail sleep / wakeup and profileset writes, a wake-up ramp of hashrate
// and power computed lazily from an injectable clock, sleep that persists
// across a reboot, and injected faults.
//
// The reply templates are this package's own, modelled on the field names
// of recorded LuxOS replies (../shared/fixtures/miners/luxos); the replies to
// logon, logoff, session, kill, curtail and profileset follow
// docs.luxor.tech where it shows them, and are hand-made where it does not
// (no recorded sample exists): see README.md in the driver folder.
//
// It shares no code with the driver it tests: it parses requests with
// encoding/json only. A miner costs one accept goroutine plus one goroutine
// per open connection, and no timers, so a benchmark can run thousands.
package luxosfake

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"
)

// Fault is an injected failure.
type Fault int

// The faults a miner can be given with SetFault.
const (
	// FaultNone: the miner behaves.
	FaultNone Fault = iota
	// FaultRefuse closes the listener: connections are refused until the
	// fault is cleared (the miner listens again on the same address).
	FaultRefuse
	// FaultTimeout accepts connections and reads the request but never
	// answers.
	FaultTimeout
	// FaultGarbage answers every request with bytes that are not JSON.
	FaultGarbage
	// FaultReboot makes the next write command (curtail, profileset) drop
	// its connection unanswered and unapplied: the miner reboots and resets
	// every connection for Options.RebootDelay, then comes back in the state
	// it was in (sleep persists across a restart; a mining unit ramps up
	// again). The fault clears itself once it has fired.
	FaultReboot
	// FaultSessionHeld: another client holds the session and keeps it alive,
	// so logon fails until the fault is cleared or the session is killed.
	FaultSessionHeld
	// FaultHashboards: the hashboards stopped on their own. The miner is not
	// curtailed, its power supply is on, and it hashes nothing.
	FaultHashboards
	// FaultLie: the miner reports the opposite of its real state, in its
	// config (CurtailMode, IsPowerSupplyOn) and its levels (hashrate,
	// watts): a mining miner claims to be asleep and a sleeping one claims
	// to mine at its profile's nominal figures. Commands still act on the
	// real state; TrueLevels and Asleep tell the truth.
	FaultLie
)

// Profile is one LuxOS power profile.
type Profile struct {
	Name         string
	Step         int
	FrequencyMHz float64
	Voltage      float64
	HashrateTHs  float64
	Watts        float64
}

// Options configure a miner. Zero values take the defaults.
type Options struct {
	// Now is the clock ramps, session expiry and reboots are computed
	// from (default time.Now). Tests pass a virtual clock.
	Now func() time.Time
	// Model is the miner's display name (default "Antminer S19k Pro").
	Model string
	// Version is the LUXminer version (default "2025.4.8.220305-5e1f00d2").
	Version string
	// Profiles lists the power profiles; one must have Step 0 (the
	// default). Default: DefaultProfiles(120, 2760, 575, 13.4).
	Profiles []Profile
	// Asleep starts the miner curtailed (sleep mode).
	Asleep bool
	// WakeRamp is how long hashrate and power take to reach the profile's
	// after a wakeup or a reboot (default 5m).
	WakeRamp time.Duration
	// ProfileRamp is how long a profile change takes (default 1m).
	ProfileRamp time.Duration
	// SessionIdle is the session's idle expiry (default 1m).
	SessionIdle time.Duration
	// RebootDelay is how long a reboot keeps the miner off the network
	// (default 2m).
	RebootDelay time.Duration
	// SleepW is the draw while asleep: control board and fans (default 22).
	SleepW float64
	// NoNUL leaves out the trailing NUL after each reply.
	NoNUL bool
	// NoMulti answers multi-command requests ("config+summary") with an
	// error, as firmware without them would.
	NoMulti bool
	// Seed makes session IDs reproducible (default from the address).
	Seed uint64
	// OnCurtail, when set, is called (under the miner's lock: it must not
	// call back into the miner) with the action of every curtail command
	// the miner applied ("sleep" or "wakeup"), when it applied it, and
	// whether it changed the miner's state (false: it was asleep already,
	// or awake): a test compares what a device received with what the
	// daemon recorded.
	OnCurtail func(action string, changed bool)
}

// DefaultProfiles returns LuxOS-style built-in profiles around a nominal
// (default) point: 16 under-clock and 8 over-clock steps of 25 MHz and
// 0.1 V, with hashrate proportional to frequency and power to f·V².
func DefaultProfiles(nominalTHs, nominalW, freqMHz, voltage float64) []Profile {
	var out []Profile
	for step := -16; step <= 8; step++ {
		f := freqMHz + 25*float64(step)
		v := max(voltage+0.1*float64(step), 11.9)
		name := fmt.Sprintf("%.0fMHz", f)
		if step == 0 {
			name = "default"
		}
		out = append(out, Profile{
			Name:         name,
			Step:         step,
			FrequencyMHz: f,
			Voltage:      math.Round(v*100) / 100,
			HashrateTHs:  math.Round(nominalTHs*f/freqMHz*10) / 10,
			Watts:        math.Round(nominalW * f / freqMHz * (v / voltage) * (v / voltage)),
		})
	}
	return out
}

// ramp is a linear move of hashrate and power from one level to another.
type ramp struct {
	fromTHs, toTHs float64
	fromW, toW     float64
	at             time.Time
	dur            time.Duration
}

// value is the ramp's level at now and whether it is still moving.
func (r ramp) value(now time.Time) (ths, w float64, moving bool) {
	frac := 1.0
	if r.dur > 0 {
		frac = min(max(float64(now.Sub(r.at))/float64(r.dur), 0), 1)
	}
	return r.fromTHs + (r.toTHs-r.fromTHs)*frac, r.fromW + (r.toW-r.fromW)*frac, frac < 1
}

// Miner is one fake LuxOS miner.
type Miner struct {
	o Options

	mu      sync.Mutex
	ln      net.Listener
	addr    string
	conns   map[net.Conn]struct{}
	done    chan struct{} // closed by Close
	closed  bool
	fault   Fault
	rng     *rand.Rand
	counts  map[string]int // commands received, by name
	asleep  bool
	profile int // index into o.Profiles
	level   ramp
	bootAt  time.Time
	down    time.Time // rebooting until
	sid     string    // current session ("" none)
	sidUsed time.Time // last use of sid
	atm     bool
}

// New returns a miner, not yet listening.
func New(o Options) *Miner {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Model == "" {
		o.Model = "Antminer S19k Pro"
	}
	if o.Version == "" {
		o.Version = "2025.4.8.220305-5e1f00d2"
	}
	if len(o.Profiles) == 0 {
		o.Profiles = DefaultProfiles(120, 2760, 575, 13.4)
	}
	if o.WakeRamp <= 0 {
		o.WakeRamp = 5 * time.Minute
	}
	if o.ProfileRamp <= 0 {
		o.ProfileRamp = time.Minute
	}
	if o.SessionIdle <= 0 {
		o.SessionIdle = time.Minute
	}
	if o.RebootDelay <= 0 {
		o.RebootDelay = 2 * time.Minute
	}
	if o.SleepW <= 0 {
		o.SleepW = 22
	}
	m := &Miner{o: o, conns: map[net.Conn]struct{}{}, done: make(chan struct{}), counts: map[string]int{}, atm: true}
	for i, p := range o.Profiles {
		if p.Step == 0 {
			m.profile = i
		}
	}
	now := o.Now()
	// A miner found running has been up for an hour, steady.
	m.bootAt = now.Add(-time.Hour)
	m.asleep = o.Asleep
	p := o.Profiles[m.profile]
	if m.asleep {
		m.level = ramp{fromW: o.SleepW, toW: o.SleepW, at: now}
	} else {
		m.level = ramp{fromTHs: p.HashrateTHs, toTHs: p.HashrateTHs, fromW: p.Watts, toW: p.Watts, at: now}
	}
	return m
}

// Start listens on addr ("127.0.0.1:0" or a loopback address such as
// "127.0.3.7:4028") and serves until Close.
func (m *Miner) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("luxosfake: listen %s: %w", addr, err)
	}
	m.mu.Lock()
	m.ln, m.addr = ln, ln.Addr().String()
	if m.rng == nil {
		seed := m.o.Seed
		if seed == 0 {
			for _, c := range m.addr {
				seed = seed*31 + uint64(c)
			}
		}
		m.rng = rand.New(rand.NewPCG(seed, 0x6c75786f73))
	}
	m.mu.Unlock()
	go m.serve(ln)
	return nil
}

// Addr is the address the miner listens on.
func (m *Miner) Addr() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.addr
}

// Close stops the miner and drops its open connections.
func (m *Miner) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	close(m.done)
	ln := m.ln
	m.ln = nil
	for c := range m.conns {
		_ = c.Close()
	}
	m.mu.Unlock()
	if ln != nil {
		return ln.Close()
	}
	return nil
}

// SetFault injects a fault (FaultNone clears it). Clearing FaultRefuse
// listens again on the same address.
func (m *Miner) SetFault(f Fault) error {
	m.mu.Lock()
	prev := m.fault
	m.fault = f
	if f == FaultSessionHeld {
		// Another client logs on now and keeps the session busy.
		m.sid, m.sidUsed = m.newSID(), m.o.Now()
	}
	var ln net.Listener
	if f == FaultRefuse && m.ln != nil {
		ln, m.ln = m.ln, nil
	}
	relisten := prev == FaultRefuse && f != FaultRefuse && !m.closed
	addr := m.addr
	m.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	if relisten {
		nl, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("luxosfake: listen again on %s: %w", addr, err)
		}
		m.mu.Lock()
		m.ln = nl
		m.mu.Unlock()
		go m.serve(nl)
	}
	return nil
}

// Asleep reports whether the miner is curtailed (sleep mode).
func (m *Miner) Asleep() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.asleep
}

// SetAsleep puts the miner to sleep or wakes it as another actor would
// (the web UI, a reboot by hand): drift, from the driver's point of view.
func (m *Miner) SetAsleep(asleep bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.curtail(m.o.Now(), asleep)
}

// Profile is the name of the active profile.
func (m *Miner) Profile() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.o.Profiles[m.profile].Name
}

// Levels returns the hashrate (TH/s) and power (W) the miner shows now.
func (m *Miner) Levels() (ths, w float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ths, w, _ = m.levels(m.o.Now())
	return ths, w
}

// TrueLevels returns the hashrate (TH/s) and power (W) the miner really
// has now, whatever it reports (see FaultLie).
func (m *Miner) TrueLevels() (ths, w float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fault == FaultHashboards && !m.asleep {
		return 0, m.o.SleepW + 110
	}
	ths, w, _ = m.level.value(m.o.Now())
	return ths, w
}

// Session returns the active session ID ("" when none or expired).
func (m *Miner) Session() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.session(m.o.Now())
}

// Logon takes the session as another client would (a script, the web
// UI). It returns "" when a session is already active.
func (m *Miner) Logon() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.o.Now()
	if m.session(now) != "" {
		return ""
	}
	m.sid, m.sidUsed = m.newSID(), now
	return m.sid
}

// Count returns how many times cmd was received (each part of a
// multi-command counts).
func (m *Miner) Count(cmd string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.counts[cmd]
}

// Rebooting reports whether the miner is off the network for a reboot.
func (m *Miner) Rebooting() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.o.Now().Before(m.down)
}

func (m *Miner) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		go m.handle(c)
	}
}

// reset drops a connection with a TCP reset, as a rebooting or crashing
// miner does.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

func (m *Miner) handle(c net.Conn) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		_ = c.Close()
		return
	}
	if m.o.Now().Before(m.down) {
		m.mu.Unlock()
		reset(c)
		return
	}
	m.conns[c] = struct{}{}
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.conns, c)
		m.mu.Unlock()
		_ = c.Close()
	}()

	// I/O deadlines only: no decision here depends on the wall clock.
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	cmd, param, err := readRequest(bufio.NewReader(c))

	m.mu.Lock()
	fault := m.fault
	m.mu.Unlock()
	switch fault {
	case FaultTimeout:
		// Hold the connection, silent, until the client gives up or the
		// miner is closed.
		_ = c.SetDeadline(time.Time{})
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			select {
			case <-m.done:
				_ = c.Close()
			case <-stop:
			}
		}()
		_, _ = io.Copy(io.Discard, c)
		return
	case FaultGarbage:
		_, _ = c.Write([]byte("\x15\x03garbage{{\"STATUS\":\n"))
		return
	}
	var reply any
	if err != nil {
		reply = m.reply(m.o.Now(), "E", 23, fmt.Sprintf("Invalid JSON: %v", err), "", nil)
	} else {
		var drop bool
		reply, drop = m.dispatch(cmd, param)
		if drop {
			reset(c)
			return
		}
	}
	b, err := json.Marshal(reply)
	if err != nil {
		return
	}
	if !m.o.NoNUL {
		b = append(b, 0)
	}
	_, _ = c.Write(b)
}

// readRequest reads one request: JSON {"command":..,"parameter":..} or
// text "command|parameter". A JSON parameter may be a string or a number.
func readRequest(br *bufio.Reader) (cmd, param string, err error) {
	for {
		b, err := br.Peek(1)
		if err != nil {
			return "", "", err
		}
		if b[0] != ' ' && b[0] != '\n' && b[0] != '\r' && b[0] != '\t' {
			break
		}
		_, _ = br.ReadByte()
	}
	if b, _ := br.Peek(1); b[0] != '{' {
		// cgminer reads text requests in one go.
		buf := make([]byte, 4096)
		n, err := br.Read(buf)
		if err != nil {
			return "", "", err
		}
		cmd, param, _ = strings.Cut(strings.TrimRight(string(buf[:n]), "\x00\r\n "), "|")
		return cmd, param, nil
	}
	var req struct {
		Command   string `json:"command"`
		Parameter any    `json:"parameter"`
	}
	if err := json.NewDecoder(br).Decode(&req); err != nil {
		return "", "", err
	}
	switch p := req.Parameter.(type) {
	case string:
		param = p
	case float64:
		param = fmt.Sprint(p)
	case nil:
	default:
		b, _ := json.Marshal(p)
		param = string(b)
	}
	if req.Command == "" {
		return "", "", errors.New("missing command")
	}
	return req.Command, param, nil
}

// reportCommands answer without a session and may be combined with "+".
var reportCommands = map[string]bool{
	"version": true, "config": true, "summary": true, "devs": true, "stats": true,
	"power": true, "profiles": true, "pools": true, "session": true,
}

// dispatch answers one request; drop means reset the connection unanswered.
func (m *Miner) dispatch(cmd, param string) (reply any, drop bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.o.Now()
	if !strings.Contains(cmd, "+") {
		m.counts[cmd]++
		return m.command(now, cmd, param)
	}
	if m.o.NoMulti {
		m.counts[cmd]++
		return m.reply(now, "E", 14, "Invalid command", "", nil), false
	}
	// Multi-report: each part's full reply nested under its name; only
	// parameter-less report commands, an unusable part gets an error.
	out := map[string]any{"id": 1}
	for _, part := range strings.Split(cmd, "+") {
		m.counts[part]++
		var r any
		if !reportCommands[part] || param != "" {
			r = m.reply(now, "E", 45, "Access denied to '"+part+"' command", "", nil)
		} else {
			r, _ = m.command(now, part, "")
		}
		out[part] = []any{r}
	}
	return out, false
}

// writeCommands need a session and may trigger an injected reboot.
var writeCommands = map[string]bool{"curtail": true, "profileset": true, "logoff": true, "atmset": true}

// command answers one command. Under mu.
func (m *Miner) command(now time.Time, cmd, param string) (any, bool) {
	args := strings.Split(param, ",")
	if writeCommands[cmd] {
		if cmd != "logoff" && m.fault == FaultReboot {
			m.reboot(now)
			return nil, true
		}
		if !m.useSession(now, args[0]) {
			// Hand-made: the text of this refusal is not documented.
			return m.reply(now, "E", 312, "Invalid session", "", nil), false
		}
		args = args[1:]
	}
	switch cmd {
	case "version":
		return m.reply(now, "S", 22, "LUXminer versions", "VERSION", []any{map[string]any{
			"API": "3.7", "CompileTime": "Tue Apr  8 22:05:35 UTC 2025", "LUXminer": m.o.Version,
			"Miner": strings.SplitN(m.o.Version, "-", 2)[0], "Type": m.o.Model,
		}}), false
	case "config":
		return m.reply(now, "S", 33, "LUXminer config", "CONFIG", []any{m.config(now)}), false
	case "summary":
		return m.reply(now, "S", 11, "Summary", "SUMMARY", []any{m.summary(now)}), false
	case "devs":
		devs := m.devs(now)
		return m.reply(now, "S", 9, fmt.Sprintf("%d ASC(s)", len(devs)), "DEVS", devs), false
	case "stats":
		return m.reply(now, "S", 70, "LUXminer stats", "STATS", m.stats(now)), false
	case "power":
		_, w, _ := m.levels(now)
		return m.reply(now, "S", 311, "Power usage", "POWER", []any{map[string]any{"PSU": false, "Watts": math.Round(w)}}), false
	case "profiles":
		var ps []any
		for _, p := range m.o.Profiles {
			ps = append(ps, map[string]any{
				"CanRestore": true, "Frequency": p.FrequencyMHz, "HasOverrides": false, "Hashrate": p.HashrateTHs,
				"IsDynamic": true, "IsTuned": false, "Profile Name": p.Name, "Step": fmt.Sprint(p.Step),
				"Voltage": p.Voltage, "Watts": p.Watts,
			})
		}
		return m.reply(now, "S", 323, "List profiles", "PROFILES", ps), false
	case "pools":
		return m.reply(now, "S", 7, "1 Pool(s)", "POOLS", []any{map[string]any{
			"POOL": 0, "URL": "stratum+tcp://pool.invalid:3333", "Status": map[bool]string{true: "Dead", false: "Alive"}[m.asleep],
			"Priority": 0, "Long Pool": "N", "Stratum Active": !m.asleep, "User": "fake.worker",
		}}), false
	case "logon":
		if m.session(now) != "" {
			// Hand-made: LuxOS refuses a second session; the exact text
			// of the refusal is not documented.
			return m.reply(now, "E", 315, "Unable to create session: another session is active", "", nil), false
		}
		m.sid, m.sidUsed = m.newSID(), now
		return m.reply(now, "S", 316, "Session created", "SESSION", []any{map[string]any{"SessionID": m.sid}}), false
	case "session":
		return m.reply(now, "S", 319, "Session information", "SESSION", []any{map[string]any{"SessionID": m.session(now)}}), false
	case "logoff":
		m.sid = ""
		return m.reply(now, "S", 317, "Session dropped", "", nil), false
	case "kill":
		// Hand-made text. Kill drops whoever holds the session.
		m.sid = ""
		if m.fault == FaultSessionHeld {
			m.fault = FaultNone
		}
		return m.reply(now, "S", 318, "Session killed", "", nil), false
	case "curtail":
		if len(args) == 0 {
			return m.reply(now, "E", 336, "Missing curtail action", "", nil), false
		}
		var action string
		if m.o.OnCurtail != nil && (args[0] == "sleep" || args[0] == "wakeup") {
			m.o.OnCurtail(args[0], m.asleep != (args[0] == "sleep"))
		}
		switch args[0] {
		case "sleep":
			m.curtail(now, true)
			action = "sleep mode"
		case "wakeup":
			m.curtail(now, false)
			action = "wake up"
		default:
			return m.reply(now, "E", 336, fmt.Sprintf("Invalid curtail action '%s'", args[0]), "", nil), false
		}
		return m.reply(now, "S", 335, "Curtailment command sent", "CURTAIL", []any{map[string]any{"Action": action}}), false
	case "profileset":
		if len(args) == 0 || args[0] == "" {
			return m.reply(now, "E", 322, "Missing profile name", "", nil), false
		}
		i := m.findProfile(args[0])
		if i < 0 {
			return m.reply(now, "E", 322, fmt.Sprintf("Profile '%s' not found", args[0]), "", nil), false
		}
		m.setProfile(now, i)
		return m.reply(now, "S", 321, "Profile set", "PROFILE", []any{map[string]any{"Board": 0, "Profile": m.o.Profiles[i].Name}}), false
	case "atmset":
		for _, a := range args {
			if k, v, ok := strings.Cut(a, "="); ok && k == "enabled" {
				m.atm = v == "true"
			}
		}
		return m.reply(now, "S", 340, "ATM set", "", nil), false
	}
	return m.reply(now, "E", 14, "Invalid command", "", nil), false
}

// reply builds a cgminer-shaped reply. Under mu.
func (m *Miner) reply(now time.Time, status string, code int, msg, section string, body []any) map[string]any {
	r := map[string]any{
		"STATUS": []any{map[string]any{
			"Code": code, "Description": "LUXminer " + m.o.Version, "Msg": msg, "STATUS": status, "When": now.Unix(),
		}},
		"id": 1,
	}
	if section != "" {
		r[section] = body
	}
	return r
}

// session is the active session, if not expired. Under mu.
func (m *Miner) session(now time.Time) string {
	if m.fault == FaultSessionHeld {
		if m.sid == "" {
			m.sid = m.newSID()
		}
		m.sidUsed = now // the other client keeps it busy
	}
	if m.sid != "" && now.Sub(m.sidUsed) >= m.o.SessionIdle {
		m.sid = ""
	}
	return m.sid
}

// useSession checks sid against the active session and refreshes it.
func (m *Miner) useSession(now time.Time, sid string) bool {
	cur := m.session(now)
	if cur == "" || sid != cur {
		return false
	}
	m.sidUsed = now
	return true
}

// newSID makes an 8-character session ID like LuxOS's. Under mu.
func (m *Miner) newSID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	if m.rng == nil {
		m.rng = rand.New(rand.NewPCG(m.o.Seed, 1))
	}
	b := make([]byte, 8)
	for i := range b {
		b[i] = alphabet[m.rng.IntN(len(alphabet))]
	}
	return string(b)
}

// levels is the hashrate and power now. Under mu.
func (m *Miner) levels(now time.Time) (ths, w float64, ramping bool) {
	if m.fault == FaultHashboards && !m.asleep {
		return 0, m.o.SleepW + 110, false // fans and control board, boards dead
	}
	if m.fault == FaultLie {
		if m.asleep {
			p := m.o.Profiles[m.profile]
			return p.HashrateTHs, p.Watts, false
		}
		return 0, m.o.SleepW, false
	}
	return m.level.value(now)
}

// curtail sleeps or wakes the miner. Under mu.
func (m *Miner) curtail(now time.Time, asleep bool) {
	if asleep == m.asleep {
		return
	}
	m.asleep = asleep
	ths, w, _ := m.level.value(now)
	if asleep {
		// Hashboards and PSU off within seconds: modelled as at once.
		m.level = ramp{fromTHs: 0, toTHs: 0, fromW: m.o.SleepW, toW: m.o.SleepW, at: now}
		return
	}
	p := m.o.Profiles[m.profile]
	_ = ths // a sleeping miner hashes nothing: the ramp starts at zero
	m.level = ramp{toTHs: p.HashrateTHs, fromW: w, toW: p.Watts, at: now, dur: m.o.WakeRamp}
}

// setProfile switches profile, ramping from the current level. Under mu.
func (m *Miner) setProfile(now time.Time, i int) {
	m.profile = i
	if m.asleep {
		return // takes effect at wakeup
	}
	ths, w, _ := m.level.value(now)
	p := m.o.Profiles[i]
	m.level = ramp{fromTHs: ths, toTHs: p.HashrateTHs, fromW: w, toW: p.Watts, at: now, dur: m.o.ProfileRamp}
}

// reboot takes the miner off the network; it comes back in the state it
// was in, its session gone. Under mu.
func (m *Miner) reboot(now time.Time) {
	m.fault = FaultNone
	m.down = now.Add(m.o.RebootDelay)
	m.bootAt = m.down
	m.sid = ""
	if !m.asleep {
		p := m.o.Profiles[m.profile]
		m.level = ramp{toTHs: p.HashrateTHs, fromW: m.o.SleepW, toW: p.Watts, at: m.down, dur: m.o.WakeRamp}
	}
}

func (m *Miner) findProfile(name string) int {
	for i, p := range m.o.Profiles {
		if p.Name == name {
			return i
		}
	}
	return -1
}

// config is the CONFIG section. Under mu.
func (m *Miner) config(now time.Time) map[string]any {
	curtail := "None"
	asleep := m.asleep != (m.fault == FaultLie)
	if asleep {
		curtail = "Sleep"
	}
	p := m.o.Profiles[m.profile]
	return map[string]any{
		"ASC Count": 3, "ControlBoardType": "cvitek", "Cooling": "Air", "CurtailMode": curtail,
		"DHCP": true, "FeeStatus": "Ok", "Hostname": "luxos-fake", "ImmersionMode": false,
		"IsAtmEnabled": m.atm, "IsPowerSupplyOn": !asleep, "IsTuning": false, "Model": m.o.Model,
		"NameplateTHS": m.o.Profiles[m.defaultProfile()].HashrateTHs, "OS": "LuxOS", "PGA Count": 0,
		"Pool Count": 1, "Profile": p.Name, "ProfileStep": fmt.Sprint(p.Step), "SerialNumber": "FAKE" + strings.ReplaceAll(m.addr, ".", ""),
		"Strategy": "Failover", "SystemStatus": "Normal",
	}
}

func (m *Miner) defaultProfile() int {
	for i, p := range m.o.Profiles {
		if p.Step == 0 {
			return i
		}
	}
	return 0
}

// summary is the SUMMARY section. Under mu.
func (m *Miner) summary(now time.Time) map[string]any {
	ths, _, _ := m.levels(now)
	ghs := math.Round(ths*1000*100) / 100
	return map[string]any{
		"Accepted": 1200, "Best Share": 32768, "Device Hardware%": 0.0, "Device Rejected%": 0.0,
		"Elapsed": int(now.Sub(m.bootAt).Seconds()), "Found Blocks": 0,
		"GHS 5s": ghs, "GHS 1m": ghs, "GHS 5m": ghs, "GHS 15m": ghs, "GHS 30m": ghs, "GHS av": ghs,
		"Hardware Errors": 0, "Rejected": 1, "Stale": 0, "Total MH": ghs * 1000 * 3600, "Utility": 20.5,
	}
}

// devs is the DEVS section: three boards, listed out of ID order as
// LuxOS does. Under mu.
func (m *Miner) devs(now time.Time) []any {
	ths, _, ramping := m.levels(now)
	p := m.o.Profiles[m.profile]
	status := "Alive"
	if m.fault == FaultHashboards && !m.asleep {
		status = "Dead"
	}
	var out []any
	for _, id := range []int{2, 0, 1} {
		mhs := ths * 1e6 / 3
		out = append(out, map[string]any{
			"ASC": id, "ID": id, "Enabled": "Y", "Status": status, "Connector": fmt.Sprintf("J%d", 7+id),
			"IsRamping": ramping && !m.asleep, "IsUserShutdown": false, "Profile": p.Name,
			"MHS 5s": mhs, "MHS 1m": mhs, "MHS av": mhs, "Nominal MHS": p.HashrateTHs * 1e6 / 3,
			"Temperature":     map[bool]float64{true: 28, false: 55}[m.asleep || ths == 0],
			"Hardware Errors": 0, "Accepted": 400, "Rejected": 0,
		})
	}
	return out
}

// stats is the STATS section, bmminer-compatible: chain rates as strings.
// Under mu.
func (m *Miner) stats(now time.Time) []any {
	ths, _, _ := m.levels(now)
	ghs := math.Round(ths*1000*100) / 100
	s := map[string]any{
		"Elapsed": int(now.Sub(m.bootAt).Seconds()), "GHS 5s": ghs, "GHS av": ghs, "ID": "BTM_SOC0",
		"miner_count": 3, "rate_unit": "GH", "fan_num": 4, "temp_num": 3,
		"total_rateideal": m.o.Profiles[m.profile].HashrateTHs * 1000,
	}
	for i := 1; i <= 4; i++ {
		rate := 0.0
		if i <= 3 {
			rate = ghs / 3
		}
		s[fmt.Sprintf("chain_rate%d", i)] = fmt.Sprintf("%.2f", rate)
		s[fmt.Sprintf("fan%d", i)] = 1900 + 100*i
	}
	return []any{
		map[string]any{"CompileTime": "Tue Apr  8 22:05:35 UTC 2025", "Miner": strings.SplitN(m.o.Version, "-", 2)[0], "Type": m.o.Model},
		s,
	}
}
