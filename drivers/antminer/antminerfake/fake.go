// Package antminerfake is a fake stock Antminer for tests, benchmarks and
// the demo. One Miner serves both of a unit's interfaces on two listeners:
// the web UI's CGI scripts over HTTP with Digest authentication
// (get_miner_conf.cgi, set_miner_conf.cgi, get_system_info.cgi) and the
// read-only cgminer API (bmminer replies, NUL-terminated). The work mode
// lives in the configuration: "1" sleeps the unit, "0" wakes it, after
// which the hashrate ramps up over the configured time.
//
// It reproduces the firmware's quirks: the configuration is written one key
// per line with a "]\n," line and leading blank lines, all values strings;
// set_miner_conf.cgi answers "ok". Faults (refused, reset, timeout,
// garbage, reboot mid-command) apply to both interfaces.
//
// It shares no code with the driver: requests and replies are handled here
// with encoding/json and its own Digest server. It runs no background
// goroutine besides its two accept loops.
package antminerfake

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/switchd/switchd/drivers/cgminer/cgminerfake"
)

// Fault re-exports the faults a fake can inject.
type Fault = cgminerfake.Fault

// Faults. FaultReboot fires on the next set_miner_conf.cgi: the write is
// not applied, its connection is dropped, and both interfaces are silent
// for RebootFor.
const (
	FaultNone    = cgminerfake.FaultNone
	FaultRefuse  = cgminerfake.FaultRefuse
	FaultReset   = cgminerfake.FaultReset
	FaultTimeout = cgminerfake.FaultTimeout
	FaultGarbage = cgminerfake.FaultGarbage
	FaultReboot  = cgminerfake.FaultReboot
)

// Options configure a fake unit. Zero values take the defaults.
type Options struct {
	Username string // web UI user (default "root")
	Password string // web UI password (default "root")
	Realm    string // Digest realm (default "antMiner Configuration")
	// ModeKey is the work-mode key the unit uses: "bitmain-work-mode"
	// (default) or "miner-mode".
	ModeKey string
	// NumericMode writes the work mode as a JSON number instead of a
	// string.
	NumericMode bool
	Mode        string           // initial work mode (default "0")
	NominalTHs  float64          // hashrate when fully up (default 110)
	PowerW      float64          // draw when fully up (default 3250)
	IdleW       float64          // draw asleep (default 20)
	Ramp        time.Duration    // time from wake to full hashrate (default 5m)
	RebootFor   time.Duration    // silence of a reboot fault (default 60s)
	SetReply    string           // set_miner_conf.cgi's reply (default "ok")
	Model       string           // default "Antminer S19 Pro"
	Now         func() time.Time // clock (default time.Now)
	NoNUL       bool             // API replies without the trailing NUL
	// RawConf, when set, is what get_miner_conf.cgi answers instead of
	// the unit's own configuration (a recorded reply, for wire tests).
	RawConf []byte
	// RawSystemInfo, when set, is what get_system_info.cgi answers.
	RawSystemInfo []byte
}

// kv is one configuration entry, kept in the firmware's order.
type kv struct {
	key string
	val any
}

// Miner is a fake stock Antminer.
type Miner struct {
	opts Options
	api  cgminerfake.Server

	webMu   sync.Mutex
	web     *http.Server
	webLn   net.Listener
	webAddr string
	webWG   sync.WaitGroup
	closed  bool

	mu     sync.Mutex
	mode   string
	since  time.Time // when it last woke (zero: long ago)
	broken bool
	sets   int
	conf   []kv
	pools  []map[string]string
	auth   *digestServer
	start  time.Time
}

// New returns a fake unit in opts.Mode, fully up if mining.
func New(o Options) *Miner {
	if o.Username == "" {
		o.Username = "root"
	}
	if o.Password == "" {
		o.Password = "root"
	}
	if o.Realm == "" {
		o.Realm = "antMiner Configuration"
	}
	if o.ModeKey == "" {
		o.ModeKey = "bitmain-work-mode"
	}
	if o.Mode == "" {
		o.Mode = "0"
	}
	if o.NominalTHs <= 0 {
		o.NominalTHs = 110
	}
	if o.PowerW <= 0 {
		o.PowerW = 3250
	}
	if o.IdleW <= 0 {
		o.IdleW = 20
	}
	if o.Ramp <= 0 {
		o.Ramp = 5 * time.Minute
	}
	if o.RebootFor <= 0 {
		o.RebootFor = time.Minute
	}
	if o.SetReply == "" {
		o.SetReply = "ok"
	}
	if o.Model == "" {
		o.Model = "Antminer S19 Pro"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &Miner{opts: o, mode: o.Mode, start: o.Now(), auth: newDigestServer(o.Realm, o.Username, o.Password)}
	m.pools = []map[string]string{
		{"url": "stratum+tcp://pool.invalid:3333", "user": "worker.1", "pass": "x"},
		{"url": "stratum+tcp://pool.invalid:443", "user": "worker.1", "pass": "x"},
		{"url": "stratum+tcp://pool.invalid:25", "user": "worker.1", "pass": "x"},
	}
	m.conf = []kv{
		{"api-listen", true}, {"api-network", true},
		{"api-groups", "A:stats:pools:devs:summary:version"}, {"api-allow", "A:0/0,W:*"},
		{"bitmain-fan-ctrl", false}, {"bitmain-fan-pwm", "100"}, {"bitmain-use-vil", true},
		{"bitmain-freq", "675"}, {"bitmain-voltage", "1400"}, {"bitmain-ccdelay", "0"},
		{"bitmain-pwth", "0"}, {o.ModeKey, nil}, {"bitmain-freq-level", "100"},
	}
	m.api = cgminerfake.Server{
		Handle:    m.handleAPI,
		OnReboot:  m.reboot,
		Now:       o.Now,
		RebootFor: o.RebootFor,
		NoNUL:     o.NoNUL,
	}
	return m
}

// Start listens for the web UI on webAddr and the API on apiAddr
// ("127.0.0.1:0" for both in tests; pass the ports to the driver's
// settings).
func (m *Miner) Start(webAddr, apiAddr string) error {
	ln, err := net.Listen("tcp", webAddr)
	if err != nil {
		return err
	}
	if err := m.api.Start(apiAddr); err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(m.handleWeb), ErrorLog: log.New(io.Discard, "", 0),
		ReadHeaderTimeout: 10 * time.Second}
	// One request per connection, so that a fault applies to the next
	// request at once.
	srv.SetKeepAlivesEnabled(false)
	m.webMu.Lock()
	m.web, m.webLn, m.webAddr = srv, ln, ln.Addr().String()
	m.serve(ln)
	m.webMu.Unlock()
	return nil
}

// serve runs the web accept loop on ln. Under webMu.
func (m *Miner) serve(ln net.Listener) {
	m.webWG.Add(1)
	go func() {
		defer m.webWG.Done()
		_ = m.web.Serve(ln)
	}()
}

// WebAddr is the web UI's address.
func (m *Miner) WebAddr() string {
	m.webMu.Lock()
	defer m.webMu.Unlock()
	return m.webAddr
}

// APIAddr is the cgminer API's address.
func (m *Miner) APIAddr() string { return m.api.Addr() }

// Close stops both interfaces.
func (m *Miner) Close() {
	m.webMu.Lock()
	m.closed = true
	if m.web != nil {
		m.web.Close()
	}
	m.webMu.Unlock()
	m.webWG.Wait()
	m.api.Close()
}

// SetFault injects a fault on both interfaces (FaultNone clears).
func (m *Miner) SetFault(f Fault) error {
	prev := m.api.Fault()
	if err := m.api.SetFault(f); err != nil {
		return err
	}
	m.webMu.Lock()
	defer m.webMu.Unlock()
	if m.closed {
		return errors.New("fake closed")
	}
	switch {
	case f == FaultRefuse && m.webLn != nil:
		m.webLn.Close()
		m.webLn = nil
	case prev == FaultRefuse && f != FaultRefuse && m.webLn == nil:
		ln, err := net.Listen("tcp", m.webAddr)
		if err != nil {
			return err
		}
		m.webLn = ln
		m.serve(ln)
	}
	return nil
}

// SetWorkMode changes the work mode as another client (or the front
// panel) would: drift.
func (m *Miner) SetWorkMode(mode string) {
	m.mu.Lock()
	m.setMode(mode)
	m.mu.Unlock()
}

// WorkMode is the unit's work mode.
func (m *Miner) WorkMode() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mode
}

// SetBroken makes the unit stop hashing in any mode (a fault).
func (m *Miner) SetBroken(b bool) {
	m.mu.Lock()
	m.broken = b
	m.mu.Unlock()
}

// Sets counts the configurations written (set_miner_conf.cgi applied).
func (m *Miner) Sets() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sets
}

// RotateNonce issues a new Digest nonce: the old one is answered stale.
func (m *Miner) RotateNonce() {
	m.mu.Lock()
	m.auth.rotate()
	m.mu.Unlock()
}

// HashrateTHs is the current hashrate.
func (m *Miner) HashrateTHs() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hashrate()
}

// PowerW is the current draw (the fake's truth; stock firmware does not
// report it).
func (m *Miner) PowerW() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mode == "1" {
		return m.opts.IdleW
	}
	return m.opts.IdleW + (m.opts.PowerW-m.opts.IdleW)*m.ramp()
}

func (m *Miner) setMode(mode string) {
	if m.mode == "1" && mode != "1" {
		m.since = m.opts.Now()
	}
	m.mode = mode
}

func (m *Miner) ramp() float64 {
	if m.since.IsZero() {
		return 1
	}
	f := float64(m.opts.Now().Sub(m.since)) / float64(m.opts.Ramp)
	return min(max(f, 0), 1)
}

// hashrate in TH/s. Under mu.
func (m *Miner) hashrate() float64 {
	if m.mode == "1" || m.broken {
		return 0
	}
	return m.opts.NominalTHs * m.ramp()
}

// reboot: the configuration (work mode) survives; a working unit ramps
// up again once it is back.
func (m *Miner) reboot() {
	m.mu.Lock()
	m.broken = false
	m.since = m.opts.Now().Add(m.opts.RebootFor)
	m.start = m.since
	m.mu.Unlock()
}

// modeValue is the work mode as the unit writes it.
func (m *Miner) modeValue() any {
	if m.opts.NumericMode {
		n, _ := strconv.Atoi(m.mode)
		return n
	}
	return m.mode
}

// confText renders the configuration the way the firmware does.
func (m *Miner) confText() []byte {
	var b bytes.Buffer
	b.WriteString("\n\n{\n\"pools\" : [\n")
	for i, p := range m.pools {
		fmt.Fprintf(&b, "{\n\"url\" : %s,\n\"user\" : %s,\n\"pass\" : %s\n}", js(p["url"]), js(p["user"]), js(p["pass"]))
		if i < len(m.pools)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("]\n,\n")
	for i, e := range m.conf {
		v := e.val
		if e.key == m.opts.ModeKey {
			v = m.modeValue()
		}
		fmt.Fprintf(&b, "%s : %s", js(e.key), js(v))
		if i < len(m.conf)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("}")
	return b.Bytes()
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// applyConf takes a posted configuration. Under mu.
func (m *Miner) applyConf(body []byte) error {
	var in map[string]any
	if err := json.Unmarshal(body, &in); err != nil {
		return err
	}
	for i, e := range m.conf {
		v, ok := in[e.key]
		if !ok {
			continue
		}
		if e.key == m.opts.ModeKey {
			var mode string
			switch x := v.(type) {
			case string:
				mode = x
			case float64:
				mode = strconv.Itoa(int(x))
			default:
				return fmt.Errorf("bad %s %v", e.key, v)
			}
			m.setMode(mode)
			continue
		}
		m.conf[i].val = v
	}
	if ps, ok := in["pools"].([]any); ok {
		var pools []map[string]string
		for _, p := range ps {
			pm, _ := p.(map[string]any)
			entry := map[string]string{}
			for _, k := range []string{"url", "user", "pass"} {
				s, _ := pm[k].(string)
				entry[k] = s
			}
			pools = append(pools, entry)
		}
		m.pools = pools
	}
	m.sets++
	return nil
}

// drop closes the request's connection with a reset.
func drop(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			cgminerfake.Reset(c)
			return
		}
	}
	panic(http.ErrAbortHandler)
}

func (m *Miner) handleWeb(w http.ResponseWriter, r *http.Request) {
	if m.api.Down() {
		drop(w)
		return
	}
	fault := m.api.Fault()
	if fault == FaultReset {
		drop(w)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	switch fault {
	case FaultTimeout:
		// Never answer; return when the client gives up.
		<-r.Context().Done()
		return
	case FaultGarbage:
		_, _ = io.WriteString(w, cgminerfake.Garbage)
		return
	}
	m.mu.Lock()
	ok, stale := m.auth.check(r.Method, r.URL.RequestURI(), r.Header.Get("Authorization"))
	if !ok {
		w.Header().Set("WWW-Authenticate", m.auth.challenge(stale))
		m.mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, "401 - Unauthorized")
		return
	}
	m.mu.Unlock()

	switch {
	case r.URL.Path == "/cgi-bin/get_miner_conf.cgi":
		if m.opts.RawConf != nil {
			_, _ = w.Write(m.opts.RawConf)
			return
		}
		m.mu.Lock()
		b := m.confText()
		m.mu.Unlock()
		_, _ = w.Write(b)
	case r.URL.Path == "/cgi-bin/set_miner_conf.cgi" && r.Method == http.MethodPost:
		if m.api.TriggerReboot() {
			drop(w)
			return
		}
		m.mu.Lock()
		err := m.applyConf(body)
		m.mu.Unlock()
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, "bad request")
			return
		}
		_, _ = io.WriteString(w, m.opts.SetReply)
	case r.URL.Path == "/cgi-bin/get_system_info.cgi":
		if m.opts.RawSystemInfo != nil {
			_, _ = w.Write(m.opts.RawSystemInfo)
			return
		}
		fmt.Fprintf(w, "{\n\"minertype\":%s,\n\"nettype\":\"DHCP\",\n\"netdevice\":\"eth0\",\n\"hostname\":\"Antminer\",\n"+
			"\"system_mode\":\"GNU/Linux\",\n\"system_filesystem_version\":\"Mon Jun 1 20:27:44 CST 2020\",\n\"firmware_type\":\"Release\"\n}",
			js(m.opts.Model))
	default:
		http.NotFound(w, r)
	}
}

func (m *Miner) handleAPI(r cgminerfake.Request) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.opts.Now()
	st := cgminerfake.Status{Status: "S", When: now.Unix(), Description: "cgminer 1.0.0"}
	elapsed := int64(now.Sub(m.start) / time.Second)
	ghs := m.hashrate() * 1e3
	switch r.Command {
	case "summary":
		st.Code, st.Msg = 11, "Summary"
		return cgminerfake.Reply(st, "SUMMARY", cgminerfake.Section(map[string]any{
			"Elapsed": elapsed, "GHS 5s": ghs, "GHS av": m.opts.NominalTHs * 1e3, "GHS 30m": ghs,
			"Accepted": 4057, "Rejected": 11, "Hardware Errors": 562,
		}))
	case "stats":
		st.Code, st.Msg = 70, "CGMiner stats"
		return cgminerfake.Reply(st, "STATS", cgminerfake.Section(
			map[string]any{"BMMiner": "1.0.0", "Miner": "49.0.1.3", "Type": m.opts.Model},
			map[string]any{"STATS": 0, "ID": "BTM_SOC0", "Elapsed": elapsed, "GHS 5s": ghs,
				"GHS av": m.opts.NominalTHs * 1e3, "Mode": 2, "rate_unit": "GH",
				"chain_rate1": fmt.Sprintf("%.2f", ghs/3), "chain_rate2": fmt.Sprintf("%.2f", ghs/3),
				"chain_rate3": fmt.Sprintf("%.2f", ghs/3)},
		))
	case "version":
		st.Code, st.Msg = 22, "CGMiner versions"
		return cgminerfake.Reply(st, "VERSION", cgminerfake.Section(map[string]any{
			"BMMiner": "1.0.0", "API": "3.1", "Miner": "49.0.1.3", "Type": m.opts.Model,
		}))
	}
	return cgminerfake.ErrorReply(14, "Invalid command", "cgminer 1.0.0")
}
