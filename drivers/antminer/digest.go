package antminer

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// The client side of HTTP Digest access authentication (RFC 7616, and RFC
// 2617 / 2069 which stock Antminer firmware's lighttpd follows): MD5 or
// MD5-sess, qop "auth" or none. auth-int and the SHA-256 algorithms are not
// implemented; a unit that asks only for them is refused with a clear
// error.

// challenge is a parsed WWW-Authenticate: Digest challenge.
type challenge struct {
	realm     string
	nonce     string
	opaque    string
	algorithm string // "MD5" (the default) or "MD5-sess"
	qop       string // "auth" when the server offers it, else "" (RFC 2069)
	stale     bool
}

// errNoDigest is a 401 without a Digest challenge.
var errNoDigest = errors.New("no Digest challenge in WWW-Authenticate")

// parseChallenge finds the Digest challenge among a response's
// WWW-Authenticate header values (a header may list several schemes).
func parseChallenge(headers []string) (challenge, error) {
	for _, h := range headers {
		for _, c := range splitChallenges(h) {
			scheme, rest, _ := strings.Cut(strings.TrimSpace(c), " ")
			if !strings.EqualFold(scheme, "Digest") {
				continue
			}
			return digestChallenge(authParams(rest))
		}
	}
	return challenge{}, errNoDigest
}

// splitChallenges splits a header value holding several challenges
// ("Basic realm=x, Digest realm=y, nonce=z") where each scheme starts: a
// word at the start or after a comma, outside quotes, not followed by '='.
func splitChallenges(h string) []string {
	var starts []int
	inQuote, esc, atStart := false, false, true
	for i := 0; i < len(h); i++ {
		c := h[i]
		if inQuote {
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inQuote = false
			}
			continue
		}
		switch c {
		case '"':
			inQuote, atStart = true, false
			continue
		case ',':
			atStart = true
			continue
		case ' ', '\t':
			continue
		}
		if !atStart {
			continue
		}
		atStart = false
		j := i
		for j < len(h) && !strings.ContainsRune(" \t=,\"", rune(h[j])) {
			j++
		}
		if j == i {
			continue
		}
		k := j
		for k < len(h) && (h[k] == ' ' || h[k] == '\t') {
			k++
		}
		if k >= len(h) || h[k] != '=' {
			starts = append(starts, i)
		}
		i = j - 1
	}
	if len(starts) == 0 {
		return []string{h}
	}
	out := make([]string, 0, len(starts))
	for n, st := range starts {
		end := len(h)
		if n+1 < len(starts) {
			end = starts[n+1]
		}
		out = append(out, strings.TrimRight(h[st:end], ", \t"))
	}
	return out
}

// authParams parses "k=v, k2="quoted \"v\"", ..." into a map with
// lower-case keys.
func authParams(s string) map[string]string {
	out := map[string]string{}
	for i := 0; i < len(s); {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == ',') {
			i++
		}
		j := i
		for j < len(s) && s[j] != '=' && s[j] != ',' {
			j++
		}
		key := strings.ToLower(strings.TrimSpace(s[i:j]))
		if j >= len(s) || s[j] == ',' {
			i = j + 1
			continue
		}
		j++ // '='
		for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
			j++
		}
		var val strings.Builder
		if j < len(s) && s[j] == '"' {
			j++
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				val.WriteByte(s[j])
				j++
			}
			j++ // closing quote
		} else {
			k := j
			for j < len(s) && s[j] != ',' {
				j++
			}
			val.WriteString(strings.TrimSpace(s[k:j]))
		}
		if key != "" {
			out[key] = val.String()
		}
		i = j
	}
	return out
}

func digestChallenge(p map[string]string) (challenge, error) {
	c := challenge{realm: p["realm"], nonce: p["nonce"], opaque: p["opaque"], algorithm: p["algorithm"]}
	if c.nonce == "" {
		return challenge{}, errors.New("digest challenge without a nonce")
	}
	switch strings.ToUpper(c.algorithm) {
	case "", "MD5":
		c.algorithm = "MD5"
	case "MD5-SESS":
		c.algorithm = "MD5-sess"
	default:
		return challenge{}, fmt.Errorf("digest algorithm %q is not supported (MD5 only)", c.algorithm)
	}
	if q, ok := p["qop"]; ok {
		for _, o := range strings.Split(q, ",") {
			if strings.EqualFold(strings.TrimSpace(o), "auth") {
				c.qop = "auth"
			}
		}
		if c.qop == "" {
			return challenge{}, fmt.Errorf("digest qop %q is not supported (auth only)", q)
		}
	}
	c.stale = strings.EqualFold(p["stale"], "true")
	return c, nil
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// response computes the request digest (RFC 7616 §3.4.1).
func (c *challenge) response(method, uri, user, pass, cnonce string, nc uint32) string {
	ha1 := md5hex(user + ":" + c.realm + ":" + pass)
	if c.algorithm == "MD5-sess" {
		ha1 = md5hex(ha1 + ":" + c.nonce + ":" + cnonce)
	}
	ha2 := md5hex(method + ":" + uri)
	if c.qop == "" {
		return md5hex(ha1 + ":" + c.nonce + ":" + ha2)
	}
	return md5hex(fmt.Sprintf("%s:%s:%08x:%s:%s:%s", ha1, c.nonce, nc, cnonce, c.qop, ha2))
}

// authorization is the Authorization header value for one request.
func (c *challenge) authorization(method, uri, user, pass string, nc uint32) string {
	cnonce := newCnonce()
	var b strings.Builder
	fmt.Fprintf(&b, `Digest username=%s, realm=%s, nonce=%s, uri=%s, algorithm=%s, response="%s"`,
		quote(user), quote(c.realm), quote(c.nonce), quote(uri), c.algorithm,
		c.response(method, uri, user, pass, cnonce, nc))
	if c.opaque != "" {
		fmt.Fprintf(&b, ", opaque=%s", quote(c.opaque))
	}
	if c.qop != "" {
		fmt.Fprintf(&b, `, qop=%s, nc=%08x, cnonce="%s"`, c.qop, nc, cnonce)
	}
	return b.String()
}

// quote makes a quoted-string.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func newCnonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
