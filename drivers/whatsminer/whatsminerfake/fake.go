// Package whatsminerfake is a fake Whatsminer speaking btminer API v2 over
// real TCP: one JSON request per connection, replies ending in a NUL byte,
// plaintext reads (summary, status, get_version, devdetails, devs/edevs),
// the get_token handshake and AES-256-ECB encrypted writes (power_off,
// power_on, set_power_pct), with the real firmware's quirks (a \' escape
// and single quotes in "Firmware Version", an optional trailing ",}",
// builds that want "command" instead of "cmd") and injectable faults.
//
// It shares no code with the driver (no import of the driver or of
// cgrpc): requests are parsed with encoding/json and the crypto is its
// own. It runs no background goroutine besides its accept loop and one
// goroutine per open connection; the wake ramp is computed from the
// injected clock when asked.
package whatsminerfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchd/switchd"
)

// Keys says which request key the firmware reads.
type Keys int

// Request key styles.
const (
	// KeysBoth accepts {"cmd":...} and {"command":...} (current builds).
	KeysBoth Keys = iota
	// KeysCommand wants "command": "cmd" gets cgminer's code 24
	// "Missing JSON 'command'" (the recorded M30S reply).
	KeysCommand
	// KeysCmd wants "cmd": "command" gets code 14 "invalid cmd".
	KeysCmd
)

// Fault is an injected misbehaviour.
type Fault int

// Faults.
const (
	FaultNone Fault = iota
	// FaultRefuse resets every connection as soon as it is accepted.
	FaultRefuse
	// FaultTimeout reads the request and never answers.
	FaultTimeout
	// FaultGarbage answers bytes that are not JSON.
	FaultGarbage
	// FaultReboot makes the next command drop its connection without an
	// answer and without effect; the unit then resets connections for
	// RebootDelay and comes back in its previous mode, with its tokens
	// and power percentage lost and the wake ramp restarted.
	FaultReboot
	// FaultTokenLimit answers every get_token with code 136 (token over
	// max times).
	FaultTokenLimit
)

// Options configure a fake. Zero values take the defaults.
type Options struct {
	// Password is the admin password (default "admin").
	Password string
	// Now is the clock of the ramp, tokens and reboot (default time.Now).
	Now func() time.Time
	// Off starts the unit asleep (btmineroff true).
	Off bool
	// HashrateTHs and PowerW are full-power figures (default 100 TH/s,
	// 3400 W); IdleW is the draw when asleep (default 15 W).
	HashrateTHs, PowerW, IdleW float64
	// Ramp is the wake-up time from power_on to full hashrate (default
	// 5m; negative means instant).
	Ramp time.Duration
	// RebootDelay is how long a reboot lasts (default 2m).
	RebootDelay time.Duration
	// MaxTokens is how many live tokens the unit hands out (default 32).
	MaxTokens int
	// TokenTTL is a token's life (default 30m).
	TokenTTL time.Duration
	// Model and Firmware identify the unit (defaults "M30S+V40",
	// "20210322.22.REL").
	Model, Firmware string
	// Keys is the request key the firmware reads.
	Keys Keys
	// EscapeQuirk writes "Firmware Version":"\'...\'" in summary, the
	// invalid escape of the recorded M20S reply.
	EscapeQuirk bool
	// TrailingComma ends the SUMMARY object with ",}".
	TrailingComma bool
	// NoStatus answers `status` with an invalid-command error, as builds
	// before the btminer API did.
	NoStatus bool
	// V3 serves btminer API v3 instead of v2: every message framed by a
	// 4-byte little-endian length, dotted commands, writes signed with a
	// SHA-256 token (see v3.go).
	V3 bool
	// Account is the v3 account writes must name (default "super").
	Account string
}

// Miner is one fake unit.
type Miner struct {
	opt Options

	mu          sync.Mutex
	ln          net.Listener
	conns       map[net.Conn]struct{}
	closed      bool
	off         bool
	since       time.Time // mode (or reboot end) since, for the ramp
	pct         int       // set_power_pct, 100 when not set
	hashFault   bool
	fault       Fault
	rebootUntil time.Time
	password    string
	salt        string
	passwdMD5   string
	tokens      map[string]time.Time // token -> expiry
	writes      []string             // privileged commands accepted
	wg          sync.WaitGroup
}

// New returns a stopped fake.
func New(opt Options) *Miner {
	if opt.Password == "" {
		opt.Password = "admin"
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.HashrateTHs == 0 {
		opt.HashrateTHs = 100
	}
	if opt.PowerW == 0 {
		opt.PowerW = 3400
	}
	if opt.IdleW == 0 {
		opt.IdleW = 15
	}
	if opt.Ramp == 0 {
		opt.Ramp = 5 * time.Minute
	}
	if opt.RebootDelay == 0 {
		opt.RebootDelay = 2 * time.Minute
	}
	if opt.MaxTokens == 0 {
		opt.MaxTokens = 32
	}
	if opt.TokenTTL == 0 {
		opt.TokenTTL = 30 * time.Minute
	}
	if opt.Model == "" {
		opt.Model = "M30S+V40"
	}
	if opt.Firmware == "" {
		opt.Firmware = "20210322.22.REL"
	}
	if opt.Account == "" {
		opt.Account = "super"
	}
	m := &Miner{
		opt:    opt,
		conns:  map[net.Conn]struct{}{},
		off:    opt.Off,
		pct:    100,
		salt:   randomSalt(),
		tokens: map[string]time.Time{},
	}
	// Started long ago: a mining unit is at full hashrate from the start.
	m.since = opt.Now().Add(-24 * time.Hour)
	m.setPasswordLocked(opt.Password)
	return m
}

// Start listens on addr ("127.0.0.1:0", "127.0.3.7:4028") and serves.
func (m *Miner) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("whatsminerfake: %w", err)
	}
	m.mu.Lock()
	m.ln = ln
	m.mu.Unlock()
	m.wg.Add(1)
	go m.accept(ln)
	return nil
}

// Addr is the listening address.
func (m *Miner) Addr() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ln == nil {
		return ""
	}
	return m.ln.Addr().String()
}

// Close stops listening, drops open connections and waits for them.
func (m *Miner) Close() {
	m.mu.Lock()
	m.closed = true
	if m.ln != nil {
		_ = m.ln.Close()
	}
	for c := range m.conns {
		_ = c.Close()
	}
	m.mu.Unlock()
	m.wg.Wait()
}

// SetFault injects f (FaultNone clears it).
func (m *Miner) SetFault(f Fault) {
	m.mu.Lock()
	m.fault = f
	m.mu.Unlock()
}

// SetMode changes the unit's mode on its own (drift): ModeOff stops
// mining as power_off would, anything else starts the wake ramp.
func (m *Miner) SetMode(mode switchd.Mode) {
	m.mu.Lock()
	m.setOffLocked(mode == switchd.ModeOff)
	m.mu.Unlock()
}

// SetHashFault makes a mining unit hash nothing (a fault: mining, not
// asleep, zero hashrate).
func (m *Miner) SetHashFault(on bool) {
	m.mu.Lock()
	m.hashFault = on
	m.mu.Unlock()
}

// SetPassword changes the admin password; live tokens are dropped.
func (m *Miner) SetPassword(pw string) {
	m.mu.Lock()
	m.setPasswordLocked(pw)
	m.mu.Unlock()
}

// ExpireTokens forgets every token, as the firmware does after 30 min.
func (m *Miner) ExpireTokens() {
	m.mu.Lock()
	clear(m.tokens)
	m.mu.Unlock()
}

// Mode is the unit's mode: ModeOff when btminer is off.
func (m *Miner) Mode() switchd.Mode {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.off {
		return switchd.ModeOff
	}
	return switchd.ModeMining
}

// PowerPercent is the last set_power_pct (100 when none).
func (m *Miner) PowerPercent() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pct
}

// Rebooting reports whether the unit is rebooting now.
func (m *Miner) Rebooting() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.opt.Now().Before(m.rebootUntil)
}

// Writes lists the privileged commands accepted, in order.
func (m *Miner) Writes() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.writes...)
}

// Tokens is the number of live tokens.
func (m *Miner) Tokens() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.liveTokensLocked(m.opt.Now())
}

// Reading is what the unit would report now: hashrate and power.
func (m *Miner) Reading() (ths, watts float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.readingLocked(m.opt.Now())
}

func (m *Miner) setPasswordLocked(pw string) {
	m.password = pw
	m.passwdMD5 = cryptMD5(pw, m.salt)
	clear(m.tokens)
}

func (m *Miner) setOffLocked(off bool) {
	if m.off != off {
		m.since = m.opt.Now()
	}
	m.off = off
}

// readingLocked computes the ramp: hashrate and power above idle grow
// linearly from the last power_on (or reboot) over Ramp.
func (m *Miner) readingLocked(now time.Time) (ths, watts float64) {
	if m.off {
		return 0, m.opt.IdleW
	}
	frac := 1.0
	if m.opt.Ramp > 0 {
		frac = min(1, max(0, float64(now.Sub(m.since))/float64(m.opt.Ramp)))
	}
	scale := float64(m.pct) / 100
	full := m.opt.IdleW + (m.opt.PowerW-m.opt.IdleW)*scale
	watts = m.opt.IdleW + (full-m.opt.IdleW)*frac
	if m.hashFault {
		return 0, m.opt.IdleW + 0.1*(m.opt.PowerW-m.opt.IdleW)
	}
	return m.opt.HashrateTHs * scale * frac, watts
}

func (m *Miner) liveTokensLocked(now time.Time) int {
	for t, exp := range m.tokens {
		if !now.Before(exp) {
			delete(m.tokens, t)
		}
	}
	return len(m.tokens)
}

func (m *Miner) accept(ln net.Listener) {
	defer m.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			_ = c.Close()
			return
		}
		m.conns[c] = struct{}{}
		m.wg.Add(1)
		m.mu.Unlock()
		go m.serve(c)
	}
}

// reset closes c with a TCP RST, as a unit with nothing listening would
// answer (close to "connection refused" for a client).
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

func (m *Miner) serve(c net.Conn) {
	defer m.wg.Done()
	defer func() {
		m.mu.Lock()
		delete(m.conns, c)
		m.mu.Unlock()
		_ = c.Close()
	}()

	m.mu.Lock()
	now := m.opt.Now()
	fault, rebooting := m.fault, now.Before(m.rebootUntil)
	m.mu.Unlock()
	if fault == FaultRefuse || rebooting {
		reset(c)
		return
	}
	// Real units drop a client that sends nothing within 10 s (I/O
	// deadline only, on the wall clock).
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var req map[string]any
	if m.opt.V3 {
		r, err := readV3(c)
		if err != nil {
			return
		}
		req = r
	} else {
		dec := json.NewDecoder(c)
		dec.UseNumber()
		if err := dec.Decode(&req); err != nil {
			return
		}
	}
	_ = c.SetReadDeadline(time.Time{})

	m.mu.Lock()
	fault = m.fault
	if fault == FaultReboot {
		m.fault = FaultNone
		m.rebootLocked()
	}
	m.mu.Unlock()
	switch fault {
	case FaultTimeout:
		_, _ = io.Copy(io.Discard, c) // until the client gives up
		return
	case FaultGarbage:
		garbage := []byte("\x15\x03\x01 garbage <html>not json\x00")
		if m.opt.V3 {
			garbage = frameV3(garbage)
		}
		_, _ = c.Write(garbage)
		return
	case FaultReboot:
		reset(c)
		return
	}
	if m.opt.V3 {
		_, _ = c.Write(frameV3(m.handleV3(req)))
		return
	}
	reply, hangUp := m.handle(req)
	if hangUp {
		return
	}
	_, _ = c.Write(append(reply, 0))
}

// rebootLocked starts a reboot: the unit comes back in its mode, with the
// ramp restarted, no tokens and no power percentage.
func (m *Miner) rebootLocked() {
	m.rebootUntil = m.opt.Now().Add(m.opt.RebootDelay)
	m.since = m.rebootUntil
	m.pct = 100
	clear(m.tokens)
}

// handle answers one request; hangUp closes without a reply.
func (m *Miner) handle(req map[string]any) (reply []byte, hangUp bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.opt.Now()
	if _, ok := req["enc"]; ok {
		return m.privilegedLocked(now, req)
	}
	cmd, key := "", ""
	for _, k := range []string{"cmd", "command"} {
		if s, ok := req[k].(string); ok {
			cmd, key = s, k
			break
		}
	}
	switch {
	case cmd == "":
		return cgError(now, 24, "Missing JSON 'command'"), false
	case m.opt.Keys == KeysCommand && key == "cmd":
		return cgError(now, 24, "Missing JSON 'command'"), false
	case m.opt.Keys == KeysCmd && key == "command":
		return flatError(now, 14, "invalid cmd"), false
	}
	switch cmd {
	case "summary":
		return m.summaryLocked(now), false
	case "status":
		if m.opt.NoStatus {
			return cgError(now, 14, "Invalid command"), false
		}
		return fmt.Appendf(nil, `{"STATUS":"S","When":%d,"Code":131,"Msg":{"btmineroff":"%t","Firmware Version":"'%s'"},"Description":"whatsminer v1.4.0"}`,
			now.Unix(), m.off, m.opt.Firmware), false
	case "get_version":
		return fmt.Appendf(nil, `{"STATUS":"S","When":%d,"Code":131,"Msg":{"api_ver":"whatsminer v1.4.0","fw_ver":"%s"},"Description":"whatsminer v1.4.0"}`,
			now.Unix(), m.opt.Firmware), false
	case "devdetails":
		return fmt.Appendf(nil, `{"STATUS":[{"STATUS":"S","When":%d,"Code":69,"Msg":"Device Details","Description":"btminer"}],"DEVDETAILS":[{"DEVDETAILS":0,"Name":"SM","ID":0,"Driver":"bitmicro","Kernel":"","Model":"%s"}],"id":1}`,
			now.Unix(), m.opt.Model), false
	case "devs", "edevs":
		return m.devsLocked(now), false
	case "get_token":
		return m.tokenLocked(now), false
	}
	return cgError(now, 14, "Invalid command"), false
}

func (m *Miner) summaryLocked(now time.Time) []byte {
	ths, watts := m.readingLocked(now)
	mhs := ths * 1e6
	fw := "'" + m.opt.Firmware + "'"
	if m.opt.EscapeQuirk {
		fw = `\'` + m.opt.Firmware + `\'`
	}
	end := "}"
	if m.opt.TrailingComma {
		end = ",}"
	}
	// "MHS av" is a lifetime average: it stays up after mining stops, so
	// a client must not read sleep from it.
	avg := m.opt.HashrateTHs * 1e6 * 0.98
	return fmt.Appendf(nil, `{"STATUS":[{"STATUS":"S","When":%d,"Code":11,"Msg":"Summary","Description":"btminer"}],"SUMMARY":[{"Elapsed":%d,"MHS av":%.2f,"MHS 5s":%.2f,"MHS 1m":%.2f,"HS RT":%.2f,"Accepted":2296,"Rejected":1,"Temperature":72.00,"Power":%d,"Power_RT":%d,"Power Limit":3500,"Power Mode":"Normal","Firmware Version":"%s","MAC":"C4:08:28:00:A4:19","Factory GHS":%d%s],"id":1}`,
		now.Unix(), int64(now.Sub(m.since).Seconds()), avg, mhs, mhs, mhs, int(watts), int(watts), fw, int(m.opt.HashrateTHs*1000), end)
}

func (m *Miner) devsLocked(now time.Time) []byte {
	ths, _ := m.readingLocked(now)
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"STATUS":[{"STATUS":"S","When":%d,"Code":9,"Msg":"3 ASC(s)","Description":"btminer"}],"DEVS":[`, now.Unix())
	for i := range 3 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"ASC":%d,"Name":"SM","ID":%d,"Slot":%d,"Enabled":"Y","Status":"Alive","MHS 5s":%.2f}`, i, i, i, ths*1e6/3)
	}
	b.WriteString(`],"id":1}`)
	return b.Bytes()
}

func (m *Miner) tokenLocked(now time.Time) []byte {
	if m.fault == FaultTokenLimit || m.liveTokensLocked(now) >= m.opt.MaxTokens {
		return flatError(now, 136, "over max token")
	}
	tm := fmt.Sprintf("%04d", now.Unix()%10000)
	newSalt := randomSalt()
	m.tokens[cryptMD5(m.passwdMD5+tm, newSalt)] = now.Add(m.opt.TokenTTL)
	return fmt.Appendf(nil, `{"STATUS":"S","When":%d,"Code":134,"Msg":{"time":"%s","salt":"%s","newsalt":"%s"},"Description":"whatsminer v1.4.0"}`,
		now.Unix(), tm, m.salt, newSalt)
}

// privilegedLocked answers {"enc":1,"data":...}. Errors come back in
// plaintext; success encrypted as {"enc":"..."}.
func (m *Miner) privilegedLocked(now time.Time, req map[string]any) ([]byte, bool) {
	data, _ := req["data"].(string)
	key := aesKey(m.passwdMD5)
	plain, err := openECB(key, data)
	if err != nil {
		return flatError(now, 137, "base64 decode error"), false
	}
	var body map[string]any
	if err := json.Unmarshal(plain, &body); err != nil {
		// A client with the wrong password encrypted with the wrong key:
		// the token inside cannot even be read.
		return flatError(now, 135, "check token err"), false
	}
	tok, _ := body["token"].(string)
	if exp, ok := m.tokens[tok]; !ok || !now.Before(exp) {
		return flatError(now, 135, "check token err"), false
	}
	cmd, _ := body["cmd"].(string)
	if cmd == "" {
		cmd, _ = body["command"].(string)
	}
	ok := func() ([]byte, bool) {
		m.writes = append(m.writes, cmd)
		msg := fmt.Appendf(nil, `{"STATUS":"S","When":%d,"Code":131,"Msg":"","Description":"whatsminer v1.4.0"}`, now.Unix())
		return fmt.Appendf(nil, `{"enc":"%s"}`, sealECB(key, msg)), false
	}
	switch cmd {
	case "power_off":
		m.setOffLocked(true)
		if s, _ := body["respbefore"].(string); s != "true" {
			// Powered off before answering.
			m.writes = append(m.writes, cmd)
			return nil, true
		}
		return ok()
	case "power_on":
		m.setOffLocked(false)
		return ok()
	case "set_power_pct":
		p, err := strconv.Atoi(strings.TrimSpace(fmt.Sprint(body["percent"])))
		if err != nil || p < 0 || p > 100 {
			return flatError(now, 14, "invalid data"), false
		}
		m.pct = p
		return ok()
	case "adjust_power_limit":
		// Accepted, then the unit reboots: what a curtailment must never
		// cause.
		m.writes = append(m.writes, cmd)
		m.rebootLocked()
		return nil, true
	}
	return flatError(now, 14, "invalid cmd"), false
}

// flatError is btminer's own error shape: STATUS a string.
func flatError(now time.Time, code int, msg string) []byte {
	return fmt.Appendf(nil, `{"STATUS":"E","When":%d,"Code":%d,"Msg":"%s","Description":""}`, now.Unix(), code, msg)
}

// cgError is the cgminer error shape of the recorded M30S reply.
func cgError(now time.Time, code int, msg string) []byte {
	return fmt.Appendf(nil, `{"STATUS":[{"STATUS":"E","When":%d,"Code":%d,"Msg":"%s","Description":"cgminer 4.9.2"}],"id":1}`, now.Unix(), code, msg)
}
