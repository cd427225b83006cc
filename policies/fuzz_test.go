package policies

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
)

// addSeeds adds every file matching the patterns to the fuzz corpus.
func addSeeds(f *testing.F, patterns ...string) {
	f.Helper()
	n := 0
	for _, pat := range patterns {
		files, err := filepath.Glob(pat)
		require.NoError(f, err)
		for _, file := range files {
			data, err := os.ReadFile(file)
			require.NoError(f, err)
			f.Add(data)
			n++
		}
	}
	require.NotZero(f, n)
}

// requireReportLines checks that a failed parse explains itself in the
// documented format: every line names the file.
func requireReportLines(t *testing.T, name string, err error) {
	for line := range strings.SplitSeq(err.Error(), "\n") {
		require.True(t, strings.HasPrefix(line, name+":"), "line %q does not start with the file name", line)
	}
}

func FuzzParsePolicy(f *testing.F) {
	addSeeds(f, filepath.Join("..", "examples", "policies", "*.yaml"), filepath.Join("testdata", "*", "policy.yaml"))
	site := loadTestSite(f)
	now := time.Date(2024, 11, 3, 1, 30, 0, 0, site.Location)
	var snap switchd.Snapshot
	snap.Set(switchd.Sample{Time: now.Add(-time.Hour), Signal: switchd.SignalPrice, Value: 1500})
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePolicy("policy.yaml", data, site)
		if err != nil {
			require.Nil(t, p)
			requireReportLines(t, "policy.yaml", err)
			return
		}
		// A valid policy must evaluate without trouble.
		ev := p.Evaluate(now, &snap, site)
		require.Len(t, ev.Constraints.Fleets, len(site.Fleets))
		require.LessOrEqual(t, ev.Constraints.SiteCapKW, site.PowerCapKW)
		if edge := p.NextEdge(now, site); !edge.IsZero() {
			require.True(t, edge.After(now))
		}
		_ = p.Summary()
	})
}
