package journal

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// kW computed as the daemon computes them (devices × kW per device) carry
// float64 noise in the journal's JSON; the export rounds it away.
func TestExportDecimals(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.jsonl")
	j, _ := openT(t, path)
	at := time.Date(2024, 8, 20, 19, 0, 0, 0, time.UTC)
	three, thousand := 3.0, 1000.0
	e := Entry{
		Time: at, Kind: KindState, Fleet: "gpus",
		Counts: map[string]int{"inference": 3, "mining": 1000, "off": 7},
		KW:     map[string]float64{"inference": three * 0.1, "mining": thousand * 3.2536, "off": 7 * 0.022},
	}
	require.NoError(t, j.Append(e))
	require.NoError(t, j.Close())
	raw := string(readFile(t, path))
	require.Contains(t, raw, "0.30000000000000004", "the journal keeps the exact float64")

	var out bytes.Buffer
	require.NoError(t, Export(strings.NewReader(raw), time.Time{}, time.Time{}, &out))
	require.Equal(t, `time,fleet,mode,kw
2024-08-20T19:00:00Z,gpus,inference,0.3
2024-08-20T19:00:00Z,gpus,mining,3253.6
2024-08-20T19:00:00Z,gpus,off,0.154
`, out.String())
}
