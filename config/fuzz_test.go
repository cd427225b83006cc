package config

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/internal/testenv"
)

func FuzzParseSite(f *testing.F) {
	testenv.AddSeeds(f, filepath.Join("..", "examples", "site.yaml"), filepath.Join("testdata", "*", "site.yaml"), filepath.Join("testdata", "site.yaml"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSite("site.yaml", data)
		if err != nil {
			require.Nil(t, s)
			testenv.RequireReportLines(t, "site.yaml", err)
			return
		}
		require.NotNil(t, s.Location)
		require.Positive(t, s.PowerCapKW)
		require.NotEmpty(t, s.Fleets)
		for _, fl := range s.Fleets {
			require.Positive(t, fl.Spec.Count)
			require.True(t, fl.Spec.Supports[switchd.ModeOff])
		}
		_ = s.Summary()
	})
}
