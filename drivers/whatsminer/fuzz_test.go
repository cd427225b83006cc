package whatsminer

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/internal/cgrpc"
)

// seed adds the recorded Whatsminer replies (when present) and a few
// broken ones to a fuzz corpus.
func seed(f *testing.F, names ...string) {
	f.Helper()
	for _, s := range []string{"", "{", `{"STATUS":"S"}`, `{"STATUS":[{"STATUS":"S"}],"SUMMARY":[{"HS RT":"nan"}]}`, "\x00"} {
		f.Add([]byte(s))
	}
	d := findFixtures()
	if d == "" {
		return
	}
	dir := filepath.Join(d, "whatsminer")
	for _, n := range names {
		if b, err := os.ReadFile(filepath.Join(dir, n)); err == nil {
			f.Add(b)
		}
	}
}

func FuzzSummary(f *testing.F) {
	seed(f, "summary-m20s.bin", "summary-m31s.json", "summary-fw20210322.json")
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := cgrpc.Check("summary", raw)
		if err != nil {
			return
		}
		s, err := summaryOf(r)
		if err != nil {
			return
		}
		require.GreaterOrEqual(t, s.HashrateTHs, 0.0)
		_ = observation(nil, &s, 0)
	})
}

func FuzzStatus(f *testing.F) {
	seed(f, "status-m31s-sleeping.json", "status-fw20220919.json")
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := cgrpc.Check("status", raw)
		if err != nil {
			return
		}
		if st, err := statusOf(r); err == nil {
			o := observation(&st, nil, 0)
			require.True(t, o.Known)
		}
	})
}

func FuzzToken(f *testing.F) {
	seed(f, "get_token.json", "get_version-fw20210322.json")
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := cgrpc.Check("get_token", raw)
		if err != nil {
			return
		}
		_ = versionOf(r)
		if tm, err := tokenOf(r); err == nil {
			require.NotEmpty(t, newSession("pw", tm).sign)
		}
	})
}

func FuzzDevs(f *testing.F) {
	seed(f, "devs-m20s.json", "edevs-m31s.json")
	f.Fuzz(func(t *testing.T, raw []byte) {
		if r, err := cgrpc.Check("devs", raw); err == nil {
			_, _, _ = devsOf(r)
			_ = modelOf(r)
		}
	})
}

// FuzzWriteReply: any reply to an encrypted command is an error or nil,
// never a panic; a plaintext error is never taken for success.
func FuzzWriteReply(f *testing.F) {
	seed(f, "encrypted-reply.json", "pools+summary+edevs-error-m31s.json")
	f.Add([]byte(`{"enc":"AAAAAAAAAAAAAAAAAAAAAA=="}`))
	f.Add([]byte(`{"enc":""}`))
	key := make([]byte, 32)
	f.Fuzz(func(t *testing.T, raw []byte) {
		err := writeReply("power_off", key, raw)
		if err != nil {
			_ = classifyToken(err)
		}
	})
}

func FuzzDeviceInfoV3(f *testing.F) {
	seed(f, "get_device_info-m60svk40-apiv3.json")
	f.Add([]byte(`{"code":0,"msg":null}`))
	f.Add([]byte(`{"code":-1,"msg":"bad"}`))
	f.Add([]byte(`{"code":0,"msg":{"summary":{"elapsed":10,"hash-realtime":1.5,"power-realtime":3000}}}`))
	f.Add([]byte(`{"code":-4,"msg":"no permission"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, _ = parseDeviceInfoV3(raw)
		s, err := parseSummaryV3(raw)
		if err == nil && (s.HashrateTHs < 0 || s.PowerW < 0) {
			t.Fatalf("negative reading %+v", s)
		}
		_, _ = v3Code("x", raw)
	})
}

// TestHandMadeErrors: the hand-made error replies in testdata are
// classified as the driver expects.
func TestHandMadeErrors(t *testing.T) {
	for _, c := range []struct {
		file string
		auth bool
	}{
		{"token-error-135.json", true},
		{"denied-45.json", true},
	} {
		t.Run(c.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", c.file))
			require.NoError(t, err)
			err = writeReply("power_off", make([]byte, 32), raw)
			require.Error(t, err)
			require.Equal(t, c.auth, tokenRefused(statusCode(err)) || statusCode(err) == codeDenied)
			require.ErrorIs(t, classifyToken(err), switchd.ErrAuth)
		})
	}
}
