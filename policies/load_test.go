package policies

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/*/expected.err from the current output")

// TestGolden checks every folder under testdata: a site.yaml or a
// policy.yaml (checked against testdata/site.yaml), and expected.err with
// the exact text `switchd validate` would print, empty when the file is
// valid. Adding a case is adding a folder; -update rewrites expected.err.
func TestGolden(t *testing.T) {
	site, err := LoadSite(filepath.Join("testdata", "site.yaml"))
	require.NoError(t, err)

	dirs, err := os.ReadDir("testdata")
	require.NoError(t, err)
	cases := 0
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		cases++
		t.Run(d.Name(), func(t *testing.T) {
			dir := filepath.Join("testdata", d.Name())
			var err error
			if data, rerr := os.ReadFile(filepath.Join(dir, "policy.yaml")); rerr == nil {
				_, err = ParsePolicy("policy.yaml", data, site)
			} else {
				data, rerr := os.ReadFile(filepath.Join(dir, "site.yaml"))
				require.NoError(t, rerr, "a case holds a site.yaml or a policy.yaml")
				_, err = ParseSite("site.yaml", data)
			}
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

// TestExamplesLoad checks that the shipped examples are valid: operators
// copy them.
func TestExamplesLoad(t *testing.T) {
	site, err := LoadSite(filepath.Join("..", "examples", "site.yaml"))
	require.NoError(t, err)
	files, err := filepath.Glob(filepath.Join("..", "examples", "policies", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			p, err := LoadPolicy(f, site)
			require.NoError(t, err)
			require.Equal(t, f, p.Source)
			require.NotEmpty(t, p.Rules)
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := LoadSite(filepath.Join("testdata", "nope.yaml"))
	require.ErrorIs(t, err, os.ErrNotExist)
	site, err := LoadSite(filepath.Join("testdata", "site.yaml"))
	require.NoError(t, err)
	_, err = LoadPolicy(filepath.Join("testdata", "nope.yaml"), site)
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestConfigErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  ConfigError
		want string
	}{
		{"full", ConfigError{File: "site.yaml", Line: 22, Path: "fleets[0].modes.mining.power_kw", Msg: "must not be negative (got -3.5)"},
			"site.yaml:22: fleets[0].modes.mining.power_kw: must not be negative (got -3.5)"},
		{"syntax", ConfigError{File: "p.yaml", Line: 3, Msg: "yaml: did not find expected key"}, "p.yaml:3: yaml: did not find expected key"},
		{"no line", ConfigError{File: "p.yaml", Msg: "yaml: control characters are not allowed"}, "p.yaml: yaml: control characters are not allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.err.Error())
		})
	}
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

func TestClosest(t *testing.T) {
	known := []string{"price_above_usd_mwh", "price_below_usd_mwh", "grid_load_above_mw", "for", "schedule"}
	for _, tc := range []struct{ key, want string }{
		{"price_abov_usd_mwh", "price_above_usd_mwh"},
		{"grid_load_above", "grid_load_above_mw"},
		{"fro", "for"},
		{"colour", ""},
	} {
		t.Run(tc.key, func(t *testing.T) {
			require.Equal(t, tc.want, closest(tc.key, known))
		})
	}
}

// TestAliasBomb checks that a file whose aliases expand to millions of
// values is rejected after a bounded walk: 100 rules × 100 fleets × 100
// modes here.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("rules:\n  - &r {name: x, then: {min_devices: {f0: &m {")
	for i := range 100 {
		fmt.Fprintf(&b, "k%d: 1, ", i)
	}
	b.WriteString("}")
	for i := 1; i < 100; i++ {
		fmt.Fprintf(&b, ", f%d: *m", i)
	}
	b.WriteString("}}}\n")
	for range 99 {
		b.WriteString("  - *r\n")
	}
	site, err := LoadSite(filepath.Join("testdata", "site.yaml"))
	require.NoError(t, err)
	_, err = ParsePolicy("bomb.yaml", []byte(b.String()), site)
	require.EqualError(t, err, "bomb.yaml: more than 100000 values (too many aliases?)")
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
