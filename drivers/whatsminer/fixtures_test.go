package whatsminer

import (
	"crypto/aes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/internal/cgrpc"
	"github.com/switchd/switchd/drivers/internal/pool/pooltest"
)

// findFixtures is fixtureDir without the test control: "" when absent.
func findFixtures() string {
	if d := os.Getenv("SWITCHD_FIXTURES"); d != "" {
		return d
	}
	for dir, _ := os.Getwd(); dir != "/"; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			d := filepath.Join(dir, "..", "shared", "fixtures", "miners")
			if _, err := os.Stat(d); err == nil {
				return d
			}
			break
		}
	}
	return ""
}

// readFixture reads whatsminer/<name>; the recorded files have no NUL, so
// wire-level users add one themselves.
func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(pooltest.FixtureDir(t), "whatsminer", name))
	require.NoError(t, err)
	return b
}

// fixturePassword is the admin password of the Foreman test the token and
// encrypted-reply fixtures come from (SOURCES.md).
const fixturePassword = "my-auth-password"

// TestFixtures: every recorded Whatsminer reply parses to the state it
// shows. A new file in the folder fails the test until it is listed here.
func TestFixtures(t *testing.T) {
	cases := map[string]func(t *testing.T, raw []byte){
		"summary-m20s.bin": func(t *testing.T, raw []byte) {
			// No "HS RT" on this build: MHS 5s; \' escape in the firmware.
			s := mustSummary(t, raw)
			require.InDelta(t, 64.14377795, s.HashrateTHs, 1e-6)
			require.Equal(t, 3482.0, s.PowerW)
			require.Equal(t, "20200917.22.REL", s.Firmware)
		},
		"summary-m31s.json": func(t *testing.T, raw []byte) {
			s := mustSummary(t, raw)
			require.InDelta(t, 76.69080844, s.HashrateTHs, 1e-6)
			require.Equal(t, 3552.0, s.PowerW)
			require.Equal(t, "20201202.22.REL", s.Firmware)
		},
		"summary-fw20210322.json": func(t *testing.T, raw []byte) {
			s := mustSummary(t, raw)
			require.InDelta(t, 67.39480097, s.HashrateTHs, 1e-6)
			require.Equal(t, 3427.0, s.PowerW)
			require.Equal(t, "20210322.22.REL", s.Firmware)
		},
		"status-m31s-sleeping.json": func(t *testing.T, raw []byte) {
			st := mustStatus(t, raw)
			require.True(t, st.Off)
			require.Equal(t, "20210109.22.REL", st.Firmware)
			o := observation(&st, nil, 0)
			require.True(t, o.Known)
			require.Equal(t, switchd.ModeOff, o.Mode)
			require.False(t, o.Fault, "asleep on purpose is not a fault")
		},
		"status-fw20220919.json": func(t *testing.T, raw []byte) {
			st := mustStatus(t, raw)
			require.False(t, st.Off)
			require.Equal(t, "20220919.15.REL", st.Firmware)
			sum := summary{HashrateTHs: 0, HasHashrate: true, Elapsed: -1}
			o := observation(&st, &sum, 0)
			require.Equal(t, switchd.ModeMining, o.Mode)
			require.True(t, o.Fault, "mining with zero hashrate is a fault")
		},
		"get_version-fw20210322.json": func(t *testing.T, raw []byte) {
			r, err := cgrpc.Check("get_version", raw)
			require.NoError(t, err)
			require.Equal(t, "20210322.22.REL", versionOf(r))
		},
		"get_token.json": func(t *testing.T, raw []byte) {
			r, err := cgrpc.Check("get_token", raw)
			require.NoError(t, err)
			tm, err := tokenOf(r)
			require.NoError(t, err)
			require.Equal(t, tokenMsg{Time: "6915", Salt: "BQ5hoXV9", NewSalt: "a5TtWui2"}, tm)
		},
		"encrypted-reply.json": func(t *testing.T, raw []byte) {
			// Checked in TestCryptoVector; here: the reply reads as OK.
			r, err := cgrpc.Check("get_token", readFixture(t, "get_token.json"))
			require.NoError(t, err)
			tm, err := tokenOf(r)
			require.NoError(t, err)
			s := newSession(fixturePassword, tm)
			require.NoError(t, writeReply("set_led", s.key, raw))
		},
		"devs-m20s.json": func(t *testing.T, raw []byte) {
			r, err := cgrpc.Check("devs", raw)
			require.NoError(t, err)
			ths, boards, ok := devsOf(r)
			require.True(t, ok)
			require.Equal(t, 3, boards)
			require.InDelta(t, 64.14, ths, 0.5, "the boards add up to about the summary's MHS 5s")
		},
		"edevs-m31s.json": func(t *testing.T, raw []byte) {
			r, err := cgrpc.Check("edevs", raw)
			require.NoError(t, err)
			ths, boards, ok := devsOf(r)
			require.True(t, ok)
			require.Equal(t, 3, boards)
			require.Greater(t, ths, 70.0)
		},
		"pools-m31s.json": func(t *testing.T, raw []byte) {
			r, err := cgrpc.Check("pools", raw)
			require.NoError(t, err)
			require.Len(t, r.Section("POOLS"), 3)
		},
		"stats-m20s.json": func(t *testing.T, raw []byte) {
			r, err := cgrpc.Check("stats", raw)
			require.NoError(t, err)
			require.NotEmpty(t, r.Section("STATS"))
		},
		"pools+summary+edevs-error-m31s.json": func(t *testing.T, raw []byte) {
			// The build wants "command": the driver retries with it.
			_, err := cgrpc.Check("pools+summary+edevs", raw)
			require.Error(t, err)
			require.Equal(t, codeMissingCmd, statusCode(err))
			key, ok := otherKey("cmd", err)
			require.True(t, ok)
			require.Equal(t, "command", key)
		},
		"get_device_info-m60svk40-apiv3.json": func(t *testing.T, raw []byte) {
			info, err := parseDeviceInfoV3(raw)
			require.NoError(t, err)
			require.Equal(t, deviceInfoV3{Model: "M60S_VK40", Firmware: "20251209.16.Rel2", API: "3.0.2", Working: "true", Salt: "uhCiDyVj"}, info)
		},
	}
	ents, err := os.ReadDir(filepath.Join(pooltest.FixtureDir(t), "whatsminer"))
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			check, ok := cases[name]
			require.True(t, ok, "fixture %s has no case in TestFixtures", name)
			check(t, readFixture(t, name))
		})
	}
}

func mustSummary(t *testing.T, raw []byte) summary {
	t.Helper()
	r, err := cgrpc.Check("summary", append(raw, 0)) // the wire's NUL
	require.NoError(t, err)
	s, err := summaryOf(r)
	require.NoError(t, err)
	require.True(t, s.HasHashrate)
	require.True(t, s.HasPower)
	return s
}

func mustStatus(t *testing.T, raw []byte) minerStatus {
	t.Helper()
	r, err := cgrpc.Check("status", raw)
	require.NoError(t, err)
	st, err := statusOf(r)
	require.NoError(t, err)
	return st
}

// TestCryptoVector: the recorded get_token and encrypted reply decrypt
// under the Foreman test password to the plaintext SOURCES.md gives:
// STATUS S, Code 131, then 12 NUL bytes of padding.
func TestCryptoVector(t *testing.T) {
	r, err := cgrpc.Check("get_token", readFixture(t, "get_token.json"))
	require.NoError(t, err)
	tm, err := tokenOf(r)
	require.NoError(t, err)
	s := newSession(fixturePassword, tm)

	var enc struct{ Enc string }
	require.NoError(t, json.Unmarshal(readFixture(t, "encrypted-reply.json"), &enc))
	require.Len(t, s.key, 32)

	// Raw block decryption, to see the padding.
	padded := rawDecrypt(t, s.key, enc.Enc)
	require.Len(t, padded, 96)
	require.Equal(t, strings.Repeat("\x00", 12), string(padded[84:]), "zero padding, not PKCS#7")
	require.Equal(t, `{"STATUS":"S","When":1608417125,"Code":131,"Msg":"","Description":"whatsminer v1.1"}`, string(padded[:84]))

	plain, err := decrypt(s.key, enc.Enc)
	require.NoError(t, err)
	require.Equal(t, string(padded[:84]), string(plain))

	// Round trip through our own encryption gives the same ciphertext.
	again, err := encrypt(s.key, plain)
	require.NoError(t, err)
	require.Equal(t, enc.Enc, again)

	// The request of the same capture (quoted in SOURCES.md, not a file)
	// carries the token the same get_token gives: check host_sign too.
	src, err := os.ReadFile(filepath.Join(pooltest.FixtureDir(t), "SOURCES.md"))
	require.NoError(t, err)
	m := regexp.MustCompile(`\{"enc":1,"data":"([A-Za-z0-9+/=]+)"\}`).FindSubmatch(src)
	if m == nil {
		t.Log("SOURCES.md no longer quotes the encrypted request; host_sign not checked")
		return
	}
	req, err := decrypt(s.key, string(m[1]))
	require.NoError(t, err)
	var body map[string]any
	require.NoError(t, json.Unmarshal(req, &body), "request plaintext %q", req)
	require.Equal(t, s.sign, body["token"], "host_sign = md5-crypt(host_passwd_md5 + time, newsalt)")
}

func rawDecrypt(t *testing.T, key []byte, b64 string) []byte {
	t.Helper()
	ct, err := base64.StdEncoding.DecodeString(b64)
	require.NoError(t, err)
	b, err := aes.NewCipher(key)
	require.NoError(t, err)
	out := make([]byte, len(ct))
	for i := 0; i < len(ct); i += aes.BlockSize {
		b.Decrypt(out[i:i+aes.BlockSize], ct[i:i+aes.BlockSize])
	}
	return out
}

// TestMD5Crypt checks against `openssl passwd -1 -salt SALT PASSWORD`.
func TestMD5Crypt(t *testing.T) {
	for _, c := range []struct{ pw, salt, want string }{
		{"my-auth-password", "BQ5hoXV9", "WssMFDgz6KlzbAfbu9Jph/"},
		{"password", "saltsalt", "qjXMvbEw8oaL.CzflDtaK/"},
		{"", "ab", "rn6aQS/o7141mj179E/zA."},
		{"password", "$1$saltsalt$", "qjXMvbEw8oaL.CzflDtaK/"},
	} {
		t.Run(c.pw+"/"+c.salt, func(t *testing.T) {
			require.Equal(t, c.want, md5Crypt(c.pw, c.salt))
		})
	}
}
