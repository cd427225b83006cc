package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/internal/testenv"
	"github.com/switchd/switchd/policies"
	"github.com/switchd/switchd/trace"
)

// pageData is the part of the page's embedded data the tests read.
type pageData struct {
	T0    int64             `json:"t0"`
	End   int64             `json:"end"`
	T     []*float64        `json:"t"`
	Price []*float64        `json:"price"`
	Grid  []*float64        `json:"grid"`
	Runs  []json.RawMessage `json:"runs"`
	Peaks []struct {
		Start, End int64
		Label      string
	} `json:"peaks"`
	Oracles []struct {
		Profit float64 `json:"profit"`
	} `json:"oracles"`
}

type pageRun struct {
	Label  string     `json:"label"`
	Kind   string     `json:"kind"`
	Final  float64    `json:"final"`
	Profit []*float64 `json:"profit"`
	Detail *struct {
		Counts [][]*float64 `json:"counts"`
	} `json:"detail"`
}

// pageJSON extracts the data the page draws from.
func pageJSON(t *testing.T, page string) (pageData, []pageRun) {
	t.Helper()
	const open = `<script type="application/json" id="data">`
	i := strings.Index(page, open)
	require.GreaterOrEqual(t, i, 0, "no data block")
	rest := page[i+len(open):]
	j := strings.Index(rest, "</script>")
	require.GreaterOrEqual(t, j, 0)
	var d pageData
	require.NoError(t, json.Unmarshal([]byte(rest[:j]), &d))
	runs := make([]pageRun, len(d.Runs))
	for k, raw := range d.Runs {
		require.NoError(t, json.Unmarshal(raw, &runs[k]))
	}
	return d, runs
}

func sum(v []*float64) float64 {
	s := 0.0
	for _, x := range v {
		if x != nil {
			s += *x
		}
	}
	return s
}

func TestHTMLSelfContained(t *testing.T) {
	site, tr, p := simFiles(t, map[string]string{"a.yaml": goldenPolicy, "b.yaml": tightPolicy})
	out := filepath.Join(t.TempDir(), "report.html")
	o := CLIOptions{Config: site, Policies: []string{p["a.yaml"], p["b.yaml"]}, Traces: []string{tr}, Format: "text", HTML: out}
	require.NoError(t, o.Validate())
	var stdout, stderr bytes.Buffer
	require.NoError(t, RunCLI(context.Background(), o, &stdout, &stderr))
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	page := string(b)

	// Opens with no network: nothing fetched from anywhere.
	require.NotContains(t, page, "http://")
	require.NotContains(t, page, "https://")
	require.NotRegexp(t, regexp.MustCompile(`(?i)<(link|img|iframe)\b|\bsrc\s*=|@import|url\(`), page)
	require.Contains(t, page, "SIMULATED")
	// The summary is the text report as printed.
	require.Contains(t, page, "<pre id=\"summary\">")
	for l := range strings.Lines(stdout.String()) {
		if strings.Contains(l, "profit (USD)") {
			require.Contains(t, page, strings.TrimRight(l, "\n"))
		}
	}

	d, runs := pageJSON(t, page)
	require.Len(t, d.T, 192, "every interval, not a downsample")
	require.Len(t, d.Price, 192)
	require.Equal(t, 2*24*3600, int(d.End))
	require.Nil(t, d.Grid, "the golden trace has no grid load")
	// The prices are the trace's.
	series := goldenSeries(t)
	for i := range 192 {
		want, _ := series.Value(i, 0)
		require.NotNil(t, d.Price[i])
		require.InDelta(t, want, *d.Price[i], 0.005, "interval %d", i)
	}
	// Both policies and the two baselines, each with its cumulative profit;
	// the deltas add up to the report's figure.
	require.Len(t, runs, 4)
	kinds := []string{runs[0].Kind, runs[1].Kind, runs[2].Kind, runs[3].Kind}
	require.Equal(t, []string{"policy", "policy", "always_on", "threshold_debounce"}, kinds)
	require.Equal(t, p["a.yaml"], runs[0].Label)
	for _, r := range runs {
		require.Len(t, r.Profit, 192, r.Label)
		require.InDelta(t, r.Final, sum(r.Profit), 1, r.Label)
	}
	require.NotNil(t, runs[0].Detail)
	require.Len(t, runs[0].Detail.Counts, 4, "asics off/mining, gpus off/inference")
	require.Len(t, d.Oracles, 1)
}

// longTrace is a SYNTHETIC trace made by the test: days of 15-minute
// prices with a daily shape, evening spikes every few days, a negative
// night each week, and an hourly system load.
func longTrace(days int) string {
	var b strings.Builder
	b.WriteString("time,price_usd_mwh,hashprice_usd_ph_day,grid_load_mw\n")
	t0 := time.Date(2024, 6, 1, 0, 0, 0, 0, time.FixedZone("CDT", -5*3600))
	for i := range days * 96 {
		t := t0.Add(time.Duration(i) * 15 * time.Minute)
		day, h := i/96, float64(t.Hour())+float64(t.Minute())/60
		price := 22 + 45*math.Max(0, math.Sin((h-8)/12*math.Pi)) + 6*math.Sin(float64(i)*0.7)
		if day%4 == 1 && h >= 17 && h < 18.5 {
			price = 900 + 300*float64(day%3)
		}
		if day%7 == 3 && h >= 2 && h < 5 {
			price = -12
		}
		load := 55000 + 18000*math.Max(0, math.Sin((float64(t.Hour())-9)/12*math.Pi)) + 40*float64(day)
		fmt.Fprintf(&b, "%s,%.2f,%g,%.0f\n", t.Format(time.RFC3339), price, 50-float64(day)/20, load)
	}
	return b.String()
}

// TestHTMLChromium renders a report in a real browser (Debian's chromium,
// headless) and checks that every chart drew and the page raised no error.
// It is skipped without chromium unless SWITCHD_REQUIRE_CHROMIUM is set.
func TestHTMLChromium(t *testing.T) {
	bin := testenv.Chromium(t)
	site, err := config.ParseSite("site.yaml", []byte(goldenSite))
	require.NoError(t, err)
	r, err := trace.NewReader(strings.NewReader(longTrace(120)), "long.csv")
	require.NoError(t, err)
	series, err := trace.Collect(r)
	require.NoError(t, err)
	var vs []Variant
	for i, text := range []string{goldenPolicy, tightPolicy} {
		pol, err := policies.ParsePolicy(fmt.Sprintf("p%d.yaml", i), []byte(text), site)
		require.NoError(t, err)
		vs = append(vs, Variant{Label: pol.Source, Policy: pol})
	}
	cols := []*HTMLCollector{NewHTMLCollector(site), NewHTMLCollector(site)}
	outs, err := CompareAll(context.Background(), CompareOptions{Site: site, Series: series, Files: []string{"long.csv"}}, vs,
		func(i int, o *CompareOptions) { cols[i].Hook(o) })
	require.NoError(t, err)
	var summary strings.Builder
	require.NoError(t, WriteSideBySide(&summary, outs))
	peakAt := series.Time(0).Add(40*24*time.Hour + 17*time.Hour)
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	f, err := os.Create(page)
	require.NoError(t, err)
	require.NoError(t, WriteHTML(f, HTMLOptions{Site: site, Outcomes: outs, Collectors: cols, Summary: summary.String(),
		Peaks: []HTMLPeak{{Start: peakAt, End: peakAt.Add(15 * time.Minute), Label: "test peak"}}}))
	require.NoError(t, f.Close())

	// The DOM after the scripts ran: the page marks itself rendered (or
	// records the error) and lists where each plot area is.
	dom, logs := testenv.RunChromium(t, bin, dir, "--dump-dom", "file://"+page)
	require.Contains(t, dom, `data-rendered="ok"`, "page did not render; browser log:\n%s", logs)
	testenv.CheckConsole(t, logs)
	m := regexp.MustCompile(`(?s)<pre id="layout" hidden="">(.*?)</pre>`).FindStringSubmatch(dom)
	require.NotNil(t, m, "no layout in the DOM")
	var layout []struct {
		Chart      string
		X, Y, W, H int
		Drawn      int
	}
	require.NoError(t, json.Unmarshal([]byte(htmlUnescape(m[1])), &layout))
	var names []string
	for _, l := range layout {
		names = append(names, l.Chart)
	}
	require.Equal(t, []string{"price", "grid", "power", "profit", "margin"}, names)

	shot := filepath.Join(dir, "shot.png")
	if keep := os.Getenv("SWITCHD_HTML_SHOT"); keep != "" {
		shot = keep
	}
	_, logs = testenv.RunChromium(t, bin, dir, "--screenshot="+shot, "--window-size=1400,2400", "file://"+page)
	testenv.CheckConsole(t, logs)
	pf, err := os.Open(shot)
	require.NoError(t, err)
	img, err := png.Decode(pf)
	pf.Close()
	require.NoError(t, err)
	for _, l := range layout {
		require.Positive(t, l.Drawn, "%s drew nothing", l.Chart)
		rect := image.Rect(l.X, l.Y, l.X+l.W, l.Y+l.H)
		require.True(t, rect.In(img.Bounds()), "%s at %v is outside the %v screenshot", l.Chart, rect, img.Bounds())
		// Data is drawn in colour; the frame, grid and labels are grey.
		coloured := 0
		for y := rect.Min.Y; y < rect.Max.Y; y++ {
			for x := rect.Min.X; x < rect.Max.X; x++ {
				r, g, b, _ := img.At(x, y).RGBA()
				if max(r, g, b)-min(r, g, b) > 40<<8 {
					coloured++
				}
			}
		}
		t.Logf("%s: %d coloured pixels of %d", l.Chart, coloured, l.W*l.H)
		require.Greater(t, coloured, l.W, "%s: chart area is blank", l.Chart)
	}
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&quot;", `"`, "&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s)
}

func TestHTMLPeaksFromReport(t *testing.T) {
	start := time.Date(2024, 8, 20, 16, 0, 0, 0, time.FixedZone("CDT", -5*3600))
	rep := &Report{CoincidentPeak: &CPReport{Computed: true, Peaks: []CPPeak{
		{Month: "2024-08", Start: start, End: start.Add(time.Hour), Intervals: 4, GridLoadMW: 85559},
	}}}
	rep.CP = &RunCP{PeakLoadKW: []float64{3488}}
	rep.Baselines.AlwaysOn.CP = &RunCP{PeakLoadKW: []float64{35998}}
	got := reportPeaks(rep, "policy")
	require.Len(t, got, 1)
	require.Equal(t, start, got[0].Start)
	require.Equal(t, start.Add(time.Hour), got[0].End)
	require.Equal(t, "2024-08 coincident peak: system load 85559 MW (4 tied intervals); policy draws 3488 kW; always_on draws 35998 kW", got[0].Label)
	// No peaks when the report has none or could not find them.
	require.Nil(t, reportPeaks(&Report{}, "policy"))
	require.Nil(t, reportPeaks(&Report{CoincidentPeak: &CPReport{Reason: "no grid load"}}, "policy"))
}

// TestHTMLYear writes the report of a real year at 15 minutes and checks it
// keeps every interval, marks the coincident peaks and stays small.
func TestHTMLYear(t *testing.T) {
	files := []string{testenv.TraceFile(t, "ercot_hb_hubavg_rt15_2024.csv"), testenv.TraceFile(t, "btc_hashprice_daily_2023-04_2024-04.csv")}
	out := filepath.Join(t.TempDir(), "year.html")
	o := CLIOptions{Config: "../examples/site.yaml", Policies: []string{"../examples/policies/ercot-4cp.yaml"}, Traces: files, Format: "json", HTML: out}
	var stdout, stderr bytes.Buffer
	require.NoError(t, RunCLI(context.Background(), o, &stdout, &stderr))
	var rep Report
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &rep))
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	t.Logf("a year at 15 min: %d intervals, %d bytes of HTML", rep.Trace.Intervals, len(b))
	require.Less(t, len(b), 3<<20, "the page of a year should stay under 3 MB")
	d, runs := pageJSON(t, string(b))
	require.Len(t, d.T, rep.Trace.Intervals)
	require.Equal(t, 35136, len(d.T))
	require.InDelta(t, rep.ProfitUSD, sum(runs[0].Profit), 1)
	if rep.CoincidentPeak != nil && rep.CoincidentPeak.Computed {
		require.Len(t, d.Peaks, len(rep.CoincidentPeak.Peaks))
		require.NotEmpty(t, d.Peaks)
	}
}
