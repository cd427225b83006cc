package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/*/expected.err from the current output")

// TestGolden checks every folder under testdata: a site.yaml and
// expected.err with the exact text `switchd validate` would print, empty
// when the file is valid. Adding a case is adding a folder; -update rewrites
// expected.err.
func TestGolden(t *testing.T) {
	dirs, err := os.ReadDir("testdata")
	require.NoError(t, err)
	cases := 0
	for _, d := range dirs {
		if !d.IsDir() || d.Name() == "fuzz" {
			continue // fuzz holds the fuzz corpus
		}
		cases++
		t.Run(d.Name(), func(t *testing.T) {
			dir := filepath.Join("testdata", d.Name())
			data, err := os.ReadFile(filepath.Join(dir, "site.yaml"))
			require.NoError(t, err, "a case holds a site.yaml")
			_, err = ParseSite("site.yaml", data)
			got := ""
			if err != nil {
				got = err.Error() + "\n"
				for _, e := range unjoinErrors(err) {
					var ce *ConfigError
					require.ErrorAs(t, e, &ce, "every problem is a *ConfigError")
				}
			}
			golden := filepath.Join(dir, "expected.err")
			if *updateGolden {
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			require.Equal(t, string(want), got)
		})
	}
	require.NotZero(t, cases)
}

func unjoinErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := LoadSite(filepath.Join("testdata", "nope.yaml"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// TestErrorsAreJoined checks that callers can pick problems apart: one
// ConfigError per problem, reachable with errors.As through the join.
func TestErrorsAreJoined(t *testing.T) {
	_, err := ParseSite("s.yaml", []byte("site: {name: x, timezone: UTC, power_cap_kw: -1}\nfleets: []\n"))
	require.Error(t, err)
	errs := unjoinErrors(err)
	require.Len(t, errs, 2)
	var ce *ConfigError
	require.True(t, errors.As(errs[0], &ce))
	require.Equal(t, ConfigError{File: "s.yaml", Line: 1, Path: "site.power_cap_kw", Msg: "must be positive (got -1)"}, *ce)
}

// TestSettingsKeptAsNode checks that a fleet's driver settings reach the
// driver factory untouched, as a node it can decode strictly itself.
func TestSettingsKeptAsNode(t *testing.T) {
	site, err := ParseSite("s.yaml", []byte(`
site: {name: x, timezone: UTC, power_cap_kw: 10}
fleets:
  - name: a
    kind: asic
    count: 1
    driver: cgminer
    settings:
      port: 4028
      dialect: luxos
    modes: {off: {power_kw: 0}}
`))
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, site.Fleets[0].Settings.Decode(&got))
	require.Equal(t, map[string]any{"port": 4028, "dialect": "luxos"}, got)
	require.Equal(t, yaml.MappingNode, site.Fleets[0].Settings.Kind)
}
