package policies

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd/config"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/*/expected.err from the current output")

// loadTestSite is testdata/site.yaml: asics (1000, off/mining) and gpus (800,
// off/inference), in America/Chicago, capped at 20 MW.
func loadTestSite(t testing.TB) *config.Site {
	t.Helper()
	s, err := config.LoadSite(filepath.Join("testdata", "site.yaml"))
	require.NoError(t, err)
	return s
}

// TestGolden checks every folder under testdata: a policy.yaml, checked
// against testdata/site.yaml, and expected.err with the exact text `switchd
// validate` would print, empty when the file is valid. Adding a case is
// adding a folder; -update rewrites expected.err.
func TestGolden(t *testing.T) {
	site := loadTestSite(t)
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
			data, err := os.ReadFile(filepath.Join(dir, "policy.yaml"))
			require.NoError(t, err, "a case holds a policy.yaml")
			_, err = ParsePolicy("policy.yaml", data, site)
			got := ""
			if err != nil {
				got = err.Error() + "\n"
				for _, e := range unjoinErrors(err) {
					var ce *config.ConfigError
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

func TestLoadPolicyMissingFile(t *testing.T) {
	_, err := LoadPolicy(filepath.Join("testdata", "nope.yaml"), loadTestSite(t))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// TestExamplesLoad checks that the shipped examples are valid: operators
// copy them.
func TestExamplesLoad(t *testing.T) {
	site, err := config.LoadSite(filepath.Join("..", "examples", "site.yaml"))
	require.NoError(t, err)
	files, err := filepath.Glob(filepath.Join("..", "examples", "policies", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			site := site
			// A policy written for its own example site (same base name)
			// is checked against that site.
			if own := filepath.Join("..", "examples", filepath.Base(f)); fileExists(own) {
				var err error
				site, err = config.LoadSite(own)
				require.NoError(t, err)
			}
			p, err := LoadPolicy(f, site)
			require.NoError(t, err)
			require.Equal(t, f, p.Source)
			require.NotEmpty(t, p.Rules)
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
	site, err := config.LoadSite(filepath.Join("testdata", "site.yaml"))
	require.NoError(t, err)
	_, err = ParsePolicy("bomb.yaml", []byte(b.String()), site)
	require.EqualError(t, err, "bomb.yaml: more than 100000 values (too many aliases?)")
}

// TestDemoPolicy checks the policy examples/demo.yaml names against that
// site.
func TestDemoPolicy(t *testing.T) {
	s, err := config.LoadSite(filepath.Join("..", "examples", "demo.yaml"))
	require.NoError(t, err)
	p, err := LoadPolicy(s.Daemon.PolicyPath, s)
	require.NoError(t, err)
	require.NotEmpty(t, p.Rules)
}

// fileExists reports whether path names a file.
func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}
