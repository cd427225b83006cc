package whatsminerfake

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd/drivers/internal/pool/pooltest"
)

// TestCryptoAgainstRecording: the fake's own crypto decrypts the recorded
// reply with the recorded salt and the Foreman test password, so the fake
// matches real units and not just the driver.
func TestCryptoAgainstRecording(t *testing.T) {
	// `openssl passwd -1 -salt BQ5hoXV9 my-auth-password`.
	require.Equal(t, "WssMFDgz6KlzbAfbu9Jph/", cryptMD5("my-auth-password", "BQ5hoXV9"))
	require.Equal(t, "rn6aQS/o7141mj179E/zA.", cryptMD5("", "ab"))

	dir := filepath.Join(pooltest.FixtureDir(t), "whatsminer")
	var tok struct{ Msg struct{ Salt string } }
	b, err := os.ReadFile(filepath.Join(dir, "get_token.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &tok))
	var enc struct{ Enc string }
	b, err = os.ReadFile(filepath.Join(dir, "encrypted-reply.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &enc))

	key := aesKey(cryptMD5("my-auth-password", tok.Msg.Salt))
	plain, err := openECB(key, enc.Enc)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(plain), `{"STATUS":"S","When":1608417125,"Code":131,`), "%q", plain)
	require.Equal(t, enc.Enc, sealECB(key, plain))
}

// exchange sends one raw request and returns the raw reply.
func exchange(t *testing.T, addr, req string) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = io.WriteString(c, req)
	require.NoError(t, err)
	b, err := io.ReadAll(c)
	require.NoError(t, err)
	return b
}

func TestWire(t *testing.T) {
	m := New(Options{EscapeQuirk: true, TrailingComma: true, Keys: KeysCommand})
	require.NoError(t, m.Start("127.0.0.1:0"))
	defer m.Close()

	b := exchange(t, m.Addr(), `{"command":"summary"}`)
	require.Equal(t, byte(0), b[len(b)-1], "cgminer-style NUL terminator")
	require.Contains(t, string(b), `"Firmware Version":"\'20210322.22.REL\'"`)
	require.Contains(t, string(b), `,}]`)

	b = exchange(t, m.Addr(), `{"cmd":"summary"}`)
	require.Contains(t, string(b), `"Code":24,"Msg":"Missing JSON 'command'"`)

	b = exchange(t, m.Addr(), `{"command":"status"}`)
	require.True(t, json.Valid(bytes.TrimRight(b, "\x00")))
	require.Contains(t, string(b), `"btmineroff":"false"`)
}
