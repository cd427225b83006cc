package policies

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/internal/testenv"
)

func FuzzParsePolicy(f *testing.F) {
	testenv.AddSeeds(f, filepath.Join("..", "examples", "policies", "*.yaml"), filepath.Join("testdata", "*", "policy.yaml"))
	site := loadTestSite(f)
	now := time.Date(2024, 11, 3, 1, 30, 0, 0, site.Location)
	var snap switchd.Snapshot
	snap.Set(switchd.Sample{Time: now.Add(-time.Hour), Signal: switchd.SignalPrice, Value: 1500})
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePolicy("policy.yaml", data, site)
		if err != nil {
			require.Nil(t, p)
			testenv.RequireReportLines(t, "policy.yaml", err)
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
