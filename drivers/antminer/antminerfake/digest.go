package antminerfake

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
)

// The server side of HTTP Digest authentication (RFC 7616 / 2617), MD5
// with qop "auth", as the lighttpd of stock Antminer firmware does it.
// Written apart from the driver's client on purpose: the two must agree
// only through the RFC.

// digestServer issues nonces and checks Authorization headers. Callers
// hold the fake's lock.
type digestServer struct {
	realm, user, pass string
	opaque            string
	nonce             string
	old               map[string]bool // earlier nonces: answered stale=true
	lastNC            map[string]uint64
}

func newDigestServer(realm, user, pass string) *digestServer {
	s := &digestServer{realm: realm, user: user, pass: pass, opaque: randHex(8), old: map[string]bool{}, lastNC: map[string]uint64{}}
	s.rotate()
	return s
}

// rotate issues a new nonce; the old one becomes stale.
func (s *digestServer) rotate() {
	if s.nonce != "" {
		s.old[s.nonce] = true
	}
	s.nonce = randHex(16)
}

// challenge is the WWW-Authenticate value.
func (s *digestServer) challenge(stale bool) string {
	c := fmt.Sprintf(`Digest realm="%s", nonce="%s", opaque="%s", qop="auth", algorithm=MD5`, s.realm, s.nonce, s.opaque)
	if stale {
		c += ", stale=true"
	}
	return c
}

var paramRE = regexp.MustCompile(`([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))`)

// check verifies an Authorization header for a request. It reports ok, or
// stale when the credentials are right but the nonce is an old one.
func (s *digestServer) check(method, uri, header string) (ok, stale bool) {
	scheme, rest, found := strings.Cut(strings.TrimSpace(header), " ")
	if !found || !strings.EqualFold(scheme, "Digest") {
		return false, false
	}
	p := map[string]string{}
	for _, m := range paramRE.FindAllStringSubmatch(rest, -1) {
		v := m[3]
		if strings.Contains(m[0], `"`) {
			v = strings.NewReplacer(`\\`, `\`, `\"`, `"`).Replace(m[2])
		}
		p[strings.ToLower(m[1])] = v
	}
	if p["username"] != s.user || p["realm"] != s.realm || p["uri"] != uri {
		return false, false
	}
	if a := p["algorithm"]; a != "" && !strings.EqualFold(a, "MD5") {
		return false, false
	}
	ha1 := md5hex(s.user + ":" + s.realm + ":" + s.pass)
	ha2 := md5hex(method + ":" + uri)
	var want string
	switch p["qop"] {
	case "auth":
		want = md5hex(ha1 + ":" + p["nonce"] + ":" + p["nc"] + ":" + p["cnonce"] + ":auth:" + ha2)
	case "":
		want = md5hex(ha1 + ":" + p["nonce"] + ":" + ha2)
	default:
		return false, false
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(p["response"])) != 1 {
		return false, false
	}
	switch {
	case p["nonce"] == s.nonce:
	case s.old[p["nonce"]]:
		return false, true
	default:
		return false, false
	}
	// A replayed nonce count is refused. Counts are per client (its
	// cnonce): two clients, switchd and `switchd probe` say, each count
	// from 1 under the same server nonce.
	var nc uint64
	if p["qop"] == "auth" {
		key := s.nonce + ":" + p["cnonce"]
		if _, err := fmt.Sscanf(p["nc"], "%x", &nc); err != nil || nc <= s.lastNC[key] {
			return false, false
		}
		s.lastNC[key] = nc
	}
	return true, false
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
