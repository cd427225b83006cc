// Package cgrpc is the wire shared by the cgminer-family drivers (LuxOS,
// bosminer, Whatsminer API v2, stock cgminer/bmminer): one request per TCP
// connection on port 4028, deadlines on connect, write and read, the
// trailing NUL accepted or absent, lenient repair of vendor JSON, and
// classified errors (retriable: unreachable, timeout; permanent: the device
// refused the command). A reply whose STATUS cannot be read is an error:
// it is never acted on.
//
// It imports only the root package and the standard library; vendor
// commands and quirks live in the driver folders.
package cgrpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/switchd/switchd"
)

// DefaultPort is the cgminer API port.
const DefaultPort = "4028"

// Options bound one call. Zero values take the defaults.
type Options struct {
	DialTimeout time.Duration // connect (default 3s)
	Timeout     time.Duration // the whole exchange after connecting (default 10s)
	MaxReply    int           // bytes read at most (default 4 MiB)
	// Dialer, when set, opens connections (tests, a source address).
	Dialer *net.Dialer
}

func (o *Options) defaults() {
	if o.DialTimeout <= 0 {
		o.DialTimeout = 3 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxReply <= 0 {
		o.MaxReply = 4 << 20
	}
}

// WithPort adds the default port to an address that has none.
func WithPort(addr, port string) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	return net.JoinHostPort(strings.Trim(addr, "[]"), port)
}

// NetError names the operation and address of a network error once: a
// *net.OpError already says both ("dial tcp 10.0.0.5:4028: connect:
// connection refused"), anything else (EOF, a dialer's own error) gets
// "op addr: " in front.
func NetError(op, addr string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		return err
	}
	return fmt.Errorf("%s %s: %w", op, addr, err)
}

// Exchange sends one request on a new connection and returns the raw reply,
// read until the device closes the connection, with trailing NUL bytes
// removed. Errors are classified retriable (the device may answer later).
func Exchange(ctx context.Context, addr string, req []byte, o Options) ([]byte, error) {
	o.defaults()
	d := o.Dialer
	if d == nil {
		d = &net.Dialer{}
	}
	dctx, cancel := context.WithTimeout(ctx, o.DialTimeout)
	conn, err := d.DialContext(dctx, "tcp", addr)
	cancel()
	if err != nil {
		return nil, switchd.Unreachable(NetError("dial", addr, err))
	}
	defer conn.Close()
	deadline := time.Now().Add(o.Timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	// A cancelled context ends the exchange at once.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := conn.Write(req); err != nil {
		return nil, switchd.Unreachable(NetError("write", addr, err))
	}
	buf, err := io.ReadAll(io.LimitReader(conn, int64(o.MaxReply)+1))
	if err != nil {
		if len(buf) == 0 {
			return nil, switchd.Unreachable(NetError("read", addr, err))
		}
		// Some firmware resets the connection after a complete reply.
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, switchd.Unreachable(fmt.Errorf("read %s: %w (after %d bytes)", addr, err, len(buf)))
		}
	}
	if len(buf) > o.MaxReply {
		return nil, switchd.Retriable(fmt.Errorf("read %s: reply longer than %d bytes", addr, o.MaxReply))
	}
	for len(buf) > 0 && buf[len(buf)-1] == 0 {
		buf = buf[:len(buf)-1]
	}
	if len(buf) == 0 {
		return nil, switchd.Retriable(fmt.Errorf("read %s: empty reply", addr))
	}
	return buf, nil
}

// Reply is a decoded reply: section names (STATUS, SUMMARY, ...) to values.
type Reply map[string]any

// ErrNoStatus is returned for a reply whose STATUS cannot be read.
var ErrNoStatus = errors.New("reply has no readable STATUS")

// Decode repairs and parses a reply. It fails only when even the repaired
// text is not a JSON object.
func Decode(raw []byte) (Reply, error) {
	var r Reply
	if err := json.Unmarshal(Repair(raw), &r); err != nil {
		return nil, fmt.Errorf("unreadable reply (%s): %w", excerpt(raw), err)
	}
	if r == nil {
		return nil, fmt.Errorf("unreadable reply (%s): not an object", excerpt(raw))
	}
	return r, nil
}

// excerpt is the start of a reply, for error messages.
func excerpt(b []byte) string {
	const n = 80
	s := string(b)
	if len(s) > n {
		s = s[:n] + "..."
	}
	return strconv.Quote(s)
}

// Status is a reply's STATUS: in the cgminer shape an array of one object
// ({"STATUS":[{"STATUS":"S","Code":..}]}), in Whatsminer's flat v2 shape
// the top-level fields ({"STATUS":"S","Code":131,"Msg":...}).
type Status struct {
	Status      string // S success, I info, W warning, E error, F fatal
	Code        int
	Msg         string
	When        int64
	Description string
	// MsgValue is Msg when it is not a string (Whatsminer puts objects
	// there).
	MsgValue any
}

// OK reports whether the status is a success, info or warning.
func (s Status) OK() bool { return s.Status == "S" || s.Status == "I" || s.Status == "W" }

// Status reads the reply's STATUS. It fails when there is none, or when it
// has no recognisable status letter.
func (r Reply) Status() (Status, error) {
	var m map[string]any
	switch v := r["STATUS"].(type) {
	case []any:
		if len(v) > 0 {
			m, _ = v[0].(map[string]any)
		}
	case map[string]any:
		m = v
	case string:
		m = r // flat shape
	}
	if m == nil {
		return Status{}, ErrNoStatus
	}
	st := Status{Status: strings.ToUpper(strings.TrimSpace(String(m["STATUS"])))}
	switch st.Status {
	case "S", "I", "W", "E", "F":
	default:
		return Status{}, fmt.Errorf("%w: STATUS %q", ErrNoStatus, st.Status)
	}
	if c, ok := Number(m["Code"]); ok {
		st.Code = int(c)
	}
	if w, ok := Number(m["When"]); ok {
		st.When = int64(w)
	}
	st.MsgValue = m["Msg"]
	st.Msg = String(m["Msg"])
	st.Description = String(m["Description"])
	return st, nil
}

// Section returns the objects of a section (SUMMARY, STATS, ...); a
// section given as one object is returned as a list of one.
func (r Reply) Section(name string) []map[string]any {
	switch v := r[name].(type) {
	case []any:
		out := make([]map[string]any, 0, len(v))
		for _, e := range v {
			if m, ok := e.(map[string]any); ok {
				out = append(out, m)
			}
		}
		return out
	case map[string]any:
		return []map[string]any{v}
	}
	return nil
}

// First returns the first object of a section, or nil.
func (r Reply) First(name string) map[string]any {
	if s := r.Section(name); len(s) > 0 {
		return s[0]
	}
	return nil
}

// Number reads a number sent as a JSON number or as a string ("504.56",
// "  0.0000"); NaN and infinities (sent as "nan", "inf") are not numbers.
func Number(v any) (float64, bool) {
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case string:
		var err error
		f, err = strconv.ParseFloat(strings.Trim(strings.TrimSpace(x), "'"), 64)
		if err != nil {
			return 0, false
		}
	case bool:
		return 0, false
	default:
		return 0, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// String reads a string field; numbers are formatted, single quotes some
// firmware wraps values in are removed, other types give "".
func String(v any) string {
	switch x := v.(type) {
	case string:
		return strings.Trim(strings.TrimSpace(x), "'")
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}

// Bool reads a boolean sent as a JSON boolean or as "true"/"false".
func Bool(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(x))
		return b, err == nil
	}
	return false, false
}

// Request encodes a JSON request {"command":cmd,"parameter":param}; an
// empty param is left out.
func Request(cmd, param string) []byte {
	req := map[string]string{"command": cmd}
	if param != "" {
		req["parameter"] = param
	}
	b, _ := json.Marshal(req)
	return b
}

// Call sends one command and returns its decoded reply, after checking that
// the STATUS is readable and not an error. A STATUS of E or F is a
// *StatusError (permanent: the device understood and refused).
func Call(ctx context.Context, addr, cmd, param string, o Options) (Reply, error) {
	raw, err := Exchange(ctx, addr, Request(cmd, param), o)
	if err != nil {
		return nil, err
	}
	return Check(cmd, raw)
}

// Check decodes a raw reply to cmd and checks its STATUS.
func Check(cmd string, raw []byte) (Reply, error) {
	r, err := Decode(raw)
	if err != nil {
		// Garbage now may be a good reply later (a miner rebooting).
		return nil, switchd.Retriable(fmt.Errorf("%s: %w", cmd, err))
	}
	st, err := r.Status()
	if err != nil {
		return nil, switchd.Retriable(fmt.Errorf("%s: %w (%s)", cmd, err, excerpt(raw)))
	}
	if !st.OK() {
		return r, switchd.Permanent(&StatusError{Command: cmd, Status: st})
	}
	return r, nil
}

// StatusError is a reply whose STATUS says the command failed.
type StatusError struct {
	Command string
	Status  Status
}

func (e *StatusError) Error() string {
	msg := e.Status.Msg
	if msg == "" && e.Status.MsgValue != nil {
		b, _ := json.Marshal(e.Status.MsgValue)
		msg = string(b)
	}
	return fmt.Sprintf("%s: device says %s code %d: %s", e.Command, e.Status.Status, e.Status.Code, msg)
}
