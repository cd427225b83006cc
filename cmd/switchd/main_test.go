package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func runCmd(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestValidate(t *testing.T) {
	t.Run("valid", func(t *testing.T) {
		code, out, errOut := runCmd("validate", "--config", "../../examples/site.yaml", "--policy", "../../examples/policies/ercot-4cp.yaml")
		require.Equal(t, 0, code, errOut)
		require.Equal(t, 1, strings.Count(out, "\n"), "one-line summary")
		require.Contains(t, out, "ercot-west-1")
	})
	t.Run("fake site with every real driver", func(t *testing.T) {
		code, out, errOut := runCmd("validate", "--config", "../../examples/fake-site.yaml", "--policy", "../../examples/fake-site/policy.yaml")
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, "via luxos")
	})
	t.Run("driver settings and names are checked", func(t *testing.T) {
		src, err := os.ReadFile("../../examples/fake-site.yaml")
		require.NoError(t, err)
		dir := t.TempDir()
		require.NoError(t, os.CopyFS(filepath.Join(dir, "fake-site"), os.DirFS("../../examples/fake-site")))
		require.NoError(t, os.CopyFS(filepath.Join(dir, "traces"), os.DirFS("../../examples/traces")))
		bad := strings.Replace(string(src), "      concurrency: 128", "      concurency: 128", 1)
		bad = strings.Replace(bad, "driver: bosminer", "driver: bosminr", 1)
		cfg := filepath.Join(dir, "site.yaml")
		require.NoError(t, os.WriteFile(cfg, []byte(bad), 0o600))
		code, _, errOut := runCmd("validate", "--config", cfg)
		require.Equal(t, 1, code)
		lines := strings.Split(string(src), "\n")
		lineOf := func(prefix string) int {
			for i, l := range lines {
				if strings.HasPrefix(l, prefix) {
					return i + 1
				}
			}
			t.Fatalf("no line %q", prefix)
			return 0
		}
		require.Contains(t, errOut, cfg+":"+strconv.Itoa(lineOf("      concurrency: 128"))+": fleets[0].settings.concurency: unknown key (did you mean concurrency?)")
		require.Contains(t, errOut, cfg+":"+strconv.Itoa(lineOf("    driver: bosminer"))+`: fleets[2].driver: unknown driver "bosminr"`)
	})
	t.Run("typo names file, line and key", func(t *testing.T) {
		src, err := os.ReadFile("../../examples/policies/price-only.yaml")
		require.NoError(t, err)
		bad := filepath.Join(t.TempDir(), "bad.yaml")
		lines := strings.Split(string(src), "\n")
		line := 0
		for i, l := range lines {
			if strings.HasPrefix(l, "hysteresis_usd_mwh:") {
				lines[i] = strings.Replace(l, "hysteresis_usd_mwh", "hysteresis_usd_mhw", 1)
				line = i + 1
			}
		}
		require.NotZero(t, line)
		require.NoError(t, os.WriteFile(bad, []byte(strings.Join(lines, "\n")), 0o644))
		code, _, errOut := runCmd("validate", "--config", "../../examples/site.yaml", "--policy", bad)
		require.Equal(t, 1, code)
		require.Contains(t, errOut, bad+":"+strconv.Itoa(line)+": hysteresis_usd_mhw: unknown key")
	})
	t.Run("missing config is a usage error", func(t *testing.T) {
		code, _, errOut := runCmd("validate")
		require.Equal(t, 2, code)
		require.Contains(t, errOut, "--config is required")
	})
}

func TestSimJSON(t *testing.T) {
	ts := filepath.Join(t.TempDir(), "ts.csv")
	code, out, errOut := runCmd("sim", "--config", "../../examples/site.yaml", "--policy", "../../examples/policies/price-only.yaml",
		"--trace", "../../examples/traces/SYNTHETIC-sample-2024-01.csv", "--format", "json", "--timeseries", ts)
	require.Equal(t, 0, code, errOut)
	var rep map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	for _, k := range []string{"profit_usd", "energy_mwh", "cost_usd", "revenue_usd", "switches", "oracle_capture", "simulated"} {
		require.Contains(t, rep, k)
	}
	base := rep["baselines"].(map[string]any)
	for _, b := range []string{"always_on", "threshold_debounce", "oracle"} {
		require.Contains(t, base[b].(map[string]any), "profit_usd", b)
	}
	require.EqualValues(t, 2976, rep["trace"].(map[string]any)["intervals"])
	csv, err := os.ReadFile(ts)
	require.NoError(t, err)
	require.Equal(t, 2977, strings.Count(string(csv), "\n"), "header plus one row per interval")
}

func TestSimRejectsBadFlags(t *testing.T) {
	code, _, errOut := runCmd("sim", "--config", "x.yaml", "--format", "xml")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "--policy is required")
	require.Contains(t, errOut, "--format must be text or json")
}

func TestVersionAndJournalHelp(t *testing.T) {
	for _, arg := range []string{"version", "--version", "-version"} {
		code, out, errOut := runCmd(arg)
		require.Equal(t, 0, code, errOut)
		require.True(t, strings.HasPrefix(out, "switchd "), out)
		require.Contains(t, out, "go1.", "the Go version it was built with")
	}
	code, out, errOut := runCmd("journal", "-h")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "switchd journal verify FILE")
	require.Contains(t, out, "switchd journal export FILE")
}
