package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/policies"
	"github.com/switchd/switchd/trace"
)

// aiSite is a small site whose GPUs mine (a fixed USD per GPU-hour) or
// serve inference, next to ASICs, under a cap below full load: 1,000 ASICs
// at 3.5 kW and 400 GPUs at up to 1.275 kW would draw 4,010 kW.
const aiSite = `
site: {name: ai, timezone: America/Chicago, power_cap_kw: %g}
fleets:
  - name: asics
    kind: asic
    count: 1000
    driver: sim
    settings: {initial: off}
    min_dwell: 5m
    switch_cost_usd: 0.05
    modes:
      off: {power_kw: 0.02}
      mining: {power_kw: 3.5, hashrate_ths: 200}
    transitions: {off->mining: 5m, mining->off: 30s}
  - name: gpus
    kind: gpu
    count: 400
    driver: sim
    settings: {initial: %s}
    min_dwell: 5m
    switch_cost_usd: 0.1
    modes:
      off: {power_kw: 0.2}
      mining: {power_kw: 0.9, revenue: fixed, usd_per_hour: 0.30}
      inference: {power_kw: 1.275}
    transitions: {default: 1m, mining->inference: 4m, off->inference: 3m, inference->off: 30s}
`

const aiPolicy = `
fallbacks: {hashprice_usd_ph_day: 48, inference_usd_gpu_hour: %g, ai_demand_gpus: 0}
hysteresis_usd_mwh: 5
%s
`

// aiRun replays rows of (hours from start, price, demand) through the
// policy on the virtual clock, 15-minute rows, and returns the result and
// every interval's record.
type aiStep struct {
	price, demand float64
}

func aiRun(t *testing.T, capKW float64, gpuInitial string, inferencePrice float64, rules string, steps []aiStep) (*Result, []IntervalRecord) {
	t.Helper()
	site, err := config.ParseSite("ai-site.yaml", []byte(fmt.Sprintf(aiSite, capKW, gpuInitial)))
	require.NoError(t, err)
	pol, err := policies.ParsePolicy("ai-policy.yaml", []byte(fmt.Sprintf(aiPolicy, inferencePrice, rules)), site)
	require.NoError(t, err)
	var b strings.Builder
	b.WriteString("time,price_usd_mwh,ai_demand_gpus\n")
	t0 := time.Date(2024, 11, 6, 0, 0, 0, 0, site.Location)
	for i, s := range steps {
		price := fmt.Sprint(s.price)
		if math.IsNaN(s.price) {
			price = "" // no price sample: the feed is down
		}
		fmt.Fprintf(&b, "%s,%s,%g\n", t0.Add(time.Duration(i)*15*time.Minute).Format(time.RFC3339), price, s.demand)
	}
	rd, err := trace.NewReader(strings.NewReader(b.String()), "ai.csv")
	require.NoError(t, err)
	series, err := trace.Collect(rd)
	require.NoError(t, err)
	var recs []IntervalRecord
	res, err := Run(context.Background(), RunOptions{Site: site, Policy: pol, Source: series.Source(), End: series.End(),
		OnInterval: func(r *IntervalRecord) {
			c := *r
			c.Counts = append([][switchd.NumModes]int(nil), r.Counts...)
			c.Moving = append([]int(nil), r.Moving...)
			recs = append(recs, c)
		}})
	require.NoError(t, err)
	require.Zero(t, res.SiteCapExceeded, "the cap holds at every tick")
	require.True(t, res.AI.Active)
	a := &res.AI
	sum := 0.0
	for _, x := range a.ByCauseGPUHours {
		sum += x
	}
	require.InDelta(t, a.UnservedGPUHours, sum, 1e-6, "causes add up to the unserved")
	require.InDelta(t, a.DemandGPUHours, a.ServedGPUHours+a.UnservedGPUHours, 1e-6)
	return res, recs
}

// repeat returns n copies of s.
func repeat(s aiStep, n int) []aiStep {
	out := make([]aiStep, n)
	for i := range out {
		out[i] = s
	}
	return out
}

const (
	asics = 0
	gpus  = 1
)

// An AI surge under the cap: GPUs leave mining for inference and ASICs
// shed to make room; a GPU still loading serves nothing. When demand
// falls, the GPUs go back to mining (it pays at 30 USD/MWh) and the ASICs
// come back under the cap.
func TestAISurgeShedsMinersUnderCap(t *testing.T) {
	steps := append(repeat(aiStep{30, 0}, 8), repeat(aiStep{30, 400}, 8)...) // surge at 2 h
	steps = append(steps, repeat(aiStep{30, 0}, 8)...)                       // demand gone at 4 h
	res, recs := aiRun(t, 3600, "mining", 2.10, "", steps)

	before, surge, after := recs[7], recs[15], recs[23]
	// Before: every GPU mines, the ASICs fill the rest of the cap.
	require.Equal(t, 400, before.Counts[gpus][switchd.ModeMining])
	require.Zero(t, before.Counts[gpus][switchd.ModeInference])
	asicsBefore := before.Counts[asics][switchd.ModeMining]
	require.Greater(t, asicsBefore, 900)
	// Surge: all 400 GPUs serve; the ASICs shed to stay under 3,600 kW.
	require.Equal(t, 400, surge.Counts[gpus][switchd.ModeInference])
	asicsSurge := surge.Counts[asics][switchd.ModeMining]
	require.Less(t, asicsSurge, asicsBefore, "miners give their power to the higher-value load")
	require.LessOrEqual(t, float64(asicsSurge)*3.5+400*1.275+float64(1000-asicsSurge)*0.02, 3600.0)
	require.Greater(t, float64(asicsSurge)*3.5, 3600-400*1.275-3.5-20, "and no more than that")
	// After: mining is back on both fleets.
	require.Equal(t, 400, after.Counts[gpus][switchd.ModeMining])
	require.Equal(t, asicsBefore, after.Counts[asics][switchd.ModeMining])

	// Unserved: only while the GPUs load (4 min from mining, more if the
	// ASICs must shed first); nothing is unserved for want of GPUs, cap,
	// price or rules.
	a := &res.AI
	require.InDelta(t, 400*2.0, a.DemandGPUHours, 1e-6)
	for _, c := range []AICause{AICauseGPUs, AICauseStale, AICauseRule, AICauseCap, AICausePrice} {
		require.Zero(t, a.ByCauseGPUHours[c], c.String())
	}
	load := 400 * 4.0 / 60
	require.GreaterOrEqual(t, a.UnservedGPUHours, load-1e-6, "a GPU still loading serves nothing")
	require.Greater(t, a.ByCauseGPUHours[AICauseTransition], 0.0)
	require.Less(t, a.UnservedGPUHours, 400*0.25, "served within the surge's first interval")
	require.InDelta(t, a.UnservedGPUHours*2.10, a.UnservedUSD, 1e-6)
	// The first surge interval earns less inference than a full one.
	require.Less(t, recs[8].RevenueUSD, recs[9].RevenueUSD)
	// The dual-use fleet shows both uses.
	h := a.FleetModeHours[gpus]
	require.Greater(t, h[switchd.ModeMining], 0.0)
	require.Greater(t, h[switchd.ModeInference], 0.0)
}

// When demand falls but mining does not pay (price above the GPUs' and
// the ASICs' breakeven), the freed GPUs go off, not to mining.
func TestAIDemandFallsMiningOnlyIfItPays(t *testing.T) {
	steps := append(repeat(aiStep{500, 400}, 8), repeat(aiStep{500, 100}, 8)...)
	_, recs := aiRun(t, 3600, "inference", 2.10, "", steps)
	last := recs[len(recs)-1]
	require.Equal(t, 100, last.Counts[gpus][switchd.ModeInference])
	require.Zero(t, last.Counts[gpus][switchd.ModeMining], "0.30 USD/h at 0.9 kW does not pay at 500 USD/MWh")
	require.Zero(t, last.Counts[asics][switchd.ModeMining])
}

// With GPUs warm and demand they can serve under the cap, nothing goes
// unserved; demand above the GPUs is unserved for want of GPUs, and only
// that part.
func TestAIUnservedZeroWhenCapAndGPUsAllow(t *testing.T) {
	res, _ := aiRun(t, 3600, "inference", 2.10, "", repeat(aiStep{30, 350}, 16))
	require.InDelta(t, 350*4.0, res.AI.DemandGPUHours, 1e-6)
	require.Zero(t, res.AI.UnservedGPUHours)
	require.InDelta(t, res.AI.ServedGPUHours*2.10, res.RevenueUSD[switchd.ModeInference], 1e-6)

	res, _ = aiRun(t, 3600, "inference", 2.10, "", repeat(aiStep{30, 500}, 16))
	require.InDelta(t, 100*4.0, res.AI.UnservedGPUHours, 1e-6)
	require.InDelta(t, 100*4.0, res.AI.ByCauseGPUHours[AICauseGPUs], 1e-6)
}

// Each remaining cause is named: a cap with no room, a rule that caps
// inference, and a price at which inference loses money.
func TestAIUnservedCauses(t *testing.T) {
	// 300 kW of cap: 400 × 0.2 kW idle GPUs + 1,000 × 0.02 kW ASICs leave
	// room for (300 − 100) / 1.075 = 186 GPUs in inference.
	res, _ := aiRun(t, 300, "off", 2.10, "", repeat(aiStep{30, 300}, 16))
	a := &res.AI
	require.Greater(t, a.ByCauseGPUHours[AICauseCap], 0.0)
	require.InDelta(t, (300-186)*4.0, a.ByCauseGPUHours[AICauseCap], 1e-6)

	rule := `rules:
  - name: inference-max
    when: {price_above_usd_mwh: 0}
    then: {max_devices: {gpus: {inference: 100}}}`
	res, _ = aiRun(t, 3600, "inference", 2.10, rule, repeat(aiStep{30, 300}, 16))
	require.InDelta(t, 200*4.0, res.AI.ByCauseGPUHours[AICauseRule], 0.05*200*4.0, "GPUs beyond the rule's max")

	// At 2,000 USD/MWh a GPU serving costs 2.55 USD/h, more than 2.10.
	res, _ = aiRun(t, 3600, "off", 2.10, "", repeat(aiStep{2000, 300}, 8))
	require.InDelta(t, 300*2.0, res.AI.ByCauseGPUHours[AICausePrice], 1e-6)

	// The price feed stops for 3 hours and its fail-safe curtails: the
	// demand that goes unserved meanwhile is the fail-safe's.
	steps := append(repeat(aiStep{30, 300}, 4), repeat(aiStep{math.NaN(), 300}, 12)...)
	steps = append(steps, repeat(aiStep{30, 300}, 4)...)
	res, _ = aiRun(t, 3600, "inference", 2.10, "fail_safe: {price: curtail}", steps)
	a = &res.AI
	require.Greater(t, a.ByCauseGPUHours[AICauseStale], 300*2.0, "curtailed for most of the 3 h")
	require.Less(t, a.ByCauseGPUHours[AICauseStale], 300*3.0)
}

// The example AI site over three weeks of prices with a 2-day demand file
// repeated weekly: the JSON report says the file was repeated and carries
// the AI figures of the policy and both baselines, the text and HTML
// reports show them.
func TestAIExampleRepeatWeeklyCLI(t *testing.T) {
	dir := t.TempDir()
	loc, err := time.LoadLocation("America/Chicago")
	require.NoError(t, err)
	var p, d strings.Builder
	p.WriteString("time,price_usd_mwh\n")
	t0 := time.Date(2024, 3, 4, 0, 0, 0, 0, loc) // a Monday; DST starts on the 10th
	for i := 0; ; i++ {
		tm := t0.Add(time.Duration(i) * 15 * time.Minute)
		if !tm.Before(t0.AddDate(0, 0, 21)) {
			break
		}
		fmt.Fprintf(&p, "%s,%d\n", tm.Format(time.RFC3339), 20+(i%96)/2)
	}
	d.WriteString("time,ai_demand_gpus\n")
	d0 := time.Date(2024, 11, 6, 0, 0, 0, 0, loc) // Wed-Thu
	for i := range 2 * 96 {
		fmt.Fprintf(&d, "%s,%d\n", d0.Add(time.Duration(i)*15*time.Minute).Format(time.RFC3339), (i%96)*40)
	}
	pf, df := dir+"/p.csv", dir+"/d.csv"
	require.NoError(t, os.WriteFile(pf, []byte(p.String()), 0o600))
	require.NoError(t, os.WriteFile(df, []byte(d.String()), 0o600))
	o := CLIOptions{Config: "../examples/ai-site.yaml", Policies: []string{"../examples/policies/ai-demand.yaml"},
		Traces: []string{pf, df}, Repeats: []string{"", "weekly"}, Format: "json", HTML: dir + "/r.html"}
	require.NoError(t, o.Validate())
	var out, errb bytes.Buffer
	require.NoError(t, RunCLI(context.Background(), o, &out, &errb))
	var rep struct {
		AI    *AIReport `json:"ai_demand"`
		Trace struct {
			Repeated []string `json:"repeated"`
			Hours    float64  `json:"hours"`
		} `json:"trace"`
		Baselines struct {
			AlwaysOn struct {
				AI *AIReport `json:"ai_demand"`
			} `json:"always_on"`
		} `json:"baselines"`
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep))
	require.Len(t, rep.Trace.Repeated, 1)
	require.Contains(t, rep.Trace.Repeated[0], "d.csv: repeated weekly")
	require.NotNil(t, rep.AI)
	require.NotNil(t, rep.Baselines.AlwaysOn.AI)
	// Three Wednesdays and Thursdays of demand, the rest unknown (the
	// span is 503 h: DST starts on the first Sunday).
	require.Equal(t, 503.0, rep.Trace.Hours)
	require.InDelta(t, 3*2*24.0, rep.Trace.Hours-rep.AI.DemandUnknownH, 1e-9)
	require.Greater(t, rep.AI.ServedGPUHours, 0.0)
	require.InDelta(t, rep.AI.DemandGPUHours, rep.AI.ServedGPUHours+rep.AI.UnservedGPUHours, 1e-3)
	require.Contains(t, rep.AI.UnservedByCause, "gpus", "demand peaks at 3,800 GPUs, above the 3,000")
	require.NotEmpty(t, rep.AI.DualUseFleets)
	page, err := os.ReadFile(dir + "/r.html")
	require.NoError(t, err)
	require.Contains(t, string(page), `<table id="ai-demand">`)
	require.Contains(t, string(page), "REPEATED")

	o.Format, o.HTML = "text", ""
	out.Reset()
	require.NoError(t, RunCLI(context.Background(), o, &out, &errb))
	require.Contains(t, out.String(), "AI unserved (GPU-h)")

	o.Repeats = []string{"weekly"}
	require.ErrorContains(t, o.Validate(), "--repeat cannot apply to the first --trace")
	o.Repeats = []string{"", "daily"}
	require.ErrorContains(t, o.Validate(), `unknown repeat "daily"`)
}

// ai_warm keeps GPUs loaded through a dip in demand: when it comes back
// they serve at once, where without it they reload (and serve nothing
// meanwhile).
func TestAIWarmServesReturningDemand(t *testing.T) {
	steps := append(repeat(aiStep{30, 400}, 8), repeat(aiStep{30, 100}, 2)...)
	steps = append(steps, repeat(aiStep{30, 400}, 4)...)
	cold, _ := aiRun(t, 3600, "inference", 2.10, "", steps)
	warm, recs := aiRun(t, 3600, "inference", 2.10, "ai_warm: {hold: 1h}", steps)
	require.Greater(t, cold.AI.ByCauseGPUHours[AICauseTransition], 0.0, "without ai_warm the returning demand waits for a reload")
	require.Zero(t, warm.AI.UnservedGPUHours, "kept warm, it is served at once")
	require.Equal(t, 400, recs[9].Counts[gpus][switchd.ModeInference], "the 300 GPUs not wanted during the dip stay loaded")
	// The warm GPUs earn nothing during the dip: revenue counts demand only.
	require.InDelta(t, warm.AI.ServedGPUHours*2.10, warm.RevenueUSD[switchd.ModeInference], 1e-6)
}

// The AI demo (examples/ai-demo.yaml) over its SYNTHETIC trace: one GPU
// fleet both mines and serves, and its demand fits the GPUs.
func TestAIDemoSwitchesOneFleet(t *testing.T) {
	site, err := config.LoadSite("../examples/ai-demo.yaml")
	require.NoError(t, err)
	pol, err := policies.LoadPolicy("../examples/policies/ai-demo.yaml", site)
	require.NoError(t, err)
	require.NotNil(t, site.Daemon.Demo)
	require.Contains(t, site.Daemon.Demo.Trace, "SYNTHETIC")
	src, _, c, err := trace.Open([]string{site.Daemon.Demo.Trace})
	require.NoError(t, err)
	defer c.Close()
	series, err := trace.Collect(src)
	require.NoError(t, err)
	lo, hi := 1e9, 0.0
	for i := range series.Len() {
		d, ok := series.Value(i, switchd.SignalAIDemand)
		require.True(t, ok)
		lo, hi = min(lo, d), max(hi, d)
	}
	require.Equal(t, 30.0, lo)
	require.Equal(t, float64(site.Fleets[gpus].Spec.Count), hi, "peak demand is the demo's GPU count")
	res, err := Run(context.Background(), RunOptions{Site: site, Policy: pol, Source: series.Source(), End: series.End()})
	require.NoError(t, err)
	h := res.AI.FleetModeHours[gpus]
	require.Greater(t, h[switchd.ModeMining], 0.2*(h[switchd.ModeMining]+h[switchd.ModeInference]), "the GPUs mine when demand is low")
	require.Greater(t, h[switchd.ModeInference], 0.2*(h[switchd.ModeMining]+h[switchd.ModeInference]), "and serve when it is high")
	require.Less(t, res.AI.UnservedGPUHours, 0.01*res.AI.DemandGPUHours)
}
