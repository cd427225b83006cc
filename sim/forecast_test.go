package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/internal/testenv"
	"github.com/switchd/switchd/policies"
	"github.com/switchd/switchd/trace"
)

func TestParseForecastFlag(t *testing.T) {
	o, err := ParseForecastFlag("noisy:0.25")
	require.NoError(t, err)
	require.Equal(t, 0.25, o.Sigma)
	o, err = ParseForecastFlag("column:da_price_usd_mwh")
	require.NoError(t, err)
	require.Equal(t, "da_price_usd_mwh", o.Column)
	o, err = ParseForecastFlag("none")
	require.NoError(t, err)
	require.Nil(t, o)
	for _, bad := range []string{"", "noisy", "noisy:", "noisy:-1", "noisy:NaN", "noisy:4", "gauss:0.1"} {
		_, err := ParseForecastFlag(bad)
		require.Error(t, err, bad)
	}
}

// TestForecastFeedIssues: one forecast at the trace's start and one at each
// midnight of the site's zone, each for 48 h of the trace's steps (cut at
// the trace's end), each price the actual one times the documented noise.
func TestForecastFeedIssues(t *testing.T) {
	series := goldenSeries(t)
	loc, err := time.LoadLocation("America/Chicago")
	require.NoError(t, err)
	o, err := ParseForecastFlag("noisy:0.2")
	require.NoError(t, err)
	feed, err := NewForecastFeed(o, series, nil, loc)
	require.NoError(t, err)

	var issued []time.Time
	for i := range series.Len() {
		now := series.Time(i)
		if f := feed.Due(now); f != nil {
			require.True(t, now.Equal(f.Issued), "issued %s at %s", f.Issued, now)
			require.Equal(t, 15*time.Minute, f.Interval)
			require.NoError(t, f.Validate(-1000, 20000))
			// It never reaches past the trace (the sim cannot know it).
			require.False(t, f.End().After(series.End()))
			issued = append(issued, now)
			for k, p := range f.PricesUSDPerMWh {
				at := f.Start.Add(time.Duration(k) * f.Interval)
				actual, ok := series.Value(series.Index(at), 0)
				require.True(t, ok)
				require.Equal(t, noisyPrice(actual, 0.2, 1, at), p)
			}
		}
	}
	// The trace is two days from midnight CDT: issues at its start and the
	// next midnight.
	require.Len(t, issued, 2)
	require.True(t, series.Time(0).Equal(issued[0]))
	require.True(t, series.Time(96).Equal(issued[1]))
	require.Equal(t, 2, feed.Report().Issues)
	require.True(t, feed.Report().Synthetic)
	require.Contains(t, feed.Report().Description, "SYNTHETIC")
}

// TestNoisyPrice: zero noise is the actual price; otherwise the factor has
// mean one and log standard deviation sigma, the same for an interval
// whichever issue asks, and a negative price stays negative.
func TestNoisyPrice(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	require.Equal(t, 42.0, noisyPrice(42, 0, 1, t0))
	require.Equal(t, noisyPrice(42, 0.3, 1, t0), noisyPrice(42, 0.3, 1, t0))
	require.Less(t, noisyPrice(-10, 0.3, 1, t0), 0.0)
	const n = 20000
	var sum, sumLog, sumLog2 float64
	for k := range n {
		f := noisyPrice(1, 0.3, 1, t0.Add(time.Duration(k)*15*time.Minute))
		sum += f
		sumLog += math.Log(f)
		sumLog2 += math.Log(f) * math.Log(f)
	}
	mean, meanLog := sum/n, sumLog/n
	sd := math.Sqrt(sumLog2/n - meanLog*meanLog)
	require.InDelta(t, 1, mean, 0.01)
	require.InDelta(t, 0.3, sd, 0.01)
}

// TestForecastGoldenUnchangedAndBounded: with a forecast the policy run
// changes (and is labelled), the baselines and the oracle do not, and the
// oracle still bounds the policy; without one the report is the golden
// one (TestGoldenReport).
func TestForecastGoldenUnchangedAndBounded(t *testing.T) {
	site, err := config.ParseSite("golden-site.yaml", []byte(goldenSite))
	require.NoError(t, err)
	pol, err := policies.ParsePolicy("golden-policy.yaml", []byte(goldenPolicy), site)
	require.NoError(t, err)
	series := goldenSeries(t)
	base := CompareOptions{Site: site, Policy: pol, Series: series, Files: []string{"golden.csv"}}
	plain, err := Compare(context.Background(), base)
	require.NoError(t, err)
	require.Nil(t, plain.Forecast)
	for _, spec := range []string{"noisy:0", "noisy:0.3"} {
		o := base
		o.Forecast, err = ParseForecastFlag(spec)
		require.NoError(t, err)
		rep, err := Compare(context.Background(), o)
		require.NoError(t, err)
		checkInvariants(t, site, rep)
		require.Equal(t, plain.Baselines, rep.Baselines, spec)
		require.NotNil(t, rep.Forecast)
		require.Equal(t, spec, rep.Forecast.Source)
		// The comparison run is the plain policy run, replayed again.
		require.Equal(t, plain.ProfitUSD, rep.Forecast.ProfitWithoutUSD)
		require.InDelta(t, rep.ProfitUSD-plain.ProfitUSD, rep.Forecast.GainUSD, 1e-9)
		require.Equal(t, *plain.OracleCapture, *rep.Forecast.OracleCaptureWithout)
		require.InDelta(t, rep.Forecast.GainUSD/(rep.Baselines.Oracle.ProfitUSD-plain.ProfitUSD), *rep.Forecast.GapClosed, 1e-12)
		var text bytes.Buffer
		require.NoError(t, rep.WriteText(&text))
		require.Contains(t, text.String(), "price forecast (policy run only): SYNTHETIC")
		t.Logf("%s: policy %.2f (without %.2f), oracle %.2f", spec, rep.ProfitUSD, plain.ProfitUSD, rep.Baselines.Oracle.ProfitUSD)
	}
}

// TestForecastColumn reads a real forecast from a trace column; a bad cell
// is an error naming file, line and column.
func TestForecastColumn(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("time,price_usd_mwh,da_usd_mwh\n")
	t0 := time.Date(2024, 8, 20, 0, 0, 0, 0, time.UTC)
	for i := range 8 {
		b.WriteString(t0.Add(time.Duration(i)*time.Hour).Format(time.RFC3339) + ",50," + []string{"40", "41", "", "43", "44", "45", "46", "47"}[i] + "\n")
	}
	good := filepath.Join(dir, "good.csv")
	require.NoError(t, os.WriteFile(good, []byte(b.String()), 0o644))
	src, _, closer, err := trace.Open([]string{good})
	require.NoError(t, err)
	series, err := trace.Collect(src)
	closer.Close()
	require.NoError(t, err)
	o, err := ParseForecastFlag("column:da_usd_mwh")
	require.NoError(t, err)
	feed, err := NewForecastFeed(o, series, []string{good}, time.UTC)
	require.NoError(t, err)
	f := feed.Due(t0)
	require.NotNil(t, f)
	// An empty cell ends the forecast: it says nothing of what follows.
	require.Equal(t, []float64{40, 41}, f.PricesUSDPerMWh)
	require.False(t, feed.Report().Synthetic)

	bad := filepath.Join(dir, "bad.csv")
	require.NoError(t, os.WriteFile(bad, []byte(strings.Replace(b.String(), ",43\n", ",4x3\n", 1)), 0o644))
	_, err = NewForecastFeed(o, series, []string{bad}, time.UTC)
	require.ErrorContains(t, err, "bad.csv:5: column da_usd_mwh: \"4x3\" is not a finite number")
}

// TestForecastRealTraces: on every ERCOT trace, a noise-free forecast over
// the horizon keeps the oracle an upper bound and the invariants true.
func TestForecastRealTraces(t *testing.T) {
	dir := testenv.Traces(t)
	traces, err := filepath.Glob(filepath.Join(dir, "ercot_*.csv"))
	require.NoError(t, err)
	require.NotEmpty(t, traces)
	site, err := config.LoadSite("../examples/site.yaml")
	require.NoError(t, err)
	pol, err := policies.LoadPolicy("../examples/policies/price-only.yaml", site)
	require.NoError(t, err)
	for _, tr := range traces {
		t.Run(filepath.Base(tr), func(t *testing.T) {
			src, _, closer, err := trace.Open([]string{tr})
			require.NoError(t, err)
			series, err := trace.Collect(src)
			closer.Close()
			require.NoError(t, err)
			o, err := ParseForecastFlag("noisy:0")
			require.NoError(t, err)
			rep, err := Compare(context.Background(), CompareOptions{Site: site, Policy: pol, Series: series, Files: []string{tr}, Forecast: o})
			require.NoError(t, err)
			checkInvariants(t, site, rep)
		})
	}
}

// TestForecastColumnCLI: a trace with a price_forecast_usd_mwh column gives
// the policy run its forecast without a flag, said on stderr and in the
// report; --forecast none runs without it.
func TestForecastColumnCLI(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("time,price_usd_mwh,price_forecast_usd_mwh\n")
	t0 := time.Date(2024, 8, 20, 0, 0, 0, 0, time.FixedZone("CDT", -5*3600))
	for i := range 192 {
		p := 30.0
		if i%40 >= 30 && i%40 < 34 {
			p = 900
		}
		b.WriteString(t0.Add(time.Duration(i)*15*time.Minute).Format(time.RFC3339) + "," +
			strconv.FormatFloat(p, 'f', -1, 64) + "," + strconv.FormatFloat(p*1.1, 'f', -1, 64) + "\n")
	}
	tr := filepath.Join(dir, "t.csv")
	require.NoError(t, os.WriteFile(tr, []byte(b.String()), 0o644))
	run := func(flag string) (map[string]any, string) {
		var out, errOut bytes.Buffer
		o := CLIOptions{Config: "../examples/site.yaml", Policies: []string{"../examples/policies/price-only.yaml"},
			Traces: []string{tr}, Format: "json", Forecast: flag}
		require.NoError(t, o.Validate())
		require.NoError(t, RunCLI(context.Background(), o, &out, &errOut))
		var rep map[string]any
		require.NoError(t, json.Unmarshal(out.Bytes(), &rep))
		return rep, errOut.String()
	}
	rep, notices := run("")
	require.Contains(t, notices, "column price_forecast_usd_mwh is the price forecast")
	fc, ok := rep["forecast"].(map[string]any)
	require.True(t, ok, "report has a forecast")
	require.Equal(t, "column:price_forecast_usd_mwh", fc["source"])
	require.Equal(t, false, fc["synthetic"])
	rep, notices = run("none")
	require.NotContains(t, notices, "is the price forecast")
	require.Nil(t, rep["forecast"])
	require.Error(t, (&CLIOptions{Config: "c", Policies: []string{"p"}, Traces: []string{"t"}, Format: "text", Forecast: "noisy:"}).Validate())
}
