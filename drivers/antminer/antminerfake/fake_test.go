package antminerfake

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDigestServer checks the server side alone with a hand-computed
// header (RFC 2617 formulas), so that a bug shared by client and server
// cannot hide.
func TestDigestServer(t *testing.T) {
	s := newDigestServer("antMiner Configuration", "root", "root")
	ha1 := md5hex("root:antMiner Configuration:root")
	ha2 := md5hex("GET:/cgi-bin/get_miner_conf.cgi")
	header := func(nc string, resp string) string {
		return fmt.Sprintf(`Digest username="root", realm="antMiner Configuration", nonce="%s", uri="/cgi-bin/get_miner_conf.cgi", qop=auth, nc=%s, cnonce="c1", response="%s"`, s.nonce, nc, resp)
	}
	good := md5hex(ha1 + ":" + s.nonce + ":00000001:c1:auth:" + ha2)
	ok, _ := s.check("GET", "/cgi-bin/get_miner_conf.cgi", header("00000001", good))
	require.True(t, ok)
	ok, _ = s.check("GET", "/cgi-bin/get_miner_conf.cgi", header("00000001", good))
	require.False(t, ok, "a replayed nonce count is refused")
	ok, _ = s.check("GET", "/cgi-bin/get_miner_conf.cgi", header("00000002", good))
	require.False(t, ok, "the response covers nc")
	ok, _ = s.check("GET", "/other.cgi", header("00000003", md5hex(ha1+":"+s.nonce+":00000003:c1:auth:"+ha2)))
	require.False(t, ok, "the uri must match the request")

	old := s.nonce
	s.rotate()
	resp := md5hex(ha1 + ":" + old + ":00000005:c1:auth:" + ha2)
	h := strings.Replace(header("00000005", resp), s.nonce, old, 1)
	ok, stale := s.check("GET", "/cgi-bin/get_miner_conf.cgi", h)
	require.False(t, ok)
	require.True(t, stale)
	require.Contains(t, s.challenge(true), "stale=true")
}

func TestUnauthenticated(t *testing.T) {
	m := New(Options{})
	require.NoError(t, m.Start("127.0.0.1:0", "127.0.0.1:0"))
	defer m.Close()
	resp, err := http.Get("http://" + m.WebAddr() + "/cgi-bin/get_miner_conf.cgi")
	require.NoError(t, err)
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Contains(t, resp.Header.Get("WWW-Authenticate"), `Digest realm="antMiner Configuration"`)
	require.Contains(t, resp.Header.Get("WWW-Authenticate"), `qop="auth"`)
}
