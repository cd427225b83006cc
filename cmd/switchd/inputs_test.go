package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// writeHourlyTrace writes a made-up hourly TEST trace (not market data) of
// two days, with a price and, when withLoad, a grid load.
func writeHourlyTrace(t *testing.T, withLoad bool) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("time,price_usd_mwh")
	if withLoad {
		b.WriteString(",grid_load_mw")
	}
	b.WriteString("\n")
	t0 := time.Date(2024, 8, 20, 0, 0, 0, 0, time.FixedZone("", -5*3600))
	for i := range 48 {
		fmt.Fprintf(&b, "%s,%d", t0.Add(time.Duration(i)*time.Hour).Format(time.RFC3339), 20+i%7)
		if withLoad {
			b.WriteString(",60000")
		}
		b.WriteString("\n")
	}
	path := filepath.Join(t.TempDir(), "hourly-test.csv")
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
	return path
}

func TestValidateTraceWarnsOnCadence(t *testing.T) {
	tr := writeHourlyTrace(t, true)
	code, out, errOut := runCmd("validate", "--config", "../../examples/site.yaml", "--policy", "../../examples/policies/price-only.yaml", "--trace", tr)
	require.Equal(t, 0, code, "a warning, not an error")
	require.Equal(t, 1, strings.Count(out, "\n"))
	require.Contains(t, errOut, "warning: ../../examples/site.yaml: signals.price.max_age 30m (default) is shorter than the price cadence 1h of trace "+tr)
	require.Contains(t, errOut, "its fail-safe (curtail) then applies")
}

func TestSimMissingInputAndResample(t *testing.T) {
	tr := writeHourlyTrace(t, false)
	args := []string{"sim", "--config", "../../examples/site.yaml", "--policy", "../../examples/policies/ercot-4cp.yaml", "--trace", tr, "--format", "json"}
	code, _, errOut := runCmd(args...)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "needs grid_load (its fail_safe is hold and rules \"4cp-watch\", \"4cp-blind\" read it), but trace "+tr+" has no grid_load_mw column")
	require.Equal(t, 1, strings.Count(errOut, "\n"), "one error")

	code, out, errOut := runCmd(append(args, "--missing", "grid_load=ignore", "--max-age", "auto", "--resample", "2h")...)
	require.Equal(t, 0, code, errOut)
	var rep struct {
		Trace struct {
			Intervals int `json:"intervals"`
		} `json:"trace"`
		Inputs struct {
			Resampled string `json:"resampled_to"`
			Signals   []struct {
				Signal  string `json:"signal"`
				Cadence string `json:"cadence"`
				MaxAge  string `json:"max_age"`
			} `json:"signals"`
			FailSafeHours map[string]float64 `json:"fail_safe_hours"`
		} `json:"inputs"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.Equal(t, 24, rep.Trace.Intervals)
	require.Equal(t, "2h", rep.Inputs.Resampled)
	require.Equal(t, "price", rep.Inputs.Signals[0].Signal)
	require.Equal(t, "2h", rep.Inputs.Signals[0].Cadence)
	require.Equal(t, "4h", rep.Inputs.Signals[0].MaxAge)
	require.Zero(t, rep.Inputs.FailSafeHours["curtail"])
	require.Zero(t, rep.Inputs.FailSafeHours["hold"])

	code, _, errOut = runCmd(append(args, "--missing", "grid_load=perhaps")...)
	require.Equal(t, 2, code)
	require.Contains(t, errOut, `--missing "grid_load=perhaps"`)
}
