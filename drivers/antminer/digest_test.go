package antminer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDigestVectors checks the response against the RFCs' worked examples.
func TestDigestVectors(t *testing.T) {
	cases := []struct {
		name                                    string
		ch                                      challenge
		method, uri, user, pass, cnonce, wanted string
	}{
		{
			name:   "RFC 2617 3.5",
			ch:     challenge{realm: "testrealm@host.com", nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093", algorithm: "MD5", qop: "auth"},
			method: "GET", uri: "/dir/index.html", user: "Mufasa", pass: "Circle Of Life", cnonce: "0a4f113b",
			wanted: "6629fae49393a05397450978507c4ef1",
		},
		{
			name:   "RFC 7616 3.9.1 MD5",
			ch:     challenge{realm: "http-auth@example.org", nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", algorithm: "MD5", qop: "auth"},
			method: "GET", uri: "/dir/index.html", user: "Mufasa", pass: "Circle of Life", cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
			wanted: "8ca523f5e9506fed4657c9700eebdbec",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.wanted, c.ch.response(c.method, c.uri, c.user, c.pass, c.cnonce, 1))
		})
	}
}

func TestParseChallenge(t *testing.T) {
	cases := []struct {
		name    string
		headers []string
		want    challenge
		err     string
	}{
		{
			name:    "lighttpd",
			headers: []string{`Digest realm="antMiner Configuration", nonce="5f1a2b3c", qop="auth"`},
			want:    challenge{realm: "antMiner Configuration", nonce: "5f1a2b3c", algorithm: "MD5", qop: "auth"},
		},
		{
			name:    "RFC 7616 example with two algorithms, first header",
			headers: []string{`Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`},
			want:    challenge{realm: "http-auth@example.org", nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque: "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS", algorithm: "MD5", qop: "auth"},
		},
		{
			name:    "basic first, digest second in one header",
			headers: []string{`Basic realm="x, y", Digest realm="r", nonce="n,1", stale=TRUE, algorithm=MD5-sess`},
			want:    challenge{realm: "r", nonce: "n,1", algorithm: "MD5-sess", stale: true},
		},
		{
			name:    "separate headers",
			headers: []string{`Negotiate`, `Digest nonce="a\"b", realm="q\\r"`},
			want:    challenge{realm: `q\r`, nonce: `a"b`, algorithm: "MD5"},
		},
		{name: "sha-256 only", headers: []string{`Digest realm="r", nonce="n", algorithm=SHA-256`}, err: "SHA-256"},
		{name: "auth-int only", headers: []string{`Digest realm="r", nonce="n", qop="auth-int"`}, err: "auth-int"},
		{name: "no nonce", headers: []string{`Digest realm="r"`}, err: "nonce"},
		{name: "basic only", headers: []string{`Basic realm="r"`}, err: "no Digest"},
		{name: "none", err: "no Digest"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseChallenge(c.headers)
			if c.err != "" {
				require.ErrorContains(t, err, c.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
}

// TestAuthorizationHeader checks the header's shape: the values a server
// parses back, quoted where RFC 7616 wants quotes.
func TestAuthorizationHeader(t *testing.T) {
	ch := challenge{realm: `a "quoted" realm`, nonce: "n1", opaque: "o1", algorithm: "MD5", qop: "auth"}
	h := ch.authorization("POST", "/cgi-bin/set_miner_conf.cgi", "root", "root", 7)
	require.True(t, strings.HasPrefix(h, "Digest "))
	p := authParams(strings.TrimPrefix(h, "Digest "))
	require.Equal(t, "root", p["username"])
	require.Equal(t, `a "quoted" realm`, p["realm"])
	require.Equal(t, "/cgi-bin/set_miner_conf.cgi", p["uri"])
	require.Equal(t, "00000007", p["nc"])
	require.Equal(t, "auth", p["qop"])
	require.Equal(t, "o1", p["opaque"])
	require.Equal(t, ch.response("POST", "/cgi-bin/set_miner_conf.cgi", "root", "root", p["cnonce"], 7), p["response"])
	require.Contains(t, h, `qop=auth,`, "qop is a token, unquoted")

	legacy := challenge{realm: "r", nonce: "n", algorithm: "MD5"}
	h = legacy.authorization("GET", "/", "u", "p", 1)
	require.NotContains(t, h, "qop")
	require.NotContains(t, h, "cnonce")
}

func FuzzParseChallenge(f *testing.F) {
	for _, s := range []string{
		`Digest realm="antMiner Configuration", nonce="5f1a", qop="auth"`,
		`Basic realm="x, y", Digest realm="r", nonce="n,1", stale=TRUE`,
		`=, =Digest "`, `Digest realm="\`, `,,, Digest`, `Digest a=b=c, nonce=`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		c, err := parseChallenge([]string{h})
		if err == nil {
			if c.nonce == "" {
				t.Fatal("a challenge needs a nonce")
			}
			_ = c.authorization("GET", "/x", "u", "p", 1)
		}
		_ = authParams(h)
	})
}

func FuzzParseMinerConf(f *testing.F) {
	f.Add([]byte("\n\n{\n\"pools\" : [\n]\n,\n\"bitmain-work-mode\" : \"1\"\n}"))
	f.Add([]byte(`{"bitmain-fan-ctrl" : ,"miner-mode":1}`))
	f.Add([]byte(`{"miner-mode":{"a":[1,2]},"bitmain-work-mode":null}`))
	if dir := os.Getenv("SWITCHD_FIXTURES"); dir != "" {
		fs, _ := filepath.Glob(filepath.Join(dir, "antminer-web", "*"))
		for _, p := range fs {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseMinerConf(b)
		if err != nil {
			return
		}
		if body, err := c.With(WorkSleep); err == nil {
			if _, err := ParseMinerConf(body); err != nil {
				t.Fatalf("written conf does not read back: %v", err)
			}
		}
		_ = Classify(c.Mode, 0, true)
		_, _ = ParseSystemInfo(b)
		_ = CheckSetReply(b)
	})
}
