package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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

func FuzzParseSite(f *testing.F) {
	addSeeds(f, filepath.Join("..", "examples", "site.yaml"), filepath.Join("testdata", "*", "site.yaml"), filepath.Join("testdata", "site.yaml"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSite("site.yaml", data)
		if err != nil {
			require.Nil(t, s)
			requireReportLines(t, "site.yaml", err)
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
