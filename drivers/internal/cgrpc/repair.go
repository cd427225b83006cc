package cgrpc

import (
	"bytes"
	"encoding/json"
	"regexp"
)

// Repair turns a cgminer-family reply into strict JSON, tolerating the
// quirks real firmware sends (see ../shared/fixtures/miners/SOURCES.md):
//
//   - trailing NUL bytes and whitespace;
//   - objects or values concatenated without a comma ("}{", a missing
//     comma before a key); at the top level, a second object is merged into
//     the first;
//   - a leading comma ("," or "[,{");
//   - trailing commas (",}" and ",]");
//   - a key with no value ("k" : ,), read as null;
//   - raw control characters (newlines) inside strings, and invalid escapes
//     such as \' (the backslash is dropped);
//   - bare NaN, inf, Infinity, None (read as null);
//   - a reply cut short: open strings and containers are closed;
//   - a JSONP wrapper, name({...}); (the Avalon web UI's reply), unwrapped.
//
// Repair never fails; whether the result holds a readable STATUS is for the
// caller to check. Valid JSON comes back unchanged apart from the trailing
// bytes.
func Repair(in []byte) []byte {
	in = bytes.TrimRight(in, "\x00 \t\r\n")
	in = bytes.TrimLeft(in, " \t\r\n\x00")
	in = unwrapJSONP(in)
	r := repairer{in: in, out: make([]byte, 0, len(in)+16)}
	r.run()
	return r.out
}

// jsonp is a JSONP reply: a JavaScript identifier, "(", the value, ")" and
// an optional ";".
var jsonp = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$.]*\s*\(([\s\S]*)\)\s*;?$`)

// unwrapJSONP returns the value inside a JSONP wrapper, or in unchanged.
func unwrapJSONP(in []byte) []byte {
	if len(in) == 0 || in[0] == '{' || in[0] == '[' {
		return in
	}
	if m := jsonp.FindSubmatch(in); m != nil {
		return bytes.TrimSpace(m[1])
	}
	return in
}

// container is an open object or array and where the parser is inside it.
type container struct {
	obj bool
	// state within the container:
	//   0: just opened or after a comma — expecting a key (object) or value
	//   1: (object) after a key — expecting ':'
	//   2: (object) after ':' — expecting a value
	//   3: after a value — expecting ',' or the close
	state int
}

type repairer struct {
	in    []byte
	i     int
	out   []byte
	stack []container
	// topDone is set once a top-level value is complete.
	topDone bool
	// topObj is whether that top-level value was an object.
	topObj bool
}

// dropComma removes a comma just written before a close.
func (r *repairer) dropComma() {
	if n := len(r.out); n > 0 && r.out[n-1] == ',' {
		r.out = r.out[:n-1]
	}
}

func (r *repairer) top() *container {
	if len(r.stack) == 0 {
		return nil
	}
	return &r.stack[len(r.stack)-1]
}

// beforeValue prepares the output for a value (or an object key) about to
// be written, inserting what a sloppy writer left out. It reports false when
// the value must be skipped (a second top-level value that is not an object).
func (r *repairer) beforeValue(isString bool) bool {
	c := r.top()
	if c == nil {
		if r.topDone {
			return false
		}
		return true
	}
	switch {
	case c.obj && c.state == 3:
		r.out = append(r.out, ',')
		c.state = 0
	case !c.obj && c.state == 3:
		r.out = append(r.out, ',')
		c.state = 0
	case c.obj && c.state == 1:
		r.out = append(r.out, ':')
		c.state = 2
	}
	if c.obj && c.state == 0 && !isString {
		// A value where a key belongs: give it a placeholder key so the
		// rest of the reply stays readable.
		r.out = append(r.out, `"_":`...)
		c.state = 2
	}
	return true
}

// afterValue records that a value (or key) was written.
func (r *repairer) afterValue(wasKey bool) {
	c := r.top()
	if c == nil {
		r.topDone = true
		return
	}
	if wasKey {
		c.state = 1
		return
	}
	c.state = 3
}

func (r *repairer) run() {
	// A leading comma ("," or "[,{" after the bracket) is dropped below,
	// since a comma before any value is skipped.
	for r.i < len(r.in) {
		ch := r.in[r.i]
		switch {
		case ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n':
			r.i++
		case ch == '{' || ch == '[':
			if len(r.stack) == 0 && r.topDone {
				if ch == '{' && r.topObj && len(r.out) > 0 && r.out[len(r.out)-1] == '}' {
					// A second top-level object: merge it into the first.
					r.out = r.out[:len(r.out)-1]
					st := 3
					if r.out[len(r.out)-1] == '{' {
						st = 0 // the first object was empty
					}
					r.stack = append(r.stack, container{obj: true, state: st})
					r.topDone = false
					r.i++
					continue
				}
				return // anything else after the value is garbage
			}
			r.beforeValue(false)
			if len(r.stack) == 0 {
				r.topObj = ch == '{'
			}
			r.out = append(r.out, ch)
			r.stack = append(r.stack, container{obj: ch == '{'})
			r.i++
		case ch == '}' || ch == ']':
			c := r.top()
			r.i++
			if c == nil {
				continue // a stray close
			}
			if c.obj && (c.state == 1 || c.state == 2) {
				// A key with no value at the end: "k" } or "k": }
				if c.state == 1 {
					r.out = append(r.out, ':')
				}
				r.out = append(r.out, "null"...)
			}
			// Close what is open, whichever bracket was sent.
			r.dropComma()
			if c.obj {
				r.out = append(r.out, '}')
			} else {
				r.out = append(r.out, ']')
			}
			r.stack = r.stack[:len(r.stack)-1]
			r.afterValue(false)
		case ch == ',':
			r.i++
			c := r.top()
			if c == nil {
				continue // a leading or stray top-level comma
			}
			switch c.state {
			case 1:
				// "k" , — a key with no colon and no value.
				r.out = append(r.out, ":null"...)
				c.state = 3
			case 2:
				// "k": , — a key with no value.
				r.out = append(r.out, "null"...)
				c.state = 3
			}
			if c.state == 3 {
				// Write it only if another value follows: a trailing
				// comma before a close is dropped, and with it the rest
				// of a run of commas (skipped at once, so that a long
				// run costs linear time).
				n, at := r.nextSignificant()
				if n != '}' && n != ']' && n != 0 {
					r.out = append(r.out, ',')
					c.state = 0
				} else {
					r.i = at
				}
			}
			// state 0: a doubled or leading comma, dropped.
		case ch == ':':
			r.i++
			c := r.top()
			if c != nil && c.obj && c.state == 1 {
				r.out = append(r.out, ':')
				c.state = 2
			}
		case ch == '"':
			c := r.top()
			isKey := c != nil && c.obj && (c.state == 0 || c.state == 3)
			if !r.beforeValue(true) {
				return
			}
			r.string()
			r.afterValue(isKey)
		default:
			c := r.top()
			tok := r.bare()
			if len(tok) == 0 {
				r.i++ // an unknown byte
				continue
			}
			if c != nil && c.obj && (c.state == 0 || c.state == 3) {
				// A bare word where a key belongs: quote it.
				r.beforeValue(true)
				q, _ := json.Marshal(string(tok))
				r.out = append(r.out, q...)
				r.afterValue(true)
				continue
			}
			if !r.beforeValue(false) {
				return
			}
			r.out = append(r.out, literal(tok)...)
			r.afterValue(false)
		}
	}
	// Cut short: close what is open.
	for len(r.stack) > 0 {
		c := r.top()
		if c.obj && c.state == 1 {
			r.out = append(r.out, ":null"...)
		} else if c.obj && c.state == 2 {
			r.out = append(r.out, "null"...)
		}
		r.dropComma()
		if c.obj {
			r.out = append(r.out, '}')
		} else {
			r.out = append(r.out, ']')
		}
		r.stack = r.stack[:len(r.stack)-1]
		if p := r.top(); p != nil {
			p.state = 3
		}
	}
}

// nextSignificant returns the next byte from r.i on that is neither space
// nor a comma (0 at the end) and its index.
func (r *repairer) nextSignificant() (byte, int) {
	for j := r.i; j < len(r.in); j++ {
		switch r.in[j] {
		case ' ', '\t', '\r', '\n', ',':
			continue
		}
		return r.in[j], j
	}
	return 0, len(r.in)
}

// string copies a double-quoted string starting at r.i, repairing raw
// control characters and invalid escapes; an unterminated string is closed.
func (r *repairer) string() {
	r.out = append(r.out, '"')
	r.i++
	for r.i < len(r.in) {
		ch := r.in[r.i]
		switch {
		case ch == '"':
			r.out = append(r.out, '"')
			r.i++
			return
		case ch == '\\':
			if r.i+1 >= len(r.in) {
				r.i++
				continue
			}
			e := r.in[r.i+1]
			switch e {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				r.out = append(r.out, '\\', e)
				r.i += 2
			case 'u':
				if r.i+6 <= len(r.in) && isHex4(r.in[r.i+2:r.i+6]) {
					r.out = append(r.out, r.in[r.i:r.i+6]...)
					r.i += 6
				} else {
					r.out = append(r.out, `\\u`...)
					r.i += 2
				}
			default:
				// \' and friends: keep the character, drop the backslash.
				r.i++
			}
		case ch < 0x20:
			switch ch {
			case '\n':
				r.out = append(r.out, `\n`...)
			case '\r':
				r.out = append(r.out, `\r`...)
			case '\t':
				r.out = append(r.out, `\t`...)
			default:
				r.out = append(r.out, `\u00`...)
				r.out = append(r.out, "0123456789abcdef"[ch>>4], "0123456789abcdef"[ch&15])
			}
			r.i++
		default:
			r.out = append(r.out, ch)
			r.i++
		}
	}
	r.out = append(r.out, '"')
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// bare reads a run of characters that is not JSON punctuation, space or a
// quote (a number or a literal word).
func (r *repairer) bare() []byte {
	start := r.i
	for r.i < len(r.in) {
		switch r.in[r.i] {
		case ' ', '\t', '\r', '\n', ',', ':', '{', '}', '[', ']', '"':
			return r.in[start:r.i]
		}
		r.i++
	}
	return r.in[start:r.i]
}

// literal maps a bare token to valid JSON: numbers and true/false/null stay,
// NaN, inf and other words become null.
func literal(tok []byte) []byte {
	switch string(tok) {
	case "true", "false", "null":
		return tok
	}
	if validNumber(tok) {
		return tok
	}
	return []byte("null")
}

// validNumber reports whether tok is a JSON number.
func validNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return false
	}
	if b[i] == '0' {
		i++
	} else if b[i] >= '1' && b[i] <= '9' {
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	} else {
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return false
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return false
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	return i == len(b)
}
