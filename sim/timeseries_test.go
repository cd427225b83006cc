package sim

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/trace"
)

// Resampling averages prices: a mean can carry float64 noise, which the
// --timeseries CSV rounds away (to 1e-6) instead of printing it.
func TestTimeseriesDecimals(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("time,price_usd_mwh,hashprice_usd_ph_day\n")
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.FixedZone("", -6*3600))
	prices := []string{"14.693", "11.417", "51.788", "31.638", "20.01", "20.02", "20.03", "20.07"}
	for i, p := range prices {
		fmt.Fprintf(&b, "%s,%s,48.1\n", t0.Add(time.Duration(i)*15*time.Minute).Format(time.RFC3339), p)
	}
	tr := filepath.Join(dir, "trace.csv")
	require.NoError(t, os.WriteFile(tr, []byte(b.String()), 0o600))

	// The hourly means as the simulator computes them: at least one is noisy.
	src, _, closer, err := trace.Open([]string{tr})
	require.NoError(t, err)
	s, err := trace.Collect(trace.Resample(src, time.Hour))
	closer.Close()
	require.NoError(t, err)
	require.Equal(t, 2, s.Len())
	v, ok := s.Value(0, switchd.SignalPrice)
	require.True(t, ok)
	require.Equal(t, "27.383999999999997", strconv.FormatFloat(v, 'f', -1, 64), "the mean as computed, with its noise")

	out := filepath.Join(dir, "ts.csv")
	o := CLIOptions{Config: "../examples/site.yaml", Policies: []string{"../examples/policies/price-only.yaml"}, Traces: []string{tr},
		Format: "json", Timeseries: out, Resample: time.Hour}
	var stdout, stderr bytes.Buffer
	require.NoError(t, RunCLI(context.Background(), o, &stdout, &stderr), stderr.String())
	f, err := os.Open(out)
	require.NoError(t, err)
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 3)
	require.Equal(t, []string{"time", "price_usd_mwh", "hashprice_usd_ph_day"}, rows[0][:3])
	require.Equal(t, []string{"27.384", "48.1"}, rows[1][1:3])
	require.Equal(t, []string{"20.0325", "48.1"}, rows[2][1:3])
}
