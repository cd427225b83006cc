// Package cgminerfake is a fake miner speaking the cgminer API over real
// TCP, for tests, benchmarks and the demo: plain cgminer as on Canaan Avalon
// units, or stock Bitmain bmminer reads. Its Server (one request per
// connection, the trailing NUL, injected faults) is also used by the
// bosminer and Antminer fakes.
//
// It shares no parsing code with the drivers: requests are decoded here with
// encoding/json, replies written by hand. It imports the standard library
// only. A fake runs no background goroutine besides its accept loop (one
// goroutine per accepted connection); ramps are computed from the clock when
// asked.
package cgminerfake

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// Fault is a failure the fake injects.
type Fault int

// The faults a fake can inject.
const (
	FaultNone    Fault = iota
	FaultRefuse        // the listener is closed: connections are refused
	FaultReset         // connections are accepted, then reset at once
	FaultTimeout       // the request is read and never answered
	FaultGarbage       // the reply is not JSON
	// FaultReboot: the next write command is not applied; its connection
	// is dropped and the unit answers nothing for the reboot time, then
	// comes back in its default state. It fires once.
	FaultReboot
)

// String names the fault.
func (f Fault) String() string {
	switch f {
	case FaultNone:
		return "none"
	case FaultRefuse:
		return "refuse"
	case FaultReset:
		return "reset"
	case FaultTimeout:
		return "timeout"
	case FaultGarbage:
		return "garbage"
	case FaultReboot:
		return "reboot"
	}
	return "fault(?)"
}

// Garbage is what FaultGarbage sends: not JSON, no STATUS.
const Garbage = "\xff\xfeHTTP/1.0 400 garbage }{ ,, not json"

// Request is one decoded API request.
type Request struct {
	Command   string
	Parameter string
}

// ParseRequest decodes a JSON request ({"command":..,"parameter":..}) or a
// text one ("command|parameter").
func ParseRequest(b []byte) (Request, error) {
	b = bytes.TrimRight(b, "\x00\r\n ")
	if len(b) > 0 && b[0] == '{' {
		var req struct {
			Command   string `json:"command"`
			Cmd       string `json:"cmd"`
			Parameter any    `json:"parameter"`
		}
		if err := json.Unmarshal(b, &req); err != nil {
			return Request{}, err
		}
		r := Request{Command: req.Command}
		if r.Command == "" {
			r.Command = req.Cmd
		}
		switch p := req.Parameter.(type) {
		case string:
			r.Parameter = p
		case nil:
		default:
			pb, _ := json.Marshal(p)
			r.Parameter = string(pb)
		}
		if r.Command == "" {
			return Request{}, errors.New("missing command")
		}
		return r, nil
	}
	cmd, param, _ := strings.Cut(string(b), "|")
	if cmd == "" {
		return Request{}, errors.New("empty request")
	}
	return Request{Command: cmd, Parameter: param}, nil
}

// Server is a cgminer-API TCP server: it reads one request per connection,
// writes one reply followed by a NUL byte and closes, and injects faults.
// Set the exported fields before Start.
type Server struct {
	// Handle answers one request with the reply text (without the NUL).
	Handle func(Request) []byte
	// IsWrite tells which commands a FaultReboot interrupts.
	IsWrite func(cmd string) bool
	// OnReboot is called (without the server's lock) when a reboot fault
	// fires, to put the unit back in its default state.
	OnReboot func()
	// Now is the clock (default time.Now); reboots are timed with it.
	Now func() time.Time
	// RebootFor is how long a reboot keeps the unit silent (default 30s).
	RebootFor time.Duration
	// NoNUL leaves out the trailing NUL (some firmware omits it).
	NoNUL bool

	mu        sync.Mutex
	ln        net.Listener
	addr      string
	fault     Fault
	downUntil time.Time
	conns     map[net.Conn]struct{}
	closed    bool
	wg        sync.WaitGroup
}

// Start listens on addr ("127.0.0.1:0" picks a free port).
func (s *Server) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.ln, s.addr = ln, ln.Addr().String()
	if s.conns == nil {
		s.conns = map[net.Conn]struct{}{}
	}
	s.mu.Unlock()
	s.serve(ln)
	return nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

func (s *Server) serve(ln net.Listener) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			if s.closed {
				s.mu.Unlock()
				c.Close()
				return
			}
			s.conns[c] = struct{}{}
			s.wg.Add(1)
			s.mu.Unlock()
			go func() {
				defer s.wg.Done()
				s.handle(c)
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
		}
	}()
}

// Close stops the server and drops open connections.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// SetFault injects f (FaultNone clears). Leaving FaultRefuse listens again
// on the same address.
func (s *Server) SetFault(f Fault) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("server closed")
	}
	prev := s.fault
	s.fault = f
	switch {
	case f == FaultRefuse && s.ln != nil:
		s.ln.Close()
		s.ln = nil
	case prev == FaultRefuse && f != FaultRefuse && s.ln == nil:
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			return err
		}
		s.ln = ln
		s.serve(ln)
	}
	return nil
}

// Fault returns the injected fault.
func (s *Server) Fault() Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fault
}

// RebootUntil keeps the unit silent (connections reset) until t: a
// reboot started elsewhere (the Antminer fake's web side).
func (s *Server) RebootUntil(t time.Time) {
	s.mu.Lock()
	s.downUntil = t
	s.mu.Unlock()
}

// Down reports whether the unit is rebooting now.
func (s *Server) Down() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now().Before(s.downUntil)
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Reset closes c with a TCP reset rather than a clean close.
func Reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

// TriggerReboot fires an armed FaultReboot: it clears the fault, starts
// the reboot and reports true. The caller drops its connection.
func (s *Server) TriggerReboot() bool {
	s.mu.Lock()
	if s.fault != FaultReboot {
		s.mu.Unlock()
		return false
	}
	s.fault = FaultNone
	d := s.RebootFor
	if d <= 0 {
		d = 30 * time.Second
	}
	s.downUntil = s.now().Add(d)
	s.mu.Unlock()
	if s.OnReboot != nil {
		s.OnReboot()
	}
	return true
}

func (s *Server) handle(c net.Conn) {
	defer c.Close()
	s.mu.Lock()
	fault, down := s.fault, s.now().Before(s.downUntil)
	s.mu.Unlock()
	if down || fault == FaultReset {
		Reset(c)
		return
	}
	// A bound on a stuck client; the fake never waits on its own.
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	req, err := readRequest(c)
	if err != nil {
		return
	}
	switch fault {
	case FaultTimeout:
		// Never answer; return when the client gives up.
		_ = c.SetDeadline(time.Time{})
		_, _ = io.Copy(io.Discard, c)
		return
	case FaultGarbage:
		_, _ = c.Write([]byte(Garbage))
		return
	}
	r, err := ParseRequest(req)
	var reply []byte
	if err != nil {
		reply = ErrorReply(23, "Invalid JSON", "")
	} else {
		if s.IsWrite != nil && s.IsWrite(r.Command) && s.TriggerReboot() {
			Reset(c)
			return
		}
		reply = s.Handle(r)
	}
	if !s.NoNUL {
		reply = append(reply, 0)
	}
	_, _ = c.Write(reply)
}

// readRequest reads one request: cgminer takes what one read returns; a
// JSON request is read until it is complete, or until the client pauses
// (then what came is the request, as cgminer would take it).
func readRequest(c net.Conn) ([]byte, error) {
	var buf []byte
	tmp := make([]byte, 4096)
	for {
		n, err := c.Read(tmp)
		buf = append(buf, tmp[:n]...)
		trimmed := bytes.TrimSpace(bytes.TrimRight(buf, "\x00"))
		if len(trimmed) > 0 && (trimmed[0] != '{' || json.Valid(trimmed)) {
			return buf, nil
		}
		if err != nil {
			if len(trimmed) > 0 {
				return buf, nil
			}
			return nil, err
		}
		if len(buf) > 64<<10 {
			return buf, nil
		}
		if len(trimmed) > 0 {
			_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		}
	}
}

// ErrorReply is a cgminer error reply (STATUS E).
func ErrorReply(code int, msg, desc string) []byte {
	return Reply(Status{Status: "E", Code: code, Msg: msg, Description: desc}, "", nil)
}

// Status is a reply's STATUS entry.
type Status struct {
	Status      string `json:"STATUS"`
	When        int64  `json:"When"`
	Code        int    `json:"Code"`
	Msg         string `json:"Msg"`
	Description string `json:"Description"`
}

// Reply encodes {"STATUS":[st],section:body,"id":1}; body is raw JSON for
// the section's value (an array), or nil for none.
func Reply(st Status, section string, body []byte) []byte {
	sb, _ := json.Marshal(st)
	var b bytes.Buffer
	b.WriteString(`{"STATUS":[`)
	b.Write(sb)
	b.WriteString(`]`)
	if section != "" {
		b.WriteString(`,"`)
		b.WriteString(section)
		b.WriteString(`":`)
		b.Write(body)
	}
	b.WriteString(`,"id":1}`)
	return b.Bytes()
}

// Section encodes objects as a JSON array, for Reply.
func Section(objs ...any) []byte {
	b, _ := json.Marshal(objs)
	return b
}
